//! The decision engine: one named test per gateway rule of DESIGN.md
//! ("Destination controls and precedence") and per RFC rule it applies.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use smtp_tls_policy::dane::{DaneFailure, DaneOutcome, TlsaRecord};
use smtp_tls_policy::engine::{
    Attempt, AuthOutcome, Authentication, Basis, CertFailure, DaneSupport, DeliveryContext, Destination,
    DestinationControls, DnssecStatus, DomainFacts, HostResult, MxFacts, Options, Plan, Profile, SecurityLevel,
    SkipReason, StsFacts, StsSupport, TlsRequirement, TlsSupport, TlsVersion, TlsaFacts, Verdict, assess, verdict,
};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::report::ResultType;
use smtp_tls_policy::sts::{Mode, Policy, PolicyId};

fn name(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

fn usable_tlsa() -> Vec<TlsaRecord> {
    vec![TlsaRecord::new(3, 1, 1, vec![0xab; 32])]
}

fn sts(mode: &str, mx: &[&str]) -> StsFacts {
    let mx: String = mx.iter().map(|m| format!("mx: {m}\n")).collect();
    let policy = Policy::parse(&format!("version: STSv1\nmode: {mode}\n{mx}max_age: 86400\n")).unwrap();
    StsFacts::Policy { id: PolicyId::parse("id1").unwrap(), policy: Arc::new(policy) }
}

/// example.com with MX mx1 and mx2.example.com, secure MX RRset, no TLSA.
fn facts(tlsa: [TlsaFacts; 2], sts: StsFacts) -> DomainFacts {
    let [a, b] = tlsa;
    DomainFacts::new(
        name("example.com"),
        vec![MxFacts::new(name("mx1.example.com"), a), MxFacts::new(name("mx2.example.com"), b)],
        DnssecStatus::Secure,
    )
    .with_sts(sts)
}

fn controls(tls: TlsSupport, dane: DaneSupport, sts: StsSupport) -> DestinationControls {
    DestinationControls::new(Profile::new(tls, dane, sts))
}

fn hosts(plan: &Plan) -> Vec<&str> {
    plan.hosts.iter().map(|h| h.host.as_str()).collect()
}

fn tls(auth: AuthOutcome) -> Attempt {
    Attempt::tls(TlsVersion::Tls13, auth)
}

fn webpki_ok() -> Attempt {
    tls(AuthOutcome::WebPki(Ok("mx1.example.com".into())))
}

fn webpki_err(f: CertFailure) -> Attempt {
    tls(AuthOutcome::WebPki(Err(f)))
}

fn fresh() -> DeliveryContext {
    DeliveryContext::new(Duration::from_secs(60))
}

/// Runs every host of the plan with the same attempt and returns the verdict.
fn run(plan: &Plan, attempt: &Attempt, ctx: DeliveryContext) -> Verdict {
    let results: Vec<HostResult> = plan.hosts.iter().map(|h| assess(plan, h, attempt)).collect();
    verdict(plan, &results, ctx)
}

// ------------------------------------------------------------ precedence

/// DESIGN.md precedence 2: DANE succeeds, MTA-STS is not consulted — even a
/// host the MTA-STS policy does not list is used under DANE.
#[test]
fn dane_success_skips_mta_sts() {
    let c = controls(TlsSupport::Preferred, DaneSupport::Opportunistic, StsSupport::On);
    let f = facts([TlsaFacts::Secure(usable_tlsa()), TlsaFacts::SecureNone], sts("enforce", &["mx2.example.com"]));
    let plan = c.plan(&f);
    assert_eq!(hosts(&plan), ["mx1.example.com", "mx2.example.com"]);
    assert_eq!(plan.hosts[0].requirement.basis, Basis::Dane);
    assert!(matches!(plan.hosts[0].requirement.auth, Authentication::Dane { .. }));
    assert_eq!(plan.hosts[1].requirement.basis, Basis::Sts(Mode::Enforce));
    let ok = DaneOutcome::Authenticated(dane_match());
    let v = run(&plan, &tls(AuthOutcome::Dane(ok)), fresh());
    assert!(matches!(v, Verdict::Deliver { level: SecurityLevel::DaneVerified, .. }), "{v:?}");
}

fn dane_match() -> smtp_tls_policy::dane::DaneMatch {
    // Build a real match through verify_chain on a self-signed certificate.
    use rcgen::{CertificateParams, KeyPair, PublicKeyData};
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["mx1.example.com".into()]).unwrap().self_signed(&key).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &key.subject_public_key_info());
    let record = TlsaRecord::new(3, 1, 1, digest.as_ref().to_vec());
    let outcome =
        smtp_tls_policy::dane::verify_chain(&[cert.der().clone()], &[record], &[], rustls_pki_types::UnixTime::now());
    outcome.matched().cloned().expect("authenticated")
}

