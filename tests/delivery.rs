//! Every rule of the engine over real connections: local SMTP servers with
//! STARTTLS (rustls) and chosen certificates, the crate's rustls verifier,
//! the engine's assessment and verdict (examples/support/smtp.rs). The facts
//! are given directly, so each test shows one rule.
#![cfg(feature = "rustls")]

#[path = "../examples/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{CertificateParams, DnType, Issuer, KeyPair};
use ring::digest::{SHA256, digest};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use smtp_tls_policy::dane::TlsaRecord;
use smtp_tls_policy::engine::{
    Attempt, AuthOutcome, DaneSupport, DeliveryContext, Destination, DestinationControls, DnssecStatus, DomainFacts,
    HostResult, MxFacts, Profile, SecurityLevel, StsFacts, StsSupport, TlsSupport, TlsaFacts, Verdict, verdict,
};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::report::ResultType;
use smtp_tls_policy::sts::{Policy, PolicyId};
use smtp_tls_policy::verify::custom_roots;
use support::https::{Pki, self_signed};
use support::smtp::{HostDelivery, SmtpServer, Starttls, deliver_plan, signing_key, smtp_server};
use support::x509::v1_certificate;

const DOMAIN: &str = "example.test";

fn name(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

fn sha256(der: &[u8]) -> Vec<u8> {
    digest(&SHA256, der).as_ref().to_vec()
}

/// `3 0 1`: the server certificate's SHA-256.
fn dane_ee(cert: &CertificateDer<'_>) -> TlsaRecord {
    TlsaRecord::new(3, 0, 1, sha256(cert))
}

fn profile(tls: TlsSupport, dane: DaneSupport, sts: StsSupport) -> DestinationControls {
    DestinationControls::new(Profile::new(tls, dane, sts))
}

fn sts(mode: &str, mx: &str) -> StsFacts {
    let policy = Policy::parse(&format!("version: STSv1\nmode: {mode}\nmx: {mx}\nmax_age: 86400\n")).unwrap();
    StsFacts::Policy { id: PolicyId::parse("1").unwrap(), policy: Arc::new(policy) }
}

fn facts(hosts: &[(&str, TlsaFacts)], sts: StsFacts) -> DomainFacts {
    let mx = hosts.iter().map(|(h, t)| MxFacts::new(name(h), t.clone())).collect();
    DomainFacts::new(name(DOMAIN), mx, DnssecStatus::Secure).with_sts(sts)
}

/// The local world: a web PKI and SMTP servers by host name.
struct World {
    pki: Pki,
    servers: HashMap<String, SmtpServer>,
}

impl World {
    fn new() -> Self {
        Self { pki: Pki::new(), servers: HashMap::new() }
    }

    fn serve(&mut self, host: &str, starttls: Starttls) -> SmtpServer {
        let server = smtp_server(host, starttls);
        self.servers.insert(host.to_owned(), server.clone());
        server
    }

    /// A server with a certificate from the web PKI naming `names`.
    fn serve_valid(&mut self, host: &str, cert_name: &str) -> SmtpServer {
        let (chain, key) = self.pki.server(cert_name, false);
        self.serve(host, Starttls::with(chain, key))
    }

    fn deliver(&self, controls: &DestinationControls, facts: &DomainFacts) -> (Vec<HostDelivery>, Verdict) {
        let plan = controls.plan(facts);
        let roots = custom_roots(std::slice::from_ref(&self.pki.ca_der)).unwrap();
        let servers = &self.servers;
        let tried = deliver_plan(&plan, |h| servers.get(h).map(|s| s.addr), roots, "Subject: test\r\n\r\nhello");
        let results: Vec<HostResult> = tried.iter().map(|d| d.result.clone()).collect();
        let verdict = verdict(&plan, &results, DeliveryContext::new(Duration::from_secs(60)));
        (tried, verdict)
    }
}

fn delivered(v: &Verdict) -> Option<(&str, SecurityLevel)> {
    match v {
        Verdict::Deliver { host, level, .. } => Some((host.as_str(), *level)),
        _ => None,
    }
}

fn deferred(v: &Verdict) -> Option<(String, Option<ResultType>)> {
    match v {
        Verdict::Defer { status, result_type, .. } => Some((status.to_string(), *result_type)),
        _ => None,
    }
}

// ------------------------------------------------------------------ DANE

/// DESIGN.md precedence 2 / RFC 7672 §3.1.1: DANE-EE authenticates a
/// self-signed certificate; MTA-STS (which does not even list the host) is
/// not consulted; SNI is the TLSA base domain.
#[test]
fn dane_success_skips_mta_sts() {
    let mut w = World::new();
    let (chain, key) = self_signed("mx.example.test");
    let tlsa = dane_ee(&chain[0]);
    let server = w.serve("mx.example.test", Starttls::with(chain, key));
    let f = facts(&[("mx.example.test", TlsaFacts::Secure(vec![tlsa]))], sts("enforce", "other.example.test"));
    let (tried, v) = w.deliver(&profile(TlsSupport::Preferred, DaneSupport::Opportunistic, StsSupport::On), &f);
    assert_eq!(delivered(&v), Some(("mx.example.test", SecurityLevel::DaneVerified)), "{v:?}");
    assert!(tried[0].sent);
    assert_eq!(server.received.lock().unwrap().len(), 1);
    assert_eq!(server.sni.lock().unwrap().as_slice(), ["mx.example.test"]);
}

/// RFC 7672 §8.1, §2.2.2: after a secure CNAME the SNI is the TLSA base
/// domain, and DANE-TA names may be either name; under WebPKI it is the MX
/// host.
#[test]
fn sni_is_the_tlsa_base_domain_under_dane_and_the_mx_host_otherwise() {
    let mut w = World::new();
    let (mut chain, key) = w.pki.server("real.example.test", false);
    chain.push(w.pki.ca_der.clone());
    let tlsa = TlsaRecord::new(2, 0, 1, sha256(&w.pki.ca_der));
    let server = w.serve("mx.example.test", Starttls::with(chain, key));
    let mx =
        MxFacts::new(name("mx.example.test"), TlsaFacts::Secure(vec![tlsa])).with_tlsa_base(name("real.example.test"));
    let f = DomainFacts::new(name(DOMAIN), vec![mx], DnssecStatus::Secure);
    let (_, v) = w.deliver(&profile(TlsSupport::Preferred, DaneSupport::Mandatory, StsSupport::Off), &f);
    assert_eq!(delivered(&v), Some(("mx.example.test", SecurityLevel::DaneVerified)), "{v:?}");
    assert_eq!(server.sni.lock().unwrap().as_slice(), ["real.example.test"]);

    let mut w = World::new();
    let server = w.serve_valid("mx.example.test", "mx.example.test");
    let f = facts(&[("mx.example.test", TlsaFacts::SecureNone)], sts("enforce", "mx.example.test"));
    let (_, v) = w.deliver(&profile(TlsSupport::Preferred, DaneSupport::Opportunistic, StsSupport::On), &f);
    assert!(delivered(&v).is_some(), "{v:?}");
    assert_eq!(server.sni.lock().unwrap().as_slice(), ["mx.example.test"]);
}

/// DESIGN.md precedence 2: DANE Mandatory and no match → no delivery.
#[test]
fn dane_mandatory_failure_defers() {
    let mut w = World::new();
    let (chain, key) = self_signed("mx.example.test");
    let server = w.serve("mx.example.test", Starttls::with(chain, key));
    let wrong = TlsaRecord::new(3, 0, 1, vec![0xab; 32]);
    let f = facts(&[("mx.example.test", TlsaFacts::Secure(vec![wrong]))], StsFacts::NoPolicy);
    let (tried, v) = w.deliver(&profile(TlsSupport::Preferred, DaneSupport::Mandatory, StsSupport::Off), &f);
    assert!(matches!(tried[0].attempt, Attempt::Tls { auth: AuthOutcome::Dane(_), .. }), "{:?}", tried[0].attempt);
    let (status, result_type) = deferred(&v).expect("deferred");
    assert_eq!(status, "4.7.5");
    assert_eq!(result_type, Some(ResultType::CertificateNotTrusted));
    assert!(server.received.lock().unwrap().is_empty());
}

/// DESIGN.md precedence 2 → 3: DANE Opportunistic without TLSA records
/// goes on to MTA-STS enforce, which verifies the WebPKI certificate.
#[test]
fn dane_opportunistic_falls_to_mta_sts() {
    let mut w = World::new();
    w.serve_valid("mx.example.test", "mx.example.test");
    let f = facts(&[("mx.example.test", TlsaFacts::SecureNone)], sts("enforce", "mx.example.test"));
    let (_, v) = w.deliver(&profile(TlsSupport::Preferred, DaneSupport::Opportunistic, StsSupport::On), &f);
    assert_eq!(delivered(&v), Some(("mx.example.test", SecurityLevel::WebPkiVerified)), "{v:?}");
}

/// RFC 7672 §3.1.2: DANE-TA with the anchor sent in the chain.
#[test]
fn dane_ta_with_the_anchor_in_the_chain() {
    let mut w = World::new();
    let (mut chain, key) = w.pki.server("mx.example.test", false);
    chain.push(w.pki.ca_der.clone());
    let tlsa = TlsaRecord::new(2, 0, 1, sha256(&w.pki.ca_der));
    w.serve("mx.example.test", Starttls::with(chain, key));
    let f = facts(&[("mx.example.test", TlsaFacts::Secure(vec![tlsa]))], StsFacts::NoPolicy);
    let (_, v) = w.deliver(&profile(TlsSupport::Preferred, DaneSupport::Mandatory, StsSupport::Off), &f);
    assert_eq!(delivered(&v), Some(("mx.example.test", SecurityLevel::DaneVerified)), "{v:?}");
}

/// RFC 7672 §3.1.1: an X.509 v1 server certificate under DANE-EE; the
/// handshake signature is still checked with its key.
#[test]
fn dane_ee_with_an_x509_v1_certificate() {
    let mut w = World::new();
    let key = KeyPair::generate().unwrap();
    let v1 = CertificateDer::from(v1_certificate(&key, "mx.example.test"));
    let tlsa = dane_ee(&v1);
    let pkcs8 = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    w.serve("mx.example.test", Starttls::Cert(vec![v1], signing_key(pkcs8)));
    let f = facts(&[("mx.example.test", TlsaFacts::Secure(vec![tlsa]))], StsFacts::NoPolicy);
    let (_, v) = w.deliver(&profile(TlsSupport::Preferred, DaneSupport::Mandatory, StsSupport::Off), &f);
    assert_eq!(delivered(&v), Some(("mx.example.test", SecurityLevel::DaneVerified)), "{v:?}");
}

/// STYLE.md anti-pattern 1: a server that presents the matching
/// certificate without holding its key fails the handshake.
#[test]
fn a_server_without_the_certificates_key_is_refused() {
    let mut w = World::new();
    let (chain, _) = self_signed("mx.example.test");
    let tlsa = dane_ee(&chain[0]);
    let (_, impostor_key) = self_signed("mx.example.test");
    let server = w.serve("mx.example.test", Starttls::Cert(chain, signing_key(impostor_key)));
    let f = facts(&[("mx.example.test", TlsaFacts::Secure(vec![tlsa]))], StsFacts::NoPolicy);
    let (tried, v) = w.deliver(&profile(TlsSupport::Preferred, DaneSupport::Mandatory, StsSupport::Off), &f);
    assert!(
        matches!(&tried[0].attempt, Attempt::HandshakeFailed { reason } if reason.contains("signature")),
        "{:?}",
        tried[0].attempt
    );
    assert!(deferred(&v).is_some(), "{v:?}");
    assert!(server.received.lock().unwrap().is_empty());
}

/// A handshake that fails after the certificate checked out (an attacker
/// relays the real Certificate and CertificateVerify, then flips a bit of
/// the server's Finished) is a failed handshake, never verified TLS: the
/// next MX host is tried.
#[test]
fn a_handshake_that_fails_after_the_certificate_check_is_not_tls() {
    use smtp_tls_policy::verify::TlsSetup;
    let (chain, key) = self_signed("mx.example.test");
    let tlsa = dane_ee(&chain[0]);
    let controls = profile(TlsSupport::Preferred, DaneSupport::Mandatory, StsSupport::Off);
    let f = facts(
        &[
            ("mx.example.test", TlsaFacts::Secure(vec![tlsa.clone()])),
            ("mx2.example.test", TlsaFacts::Secure(vec![tlsa])),
        ],
        StsFacts::NoPolicy,
    );
    let plan = controls.plan(&f);
    let host = &plan.hosts[0];
    let setup = TlsSetup::new(host, smtp_tls_policy::verify::Roots::custom(&[]).unwrap()).unwrap();
    let server_config = rustls::ServerConfig::builder_with_protocol_versions(&[&rustls::version::TLS12])
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map(Arc::new)
        .unwrap();
    let mut client = rustls::ClientConnection::new(setup.config(), setup.server_name()).unwrap();
    let mut server = rustls::ServerConnection::new(server_config).unwrap();
    let mut handshake = Ok(());
    let mut tampered = false;
    while handshake.is_ok() && client.is_handshaking() {
        let mut up = Vec::new();
        client.write_tls(&mut up).unwrap();
        server.read_tls(&mut &up[..]).unwrap();
        if server.process_new_packets().is_err() {
            break;
        }
        let mut down = Vec::new();
        server.write_tls(&mut down).unwrap();
        // TLS 1.2: the server's last flight is ChangeCipherSpec and its
        // Finished, sent after the certificate and the ServerKeyExchange
        // signature were checked; flip the last byte of the Finished.
        if !tampered && records(&down).iter().any(|&(kind, _)| kind == 20) {
            *down.last_mut().unwrap() ^= 1;
            tampered = true;
        }
        client.read_tls(&mut &down[..]).unwrap();
        handshake = client.process_new_packets().map(|_| ());
    }
    assert!(tampered && handshake.is_err(), "{handshake:?}");
    assert!(matches!(setup.outcome(), AuthOutcome::Dane(ref o) if o.is_authenticated()), "the certificate was checked");
    let attempt = setup.attempt(&client, handshake.as_ref().map(|_| ()));
    assert!(matches!(&attempt, Attempt::HandshakeFailed { .. }), "{attempt:?}");
    assert!(matches!(smtp_tls_policy::engine::assess(&plan, host, &attempt), HostResult::TryNext(_)));
}

/// The (content type, length) of each TLS record in a byte stream.
fn records(mut bytes: &[u8]) -> Vec<(u8, usize)> {
    let mut v = Vec::new();
    while bytes.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
        v.push((bytes[0], len));
        bytes = &bytes[(5 + len).min(bytes.len())..];
    }
    v
}

