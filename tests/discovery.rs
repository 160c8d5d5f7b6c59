//! Discovery as tables: DNS answers in, facts out, through the in-memory
//! `DnsLookup` of examples/support (no server). One row per case of RFC 7672
//! §2.2 (MX, addresses, TLSA), RFC 5321 §5.1 / RFC 7505 (the MX hosts) and
//! RFC 8461 §3.1 (the TXT record); then `gather` as a whole.

#[path = "../examples/support/mod.rs"]
mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use smtp_tls_policy::cache::{Decision, PolicyCache, TxtLookup};
use smtp_tls_policy::dane::TlsaRecord;
use smtp_tls_policy::discovery::{
    self, DnsErrorKind, DnssecStatus, MAX_MX_HOSTS, MxFacts, MxRecord, StsFacts, TlsaFacts, TlsaQuery, TxtFinding,
    Wants,
};
use smtp_tls_policy::name::DomainName;
use support::memory::{MemoryDns, MemoryFetch, error, nodata, nxdomain, records};

use DnssecStatus::{Bogus, Indeterminate, Insecure, Secure};

fn name(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

fn tlsa() -> Vec<TlsaRecord> {
    vec![TlsaRecord::new(3, 1, 1, vec![0x5a; 32])]
}

fn ip() -> Vec<IpAddr> {
    vec!["192.0.2.25".parse().unwrap()]
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
}

const HOST: &str = "mx.example.com";
const TARGET: &str = "mx.hoster.example";

/// RFC 7672 §2.2.2 and §2.2.3, one row per case: how the host's addresses
/// and its TLSA RRsets answer, what the facts are, and what was asked.
#[test]
fn tlsa_facts_of_every_rfc7672_2_2_case() {
    type Row = (&'static str, MemoryDns, TlsaFacts, &'static str, &'static [&'static str]);
    let a = |status| records(ip(), status);
    let rows: Vec<Row> = vec![
        (
            "secure addresses, secure TLSA: DANE",
            MemoryDns::new().addresses(HOST, Ok(a(Secure))).tlsa(HOST, Ok(records(tlsa(), Secure))),
            TlsaFacts::Secure(tlsa()),
            HOST,
            &["A mx.example.com", "TLSA mx.example.com"],
        ),
        (
            "secure addresses, secure NODATA for TLSA: no DANE records",
            MemoryDns::new().addresses(HOST, Ok(a(Secure))).tlsa(HOST, Ok(nodata(Secure))),
            TlsaFacts::SecureNone,
            HOST,
            &["A mx.example.com", "TLSA mx.example.com"],
        ),
        (
            "secure addresses, secure NXDOMAIN for TLSA",
            MemoryDns::new().addresses(HOST, Ok(a(Secure))).tlsa(HOST, Ok(nxdomain(Secure))),
            TlsaFacts::SecureNone,
            HOST,
            &["A mx.example.com", "TLSA mx.example.com"],
        ),
        (
            "insecure addresses: no TLSA lookup at all (§2.2.2)",
            MemoryDns::new().addresses(HOST, Ok(a(Insecure))).tlsa(HOST, Ok(records(tlsa(), Secure))),
            TlsaFacts::Insecure,
            HOST,
            &["A mx.example.com"],
        ),
        (
            "bogus addresses: the host is not used, TLSA not asked",
            MemoryDns::new().addresses(HOST, Err(error(DnsErrorKind::Bogus, HOST, "A"))),
            TlsaFacts::Bogus,
            HOST,
            &["A mx.example.com"],
        ),
        (
            "addresses with a bogus status",
            MemoryDns::new().addresses(HOST, Ok(a(Bogus))),
            TlsaFacts::Bogus,
            HOST,
            &["A mx.example.com"],
        ),
        (
            "address lookup SERVFAIL: the host is not used",
            MemoryDns::new().addresses(HOST, Err(error(DnsErrorKind::ServerFailure, HOST, "A"))),
            TlsaFacts::Failed,
            HOST,
            &["A mx.example.com"],
        ),
        ("address lookup timeout", MemoryDns::new(), TlsaFacts::Failed, HOST, &["A mx.example.com"]),
        (
            "addresses not validated (a path that cannot validate, degraded): DANE unavailable",
            MemoryDns::new().addresses(HOST, Ok(a(Indeterminate))),
            TlsaFacts::Unavailable,
            HOST,
            &["A mx.example.com"],
        ),
        (
            "secure addresses, insecure TLSA (an unsigned child zone)",
            MemoryDns::new().addresses(HOST, Ok(a(Secure))).tlsa(HOST, Ok(records(tlsa(), Insecure))),
            TlsaFacts::Insecure,
            HOST,
            &["A mx.example.com", "TLSA mx.example.com"],
        ),
        (
            "secure addresses, bogus TLSA: the host is not used (§2.2.3)",
            MemoryDns::new().addresses(HOST, Ok(a(Secure))).tlsa(HOST, Err(error(DnsErrorKind::Bogus, HOST, "TLSA"))),
            TlsaFacts::Bogus,
            HOST,
            &["A mx.example.com", "TLSA mx.example.com"],
        ),
        (
            "secure addresses, TLSA SERVFAIL: the host is not used",
            MemoryDns::new()
                .addresses(HOST, Ok(a(Secure)))
                .tlsa(HOST, Err(error(DnsErrorKind::ServerFailure, HOST, "TLSA"))),
            TlsaFacts::Failed,
            HOST,
            &["A mx.example.com", "TLSA mx.example.com"],
        ),
        (
            "secure addresses, TLSA timeout",
            MemoryDns::new().addresses(HOST, Ok(a(Secure))),
            TlsaFacts::Failed,
            HOST,
            &["A mx.example.com", "TLSA mx.example.com"],
        ),
        (
            "secure CNAME chain: TLSA at the end of the chain first (§2.2.2)",
            MemoryDns::new()
                .addresses(HOST, Ok(a(Secure).with_canonical(TARGET)))
                .tlsa(TARGET, Ok(records(tlsa(), Secure)))
                .tlsa(HOST, Ok(nodata(Secure))),
            TlsaFacts::Secure(tlsa()),
            TARGET,
            &["A mx.example.com", "TLSA mx.hoster.example"],
        ),
        (
            "secure CNAME chain, secure denial at the target: TLSA at the host name",
            MemoryDns::new()
                .addresses(HOST, Ok(a(Secure).with_canonical(TARGET)))
                .tlsa(TARGET, Ok(nodata(Secure)))
                .tlsa(HOST, Ok(records(tlsa(), Secure))),
            TlsaFacts::Secure(tlsa()),
            HOST,
            &["A mx.example.com", "TLSA mx.hoster.example", "TLSA mx.example.com"],
        ),
        (
            "secure CNAME chain, secure denial at both",
            MemoryDns::new()
                .addresses(HOST, Ok(a(Secure).with_canonical(TARGET)))
                .tlsa(TARGET, Ok(nxdomain(Secure)))
                .tlsa(HOST, Ok(nodata(Secure))),
            TlsaFacts::SecureNone,
            HOST,
            &["A mx.example.com", "TLSA mx.hoster.example", "TLSA mx.example.com"],
        ),
        (
            "secure CNAME chain, insecure TLSA at the target: no fallback to the host",
            MemoryDns::new()
                .addresses(HOST, Ok(a(Secure).with_canonical(TARGET)))
                .tlsa(TARGET, Ok(nodata(Insecure)))
                .tlsa(HOST, Ok(records(tlsa(), Secure))),
            TlsaFacts::Insecure,
            TARGET,
            &["A mx.example.com", "TLSA mx.hoster.example"],
        ),
        (
            "secure CNAME chain, bogus TLSA at the target: the host is not used",
            MemoryDns::new()
                .addresses(HOST, Ok(a(Secure).with_canonical(TARGET)))
                .tlsa(TARGET, Err(error(DnsErrorKind::Bogus, TARGET, "TLSA")))
                .tlsa(HOST, Ok(records(tlsa(), Secure))),
            TlsaFacts::Bogus,
            TARGET,
            &["A mx.example.com", "TLSA mx.hoster.example"],
        ),
        (
            "insecure CNAME chain (the status is the chain's weakest): no TLSA",
            MemoryDns::new().addresses(HOST, Ok(a(Insecure).with_canonical(TARGET))),
            TlsaFacts::Insecure,
            HOST,
            &["A mx.example.com"],
        ),
        (
            "a canonical name equal to the host is no chain",
            MemoryDns::new()
                .addresses(HOST, Ok(a(Secure).with_canonical(HOST)))
                .tlsa(HOST, Ok(records(tlsa(), Secure))),
            TlsaFacts::Secure(tlsa()),
            HOST,
            &["A mx.example.com", "TLSA mx.example.com"],
        ),
        (
            "no validation at all: DANE unavailable, nothing asked",
            MemoryDns::new().not_validating().addresses(HOST, Ok(a(Secure))).tlsa(HOST, Ok(records(tlsa(), Secure))),
            TlsaFacts::Unavailable,
            HOST,
            &[],
        ),
    ];
    for (case, dns, want, base, asked) in rows {
        let facts = run(discovery::mx_facts(&dns, &name(HOST)));
        assert_eq!(facts.tlsa, want, "{case}");
        assert_eq!(facts.tlsa_base, name(base), "{case}: TLSA base domain");
        assert_eq!(facts.host, name(HOST), "{case}");
        assert_eq!(dns.asked(), asked, "{case}: questions");
    }
}