/// DESIGN.md precedence 2: DANE Mandatory without secure usable TLSA, or
/// with a verification failure, means no delivery: defer.
#[test]
fn dane_mandatory_failing_defers() {
    let c = controls(TlsSupport::Preferred, DaneSupport::Mandatory, StsSupport::On);
    let plan = c.plan(&facts([TlsaFacts::SecureNone, TlsaFacts::Insecure], sts("enforce", &["*.example.com"])));
    assert!(plan.hosts.is_empty());
    assert_eq!(plan.skipped.len(), 2);
    assert!(plan.skipped.iter().all(|(_, r)| *r == SkipReason::DaneRequired));
    let v = verdict(&plan, &[], fresh());
    assert!(matches!(&v, Verdict::Defer { result_type: Some(ResultType::DaneRequired), .. }), "{v:?}");
    assert_eq!(v.status().to_string(), "4.7.5");

    let plan = c.plan(&facts([TlsaFacts::Secure(usable_tlsa()), TlsaFacts::SecureNone], StsFacts::NoPolicy));
    assert_eq!(hosts(&plan), ["mx1.example.com"]);
    let v = run(&plan, &tls(AuthOutcome::Dane(DaneOutcome::Failed(DaneFailure::NoMatch))), fresh());
    assert!(matches!(v, Verdict::Defer { result_type: Some(ResultType::CertificateNotTrusted), .. }), "{v:?}");
    // All records unusable: no delivery under Mandatory.
    let unusable = vec![TlsaRecord::new(1, 1, 1, vec![0; 32])];
    let plan = c.plan(&facts([TlsaFacts::Secure(unusable), TlsaFacts::SecureNone], StsFacts::NoPolicy));
    assert!(plan.hosts.is_empty());
}

/// DESIGN.md precedence 2: DANE Opportunistic with no DANE for a host goes
/// on to MTA-STS.
#[test]
fn dane_opportunistic_without_dane_falls_to_mta_sts() {
    let c = controls(TlsSupport::Preferred, DaneSupport::Opportunistic, StsSupport::On);
    for tlsa in [TlsaFacts::SecureNone, TlsaFacts::Insecure, TlsaFacts::Unavailable] {
        let plan = c.plan(&facts([tlsa.clone(), tlsa.clone()], sts("enforce", &["mx1.example.com"])));
        assert_eq!(hosts(&plan), ["mx1.example.com"], "{tlsa:?}");
        assert_eq!(plan.hosts[0].requirement.basis, Basis::Sts(Mode::Enforce));
        assert_eq!(plan.skipped, [(name("mx2.example.com"), SkipReason::NotInStsPolicy)]);
    }
}

/// RFC 7672 §2.2.1: DANE only behind a secure MX RRset.
#[test]
fn rfc7672_2_2_1_insecure_mx_means_no_dane() {
    let c = controls(TlsSupport::Preferred, DaneSupport::Opportunistic, StsSupport::Off);
    let mut f = facts([TlsaFacts::Secure(usable_tlsa()), TlsaFacts::SecureNone], StsFacts::NoPolicy);
    f.mx_dnssec = DnssecStatus::Insecure;
    let plan = c.plan(&f);
    assert_eq!(plan.hosts[0].requirement.basis, Basis::TlsSupport);
    let mandatory = controls(TlsSupport::Preferred, DaneSupport::Mandatory, StsSupport::Off).plan(&f);
    assert!(mandatory.skipped.iter().all(|(_, r)| *r == SkipReason::MxInsecure));
    f.mx_dnssec = DnssecStatus::Indeterminate;
    let mandatory = controls(TlsSupport::Preferred, DaneSupport::Mandatory, StsSupport::Off).plan(&f);
    assert!(mandatory.skipped.iter().all(|(_, r)| *r == SkipReason::DnssecUnavailable));
}

/// RFC 7672 §2.2: a bogus or failed TLSA lookup removes the host; all
/// unusable records mean TLS without authentication.
#[test]
fn rfc7672_2_2_bogus_failed_and_unusable_tlsa() {
    let c = controls(TlsSupport::Preferred, DaneSupport::Opportunistic, StsSupport::Off);
    let unusable = vec![TlsaRecord::new(0, 0, 1, vec![0; 32])];
    let plan = c.plan(&facts([TlsaFacts::Bogus, TlsaFacts::Secure(unusable)], StsFacts::NoPolicy));
    assert_eq!(plan.skipped, [(name("mx1.example.com"), SkipReason::TlsaBogus)]);
    assert_eq!(hosts(&plan), ["mx2.example.com"]);
    let r = &plan.hosts[0].requirement;
    assert_eq!((r.tls, &r.auth), (TlsRequirement::Required, &Authentication::None));
    let plan = c.plan(&facts([TlsaFacts::Failed, TlsaFacts::Failed], StsFacts::NoPolicy));
    assert!(plan.hosts.is_empty());
    let v = verdict(&plan, &[], fresh());
    assert!(matches!(v, Verdict::Defer { result_type: Some(ResultType::DnssecInvalid), .. }), "{v:?}");
}