// --------------------------------------------------------------- MTA-STS

/// RFC 8461 §4.2, §5: enforce — a valid certificate for the MX host; a
/// wrong name, an expired or untrusted certificate defers and asks for the
/// policy to be re-checked; a host the policy does not list is not used.
#[test]
fn mta_sts_enforce() {
    type Case = (&'static str, fn(&Pki) -> Starttls, Option<ResultType>);
    let cases: [Case; 4] = [
        (
            "valid",
            |p| {
                let (c, k) = p.server("mx.example.test", false);
                Starttls::with(c, k)
            },
            None,
        ),
        (
            "wrong name",
            |p| {
                let (c, k) = p.server("other.example.test", false);
                Starttls::with(c, k)
            },
            Some(ResultType::CertificateHostMismatch),
        ),
        (
            "expired",
            |p| {
                let (c, k) = p.server("mx.example.test", true);
                Starttls::with(c, k)
            },
            Some(ResultType::CertificateExpired),
        ),
        (
            "untrusted",
            |_| {
                let (c, k) = self_signed("mx.example.test");
                Starttls::with(c, k)
            },
            Some(ResultType::CertificateNotTrusted),
        ),
    ];
    for (case, starttls, failure) in cases {
        let mut w = World::new();
        let starttls = starttls(&w.pki);
        w.serve("mx.example.test", starttls);
        w.serve_valid("unlisted.example.test", "unlisted.example.test");
        let f = facts(
            &[("unlisted.example.test", TlsaFacts::SecureNone), ("mx.example.test", TlsaFacts::SecureNone)],
            sts("enforce", "mx.example.test"),
        );
        let (_, v) = w.deliver(&profile(TlsSupport::Preferred, DaneSupport::None, StsSupport::On), &f);
        match failure {
            None => assert_eq!(delivered(&v), Some(("mx.example.test", SecurityLevel::WebPkiVerified)), "{case}"),
            Some(rt) => {
                let Verdict::Defer { result_type, recheck_policy, failures, .. } = &v else { panic!("{case}: {v:?}") };
                assert_eq!(*result_type, Some(rt), "{case}");
                assert!(recheck_policy, "{case}: RFC 8461 §5.1 step 3");
                assert!(failures.iter().any(|f| f.host.as_str() == "unlisted.example.test"), "{case}: skipped host");
            }
        }
    }
}

/// RFC 8461 §5: testing — a failing certificate is delivered to anyway,
/// encrypted, and the failure is kept for TLS-RPT.
#[test]
fn mta_sts_testing_delivers_and_reports() {
    let mut w = World::new();
    w.serve_valid("mx.example.test", "other.example.test");
    let f = facts(&[("mx.example.test", TlsaFacts::SecureNone)], sts("testing", "mx.example.test"));
    let (_, v) = w.deliver(&profile(TlsSupport::Preferred, DaneSupport::None, StsSupport::On), &f);
    let Verdict::Deliver { level, failures, .. } = &v else { panic!("{v:?}") };
    assert_eq!(*level, SecurityLevel::Encrypted);
    assert_eq!(failures[0].result_type, Some(ResultType::CertificateHostMismatch));
}

/// RFC 8461 §5: testing reports every failure enforce would have had — an
/// MX host the policy does not list, and (under Required-Verify, which
/// verifies the recipient domain) a certificate that names the domain but
/// not the MX host — while delivery goes on.
#[test]
fn mta_sts_testing_reports_what_enforce_would_have_refused() {
    let mut w = World::new();
    w.serve_valid("mx.example.test", "mx.example.test");
    let f = facts(&[("mx.example.test", TlsaFacts::SecureNone)], sts("testing", "other.example.test"));
    let (_, v) = w.deliver(&profile(TlsSupport::Preferred, DaneSupport::None, StsSupport::On), &f);
    let Verdict::Deliver { failures, .. } = &v else { panic!("{v:?}") };
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].result_type, Some(ResultType::CertificateHostMismatch));
    assert!(failures[0].reason.contains("not listed in the MTA-STS policy"), "{}", failures[0].reason);

    let mut w = World::new();
    w.serve_valid("mx.example.test", DOMAIN);
    let f = facts(&[("mx.example.test", TlsaFacts::SecureNone)], sts("testing", "mx.example.test"));
    let (tried, v) = w.deliver(&profile(TlsSupport::RequiredVerify, DaneSupport::None, StsSupport::On), &f);
    let Verdict::Deliver { level, failures, .. } = &v else { panic!("{v:?}") };
    assert_eq!(*level, SecurityLevel::WebPkiVerified, "Required-Verify is met: the certificate names {DOMAIN}");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].result_type, Some(ResultType::CertificateHostMismatch));
    assert!(tried[0].sent);
    // A certificate that names both: nothing to report.
    let mut w = World::new();
    let (chain, key) = w.pki.server_names(&["mx.example.test", DOMAIN]);
    w.serve("mx.example.test", Starttls::with(chain, key));
    let (_, v) = w.deliver(&profile(TlsSupport::RequiredVerify, DaneSupport::None, StsSupport::On), &f);
    let Verdict::Deliver { failures, .. } = &v else { panic!("{v:?}") };
    assert!(failures.is_empty(), "{failures:?}");
}

