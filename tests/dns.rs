//! DNS lookups and their DNSSEC status against the local DNS world
//! (examples/support/dns.rs): a signed root, a signed zone `signed.`, an
//! unsigned delegation `plain.` and `broken.`, whose DS matches no key.
//!
//! hickory-server 0.26 gives bogus NXDOMAIN proofs for names two or more
//! labels below the closest encloser, so every NXDOMAIN asked here is one
//! label below an existing name (an existing `_tcp.<host>` for TLSA).
#![cfg(feature = "dns")]

#[path = "../examples/support/mod.rs"]
mod support;

use std::time::Duration;

use smtp_tls_policy::dane::TlsaRecord;
use smtp_tls_policy::dns::blocking::DnsResolver;
use smtp_tls_policy::dns::{DnsConfig, DnsErrorKind, DnssecMode, Rrset, TrustAnchor};
use smtp_tls_policy::engine::{DnssecStatus, TlsaFacts};
use smtp_tls_policy::name::DomainName;
use support::dns::{DnsWorld, Zones};

const TLSA: &str = "3 1 1 2bb9e4c1a6e2b5d2f0e1b7a1c9d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6";

fn zones() -> Zones {
    let signed = format!(
        r#"
_mta-sts.split TXT "v=STSv1; " "id=20260101;"
_mta-sts.several TXT "v=STSv1; id=1;"
_mta-sts.several TXT "v=STSv1; id=2;"
_mta-sts.alias CNAME _mta-sts.split.signed.
multi MX 20 b.multi
multi MX 10 a.multi
multi MX 30 a.multi
a.multi A 127.0.0.1
b.multi A 127.0.0.1
implicit A 127.0.0.1
nullmx MX 0 .
dane MX 10 mx.dane
mx.dane A 127.0.0.1
_25._tcp.mx.dane TLSA {TLSA}
nodata A 127.0.0.1
_25._tcp.nodata TXT "a name without TLSA records"
nxdomain A 127.0.0.1
_tcp.nxdomain TXT "the closest encloser of _25._tcp.nxdomain"
unusable A 127.0.0.1
_25._tcp.unusable TLSA 1 1 1 2bb9e4c1a6e2b5d2f0e1b7a1c9d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6
alias A 127.0.0.1
mx.alias CNAME real.alias
real.alias A 127.0.0.1
_25._tcp.real.alias TLSA {TLSA}
aliasbase CNAME target.aliasbase
target.aliasbase A 127.0.0.1
_tcp.target.aliasbase TXT "no TLSA at the target"
_25._tcp.aliasbase TLSA {TLSA}
toplain CNAME host.plain.
"#
    );
    let plain = format!("host A 127.0.0.1\n_25._tcp.host TLSA {TLSA}\n_mta-sts.x TXT \"v=STSv1; id=7;\"\n");
    let broken = format!("host A 127.0.0.1\n_25._tcp.host TLSA {TLSA}\n");
    Zones { signed, plain, broken }
}

fn validating(world: &DnsWorld) -> DnsResolver {
    let anchor = TrustAnchor::parse(&world.root_anchor).unwrap();
    let config = DnsConfig::default().servers([world.addr]).dnssec(DnssecMode::Validate(anchor));
    DnsResolver::new(config.timeout(Duration::from_millis(500)).attempts(1)).unwrap()
}

fn host(name: &str) -> DomainName {
    DomainName::parse(name).unwrap()
}

fn tlsa() -> TlsaRecord {
    TlsaRecord::parse(TLSA).unwrap()
}

#[test]
fn rfc8461_3_1_txt_strings_are_joined_and_the_status_is_secure() {
    let world = DnsWorld::start(&zones());
    let dns = validating(&world);
    let a = dns.txt("_mta-sts.split.signed").unwrap();
    assert_eq!(a.records(), ["v=STSv1; id=20260101;"]);
    assert_eq!(a.status, DnssecStatus::Secure);
    assert_eq!(a.ttl, Duration::from_secs(300));
    assert_eq!(a.canonical, None);
    let mut several = dns.txt("_mta-sts.several.signed").unwrap().records().to_vec();
    several.sort();
    assert_eq!(several, ["v=STSv1; id=1;", "v=STSv1; id=2;"]);
}

