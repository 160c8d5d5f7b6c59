//! DANE chain verification (RFC 7672 §3.1, §3.2; RFC 7671 §5, §9) against
//! certificate chains that rcgen builds at test time.

#[path = "../examples/support/mod.rs"]
mod support;

use std::time::Duration;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, date_time_ymd,
};
use ring::digest::{SHA256, SHA512, digest};
use rustls_pki_types::{CertificateDer, UnixTime};
use smtp_tls_policy::dane::{DaneFailure, DaneOutcome, PathProblem, TlsaRecord, verify_chain};
use smtp_tls_policy::report::ResultType;
use support::x509::v1_certificate;

const MX: &str = "mx.example.net";

/// 2026-11-28, inside rcgen's default validity (1975–4096).
fn now() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(20_785 * 86_400))
}

/// A certificate with its key and parameters, able to issue others.
struct Node {
    params: CertificateParams,
    key: KeyPair,
    cert: Certificate,
}

impl Node {
    fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    fn spki(&self) -> Vec<u8> {
        self.key.subject_public_key_info()
    }
}

fn params(cn: &str, sans: &[&str], ca: IsCa, edit: impl FnOnce(&mut CertificateParams)) -> CertificateParams {
    let mut p = CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    if matches!(ca, IsCa::Ca(_)) {
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    }
    p.is_ca = ca;
    edit(&mut p);
    p
}

fn build(p: CertificateParams, issuer: Option<&Node>) -> Node {
    let key = KeyPair::generate().unwrap();
    let cert = match issuer {
        Some(i) => p.signed_by(&key, &Issuer::from_params(&i.params, &i.key)).unwrap(),
        None => p.self_signed(&key).unwrap(),
    };
    Node { params: p, key, cert }
}

fn root(cn: &str) -> Node {
    build(params(cn, &[], IsCa::Ca(BasicConstraints::Unconstrained), |_| {}), None)
}

fn ca(cn: &str, issuer: &Node, edit: impl FnOnce(&mut CertificateParams)) -> Node {
    build(params(cn, &[], IsCa::Ca(BasicConstraints::Unconstrained), edit), Some(issuer))
}

fn leaf(issuer: &Node, edit: impl FnOnce(&mut CertificateParams)) -> Node {
    build(
        params("mx leaf", &[MX], IsCa::NoCa, |p| {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            edit(p);
        }),
        Some(issuer),
    )
}

/// A TLSA record for `der` (a certificate) or `spki`.
fn tlsa(usage: u8, selector: u8, matching: u8, node: &Node) -> TlsaRecord {
    let selected = if selector == 0 { node.der().to_vec() } else { node.spki() };
    let data = match matching {
        0 => selected,
        1 => digest(&SHA256, &selected).as_ref().to_vec(),
        _ => digest(&SHA512, &selected).as_ref().to_vec(),
    };
    TlsaRecord::new(usage, selector, matching, data)
}

fn verify(chain: &[&Node], records: &[TlsaRecord], names: &[&str]) -> DaneOutcome {
    let chain: Vec<_> = chain.iter().map(|n| n.der()).collect();
    verify_chain(&chain, records, names, now())
}

fn failure(outcome: &DaneOutcome) -> &DaneFailure {
    outcome.failure().unwrap_or_else(|| panic!("authenticated: {outcome:?}"))
}

/// A root, an intermediate it issued, and a leaf for MX the intermediate issued.
fn pki() -> (Node, Node, Node) {
    let r = root("Test Root");
    let i = ca("Test Intermediate", &r, |_| {});
    let l = leaf(&i, |_| {});
    (r, i, l)
}

// ---------------------------------------------------------------- DANE-EE

/// RFC 7672 §3.1.1: DANE-EE ignores names.
#[test]
fn ee_matches_leaf_with_a_wrong_name() {
    let (r, i, l) = pki();
    let out = verify(&[&l, &i, &r], &[tlsa(3, 1, 1, &l)], &["other.example"]);
    let m = out.matched().expect("authenticated");
    assert_eq!((m.record_index, m.depth, m.chain_index, m.name.as_deref()), (0, 0, Some(0), None));
}

