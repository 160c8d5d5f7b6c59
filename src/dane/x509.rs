//! The little of X.509 (RFC 5280 §4.1) that DANE needs and rustls-webpki
//! does not expose, read with `x509-parser`: the SubjectPublicKeyInfo of
//! any certificate (v1 included, for DANE-EE), and for a DANE-TA anchor
//! its validity, whether it is a CA, and its path length constraint; the
//! subject CN and whether a DNS SAN is present, for the verifier.
//!
//! Stricter than `x509-parser` alone where the crate documents it: DER
//! only (x509-parser reads DER; BER's indefinite lengths are refused), no
//! data after the certificate, no extensions before v3; a basicConstraints
//! or subjectAltName extension that appears twice or does not parse whole
//! makes the certificate malformed (RFC 5280 §4.2: "A certificate MUST NOT
//! include more than one instance of a particular extension"). Other
//! extensions are not parsed (nothing here reads them).

use x509_parser::asn1_rs::{Class, Header, Length, Tag};
use x509_parser::certificate::{TbsCertificate, X509CertificateParser};
use x509_parser::der_parser::Oid;
use x509_parser::extensions::{BasicConstraints, GeneralName, SubjectAlternativeName};
use x509_parser::nom::Parser;
use x509_parser::oid_registry::{OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_SUBJECT_ALT_NAME};
use x509_parser::prelude::FromDer;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Version};

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
    /// The last commonName of the subject (RFC 5280 §4.1.2.6) that is a
    /// string (UTF8String, PrintableString, TeletexString, IA5String), as
    /// its raw bytes.
    pub(crate) subject_cn: Option<&'a [u8]>,
    /// Whether a subjectAltName extension (RFC 5280 §4.2.1.6) carries a
    /// dNSName.
    pub(crate) dns_san: bool,
}

/// Parses a DER certificate. `None` when it is not one.
pub(crate) fn parse_certificate(der: &[u8]) -> Option<Certificate<'_>> {
    well_formed(der, 0)?;
    // Extensions are parsed here only where read (two of them), not all.
    let (rest, cert) = X509CertificateParser::new().with_deep_parse_extensions(false).parse(der).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let tbs = &cert.tbs_certificate;
    let version = match tbs.version {
        X509Version::V1 => 1,
        X509Version::V2 => 2,
        X509Version::V3 => 3,
        _ => return None,
    };
    if version != 3 && !tbs.extensions().is_empty() {
        return None;
    }
    check_spki(tbs.subject_pki.raw)?;
    whole_name(tbs.issuer.as_raw())?;
    whole_name(tbs.subject.as_raw())?;
    let basic_constraints = match extension(tbs, &OID_X509_EXT_BASIC_CONSTRAINTS)? {
        Some(value) => {
            let bc = whole(BasicConstraints::from_der(value))?;
            Some((bc.ca, bc.path_len_constraint.map(u64::from)))
        }
        None => None,
    };
    let dns_san = match extension(tbs, &OID_X509_EXT_SUBJECT_ALT_NAME)? {
        Some(value) => {
            let san = whole(SubjectAlternativeName::from_der(value))?;
            san.general_names.iter().any(|n| matches!(n, GeneralName::DNSName(_)))
        }
        None => false,
    };
    let subject_cn = tbs
        .subject
        .iter_common_name()
        .filter(|cn| {
            matches!(
                cn.attr_value().tag(),
                Tag::Utf8String | Tag::PrintableString | Tag::TeletexString | Tag::Ia5String
            )
        })
        .last()
        .map(|cn| cn.attr_value().data);
    // The SPKI borrows `der` (x509-parser keeps slices of its input).
    let spki = tbs.subject_pki.raw;
    Some(Certificate {
        spki,
        version,
        not_before: tbs.validity.not_before.timestamp(),
        not_after: tbs.validity.not_after.timestamp(),
        self_issued: tbs.issuer.as_raw() == tbs.subject.as_raw(),
        basic_constraints,
        subject_cn,
        dns_san,
    })
}

