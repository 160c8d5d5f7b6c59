//! `smtp-tls-policy check DOMAIN`: what an "MTA-STS checker" web page
//! shows, seen through this program's own DNS, roots and proxy: the
//! `_mta-sts` TXT record, the policy (or exactly why none could be had),
//! each MX host with whether the policy allows it, its TLSA records and
//! their DNSSEC status, what the zone's controls would require of a
//! connection to it, the TLS-RPT record, and a list of problems with what
//! to fix. The status page's `/check?domain=` renders the same report.
//!
//! DNSSEC is validated in process from the IANA root unless told
//! otherwise. Without a network it stops after one DNS timeout with a
//! message saying so.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use smtp_tls_policy::dns::Rrset;
use smtp_tls_policy::dns::blocking::DnsResolver;
use smtp_tls_policy::engine::{
    Attempt, AuthOutcome, Authentication, Basis, DestinationControls, DnssecStatus, DomainFacts, HostResult, MxFacts,
    StsFacts, TlsaFacts,
};
use smtp_tls_policy::fetch::{FetchConfig, PolicyFetcher};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::report::select_tlsrpt;
use smtp_tls_policy::sts::{Mode, select_txt};

use crate::smtp;

/// What the check looks through.
pub struct Setup {
    pub dns: DnsResolver,
    pub fetch: FetchConfig,
    pub controls: DestinationControls,
    /// Also try STARTTLS on port 25 of each MX host.
    pub connect: bool,
    /// The roots the STARTTLS probe trusts.
    pub roots: smtp_tls_policy::verify::Roots,
}

/// A problem and what to do about it.
struct Problem(String);