/// The pure rule behind the table, without a lookup.
#[test]
fn tlsa_query_alone() {
    let host = name(HOST);
    let secure = records(ip(), Secure);
    assert_eq!(discovery::tlsa_query(&host, true, Ok(&secure)), TlsaQuery::Ask { first: None });
    let chained = records(ip(), Secure).with_canonical(TARGET);
    assert_eq!(discovery::tlsa_query(&host, true, Ok(&chained)), TlsaQuery::Ask { first: Some(name(TARGET)) });
    // A canonical name that is not a host name is no TLSA base.
    let odd = records(ip(), Secure).with_canonical("bad_name..example");
    assert_eq!(discovery::tlsa_query(&host, true, Ok(&odd)), TlsaQuery::Ask { first: None });
    assert_eq!(discovery::tlsa_query(&host, false, Ok(&secure)), TlsaQuery::Known(TlsaFacts::Unavailable));
    let nothing = nodata::<IpAddr>(Secure);
    // Secure NODATA for the addresses: the host has no address; the
    // MTA finds none to connect to, DANE would apply if it had.
    assert_eq!(discovery::tlsa_query(&host, true, Ok(&nothing)), TlsaQuery::Ask { first: None });
}

/// A and AAAA joined: a bogus family is never hidden behind a good one.
#[test]
fn address_families_joined() {
    let v4 = || Ok(records(ip(), Secure));
    let v6 = |status| Ok(records(vec!["2001:db8::25".parse().unwrap()], status));
    let joined = discovery::join_addresses(v4(), v6(Secure)).unwrap();
    assert_eq!((joined.records().len(), joined.status), (2, Secure));
    assert_eq!(discovery::join_addresses(v4(), v6(Insecure)).unwrap().status, Insecure);
    assert_eq!(discovery::join_addresses(v4(), Ok(nodata(Secure))).unwrap().records(), ip());
    for kind in [DnsErrorKind::Bogus, DnsErrorKind::ServerFailure] {
        let err = discovery::join_addresses(v4(), Err(error(kind.clone(), HOST, "AAAA"))).unwrap_err();
        assert_eq!(err.kind(), &kind);
        let err = discovery::join_addresses(Err(error(kind.clone(), HOST, "A")), v6(Secure)).unwrap_err();
        assert_eq!(err.kind(), &kind);
    }
    // A family that times out leaves the other's answer.
    let one = discovery::join_addresses(v4(), Err(error(DnsErrorKind::Timeout, HOST, "AAAA"))).unwrap();
    assert_eq!(one.records(), ip());
    let both = discovery::join_addresses(
        Err(error(DnsErrorKind::Timeout, HOST, "A")),
        Err(error(DnsErrorKind::Timeout, HOST, "AAAA")),
    );
    assert!(both.is_err());
    let nx = discovery::join_addresses(Ok(nxdomain(Secure)), Ok(nxdomain(Secure))).unwrap();
    assert!(nx.records().is_empty());
}