/// The SubjectPublicKeyInfo TLV of a well-formed certificate, without
/// reading its other fields: what DANE-EE(3) with selector 1 and the
/// handshake signature need (RFC 7671 §5.1: for DANE-EE the certificate's
/// other fields are ignored), at a fraction of a full parse's cost. What
/// is read is strict DER: the certificate is one SEQUENCE with nothing
/// after it, its TBSCertificate begins with the fields RFC 5280 §4.1 puts
/// before the key — `[0]` version (optional), serial INTEGER, then four
/// SEQUENCEs — each with a definite minimal length, and the key is checked
/// as [`check_spki`] does; the fields after the key are not read.
pub(crate) fn spki_of(der: &[u8]) -> Option<&[u8]> {
    let (content, outer) = Header::from_der(der).ok()?;
    let len = outer.length().definite().ok()?;
    if outer.tag() != Tag::Sequence || content.len() != len {
        return None;
    }
    let (tbs_content, tbs) = Header::from_der(content).ok()?;
    if tbs.tag() != Tag::Sequence {
        return None;
    }
    let mut fields = tbs_content.get(..tbs.length().definite().ok()?)?;
    let mut expect = |class: Class, tag: Tag, optional: bool| -> Option<Option<&[u8]>> {
        let (value, header) = Header::from_der(fields).ok()?;
        if header.class() != class || header.tag() != tag {
            return if optional { Some(None) } else { None };
        }
        let len = header.length().definite().ok()?;
        if len > value.len() {
            return None; // longer than what is left
        }
        let (tlv, rest) = fields.split_at(fields.len() - value.len() + len);
        fields = rest;
        Some(Some(tlv))
    };
    expect(Class::ContextSpecific, Tag(0), true)?;
    expect(Class::Universal, Tag::Integer, false)??;
    for _ in 0..4 {
        expect(Class::Universal, Tag::Sequence, false)??;
    }
    let spki = expect(Class::Universal, Tag::Sequence, false)??;
    spki_shape(spki)?;
    Some(spki)
}

/// The value of the extension `oid`: `Some(None)` when absent, `None` when
/// it appears twice (RFC 5280 §4.2).
fn extension<'a>(tbs: &TbsCertificate<'a>, oid: &Oid<'_>) -> Option<Option<&'a [u8]>> {
    let mut found = tbs.extensions().iter().filter(|e| e.oid == *oid);
    let first = found.next().map(|e| e.value);
    found.next().is_none().then_some(first)
}

/// A parse that used its whole input.
fn whole<T, E>(parsed: Result<(&[u8], T), E>) -> Option<T> {
    parsed.ok().filter(|(rest, _)| rest.is_empty()).map(|(_, value)| value)
}

/// The deepest nesting of a certificate's TLVs read (real ones go to 8).
const MAX_DEPTH: usize = 32;

/// `input` is a sequence of whole DER TLVs (definite, minimal lengths, as
/// asn1-rs's DER header reader requires; SEQUENCE and SET constructed,
/// other universal types primitive) whose constructed values are the
/// same, down to primitive values: x509-parser stops at the first part of
/// a list that does not parse and keeps what it read, and reads a
/// primitive-encoded SEQUENCE, so a certificate is first checked to be
/// well-formed as a whole.
fn well_formed(mut input: &[u8], depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    while !input.is_empty() {
        let (rest, header) = Header::from_der(input).ok()?;
        let Length::Definite(len) = header.length() else { return None };
        let (value, after) = (rest.get(..len)?, rest.get(len..)?);
        // X.690 §10.2 (DER): SEQUENCE and SET are constructed, every other
        // universal type (strings included) primitive.
        if header.class() == Class::Universal
            && header.is_constructed() != matches!(header.tag(), Tag::Sequence | Tag::Set)
        {
            return None;
        }
        if header.is_constructed() {
            well_formed(value, depth + 1)?;
        }
        input = after;
    }
    Some(())
}

/// x509-parser reads a Name's RDNs until one does not parse and keeps
/// what it read (`raw` ends there): the Name must have been read whole.
fn whole_name(raw: &[u8]) -> Option<()> {
    let (content, header) = Header::from_der(raw).ok()?;
    let Length::Definite(len) = header.length() else { return None };
    (content.len() == len).then_some(())
}

/// Checks that `spki` is one SubjectPublicKeyInfo (RFC 5280 §4.1.2.7)
/// with nothing after it.
pub(crate) fn check_spki(spki: &[u8]) -> Option<()> {
    well_formed(spki, 0)?;
    let (rest, _) = SubjectPublicKeyInfo::from_der(spki).ok()?;
    if !rest.is_empty() {
        return None;
    }
    spki_shape(spki)
}