/// RFC 7672 §3.1.1: DANE-EE ignores validity dates.
#[test]
fn ee_ignores_expiry() {
    let r = root("Root");
    let l = leaf(&r, |p| {
        p.not_before = date_time_ymd(2010, 1, 1);
        p.not_after = date_time_ymd(2011, 1, 1);
    });
    assert!(verify(&[&l], &[tlsa(3, 1, 1, &l)], &[MX]).is_authenticated());
    assert!(verify(&[&l], &[tlsa(3, 0, 1, &l)], &[MX]).is_authenticated());
}

/// RFC 7672 §3.1.1: DANE-EE matches the leaf only, never the issuer.
#[test]
fn ee_for_the_root_key_does_not_authenticate() {
    let (r, i, l) = pki();
    let out = verify(&[&l, &i, &r], &[tlsa(3, 1, 1, &r), tlsa(3, 0, 1, &i)], &[MX]);
    assert_eq!(failure(&out), &DaneFailure::NoMatch);
    assert_eq!(failure(&out).result_type(), ResultType::CertificateNotTrusted);
}

/// RFC 7672 §3.1.1 with a self-signed leaf, and with an X.509 v1 leaf.
#[test]
fn ee_with_self_signed_and_v1_certificates() {
    let self_signed = build(params("mx", &[MX], IsCa::NoCa, |_| {}), None);
    assert!(verify(&[&self_signed], &[tlsa(3, 1, 1, &self_signed)], &[]).is_authenticated());

    let key = KeyPair::generate().unwrap();
    let v1 = v1_certificate(&key, "mx.example.net");
    let spki = key.subject_public_key_info();
    for record in [
        TlsaRecord::new(3, 1, 1, digest(&SHA256, &spki).as_ref().to_vec()),
        TlsaRecord::new(3, 0, 2, digest(&SHA512, &v1).as_ref().to_vec()),
        TlsaRecord::new(3, 0, 0, v1.clone()),
        TlsaRecord::new(3, 1, 0, spki.clone()),
    ] {
        assert!(record.is_usable_for_smtp(), "{record}");
        let out = verify_chain(&[CertificateDer::from(v1.clone())], &[record], &[], now());
        assert!(out.is_authenticated(), "{out:?}");
    }
    // The same v1 certificate cannot be a DANE-TA server certificate:
    // path validation needs v3.
    let other = TlsaRecord::new(2, 0, 0, v1.clone());
    let out = verify_chain(&[CertificateDer::from(v1.clone())], &[other], &[MX], now());
    assert!(!out.is_authenticated());
}

// ---------------------------------------------------------------- DANE-TA

/// RFC 7672 §3.1.2: an anchor at a private intermediate the server sends.
#[test]
fn ta_at_a_private_intermediate() {
    let (_, i, l) = pki();
    let out = verify(&[&l, &i], &[tlsa(2, 1, 1, &i)], &[MX]);
    let m = out.matched().expect("authenticated");
    assert_eq!((m.depth, m.chain_index, m.name.as_deref()), (1, Some(1), Some(MX)));
}

/// RFC 7672 §3.1.2: an anchor at the root, which the server sends.
#[test]
fn ta_at_the_root_sent_in_the_chain() {
    let (r, i, l) = pki();
    let out = verify(&[&l, &i, &r], &[tlsa(2, 0, 1, &r)], &[MX]);
    let m = out.matched().expect("authenticated");
    assert_eq!((m.depth, m.chain_index), (2, Some(2)));
}

/// RFC 7672 §3.1.2: the server must send the anchor, unless the record is
/// the full certificate (`2 0 0`).
#[test]
fn ta_where_the_server_omits_the_anchor() {
    let (r, i, l) = pki();
    for record in [tlsa(2, 1, 1, &r), tlsa(2, 0, 1, &r), tlsa(2, 1, 0, &r), tlsa(2, 0, 2, &r)] {
        let out = verify(&[&l, &i], std::slice::from_ref(&record), &[MX]);
        assert_eq!(failure(&out), &DaneFailure::NoMatch, "{record}");
    }
    let out = verify(&[&l, &i], &[tlsa(2, 0, 0, &r)], &[MX]);
    let m = out.matched().expect("2 0 0 carries the anchor");
    assert_eq!((m.depth, m.chain_index), (2, None));
}

