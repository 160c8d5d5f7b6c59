//! The crate's main job, offline: a local world on 127.0.0.1 — a DNS
//! server with a signed root, a signed zone `signed.` and an unsigned zone
//! `plain.`; HTTPS MTA-STS policy hosts with certificates from a local CA;
//! SMTP servers with STARTTLS — destination controls written the way a
//! gateway operator writes them, and one message delivered to each
//! destination through the whole stack: `PolicyResolver` (DNS with DNSSEC,
//! the policy fetch, the cache) → the plan → SMTP with the crate's rustls
//! verifier → the engine's assessment and verdict → TLS-RPT.
//!
//! ```text
//! cargo run --example demo                              # the whole flow
//! cargo run --example demo -- POLICY_FILE [MX_HOST ...] # check a policy file
//! ```
//!
//! The SMTP servers listen on ports the system picks, so the demo maps MX
//! host names to them where an MTA would connect to port 25 of the host's
//! addresses. Exit status: 0 when every delivery ended as expected, 1
//! otherwise (or an invalid policy file), 2 on a usage or file error.

mod support;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use ring::digest::{SHA256, digest};
use smtp_tls_policy::dane::TlsaRecord;
use smtp_tls_policy::dns::{DnsConfig, DnssecMode, TrustAnchor};
use smtp_tls_policy::engine::{
    Attempt, AuthOutcome, Authentication, Basis, DeliveryContext, DestinationControls, Outcome, Plan, PlanSts, Verdict,
};
use smtp_tls_policy::fetch::{FetchConfig, Roots};
use smtp_tls_policy::report::{
    Collector, CollectorConfig, MailSubmitter, MemoryOutbox, MemoryStore, RetryPolicy, SendOutcome, Window, queue_due,
    send_due,
};
use smtp_tls_policy::resolver::ResolverConfig;
use smtp_tls_policy::resolver::blocking::PolicyResolver;
use smtp_tls_policy::sts::{Mode, Policy};
use smtp_tls_policy::verify::custom_roots;
use support::dns::{DnsWorld, Zones};
use support::https::{Pki, PolicyServer, ReportReceiver, ok, self_signed};
use support::smtp::{SmtpServer, Starttls, deliver_message, smtp_server};

/// The destination controls, as an operator writes them.
const CONTROLS: &str = "\
default          tls=preferred dane=opportunistic sts=on lifetime=5d
dane.signed      dane=mandatory
hosted.signed    tls=required-verify-hosted-domains
partner.signed   tls=required-verify
route routed.signed relay.signed
";

/// The destinations and what should become of the message.
const DESTINATIONS: [(&str, &str, &str); 7] = [
    ("dane.signed", "DANE, mandatory", "Deliver"),
    ("shop.signed", "MTA-STS enforce", "Deliver"),
    ("news.plain", "MTA-STS testing, certificate for another name", "Deliver"),
    ("hosted.signed", "a hosted domain (the certificate names the MX host)", "Deliver"),
    ("routed.signed", "an SMTP route to relay.signed", "Deliver"),
    ("partner.signed", "Required-Verify, but the certificate names the MX host", "Defer"),
    ("legacy.signed", "MTA-STS enforce, expired certificate", "Defer"),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        None => world(),
        Some((flag, _)) if flag == "-h" || flag == "--help" => {
            println!("usage: cargo run --example demo [-- POLICY_FILE [MX_HOST ...]]");
            ExitCode::SUCCESS
        }
        Some((path, hosts)) => policy_file(path, hosts),
    }
}

/// Every event of the crate, kept until printed.
fn log() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<&'static Mutex<Vec<String>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines: &'static Mutex<Vec<String>> = Box::leak(Box::default());
        let _ = tracing::subscriber::set_global_default(capture::Capture(lines));
        lines
    })
}