/// RFC 8461 §5: mode none (and no policy) leaves the TLS support in charge.
#[test]
fn mta_sts_none_leaves_the_tls_support() {
    let mut w = World::new();
    w.serve_valid("mx.example.test", "other.example.test");
    for sts in [sts("none", "mx.example.test"), StsFacts::NoPolicy] {
        let f = facts(&[("mx.example.test", TlsaFacts::SecureNone)], sts);
        let (_, v) = w.deliver(&profile(TlsSupport::Preferred, DaneSupport::None, StsSupport::On), &f);
        assert_eq!(delivered(&v), Some(("mx.example.test", SecurityLevel::Encrypted)), "{v:?}");
    }
}

// ----------------------------------------------------------- TLS support

fn no_policy() -> DomainFacts {
    facts(&[("mx.example.test", TlsaFacts::SecureNone)], StsFacts::NoPolicy)
}

fn tls_only(tls: TlsSupport) -> DestinationControls {
    profile(tls, DaneSupport::None, StsSupport::Off)
}

#[test]
fn tls_support_no_never_starts_tls() {
    let mut w = World::new();
    let server = w.serve_valid("mx.example.test", "mx.example.test");
    let (tried, v) = w.deliver(&tls_only(TlsSupport::No), &no_policy());
    assert_eq!(delivered(&v), Some(("mx.example.test", SecurityLevel::Plaintext)));
    assert_eq!(tried[0].attempt, Attempt::Plaintext { starttls_offered: true });
    assert!(server.sni.lock().unwrap().is_empty());
}