/// RFC 7672 §3.2.3: DANE-TA checks the reference names, SAN DNS-IDs only.
#[test]
fn ta_requires_the_name() {
    let (r, i, l) = pki();
    let records = [tlsa(2, 0, 1, &r)];
    let out = verify(&[&l, &i, &r], &records, &["other.example", "example.net"]);
    assert_eq!(failure(&out), &DaneFailure::NameMismatch { names: vec!["other.example".into(), "example.net".into()] });
    assert_eq!(failure(&out).result_type(), ResultType::CertificateHostMismatch);
    assert!(!verify(&[&l, &i, &r], &records, &[]).is_authenticated());
    // The TLSA base domain or the MX name; a trailing dot is ignored.
    let out = verify(&[&l, &i, &r], &records, &["example.com", "MX.example.net."]);
    assert_eq!(out.matched().unwrap().name.as_deref(), Some("MX.example.net"));
}

/// Wildcards only as the whole left-most label (RFC 7672 §3.2.3, RFC 6125).
#[test]
fn ta_wildcard_names() {
    let r = root("Root");
    let l = build(params("mx", &["*.example.net"], IsCa::NoCa, |_| {}), Some(&r));
    let records = [tlsa(2, 1, 1, &r)];
    assert!(verify(&[&l, &r], &records, &["mx.example.net"]).is_authenticated());
    assert!(!verify(&[&l, &r], &records, &["example.net"]).is_authenticated());
    assert!(!verify(&[&l, &r], &records, &["a.mx.example.net"]).is_authenticated());
    let partial = build(params("mx", &["m*.example.net"], IsCa::NoCa, |_| {}), Some(&r));
    assert!(!verify(&[&partial, &r], &records, &["mx.example.net"]).is_authenticated());
}

/// A CA certificate the server sends that matches a record but did not
/// issue the chain is no anchor.
#[test]
fn ta_rejects_an_unrelated_ca_whose_hash_is_in_a_record() {
    let (_, i, l) = pki();
    let unrelated = root("Unrelated Root");
    let out = verify(&[&l, &i, &unrelated], &[tlsa(2, 1, 1, &unrelated)], &[MX]);
    assert_eq!(failure(&out), &DaneFailure::PathInvalid { problem: PathProblem::UnknownIssuer });
    assert_eq!(failure(&out).result_type(), ResultType::CertificateNotTrusted);
    // An unrelated CA with the same name but another key cannot stand in.
    let impostor = root("Test Root");
    let out = verify(&[&l, &i, &impostor], &[tlsa(2, 0, 1, &impostor)], &[MX]);
    assert!(!out.is_authenticated());
}

/// RFC 7671 §5.2.2: path validation checks the dates of every certificate
/// below the anchor, and of the anchor certificate itself.
#[test]
fn ta_rejects_an_expired_intermediate() {
    let r = root("Root");
    let expired = ca("Expired Intermediate", &r, |p| {
        p.not_before = date_time_ymd(2010, 1, 1);
        p.not_after = date_time_ymd(2011, 1, 1);
    });
    let l = leaf(&expired, |_| {});
    let out = verify(&[&l, &expired, &r], &[tlsa(2, 0, 1, &r)], &[MX]);
    assert_eq!(failure(&out), &DaneFailure::Expired { chain_index: Some(1) });
    assert_eq!(failure(&out).result_type(), ResultType::CertificateExpired);
    // The expired intermediate as the anchor.
    let out = verify(&[&l, &expired], &[tlsa(2, 1, 1, &expired)], &[MX]);
    assert_eq!(failure(&out), &DaneFailure::Expired { chain_index: Some(1) });
    // An expired server certificate under DANE-TA.
    let old_leaf = leaf(&r, |p| p.not_after = date_time_ymd(2020, 1, 1));
    let out = verify(&[&old_leaf, &r], &[tlsa(2, 1, 1, &r)], &[MX]);
    assert_eq!(failure(&out), &DaneFailure::Expired { chain_index: Some(0) });
    let future = leaf(&r, |p| p.not_before = date_time_ymd(2030, 1, 1));
    let out = verify(&[&future, &r], &[tlsa(2, 1, 1, &r)], &[MX]);
    assert_eq!(failure(&out), &DaneFailure::Expired { chain_index: Some(0) });
}

