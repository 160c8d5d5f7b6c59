//! The TLSA record (RFC 6698 §2) and what makes one usable for SMTP
//! (RFC 7672 §3.1, RFC 7671 §4, §5).

use std::fmt;
use std::str::FromStr;

use super::x509 as der;
use crate::error::{ParseError, ParseErrorKind, quote};

/// The certificate usage field (RFC 6698 §2.1.1, IANA "TLSA Certificate
/// Usages"). An open registry: values without a name are
/// [`Unassigned`](Self::Unassigned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CertUsage {
    /// PKIX-TA(0): CA constraint. Unusable for SMTP (RFC 7672 §3.1.3).
    PkixTa,
    /// PKIX-EE(1): service certificate constraint. Unusable for SMTP
    /// (RFC 7672 §3.1.3).
    PkixEe,
    /// DANE-TA(2): trust anchor assertion (RFC 7672 §3.1.2).
    DaneTa,
    /// DANE-EE(3): domain-issued certificate (RFC 7672 §3.1.1).
    DaneEe,
    /// A value IANA has not assigned (4–254).
    Unassigned(u8),
    /// PrivCert(255): private use.
    Private,
}

impl From<u8> for CertUsage {
    fn from(value: u8) -> Self {
        match value {
            0 => Self::PkixTa,
            1 => Self::PkixEe,
            2 => Self::DaneTa,
            3 => Self::DaneEe,
            255 => Self::Private,
            n => Self::Unassigned(n),
        }
    }
}

impl From<CertUsage> for u8 {
    fn from(value: CertUsage) -> Self {
        match value {
            CertUsage::PkixTa => 0,
            CertUsage::PkixEe => 1,
            CertUsage::DaneTa => 2,
            CertUsage::DaneEe => 3,
            CertUsage::Private => 255,
            CertUsage::Unassigned(n) => n,
        }
    }
}

/// The selector field (RFC 6698 §2.1.2, IANA "TLSA Selectors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Selector {
    /// Cert(0): the whole DER certificate.
    Full,
    /// SPKI(1): the DER SubjectPublicKeyInfo.
    Spki,
    /// A value IANA has not assigned (2–254).
    Unassigned(u8),
    /// PrivSel(255): private use.
    Private,
}

impl From<u8> for Selector {
    fn from(value: u8) -> Self {
        match value {
            0 => Self::Full,
            1 => Self::Spki,
            255 => Self::Private,
            n => Self::Unassigned(n),
        }
    }
}

impl From<Selector> for u8 {
    fn from(value: Selector) -> Self {
        match value {
            Selector::Full => 0,
            Selector::Spki => 1,
            Selector::Private => 255,
            Selector::Unassigned(n) => n,
        }
    }
}

/// The matching type field (RFC 6698 §2.1.3, IANA "TLSA Matching Types").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MatchingType {
    /// Full(0): the selected content itself.
    Full,
    /// SHA2-256(1): its SHA-256 digest, 32 bytes.
    Sha256,
    /// SHA2-512(2): its SHA-512 digest, 64 bytes.
    Sha512,
    /// A value IANA has not assigned (3–254).
    Unassigned(u8),
    /// PrivMatch(255): private use.
    Private,
}

impl MatchingType {
    /// The digest length in bytes of a digest matching type.
    pub fn digest_len(self) -> Option<usize> {
        match self {
            Self::Sha256 => Some(32),
            Self::Sha512 => Some(64),
            _ => None,
        }
    }
}

impl From<u8> for MatchingType {
    fn from(value: u8) -> Self {
        match value {
            0 => Self::Full,
            1 => Self::Sha256,
            2 => Self::Sha512,
            255 => Self::Private,
            n => Self::Unassigned(n),
        }
    }
}

impl From<MatchingType> for u8 {
    fn from(value: MatchingType) -> Self {
        match value {
            MatchingType::Full => 0,
            MatchingType::Sha256 => 1,
            MatchingType::Sha512 => 2,
            MatchingType::Private => 255,
            MatchingType::Unassigned(n) => n,
        }
    }
}

