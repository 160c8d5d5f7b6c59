//! The whole resolve against the local world (a signed DNS server and an
//! HTTPS policy host on 127.0.0.1, the test world of examples/support):
//! cold — a domain never seen (TXT, MX, A/AAAA and TLSA lookups, DNSSEC
//! validation, the HTTPS fetch, the policy parse, the plan) — and warm —
//! a domain in the policy cache and in the resolver's DNS cache.
//!
//! `bind::*`: the same against zones signed by BIND's `dnssec-signzone`
//! (NSEC3, ECDSA P-256) and served by `named` (validated in process), and
//! through a validating `unbound` (trust-AD mode); needs Debian's bind9,
//! bind9-dnsutils and unbound (`.ci/run` installs them).
//!
//! Run: `cargo bench --bench resolve` (without BIND: `-- --skip bind`)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use divan::{Bencher, black_box};
use smtp_tls_policy::resolver::blocking::PolicyResolver;

#[path = "../examples/support/mod.rs"]
mod support;

use support::dns::{DnsWorld, Zones};
use support::https::{Pki, PolicyServer, ok};
use support::world::local_config;

/// Domains `d<N>.signed` available to the cold runs.
const DOMAINS: usize = 3000;

fn main() {
    divan::main();
}

struct World {
    dns: DnsWorld,
    https: PolicyServer,
    pki: Arc<Pki>,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let mut signed = String::from("mx.common A 127.0.0.1\n_tcp.mx.common TXT \"no TLSA below\"\n");
    let pki = Arc::new(Pki::new());
    let https = PolicyServer::start(Arc::clone(&pki));
    let body = b"version: STSv1\r\nmode: enforce\r\nmx: mx.common.signed\r\nmax_age: 86400\r\n";
    for n in 0..DOMAINS {
        signed += &format!("d{n} MX 10 mx.common\n_mta-sts.d{n} TXT \"v=STSv1; id=1;\"\n");
        https.set(&format!("mta-sts.d{n}.signed"), ok(body));
    }
    let world = World { dns: DnsWorld::start(&Zones { signed, ..Zones::default() }), https, pki };
    // Issue every policy host's certificate once, outside the measurement.
    let warm = resolver(&world);
    for n in 0..DOMAINS {
        warm.resolve(&format!("d{n}.signed")).unwrap();
    }
    world
});

fn resolver(w: &World) -> PolicyResolver {
    PolicyResolver::new(local_config(&w.dns, &w.https, &w.pki)).unwrap()
}

/// A domain never resolved by this resolver: every lookup and the fetch.
#[divan::bench(sample_count = 100, sample_size = 10)]
fn cold(bencher: Bencher) {
    let r = resolver(&WORLD);
    let next = AtomicUsize::new(0);
    bencher.bench_local(|| {
        let n = next.fetch_add(1, Ordering::Relaxed) % DOMAINS;
        let plan = r.resolve(&format!("d{n}.signed")).unwrap();
        assert!(plan.sts.applied().is_some());
        black_box(plan)
    });
}

/// A cached domain: DNS answers from the resolver's cache, the policy from
/// the policy cache, then the plan.
#[divan::bench]
fn warm(bencher: Bencher) {
    let r = resolver(&WORLD);
    r.resolve("d0.signed").unwrap();
    bencher.bench_local(|| black_box(r.resolve(black_box("d0.signed")).unwrap()));
}

/// Warm, from async code.
#[divan::bench]
fn warm_async(bencher: Bencher) {
    let r = resolver(&WORLD);
    r.resolve("d0.signed").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    bencher.bench_local(|| black_box(rt.block_on(r.inner().resolve(black_box("d0.signed"))).unwrap()));
}

/// The parts of a warm resolve: each DNS lookup from the resolver's cache.
mod warm_parts {
    use super::*;
    use smtp_tls_policy::name::DomainName;

    #[divan::bench]
    fn txt(bencher: Bencher) {
        let r = resolver(&WORLD);
        r.dns().txt("_mta-sts.d0.signed").unwrap();
        bencher.bench_local(|| black_box(r.dns().txt(black_box("_mta-sts.d0.signed")).unwrap()));
    }

    #[divan::bench]
    fn mx(bencher: Bencher) {
        let r = resolver(&WORLD);
        let d = DomainName::parse("d0.signed").unwrap();
        r.dns().mx_hosts(&d).unwrap();
        bencher.bench_local(|| black_box(r.dns().mx_hosts(black_box(&d)).unwrap()));
    }

    #[divan::bench]
    fn tlsa_facts(bencher: Bencher) {
        let r = resolver(&WORLD);
        let h = DomainName::parse("mx.common.signed").unwrap();
        r.dns().mx_facts(&h);
        bencher.bench_local(|| black_box(r.dns().mx_facts(black_box(&h))));
    }

    #[divan::bench]
    fn addresses(bencher: Bencher) {
        let r = resolver(&WORLD);
        let h = DomainName::parse("mx.common.signed").unwrap();
        r.dns().addresses(&h).unwrap();
        bencher.bench_local(|| black_box(r.dns().addresses(black_box(&h)).unwrap()));
    }