fn world() -> ExitCode {
    let started = std::time::Instant::now();
    let log = log();
    let pki = Arc::new(Pki::new());

    // SMTP servers: the certificates each MX presents.
    let (dane_chain, dane_key) = self_signed("mx.dane.signed");
    let dane_tlsa = TlsaRecord::new(3, 0, 1, digest(&SHA256, &dane_chain[0]).as_ref().to_vec());
    let valid = |name: &str| {
        let (c, k) = pki.server(name, false);
        Starttls::with(c, k)
    };
    let expired = {
        let (c, k) = pki.server("mx.legacy.signed", true);
        Starttls::with(c, k)
    };
    let servers: HashMap<&str, SmtpServer> = [
        ("mx.dane.signed", smtp_server("mx.dane.signed", Starttls::with(dane_chain, dane_key))),
        ("mx.shop.signed", smtp_server("mx.shop.signed", valid("mx.shop.signed"))),
        ("mx.news.plain", smtp_server("mx.news.plain", valid("mail.elsewhere.example"))),
        ("mx.hosted.signed", smtp_server("mx.hosted.signed", valid("mx.hosted.signed"))),
        ("mx.partner.signed", smtp_server("mx.partner.signed", valid("mx.partner.signed"))),
        ("relay.signed", smtp_server("relay.signed", valid("relay.signed"))),
        ("mx.legacy.signed", smtp_server("mx.legacy.signed", expired)),
    ]
    .into_iter()
    .collect();

    // DNS: MX and address records, TLSA, the MTA-STS and TLS-RPT records.
    let mut signed = String::new();
    for d in ["dane", "shop", "hosted", "partner", "legacy"] {
        signed += &format!("{d} MX 10 mx.{d}\nmx.{d} A 127.0.0.1\n");
        if d != "dane" {
            signed += &format!("_25._tcp.mx.{d} TXT \"no TLSA records here\"\n");
        }
    }
    signed += &format!(
        "_25._tcp.mx.dane TLSA {dane_tlsa}\nrelay A 127.0.0.1\nrouted TXT \"mail goes through relay.signed\"\n"
    );
    signed += "_mta-sts.shop TXT \"v=STSv1; id=20261128;\"\n_smtp._tls.shop TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@shop.signed\"\n";
    signed += "_mta-sts.legacy TXT \"v=STSv1; id=1;\"\n";
    // Where legacy.signed wants its TLS reports: an HTTPS receiver and a
    // mailbox (RFC 8460 §3).
    let receiver = ReportReceiver::start(pki.server("reports.legacy.signed", false), &["200 OK"]);
    signed += &format!(
        "_smtp._tls.legacy TXT \"v=TLSRPTv1; rua=https://reports.legacy.signed:{}/tlsrpt,mailto:tlsrpt@legacy.signed\"\n",
        receiver.addr.port()
    );
    let plain = "news MX 10 mx.news\nmx.news A 127.0.0.1\n_mta-sts.news TXT \"v=STSv1; id=7;\"\n".to_owned();
    let dns = DnsWorld::start(&Zones { signed, plain, ..Zones::default() });

    // HTTPS policy hosts.
    let https = PolicyServer::start(Arc::clone(&pki));
    let policy = |mode: &str, mx: &str| {
        ok(format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 604800\r\n").as_bytes())
    };
    https.set("mta-sts.shop.signed", policy("enforce", "mx.shop.signed"));
    https.set("mta-sts.news.plain", policy("testing", "mx.news.plain"));
    https.set("mta-sts.legacy.signed", policy("enforce", "mx.legacy.signed"));

    println!("The local world on 127.0.0.1");
    println!(
        "  DNS   {}  signed root, signed zone signed., unsigned zone plain. (DNSSEC validated in process)",
        dns.addr
    );
    println!("  HTTPS {}  mta-sts.shop.signed, mta-sts.news.plain, mta-sts.legacy.signed (local CA)", https.addr);
    let mut names: Vec<_> = servers.iter().map(|(n, s)| format!("{n} {}", s.addr.port())).collect();
    names.sort();
    println!("  SMTP  {}", names.join(", "));
    println!("\nDestination controls (the operator's file):");
    for line in CONTROLS.lines() {
        println!("  {line}");
    }
    let controls: DestinationControls = match DestinationControls::parse(CONTROLS) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                println!("  warning: {w}");
            }
            loaded.controls
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };

    let anchor = TrustAnchor::parse(&dns.root_anchor).expect("the world's root key");
    let target = https.addr;
    let config = ResolverConfig::default()
        .dns(DnsConfig::default().servers([dns.addr]).dnssec(DnssecMode::Validate(anchor)))
        .fetch(
            FetchConfig::default()
                .roots(Roots::custom(std::slice::from_ref(&pki.ca_der)).unwrap())
                .proxy_from_env(false)
                .timeout(Duration::from_secs(5))
                .lookup(move |_| vec![target]),
        )
        .controls(controls);
    let resolver = match PolicyResolver::new(config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let roots = custom_roots(std::slice::from_ref(&pki.ca_der)).expect("the local CA");
    let addr = |host: &str| servers.get(host).map(|s| s.addr);

    let submitter = smtp_tls_policy::name::DomainName::parse("demo.example").expect("a name");
    let collector = Collector::new(
        MemoryStore::new(),
        CollectorConfig::new("demo.example", "mailto:postmaster@demo.example", submitter).spread(Duration::ZERO),
    );
    let now = SystemTime::now();
    let mut as_expected = true;
    for (domain, what, expected) in DESTINATIONS {
        println!("\n── user@{domain}: {what}");
        log.lock().unwrap().clear();
        let plan = match resolver.resolve(domain) {
            Ok(plan) => plan,
            Err(e) => {
                println!("   cannot resolve: {e}");
                as_expected = false;
                continue;
            }
        };
        for line in log.lock().unwrap().drain(..) {
            println!("   log   {line}");
        }
        print_plan(&plan);
        let (tried, delivery) =
            deliver_message(&plan, addr, roots.clone(), "Subject: demo\r\n\r\nHello from the demo.");
        for (d, host) in tried.iter().zip(&plan.hosts) {
            println!("   try   {}: {}", host.host, attempt_text(&d.attempt));
        }
        let outcome = resolver.finish(delivery, DeliveryContext::new(Duration::from_secs(60)));
        let kind = print_outcome(log, &outcome);
        let _ = collector.record(now, &outcome.sessions);
        if let Verdict::Defer { recheck_policy: true, .. } = &outcome.verdict {
            println!("     (before bouncing, the MTA re-checks the MTA-STS policy for a newer id, RFC 8461 §5.1)");
            // Five days and an hour later, past the queue lifetime: re-check
            // the policy (same id), try again, and the message bounces.
            let age = Duration::from_secs(5 * 86_400 + 3600);
            println!(
                "   … {} hours later, past the queue lifetime: the policy re-checked, one more try",
                age.as_secs() / 3600
            );
            match resolver.resolve(domain) {
                Ok(again) => {
                    let (_, delivery) = deliver_message(&again, addr, roots.clone(), "Subject: demo\r\n\r\nHello.");
                    let last = resolver.finish(delivery, DeliveryContext::new(age).rechecked());
                    as_expected &= print_outcome(log, &last) == "Bounce";
                    let _ = collector.record(now, &last.sessions);
                }
                Err(e) => {
                    println!("   cannot resolve: {e}");
                    as_expected = false;
                }
            }
        }
        as_expected &= kind == expected;
    }

    as_expected &= deliver_reports(&collector, &resolver, &pki, &receiver, now);
    println!(
        "\n{} deliveries in {:.1} s, {}.",
        DESTINATIONS.len(),
        started.elapsed().as_secs_f64(),
        if as_expected { "each as expected" } else { "NOT all as expected" }
    );
    if as_expected { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// The day's TLS-RPT reports (RFC 8460): printed, then — at the window's
/// close, on the demo's clock — queued for every `rua` of each domain's
/// `_smtp._tls` record and delivered: an HTTPS POST to the local receiver
/// and a §5.3 mail into a local mailbox. Whether each arrived.
fn deliver_reports(
    collector: &Collector<MemoryStore>,
    resolver: &PolicyResolver,
    pki: &Pki,
    receiver: &ReportReceiver,
    now: SystemTime,
) -> bool {
    let window = Window::containing(now, collector.config().window_length());
    let Ok(reports) = collector.reports(window) else { return false };
    for ready in &reports {
        let policy = &ready.report.policies;
        let (ok, failed) = policy.iter().fold((0, 0), |(o, f), p| {
            (o + p.summary.total_successful_session_count, f + p.summary.total_failure_session_count)
        });
        println!(
            "\nTLS-RPT report for {} ({ok} successful, {failed} failed sessions; RFC 8460 §4.4):",
            ready.policy_domain
        );
        println!("{}", serde_json::to_string_pretty(&ready.report).unwrap_or_default());
    }
    let closes = collector.due_at(window);
    println!("\n── {window} closes: the reports go to every rua of each domain's _smtp._tls record (RFC 8460 §3, §5)");
    let outbox = MemoryOutbox::new();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            println!("   no runtime: {e}");
            return false;
        }
    };
    match runtime.block_on(queue_due(collector, &outbox, resolver.dns().inner(), closes)) {
        Ok(queued) => {
            for id in &queued.queued {
                println!("   queued {id}");
            }
            for (domain, why) in &queued.no_record {
                println!("   no report for {domain}: {why}");
            }
            for (domain, why) in &queued.deferred {
                println!("   kept for later: the _smtp._tls lookup of {domain} failed: {why}");
            }
        }
        Err(e) => {
            println!("   cannot queue the reports: {e}");
            return false;
        }
    }
    let target = receiver.addr;
    let fetch = FetchConfig::default()
        .roots(Roots::custom(std::slice::from_ref(&pki.ca_der)).unwrap())
        .proxy_from_env(false)
        .lookup(move |_| vec![target]);
    let Ok(poster) = smtp_tls_policy::fetch::HttpsReportPoster::new(fetch) else { return false };
    let mailbox = Mailbox::default();
    let sent = match send_due(&outbox, closes, &RetryPolicy::default(), &poster, &mailbox, "tlsrpt@demo.example") {
        Ok(sent) => sent,
        Err(e) => {
            println!("   cannot send: {e}");
            return false;
        }
    };
    for s in &sent {
        println!("   {} → {}: {:?}", s.report_id, s.uri, s.state);
    }
    let posts = receiver.received();
    for post in &posts {
        let first = post.head.lines().next().unwrap_or_default();
        let ctype = post.head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-type:")).unwrap_or_default();
        println!("   arrived at the HTTPS receiver: {first}, {ctype}, {} bytes of gzip", post.body.len());
    }
    let mails = mailbox.0.lock().map(|m| m.clone()).unwrap_or_default();
    for (from, to, message) in &mails {
        println!("   arrived in the mailbox of {to} from {from}, {} bytes:", message.len());
        let text = String::from_utf8_lossy(message);
        for line in text.lines().filter(|l| {
            ["Subject:", "TLS-Report-Domain:", "TLS-Report-Submitter:", "TLS-Required:", "Content-Type: multipart"]
                .iter()
                .any(|h| l.starts_with(h))
        }) {
            println!("     {line}");
        }
    }
    let all_delivered = sent.iter().all(|s| matches!(s.state, smtp_tls_policy::report::DestinationState::Delivered));
    !sent.is_empty() && all_delivered && !posts.is_empty() && !mails.is_empty()
}

