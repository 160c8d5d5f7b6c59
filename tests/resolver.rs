//! The resolver façade end to end against the local world: the signed DNS
//! world of examples/support/dns.rs and one HTTPS address serving the policy
//! hosts of every domain (examples/support/https.rs), with real lookups,
//! fetches and the cache. Every MX host in the signed zone has an existing
//! `_tcp.<host>` name, so its TLSA denial is one label below an existing
//! name (hickory-server 0.26 proves deeper NXDOMAINs wrongly).
#![cfg(feature = "resolver")]

#[path = "../examples/support/mod.rs"]
mod support;

use std::thread;
use std::time::{Duration, Instant};

use smtp_tls_policy::cache::CacheConfig;
use smtp_tls_policy::dns::{DnsConfig, DnsErrorKind, DnssecMode};
use smtp_tls_policy::engine::{
    Attempt, AuthOutcome, Authentication, Basis, CertFailure, DaneSupport, DeliveryContext, Destination,
    DestinationControls, Profile, StsFacts, StsSupport, TlsSupport, TlsVersion, TlsaFacts, Verdict, assess,
};
use smtp_tls_policy::fetch::{FetchConfig, Roots};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::report::ResultType;
use smtp_tls_policy::resolver::blocking::PolicyResolver;
use smtp_tls_policy::resolver::{ResolveError, ResolverConfig};
use smtp_tls_policy::sts::{MAX_POLICY_BYTES, Mode};
use support::dns::Zones;
use support::https::{CertKind, Reply, ok, proxy, response};
use support::world::{LocalWorld, controls, policy};

const TLSA: &str = "3 1 1 2bb9e4c1a6e2b5d2f0e1b7a1c9d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6";

/// Domains `<name>.signed` with an MX at `mx.common.signed` and an MTA-STS
/// TXT record (TTL 0, so that tests can change it).
const STS_DOMAINS: &[&str] = &[
    "enforce",
    "idchange",
    "downgrade",
    "conc",
    "conc-async",
    "refresh",
    "proxied",
    "redirect",
    "notfound",
    "error500",
    "html",
    "big-cl",
    "big-nocl",
    "drip",
    "wrongname",
    "expired",
    "untrusted",
    "invalid",
    "logged",
    "logged-slow",
];

fn zones() -> Zones {
    let mut signed = String::from(
        "mx.common A 127.0.0.1\n_tcp.mx.common TXT \"no TLSA below\"\n\
         relay A 127.0.0.1\n_tcp.relay TXT \"no TLSA below\"\n",
    );
    for d in STS_DOMAINS {
        signed += &format!("{d} MX 10 mx.common\n_mta-sts.{d} 0 TXT \"v=STSv1; id=1;\"\n");
    }
    signed += &format!(
        r#"
several MX 10 mx.common
_mta-sts.several TXT "v=STSv1; id=1;"
_mta-sts.several TXT "v=STSv1; id=2;"
viacname MX 10 mx.common
_mta-sts.viacname CNAME _mta-sts.enforce.signed.
txtfail MX 10 mx.common
_mta-sts.txtfail CNAME _mta-sts.servfail.signed.
txtslow MX 10 mx.common
_mta-sts.txtslow CNAME _mta-sts.timeout.signed.
dane MX 10 mx.dane
mx.dane A 127.0.0.1
_25._tcp.mx.dane TLSA {TLSA}
danests MX 10 mx.dane
_mta-sts.danests TXT "v=STSv1; id=1;"
nullmx MX 0 .
ownlookup MX 10 mx.common
_mta-sts.ownlookup TXT "v=STSv1; id=1;"
mta-sts.ownlookup A 127.0.0.1
ownlookup6 MX 10 mx.common
_mta-sts.ownlookup6 TXT "v=STSv1; id=1;"
mta-sts.ownlookup6 AAAA ::1
nohost MX 10 mx.common
_mta-sts.nohost TXT "v=STSv1; id=1;"
"#
    );
    let plain = "p MX 10 mx.p\nmx.p A 127.0.0.1\n_25._tcp.mx.p TLSA 3 1 1 00\n_mta-sts.p TXT \"v=STSv1; id=1;\"\n\
         f MX 10 _mx.attacker.example.\n_mta-sts.f TXT \"v=STSv1; id=1;\"\n"
        .into();
    let broken = "b MX 10 mx.b\nmx.b A 127.0.0.1\n".into();
    Zones { signed, plain, broken }
}