/// DESIGN.md: MTA-STS (or DANE) on with TLS support No is a configuration
/// error; at delivery the engine skips them and applies the TLS support.
#[test]
fn mta_sts_skipped_for_a_configuration_error_falls_to_tls_support() {
    let c = controls(TlsSupport::No, DaneSupport::Mandatory, StsSupport::On);
    let errors = c.validate().errors;
    assert_eq!(errors.len(), 2);
    assert_eq!(
        errors[0].to_string(),
        "default: MTA-STS support is on but TLS support is no; MTA-STS requires TLS: set tls to preferred or stronger, or sts=off"
    );
    let plan =
        c.plan(&facts([TlsaFacts::Secure(usable_tlsa()), TlsaFacts::SecureNone], sts("enforce", &["x.example"])));
    assert_eq!(hosts(&plan), ["mx1.example.com", "mx2.example.com"]);
    assert!(plan.hosts.iter().all(|h| h.requirement.tls == TlsRequirement::Never));
    assert!(plan.sts.applied().is_none());
}

/// DESIGN.md precedence 1: an SMTP route exempts the domain from DANE and
/// MTA-STS; the profile's TLS support applies to the route host.
#[test]
fn smtp_route_exempts_from_dane_and_mta_sts() {
    let c = controls(TlsSupport::Required, DaneSupport::Mandatory, StsSupport::On)
        .with_route(Destination::Exact(name("example.com")), name("relay.isp.example"));
    let plan = c.plan(&facts([TlsaFacts::SecureNone, TlsaFacts::SecureNone], sts("enforce", &["mx1.example.com"])));
    assert_eq!(hosts(&plan), ["relay.isp.example"]);
    assert_eq!(plan.route, Some(name("relay.isp.example")));
    let r = &plan.hosts[0].requirement;
    assert_eq!((r.basis, r.tls, &r.auth), (Basis::Route, TlsRequirement::Required, &Authentication::None));
    assert!(plan.skipped.is_empty() && plan.sts.applied().is_none());
}

/// RFC 8461 §3.4 option: the route host's domain is the policy domain.
#[test]
fn rfc8461_3_4_route_policy_domain_option() {
    let options = Options::default().route_policy_domain(true);
    let c = controls(TlsSupport::Preferred, DaneSupport::Opportunistic, StsSupport::On)
        .with_route(Destination::Subdomains(name("example.com")), name("relay.isp.example"))
        .with_options(options);
    let mut f = facts([TlsaFacts::SecureNone, TlsaFacts::SecureNone], sts("enforce", &["*.isp.example"]));
    f.domain = name("sub.example.com");
    let plan = c.plan(&f);
    assert_eq!(hosts(&plan), ["relay.isp.example"]);
    assert_eq!(plan.hosts[0].requirement.basis, Basis::Sts(Mode::Enforce));
    let f = f.with_sts(sts("enforce", &["other.example"]));
    let plan = c.plan(&f);
    assert_eq!(plan.skipped, [(name("relay.isp.example"), SkipReason::NotInStsPolicy)]);
}

/// RFC 8461 §4.1, §5.1: enforce uses only matching MX hosts.
#[test]
fn rfc8461_5_1_enforce_skips_non_matching_mx() {
    let c = controls(TlsSupport::Preferred, DaneSupport::None, StsSupport::On);
    let plan = c.plan(&facts([TlsaFacts::SecureNone, TlsaFacts::SecureNone], sts("enforce", &["mx2.example.com"])));
    assert_eq!(hosts(&plan), ["mx2.example.com"]);
    assert_eq!(plan.skipped, [(name("mx1.example.com"), SkipReason::NotInStsPolicy)]);
    let r = &plan.hosts[0].requirement;
    assert_eq!((r.tls, r.min_version), (TlsRequirement::Required, TlsVersion::Tls12));
    assert_eq!(r.auth, Authentication::WebPki { names: vec![name("mx2.example.com")], cn_fallback: vec![] });
}

/// RFC 8461 §5.1: a host failing validation is skipped; when all fail, defer.
#[test]
fn rfc8461_5_1_enforce_with_a_bad_certificate_tries_the_next_mx_then_defers() {
    let c = controls(TlsSupport::Preferred, DaneSupport::None, StsSupport::On);
    let plan = c.plan(&facts([TlsaFacts::SecureNone, TlsaFacts::SecureNone], sts("enforce", &["*.example.com"])));
    let bad = assess(&plan, &plan.hosts[0], &webpki_err(CertFailure::Expired));
    assert!(matches!(&bad, HostResult::TryNext(f) if f.result_type == Some(ResultType::CertificateExpired)));
    let good = assess(&plan, &plan.hosts[1], &webpki_ok());
    let v = verdict(&plan, &[bad.clone(), good], fresh());
    match &v {
        Verdict::Deliver { host, level, failures, .. } => {
            assert_eq!((host.as_str(), *level), ("mx2.example.com", SecurityLevel::WebPkiVerified));
            assert_eq!(failures.len(), 1, "the first host's failure is kept for TLS-RPT");
        }
        other => panic!("{other:?}"),
    }
    let bad2 = assess(&plan, &plan.hosts[1], &webpki_err(CertFailure::Expired));
    let v = verdict(&plan, &[bad, bad2], fresh());
    match &v {
        Verdict::Defer { status, result_type, recheck_policy, reason, .. } => {
            assert_eq!(status.to_string(), "4.7.5");
            assert_eq!(*result_type, Some(ResultType::CertificateExpired));
            assert!(*recheck_policy, "RFC 8461 §5.1: re-check the policy");
            assert_eq!(reason, "mx2.example.com: certificate expired or not yet valid (MTA-STS enforce, RFC 8461)");
        }
        other => panic!("{other:?}"),
    }
}