#[test]
fn tls_support_preferred_uses_tls_when_offered_else_plain() {
    let mut w = World::new();
    w.serve_valid("mx.example.test", "other.example.test");
    let (_, v) = w.deliver(&tls_only(TlsSupport::Preferred), &no_policy());
    assert_eq!(delivered(&v), Some(("mx.example.test", SecurityLevel::Encrypted)));
    let mut w = World::new();
    w.serve("mx.example.test", Starttls::No);
    let (_, v) = w.deliver(&tls_only(TlsSupport::Preferred), &no_policy());
    assert_eq!(delivered(&v), Some(("mx.example.test", SecurityLevel::Plaintext)));
}

#[test]
fn tls_support_required_without_starttls_defers() {
    let mut w = World::new();
    let server = w.serve("mx.example.test", Starttls::No);
    let (_, v) = w.deliver(&tls_only(TlsSupport::Required), &no_policy());
    let (status, result_type) = deferred(&v).expect("deferred");
    assert_eq!((status.as_str(), result_type), ("4.7.4", Some(ResultType::StarttlsNotSupported)));
    assert!(server.received.lock().unwrap().is_empty());
}

#[test]
fn tls_support_preferred_verify_delivers_and_reports() {
    let mut w = World::new();
    let (c, k) = self_signed("mx.example.test");
    w.serve("mx.example.test", Starttls::with(c, k));
    let (_, v) = w.deliver(&tls_only(TlsSupport::PreferredVerify), &no_policy());
    let Verdict::Deliver { level, failures, .. } = &v else { panic!("{v:?}") };
    assert_eq!(*level, SecurityLevel::Encrypted);
    assert_eq!(failures[0].result_type, Some(ResultType::CertificateNotTrusted));
}