type World = LocalWorld;

fn world() -> World {
    let w = LocalWorld::start(&zones());
    for d in STS_DOMAINS.iter().chain(&["viacname", "danests"]) {
        w.https.set(&format!("mta-sts.{d}.signed"), policy("enforce", "mx.common.signed"));
    }
    w.https.set("mta-sts.p.plain", policy("enforce", "mx.p.plain"));
    w.https.set("mta-sts.f.plain", policy("enforce", "mx.p.plain"));
    w
}

fn config(w: &World) -> ResolverConfig {
    w.config()
}

fn resolver(w: &World) -> PolicyResolver {
    PolicyResolver::new(config(w)).unwrap()
}

fn name(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

fn sts_id(r: &PolicyResolver, domain: &str) -> Option<String> {
    r.resolve(domain).unwrap().sts.applied().map(|(id, _)| id.to_string())
}

#[test]
fn rfc8461_a_valid_enforce_domain_end_to_end() {
    let w = world();
    let r = resolver(&w);
    let plan = r.resolve("enforce.signed").unwrap();
    let (id, policy) = plan.sts.applied().expect("the policy applies");
    assert_eq!((id.as_str(), policy.mode()), ("1", Mode::Enforce));
    assert_eq!(plan.hosts.len(), 1);
    let host = &plan.hosts[0];
    assert_eq!(host.host, name("mx.common.signed"));
    assert_eq!(host.requirement.basis, Basis::Sts(Mode::Enforce));
    assert!(
        matches!(&host.requirement.auth, Authentication::WebPki { names, .. } if names == &[name("mx.common.signed")])
    );
    // The facts behind it: a secure MX RRset, a secure TLSA denial.
    let facts = r.facts("enforce.signed").unwrap();
    assert_eq!(facts.mx[0].tlsa, TlsaFacts::SecureNone);
    // Cached: the second resolve (for the facts) fetched nothing.
    assert_eq!(w.https.requests("mta-sts.enforce.signed"), 1);
    assert!(r.cache().entry(&name("enforce.signed")).is_some());
    // The MTA-STS discovery alone: the cached policy, no new request.
    let decision = r.sts(&name("enforce.signed"));
    assert_eq!(decision.policy().map(|p| p.mode()), Some(Mode::Enforce));
    assert_eq!(w.https.requests("mta-sts.enforce.signed"), 1);
}

#[test]
fn rfc8461_3_3_a_new_id_fetches_the_new_policy() {
    let w = world();
    let r = resolver(&w);
    assert_eq!(sts_id(&r, "idchange.signed").as_deref(), Some("1"));
    w.dns.replace("signed.", "_mta-sts.idchange 0 TXT \"v=STSv1; id=2;\"");
    w.https.set("mta-sts.idchange.signed", policy("enforce", "*.common.signed"));
    let plan = r.resolve("idchange.signed").unwrap();
    let (id, policy) = plan.sts.applied().unwrap();
    assert_eq!(id.as_str(), "2");
    assert_eq!(policy.mx()[0].to_string(), "*.common.signed");
    assert_eq!(w.https.requests("mta-sts.idchange.signed"), 2);
}

#[test]
fn rfc8461_5_1_cache_downgrade_attempts_through_the_whole_stack() {
    let w = world();
    let r = resolver(&w);
    let host = "mta-sts.downgrade.signed";
    assert_eq!(sts_id(&r, "downgrade.signed").as_deref(), Some("1"));
    // The attacker blocks HTTPS and changes the id: the cached policy stays.
    w.https.set(host, response("500 Internal Server Error", &[("Content-Length", "0")], b""));
    w.dns.replace("signed.", "_mta-sts.downgrade 0 TXT \"v=STSv1; id=2;\"");
    assert_eq!(sts_id(&r, "downgrade.signed").as_deref(), Some("1"));
    // ... and removes the TXT record: still the cached policy.
    w.dns.remove("signed.", "_mta-sts.downgrade 0 TXT \"\"");
    assert_eq!(sts_id(&r, "downgrade.signed").as_deref(), Some("1"));
    // Only the id change was worth a fetch (then backing off).
    assert_eq!(w.https.requests(host), 2);
}

#[test]
fn rfc8461_3_1_several_sts_records_mean_no_policy() {
    let w = world();
    let facts = resolver(&w).facts("several.signed").unwrap();
    assert_eq!(facts.sts, StsFacts::NoPolicy);
}

#[test]
fn txt_cname_chains_are_followed_to_the_policy() {
    let w = world();
    let r = resolver(&w);
    assert_eq!(sts_id(&r, "viacname.signed").as_deref(), Some("1"));
    assert_eq!(w.https.requests("mta-sts.viacname.signed"), 1);
}

#[test]
fn txt_servfail_and_timeout_mean_no_policy_and_no_fetch() {
    let w = world();
    let r = resolver(&w);
    for d in ["txtfail.signed", "txtslow.signed"] {
        let facts = r.facts(d).unwrap();
        assert_eq!(facts.sts, StsFacts::NoPolicy, "{d}");
        assert_eq!(facts.mx.len(), 1, "{d}: the MX lookup is unaffected");
    }
}

#[test]
fn hostile_policy_hosts_never_yield_a_policy() {
    let w = world();
    let big = vec![b'#'; MAX_POLICY_BYTES + 1];
    let drip = Reply::Drip {
        head: b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n".to_vec(),
        gap: Duration::from_millis(400),
        count: 20,
    };
    let table: Vec<(&str, Reply, CertKind, ResultType)> = vec![
        (
            "redirect",
            response("301 Moved", &[("Location", "https://elsewhere/")], b""),
            CertKind::Valid,
            ResultType::StsPolicyFetchError,
        ),
        (
            "notfound",
            response("404 Not Found", &[("Content-Length", "0")], b""),
            CertKind::Valid,
            ResultType::StsPolicyFetchError,
        ),
        (
            "error500",
            response("500 Oops", &[("Content-Length", "0")], b""),
            CertKind::Valid,
            ResultType::StsPolicyFetchError,
        ),
        (
            "html",
            response(
                "200 OK",
                &[("Content-Type", "text/html")],
                b"version: STSv1\r\nmode: enforce\r\nmx: mx.common.signed\r\nmax_age: 86400\r\n",
            ),
            CertKind::Valid,
            ResultType::StsPolicyInvalid,
        ),
        ("big-cl", ok(&big), CertKind::Valid, ResultType::StsPolicyInvalid),
        (
            "big-nocl",
            response("200 OK", &[("Content-Type", "text/plain")], &big),
            CertKind::Valid,
            ResultType::StsPolicyInvalid,
        ),
        ("drip", drip, CertKind::Valid, ResultType::StsPolicyFetchError),
        ("wrongname", policy("enforce", "mx.common.signed"), CertKind::WrongName, ResultType::StsWebpkiInvalid),
        ("expired", policy("enforce", "mx.common.signed"), CertKind::Expired, ResultType::StsWebpkiInvalid),
        ("untrusted", policy("enforce", "mx.common.signed"), CertKind::Untrusted, ResultType::StsWebpkiInvalid),
        ("invalid", ok(b"version: STSv1\r\nmode: enforced\r\n"), CertKind::Valid, ResultType::StsPolicyInvalid),
    ];
    let r = resolver(&w);
    for (d, reply, cert, expected) in table {
        w.https.set_with(&format!("mta-sts.{d}.signed"), reply, cert);
        let plan = r.resolve(&format!("{d}.signed")).unwrap();
        assert!(plan.sts.applied().is_none(), "{d}");
        // Delivery goes on under the TLS support, to the MX host.
        assert_eq!(plan.hosts[0].requirement.basis, Basis::TlsSupport, "{d}");
        let facts = r.facts(&format!("{d}.signed")).unwrap();
        let StsFacts::Unavailable(failure) = &facts.sts else { panic!("{d}: {:?}", facts.sts) };
        assert_eq!(failure.result_type(), expected, "{d}: {}", failure.error());
    }
}

#[test]
fn fifty_concurrent_resolves_make_one_https_request() {
    let w = world();
    let r = resolver(&w);
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let r = r.clone();
            thread::spawn(move || r.resolve("conc.signed").unwrap().sts.applied().is_some())
        })
        .collect();
    assert!(threads.into_iter().all(|t| t.join().unwrap()));
    assert_eq!(w.https.requests("mta-sts.conc.signed"), 1);
}