#[test]
fn txt_cname_chains_are_followed() {
    let world = DnsWorld::start(&zones());
    let a = validating(&world).txt("_mta-sts.alias.signed").unwrap();
    assert_eq!(a.records(), ["v=STSv1; id=20260101;"]);
    assert_eq!(a.canonical.as_deref(), Some("_mta-sts.split.signed"));
    assert_eq!(a.status, DnssecStatus::Secure);
}

#[test]
fn insecure_delegation_answers_are_insecure() {
    let world = DnsWorld::start(&zones());
    let a = validating(&world).txt("_mta-sts.x.plain").unwrap();
    assert_eq!(a.records(), ["v=STSv1; id=7;"]);
    assert_eq!(a.status, DnssecStatus::Insecure);
}

#[test]
fn bogus_signatures_are_an_error_never_data() {
    let world = DnsWorld::start(&zones());
    let err = validating(&world).tlsa(&host("host.broken")).unwrap_err();
    assert_eq!(err.kind(), &DnsErrorKind::Bogus);
    assert!(err.is_temporary());
    assert!(err.to_string().contains("DNSSEC validation failed"), "{err}");
}

#[test]
fn rfc4035_5_3_a_record_changed_after_signing_is_bogus() {
    let world = DnsWorld::start(&zones());
    let dns = validating(&world);
    assert_eq!(dns.mx_facts(&host("mx.dane.signed")).tlsa, TlsaFacts::Secure(vec![tlsa()]));
    // An attacker's TLSA record under the zone's old signature.
    let forged = "3 1 1 0000000000000000000000000000000000000000000000000000000000000000";
    world.tamper("signed.", &format!("_25._tcp.mx.dane 300 TLSA {forged}"));
    let fresh = validating(&world);
    let err = fresh.tlsa(&host("mx.dane.signed")).unwrap_err();
    assert_eq!(err.kind(), &DnsErrorKind::Bogus, "{err}");
    assert_eq!(fresh.mx_facts(&host("mx.dane.signed")).tlsa, TlsaFacts::Bogus);
}