/// RFC 5280 §4.2.1.9 pathLenConstraint, on an intermediate and on the anchor.
#[test]
fn ta_rejects_a_path_length_violation() {
    let r = root("Root");
    let limited = ca("Limited", &r, |p| p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0)));
    let below = ca("Below", &limited, |_| {});
    let l = leaf(&below, |_| {});
    let out = verify(&[&l, &below, &limited, &r], &[tlsa(2, 0, 1, &r)], &[MX]);
    assert_eq!(failure(&out), &DaneFailure::PathInvalid { problem: PathProblem::PathLength });
    // The anchor's own constraint: `limited` as the anchor with one CA below it.
    let out = verify(&[&l, &below, &limited], &[tlsa(2, 1, 1, &limited)], &[MX]);
    assert_eq!(failure(&out), &DaneFailure::PathInvalid { problem: PathProblem::PathLength });
    // Within the limit.
    let direct = leaf(&limited, |_| {});
    assert!(verify(&[&direct, &limited], &[tlsa(2, 1, 1, &limited)], &[MX]).is_authenticated());
}

/// RFC 7672 §3.1.2 leaves chain order to path building: unordered and
/// padded chains work, and extra certificates are ignored.
#[test]
fn ta_with_an_unordered_padded_chain() {
    let (r, i, l) = pki();
    let noise = root("Noise");
    let out = verify(&[&l, &noise, &r, &l, &i, &noise], &[tlsa(2, 1, 2, &r)], &[MX]);
    let m = out.matched().expect("authenticated");
    assert_eq!((m.depth, m.chain_index), (2, Some(2)));
}

/// RFC 5280 §6.1.4 (k): an issuer must be a CA.
#[test]
fn ta_rejects_a_non_ca_issuer() {
    let r = root("Root");
    let not_ca = build(params("Not a CA", &[], IsCa::ExplicitNoCa, |_| {}), Some(&r));
    let l = leaf(&not_ca, |_| {});
    let out = verify(&[&l, &not_ca, &r], &[tlsa(2, 0, 1, &r)], &[MX]);
    assert_eq!(failure(&out), &DaneFailure::PathInvalid { problem: PathProblem::IssuerNotCa });
    // The non-CA issuer as the anchor itself.
    let out = verify(&[&l, &not_ca], &[tlsa(2, 1, 1, &not_ca)], &[MX]);
    assert_eq!(failure(&out), &DaneFailure::PathInvalid { problem: PathProblem::AnchorNotCa });
    // Without a basicConstraints extension at all (rcgen's NoCa).
    let bare = build(params("Bare", &[], IsCa::NoCa, |_| {}), Some(&r));
    let l = leaf(&bare, |_| {});
    let out = verify(&[&l, &bare], &[tlsa(2, 1, 1, &bare)], &[MX]);
    assert_eq!(failure(&out), &DaneFailure::PathInvalid { problem: PathProblem::AnchorNotCa });
}

/// RFC 5280 §4.2.1.12: a server certificate with an EKU must include
/// serverAuth; one without an EKU is valid for any purpose.
#[test]
fn ta_with_and_without_server_auth_eku() {
    let r = root("Root");
    let records = [tlsa(2, 1, 1, &r)];
    let with = leaf(&r, |_| {});
    assert!(verify(&[&with, &r], &records, &[MX]).is_authenticated());
    let without = leaf(&r, |p| p.extended_key_usages = vec![]);
    assert!(verify(&[&without, &r], &records, &[MX]).is_authenticated());
    let client_only = leaf(&r, |p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth]);
    let out = verify(&[&client_only, &r], &records, &[MX]);
    assert_eq!(failure(&out), &DaneFailure::PathInvalid { problem: PathProblem::ExtendedKeyUsage });
    assert_eq!(failure(&out).result_type(), ResultType::ValidationFailure);
}