/// DESIGN.md: Required-Verify wants the recipient domain; a hosted
/// destination's certificate names the MX host, and the operator is told
/// to use Required-Verify-Hosted-Domains.
#[test]
fn tls_support_required_verify_and_the_hosted_case() {
    let mut w = World::new();
    w.serve_valid("mx.example.test", DOMAIN);
    let (_, v) = w.deliver(&tls_only(TlsSupport::RequiredVerify), &no_policy());
    assert_eq!(delivered(&v), Some(("mx.example.test", SecurityLevel::WebPkiVerified)));

    let mut w = World::new();
    let server = w.serve_valid("mx.example.test", "mx.example.test");
    let (tried, v) = w.deliver(&tls_only(TlsSupport::RequiredVerify), &no_policy());
    assert!(matches!(tried[0].result, HostResult::Stop(_)), "{:?}", tried[0].result);
    let reason = v.reason();
    assert!(reason.contains("peer cert does not match domain"), "{reason}");
    assert!(reason.contains("Required-Verify-Hosted-Domains"), "{reason}");
    assert!(server.received.lock().unwrap().is_empty());

    let (_, v) = w.deliver(&tls_only(TlsSupport::RequiredVerifyHostedDomains), &no_policy());
    assert_eq!(delivered(&v), Some(("mx.example.test", SecurityLevel::WebPkiVerified)), "{v:?}");
}

