//! Prints, as a Markdown table, what the decision engine plans for every
//! combination of TLS support, DANE support and MTA-STS mode, for an MX
//! host with secure usable TLSA records and one without (both listed in
//! the MTA-STS policy, behind a secure MX RRset).
//!
//! ```text
//! cargo run --example matrix
//! ```

use std::sync::Arc;

use smtp_tls_policy::dane::TlsaRecord;
use smtp_tls_policy::engine::{
    Authentication, DaneSupport, DestinationControls, DnssecStatus, DomainFacts, HostPlan, MxFacts, OnAuthFailure,
    Profile, StsFacts, StsSupport, TlsRequirement, TlsSupport, TlsaFacts,
};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::sts::{Policy, PolicyId};

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

fn main() {
    let dane_mx = "mx1.example.com";
    let plain_mx = "mx2.example.com";
    println!("| TLS support | DANE | MTA-STS | {dane_mx} (usable TLSA) | {plain_mx} (no TLSA) |");
    println!("|---|---|---|---|---|");
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
                        MxFacts::new(name(dane_mx), TlsaFacts::Secure(vec![TlsaRecord::new(3, 1, 1, vec![0; 32])])),
                        MxFacts::new(name(plain_mx), TlsaFacts::SecureNone),
                    ],
                    DnssecStatus::Secure,
                )
                .with_sts(StsFacts::Policy { id: PolicyId::parse("x").expect("id"), policy: Arc::new(policy) });
                let plan = DestinationControls::new(Profile::new(tls, dane, sts)).plan(&facts);
                let skipped = |h: &str| plan.skipped.iter().any(|(s, _)| s.as_str() == h);
                println!(
                    "| {tls} | {dane} | {mode} | {} | {} |",
                    describe(&plan.hosts, dane_mx, skipped(dane_mx)),
                    describe(&plan.hosts, plain_mx, skipped(plain_mx)),
                );
            }
        }
    }
}