/// Why a TLSA record cannot be used for SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unusable {
    /// Usage PKIX-TA(0) or PKIX-EE(1): "SMTP client MUST NOT" use them
    /// (RFC 7672 §3.1.3).
    PkixUsage,
    /// A usage other than 0–3.
    UnknownUsage,
    /// A selector other than Cert(0) or SPKI(1).
    UnknownSelector,
    /// A matching type other than Full(0), SHA2-256(1), SHA2-512(2).
    UnknownMatchingType,
    /// A digest whose length is not that of its matching type.
    DigestLength,
    /// Full(0) data that is not a DER certificate (selector 0) or
    /// SubjectPublicKeyInfo (selector 1).
    MalformedData,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PkixUsage => "usages PKIX-TA(0) and PKIX-EE(1) are not used for SMTP (RFC 7672 §3.1.3)",
            Self::UnknownUsage => "unknown certificate usage",
            Self::UnknownSelector => "unknown selector",
            Self::UnknownMatchingType => "unknown matching type",
            Self::DigestLength => "the digest length does not fit the matching type",
            Self::MalformedData => "the full data is not a DER certificate or public key",
        })
    }
}

/// A TLSA record (RFC 6698 §2.1): usage, selector, matching type and the
/// certificate association data.
///
/// ```
/// use smtp_tls_policy::dane::{CertUsage, TlsaRecord};
/// let r = TlsaRecord::parse("3 1 1 0C72AC70B745AC19998811B131D662C9 AC69DBDBE7CB23E5B514B56664C5D3D6").unwrap();
/// assert_eq!(r.usage(), CertUsage::DaneEe);
/// assert!(r.is_usable_for_smtp());
/// assert_eq!(r.to_string(), "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsaRecord {
    usage: CertUsage,
    selector: Selector,
    matching: MatchingType,
    data: Vec<u8>,
}

impl TlsaRecord {
    /// A record from its wire fields (RFC 6698 §2.1).
    pub fn new(usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Self {
        Self { usage: usage.into(), selector: selector.into(), matching: matching.into(), data }
    }

    /// Parses the presentation form (RFC 6698 §2.2): three decimal fields
    /// and the data in hex, any case, white space allowed inside it.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut fields = [0u8; 3];
        let mut rest = text;
        for (i, name) in ["usage", "selector", "matching type"].into_iter().enumerate() {
            let start = rest.len() - rest.trim_start_matches([' ', '\t']).len();
            rest = &rest[start..];
            let end = rest.find([' ', '\t']).unwrap_or(rest.len());
            let at = text.len() - rest.len();
            let token = &rest[..end];
            if token.is_empty() {
                return Err(ParseError::new(ParseErrorKind::MissingField, Some(name), at, "missing"));
            }
            let valid = token.len() <= 3 && token.bytes().all(|b| b.is_ascii_digit());
            fields[i] = valid.then(|| token.parse::<u8>().ok()).flatten().ok_or_else(|| {
                ParseError::new(
                    ParseErrorKind::InvalidNumber,
                    Some(name),
                    at,
                    format!("invalid value {} (expected 0 to 255)", quote(token)),
                )
            })?;
            rest = &rest[end..];
        }
        let data_at = text.len() - rest.len();
        let data = hex(rest).map_err(|e| e.within(None, data_at, "data"))?;
        let [usage, selector, matching] = fields;
        Ok(Self::new(usage, selector, matching, data))
    }

    /// The certificate usage.
    pub fn usage(&self) -> CertUsage {
        self.usage
    }

    /// The selector.
    pub fn selector(&self) -> Selector {
        self.selector
    }

    /// The matching type.
    pub fn matching_type(&self) -> MatchingType {
        self.matching
    }

    /// The certificate association data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Whether an SMTP client may use this record (RFC 7672 §3.1): usage
    /// DANE-TA(2) or DANE-EE(3), selector 0 or 1, matching type 0, 1 or 2,
    /// a digest of the right length, and full data that parses as what
    /// the selector says.
    pub fn is_usable_for_smtp(&self) -> bool {
        self.unusable_reason().is_none()
    }

