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
///
/// A name of up to [`INLINE_NAME_LEN`] octets is held inline, without an
/// allocation (nearly every MX host and policy domain); a longer one on the
/// heap. Equality, ordering and hashing are those of the text.
#[derive(Clone)]
pub struct DomainName(Repr);

/// The longest name held inside a [`DomainName`] without an allocation.
pub const INLINE_NAME_LEN: usize = 46;

#[derive(Clone)]
enum Repr {
    /// `bytes[..len]`: lower-case ASCII letters, digits, `-` and `.`.
    Inline {
        len: u8,
        bytes: [u8; INLINE_NAME_LEN],
    },
    Heap(Box<str>),
}

impl DomainName {
    /// Validates and normalises `input` (see the type's docs).
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        parse_name(input).map_err(|Invalid { kind, offset, reason }| {
            ParseError::new(kind, None, offset, format!("{}: {reason}", quote(input)))
        })
    }

    /// A name already in the canonical form (ASCII, lower case, valid).
    fn from_canonical(name: &str) -> Self {
        match u8::try_from(name.len()) {
            Ok(len) if name.len() <= INLINE_NAME_LEN => {
                let mut bytes = [0; INLINE_NAME_LEN];
                bytes[..name.len()].copy_from_slice(name.as_bytes());
                Self(Repr::Inline { len, bytes })
            }
            _ => Self(Repr::Heap(Box::from(name))),
        }
    }

    /// The name as text: lower-case A-labels, no trailing dot.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Only ASCII is ever stored inline, so this never fails.
            Repr::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Repr::Heap(name) => name,
        }
    }

    /// The name's octets (ASCII): [`as_str`](Self::as_str) without the
    /// UTF-8 check of an inline name.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(name) => name.as_bytes(),
        }
    }

    /// The labels from left to right.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.as_str().split('.')
    }
}

impl PartialEq for DomainName {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for DomainName {}

impl PartialOrd for DomainName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DomainName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::hash::Hash for DomainName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
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
    match plain_name(trimmed.as_bytes()) {
        Some(name) => Ok(name),
        None => full_name(trimmed),
    }
}

/// Every rule of [`DomainName`], for a name without its trailing dot and
/// not empty.
fn full_name(trimmed: &str) -> Result<DomainName, Invalid> {
    if !trimmed.is_ascii() {
        return to_a_labels(trimmed);
    }
    // One pass checks the LDH rules and notes what the name needs next.
    let seen = check_ascii(trimmed)?;
    if seen.a_label {
        return to_a_labels(trimmed);
    }
    if seen.upper {
        return Ok(DomainName::from_canonical(&trimmed.to_ascii_lowercase()));
    }
    Ok(DomainName::from_canonical(trimmed))
}

/// The common case without the full check: a name of at most
/// [`INLINE_NAME_LEN`] octets (so no label can be too long) of letters,
/// digits, `-` and `.`, that neither begins nor ends with `-` or `.` and has
/// no two of them side by side (no empty label, no hyphen at a label's edge,
/// and no `--`, so no `xn--` label for IDNA to check). Upper case is folded.
/// Anything else — valid or not — is `None` and takes the full check, which
/// gives the exact error: this accepts a subset of what it accepts, with
/// the same result.
fn plain_name(name: &[u8]) -> Option<DomainName> {
    if name.len() > INLINE_NAME_LEN {
        return None;
    }
    // Zero bytes after the name end it for `scan_name`.
    let mut window = [0; NAME_WINDOW];
    window[..name.len()].copy_from_slice(name);
    scan_name(&window).and_then(|(found, len)| (len == name.len()).then_some(found))
}

/// The bytes [`scan_name`] looks at: [`INLINE_NAME_LEN`] and the byte that
/// ends the name, in whole `u64` words.
pub(crate) const NAME_WINDOW: usize = 48;