/// DESIGN.md: the CN counts only when the certificate has no DNS SAN.
#[test]
fn required_verify_accepts_the_cn_only_without_a_san() {
    let mut w = World::new();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, DOMAIN);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &Issuer::from_params(&w.pki.ca_params, &w.pki.ca_key)).unwrap();
    let pkcs8 = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    w.serve("mx.example.test", Starttls::with(vec![cert.der().clone()], pkcs8));
    let (_, v) = w.deliver(&tls_only(TlsSupport::RequiredVerify), &no_policy());
    assert_eq!(delivered(&v), Some(("mx.example.test", SecurityLevel::WebPkiVerified)), "{v:?}");
    // RFC 8461 §4.2: MTA-STS never uses the CN.
    let f = facts(&[("mx.example.test", TlsaFacts::SecureNone)], sts("enforce", "mx.example.test"));
    let mut w2 = World::new();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "mx.example.test");
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &Issuer::from_params(&w2.pki.ca_params, &w2.pki.ca_key)).unwrap();
    let pkcs8 = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    w2.serve("mx.example.test", Starttls::with(vec![cert.der().clone()], pkcs8));
    let (_, v) = w2.deliver(&profile(TlsSupport::Preferred, DaneSupport::None, StsSupport::On), &f);
    assert_eq!(deferred(&v).map(|d| d.1), Some(Some(ResultType::CertificateHostMismatch)), "{v:?}");
}