    /// Why the record is not usable for SMTP, or `None` when it is.
    pub fn unusable_reason(&self) -> Option<Unusable> {
        match self.usage {
            CertUsage::DaneTa | CertUsage::DaneEe => {}
            CertUsage::PkixTa | CertUsage::PkixEe => return Some(Unusable::PkixUsage),
            _ => return Some(Unusable::UnknownUsage),
        }
        if !matches!(self.selector, Selector::Full | Selector::Spki) {
            return Some(Unusable::UnknownSelector);
        }
        match self.matching {
            MatchingType::Full => {
                let parses = match self.selector {
                    Selector::Full => der::parse_certificate(&self.data).is_some(),
                    _ => der::check_spki(&self.data).is_some(),
                };
                (!parses).then_some(Unusable::MalformedData)
            }
            MatchingType::Sha256 | MatchingType::Sha512 => {
                (self.matching.digest_len() != Some(self.data.len())).then_some(Unusable::DigestLength)
            }
            _ => Some(Unusable::UnknownMatchingType),
        }
    }
}

/// Decodes hex with any case and white space between digits.
fn hex(text: &str) -> Result<Vec<u8>, ParseError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high = None;
    for (i, b) in text.bytes().enumerate() {
        let nibble = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            b' ' | b'\t' => continue,
            _ => {
                let c = text[i..].chars().next().unwrap_or_default();
                return Err(ParseError::new(ParseErrorKind::InvalidHex, None, i, format!("{c:?} is not a hex digit")));
            }
        };
        match high.take() {
            None => high = Some(nibble),
            Some(h) => out.push(h << 4 | nibble),
        }
    }
    if high.is_some() {
        return Err(ParseError::new(ParseErrorKind::InvalidHex, None, text.len(), "odd number of hex digits"));
    }
    if out.is_empty() {
        return Err(ParseError::new(ParseErrorKind::MissingField, None, text.len(), "missing"));
    }
    Ok(out)
}