#[test]
fn async_resolves_share_the_cache_and_the_flight() {
    let w = world();
    let r = resolver(&w);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let plans = rt.block_on(async {
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let r = r.clone();
                tokio::spawn(async move { r.inner().resolve("conc-async.signed").await.unwrap() })
            })
            .collect();
        let mut plans = Vec::new();
        for t in tasks {
            plans.push(t.await.unwrap());
        }
        plans
    });
    assert!(plans.iter().all(|p| p.sts.applied().is_some()));
    assert_eq!(w.https.requests("mta-sts.conc-async.signed"), 1);
}

#[test]
fn rfc7672_dane_host_takes_precedence_over_mta_sts() {
    let w = world();
    let r = resolver(&w);
    for d in ["dane.signed", "danests.signed"] {
        let plan = r.resolve(d).unwrap();
        let host = &plan.hosts[0];
        assert_eq!(host.requirement.basis, Basis::Dane, "{d}");
        assert!(matches!(&host.requirement.auth, Authentication::Dane { records, .. } if records.len() == 1));
    }
}

#[test]
fn rfc7672_2_2_insecure_delegation_means_no_dane() {
    let w = world();
    let r = resolver(&w);
    let facts = r.facts("p.plain").unwrap();
    assert_eq!(facts.mx[0].tlsa, TlsaFacts::Insecure);
    let plan = r.resolve("p.plain").unwrap();
    assert_eq!(plan.hosts[0].requirement.basis, Basis::Sts(Mode::Enforce));
}