/// Checks `domain`: the report, and how many problems it lists.
pub fn run(setup: &Setup, domain: &DomainName) -> Result<(Value, usize), String> {
    let dns = &setup.dns;
    // Offline (or behind a resolver that strips DNSSEC), stop here.
    if let Err(e) = dns.probe() {
        let hint = if dns.validates() { ", or turn DNSSEC validation off" } else { "" };
        return Err(format!(
            "{e}.\nThe check needs working DNS (and HTTPS to mta-sts.{domain}, and with --connect port 25): run it \
             where the network allows that, or point it at a resolver that answers{hint}"
        ));
    }
    let mut problems: Vec<Problem> = Vec::new();

    // MTA-STS TXT (RFC 8461 §3.1).
    let txt_name = format!("_mta-sts.{domain}");
    let txt = dns.txt(&txt_name);
    let mut sts = json!({ "txt_name": txt_name });
    let mut policy = None;
    match &txt {
        Ok(answer) => {
            sts["txt_records"] = json!(answer.records());
            match select_txt(answer.records().iter().map(String::as_str)) {
                Ok(record) => {
                    sts["record"] = json!(record.to_string());
                    sts["id"] = json!(record.id());
                    let fetcher = PolicyFetcher::new(setup.fetch.clone()).map_err(|e| e.to_string())?;
                    sts["policy_url"] = json!(format!("https://mta-sts.{domain}/.well-known/mta-sts.txt"));
                    // The policy host through the same DNS as everything
                    // else (--dns included), not the system's resolver.
                    let host = DomainName::parse(&format!("mta-sts.{domain}")).map_err(|e| e.to_string())?;
                    let addresses = dns.connect_addresses(&host);
                    sts["policy_host_addresses"] = json!(addresses.iter().map(ToString::to_string).collect::<Vec<_>>());
                    match fetcher.fetch_at(domain, &addresses) {
                        Ok(p) => {
                            sts["policy"] = json!(p.to_string());
                            sts["mode"] = json!(p.mode().to_string());
                            sts["max_age"] = json!(p.max_age().as_secs());
                            if p.mode() == Mode::Testing {
                                problems.push(Problem(
                                    "MTA-STS is in testing mode: senders report failures but still deliver; switch to enforce once TLS-RPT reports are clean".into(),
                                ));
                            }
                            if p.max_age() < Duration::from_secs(86_400) {
                                problems.push(Problem(format!(
                                    "max_age is {} s: RFC 8461 §3.2 suggests weeks (e.g. 604800 or more) so that a policy survives outages",
                                    p.max_age().as_secs()
                                )));
                            }
                            policy = Some((record.policy_id(), p));
                        }
                        Err(e) => {
                            sts["policy_error"] = json!(e.to_string());
                            sts["result_type"] = json!(e.result_type().to_string());
                            problems.push(Problem(format!("the policy could not be fetched: {e}")));
                        }
                    }
                }
                Err(e) => {
                    sts["txt_error"] = json!(e.to_string());
                    if answer.records().iter().any(|r| r.starts_with("v=STSv1")) {
                        problems.push(Problem(e.to_string()));
                    }
                }
            }
        }
        Err(e) => {
            sts["txt_error"] = json!(e.to_string());
            problems.push(Problem(format!("the MTA-STS TXT lookup failed: {e}")));
        }
    }

    // MX hosts (RFC 5321 §5.1) and their TLSA records (RFC 7672 §2.2).
    let mut mx_json = json!({});
    let mut facts = None;
    match dns.mx_hosts(domain) {
        Ok(mx) => {
            mx_json["dnssec"] = json!(format!("{:?}", mx.status).to_lowercase());
            mx_json["implicit"] = json!(mx.implicit);
            let hosts: Vec<MxFacts> = dns.mx_facts_many(&mx.hosts);
            let sts_facts = match &policy {
                Some((id, p)) => StsFacts::Policy { id: *id, policy: std::sync::Arc::new(p.clone()) },
                None => StsFacts::NoPolicy,
            };
            facts = Some(DomainFacts::new(domain.clone(), hosts, mx.status).with_sts(sts_facts));
            if mx.status != DnssecStatus::Secure {
                mx_json["note"] = json!("the MX RRset is not DNSSEC-signed: DANE cannot apply (RFC 7672 §2.2.1)");
            }
        }
        Err(e) => {
            mx_json["error"] = json!(e.to_string());
            problems.push(Problem(format!("MX lookup: {e}")));
        }
    }

    let mut hosts_json = Vec::new();
    if let Some(facts) = &facts {
        let plan = setup.controls.plan(facts);
        let roots = &setup.roots;
        for mx in &facts.mx {
            let host = mx.host.as_str();
            let mut h = json!({ "host": host });
            if let Some((_, p)) = &policy {
                let allowed = p.allows_mx(host);
                h["allowed_by_policy"] = json!(allowed);
                if !allowed && p.mode() != Mode::None {
                    problems.push(Problem(format!(
                        "MX {host} is not allowed by the MTA-STS policy: add \"mx: {host}\" (or a matching *. pattern) to the policy, or change the MX record"
                    )));
                }
            }
            let (tlsa_status, records) = match &mx.tlsa {
                TlsaFacts::Secure(r) => ("secure", r.iter().map(ToString::to_string).collect::<Vec<_>>()),
                TlsaFacts::SecureNone => ("secure, no TLSA records", vec![]),
                TlsaFacts::Insecure => ("insecure (not DNSSEC-signed)", vec![]),
                TlsaFacts::Bogus => ("bogus (DNSSEC validation failed)", vec![]),
                TlsaFacts::Failed => ("lookup failed", vec![]),
                _ => ("not checked (no DNSSEC validation)", vec![]),
            };
            h["tlsa"] =
                json!({ "name": format!("_25._tcp.{}", mx.tlsa_base), "status": tlsa_status, "records": records });
            match &mx.tlsa {
                TlsaFacts::Bogus => problems.push(Problem(format!(
                    "the TLSA lookup for {host} is bogus: DANE senders will not deliver to it; fix the zone's DNSSEC signatures"
                ))),
                TlsaFacts::Failed => problems.push(Problem(format!(
                    "the TLSA lookup for {host} failed: DANE senders will not use it; check that its zone answers TLSA queries"
                ))),
                TlsaFacts::Secure(r) if r.iter().all(|t| !t.is_usable_for_smtp()) => problems.push(Problem(format!(
                    "no TLSA record of {host} is usable for SMTP (RFC 7672 §3.1.3 allows only usages 2 and 3): publish e.g. \"3 1 1\""
                ))),
                _ => {}
            }
            match plan.hosts.iter().find(|p| p.host == mx.host) {
                Some(hp) => {
                    h["requirement"] = json!(describe(&hp.requirement.auth, hp.requirement.basis));
                    if setup.connect {
                        h["connect"] = connect(dns, &plan, hp, roots, &mut problems);
                    }
                }
                None => {
                    let why = plan.skipped.iter().find(|(n, _)| *n == mx.host).map(|(_, w)| w.describe());
                    h["requirement"] = json!(format!("not used: {}", why.unwrap_or("excluded by the plan")));
                }
            }
            hosts_json.push(h);
        }
    }
    mx_json["hosts"] = json!(hosts_json);

    // TLS-RPT (RFC 8460 §3).
    let rpt_name = format!("_smtp._tls.{domain}");
    let tlsrpt = match dns.txt(&rpt_name) {
        Ok(a) => match select_tlsrpt(a.records().iter().map(String::as_str)) {
            Ok(r) => json!({ "name": rpt_name, "record": r.to_string() }),
            Err(e) => {
                problems.push(Problem(format!(
                    "TLS-RPT: {e}; publish e.g. \"v=TLSRPTv1; rua=mailto:tlsrpt@{domain}\" at {rpt_name} to receive reports"
                )));
                json!({ "name": rpt_name, "error": e.to_string() })
            }
        },
        Err(e) => json!({ "name": rpt_name, "error": e.to_string() }),
    };

    let problems_json: Vec<&str> = problems.iter().map(|p| p.0.as_str()).collect();
    let report = json!({
        "domain": domain.as_str(),
        "mta_sts": sts,
        "mx": mx_json,
        "tls_rpt": tlsrpt,
        "problems": problems_json,
    });
    Ok((report, problems.len()))
}