/// RFC 8461 §5: testing delivers under the TLS support and reports.
#[test]
fn rfc8461_5_testing_delivers_and_reports() {
    let c = controls(TlsSupport::Preferred, DaneSupport::None, StsSupport::On);
    let plan = c.plan(&facts([TlsaFacts::SecureNone, TlsaFacts::SecureNone], sts("testing", &["other.example"])));
    assert_eq!(hosts(&plan), ["mx1.example.com", "mx2.example.com"], "testing never skips");
    let v = run(&plan, &webpki_err(CertFailure::NotTrusted), fresh());
    match &v {
        Verdict::Deliver { level, failures, .. } => {
            assert_eq!(*level, SecurityLevel::Encrypted);
            assert_eq!(failures[0].result_type, Some(ResultType::CertificateNotTrusted));
            // RFC 8461 §5: and what enforce would have refused first, the unlisted host.
            assert_eq!(failures[1].result_type, Some(ResultType::CertificateHostMismatch));
            assert!(failures[1].reason.contains("not listed"), "{}", failures[1].reason);
        }
        other => panic!("{other:?}"),
    }
    let v = run(&plan, &Attempt::Plaintext { starttls_offered: false }, fresh());
    assert!(matches!(&v, Verdict::Deliver { level: SecurityLevel::Plaintext, failures, .. }
        if failures[0].result_type == Some(ResultType::StarttlsNotSupported)));
    // The option treats testing as enforce.
    let strict = c.with_options(Options::default().testing_as_enforce(true));
    let plan = strict.plan(&facts([TlsaFacts::SecureNone, TlsaFacts::SecureNone], sts("testing", &["other.example"])));
    assert!(plan.hosts.is_empty());
}

/// RFC 8461 §5: `none`, no policy, or a policy that could not be had: the
/// TLS support applies.
#[test]
fn none_and_no_policy_use_the_tls_support() {
    let c = controls(TlsSupport::Required, DaneSupport::None, StsSupport::On);
    #[derive(Debug)]
    struct Refused;
    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("refused")
        }
    }
    impl std::error::Error for Refused {}
    let failed =
        StsFacts::Unavailable(smtp_tls_policy::cache::FetchFailure::new(ResultType::StsPolicyFetchError, Refused));
    for s in [sts("none", &[]), StsFacts::NoPolicy, failed, StsFacts::NotChecked] {
        let plan = c.plan(&facts([TlsaFacts::SecureNone, TlsaFacts::SecureNone], s.clone()));
        assert_eq!(hosts(&plan).len(), 2, "{s:?}");
        assert!(plan.hosts.iter().all(|h| h.requirement.basis == Basis::TlsSupport), "{s:?}");
        assert!(plan.hosts.iter().all(|h| h.requirement.tls == TlsRequirement::Required));
    }
}

/// RFC 8461 §4.2 and RFC 7672 §3: TLS below 1.2 fails MTA-STS and DANE.
#[test]
fn tls_below_1_2_fails_sts_and_dane() {
    let c = controls(TlsSupport::Preferred, DaneSupport::Opportunistic, StsSupport::On);
    let plan =
        c.plan(&facts([TlsaFacts::Secure(usable_tlsa()), TlsaFacts::SecureNone], sts("enforce", &["*.example.com"])));
    let old = Attempt::tls(TlsVersion::Tls11, AuthOutcome::WebPki(Ok("x".into())));
    for host in &plan.hosts {
        let result = assess(&plan, host, &old);
        assert!(matches!(result, HostResult::TryNext(_)), "{}", host.host);
        // Operator text, not Debug: "TLS 1.1 is below the TLS 1.2 that …".
        let HostResult::TryNext(f) = result else { unreachable!() };
        assert!(f.reason.contains(": TLS 1.1 is below the TLS 1.2 that "), "{}", f.reason);
    }
    // Without a policy, the TLS support accepts it.
    let plain = controls(TlsSupport::Preferred, DaneSupport::None, StsSupport::Off);
    let plan = plain.plan(&facts([TlsaFacts::SecureNone, TlsaFacts::SecureNone], StsFacts::NoPolicy));
    assert!(matches!(assess(&plan, &plan.hosts[0], &old), HostResult::Deliver { .. }));
}

