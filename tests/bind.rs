//! DNSSEC as the Internet signs it: every `DnsResolver` query against zones
//! signed by BIND's `dnssec-signzone` and served by `named` (validate and
//! off modes), and through a validating `unbound` (trust-AD mode); a path
//! that strips DNSSEC. Zone shapes (examples/support/bind.rs): NSEC; NSEC3
//! with 0 iterations and no salt, with opt-out, salted; algorithms 8, 13,
//! 14, 15 and 16 (which ring lacks: insecure, RFC 6840 §5.2); a ZSK
//! double-signature rollover (NSEC and NSEC3) and an algorithm rollover
//! (DS for RSASHA256 only); an insecure delegation; bogus ones (a DS that
//! matches no key, expired and not-yet-valid signatures, RDATA changed
//! after signing); wildcards for MX, A and TLSA; CNAME chains within and
//! across zones and into an unsigned zone; answers over 1232 bytes.
//!
//! Each table runs twice on one long-lived resolver (the second time from
//! its cache, after every related name was looked up) and once backwards
//! on a fresh one.
#![cfg(feature = "dns")]

#[path = "../examples/support/mod.rs"]
mod support;

use std::time::Duration;

use smtp_tls_policy::dns::blocking::DnsResolver;
use smtp_tls_policy::dns::{DnsConfig, DnssecMode, Health, Rrset, TrustAnchor};
use smtp_tls_policy::engine::DnssecStatus;
use smtp_tls_policy::name::DomainName;
use support::bind::{BindWorld, available};