/// RFC 7672 §3.2.3: reference names are matched against DNS-ID SANs; a
/// certificate naming MX only in its CN does not match.
#[test]
fn ta_ignores_cn_only_certificates() {
    let r = root("Root");
    let cn_only = build(params(MX, &[], IsCa::NoCa, |_| {}), Some(&r));
    let out = verify(&[&cn_only, &r], &[tlsa(2, 1, 1, &r)], &[MX]);
    assert_eq!(failure(&out), &DaneFailure::NameMismatch { names: vec![MX.into()] });
}

/// RFC 7671 §5.2.2: a record matching the server certificate is not a trust
/// anchor, even when the server repeats its certificate.
#[test]
fn a_record_matching_the_leaf_is_not_a_ta() {
    let self_signed_ca = build(params("mx", &[MX], IsCa::Ca(BasicConstraints::Unconstrained), |_| {}), None);
    let out = verify(&[&self_signed_ca, &self_signed_ca], &[tlsa(2, 0, 1, &self_signed_ca)], &[MX]);
    assert_eq!(failure(&out), &DaneFailure::NoMatch);
    let (_, i, l) = pki();
    let out = verify(&[&l, &i, &l], &[tlsa(2, 1, 1, &l)], &[MX]);
    assert_eq!(failure(&out), &DaneFailure::NoMatch);
}

// ------------------------------------------------------ records and agility

/// RFC 6698 §2.1.3: SHA-256, SHA-512 and full data, for both usages and selectors.
#[test]
fn every_selector_and_matching_type() {
    let (r, i, l) = pki();
    for (selector, matching) in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)] {
        let ee = tlsa(3, selector, matching, &l);
        assert!(verify(&[&l, &i], std::slice::from_ref(&ee), &[]).is_authenticated(), "{ee}");
        let ta = tlsa(2, selector, matching, &r);
        assert!(verify(&[&l, &i, &r], std::slice::from_ref(&ta), &[MX]).is_authenticated(), "{ta}");
    }
}

/// RFC 7672 §3.1.3: with no usable record, TLS stays mandatory but
/// unauthenticated; the verification reports `tlsa-invalid`.
#[test]
fn all_records_unusable() {
    let (r, i, l) = pki();
    let records = [
        tlsa(1, 1, 1, &l),
        tlsa(0, 0, 1, &r),
        TlsaRecord::new(3, 1, 1, vec![0; 31]),
        TlsaRecord::new(3, 2, 1, vec![0; 32]),
        TlsaRecord::new(3, 1, 9, vec![0; 32]),
        TlsaRecord::new(2, 0, 0, vec![0x30, 0x03, 0x02, 0x01, 0x00]),
    ];
    let out = verify(&[&l, &i, &r], &records, &[MX]);
    assert_eq!(failure(&out), &DaneFailure::NoUsableRecords { count: 6 });
    assert_eq!(failure(&out).result_type(), ResultType::TlsaInvalid);
    assert_eq!(failure(&verify(&[&l], &[], &[MX])), &DaneFailure::NoUsableRecords { count: 0 });
}

/// Unusable records are skipped, usable ones still count.
#[test]
fn mixed_usable_and_unusable_records() {
    let (r, i, l) = pki();
    let out = verify(&[&l, &i, &r], &[tlsa(1, 1, 1, &l), tlsa(0, 0, 1, &r), tlsa(3, 1, 1, &l)], &[MX]);
    assert_eq!(out.matched().unwrap().record_index, 2);
    let wrong = TlsaRecord::new(3, 1, 1, vec![0xab; 32]);
    let out = verify(&[&l, &i, &r], &[tlsa(1, 1, 1, &l), wrong.clone()], &[MX]);
    assert_eq!(failure(&out), &DaneFailure::NoMatch);
    let out = verify(&[&l, &i, &r], &[wrong, tlsa(0, 1, 1, &r), tlsa(2, 1, 1, &i)], &[MX]);
    assert_eq!(out.matched().unwrap().record_index, 2);
}