/// DESIGN.md: each of the six TLS supports with STARTTLS absent, present
/// but unverified, and present and verified.
#[test]
fn each_tls_support_with_starttls_absent_unverified_and_verified() {
    use SecurityLevel::*;
    /// The level delivered at, or None for no delivery.
    type Level = Option<SecurityLevel>;
    // (support, absent, present with a bad certificate, present and verified)
    let table: [(TlsSupport, Level, Level, Level); 6] = [
        (TlsSupport::No, Some(Plaintext), None, None),
        (TlsSupport::Preferred, Some(Plaintext), Some(Encrypted), Some(Encrypted)),
        (TlsSupport::Required, None, Some(Encrypted), Some(Encrypted)),
        (TlsSupport::PreferredVerify, Some(Plaintext), Some(Encrypted), Some(WebPkiVerified)),
        (TlsSupport::RequiredVerify, None, None, Some(WebPkiVerified)),
        (TlsSupport::RequiredVerifyHostedDomains, None, None, Some(WebPkiVerified)),
    ];
    for (support, absent, unverified, verified) in table {
        let c = controls(support, DaneSupport::None, StsSupport::Off);
        let plan = c.plan(&facts([TlsaFacts::SecureNone, TlsaFacts::SecureNone], StsFacts::NoPolicy));
        let level = |attempt: &Attempt| match run(&plan, attempt, fresh()) {
            Verdict::Deliver { level, .. } => Some(level),
            _ => None,
        };
        assert_eq!(level(&Attempt::Plaintext { starttls_offered: false }), absent, "{support:?} absent");
        if support == TlsSupport::No {
            assert_eq!(plan.hosts[0].requirement.tls, TlsRequirement::Never);
            continue;
        }
        let bad = match plan.hosts[0].requirement.auth {
            Authentication::None => tls(AuthOutcome::NotChecked),
            _ => webpki_err(CertFailure::NotTrusted),
        };
        assert_eq!(level(&bad), unverified, "{support:?} unverified");
        let good = match plan.hosts[0].requirement.auth {
            Authentication::None => tls(AuthOutcome::NotChecked),
            _ => webpki_ok(),
        };
        assert_eq!(level(&good), verified, "{support:?} verified");
    }
}

/// DESIGN.md: Required-Verify names the recipient domain; a hosted
/// destination whose certificate names only the MX host stops, with the
/// hint to use Required-Verify-Hosted-Domains, which accepts it.
#[test]
fn hosted_domains_and_the_hosted_hint() {
    let f = facts([TlsaFacts::SecureNone, TlsaFacts::SecureNone], StsFacts::NoPolicy);
    let strict = controls(TlsSupport::RequiredVerify, DaneSupport::None, StsSupport::Off).plan(&f);
    assert_eq!(
        strict.hosts[0].requirement.auth,
        Authentication::WebPki {
            names: vec![name("example.com")],
            cn_fallback: vec![name("example.com"), name("mx1.example.com")]
        }
    );
    let mismatch = webpki_err(CertFailure::HostMismatch { names_connected_host: true });
    let result = assess(&strict, &strict.hosts[0], &mismatch);
    assert!(matches!(result, HostResult::Stop(_)), "{result:?}");
    let v = verdict(&strict, &[result], fresh());
    assert_eq!(
        v.reason(),
        "mx1.example.com: peer cert does not match domain example.com: the destination looks hosted (the certificate names the MX host); use Required-Verify-Hosted-Domains for example.com"
    );
    assert!(matches!(v, Verdict::Defer { result_type: Some(ResultType::CertificateHostMismatch), .. }));
    // A certificate naming neither: the plain message, and the next host is tried.
    let neither = webpki_err(CertFailure::HostMismatch { names_connected_host: false });
    let result = assess(&strict, &strict.hosts[0], &neither);
    assert!(
        matches!(&result, HostResult::TryNext(f) if f.reason.contains("peer cert does not match domain (example.com)"))
    );

    let hosted = controls(TlsSupport::RequiredVerifyHostedDomains, DaneSupport::None, StsSupport::Off).plan(&f);
    let Authentication::WebPki { names, .. } = &hosted.hosts[0].requirement.auth else { panic!() };
    assert_eq!(names, &[name("example.com"), name("mx1.example.com")]);
    // With a route, the route host is a reference name too.
    let routed = controls(TlsSupport::RequiredVerifyHostedDomains, DaneSupport::None, StsSupport::Off)
        .with_route(Destination::Exact(name("example.com")), name("smtp.hosted.example"))
        .plan(&f);
    let Authentication::WebPki { names, .. } = &routed.hosts[0].requirement.auth else { panic!() };
    assert_eq!(names, &[name("example.com"), name("smtp.hosted.example")]);
}

/// DESIGN.md precedence 4: bounce only past the queue lifetime, and under
/// an enforced MTA-STS policy only after the policy was re-checked.
#[test]
fn bounce_only_after_the_lifetime_and_the_recheck() {
    let lifetime = Duration::from_secs(5 * 86_400);
    let old = DeliveryContext::new(lifetime);
    let c = controls(TlsSupport::Preferred, DaneSupport::None, StsSupport::On);
    let plan = c.plan(&facts([TlsaFacts::SecureNone, TlsaFacts::SecureNone], sts("enforce", &["*.example.com"])));
    let bad = webpki_err(CertFailure::NotTrusted);
    assert!(matches!(run(&plan, &bad, fresh()), Verdict::Defer { recheck_policy: true, .. }));
    let v = run(&plan, &bad, old);
    assert!(matches!(&v, Verdict::Defer { recheck_policy: true, .. }), "{v:?}");
    assert!(v.reason().ends_with("re-check the MTA-STS policy for a newer id before bouncing (RFC 8461 §5.1)"));
    let v = run(&plan, &bad, old.rechecked());
    assert!(matches!(&v, Verdict::Bounce { result_type: Some(ResultType::CertificateNotTrusted), .. }), "{v:?}");
    assert_eq!(v.status().to_string(), "5.7.5");
    // Without MTA-STS: the lifetime alone decides; STARTTLS missing is X.7.4.
    let c = controls(TlsSupport::Required, DaneSupport::None, StsSupport::Off);
    let plan = c.plan(&facts([TlsaFacts::SecureNone, TlsaFacts::SecureNone], StsFacts::NoPolicy));
    let none = Attempt::Plaintext { starttls_offered: false };
    assert_eq!(run(&plan, &none, fresh()).status().to_string(), "4.7.4");
    assert_eq!(run(&plan, &none, old).status().to_string(), "5.7.4");
    // Connection failures are not security failures: 4.4.4, then 5.4.4.
    assert_eq!(run(&plan, &Attempt::Unreachable, fresh()).status().to_string(), "4.4.4");
    assert_eq!(run(&plan, &Attempt::Unreachable, old).status().to_string(), "5.4.4");
}

