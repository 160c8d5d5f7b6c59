//! The engine's behaviour as text: the table of what it plans for every
//! combination of TLS support, DANE support and MTA-STS mode
//! (`cargo run --example matrix`, the README's table), and every verdict
//! reason those plans give for a set of attempts. Golden files in
//! tests/golden hold both; `tests/golden.rs` compares.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use smtp_tls_policy::dane::{DaneFailure, DaneOutcome, TlsaRecord};
use smtp_tls_policy::engine::{
    Attempt, AuthOutcome, Authentication, CertFailure, DaneSupport, DeliveryContext, DestinationControls, DnssecStatus,
    DomainFacts, HostPlan, MxFacts, OnAuthFailure, Plan, Profile, StsFacts, StsSupport, TlsRequirement, TlsSupport,
    TlsVersion, TlsaFacts,
};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::sts::{Policy, PolicyId};

const DANE_MX: &str = "mx1.example.com";
const PLAIN_MX: &str = "mx2.example.com";

fn name(s: &str) -> DomainName {
    DomainName::parse(s).expect("valid name")
}

fn describe(plan: &[HostPlan], host: &str, skipped: bool) -> String {
    let Some(h) = plan.iter().find(|h| h.host.as_str() == host) else {
        return if skipped { "not used".to_owned() } else { "—".to_owned() };
    };
    let r = &h.requirement;
    let tls = match r.tls {
        TlsRequirement::Never => "plain",
        TlsRequirement::Opportunistic => "TLS if offered",
        TlsRequirement::Required => "TLS required",
        _ => "?",
    };
    let auth = match (&r.auth, r.on_auth_failure) {
        (Authentication::None, _) => String::new(),
        (Authentication::Dane { .. }, _) => ", DANE".to_owned(),
        (Authentication::WebPki { names, .. }, how) => {
            let names: Vec<&str> = names.iter().map(DomainName::as_str).collect();
            let report = if how == OnAuthFailure::DeliverAndReport { " (report only)" } else { "" };
            format!(", WebPKI {}{report}", names.join("/"))
        }
        _ => ", ?".to_owned(),
    };
    format!("{tls}{auth}")
}

/// Every combination: (TLS support, DANE support, MTA-STS mode, its plan).
pub fn plans() -> Vec<(TlsSupport, DaneSupport, &'static str, Plan)> {
    let mut out = Vec::new();
    for &tls in TlsSupport::ALL {
        for &dane in DaneSupport::ALL {
            for mode in ["off", "testing", "enforce"] {
                let sts = if mode == "off" { StsSupport::Off } else { StsSupport::On };
                let policy = Policy::parse(&format!(
                    "version: STSv1\nmode: {}\nmx: *.example.com\nmax_age: 86400\n",
                    if mode == "off" { "enforce" } else { mode }
                ))
                .expect("valid policy");
                let facts = DomainFacts::new(
                    name("example.com"),
                    vec![
                        MxFacts::new(name(DANE_MX), TlsaFacts::Secure(vec![TlsaRecord::new(3, 1, 1, vec![0; 32])])),
                        MxFacts::new(name(PLAIN_MX), TlsaFacts::SecureNone),
                    ],
                    DnssecStatus::Secure,
                )
                .with_sts(StsFacts::Policy { id: PolicyId::parse("x").expect("id"), policy: Arc::new(policy) });
                let plan = DestinationControls::new(Profile::new(tls, dane, sts)).plan(&facts);
                out.push((tls, dane, mode, plan));
            }
        }
    }
    out
}

/// The Markdown table of every plan.
pub fn table() -> String {
    let mut out = format!("| TLS support | DANE | MTA-STS | {DANE_MX} (usable TLSA) | {PLAIN_MX} (no TLSA) |\n");
    out.push_str("|---|---|---|---|---|\n");
    for (tls, dane, mode, plan) in plans() {
        let skipped = |h: &str| plan.skipped.iter().any(|(s, _)| s.as_str() == h);
        out.push_str(&format!(
            "| {tls} | {dane} | {mode} | {} | {} |\n",
            describe(&plan.hosts, DANE_MX, skipped(DANE_MX)),
            describe(&plan.hosts, PLAIN_MX, skipped(PLAIN_MX)),
        ));
    }
    out
}

/// The attempts every host of every plan is tried with.
fn attempts() -> Vec<Attempt> {
    let webpki = |r| Attempt::tls(TlsVersion::Tls13, AuthOutcome::WebPki(r));
    vec![
        Attempt::Unreachable,
        Attempt::Plaintext { starttls_offered: false },
        Attempt::Plaintext { starttls_offered: true },
        Attempt::HandshakeFailed { reason: "handshake failure alert".into() },
        Attempt::tls(TlsVersion::Tls11, AuthOutcome::NotChecked),
        Attempt::tls(TlsVersion::Tls13, AuthOutcome::NotChecked),
        webpki(Err(CertFailure::Expired)),
        webpki(Err(CertFailure::NotTrusted)),
        webpki(Err(CertFailure::HostMismatch { names_connected_host: false })),
        webpki(Err(CertFailure::HostMismatch { names_connected_host: true })),
        webpki(Err(CertFailure::Other("bad signature".into()))),
        Attempt::tls(TlsVersion::Tls13, AuthOutcome::Dane(DaneOutcome::Failed(DaneFailure::NoMatch))),
    ]
}

/// Every distinct "status reason" line the verdicts of every plan give,
/// each attempt on every host, fresh and past the queue lifetime (after
/// the policy re-check).
pub fn verdict_reasons() -> String {
    let mut reasons = BTreeSet::new();
    let contexts = [
        DeliveryContext::new(Duration::from_secs(60)),
        DeliveryContext::new(Duration::from_secs(6 * 86_400)).rechecked(),
    ];
    for (_, _, _, plan) in plans() {
        for attempt in attempts() {
            for context in contexts {
                let mut delivery = plan.delivery();
                while delivery.next_host().is_some() {
                    delivery.record(attempt.clone());
                }
                let v = delivery.finish(context).verdict;
                reasons.insert(format!("{} {}", v.status(), v.reason()));
            }
        }
    }
    reasons.into_iter().map(|r| r + "\n").collect()
}