/// DESIGN.md precedence 1: a route exempts the destination from DANE and
/// MTA-STS; the route host is used under the TLS support.
#[test]
fn a_route_is_exempt_from_dane_and_mta_sts() {
    let mut w = World::new();
    let relay = w.serve_valid("relay.provider.test", "relay.provider.test");
    let controls = profile(TlsSupport::Preferred, DaneSupport::Mandatory, StsSupport::On)
        .with_route(Destination::parse(DOMAIN).unwrap(), name("relay.provider.test"));
    let f = facts(
        &[("mx.example.test", TlsaFacts::Secure(vec![TlsaRecord::new(3, 0, 1, vec![1; 32])]))],
        sts("enforce", "mx.example.test"),
    );
    let (_, v) = w.deliver(&controls, &f);
    assert_eq!(delivered(&v), Some(("relay.provider.test", SecurityLevel::Encrypted)), "{v:?}");
    assert_eq!(relay.received.lock().unwrap().len(), 1);
}

/// A broken TLS handshake moves on to the next MX host.
#[test]
fn a_broken_handshake_moves_to_the_next_host() {
    let mut w = World::new();
    w.serve("mx1.example.test", Starttls::Broken);
    w.serve_valid("mx2.example.test", "mx2.example.test");
    let f = facts(
        &[("mx1.example.test", TlsaFacts::SecureNone), ("mx2.example.test", TlsaFacts::SecureNone)],
        StsFacts::NoPolicy,
    );
    let (tried, v) = w.deliver(&tls_only(TlsSupport::Required), &f);
    assert!(matches!(tried[0].attempt, Attempt::HandshakeFailed { .. }), "{:?}", tried[0].attempt);
    assert_eq!(delivered(&v), Some(("mx2.example.test", SecurityLevel::Encrypted)));
    let Verdict::Deliver { failures, .. } = &v else { unreachable!() };
    assert_eq!(failures[0].host.as_str(), "mx1.example.test");
}