// ----------------------------------------------------------- configuration

#[test]
fn profiles_for_exact_domains_and_subdomains() {
    let c = DestinationControls::new(Profile::default())
        .with_profile(
            Destination::Exact(name("example.com")),
            Profile::new(TlsSupport::Required, DaneSupport::None, StsSupport::On),
        )
        .with_profile(
            Destination::Subdomains(name("example.com")),
            Profile::new(TlsSupport::RequiredVerify, DaneSupport::None, StsSupport::Off),
        );
    assert_eq!(c.profile_for(&name("example.com")).tls, TlsSupport::Required);
    assert_eq!(c.profile_for(&name("a.example.com")).tls, TlsSupport::RequiredVerify);
    assert_eq!(c.profile_for(&name("a.b.example.com")).tls, TlsSupport::RequiredVerify);
    assert_eq!(c.profile_for(&name("example.org")).tls, TlsSupport::Preferred);
    assert_eq!(c.profile_for(&name("notexample.com")).tls, TlsSupport::Preferred);
}

#[test]
fn config_file_with_line_numbered_errors() {
    let text = "\
# gateway destinations
default tls=preferred dane=opportunistic sts=on lifetime=3d
example.com  tls=required-verify dane=mandatory
.example.org tls=required sts=on
bad.example  tls=never
route example.net smtp.relay.example
option testing-as-enforce
nope.example tls=no sts=on
";
    let err = DestinationControls::parse(text).unwrap_err();
    let lines: Vec<String> = err.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "line 5: bad.example: tls: unknown value \"never\" (expected one of no, preferred, required, preferred-verify, required-verify, required-verify-hosted-domains)",
            "line 8: nope.example: MTA-STS support is on but TLS support is no; MTA-STS requires TLS: set tls to preferred or stronger, or sts=off",
            "line 8: nope.example: DANE support is on but TLS support is no; DANE requires TLS: set tls to preferred or stronger, or dane=none",
        ]
    );
    let good: String =
        text.lines().filter(|l| !l.starts_with("bad") && !l.starts_with("nope")).map(|l| format!("{l}\n")).collect();
    let loaded = DestinationControls::parse(&good).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(
        loaded.warnings[0].to_string(),
        "line 2: default: MTA-STS support is on for the default profile: every domain without its own profile gets MTA-STS"
    );
    let c = loaded.controls;
    let p = c.profile_for(&name("example.com"));
    assert_eq!((p.tls, p.dane, p.sts), (TlsSupport::RequiredVerify, DaneSupport::Mandatory, StsSupport::On));
    assert_eq!(p.queue_lifetime, Duration::from_secs(3 * 86_400), "inherited from the default line");
    assert_eq!(c.route_for(&name("example.net")), Some(&name("smtp.relay.example")));
    assert!(c.options().testing_as_enforce);
    let err = DestinationControls::parse(
        "default tls=preferred\ndefault tls=required\nroute x\noption fast\nfoo..bar tls=no\n",
    )
    .unwrap_err();
    assert_eq!(err.0.iter().map(|p| p.line).collect::<Vec<_>>(), [Some(2), Some(3), Some(4), Some(5)]);
}

// -------------------------------------------------------------- properties

fn tlsa_facts() -> impl Strategy<Value = TlsaFacts> {
    prop_oneof![
        Just(TlsaFacts::Secure(usable_tlsa())),
        Just(TlsaFacts::Secure(vec![TlsaRecord::new(1, 1, 1, vec![0; 32])])),
        Just(TlsaFacts::SecureNone),
        Just(TlsaFacts::Insecure),
        Just(TlsaFacts::Bogus),
        Just(TlsaFacts::Failed),
        Just(TlsaFacts::Unavailable),
    ]
}

fn any_sts() -> impl Strategy<Value = StsFacts> {
    prop_oneof![
        Just(sts("enforce", &["mx1.example.com"])),
        Just(sts("enforce", &["*.example.com"])),
        Just(sts("testing", &["mx1.example.com"])),
        Just(sts("none", &[])),
        Just(StsFacts::NoPolicy),
    ]
}

