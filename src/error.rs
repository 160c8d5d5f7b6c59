//! The error type shared by every text parser of the crate.

use std::borrow::Cow;
use std::fmt;

/// What went wrong in a [`ParseError`].
///
/// Each distinct failure has its own kind, so that a caller can react to it
/// (a checker can say what to fix) without reading the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The input is empty (or, for a policy body, holds only blank lines).
    Empty,
    /// The input is longer than the named limit allows
    /// ([`MAX_POLICY_BYTES`](crate::sts::MAX_POLICY_BYTES) for a policy body).
    TooLarge,
    /// The bytes are not UTF-8 (RFC 8461 §3.2: the policy is UTF-8 text).
    InvalidUtf8,

    /// A TXT record does not begin with `v=STSv1` (RFC 8461 §3.1).
    MissingVersion,
    /// A policy's `version` is not `STSv1` (RFC 8461 §3.2).
    UnsupportedVersion,
    /// A TXT record field is not `name=value`, or fields are not separated
    /// by `;` (RFC 8461 §3.1).
    MalformedField,
    /// A policy line is neither blank nor `key: value` (RFC 8461 §3.2).
    MalformedLine,
    /// A field or key name does not follow the extension-name grammar: a
    /// letter or digit, then up to 31 letters, digits, `_`, `-` or `.`.
    InvalidFieldName,
    /// A field value holds characters its grammar does not allow, or is
    /// empty.
    InvalidFieldValue,
    /// The TXT record has no `id` field (RFC 8461 §3.1: it is required).
    MissingId,
    /// The TXT record's `id` is not 1 to 32 letters and digits.
    InvalidId,
    /// A required field is absent: in a policy `version`, `mode`, `max_age`,
    /// or `mx` when the mode is not `none` (RFC 8461 §3.2); in a TLSA record
    /// any of its four fields (RFC 6698 §2.2).
    MissingField,
    /// The policy `mode` is not `enforce`, `testing` or `none`.
    UnknownMode,
    /// The policy `max_age` is not a decimal number.
    InvalidMaxAge,
    /// The policy `max_age` has more than 10 digits (RFC 8461 §3.2).
    MaxAgeTooLong,

    /// A domain name has an empty label (`a..b`, `.a`), or is only a dot.
    EmptyLabel,
    /// A label is longer than [`MAX_LABEL_LEN`](crate::name::MAX_LABEL_LEN)
    /// octets (RFC 1035 §2.3.4).
    LabelTooLong,
    /// A name is longer than [`MAX_NAME_LEN`](crate::name::MAX_NAME_LEN)
    /// octets (RFC 1035 §2.3.4).
    NameTooLong,
    /// A name holds a character other than a letter, digit, hyphen or dot
    /// (RFC 5321 §4.1.2 `Domain`).
    InvalidCharacter,
    /// A label begins or ends with a hyphen (RFC 5321 §4.1.2 `Ldh-str`).
    InvalidHyphen,
    /// A name is not a valid internationalized domain name (a U-label that
    /// cannot be converted, or an `xn--` label that is not an A-label).
    InvalidIdn,
    /// A `*` stands anywhere but as the whole left-most label of an MX
    /// pattern (RFC 8461 §3.2, §4.1).
    MisplacedWildcard,

    /// A TLSA usage, selector or matching type is not a decimal number from
    /// 0 to 255 (RFC 6698 §2.2).
    InvalidNumber,
    /// TLSA certificate association data is not hex, or has an odd number
    /// of digits (RFC 6698 §2.2).
    InvalidHex,
}

/// A parse failure: what went wrong ([`kind`](Self::kind)), where
/// ([`line`](Self::line) for a policy body, [`offset`](Self::offset) in
/// bytes from the start of the input), and a message that names the field.
///
/// ```
/// use smtp_tls_policy::sts::Policy;
/// let err = Policy::parse("version: STSv1\nmax_age: 86400\nmode: enforced\n").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"line 3: mode: unknown value "enforced" (expected enforce, testing or none)"#
/// );
/// assert_eq!(err.line(), Some(3));
/// assert_eq!(err.offset(), 36); // the first byte of "enforced"
/// ```
///
/// Parse errors are never temporary: the same input fails the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    kind: ParseErrorKind,
    field: Option<Cow<'static, str>>,
    line: Option<usize>,
    offset: usize,
    message: Box<str>,
}

impl ParseError {
    /// Builds an error; `message` says what is wrong, without the field name
    /// or line, which [`Display`](fmt::Display) adds.
    pub(crate) fn new(
        kind: ParseErrorKind,
        field: Option<&'static str>,
        offset: usize,
        message: impl Into<Box<str>>,
    ) -> Self {
        Self { kind, field: field.map(Cow::Borrowed), line: None, offset, message: message.into() }
    }

    /// Places an error found inside a part of a larger input: `line` is the
    /// 1-based line, `base` the byte offset of the part, `field` the field the
    /// part is the value of.
    pub(crate) fn within(mut self, line: Option<usize>, base: usize, field: impl Into<Cow<'static, str>>) -> Self {
        self.line = line.or(self.line);
        self.offset = self.offset.saturating_add(base);
        self.field = Some(field.into());
        self
    }

    /// Sets the 1-based line of a policy body the error is on.
    pub(crate) fn with_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// The field the error is about (`"mode"`, `"id"`, `"mx"`, …), if any.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The 1-based line of a policy body where the error is, if it is on one
    /// line (a missing field is on none).
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The byte offset, from the start of the input, of the first byte in
    /// error (the input's length when something is missing at the end).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Always `false`: parsing the same input again fails the same way.
    pub fn is_temporary(&self) -> bool {
        false
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// How much of an offending value an error message quotes.
const QUOTE_LIMIT: usize = 64;

/// Quotes `value` for an error message: Rust string escapes, cut after
/// [`QUOTE_LIMIT`] characters so that a hostile 64 KiB line does not become
/// a 64 KiB message.
pub(crate) fn quote(value: &str) -> String {
    match value.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{:?}…", &value[..cut]),
        None => format!("{value:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_and_cuts() {
        assert_eq!(quote("a\"b\u{7}"), r#""a\"b\u{7}""#);
        let long = "x".repeat(100);
        assert_eq!(quote(&long), format!("\"{}\"…", "x".repeat(64)));
        assert_eq!(quote(&"é".repeat(70)), format!("\"{}\"…", "é".repeat(64)));
    }

    #[test]
    fn display_adds_line_and_field() {
        let e =
            ParseError::new(ParseErrorKind::UnknownMode, None, 6, "unknown value \"x\"").within(Some(2), 10, "mode");
        assert_eq!(e.to_string(), "line 2: mode: unknown value \"x\"");
        assert_eq!(e.offset(), 16);
        assert!(!e.is_temporary());
    }
}