#[test]
fn bogus_mx_answers_defer() {
    let w = world();
    let err = resolver(&w).resolve("b.broken").unwrap_err();
    assert!(matches!(&err, ResolveError::Mx { error, .. } if error.kind() == &DnsErrorKind::Bogus), "{err}");
    assert!(err.is_temporary());
}

#[test]
fn an_mx_answer_of_names_that_cannot_be_hosts_defers_and_keeps_the_policy() {
    // An unsigned MX RRset forged as `10 _mx.attacker.example.`: mail waits
    // (never bounces), and the MTA-STS facts found meanwhile come with the
    // error, so a caller with its own MX lookup still applies the policy.
    let w = world();
    let err = resolver(&w).resolve("f.plain").unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert!(matches!(err.dns_error().map(|e| e.kind()), Some(DnsErrorKind::Malformed(_))), "{err}");
    assert!(
        matches!(err.sts(), Some(StsFacts::Policy { policy, .. }) if policy.mode() == Mode::Enforce),
        "{:?}",
        err.sts()
    );
}

#[test]
fn rfc7505_null_mx_and_rfc5321_nxdomain_bounce() {
    let w = world();
    let r = resolver(&w);
    for (d, kind) in [("nullmx.signed", DnsErrorKind::NullMx), ("nosuchdomain.signed", DnsErrorKind::NxDomain)] {
        let err = r.resolve(d).unwrap_err();
        assert_eq!(err.dns_error().map(|e| e.kind()), Some(&kind), "{d}: {err}");
        assert!(!err.is_temporary(), "{d}");
    }
    let err = r.resolve("not a domain").unwrap_err();
    assert!(matches!(err, ResolveError::Domain(_)));
}

#[test]
fn a_routed_domain_needs_no_mx_lookup() {
    let w = world();
    let mut config = config(&w);
    config = config.controls(controls().with_route(Destination::parse("routed.signed").unwrap(), name("relay.signed")));
    let r = PolicyResolver::new(config).unwrap();
    // routed.signed does not exist; only the route host is used.
    let plan = r.resolve("routed.signed").unwrap();
    assert_eq!(plan.route, Some(name("relay.signed")));
    assert_eq!(plan.hosts[0].host, name("relay.signed"));
    assert_eq!(plan.hosts[0].requirement.basis, Basis::Route);
}

#[test]
fn the_policy_is_fetched_through_an_https_proxy() {
    let w = world();
    let mut config = config(&w);
    let proxy = proxy(w.https.addr, false);
    let fetch = config.fetch_config().clone().proxy(format!("http://{proxy}"));
    config = config.fetch(fetch);
    let r = PolicyResolver::new(config).unwrap();
    assert_eq!(sts_id(&r, "proxied.signed").as_deref(), Some("1"));
    assert_eq!(w.https.requests("mta-sts.proxied.signed"), 1);
}

