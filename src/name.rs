//! Domain names as the crate holds them: lower-case A-labels, no trailing
//! dot, within the RFC 1035 limits.
//!
//! Every domain the crate compares — a policy domain, an MX host, the base
//! of an MX pattern — goes through [`DomainName`], so that comparisons are
//! plain byte comparisons of one canonical form.

use std::fmt;
use std::str::FromStr;

use crate::error::{ParseError, ParseErrorKind, quote};

/// The longest name, in octets of its text form without the trailing dot
/// (RFC 1035 §2.3.4: 255 octets on the wire, which is 253 in text).
pub const MAX_NAME_LEN: usize = 253;

/// The longest label, in octets (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// A validated host name: lower-case, A-labels only, no trailing dot,
/// labels of letters, digits and inner hyphens (RFC 5321 §4.1.2 `Domain`),
/// at most [`MAX_LABEL_LEN`] octets a label and [`MAX_NAME_LEN`] in all.
///
/// Parsing accepts upper case, one trailing dot, and U-labels, which are
/// converted to A-labels with UTS #46 (the `idna` crate); an `xn--` label
/// must be a valid A-label. Underscores are refused: a host name is not an
/// arbitrary DNS owner name.
///
/// ```
/// use smtp_tls_policy::name::DomainName;
/// let name = DomainName::parse("Mail.Bücher.Example.").unwrap();
/// assert_eq!(name.as_str(), "mail.xn--bcher-kva.example");
/// assert!(DomainName::parse("bad_host.example").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(Box<str>);

impl DomainName {
    /// Validates and normalises `input` (see the type's docs).
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        parse_name(input).map_err(|Invalid { kind, offset, reason }| {
            ParseError::new(kind, None, offset, format!("{}: {reason}", quote(input)))
        })
    }

    /// The name as text: lower-case A-labels, no trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The labels from left to right.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }
}

/// Why a name is refused: the kind, the byte offset in the input, and the
/// reason without the name itself, so that a caller can quote what it likes.
pub(crate) struct Invalid {
    pub(crate) kind: ParseErrorKind,
    pub(crate) offset: usize,
    pub(crate) reason: String,
}

impl Invalid {
    fn new(kind: ParseErrorKind, offset: usize, reason: impl Into<String>) -> Self {
        Self { kind, offset, reason: reason.into() }
    }
}

/// [`DomainName::parse`] with the reason kept apart from the name.
pub(crate) fn parse_name(input: &str) -> Result<DomainName, Invalid> {
    let trimmed = input.strip_suffix('.').unwrap_or(input);
    if trimmed.is_empty() {
        let kind = if input.is_empty() { ParseErrorKind::Empty } else { ParseErrorKind::EmptyLabel };
        return Err(Invalid::new(kind, 0, "empty domain name"));
    }
    if !trimmed.is_ascii() {
        return to_a_labels(trimmed);
    }
    // One pass checks the LDH rules and notes what the name needs next.
    let seen = check_ascii(trimmed)?;
    if seen.a_label {
        return to_a_labels(trimmed);
    }
    if seen.upper {
        return Ok(DomainName(trimmed.to_ascii_lowercase().into_boxed_str()));
    }
    Ok(DomainName(Box::from(trimmed)))
}

/// The byte classes of a host name: [`LDH`] lower-case letters, digits and
/// `-`; [`UPPER`] upper-case letters; everything else (the dot included)
/// is looked at on its own.
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' {
            LDH
        } else if b.is_ascii_uppercase() {
            UPPER
        } else {
            0
        };
        i += 1;
    }
    t
};
const LDH: u8 = 1;
const UPPER: u8 = 2;

/// What [`check_ascii`] saw on its way.
#[derive(Default)]
struct Seen {
    /// A label starting `xn--` (any case): checked by IDNA.
    a_label: bool,
    /// An upper-case letter: the name is lower-cased.
    upper: bool,
}

/// Converts a name holding U-labels (or `xn--` labels, to check them) with
/// UTS #46 and validates the result.
fn to_a_labels(input: &str) -> Result<DomainName, Invalid> {
    let invalid = || Invalid::new(ParseErrorKind::InvalidIdn, 0, "not a valid internationalized domain name");
    let ascii = idna::domain_to_ascii_strict(input).map_err(|_| invalid())?;
    // UTS #46 maps some code points to dots or to nothing; the result must
    // still be a host name by the ASCII rules.
    check_ascii(&ascii).map_err(|_| invalid())?;
    Ok(DomainName(ascii.into_boxed_str()))
}

/// Checks an ASCII name, without a trailing dot, against RFC 5321 §4.1.2
/// and the RFC 1035 limits. Offsets in the error are into `name`.
fn check_ascii(name: &str) -> Result<Seen, Invalid> {
    if name.len() > MAX_NAME_LEN {
        return Err(Invalid::new(
            ParseErrorKind::NameTooLong,
            MAX_NAME_LEN,
            format!("{} octets, over the {MAX_NAME_LEN}-octet limit of a domain name", name.len()),
        ));
    }
    let bytes = name.as_bytes();
    let mut start = 0;
    let mut seen = Seen::default();
    for (i, &b) in bytes.iter().enumerate() {
        match CLASS[usize::from(b)] {
            LDH => continue,
            UPPER => {
                seen.upper = true;
                continue;
            }
            _ => {}
        }
        if b != b'.' {
            return Err(Invalid::new(
                ParseErrorKind::InvalidCharacter,
                i,
                format!("{:?} is not allowed (letters, digits, hyphens and dots only)", b as char),
            ));
        }
        seen.a_label |= check_label(name, start, i)?;
        start = i + 1;
    }
    seen.a_label |= check_label(name, start, bytes.len())?;
    Ok(seen)
}