/// The local mailbox of report mails.
#[derive(Default)]
struct Mailbox(Mutex<Vec<(String, String, Vec<u8>)>>);

impl MailSubmitter for Mailbox {
    fn submit(&self, from: &str, to: &str, message: &[u8]) -> SendOutcome {
        match self.0.lock() {
            Ok(mut m) => {
                m.push((from.to_owned(), to.to_owned(), message.to_vec()));
                SendOutcome::Delivered
            }
            Err(_) => SendOutcome::Temporary("mailbox unavailable".into()),
        }
    }
}

fn print_plan(plan: &Plan) {
    match &plan.sts {
        PlanSts::Applied { id, policy } => println!("   plan  MTA-STS policy id {id}, mode {}", policy.mode()),
        PlanSts::Unavailable(failure) => println!("   plan  MTA-STS policy announced but unavailable: {failure}"),
        _ => {}
    }
    for host in &plan.hosts {
        let r = &host.requirement;
        let auth = match &r.auth {
            Authentication::None => "no certificate check".to_owned(),
            Authentication::WebPki { names, .. } => {
                format!("WebPKI for {}", names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(" or "))
            }
            Authentication::Dane { records, .. } => format!("DANE, {} TLSA record(s)", records.len()),
            _ => "?".to_owned(),
        };
        let basis = match r.basis {
            Basis::Dane => "DANE".to_owned(),
            Basis::Sts(m) => format!("MTA-STS {m}"),
            Basis::Route => "SMTP route".to_owned(),
            _ => "TLS support".to_owned(),
        };
        println!("   plan  {}: TLS {:?}, {auth} ({basis})", host.host, r.tls);
    }
    for (host, why) in &plan.skipped {
        println!("   plan  {host}: not used, {}", why.describe());
    }
}