#[test]
fn rfc8461_10_2_refresh_due_fetches_again_and_the_refresher_runs() {
    let w = world();
    let mut config = config(&w);
    config = config.cache(CacheConfig::default().refresh_interval(Duration::ZERO).refresh_spread(Duration::ZERO));
    let r = PolicyResolver::new(config).unwrap();
    let host = "mta-sts.refresh.signed";
    assert!(r.resolve("refresh.signed").unwrap().sts.applied().is_some());
    let report = r.refresh_due();
    assert_eq!((report.due, report.refreshed, report.failed), (1, 1, 0));
    assert_eq!(w.https.requests(host), 2);
    // A failing refresh keeps the policy.
    w.https.set(host, response("503 Busy", &[("Content-Length", "0")], b""));
    let report = r.refresh_due();
    assert_eq!((report.refreshed, report.failed), (0, 1));
    assert!(r.resolve("refresh.signed").unwrap().sts.applied().is_some());
    // The background refresher: the back-off (5 minutes) holds it off, so
    // purge and re-resolve to have a due entry again.
    w.https.set(host, policy("enforce", "mx.common.signed"));
    r.cache().purge(&name("refresh.signed"));
    assert!(r.resolve("refresh.signed").unwrap().sts.applied().is_some());
    let before = w.https.requests(host);
    let refresher = r.start_refresher(Duration::from_millis(50));
    let start = Instant::now();
    while w.https.requests(host) == before && start.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(20));
    }
    refresher.stop();
    assert!(w.https.requests(host) > before, "the refresher fetched again");
}

#[test]
fn trust_ad_mode_through_the_facade() {
    let w = world();
    let mut config = config(&w);
    config = config.dns(DnsConfig::default().servers([w.dns.ad_addr]).dnssec(DnssecMode::TrustAd));
    let plan = PolicyResolver::new(config).unwrap().resolve("dane.signed").unwrap();
    assert_eq!(plan.hosts[0].requirement.basis, Basis::Dane);
}

#[test]
fn dnssec_off_reports_dane_unavailable() {
    let w = world();
    let mut config = config(&w);
    config = config.dns(DnsConfig::default().servers([w.dns.addr]).dnssec(DnssecMode::Off));
    let r = PolicyResolver::new(config).unwrap();
    let facts = r.facts("dane.signed").unwrap();
    assert_eq!(facts.mx[0].tlsa, TlsaFacts::Unavailable);
    assert_eq!(r.resolve("dane.signed").unwrap().hosts[0].requirement.basis, Basis::TlsSupport);
}

#[test]
fn controls_with_errors_are_refused() {
    let w = world();
    let mut config = config(&w);
    config =
        config.controls(DestinationControls::new(Profile::new(TlsSupport::No, DaneSupport::Mandatory, StsSupport::On)));
    let err = PolicyResolver::new(config).unwrap_err();
    assert!(matches!(err, ResolveError::Controls { .. }), "{err}");
}