    #[divan::bench]
    fn tlsa(bencher: Bencher) {
        let r = resolver(&WORLD);
        let h = DomainName::parse("mx.common.signed").unwrap();
        r.dns().tlsa(&h).unwrap();
        bencher.bench_local(|| black_box(r.dns().tlsa(black_box(&h)).unwrap()));
    }
}

/// The socketmap server's work for one warm query, without the sockets:
/// parse the request, resolve from the caches, plan, write the policy.
#[divan::bench]
fn socketmap_answer_warm(bencher: Bencher) {
    use smtp_tls_policy::postfix::ZoneOptions;
    use smtp_tls_policy::postfix::server::{Zone, answer};
    let zone = Zone { resolver: resolver(&WORLD), options: ZoneOptions::default() };
    let zones = std::collections::HashMap::from([("postfix".to_owned(), zone)]);
    let first = answer(&zones, b"postfix d0.signed").to_string();
    assert!(first.starts_with("OK secure match=mx.common.signed"), "{first}");
    bencher.bench_local(|| black_box(answer(&zones, black_box(b"postfix d0.signed"))));
}

/// The same resolves against the BIND world (examples/support/bind.rs): a
/// zone `bench.` signed by `dnssec-signzone` with the domains of the
/// hickory world's zone, `named` answering, `unbound` validating.
mod bind {
    use super::*;
    use smtp_tls_policy::dns::{DnsConfig, DnssecMode, TrustAnchor};
    use std::time::Duration;
    use support::bind::{BENCH_DOMAINS, BindWorld, available};
    use support::world::config_with_dns;

    struct Bind {
        world: BindWorld,
        https: PolicyServer,
        pki: Arc<Pki>,
    }

    static BIND: LazyLock<Bind> = LazyLock::new(|| {
        BENCH_DOMAINS.store(DOMAINS, Ordering::Relaxed);
        assert!(
            available(),
            "BIND 9 and unbound are not installed (apt-get install bind9 bind9-dnsutils unbound), or skip these: \
             cargo bench --bench resolve -- --skip bind"
        );
        let pki = Arc::new(Pki::new());
        let https = PolicyServer::start(Arc::clone(&pki));
        let body = b"version: STSv1\r\nmode: enforce\r\nmx: mx.common.bench\r\nmax_age: 86400\r\n";
        for n in 0..DOMAINS {
            https.set(&format!("mta-sts.d{n}.bench"), ok(body));
        }
        let bind = Bind { world: BindWorld::start(), https, pki };
        // Issue every policy host's certificate once, outside the measurement.
        let warm = validating(&bind);
        for n in 0..DOMAINS {
            warm.resolve(&format!("d{n}.bench")).unwrap();
        }
        bind
    });

    fn dns() -> DnsConfig {
        DnsConfig::default().timeout(Duration::from_millis(400)).attempts(1)
    }

    /// Validated in process, `named` answering.
    fn validating(b: &Bind) -> PolicyResolver {
        let anchor = TrustAnchor::parse(&b.world.root_anchor).unwrap();
        let dns = dns().servers([b.world.named]).dnssec(DnssecMode::Validate(anchor));
        PolicyResolver::new(config_with_dns(dns, &b.https, &b.pki)).unwrap()
    }

    /// The AD bit of `unbound`, validating for the resolver.
    fn trusting(b: &Bind) -> PolicyResolver {
        let dns = dns().servers([b.world.unbound]).dnssec(DnssecMode::TrustAd);
        PolicyResolver::new(config_with_dns(dns, &b.https, &b.pki)).unwrap()
    }

    fn cold(bencher: Bencher, r: PolicyResolver) {
        let next = AtomicUsize::new(0);
        bencher.bench_local(|| {
            let n = next.fetch_add(1, Ordering::Relaxed) % DOMAINS;
            let plan = r.resolve(&format!("d{n}.bench")).unwrap();
            assert!(plan.sts.applied().is_some());
            black_box(plan)
        });
    }

    fn warm(bencher: Bencher, r: PolicyResolver) {
        r.resolve("d0.bench").unwrap();
        bencher.bench_local(|| black_box(r.resolve(black_box("d0.bench")).unwrap()));
    }

    #[divan::bench(sample_count = 100, sample_size = 10)]
    fn cold_validate(bencher: Bencher) {
        cold(bencher, validating(&BIND));
    }

    #[divan::bench]
    fn warm_validate(bencher: Bencher) {
        warm(bencher, validating(&BIND));
    }

    /// Cold through `unbound`: its cache is warm after the first pass, so
    /// this is the crate's side of a trust-AD lookup.
    #[divan::bench(sample_count = 100, sample_size = 10)]
    fn cold_trust_ad(bencher: Bencher) {
        cold(bencher, trusting(&BIND));
    }

    #[divan::bench]
    fn warm_trust_ad(bencher: Bencher) {
        warm(bencher, trusting(&BIND));
    }
}