/// Checks the label `name[start..end]`, whose characters are already known
/// to be letters, digits and hyphens; whether it starts `xn--` (any case).
fn check_label(name: &str, start: usize, end: usize) -> Result<bool, Invalid> {
    let label = &name[start..end];
    if label.is_empty() {
        return Err(Invalid::new(ParseErrorKind::EmptyLabel, start, "empty label"));
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(Invalid::new(
            ParseErrorKind::LabelTooLong,
            start,
            format!("label {} is {} octets, over the {MAX_LABEL_LEN}-octet limit", quote(label), label.len()),
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        let at = if label.starts_with('-') { start } else { end - 1 };
        return Err(Invalid::new(
            ParseErrorKind::InvalidHyphen,
            at,
            format!("label {} begins or ends with a hyphen", quote(label)),
        ));
    }
    let b = label.as_bytes();
    Ok(b.len() >= 4
        && b[0].eq_ignore_ascii_case(&b'x')
        && b[1].eq_ignore_ascii_case(&b'n')
        && b[2] == b'-'
        && b[3] == b'-')
}

impl FromStr for DomainName {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainName({:?})", &*self.0)
    }
}

impl AsRef<str> for DomainName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1035 §2.3.4 limits, RFC 5321 §4.1.2 syntax, RFC 5890 A-labels.
    #[test]
    fn accepts_and_normalises() {
        let cases = [
            ("example.com", "example.com"),
            ("EXAMPLE.com.", "example.com"),
            ("mx1.Mail.Example.COM", "mx1.mail.example.com"),
            ("localhost", "localhost"),
            ("1-2.3com", "1-2.3com"),
            ("a--b.example", "a--b.example"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("BÜCHER.example.", "xn--bcher-kva.example"),
            ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
            ("例え.jp", "xn--r8jz45g.jp"),
        ];
        for (input, want) in cases {
            let got = DomainName::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(got.as_str(), want, "{input:?}");
        }
        let longest_label = "a".repeat(63);
        assert!(DomainName::parse(&format!("{longest_label}.com")).is_ok());
        // 4 labels of 63 octets and 3 dots = 255 > 253; 253 exactly passes.
        let name_253 = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(61));
        assert_eq!(name_253.len(), 253);
        assert!(DomainName::parse(&name_253).is_ok());
        assert!(DomainName::parse(&format!("{name_253}.")).is_ok());
    }

    #[test]
    fn refuses_with_kind_and_message() {
        let name_254 = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(62));
        let cases: &[(&str, ParseErrorKind, &str)] = &[
            ("", ParseErrorKind::Empty, r#""": empty domain name"#),
            (".", ParseErrorKind::EmptyLabel, r#"".": empty domain name"#),
            ("a..b", ParseErrorKind::EmptyLabel, r#""a..b": empty label"#),
            (".a", ParseErrorKind::EmptyLabel, r#"".a": empty label"#),
            ("a.b..", ParseErrorKind::EmptyLabel, r#""a.b..": empty label"#),
            (
                "bad_host.example",
                ParseErrorKind::InvalidCharacter,
                r#""bad_host.example": '_' is not allowed (letters, digits, hyphens and dots only)"#,
            ),
            (
                "a b",
                ParseErrorKind::InvalidCharacter,
                r#""a b": ' ' is not allowed (letters, digits, hyphens and dots only)"#,
            ),
            ("-a.example", ParseErrorKind::InvalidHyphen, r#""-a.example": label "-a" begins or ends with a hyphen"#),
            ("a-.example", ParseErrorKind::InvalidHyphen, r#""a-.example": label "a-" begins or ends with a hyphen"#),
            ("xn--zz.example", ParseErrorKind::InvalidIdn, ""),
            ("bü_cher.example", ParseErrorKind::InvalidIdn, ""),
            ("*.example", ParseErrorKind::InvalidCharacter, ""),
        ];
        for (input, kind, message) in cases {
            let err = DomainName::parse(input).expect_err(input);
            assert_eq!(err.kind(), *kind, "{input:?}: {err}");
            if !message.is_empty() {
                assert_eq!(err.to_string(), *message);
            }
        }
        let long_label = format!("{}.com", "a".repeat(64));
        let err = DomainName::parse(&long_label).unwrap_err();
        assert_eq!(err.kind(), ParseErrorKind::LabelTooLong);
        assert!(err.to_string().ends_with("is 64 octets, over the 63-octet limit"), "{err}");
        let err = DomainName::parse(&name_254).unwrap_err();
        assert_eq!(err.kind(), ParseErrorKind::NameTooLong);
        assert!(err.to_string().ends_with("254 octets, over the 253-octet limit of a domain name"), "{err}");
    }
}