/// RFC 5321 §5.1, RFC 7505 and the MX cap, one row per case.
#[test]
fn mx_hosts_table() {
    let d = name("example.com");
    let mx = |list: &[(u16, &str)]| records(list.iter().map(|(p, e)| MxRecord::new(*p, *e)).collect(), Secure);
    let hosts = |list: &[(u16, &str)]| discovery::mx_hosts(&d, mx(list)).map(|h| h.hosts);
    let names = |list: &[&str]| list.iter().map(|n| name(n)).collect::<Vec<_>>();
    assert_eq!(
        hosts(&[(20, "b.example.com."), (10, "a.example.com.")]).unwrap(),
        names(&["a.example.com", "b.example.com"])
    );
    // Equal preferences keep the answer's order.
    assert_eq!(
        hosts(&[(10, "y.example.com"), (10, "x.example.com")]).unwrap(),
        names(&["y.example.com", "x.example.com"])
    );
    // Duplicates (any case) once; names that are not host names dropped.
    let got = discovery::mx_hosts(
        &d,
        mx(&[(10, "A.example.com."), (20, "a.example.com"), (30, "bad_name.example"), (40, "b.example.com")]),
    )
    .unwrap();
    assert_eq!(got.hosts, names(&["a.example.com", "b.example.com"]));
    assert_eq!(got.dropped, ["bad_name.example"]);
    assert!(!got.implicit && !got.truncated);
    // Nothing usable: temporary (the RRset may be forged), never a bounce.
    let err = discovery::mx_hosts(&d, mx(&[(10, "bad_name.example")])).unwrap_err();
    assert!(matches!(err.kind(), DnsErrorKind::Malformed(_)) && err.is_temporary(), "{err}");
    // The null MX of RFC 7505: permanent.
    for null in [".", ""] {
        let err = discovery::mx_hosts(&d, mx(&[(0, null)])).unwrap_err();
        assert_eq!(err.kind(), &DnsErrorKind::NullMx);
        assert!(!err.is_temporary());
    }
    // A "." among other records is just a bad name.
    assert_eq!(hosts(&[(0, "."), (10, "a.example.com")]).unwrap(), names(&["a.example.com"]));
    // NODATA: the domain is its own host (RFC 5321 §5.1), with the denial's status.
    let implicit = discovery::mx_hosts(&d, nodata(Insecure)).unwrap();
    assert_eq!((implicit.hosts, implicit.implicit, implicit.status), (vec![d.clone()], true, Insecure));
    // NXDOMAIN: permanent.
    let err = discovery::mx_hosts(&d, nxdomain(Secure)).unwrap_err();
    assert_eq!(err.kind(), &DnsErrorKind::NxDomain);
    assert!(!err.is_temporary());
    // At most MAX_MX_HOSTS, the most preferred.
    let many: Vec<(u16, String)> = (0..100u16).map(|i| (100 - i, format!("mx{i}.example.com"))).collect();
    let many: Vec<(u16, &str)> = many.iter().map(|(p, n)| (*p, n.as_str())).collect();
    let got = discovery::mx_hosts(&d, mx(&many)).unwrap();
    assert_eq!(got.hosts.len(), MAX_MX_HOSTS);
    assert!(got.truncated);
    assert_eq!(got.hosts[0], name("mx99.example.com"));
    // The status and TTL are the RRset's.
    let got = discovery::mx_hosts(&d, mx(&[(10, "a.example.com")]).with_ttl(Duration::from_secs(42))).unwrap();
    assert_eq!((got.status, got.ttl), (Secure, Duration::from_secs(42)));
}

