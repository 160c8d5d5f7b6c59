//! Domain names as the crate holds them: lower-case A-labels, no trailing
//! dot, within the RFC 1035 limits.
//!
//! Every domain the crate compares — a policy domain, an MX host, the base
//! of an MX pattern — goes through [`DomainName`], so that comparisons are
//! plain byte comparisons of one canonical form.

use std::fmt;
use std::str::FromStr;

use wide::i8x16;

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
    /// No name yet, for [`scan_name_into`] to fill in place.
    pub(crate) const EMPTY_INLINE: DomainName = DomainName(Repr::Inline { len: 0, bytes: [0; INLINE_NAME_LEN] });

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
    // Zero bytes after the name end it for `scan_name_into`.
    let mut window = [0; NAME_WINDOW];
    window[..name.len()].copy_from_slice(name);
    let mut found = DomainName::EMPTY_INLINE;
    (scan_name_into(&window, &mut found)? == name.len()).then_some(found)
}

/// The bytes [`scan_name_into`] looks at: [`INLINE_NAME_LEN`] and the byte that
/// ends the name, in whole `u64` words.
pub(crate) const NAME_WINDOW: usize = 48;

/// The name at the start of `window`, up to its first byte that is not a
/// letter, digit, `-` or `.`, written into `name` (which must be
/// [`DomainName::EMPTY_INLINE`]: a caller may fill one already in place in
/// a vector), and its length — when it is a plain name as
/// [`plain_name`] says; otherwise `None`, and `name` holds no valid name.
/// The caller checks what ends it.
///
/// Sixteen bytes at a time with the portable vectors of the `wide` crate
/// (SSE2 on x86-64, NEON on AArch64, plain arrays elsewhere): each step
/// classifies sixteen bytes with a few vector operations and turns them
/// into bit masks, so the label rules are a few operations on integers.
/// The lane numbers of the three chunks of a window.
const INDEX: [i8x16; 3] = {
    let mut t = [[0i8; 16]; 3];
    let mut i = 0;
    while i < 16 {
        t[0][i] = i as i8;
        t[1][i] = 16 + i as i8;
        t[2][i] = TAIL as i8 + i as i8;
        i += 1;
    }
    [i8x16::new(t[0]), i8x16::new(t[1]), i8x16::new(t[2])]
};

/// Where the last 16 bytes of an inline name start.
const TAIL: usize = INLINE_NAME_LEN - 16;

/// Lanes of `v` in `lo..=hi`: `v + (0x80 - lo)` puts that range at the
/// bottom of the signed bytes, so one signed comparison tells.
#[inline]
fn within(v: i8x16, lo: u8, hi: u8) -> i8x16 {
    let t = v + i8x16::splat(0x80u8.wrapping_sub(lo) as i8);
    t.simd_lt(i8x16::splat((i16::from(i8::MIN) + i16::from(hi - lo) + 1) as i8))
}

/// The sixteen bytes of `window` at `at`, ASCII upper case folded to lower,
/// and whether each is a letter.
#[inline]
fn lower16(window: &[u8; NAME_WINDOW], at: usize) -> (i8x16, i8x16) {
    let mut lanes = [0i8; 16];
    for (lane, &b) in lanes.iter_mut().zip(&window[at..at + 16]) {
        *lane = b as i8;
    }
    let v = i8x16::new(lanes);
    // `b | 0x20` is a lower-case letter exactly when `b` is a letter.
    let letters = within(v | i8x16::splat(0x20), b'a', b'z');
    // Letters get 0x20 set (upper to lower); nothing else changes.
    (v | (letters & i8x16::splat(0x20)), letters)
}

#[inline]
pub(crate) fn scan_name_into(window: &[u8; NAME_WINDOW], name: &mut DomainName) -> Option<usize> {
    let Repr::Inline { len: name_len, bytes } = &mut name.0 else {
        return None;
    };
    // Lane `i` set: byte `i` of the window is a name byte / `-` or `.`.
    let (mut valid, mut marks) = (0u64, 0u64);
    let mut lower = [i8x16::ZERO; 2];
    for chunk in 0..NAME_WINDOW / 16 {
        let (folded, letters) = lower16(window, 16 * chunk);
        // Letters are classified already; `-`, `.` and digits are the same
        // folded.
        let mark = within(folded, b'-', b'.');
        let ok = letters | mark | within(folded, b'0', b'9');
        if let Some(out) = lower.get_mut(chunk) {
            *out = folded;
        }
        let shift = 16 * chunk;
        valid |= u64::from(ok.to_bitmask()) << shift;
        marks |= u64::from(mark.to_bitmask()) << shift;
        if valid != (1u64 << (shift + 16)) - 1 {
            break;
        }
    }
    // The name ends at the first byte that is not a name byte.
    let len = (!valid).trailing_zeros() as usize;
    if len == 0 || len > INLINE_NAME_LEN {
        return None;
    }
    let marks = marks & ((1u64 << len) - 1);
    // Two of `-` and `.` side by side, or one first (as if after a mark), or
    // one last: an empty label or a hyphen at a label's edge.
    if marks & ((marks << 1) | 1 | (1 << (len - 1))) != 0 {
        return None;
    }
    // The name's bytes with 16-byte stores (no copy of a computed length),
    // lanes at and after `len` cleared; `bytes` is all zeros before.
    let keep = |v: i8x16, index: i8x16| (v & index.simd_lt(i8x16::splat(len as i8))).to_array().map(|b| b as u8);
    bytes[..16].copy_from_slice(&keep(lower[0], INDEX[0]));
    if len > 16 {
        bytes[16..32].copy_from_slice(&keep(lower[1], INDEX[1]));
    }
    if len > 32 {
        bytes[TAIL..].copy_from_slice(&keep(lower16(window, TAIL).0, INDEX[2]));
    }
    // At most INLINE_NAME_LEN (46).
    *name_len = len as u8;
    Some(len)
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
