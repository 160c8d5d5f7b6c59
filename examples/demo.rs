//! The crate's main job as it stands today, offline: MTA-STS discovery —
//! it selects the `_mta-sts` TXT record from an RRset, fetches the policy
//! over HTTPS from a policy host it starts on 127.0.0.1 (with a local CA),
//! through the policy cache, parses it and says which MX hosts it allows
//! (RFC 8461 §3.1, §3.2, §3.3, §4.1) — and DANE — it checks certificate
//! chains made on the spot against TLSA records (RFC 7672 §3.1). The DNS and
//! SMTP world of the full demo comes with the remaining IO layers.
//!
//! ```text
//! cargo run --example demo                              # bundled example.com
//! cargo run --example demo -- POLICY_FILE [MX_HOST ...] # your policy file
//! ```
//!
//! Exit status: 0 when the policy is valid, 1 when it is not, 2 on a usage
//! or file error.

#[path = "../tests/support/https.rs"]
mod https;

use std::process::ExitCode;
use std::time::SystemTime;

use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PublicKeyData};
use ring::digest::{SHA256, digest};
use rustls_pki_types::UnixTime;
use smtp_tls_policy::cache::{Decision, NoPolicyReason, PolicyCache, TxtLookup};
use smtp_tls_policy::dane::{TlsaRecord, verify_chain};
use smtp_tls_policy::fetch::{FetchConfig, PolicyFetcher, Roots};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::sts::{Mode, Policy, TxtError, select_txt};

const BUNDLED_POLICY: &str = include_str!("../tests/data/policies/rfc8461-example.txt");

const BUNDLED_RRSET: [&str; 3] =
    ["v=spf1 include:_spf.example.com -all", "v=STSv1; id=20160831085700Z;", "google-site-verification=abc123"];

const BUNDLED_MX: [&str; 5] =
    ["mail.example.com", "MX1.example.net.", "backupmx.example.com", "a.b.example.net", "mail.attacker.example"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: cargo run --example demo [-- POLICY_FILE [MX_HOST ...]]");
        return ExitCode::SUCCESS;
    }
    let (source, body, hosts): (String, Vec<u8>, Vec<String>) = match args.split_first() {
        None => {
            show_dane();
            show_txt();
            show_fetch();
            (
                "https://mta-sts.example.com/.well-known/mta-sts.txt (bundled)".to_owned(),
                BUNDLED_POLICY.as_bytes().to_vec(),
                BUNDLED_MX.iter().map(|h| (*h).to_owned()).collect(),
            )
        }
        Some((path, hosts)) => match std::fs::read(path) {
            Ok(body) => (path.clone(), body, hosts.to_vec()),
            Err(e) => {
                eprintln!(
                    "cannot read {path}: {e} (give the path of a policy file, as served at /.well-known/mta-sts.txt)"
                );
                return ExitCode::from(2);
            }
        },
    };

    println!("policy from {source}:");
    let policy = match Policy::parse_bytes(&body) {
        Ok(policy) => policy,
        Err(e) => {
            println!("  INVALID: {e}");
            println!("  a sender treats the domain as having no usable MTA-STS policy (RFC 8461 §3.3, §5)");
            return ExitCode::from(1);
        }
    };
    let what = match policy.mode() {
        Mode::Enforce => "deliver only to matching MX hosts, over TLS with a valid certificate",
        Mode::Testing => "deliver as usual, report failures through TLS-RPT",
        _ => "no active policy (the domain withdraws it)",
    };
    println!("  mode:     {} ({what})", policy.mode());
    let secs = policy.max_age().as_secs();
    println!("  max_age:  {secs} s ({:.1} days)", secs as f64 / 86_400.0);
    let patterns: Vec<String> = policy.mx().iter().map(ToString::to_string).collect();
    println!("  mx:       {}", if patterns.is_empty() { "(none)".to_owned() } else { patterns.join(", ") });
    for e in policy.extensions() {
        println!("  ext:      {}: {}", e.name(), e.value());
    }
    if !hosts.is_empty() {
        println!("MX hosts (RFC 8461 §4.1):");
        for host in &hosts {
            let verdict = match (policy.allows_mx(host), policy.mode()) {
                (true, _) => "allowed",
                (false, Mode::Enforce) => "NOT allowed: an enforcing sender will not deliver to it",
                (false, Mode::Testing) => "does not match: a testing sender delivers and reports it",
                (false, _) => "does not match (mode none: no effect)",
            };
            println!("  {host:<28} {verdict}");
        }
    }
    println!("canonical form (Display):");
    for line in policy.to_string().lines() {
        println!("  {line}");
    }
    ExitCode::SUCCESS
}

