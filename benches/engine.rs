//! Decision engine benchmarks (DESIGN.md: a plan for a 3-MX domain ≤ 2 µs),
//! and the assessment and verdict after the attempts.
//!
//! Run: `cargo bench --bench engine`

use std::sync::Arc;
use std::time::Duration;

use divan::{Bencher, black_box};
use smtp_tls_policy::dane::TlsaRecord;
use smtp_tls_policy::engine::{
    Attempt, AuthOutcome, CertFailure, DaneSupport, DeliveryContext, DestinationControls, DnssecStatus, DomainFacts,
    HostResult, MxFacts, Profile, StsFacts, StsSupport, TlsSupport, TlsVersion, TlsaFacts, assess, verdict,
};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::sts::{Policy, PolicyId};

fn main() {
    divan::main();
}

fn name(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

fn controls() -> DestinationControls {
    DestinationControls::new(Profile::new(TlsSupport::Preferred, DaneSupport::Opportunistic, StsSupport::On))
}

/// example.com: three MX hosts, one with usable TLSA, all under an enforce
/// MTA-STS policy.
fn facts() -> DomainFacts {
    let policy = Policy::parse(
        "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: *.backup.example.net\nmax_age: 604800\n",
    )
    .unwrap();
    DomainFacts::new(
        name("example.com"),
        vec![
            MxFacts::new(name("mx1.example.com"), TlsaFacts::Secure(vec![TlsaRecord::new(3, 1, 1, vec![0xab; 32])])),
            MxFacts::new(name("mx2.example.com"), TlsaFacts::SecureNone),
            MxFacts::new(name("a.backup.example.net"), TlsaFacts::Insecure),
        ],
        DnssecStatus::Secure,
    )
    .with_sts(StsFacts::Policy { id: PolicyId::parse("abc").unwrap(), policy: Arc::new(policy) })
}

#[divan::bench]
fn plan_3_mx(bencher: Bencher) {
    let (c, f) = (controls(), facts());
    bencher.bench(|| black_box(&c).plan(black_box(&f)));
}

/// The three assessments and the verdict of a delivery where the DANE
/// host is down and the second host fails its certificate check.
#[divan::bench]
fn assess_and_verdict(bencher: Bencher) {
    let (c, f) = (controls(), facts());
    let plan = c.plan(&f);
    let attempts = [
        Attempt::Unreachable,
        Attempt::tls(TlsVersion::Tls13, AuthOutcome::WebPki(Err(CertFailure::Expired))),
        Attempt::tls(TlsVersion::Tls13, AuthOutcome::WebPki(Ok("a.backup.example.net".into()))),
    ];
    let ctx = DeliveryContext::new(Duration::from_secs(60));
    bencher.bench(|| {
        let results: Vec<HostResult> = plan.hosts.iter().zip(&attempts).map(|(h, a)| assess(&plan, h, a)).collect();
        verdict(black_box(&plan), &results, ctx)
    });
}