/// `SEQUENCE { SEQUENCE, BIT STRING … }` with universal tags (x509-parser
/// reads the key's BIT STRING whatever its tag's class), nothing after.
/// All the DANE-EE path needs of the key's structure: its bytes are hashed
/// against the TLSA record, and the handshake signature parses the key.
fn spki_shape(spki: &[u8]) -> Option<()> {
    let (inner, outer) = Header::from_der(spki).ok()?;
    let (after_algorithm, algorithm) = Header::from_der(inner).ok()?;
    let key = after_algorithm.get(algorithm.length().definite().ok()?..)?;
    let (_, key) = Header::from_der(key).ok()?;
    let universal = |h: &Header<'_>, tag| h.class() == Class::Universal && h.tag() == tag;
    let whole = inner.len() == outer.length().definite().ok()?;
    (whole
        && universal(&outer, Tag::Sequence)
        && universal(&algorithm, Tag::Sequence)
        && universal(&key, Tag::BitString))
    .then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC_SAN: &[u8] = include_bytes!("../../tests/data/certs/ec-san.der");
    const V1: &[u8] = include_bytes!("../../tests/data/certs/v1.der");
    const CA: &[u8] = include_bytes!("../../tests/data/certs/rsa-ca-pathlen1.der");

    #[test]
    fn reads_what_dane_needs() {
        let c = parse_certificate(EC_SAN).unwrap();
        assert_eq!((c.version, c.dns_san, c.basic_constraints), (3, true, Some((true, None))));
        assert_eq!(c.subject_cn, Some(&b"mx.example.com"[..]));
        assert!(c.self_issued && c.not_before < c.not_after);
        assert!(check_spki(c.spki).is_some());
        for der in [EC_SAN, V1, CA] {
            assert_eq!(spki_of(der), parse_certificate(der).map(|c| c.spki));
        }
        assert_eq!(spki_of(&EC_SAN[..EC_SAN.len() - 1]), None);
        // A field whose length runs past the TBSCertificate (found by the
        // verify_chain fuzz target: this panicked).
        let serial = EC_SAN.windows(3).position(|w| w == [0xa0, 0x03, 0x02]).unwrap() + 5;
        assert_eq!(EC_SAN[serial], 0x02, "the serial INTEGER");
        let mut long = EC_SAN.to_vec();
        long[serial + 1] = 0x82; // the next two bytes make a length of 394
        assert_eq!(spki_of(&long), None);
        assert!(parse_certificate(&long).is_none());
        // X.509 v1 (DANE-EE): no extensions, still read.
        let v1 = parse_certificate(V1).unwrap();
        assert_eq!((v1.version, v1.dns_san, v1.basic_constraints), (1, false, None));
        let ca = parse_certificate(CA).unwrap();
        assert_eq!(ca.basic_constraints, Some((true, Some(1))));
    }

    /// The strictness the crate documents, where x509-parser alone allows
    /// less (found by the differential fuzz target).
    #[test]
    fn stricter_than_x509_parser_alone() {
        let mut trailing = EC_SAN.to_vec();
        trailing.push(0);
        assert!(parse_certificate(&trailing).is_none(), "data after the certificate");
        // BER's indefinite length.
        let mut indefinite = EC_SAN.to_vec();
        indefinite.splice(1..4, [0x80]);
        indefinite.extend([0, 0]);
        assert!(parse_certificate(&indefinite).is_none(), "indefinite length");
        // The key's BIT STRING with a context-specific tag.
        let spki = parse_certificate(EC_SAN).unwrap().spki.to_vec();
        // SEQUENCE (30 59) { AlgorithmIdentifier (30 L …), BIT STRING (03 …) }
        let key_at = 4 + usize::from(spki[3]);
        assert_eq!(spki[key_at], 0x03);
        let mut wrong = spki.clone();
        wrong[key_at] = 0x83;
        assert!(check_spki(&spki).is_some());
        assert!(check_spki(&wrong).is_none(), "a [3] where the BIT STRING must be");
        let mut primitive = spki.clone();
        primitive[0] = 0x10;
        assert!(check_spki(&primitive).is_none(), "a primitive SEQUENCE");
        // A subject whose RDNs do not all parse.
        let subject = EC_SAN.windows(5).position(|w| w == [0x31, 0x17, 0x30, 0x15, 0x06]).unwrap();
        let mut broken = EC_SAN.to_vec();
        broken[subject] = 0x00;
        assert!(parse_certificate(&broken).is_none(), "a Name read only in part");
    }
}