/// RFC 7671 §9: of one usage and selector, only the strongest digest counts.
#[test]
fn digest_agility_uses_the_strongest_digest() {
    let (r, i, l) = pki();
    let wrong256 = TlsaRecord::new(3, 1, 1, vec![0xab; 32]);
    let wrong512 = TlsaRecord::new(3, 1, 2, vec![0xab; 64]);
    let chain = [&l, &i, &r];
    // A correct SHA-256 record is ignored when a SHA-512 one exists.
    assert_eq!(failure(&verify(&chain, &[tlsa(3, 1, 1, &l), wrong512.clone()], &[])), &DaneFailure::NoMatch);
    assert!(verify(&chain, &[wrong256.clone(), tlsa(3, 1, 2, &l)], &[]).is_authenticated());
    // An unusable SHA-512 record (wrong length) does not suppress SHA-256.
    let short512 = TlsaRecord::new(3, 1, 2, vec![0xab; 32]);
    assert!(verify(&chain, &[tlsa(3, 1, 1, &l), short512], &[]).is_authenticated());
    // Another selector or usage is a separate group; Full(0) always counts.
    assert!(verify(&chain, &[tlsa(3, 0, 1, &l), wrong512.clone()], &[]).is_authenticated());
    assert!(verify(&chain, &[tlsa(3, 1, 0, &l), wrong512.clone()], &[]).is_authenticated());
    assert!(verify(&chain, &[tlsa(2, 1, 1, &r), wrong512], &[MX]).is_authenticated());
}

/// Garbage and truncated DER: a typed failure, never a panic.
#[test]
fn truncated_or_garbage_certificates() {
    let (r, i, l) = pki();
    let good = l.der().to_vec();
    let records = [tlsa(3, 1, 1, &l), tlsa(2, 1, 1, &r)];
    for bad in [vec![], vec![0x30], vec![0xff; 300], good[..good.len() / 2].to_vec(), [&good[..], &[0]].concat()] {
        let out = verify_chain(&[CertificateDer::from(bad)], &records, &[MX], now());
        assert_eq!(failure(&out), &DaneFailure::MalformedCertificate { index: 0 });
        assert_eq!(failure(&out).result_type(), ResultType::ValidationFailure);
    }
    // Garbage after the server certificate is skipped.
    let chain = [l.der(), CertificateDer::from(vec![0x30, 0x82, 0xff]), i.der(), r.der()];
    assert!(verify_chain(&chain, &records[1..], &[MX], now()).is_authenticated());
    assert_eq!(verify_chain(&[], &records, &[MX], now()), DaneOutcome::Failed(DaneFailure::EmptyChain));
}

/// Every failure says what to do, and maps to a TLS-RPT result type.
#[test]
fn failure_messages_and_result_types() {
    let cases = [
        (DaneFailure::EmptyChain, ResultType::ValidationFailure, "the server presented no certificate"),
        (
            DaneFailure::NoUsableRecords { count: 2 },
            ResultType::TlsaInvalid,
            "no TLSA record is usable for SMTP (2 published; RFC 7672 §3.1 needs usage 2 or 3, selector 0 or 1, matching type 0, 1 or 2); the receiving domain must fix its TLSA records",
        ),
        (
            DaneFailure::Expired { chain_index: Some(1) },
            ResultType::CertificateExpired,
            "a certificate of the DANE-TA path (position 1 of the server's chain) is expired or not yet valid; the receiving server must renew it",
        ),
        (
            DaneFailure::PathInvalid { problem: PathProblem::IssuerNotCa },
            ResultType::ValidationFailure,
            "a TLSA record matches a certificate the server sent, but the path to it is invalid: an intermediate certificate is not a CA",
        ),
    ];
    for (f, t, message) in cases {
        assert_eq!((f.result_type(), f.to_string().as_str()), (t, message));
        assert!(!f.is_temporary());
    }
}