#[test]
fn servfail_and_timeouts_are_failures_not_negative_answers() {
    let world = DnsWorld::start(&zones());
    let dns = validating(&world);
    let err = dns.txt("_mta-sts.servfail.signed").unwrap_err();
    assert_eq!(err.kind(), &DnsErrorKind::ServerFailure, "{err}");
    assert!(err.is_temporary());
    let err = dns.txt("_mta-sts.timeout.signed").unwrap_err();
    assert_eq!(err.kind(), &DnsErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[test]
fn rfc5321_5_1_mx_hosts_in_preference_order() {
    let world = DnsWorld::start(&zones());
    let mx = validating(&world).mx_hosts(&host("multi.signed")).unwrap();
    assert_eq!(mx.hosts, [host("a.multi.signed"), host("b.multi.signed")]);
    assert!(!mx.implicit);
    assert_eq!(mx.status, DnssecStatus::Secure);
}

#[test]
fn rfc5321_5_1_no_mx_means_the_domain_itself_with_a_secure_denial() {
    let world = DnsWorld::start(&zones());
    let mx = validating(&world).mx_hosts(&host("implicit.signed")).unwrap();
    assert_eq!(mx.hosts, [host("implicit.signed")]);
    assert!(mx.implicit);
    assert_eq!(mx.status, DnssecStatus::Secure);
}

#[test]
fn rfc7505_null_mx_and_nxdomain_are_permanent() {
    let world = DnsWorld::start(&zones());
    let dns = validating(&world);
    let err = dns.mx_hosts(&host("nullmx.signed")).unwrap_err();
    assert_eq!(err.kind(), &DnsErrorKind::NullMx);
    assert!(!err.is_temporary());
    // One label below the zone apex: a secure NXDOMAIN.
    let err = dns.mx_hosts(&host("nosuchdomain.signed")).unwrap_err();
    assert_eq!(err.kind(), &DnsErrorKind::NxDomain, "{err}");
    assert!(!err.is_temporary());
}

#[test]
fn rfc7672_2_2_secure_tlsa_records() {
    let world = DnsWorld::start(&zones());
    let dns = validating(&world);
    let a = dns.tlsa(&host("mx.dane.signed")).unwrap();
    assert_eq!(a.records(), [tlsa()]);
    assert_eq!(a.status, DnssecStatus::Secure);
    let facts = dns.mx_facts(&host("mx.dane.signed"));
    assert_eq!(facts.tlsa, TlsaFacts::Secure(vec![tlsa()]));
    assert_eq!(facts.tlsa_base, host("mx.dane.signed"));
}

#[test]
fn rfc7672_2_2_secure_nodata_means_no_dane() {
    let world = DnsWorld::start(&zones());
    let dns = validating(&world);
    let a = dns.tlsa(&host("nodata.signed")).unwrap();
    // RFC 2308 §5: the negative TTL is min(SOA TTL, SOA MINIMUM) = 300 s.
    assert_eq!((a.rrset, a.status, a.ttl), (Rrset::NoData, DnssecStatus::Secure, Duration::from_secs(300)));
    assert_eq!(dns.mx_facts(&host("nodata.signed")).tlsa, TlsaFacts::SecureNone);
    // Kept in the negative cache: asked again, the answer is the same.
    let again = dns.tlsa(&host("nodata.signed")).unwrap();
    assert_eq!((again.rrset, again.status), (Rrset::NoData, DnssecStatus::Secure));
    assert!(again.ttl <= Duration::from_secs(300));
}

#[test]
fn rfc7672_2_2_secure_nxdomain_one_label_below_an_existing_name() {
    let world = DnsWorld::start(&zones());
    let dns = validating(&world);
    let a = dns.tlsa(&host("nxdomain.signed")).unwrap();
    assert_eq!((a.rrset, a.status), (Rrset::NxDomain, DnssecStatus::Secure));
    assert_eq!(dns.mx_facts(&host("nxdomain.signed")).tlsa, TlsaFacts::SecureNone);
}

#[test]
fn rfc7672_3_1_3_unusable_records_are_kept_for_the_engine() {
    let world = DnsWorld::start(&zones());
    let facts = validating(&world).mx_facts(&host("unusable.signed"));
    let TlsaFacts::Secure(records) = facts.tlsa else { panic!("{facts:?}") };
    assert!(!records[0].is_usable_for_smtp());
}

#[test]
fn rfc7672_2_2_2_a_secure_cname_chain_moves_the_tlsa_base_domain() {
    let world = DnsWorld::start(&zones());
    let dns = validating(&world);
    let addresses = dns.addresses(&host("mx.alias.signed")).unwrap();
    assert_eq!(addresses.canonical.as_deref(), Some("real.alias.signed"));
    assert_eq!(addresses.status, DnssecStatus::Secure);
    let facts = dns.mx_facts(&host("mx.alias.signed"));
    assert_eq!(facts.tlsa, TlsaFacts::Secure(vec![tlsa()]));
    assert_eq!(facts.tlsa_base, host("real.alias.signed"));
    assert_eq!(facts.host, host("mx.alias.signed"));
}

#[test]
fn rfc7672_2_2_2_no_tlsa_at_the_chain_end_falls_back_to_the_mx_name() {
    let world = DnsWorld::start(&zones());
    let facts = validating(&world).mx_facts(&host("aliasbase.signed"));
    assert_eq!(facts.tlsa, TlsaFacts::Secure(vec![tlsa()]));
    assert_eq!(facts.tlsa_base, host("aliasbase.signed"));
}

#[test]
fn rfc7672_2_2_2_insecure_addresses_mean_no_tlsa_lookup() {
    let world = DnsWorld::start(&zones());
    let dns = validating(&world);
    // A TLSA record exists in the unsigned zone; it must not be used.
    assert_eq!(dns.mx_facts(&host("host.plain")).tlsa, TlsaFacts::Insecure);
    // A secure CNAME into the unsigned zone: the chain is not secure.
    assert_eq!(dns.mx_facts(&host("toplain.signed")).tlsa, TlsaFacts::Insecure);
}

#[test]
fn mx_facts_of_several_hosts_keep_their_order() {
    let world = DnsWorld::start(&zones());
    let hosts = [host("mx.dane.signed"), host("host.plain"), host("host.broken")];
    let facts = validating(&world).mx_facts_many(&hosts);
    let got: Vec<_> = facts.iter().map(|f| (f.host.as_str(), f.tlsa.clone())).collect();
    assert_eq!(
        got,
        [
            ("mx.dane.signed", TlsaFacts::Secure(vec![tlsa()])),
            ("host.plain", TlsaFacts::Insecure),
            ("host.broken", TlsaFacts::Bogus)
        ]
    );
}

#[test]
fn rfc7672_2_1_1_bogus_and_failed_hosts_are_told_apart() {
    let world = DnsWorld::start(&zones());
    let dns = validating(&world);
    assert_eq!(dns.mx_facts(&host("host.broken")).tlsa, TlsaFacts::Bogus);
    assert_eq!(dns.mx_facts(&host("mx.servfail.signed")).tlsa, TlsaFacts::Failed);
}

#[test]
fn dnssec_off_reports_dane_unavailable_never_bogus() {
    let world = DnsWorld::start(&zones());
    let dns = DnsResolver::new(DnsConfig::default().servers([world.addr]).dnssec(DnssecMode::Off)).unwrap();
    assert!(!dns.validates());
    let a = dns.txt("_mta-sts.split.signed").unwrap();
    assert_eq!(a.status, DnssecStatus::Indeterminate);
    for h in ["mx.dane.signed", "host.broken", "host.plain"] {
        assert_eq!(dns.mx_facts(&host(h)).tlsa, TlsaFacts::Unavailable, "{h}");
    }
}

#[test]
fn trust_ad_mode_takes_the_status_from_the_ad_bit() {
    let world = DnsWorld::start(&zones());
    let ad = DnsResolver::new(DnsConfig::default().servers([world.ad_addr]).dnssec(DnssecMode::TrustAd)).unwrap();
    let facts = ad.mx_facts(&host("mx.dane.signed"));
    assert_eq!(facts.tlsa, TlsaFacts::Secure(vec![tlsa()]));
    let a = ad.tlsa(&host("nodata.signed")).unwrap();
    assert_eq!((a.rrset, a.status), (Rrset::NoData, DnssecStatus::Secure));
    // The same data without the AD bit is insecure.
    let no_ad = DnsResolver::new(DnsConfig::default().servers([world.addr]).dnssec(DnssecMode::TrustAd)).unwrap();
    assert_eq!(no_ad.mx_facts(&host("mx.dane.signed")).tlsa, TlsaFacts::Insecure);
    let err = no_ad.txt("_mta-sts.servfail.signed").unwrap_err();
    assert_eq!(err.kind(), &DnsErrorKind::ServerFailure);
}

#[test]
fn async_lookups_run_from_any_runtime_and_blocking_ones_refuse_async_code() {
    let world = DnsWorld::start(&zones());
    let dns = validating(&world);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async {
        let a = dns.inner().txt("_mta-sts.split.signed").await.unwrap();
        assert_eq!(a.records(), ["v=STSv1; id=20260101;"]);
        let facts = dns.inner().mx_facts(&host("mx.dane.signed")).await;
        assert_eq!(facts.tlsa, TlsaFacts::Secure(vec![tlsa()]));
        let mx = dns.inner().mx_hosts(&host("multi.signed")).await.unwrap();
        assert_eq!(mx.hosts.len(), 2);
        let err = dns.txt("_mta-sts.split.signed").unwrap_err();
        assert_eq!(err.kind(), &DnsErrorKind::InAsyncContext);
        assert!(err.to_string().contains("use the async resolver"), "{err}");
        // A misuse defers mail ("defer if temporary, else bounce"), never bounces it.
        assert!(err.is_temporary());
    });
    // The resolver can be dropped inside async code without a panic.
    rt.block_on(async move { drop(dns) });
}

#[test]
fn probe_tells_working_validation_from_a_wrong_anchor() {
    let world = DnsWorld::start(&zones());
    assert_eq!(validating(&world).probe(), Ok(()));
    let off = DnsResolver::new(DnsConfig::default().servers([world.addr]).dnssec(DnssecMode::Off)).unwrap();
    assert_eq!(off.probe(), Ok(()));
    // Anchored to a key the world's root never used: nothing can be secure.
    let other = DnsWorld::start(&Zones::default());
    let anchor = TrustAnchor::parse(&other.root_anchor).unwrap();
    let config = DnsConfig::default().servers([world.addr]).dnssec(DnssecMode::Validate(anchor)).attempts(1);
    let err = DnsResolver::new(config).unwrap().probe().unwrap_err();
    assert!(matches!(err.kind(), DnsErrorKind::CannotValidate(_)), "{err}");
    assert!(err.to_string().contains("DANE cannot apply"), "{err}");
}