proptest! {
    /// DESIGN.md: no plan ever allows plaintext to a host with usable TLSA
    /// records (behind a secure MX RRset, DANE on) or under an enforce policy.
    #[test]
    fn no_plaintext_with_usable_tlsa_or_under_enforce(
        tls in prop::sample::select(TlsSupport::ALL.to_vec()),
        dane in prop::sample::select(DaneSupport::ALL.to_vec()),
        sts_on in any::<bool>(),
        testing_as_enforce in any::<bool>(),
        a in tlsa_facts(), b in tlsa_facts(),
        s in any_sts(),
        secure in any::<bool>(),
    ) {
        let sts_support = if sts_on { StsSupport::On } else { StsSupport::Off };
        let c = controls(tls, dane, sts_support).with_options(Options::default().testing_as_enforce(testing_as_enforce));
        let mut f = facts([a, b], s.clone());
        f.mx_dnssec = if secure { DnssecStatus::Secure } else { DnssecStatus::Insecure };
        let plan = c.plan(&f);
        let enforce = match &s {
            StsFacts::Policy { policy, .. } => policy.mode() == Mode::Enforce || (testing_as_enforce && policy.mode() == Mode::Testing),
            _ => false,
        } && sts_on && tls != TlsSupport::No;
        for (h, mx) in plan.hosts.iter().zip(f.mx.iter().filter(|m| plan.hosts.iter().any(|h| h.host == m.host))) {
            let usable = matches!(&mx.tlsa, TlsaFacts::Secure(r) if r.iter().any(TlsaRecord::is_usable_for_smtp));
            if (usable && secure && dane != DaneSupport::None && tls != TlsSupport::No) || enforce {
                prop_assert!(!h.requirement.allows_plaintext(), "{:?} allows plaintext: {:?}", h.host, h.requirement);
                prop_assert!(h.requirement.auth != Authentication::None);
            }
        }
        if dane == DaneSupport::Mandatory && tls != TlsSupport::No {
            for h in &plan.hosts {
                prop_assert_eq!(h.requirement.basis, Basis::Dane);
            }
        }
    }
}

/// Opportunistic TLS: a failed handshake moves on, and a plain-text retry
/// of the same host is accepted; where TLS is required it is not.
#[test]
fn a_failed_handshake_and_the_plaintext_retry() {
    let failed = Attempt::HandshakeFailed { reason: "alert: handshake_failure".into() };
    let retry = Attempt::Plaintext { starttls_offered: true };
    let f = facts([TlsaFacts::SecureNone, TlsaFacts::SecureNone], StsFacts::NoPolicy);
    let may = controls(TlsSupport::Preferred, DaneSupport::None, StsSupport::Off).plan(&f);
    assert!(matches!(assess(&may, &may.hosts[0], &failed), HostResult::TryNext(_)));
    assert!(matches!(assess(&may, &may.hosts[0], &retry), HostResult::Deliver { level: SecurityLevel::Plaintext, .. }));
    let must = controls(TlsSupport::Required, DaneSupport::None, StsSupport::Off).plan(&f);
    assert!(matches!(assess(&must, &must.hosts[0], &retry), HostResult::TryNext(_)));
}

// ------------------------------------------------------------ the delivery loop

/// `Delivery` hands out the hosts in order, stops on the first delivery,
/// and turns the attempts into the verdict and one TLS-RPT session per
/// attempt with a TLS outcome (RFC 8460 §4.1) under the policy that
/// governed the host.
#[test]
fn delivery_owns_the_attempt_loop_and_yields_the_sessions() {
    let c = controls(TlsSupport::Preferred, DaneSupport::Opportunistic, StsSupport::On);
    let f =
        facts([TlsaFacts::SecureNone, TlsaFacts::SecureNone], sts("enforce", &["mx1.example.com", "mx2.example.com"]));
    let plan = c.plan(&f);
    let mut d = plan.delivery();
    let first = d.next_host().unwrap();
    assert_eq!(first.host, name("mx1.example.com"));
    assert!(matches!(d.record(webpki_err(CertFailure::Expired)), Some(HostResult::TryNext(_))));
    assert_eq!(d.next_host().unwrap().host, name("mx2.example.com"));
    assert!(matches!(d.record(webpki_ok()), Some(HostResult::Deliver { .. })));
    assert!(d.delivered());
    assert!(d.next_host().is_none(), "no host after a delivery");
    assert!(d.record(webpki_ok()).is_none(), "nothing pending");
    let outcome = d.finish(fresh());
    assert!(matches!(outcome.verdict, Verdict::Deliver { .. }));
    let kinds: Vec<(&str, Option<ResultType>)> = outcome
        .sessions
        .iter()
        .map(|s| (s.policy.policy_type.as_str(), s.failure.as_ref().map(|f| f.result_type)))
        .collect();
    assert_eq!(kinds, [("sts", Some(ResultType::CertificateExpired)), ("sts", None)]);
    assert_eq!(outcome.sessions[0].failure.as_ref().unwrap().receiving_mx_hostname.as_deref(), Some("mx1.example.com"));
    let sts = outcome.sts.expect("an enforced policy has an outcome");
    // Delivered with a verified certificate, but an earlier host failed: not met.
    assert!(!sts.met);
    assert_eq!(sts.to_string(), "MTA-STS policy for the domain (example.com) Failed.");
}