fn attempt_text(a: &Attempt) -> String {
    let mut s = String::new();
    let _ = match a {
        Attempt::Unreachable => write!(s, "no SMTP session"),
        Attempt::Plaintext { starttls_offered } => write!(s, "plain text (STARTTLS offered: {starttls_offered})"),
        Attempt::HandshakeFailed { reason } => write!(s, "TLS handshake failed: {reason}"),
        Attempt::Tls { version, auth, .. } => match auth {
            AuthOutcome::NotChecked => write!(s, "{version}, certificate not checked"),
            AuthOutcome::WebPki(Ok(name)) => write!(s, "{version}, WebPKI certificate valid for {name}"),
            AuthOutcome::WebPki(Err(e)) => write!(s, "{version}, WebPKI check failed: {e}"),
            AuthOutcome::Dane(o) if o.is_authenticated() => write!(s, "{version}, DANE verified"),
            AuthOutcome::Dane(o) => {
                write!(s, "{version}, DANE failed: {}", o.failure().map(ToString::to_string).unwrap_or_default())
            }
            _ => write!(s, "{version}"),
        },
        _ => write!(s, "?"),
    };
    s
}

/// Prints the log lines and the verdict; returns its kind.
fn print_outcome(log: &Mutex<Vec<String>>, outcome: &Outcome) -> &'static str {
    for line in log.lock().unwrap().drain(..) {
        println!("   log   {line}");
    }
    let v = &outcome.verdict;
    let kind = match v {
        Verdict::Deliver { .. } => "Deliver",
        Verdict::Defer { .. } => "Defer",
        _ => "Bounce",
    };
    println!("   ⇒ {kind} {}: {}", v.status(), v.reason());
    kind
}