/// RFC 8461 §3.1: the TXT RRset at `_mta-sts.<domain>`.
#[test]
fn txt_finding_table() {
    let txt = |list: &[&str]| Ok(records(list.iter().map(|s| s.to_string()).collect(), Insecure));
    let id = |f: &TxtFinding| match f {
        TxtFinding::Record(r) => Some(r.id().to_owned()),
        _ => None,
    };
    assert_eq!(id(&discovery::txt_finding(txt(&["v=STSv1; id=20240101;"]))).as_deref(), Some("20240101"));
    assert_eq!(id(&discovery::txt_finding(txt(&["v=spf1 -all", "v=STSv1; id=a1;"]))).as_deref(), Some("a1"));
    assert_eq!(discovery::txt_finding(txt(&["v=spf1 -all"])), TxtFinding::NoRecord);
    assert_eq!(discovery::txt_finding(Ok(nodata(Secure))), TxtFinding::NoRecord);
    assert_eq!(discovery::txt_finding(Ok(nxdomain(Secure))), TxtFinding::NoRecord);
    assert!(matches!(discovery::txt_finding(txt(&["v=STSv1; id=a;", "v=STSv1; id=b;"])), TxtFinding::Invalid(_)));
    assert!(matches!(discovery::txt_finding(txt(&["v=STSv1; id=;"])), TxtFinding::Invalid(_)));
    let failed = discovery::txt_finding(Err(error(DnsErrorKind::Timeout, "_mta-sts.example.com", "TXT")));
    assert!(matches!(failed, TxtFinding::Failed(_)));
    assert_eq!(failed.lookup(), TxtLookup::Failed);
    assert_eq!(discovery::txt_finding(txt(&["v=spf1"])).lookup(), TxtLookup::NoRecord);
}

const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n";

fn world() -> MemoryDns {
    MemoryDns::new()
        .txt("_mta-sts.example.com", Ok(records(vec!["v=STSv1; id=1;".into()], Insecure)))
        .mx("example.com", Ok(records(vec![MxRecord::new(10, "mx.example.com.")], Secure)))
        .addresses(HOST, Ok(records(ip(), Secure)))
        .tlsa(HOST, Ok(records(tlsa(), Secure)))
}