#[test]
fn a_host_handed_out_and_not_recorded_counts_as_unreachable() {
    let c = controls(TlsSupport::Preferred, DaneSupport::Opportunistic, StsSupport::On);
    let f = facts([TlsaFacts::SecureNone, TlsaFacts::SecureNone], sts("enforce", &["*.example.com"]));
    let plan = c.plan(&f);
    let mut d = plan.delivery();
    d.next_host();
    assert_eq!(d.next_host().unwrap().host, name("mx2.example.com"), "the results stay in step with the hosts");
    d.record(webpki_ok());
    let outcome = d.finish(fresh());
    assert!(matches!(&outcome.verdict, Verdict::Deliver { host, .. } if *host == name("mx2.example.com")));
    // The unreachable host is no TLS session; the delivery met the policy.
    assert_eq!(outcome.sessions.len(), 1);
    assert!(outcome.sessions[0].is_success());
    let sts = outcome.sts.unwrap();
    assert!(sts.met);
    assert_eq!(sts.to_string(), "MTA-STS policy for the domain (example.com) Successful.");
}

/// A policy announced but not to be had is in the plan (RFC 8461 §5.1:
/// delivery goes on) and reported as a failed `sts` session (RFC 8460
/// §4.3.2.2); skipped hosts are failed sessions of their own.
#[test]
fn plan_sts_carries_an_unavailable_policy_and_skips_are_sessions() {
    use smtp_tls_policy::cache::FetchFailure;
    use smtp_tls_policy::engine::PlanSts;
    #[derive(Debug, thiserror::Error)]
    #[error("HTTP 404")]
    struct NotFound;
    let c = controls(TlsSupport::Preferred, DaneSupport::Opportunistic, StsSupport::On);
    let failure = FetchFailure::new(ResultType::StsPolicyFetchError, NotFound);
    let f = facts([TlsaFacts::Bogus, TlsaFacts::SecureNone], StsFacts::Unavailable(failure.clone()));
    let plan = c.plan(&f);
    assert_eq!(plan.sts, PlanSts::Unavailable(failure));
    assert!(plan.sts.applied().is_none());
    let mut d = plan.delivery();
    while d.next_host().is_some() {
        d.record(tls(AuthOutcome::NotChecked));
    }
    let outcome = d.finish(fresh());
    assert!(outcome.sts.is_none());
    let kinds: Vec<(&str, Option<ResultType>)> = outcome
        .sessions
        .iter()
        .map(|s| (s.policy.policy_type.as_str(), s.failure.as_ref().map(|f| f.result_type)))
        .collect();
    assert_eq!(
        kinds,
        [("tlsa", Some(ResultType::DnssecInvalid)), ("sts", Some(ResultType::StsPolicyFetchError)), ("sts", None),]
    );
    // The sessions feed the aggregator as they are.
    let mut agg = smtp_tls_policy::report::Aggregator::new();
    outcome.sessions.iter().for_each(|s| agg.record(s));
    assert_eq!(agg.totals(&name("example.com")), (1, 2));
}

/// RFC 8689 §5 and the TLS-RPT loop guard: a message the MTA marks
/// `TLS-Required: No` (a report) is planned without the recipient's DANE
/// and MTA-STS, delivered over the TLS the host offers even when its
/// certificate fails, and yields no TLS-RPT session; the same message
/// without the mark defers under the enforced policy and is reported.
#[test]
fn rfc8689_tls_required_no_plans_without_policies_and_is_never_reported() {
    let c = controls(TlsSupport::Preferred, DaneSupport::Opportunistic, StsSupport::On);
    let f = facts([TlsaFacts::SecureNone, TlsaFacts::SecureNone], sts("enforce", &["other.example"]));
    let normal = c.plan_for(&f, &fresh());
    assert_eq!(normal, c.plan(&f));
    assert!(normal.hosts.is_empty(), "enforce skips both unlisted hosts");
    let outcome = normal.delivery().finish(fresh());
    assert!(matches!(outcome.verdict, Verdict::Defer { .. }), "{:?}", outcome.verdict);
    assert!(!outcome.sessions.is_empty(), "the failure is reported");

    let report = fresh().tls_required_no();
    let plan = c.plan_for(&f, &report);
    assert_eq!(hosts(&plan), ["mx1.example.com", "mx2.example.com"]);
    assert!(!plan.sts_enforced());
    let mut delivery = plan.delivery();
    assert!(delivery.next_host().is_some());
    delivery.record(webpki_err(CertFailure::Expired));
    let outcome = delivery.finish(report);
    assert!(
        matches!(outcome.verdict, Verdict::Deliver { level: SecurityLevel::Encrypted, .. }),
        "{:?}",
        outcome.verdict
    );
    assert!(outcome.sessions.is_empty(), "a report's delivery is never itself reported");

    // TLS support No stays No.
    let plain = controls(TlsSupport::No, DaneSupport::None, StsSupport::Off);
    let plan = plain.plan_for(&f, &report);
    assert_eq!(plan.profile.tls, TlsSupport::No);
}
