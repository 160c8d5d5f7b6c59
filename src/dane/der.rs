//! The little of X.509 (RFC 5280 §4.1) that DANE needs and rustls-webpki
//! does not expose: the SubjectPublicKeyInfo of any certificate (v1
//! included, for DANE-EE), and for a DANE-TA anchor its validity, whether
//! it is a CA, and its path length constraint.
//!
//! A strict reader of definite-length DER: every length is checked against
//! what remains, so no input can make it read out of bounds or loop.

/// One certificate, as far as DANE reads it. Borrows the DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Certificate<'a> {
    /// The whole SubjectPublicKeyInfo TLV (RFC 6698 §2.1.2 selector 1).
    pub(crate) spki: &'a [u8],
    /// 1 for v1, 2 for v2, 3 for v3.
    pub(crate) version: u8,
    /// notBefore and notAfter, seconds since the Unix epoch.
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    /// The issuer and subject Names are byte-identical.
    pub(crate) self_issued: bool,
    /// The basicConstraints extension (RFC 5280 §4.2.1.9), if present:
    /// `cA` and `pathLenConstraint`.
    pub(crate) basic_constraints: Option<(bool, Option<u64>)>,
    /// The last commonName of the subject (RFC 5280 §4.1.2.6), as its raw
    /// string bytes, when it is a string type.
    pub(crate) subject_cn: Option<&'a [u8]>,
    /// Whether a subjectAltName extension (RFC 5280 §4.2.1.6) carries a
    /// dNSName.
    pub(crate) dns_san: bool,
}

/// What the extensions of a certificate say, as far as read here.
#[derive(Default)]
struct Extensions {
    basic_constraints: Option<(bool, Option<u64>)>,
    dns_san: bool,
}

/// DER tags used here.
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BOOLEAN: u8 = 0x01;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const BIT_STRING: u8 = 0x03;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION: u8 = 0xa0;
const EXTENSIONS: u8 = 0xa3;
/// id-ce-basicConstraints, 2.5.29.19.
const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
/// id-ce-subjectAltName, 2.5.29.17.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// id-at-commonName, 2.5.4.3.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const SET: u8 = 0x31;
/// GeneralName `dNSName [2] IA5String`.
const DNS_NAME: u8 = 0x82;

/// Reads one TLV from the front of `input`: (tag, value, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-byte tags do not occur in the fields read here
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None; // indefinite, or longer than any certificate
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if len > rest.len() {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Reads a TLV that must carry `tag`.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match tlv(input)? {
        (t, value, rest) if t == tag => Some((value, rest)),
        _ => None,
    }
}

/// Reads a TLV that must carry `tag`, returning the whole TLV.
fn expect_whole(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (_, rest) = expect(input, tag)?;
    Some((&input[..input.len() - rest.len()], rest))
}

/// Parses a DER certificate. `None` when it is not one.
pub(crate) fn parse_certificate(der: &[u8]) -> Option<Certificate<'_>> {
    let (cert, trailing) = expect(der, SEQUENCE)?;
    if !trailing.is_empty() {
        return None;
    }
    let (tbs, rest) = expect(cert, SEQUENCE)?;
    let (_signature_algorithm, rest) = expect(rest, SEQUENCE)?;
    let (_signature, rest) = expect(rest, BIT_STRING)?;
    if !rest.is_empty() {
        return None;
    }
    let (version, rest) = match expect(tbs, VERSION) {
        Some((explicit, rest)) => {
            let (v, after) = expect(explicit, INTEGER)?;
            match (v, after.is_empty()) {
                ([n @ 0..=2], true) => (n + 1, rest),
                _ => return None,
            }
        }
        None => (1, tbs),
    };
    let (_serial, rest) = expect(rest, INTEGER)?;
    let (_signature, rest) = expect(rest, SEQUENCE)?;
    let (issuer, rest) = expect_whole(rest, SEQUENCE)?;
    let (validity, rest) = expect(rest, SEQUENCE)?;
    let (subject, rest) = expect_whole(rest, SEQUENCE)?;
    let (spki, mut rest) = expect_whole(rest, SEQUENCE)?;
    check_spki(spki)?;
    let (not_before, validity) = time(validity)?;
    let (not_after, validity) = time(validity)?;
    if !validity.is_empty() {
        return None;
    }
    let mut extensions = Extensions::default();
    while let Some((tag, value, after)) = tlv(rest) {
        if tag == EXTENSIONS {
            if version != 3 {
                return None;
            }
            extensions = read_extensions(value)?;
        }
        rest = after;
    }
    if !rest.is_empty() {
        return None;
    }
    Some(Certificate {
        spki,
        version,
        not_before,
        not_after,
        self_issued: issuer == subject,
        basic_constraints: extensions.basic_constraints,
        subject_cn: common_name(subject)?,
        dns_san: extensions.dns_san,
    })
}

/// The last commonName of a Name (`SEQUENCE OF SET OF
/// AttributeTypeAndValue`). `Some(None)` when there is none (or it is not a
/// string), `None` when the Name is malformed.
fn common_name(name: &[u8]) -> Option<Option<&[u8]>> {
    let (mut rdns, _) = expect(name, SEQUENCE)?;
    let mut found = None;
    while !rdns.is_empty() {
        let (mut set, rest) = expect(rdns, SET)?;
        rdns = rest;
        while !set.is_empty() {
            let (attribute, rest) = expect(set, SEQUENCE)?;
            set = rest;
            let (oid, value) = expect(attribute, OID)?;
            let (tag, text, _) = tlv(value)?;
            // UTF8String, PrintableString, TeletexString, IA5String.
            if oid == COMMON_NAME && matches!(tag, 0x0c | 0x13 | 0x14 | 0x16) {
                found = Some(text);
            }
        }
    }
    Some(found)
}