#[derive(Clone, Copy, Debug)]
enum Q {
    Txt(&'static str),
    Mx(&'static str),
    Addr(&'static str),
    Tlsa(&'static str),
    Facts(&'static str),
}

fn host(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

fn kind<T>(rrset: &Rrset<T>) -> &'static str {
    match rrset {
        Rrset::Records(_) => "Records",
        Rrset::NoData => "NoData",
        Rrset::NxDomain => "NxDomain",
        _ => "other",
    }
}

/// One line that says what the resolver answered.
fn outcome(dns: &DnsResolver, q: Q) -> String {
    fn status(s: DnssecStatus) -> &'static str {
        match s {
            DnssecStatus::Secure => "secure",
            DnssecStatus::Insecure => "insecure",
            DnssecStatus::Bogus => "bogus",
            _ => "indeterminate",
        }
    }
    let err = |e: smtp_tls_policy::dns::DnsError| format!("error {:?}", e.kind());
    match q {
        Q::Txt(n) => match dns.txt(n) {
            Ok(a) if a.records().iter().any(|r| r.len() > 1000) => format!("{} big", status(a.status)),
            Ok(a) => format!("{} {:?} {}", status(a.status), a.records(), kind(&a.rrset)),
            Err(e) => err(e),
        },
        Q::Mx(n) => match dns.mx_hosts(&host(n)) {
            Ok(mx) => {
                format!("{} {}", status(mx.status), mx.hosts.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(","))
            }
            Err(e) => err(e),
        },
        Q::Addr(n) => match dns.addresses(&host(n)) {
            Ok(a) => {
                format!("{} {:?} canonical={}", status(a.status), a.records(), a.canonical.as_deref().unwrap_or("-"))
            }
            Err(e) => err(e),
        },
        Q::Tlsa(n) => match dns.tlsa(&host(n)) {
            Ok(a) => format!("{} {} {}", status(a.status), a.records().len(), kind(&a.rrset)),
            Err(e) => err(e),
        },
        Q::Facts(n) => {
            let f = dns.mx_facts(&host(n));
            let facts = match &f.tlsa {
                smtp_tls_policy::engine::TlsaFacts::Secure(r) => format!("Secure({})", r.len()),
                other => format!("{other:?}"),
            };
            format!("{facts} base={}", f.tlsa_base)
        }
    }
}

/// Runs a table twice on one resolver and backwards on another.
fn check(make: impl Fn() -> DnsResolver, table: &[(Q, String)]) {
    let mut failures = Vec::new();
    let long_lived = make();
    for pass in ["first", "again"] {
        for (q, want) in table {
            let got = outcome(&long_lived, *q);
            if &got != want {
                failures.push(format!("{pass}: {q:?}: got {got:?}, want {want:?}"));
            }
        }
    }
    let fresh = make();
    for (q, want) in table.iter().rev() {
        let got = outcome(&fresh, *q);
        if &got != want {
            failures.push(format!("backwards: {q:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

const SIGNED: &[&str] =
    &["nsec", "nsec3", "optout", "salted", "alg8", "alg14", "alg15", "rollzsk", "rollzsk3", "rollalg"];

fn validating(world: &BindWorld) -> DnsResolver {
    let anchor = TrustAnchor::parse(&world.root_anchor).unwrap();
    let config = DnsConfig::default()
        .servers([world.named])
        .dnssec(DnssecMode::Validate(anchor))
        .timeout(Duration::from_secs(2))
        .attempts(1);
    DnsResolver::new(config).unwrap()
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The cases every signed zone answers alike.
fn signed_zone_cases(z: &str, secure: &str) -> Vec<(Q, String)> {
    let n = |s: &str| leak(format!("{s}.{z}"));
    // RFC 5155 §9.2: an NXDOMAIN in an opt-out span may hide an unsigned
    // delegation: insecure.
    // So may a wildcard expansion (its next closer name is in the span).
    let nx = if z == "optout" && secure == "secure" { "insecure" } else { secure };
    let mx = format!("mx.{z}");
    vec![
        (Q::Txt(n("_mta-sts")), format!("{secure} [\"v=STSv1; id={z};\"] Records")),
        (Q::Mx(leak(z.to_owned())), format!("{secure} {mx}")),
        // RFC 4035 §5.3.4: MX, A and TLSA synthesised from wildcards.
        (Q::Mx(n("a.wild")), format!("{nx} {mx}")),
        (Q::Addr(n("x.hosts")), format!("{nx} [127.0.0.3] canonical=-")),
        (Q::Tlsa(n("wmx")), format!("{nx} 1 Records")),
        (Q::Addr(n("mx")), format!("{secure} [127.0.0.1, ::1] canonical=-")),
        (Q::Tlsa(n("mx")), format!("{secure} 1 Records")),
        // Denials: NODATA, NXDOMAIN two labels below the closest encloser, an
        // empty non-terminal, NODATA at a wildcard.
        (Q::Txt(n("mx")), format!("{secure} [] NoData")),
        (Q::Tlsa(n("notlsa")), format!("{nx} 0 NxDomain")),
        (Q::Txt(n("nothing.at.all")), format!("{nx} [] NxDomain")),
        (Q::Txt(n("c.deep")), format!("{secure} [] NoData")),
        (Q::Txt(n("y.hosts")), format!("{nx} [] NoData")),
        // A CNAME chain within the zone, twice.
        (Q::Addr(n("alias2")), format!("{secure} [127.0.0.1, ::1] canonical={mx}")),
        // An answer over 1232 bytes (TCP after a truncated UDP answer).
        (Q::Txt(n("big")), format!("{secure} big")),
    ]
}

fn dane_cases(z: &str) -> Vec<(Q, String)> {
    let n = |s: &str| leak(format!("{s}.{z}"));
    vec![
        (Q::Facts(n("mx")), format!("Secure(1) base=mx.{z}")),
        (Q::Facts(n("wmx")), format!("{} base=wmx.{z}", if z == "optout" { "Insecure" } else { "Secure(1)" })),
        (Q::Facts(n("notlsa")), format!("{} base=notlsa.{z}", if z == "optout" { "Insecure" } else { "SecureNone" })),
        // RFC 7672 §2.2.2: after a secure CNAME chain the TLSA base domain is its end.
        (Q::Facts(n("alias")), format!("Secure(1) base=mx.{z}")),
    ]
}

fn validate_table() -> Vec<(Q, String)> {
    let mut t = Vec::new();
    for z in SIGNED {
        t.extend(signed_zone_cases(z, "secure"));
        t.extend(dane_cases(z));
    }
    t.extend([
        // RFC 6840 §5.2: Ed448, which ring lacks: insecure, never bogus.
        (Q::Txt("_mta-sts.alg16"), "insecure [\"v=STSv1; id=alg16;\"] Records".to_owned()),
        (Q::Facts("mx.alg16"), "Insecure base=mx.alg16".to_owned()),
        // An unsigned delegation.
        (Q::Txt("_mta-sts.plain"), "insecure [\"v=STSv1; id=plain;\"] Records".to_owned()),
        (Q::Tlsa("mx.plain"), "insecure 1 Records".to_owned()),
        (Q::Facts("mx.plain"), "Insecure base=mx.plain".to_owned()),
        (Q::Txt("nothing.plain"), "insecure [] NxDomain".to_owned()),
        // RFC 5155 §6: below an opt-out delegation.
        (Q::Facts("mx.sub.optout"), "Insecure base=mx.sub.optout".to_owned()),
        (Q::Addr("mx.sub.optout"), "insecure [127.0.0.1] canonical=-".to_owned()),
        // CNAMEs across zones and into an unsigned one.
        (Q::Addr("cross.nsec"), "secure [127.0.0.1, ::1] canonical=mx.nsec3".to_owned()),
        (Q::Facts("cross.nsec"), "Secure(1) base=mx.nsec3".to_owned()),
        (Q::Addr("toplain.nsec"), "insecure [127.0.0.1, ::1] canonical=mx.plain".to_owned()),
        (Q::Facts("toplain.nsec"), "Insecure base=toplain.nsec".to_owned()),
        (Q::Txt("dangling.nsec"), "secure [] NxDomain".to_owned()),
        // Bogus: a DS matching no key, expired and future signatures.
        (Q::Txt("_mta-sts.broken"), "error Bogus".to_owned()),
        (Q::Facts("mx.broken"), "Bogus base=mx.broken".to_owned()),
        (Q::Txt("_mta-sts.expired"), "error Bogus".to_owned()),
        (Q::Txt("nothing.expired"), "error Bogus".to_owned()),
        (Q::Facts("mx.expired"), "Bogus base=mx.expired".to_owned()),
        (Q::Txt("_mta-sts.future"), "error Bogus".to_owned()),
        (Q::Facts("mx.future"), "Bogus base=mx.future".to_owned()),
        // RDATA changed after signing: an A next to a good AAAA, and alone.
        (Q::Addr("mx4.tampered"), "error Bogus".to_owned()),
        (Q::Facts("mx4.tampered"), "Bogus base=mx4.tampered".to_owned()),
        (Q::Addr("only4.tampered"), "error Bogus".to_owned()),
        (Q::Facts("only4.tampered"), "Bogus base=only4.tampered".to_owned()),
        (Q::Facts("mx.tampered"), "Secure(1) base=mx.tampered".to_owned()),
    ]);
    t
}

#[test]
fn validate_mode_against_zones_signed_by_bind() {
    if !available() {
        return;
    }
    let world = BindWorld::start();
    assert_eq!(validating(&world).probe(), Ok(()));
    check(|| validating(&world), &validate_table());
}

#[test]
fn rfc7672_2_2_2_a_cname_looked_up_after_its_target_keeps_the_tlsa_base() {
    if !available() {
        return;
    }
    let world = BindWorld::start();
    let dns = validating(&world);
    // The target first, then the alias, on one resolver: the chain is kept.
    for (q, want) in [
        (Q::Facts("mx.nsec3"), "Secure(1) base=mx.nsec3"),
        (Q::Addr("mx.nsec3"), "secure [127.0.0.1, ::1] canonical=-"),
        (Q::Facts("cross.nsec"), "Secure(1) base=mx.nsec3"),
        (Q::Addr("cross.nsec"), "secure [127.0.0.1, ::1] canonical=mx.nsec3"),
        (Q::Facts("alias.nsec"), "Secure(1) base=mx.nsec"),
    ] {
        assert_eq!(outcome(&dns, q), want, "{q:?}");
    }
}

#[test]
fn trust_ad_mode_through_unbound() {
    if !available() {
        return;
    }
    let world = BindWorld::start();
    let make = || {
        let config = DnsConfig::default()
            .servers([world.unbound])
            .dnssec(DnssecMode::TrustAd)
            .timeout(Duration::from_secs(3))
            .attempts(1);
        DnsResolver::new(config).unwrap()
    };
    let mut t = Vec::new();
    for z in SIGNED {
        t.extend(signed_zone_cases(z, "secure"));
        t.extend(dane_cases(z));
    }
    t.extend([
        (Q::Txt("_mta-sts.plain"), "insecure [\"v=STSv1; id=plain;\"] Records".to_owned()),
        (Q::Facts("mx.plain"), "Insecure base=mx.plain".to_owned()),
        // unbound (OpenSSL) validates Ed448, which ring lacks.
        (Q::Facts("mx.alg16"), "Secure(1) base=mx.alg16".to_owned()),
        (Q::Facts("mx.sub.optout"), "Insecure base=mx.sub.optout".to_owned()),
        (Q::Facts("cross.nsec"), "Secure(1) base=mx.nsec3".to_owned()),
        // unbound answers SERVFAIL for bogus data: the host is not used.
        (Q::Txt("_mta-sts.broken"), "error ServerFailure".to_owned()),
        (Q::Facts("mx.expired"), "Failed base=mx.expired".to_owned()),
        (Q::Addr("mx4.tampered"), "error ServerFailure".to_owned()),
        (Q::Facts("mx4.tampered"), "Failed base=mx4.tampered".to_owned()),
    ]);
    check(make, &t);
}

#[test]
fn dnssec_off_against_bind_reports_no_status() {
    if !available() {
        return;
    }
    let world = BindWorld::start();
    let make = || {
        let config = DnsConfig::default().servers([world.named]).dnssec(DnssecMode::Off).attempts(1);
        DnsResolver::new(config).unwrap()
    };
    let mut t = signed_zone_cases("nsec", "indeterminate");
    t.extend([
        (Q::Facts("mx.nsec"), "Unavailable base=mx.nsec".to_owned()),
        (Q::Txt("_mta-sts.broken"), "indeterminate [\"v=STSv1; id=broken;\"] Records".to_owned()),
    ]);
    check(make, &t);
}

#[test]
fn a_path_that_strips_dnssec_cannot_validate_rather_than_bogus() {
    if !available() {
        return;
    }
    let world = BindWorld::start();
    let anchor = TrustAnchor::parse(&world.root_anchor).unwrap();
    let config = DnsConfig::default()
        .servers([world.stripping])
        .dnssec(DnssecMode::Validate(anchor))
        .timeout(Duration::from_secs(2))
        .attempts(1);
    // By default: the probe says so, lookups fail (mail waits), never "bogus".
    let strict = DnsResolver::new(config.clone()).unwrap();
    let err = strict.probe().unwrap_err();
    assert!(err.to_string().contains("DANE cannot apply"), "{err}");
    assert_eq!(strict.health(), Health::CannotValidate);
    assert_eq!(outcome(&strict, Q::Txt("_mta-sts.nsec")), "error CannotValidate(AnchorKeys)");
    assert_eq!(outcome(&strict, Q::Facts("mx.nsec")), "Failed base=mx.nsec");
    // Degraded: DANE unavailable, as with DNSSEC off, and counted.
    let degraded = DnsResolver::new(config.degraded(true)).unwrap();
    assert_eq!(outcome(&degraded, Q::Txt("_mta-sts.nsec")), "indeterminate [\"v=STSv1; id=nsec;\"] Records");
    assert_eq!(outcome(&degraded, Q::Facts("mx.nsec")), "Unavailable base=mx.nsec");
    assert_eq!(degraded.health(), Health::CannotValidate);
    assert!(degraded.degraded_answers() >= 2, "{}", degraded.degraded_answers());
    // A working path says it validates.
    let good = validating(&world);
    assert_eq!(good.health(), Health::Unknown);
    assert_eq!(outcome(&good, Q::Txt("_mta-sts.nsec")), "secure [\"v=STSv1; id=nsec;\"] Records");
    assert_eq!(good.health(), Health::Validating);
}

/// A cold burst of lookups in one zone fetches each zone's keys once:
/// concurrent lookups wait for the first key fetch instead of repeating it
/// (the DNSKEY RRsets of the root and of `nsec.`, and nothing more).
#[test]
fn concurrent_cold_lookups_share_the_key_fetches() {
    if !available() {
        return;
    }
    let world = BindWorld::start();
    let dns = validating(&world);
    let async_dns = dns.inner().clone();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let names = ["mx.nsec", "notlsa.nsec", "onlya.nsec", "wmx.nsec", "x.hosts.nsec", "y.hosts.nsec", "z.hosts.nsec"];
    let statuses = rt.block_on(async {
        let tasks: Vec<_> = names
            .iter()
            .cycle()
            .take(28)
            .map(|n| {
                let dns = async_dns.clone();
                let host = DomainName::parse(n).unwrap();
                tokio::spawn(async move { dns.addresses(&host).await.map(|a| a.status) })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert!(statuses.iter().all(|s| *s == Ok(DnssecStatus::Secure)), "{statuses:?}");
    assert_eq!(dns.key_fetches(), 2, "one DNSKEY fetch for the root and one for nsec.");
}