impl FromStr for TlsaRecord {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for TlsaRecord {
    /// `usage selector matching hex`, the hex in lower case without spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} ", u8::from(self.usage), u8::from(self.selector), u8::from(self.matching))?;
        for b in &self.data {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IANA registries are open: every u8 converts both ways (RFC 6698 §7).
    #[test]
    fn every_u8_round_trips() {
        for n in 0..=u8::MAX {
            assert_eq!(u8::from(CertUsage::from(n)), n);
            assert_eq!(u8::from(Selector::from(n)), n);
            assert_eq!(u8::from(MatchingType::from(n)), n);
            let unassigned_usage = matches!(CertUsage::from(n), CertUsage::Unassigned(_));
            assert_eq!(unassigned_usage, (4..=254).contains(&n), "{n}");
            assert_eq!(matches!(Selector::from(n), Selector::Unassigned(_)), (2..=254).contains(&n), "{n}");
            assert_eq!(matches!(MatchingType::from(n), MatchingType::Unassigned(_)), (3..=254).contains(&n), "{n}");
        }
        assert_eq!(CertUsage::from(255), CertUsage::Private);
        assert_eq!(Selector::from(1), Selector::Spki);
        assert_eq!(MatchingType::from(2), MatchingType::Sha512);
    }

    /// RFC 6698 §2.2 presentation format.
    #[test]
    fn rfc6698_2_2_presentation() {
        let r = TlsaRecord::parse("  2\t0 1  AB cd\tEf 01 23 45 67 89 AB CD EF 01 23 45 67 89 AB CD EF 01 23 45 67 89 AB CD EF 01 23 45 67 89 ").unwrap();
        assert_eq!((u8::from(r.usage()), u8::from(r.selector()), u8::from(r.matching_type())), (2, 0, 1));
        assert_eq!(r.data().len(), 32);
        assert_eq!(&r.data()[..3], &[0xab, 0xcd, 0xef]);
        assert_eq!(TlsaRecord::parse(&r.to_string()), Ok(r));
        assert_eq!(TlsaRecord::parse("255 255 255 00").unwrap().to_string(), "255 255 255 00");

        use ParseErrorKind::*;
        let bad: &[(&str, ParseErrorKind, usize, &str)] = &[
            ("", MissingField, 0, "usage: missing"),
            ("3", MissingField, 1, "selector: missing"),
            ("3 1", MissingField, 3, "matching type: missing"),
            ("3 1 1", MissingField, 5, "data: missing"),
            ("3 1 1   ", MissingField, 8, "data: missing"),
            ("256 1 1 00", InvalidNumber, 0, r#"usage: invalid value "256" (expected 0 to 255)"#),
            ("3 -1 1 00", InvalidNumber, 2, r#"selector: invalid value "-1" (expected 0 to 255)"#),
            ("3 1 x 00", InvalidNumber, 4, r#"matching type: invalid value "x" (expected 0 to 255)"#),
            ("3 1 0001 00", InvalidNumber, 4, r#"matching type: invalid value "0001" (expected 0 to 255)"#),
            ("3 1 1 abc", InvalidHex, 9, "data: odd number of hex digits"),
            ("3 1 1 ab:cd", InvalidHex, 8, "data: ':' is not a hex digit"),
            ("3 1 1 0xab", InvalidHex, 7, "data: 'x' is not a hex digit"),
            ("3 1 1 ab\ncd", InvalidHex, 8, r"data: '\n' is not a hex digit"),
        ];
        for &(text, kind, offset, message) in bad {
            let err = TlsaRecord::parse(text).expect_err(text);
            assert_eq!((err.kind(), err.offset(), err.to_string().as_str()), (kind, offset, message), "{text:?}");
        }
    }

    /// RFC 7672 §3.1: which records an SMTP client may use.
    #[test]
    fn rfc7672_3_1_usability() {
        let sha256 = vec![0; 32];
        let sha512 = vec![0; 64];
        /// usage, selector, matching type, data, why unusable.
        type Case<'a> = (u8, u8, u8, &'a [u8], Option<Unusable>);
        let cases: &[Case<'_>] = &[
            (3, 1, 1, &sha256, None),
            (2, 0, 1, &sha256, None),
            (3, 0, 2, &sha512, None),
            (2, 1, 2, &sha512, None),
            (0, 0, 1, &sha256, Some(Unusable::PkixUsage)),
            (1, 1, 1, &sha256, Some(Unusable::PkixUsage)),
            (4, 1, 1, &sha256, Some(Unusable::UnknownUsage)),
            (255, 1, 1, &sha256, Some(Unusable::UnknownUsage)),
            (3, 2, 1, &sha256, Some(Unusable::UnknownSelector)),
            (3, 255, 1, &sha256, Some(Unusable::UnknownSelector)),
            (3, 1, 3, &sha256, Some(Unusable::UnknownMatchingType)),
            (3, 1, 255, &sha256, Some(Unusable::UnknownMatchingType)),
            (3, 1, 1, &sha512, Some(Unusable::DigestLength)),
            (3, 1, 2, &sha256, Some(Unusable::DigestLength)),
            (3, 1, 1, &[0; 31], Some(Unusable::DigestLength)),
            (3, 1, 0, &sha256, Some(Unusable::MalformedData)),
            (2, 0, 0, &[0x30, 0x00], Some(Unusable::MalformedData)),
        ];
        for &(u, s, m, data, want) in cases {
            let r = TlsaRecord::new(u, s, m, data.to_vec());
            assert_eq!(r.unusable_reason(), want, "{u} {s} {m}");
            assert_eq!(r.is_usable_for_smtp(), want.is_none());
        }
        assert_eq!(
            Unusable::PkixUsage.to_string(),
            "usages PKIX-TA(0) and PKIX-EE(1) are not used for SMTP (RFC 7672 §3.1.3)"
        );
    }
}