pub fn describe(auth: &Authentication, basis: Basis) -> String {
    let how = match auth {
        Authentication::None => "TLS if offered, no certificate check".to_owned(),
        Authentication::WebPki { names, .. } => format!(
            "TLS 1.2+, WebPKI certificate for {}",
            names.iter().map(DomainName::as_str).collect::<Vec<_>>().join(" or ")
        ),
        Authentication::Dane { records, .. } => format!("TLS 1.2+, DANE ({} usable TLSA records)", records.len()),
        _ => "—".to_owned(),
    };
    let why = match basis {
        Basis::Dane => "DANE",
        Basis::Sts(Mode::Enforce) => "MTA-STS enforce",
        Basis::Sts(_) => "MTA-STS testing",
        _ => "no policy",
    };
    format!("{how} ({why})")
}

/// STARTTLS on port 25 of the host's first address, with the crate's
/// verifier; no message is sent.
fn connect(
    dns: &DnsResolver,
    plan: &smtp_tls_policy::engine::Plan,
    host: &smtp_tls_policy::engine::HostPlan,
    roots: &smtp_tls_policy::verify::Roots,
    problems: &mut Vec<Problem>,
) -> Value {
    let address = match dns.addresses(&host.host) {
        Ok(a) => match a.rrset {
            Rrset::Records(ips) if !ips.is_empty() => ips[0],
            _ => return json!({ "error": "no address records" }),
        },
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let tried = smtp::deliver(SocketAddr::new(address, 25), plan, host, roots.clone(), None);
    let attempt = match &tried.attempt {
        Attempt::Unreachable => {
            "no SMTP session on port 25 (blocked outbound port 25 is common on home and cloud networks)".to_owned()
        }
        Attempt::Plaintext { starttls_offered: false } => "STARTTLS not offered".to_owned(),
        Attempt::Plaintext { .. } => "plain text".to_owned(),
        Attempt::HandshakeFailed { reason } => format!("TLS handshake failed: {reason}"),
        Attempt::Tls { version, auth, .. } => format!(
            "{version:?}, {}",
            match auth {
                AuthOutcome::NotChecked => "certificate not checked".to_owned(),
                AuthOutcome::WebPki(Ok(name)) => format!("WebPKI certificate valid for {name}"),
                AuthOutcome::WebPki(Err(e)) => format!("WebPKI check failed: {e:?}"),
                AuthOutcome::Dane(o) if o.is_authenticated() => "DANE verified".to_owned(),
                AuthOutcome::Dane(o) =>
                    format!("DANE failed: {}", o.failure().map(ToString::to_string).unwrap_or_default()),
                _ => "—".to_owned(),
            }
        ),
        _ => "—".to_owned(),
    };
    let verdict = match &tried.result {
        HostResult::Deliver { reported, .. } if reported.is_empty() => "would deliver".to_owned(),
        HostResult::Deliver { reported, .. } => format!("would deliver, reporting: {}", reported[0].reason),
        HostResult::TryNext(f) | HostResult::Stop(f) => {
            problems.push(Problem(f.reason.clone()));
            format!("would not deliver: {}", f.reason)
        }
        _ => "—".to_owned(),
    };
    json!({ "address": address.to_string(), "attempt": attempt, "verdict": verdict })
}

/// The report as text for a terminal.
pub fn text(r: &Value) -> String {
    let mut out = String::new();
    let s = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    let _ = writeln!(out, "MTA-STS / DANE / TLS-RPT check of {}\n", s(&r["domain"]));
    let sts = &r["mta_sts"];
    let _ = writeln!(out, "MTA-STS TXT {}:", s(&sts["txt_name"]));
    for t in sts["txt_records"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "  {}", s(t));
    }
    if !sts["txt_error"].is_null() {
        let _ = writeln!(out, "  → {}", s(&sts["txt_error"]));
    }
    if !sts["policy_url"].is_null() {
        let _ = writeln!(out, "\nPolicy {}:", s(&sts["policy_url"]));
        match sts["policy"].as_str() {
            Some(p) => p.lines().for_each(|l| {
                let _ = writeln!(out, "  {l}");
            }),
            None => {
                let _ = writeln!(out, "  → {}", s(&sts["policy_error"]));
            }
        }
    }
    let mx = &r["mx"];
    let _ = writeln!(
        out,
        "\nMX hosts (DNSSEC: {}{}):",
        s(&mx["dnssec"]),
        if mx["implicit"] == json!(true) { ", no MX: the domain itself" } else { "" }
    );
    if !mx["error"].is_null() {
        let _ = writeln!(out, "  → {}", s(&mx["error"]));
    }
    for h in mx["hosts"].as_array().into_iter().flatten() {
        let allowed = match h["allowed_by_policy"].as_bool() {
            Some(true) => " [allowed by the policy]",
            Some(false) => " [NOT allowed by the policy]",
            None => "",
        };
        let _ = writeln!(out, "  {}{allowed}", s(&h["host"]));
        let _ = writeln!(out, "    TLSA {}: {}", s(&h["tlsa"]["name"]), s(&h["tlsa"]["status"]));
        for t in h["tlsa"]["records"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "      {}", s(t));
        }
        let _ = writeln!(out, "    requires: {}", s(&h["requirement"]));
        if !h["connect"].is_null() {
            let c = &h["connect"];
            match c["error"].as_str() {
                Some(e) => {
                    let _ = writeln!(out, "    connect: {e}");
                }
                None => {
                    let _ =
                        writeln!(out, "    connect {}: {} — {}", s(&c["address"]), s(&c["attempt"]), s(&c["verdict"]));
                }
            }
        }
    }
    let _ = writeln!(out, "\nTLS-RPT {}:", s(&r["tls_rpt"]["name"]));
    match r["tls_rpt"]["record"].as_str() {
        Some(rec) => {
            let _ = writeln!(out, "  {rec}");
        }
        None => {
            let _ = writeln!(out, "  → {}", s(&r["tls_rpt"]["error"]));
        }
    }
    let problems = r["problems"].as_array().cloned().unwrap_or_default();
    if problems.is_empty() {
        let _ = writeln!(out, "\nNo problems found.");
    } else {
        let _ = writeln!(out, "\nProblems ({}):", problems.len());
        for p in problems {
            let _ = writeln!(out, "  - {}", s(&p));
        }
    }
    out
}