fn show_txt() {
    println!("_mta-sts.example.com TXT RRset:");
    for record in BUNDLED_RRSET {
        println!("  {record:?}");
    }
    match select_txt(BUNDLED_RRSET) {
        Ok(txt) => println!("  selected (RFC 8461 §3.1): {txt}  (policy id {})", txt.id()),
        Err(TxtError::Several { count }) => println!("  {count} records: no policy"),
        Err(e) => println!("  {e}"),
    }
    let broken = ["v=STSv1; id=1", "v=STSv1; id=2"];
    println!("  and with two STS records {broken:?}: {}", select_txt(broken).unwrap_err());
}

/// DANE (RFC 7672 §3.1) on a chain made here: a root, an intermediate and
/// a server certificate for mx.example.net.
fn show_dane() {
    let ca = |cn: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("no names");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p
    };
    let (root_params, root_key) = (ca("Demo Root"), KeyPair::generate().expect("key"));
    let root = root_params.self_signed(&root_key).expect("root");
    let (int_params, int_key) = (ca("Demo Intermediate"), KeyPair::generate().expect("key"));
    let int = int_params.signed_by(&int_key, &Issuer::from_params(&root_params, &root_key)).expect("intermediate");
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["mx.example.net".to_owned()])
        .expect("name")
        .signed_by(&leaf_key, &Issuer::from_params(&int_params, &int_key))
        .expect("leaf");
    let sha256 = |bytes: &[u8]| digest(&SHA256, bytes).as_ref().to_vec();
    let chain = [leaf.der().clone(), int.der().clone(), root.der().clone()];
    let now = UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000));

    println!("DANE: mx.example.net presents [server certificate, intermediate, root]");
    let cases = [
        ("3 1 1 <server key>", TlsaRecord::new(3, 1, 1, sha256(&leaf_key.subject_public_key_info())), "mx.example.net"),
        ("2 1 1 <root key>", TlsaRecord::new(2, 1, 1, sha256(&root_key.subject_public_key_info())), "mx.example.net"),
        (
            "2 1 1 <root key>",
            TlsaRecord::new(2, 1, 1, sha256(&root_key.subject_public_key_info())),
            "mail.other.example",
        ),
        ("3 1 1 <someone else's key>", TlsaRecord::new(3, 1, 1, vec![0xab; 32]), "mx.example.net"),
        ("1 1 1 <server key>", TlsaRecord::new(1, 1, 1, sha256(&leaf_key.subject_public_key_info())), "mx.example.net"),
    ];
    for (label, record, name) in cases {
        let outcome = verify_chain(&chain, std::slice::from_ref(&record), &[name], now);
        match (outcome.matched(), outcome.failure()) {
            (Some(m), _) => println!("  {label:<28} name {name:<20} authenticated (depth {})", m.depth),
            (_, Some(f)) => println!("  {label:<28} name {name:<20} FAILED [{}]: {f}", f.result_type()),
            _ => println!("  {label:<28} {outcome:?}"),
        }
    }
    println!();
}

/// RFC 8461 §3.3 and §5.1: the policy fetched over HTTPS from a local
/// policy host, through the cache; then the cache protecting it.
fn show_fetch() {
    let pki = https::Pki::new();
    let (good, _) = https::serve(pki.server("mta-sts.example.com", false), https::ok(BUNDLED_POLICY.as_bytes()));
    let (bad, _) = https::serve(https::self_signed("mta-sts.broken.example"), https::ok(BUNDLED_POLICY.as_bytes()));
    let lookup = move |host: &str| vec![if host.ends_with("broken.example") { bad } else { good }];
    let config =
        FetchConfig::default().roots(Roots::Custom(vec![pki.ca_der.clone()])).proxy_from_env(false).lookup(lookup);
    let fetcher = match PolicyFetcher::new(config) {
        Ok(f) => f,
        Err(e) => {
            println!("  cannot set up the fetch: {e}");
            return;
        }
    };
    let cache = PolicyCache::default();
    let (Ok(domain), Ok(broken)) = (DomainName::parse("example.com"), DomainName::parse("broken.example")) else {
        return;
    };
    let Ok(txt) = select_txt(BUNDLED_RRSET) else { return };
    let id = TxtLookup::Record(txt.policy_id());
    println!("MTA-STS over HTTPS: policy hosts on 127.0.0.1, certificates from a local CA");
    let steps = [
        ("first delivery to example.com", &domain, id),
        ("second delivery, same id", &domain, id),
        ("TXT record gone (an attacker?)", &domain, TxtLookup::NoRecord),
        ("broken.example (self-signed policy host)", &broken, id),
    ];
    for (what, d, txt) in steps {
        let decision = cache.lookup(d, txt, SystemTime::now(), |_| fetcher.fetch(d).map_err(Into::into));
        match &decision {
            Decision::Apply { policy, reason, .. } => {
                println!("  {what:<44} apply mode {} ({reason:?})", policy.mode())
            }
            Decision::NoPolicy(NoPolicyReason::FetchFailed(f)) => println!("  {what:<44} no policy: {f}"),
            other => println!("  {what:<44} {other:?}"),
        }
    }
    println!();
}