mod logging {
    use std::fmt::Write;
    use std::sync::{Mutex, OnceLock};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// Every event of this crate, as "message k=v k=v".
    pub fn lines() -> &'static Mutex<Vec<String>> {
        static LINES: OnceLock<&'static Mutex<Vec<String>>> = OnceLock::new();
        LINES.get_or_init(|| {
            let lines: &'static Mutex<Vec<String>> = Box::leak(Box::default());
            let _ = tracing::subscriber::set_global_default(Capture(lines));
            lines
        })
    }

    struct Capture(&'static Mutex<Vec<String>>);

    struct Line(String);

    impl Visit for Line {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0.insert_str(0, &format!("{value:?}"));
            } else {
                let _ = write!(self.0, " {}={value:?}", field.name());
            }
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            metadata.target().starts_with("smtp_tls_policy")
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut line = Line(String::new());
            event.record(&mut line);
            // The level last: the tests match lines by their start.
            let _ = write!(line.0, " level={}", event.metadata().level());
            self.0.lock().unwrap().push(line.0);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

#[test]
fn tracing_events_carry_the_gateway_wording() {
    let lines = logging::lines();
    let w = world();
    let slow = Reply::Drip {
        head: b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_vec(),
        gap: Duration::from_millis(300),
        count: 20,
    };
    w.https.set("mta-sts.logged-slow.signed", slow);
    let r = resolver(&w);
    r.resolve("logged.signed").unwrap();
    let before = lines.lock().unwrap().len();
    r.resolve("logged.signed").unwrap();
    // An answer from the cache repeats the decision: debug lines only.
    // (Other tests log to the same subscriber meanwhile: this domain's lines only.)
    let hit: Vec<String> =
        lines.lock().unwrap()[before..].iter().filter(|l| l.contains("(logged.signed)")).cloned().collect();
    assert!(!hit.is_empty() && hit.iter().all(|l| l.ends_with("level=DEBUG")), "{hit:#?}");
    r.resolve("logged-slow.signed").unwrap();
    // After the delivery: the verdict is logged against the policy.
    let plan = r.resolve("logged.signed").unwrap();
    let host = &plan.hosts[0];
    let ok = Attempt::tls(TlsVersion::Tls13, AuthOutcome::WebPki(Ok(host.host.to_string())));
    let bad = Attempt::tls(TlsVersion::Tls13, AuthOutcome::WebPki(Err(CertFailure::Expired)));
    let context = DeliveryContext::new(Duration::from_secs(60));
    assert!(matches!(r.verdict(&plan, &[assess(&plan, host, &ok)], context), Verdict::Deliver { .. }));
    assert!(matches!(r.verdict(&plan, &[assess(&plan, host, &bad)], context), Verdict::Defer { .. }));
    let lines = lines.lock().unwrap().clone();
    for expected in [
        "Successfully fetched MTA-STS TXT record for domain (logged.signed)",
        "Successfully fetched MTA-STS policy for the domain (logged.signed)",
        "Applying MTA-STS policy for the domain (logged.signed)",
        "Valid cache entry found for the domain (logged.signed)",
        "Failed to fetch MTA-STS policy for the domain (logged-slow.signed)",
        "MTA-STS policy for the domain (logged.signed) Successful.",
        "MTA-STS policy for the domain (logged.signed) Failed.",
    ] {
        assert!(lines.iter().any(|l| l.starts_with(expected)), "{expected}\n{lines:#?}");
    }
    let failed =
        lines.iter().find(|l| l.starts_with("Failed to fetch MTA-STS policy for the domain (logged-slow")).unwrap();
    assert!(failed.contains("timed out") || failed.contains("timeout"), "{failed}");
    let applying =
        lines.iter().find(|l| l.starts_with("Applying MTA-STS policy for the domain (logged.signed)")).unwrap();
    assert!(applying.contains("mode=enforce") && applying.contains("id=1"), "{applying}");
    // The decision changed when the policy was fetched: that line is info.
    assert!(applying.ends_with("level=INFO"), "{applying}");
    assert!(
        lines.iter().any(|l| l.starts_with("No MTA-STS policy applies to the domain (logged-slow.signed)")
            && l.ends_with("level=INFO")),
        "{lines:#?}"
    );
}

#[test]
fn the_policy_host_is_looked_up_with_the_resolvers_dns() {
    let w = world();
    let mut config = config(&w);
    config = config.fetch(
        FetchConfig::default().roots(Roots::custom(std::slice::from_ref(&w.pki.ca_der)).unwrap()).proxy_from_env(false),
    );
    let r = PolicyResolver::new(config).unwrap();
    // mta-sts.ownlookup.signed exists only in the local DNS world: the fetch
    // reaches its address (where nothing listens on port 443) instead of
    // failing to find the host.
    let facts = r.facts("ownlookup.signed").unwrap();
    let StsFacts::Unavailable(failure) = &facts.sts else { panic!("{:?}", facts.sts) };
    let error = failure.error().to_string();
    assert!(error.starts_with("mta-sts.ownlookup.signed: cannot connect to the policy host"), "{error}");
    // A policy host with AAAA records only is reached over IPv6.
    let facts = r.facts("ownlookup6.signed").unwrap();
    let StsFacts::Unavailable(failure) = &facts.sts else { panic!("{:?}", facts.sts) };
    let error = failure.error().to_string();
    assert!(error.starts_with("mta-sts.ownlookup6.signed: cannot connect to the policy host"), "{error}");
    // One with no address at all does not resolve.
    let facts = r.facts("nohost.signed").unwrap();
    let StsFacts::Unavailable(failure) = &facts.sts else { panic!("{:?}", facts.sts) };
    let error = failure.error().to_string();
    assert!(error.starts_with("mta-sts.nohost.signed: the policy host does not resolve"), "{error}");
}