/// Checks that `spki` is `SEQUENCE { AlgorithmIdentifier, BIT STRING }`
/// with nothing else (RFC 5280 §4.1.2.7).
pub(crate) fn check_spki(spki: &[u8]) -> Option<()> {
    let (inner, trailing) = expect(spki, SEQUENCE)?;
    let (_algorithm, rest) = expect(inner, SEQUENCE)?;
    let (_key, rest) = expect(rest, BIT_STRING)?;
    (trailing.is_empty() && rest.is_empty()).then_some(())
}

/// Reads basicConstraints and whether subjectAltName has a dNSName from an
/// `[3] EXPLICIT Extensions`; `None` when the extensions are malformed.
fn read_extensions(explicit: &[u8]) -> Option<Extensions> {
    let (mut list, trailing) = expect(explicit, SEQUENCE)?;
    if !trailing.is_empty() {
        return None;
    }
    let mut found = Extensions::default();
    let mut seen_bc = false;
    while !list.is_empty() {
        let (extension, rest) = expect(list, SEQUENCE)?;
        list = rest;
        let (oid, mut fields) = expect(extension, OID)?;
        if let Some((_critical, rest)) = expect(fields, BOOLEAN) {
            fields = rest;
        }
        let (value, trailing) = expect(fields, OCTET_STRING)?;
        if !trailing.is_empty() {
            return None;
        }
        if oid == BASIC_CONSTRAINTS {
            if seen_bc {
                return None; // RFC 5280 §4.2: at most one instance of an extension
            }
            seen_bc = true;
            found.basic_constraints = Some(basic_constraints(value)?);
        } else if oid == SUBJECT_ALT_NAME {
            let (mut names, _) = expect(value, SEQUENCE)?;
            while let Some((tag, _, rest)) = tlv(names) {
                found.dns_san |= tag == DNS_NAME;
                names = rest;
            }
        }
    }
    Some(found)
}

/// `BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE,
/// pathLenConstraint INTEGER (0..MAX) OPTIONAL }`.
fn basic_constraints(value: &[u8]) -> Option<(bool, Option<u64>)> {
    let (mut inner, trailing) = expect(value, SEQUENCE)?;
    if !trailing.is_empty() {
        return None;
    }
    let mut ca = false;
    if let Some((flag, rest)) = expect(inner, BOOLEAN) {
        ca = matches!(flag, [0xff]);
        inner = rest;
    }
    let mut path_len = None;
    if let Some((n, rest)) = expect(inner, INTEGER) {
        if n.is_empty() || n.len() > 8 || n[0] & 0x80 != 0 {
            return None;
        }
        path_len = Some(n.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)));
        inner = rest;
    }
    inner.is_empty().then_some((ca, path_len))
}

/// Reads a UTCTime or GeneralizedTime (RFC 5280 §4.1.2.5) in its DER form,
/// `YYMMDDHHMMSSZ` or `YYYYMMDDHHMMSSZ`, as seconds since the epoch.
fn time(input: &[u8]) -> Option<(i64, &[u8])> {
    let (tag, value, rest) = tlv(input)?;
    let (year, digits) = match (tag, value.len()) {
        (UTC_TIME, 13) => {
            let yy = number(&value[..2])?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &value[2..])
        }
        (GENERALIZED_TIME, 15) => (number(&value[..4])?, &value[4..]),
        _ => return None,
    };
    if digits[10] != b'Z' {
        return None;
    }
    let month = number(&digits[0..2])?;
    let day = number(&digits[2..4])?;
    let (hour, minute, second) = (number(&digits[4..6])?, number(&digits[6..8])?, number(&digits[8..10])?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3_600 + minute * 60 + second, rest))
}

/// ASCII decimal digits as a number.
fn number(digits: &[u8]) -> Option<i64> {
    digits.iter().try_fold(0i64, |acc, &d| d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0')))
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard
/// Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 28), 20_785);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn times() {
        let utc = b"\x17\x0d261128073700Z";
        assert_eq!(time(utc), Some((20_785 * 86_400 + 7 * 3_600 + 37 * 60, &[][..])));
        let generalized = b"\x18\x0f20500101000000Z";
        assert_eq!(time(generalized).map(|t| t.0), Some(days_from_civil(2050, 1, 1) * 86_400));
        // UTCTime years 50-99 are 1950-1999 (RFC 5280 §4.1.2.5.1).
        assert_eq!(time(b"\x17\x0d500101000000Z").map(|t| t.0), Some(days_from_civil(1950, 1, 1) * 86_400));
        for bad in
            [&b"\x17\x0d261328073700Z"[..], b"\x17\x0d2611280737000", b"\x17\x0c26112807370Z", b"\x18\x0d261128073700Z"]
        {
            assert_eq!(time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lengths_never_overrun() {
        assert_eq!(tlv(&[0x30, 0x82, 0xff, 0xff, 0x00]), None);
        assert_eq!(tlv(&[0x30, 0x80]), None);
        assert_eq!(tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(tlv(&[0x1f, 0x01, 0x00]), None);
        assert_eq!(tlv(&[0x30, 0x81, 0x01, 0xaa, 0xbb]), Some((0x30, &[0xaa][..], &[0xbb][..])));
        assert_eq!(parse_certificate(&[]), None);
        assert_eq!(parse_certificate(&[0x30, 0x00]), None);
    }

    #[test]
    fn basic_constraints_forms() {
        // SEQUENCE {} : not a CA.
        assert_eq!(basic_constraints(&[0x30, 0x00]), Some((false, None)));
        // SEQUENCE { TRUE, 0 }.
        assert_eq!(basic_constraints(&[0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00]), Some((true, Some(0))));
        // Negative path length.
        assert_eq!(basic_constraints(&[0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x80]), None);
    }
}