/// `demo -- POLICY_FILE [MX_HOST ...]`: is this policy valid, and which MX
/// hosts does it allow (RFC 8461 §3.2, §4.1)?
fn policy_file(path: &str, hosts: &[String]) -> ExitCode {
    let body = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "cannot read {path}: {e} (give the path of a policy file, as served at /.well-known/mta-sts.txt)"
            );
            return ExitCode::from(2);
        }
    };
    println!("policy from {path}:");
    let policy = match Policy::parse_bytes(&body) {
        Ok(p) => p,
        Err(e) => {
            println!("  INVALID: {e}");
            println!("  a sender treats the domain as having no usable MTA-STS policy (RFC 8461 §3.3, §5)");
            return ExitCode::from(1);
        }
    };
    println!("  mode:     {}", policy.mode());
    let secs = policy.max_age().as_secs();
    println!("  max_age:  {secs} s ({:.1} days)", secs as f64 / 86_400.0);
    let patterns: Vec<String> = policy.mx().iter().map(ToString::to_string).collect();
    println!("  mx:       {}", if patterns.is_empty() { "(none)".to_owned() } else { patterns.join(", ") });
    for host in hosts {
        let verdict = match (policy.allows_mx(host), policy.mode()) {
            (true, _) => "allowed",
            (false, Mode::Enforce) => "NOT allowed: an enforcing sender will not deliver to it",
            (false, Mode::Testing) => "does not match: a testing sender delivers and reports it",
            (false, _) => "does not match (mode none: no effect)",
        };
        println!("  {host:<28} {verdict}");
    }
    println!("canonical form:");
    for line in policy.to_string().lines() {
        println!("  {line}");
    }
    ExitCode::SUCCESS
}

mod capture {
    use std::fmt::Write;
    use std::sync::Mutex;

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// Keeps this crate's info events as "message (k=v, …)".
    pub struct Capture(pub &'static Mutex<Vec<String>>);

    struct Line(String, String);

    impl Visit for Line {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                let _ = write!(self.0, "{value:?}");
            } else if !matches!(field.name(), "domain") {
                let _ = write!(self.1, "{}{}={value:?}", if self.1.is_empty() { "" } else { ", " }, field.name());
            }
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, m: &Metadata<'_>) -> bool {
            m.target().starts_with("smtp_tls_policy") && *m.level() <= tracing::Level::INFO
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut line = Line(String::new(), String::new());
            event.record(&mut line);
            let text = if line.1.is_empty() { line.0 } else { format!("{} ({})", line.0, line.1) };
            self.0.lock().unwrap().push(text);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}