/// The name at the start of `window`, up to its first byte that is not a
/// letter, digit, `-` or `.`, and its length, when it is a plain name as
/// [`plain_name`] says. The caller checks what ends it. Eight bytes at a time
/// in a `u64` (SWAR): each step classifies eight bytes with a few additions
/// and masks, without a branch per byte.
#[inline]
pub(crate) fn scan_name(window: &[u8; NAME_WINDOW]) -> Option<(DomainName, usize)> {
    let mut out = [0u8; NAME_WINDOW];
    let mut bad = 0u64;
    // The high bit of each byte: the byte before this one was `-` or `.`.
    // The first byte counts as following one: a name may not begin with
    // either.
    let mut carry = 0x80;
    let mut at = 0;
    let len = loop {
        let mut word = [0; 8];
        word.copy_from_slice(window.get(at..at + 8)?);
        let x = u64::from_le_bytes(word);
        let high = x & HIGH;
        let y = x ^ high;
        // `v + k` sets a byte's high bit exactly when that byte is at least
        // 0x80 - k: every byte of `y` is below 0x80, so no carry crosses bytes.
        let ge = |v: u64, c: u8| v.wrapping_add(LOW * u64::from(0x80 - c));
        let folded = y | (LOW * 0x20);
        // `-` `.` `/` and digits are 0x2d to 0x39; `/` alone is 0x2f.
        let (dash, slash, zero) = (ge(y, b'-'), ge(y, b'/'), ge(y, b'0'));
        let mut marks = dash & !slash & HIGH;
        let mut letters = ge(folded, b'a') & !ge(folded, b'{') & HIGH;
        let others = (!((dash & !(slash & !zero) & !ge(y, b':')) | letters) | high) & HIGH;
        if others != 0 {
            // Bytes from the first other one on are not part of the name.
            let end = others.trailing_zeros() / 8;
            let live = (1u64 << (8 * end)) - 1;
            marks &= live;
            letters &= live;
            bad |= marks & ((marks << 8) | carry);
            out[at..at + 8].copy_from_slice(&((x | (letters >> 2)) & live).to_le_bytes());
            break at + end as usize;
        }
        // Two of `-` and `.` side by side, within the word or across words.
        bad |= marks & ((marks << 8) | carry);
        carry = marks >> 56;
        // Letters get 0x20 set (upper to lower); nothing else changes.
        out[at..at + 8].copy_from_slice(&(x | (letters >> 2)).to_le_bytes());
        at += 8;
    };
    // A mark last ends a label with a hyphen, or the name with an empty one.
    if len == 0 || len > INLINE_NAME_LEN || bad != 0 || matches!(out[len - 1], b'-' | b'.') {
        return None;
    }
    let mut bytes = [0; INLINE_NAME_LEN];
    bytes.copy_from_slice(&out[..INLINE_NAME_LEN]);
    // `len` is at most INLINE_NAME_LEN (46).
    Some((DomainName(Repr::Inline { len: len as u8, bytes }), len))
}

/// 0x01 in every byte of a `u64`.
const LOW: u64 = 0x0101_0101_0101_0101;
/// 0x80 in every byte of a `u64`.
const HIGH: u64 = 0x8080_8080_8080_8080;

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
    Ok(DomainName::from_canonical(&ascii))
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
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainName({:?})", self.as_str())
    }
}

impl AsRef<str> for DomainName {
    fn as_ref(&self) -> &str {
        self.as_str()
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

    /// The plain-name shortcut accepts only what the full check accepts,
    /// with the same result, and takes every short lower-case LDH name
    /// without `--`.
    #[test]
    fn plain_name_agrees_with_the_full_check() {
        use proptest::prelude::*;
        let names = proptest::string::string_regex("[a-zA-Z0-9.\\-_*é ]{1,50}").unwrap();
        proptest!(ProptestConfig::with_cases(4000), |(name in names)| {
            let full = full_name(&name).ok();
            if let Some(plain) = plain_name(name.as_bytes()) {
                prop_assert_eq!(Some(&plain), full.as_ref(), "{:?}", name);
                prop_assert_eq!(plain.as_str(), name.to_ascii_lowercase());
            }
        });
        let simple = proptest::string::string_regex("[a-z0-9]([a-z0-9]|[.-][a-z0-9]){0,22}").unwrap();
        proptest!(ProptestConfig::with_cases(2000), |(name in simple)| {
            prop_assert!(plain_name(name.as_bytes()).is_some(), "{:?}", name);
        });
        // Each byte value in each position of a short name.
        for b in 0..=255u8 {
            for at in 0..3 {
                let mut name = *b"ab.";
                name[at] = b;
                let name = [&name[..], b"cd"].concat();
                let Some(plain) = plain_name(&name) else { continue };
                let text = std::str::from_utf8(&name).unwrap();
                assert_eq!(Some(plain), full_name(text).ok(), "{text:?}");
            }
        }
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