#[test]
fn gather_asks_what_the_destination_wants() {
    let d = name("example.com");
    let cache = PolicyCache::default();
    let fetch = MemoryFetch::new().policy("example.com", POLICY);
    let now = SystemTime::now();

    let dns = world();
    let got = run(discovery::gather(&dns, &cache, &fetch, &d, &Wants::all(&d), now));
    let facts = got.facts.unwrap();
    assert_eq!(facts.mx, [MxFacts::new(name(HOST), TlsaFacts::Secure(tlsa()))]);
    assert_eq!(facts.mx_dnssec, Secure);
    assert!(matches!(facts.sts, StsFacts::Policy { .. }));
    assert!(got.sts.unwrap().fetched);
    assert_eq!(fetch.fetches(), 1);

    // DANE off: no TLSA (nor address) question; MTA-STS off: no TXT.
    let dns = world();
    let wants = Wants::all(&d).dane(false).sts(None);
    let facts = run(discovery::gather(&dns, &cache, &fetch, &d, &wants, now)).facts.unwrap();
    assert_eq!(facts.mx, [MxFacts::new(name(HOST), TlsaFacts::Unavailable)]);
    assert_eq!(facts.sts, StsFacts::NotChecked);
    assert_eq!(dns.asked(), ["MX example.com"]);

    // A route: no MX lookup; its host has no DANE.
    let dns = world();
    let wants = Wants::all(&d).route(Some(name("relay.example.net"))).sts(None);
    let facts = run(discovery::gather(&dns, &cache, &fetch, &d, &wants, now)).facts.unwrap();
    assert_eq!(facts.mx, [MxFacts::new(name("relay.example.net"), TlsaFacts::Unavailable)]);
    assert!(dns.asked().is_empty());
}

#[test]
fn an_mx_failure_keeps_the_policy_found_alongside() {
    let d = name("example.com");
    let cache = PolicyCache::default();
    let fetch = MemoryFetch::new().policy("example.com", POLICY);
    for (kind, temporary) in [(DnsErrorKind::ServerFailure, true), (DnsErrorKind::NxDomain, false)] {
        let dns = world().mx("example.com", Err(error(kind.clone(), "example.com", "MX")));
        let got = run(discovery::gather(&dns, &cache, &fetch, &d, &Wants::all(&d), SystemTime::now()));
        let failure = got.facts.unwrap_err();
        assert_eq!(failure.error.kind(), &kind);
        assert_eq!(failure.error.is_temporary(), temporary);
        assert!(matches!(failure.sts, StsFacts::Policy { .. }), "a forged MX answer must not turn the policy off");
    }
}

#[test]
fn concurrent_discoveries_make_one_fetch() {
    let d = name("example.com");
    let cache = Arc::new(PolicyCache::default());
    let fetch = Arc::new(MemoryFetch::new().policy("example.com", POLICY).delay(Duration::from_millis(50)));
    let dns = Arc::new(world());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap();
    let decisions = rt.block_on(async {
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let (cache, fetch, dns, d) = (Arc::clone(&cache), Arc::clone(&fetch), Arc::clone(&dns), d.clone());
                tokio::spawn(
                    async move { discovery::discover_sts(&*dns, &cache, &*fetch, &d, SystemTime::now()).await },
                )
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(fetch.fetches(), 1, "one fetch for 40 concurrent discoveries");
    assert!(decisions.iter().all(|found| matches!(found.decision, Decision::Apply { .. })));
    assert_eq!(decisions.iter().filter(|found| found.fetched).count(), 1);
}

#[test]
fn a_cancelled_fetch_lets_the_next_discovery_fetch_again() {
    let d = name("example.com");
    let cache = PolicyCache::default();
    let fetch = MemoryFetch::new().policy("example.com", POLICY).delay(Duration::from_secs(3600));
    let dns = world();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        let slow = discovery::discover_sts(&dns, &cache, &fetch, &d, SystemTime::now());
        // Cancelled mid-fetch (the MTA's timeout): the flight is abandoned.
        assert!(tokio::time::timeout(Duration::from_millis(20), slow).await.is_err());
    });
    assert!(cache.entry(&d).is_none_or(|e| !e.fetching));
    let quick = MemoryFetch::new().policy("example.com", POLICY);
    let found = run(discovery::discover_sts(&dns, &cache, &quick, &d, SystemTime::now()));
    assert!(matches!(found.decision, Decision::Apply { .. }));
    assert_eq!(quick.fetches(), 1);
}
