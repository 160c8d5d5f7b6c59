//! TLS-RPT end to end (RFC 8460): sessions into a durable journal, closed
//! UTC windows into reports, the `_smtp._tls` record looked up at send
//! time, delivery to every `rua` — an HTTPS receiver on 127.0.0.1 and a
//! mail submitter — with retries; the journal and the outbox killed while
//! they write; reports read back by mail-parser and, when installed, by
//! parsedmarc.
#![cfg(all(feature = "fetch", feature = "fs"))]

#[path = "../examples/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mail_parser::{MessageParser, MimeHeaders};
use smtp_tls_policy::discovery::DnssecStatus;
use smtp_tls_policy::fetch::{FetchConfig, HttpsReportPoster, Roots};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::report::{
    AggregateReport, Collector, CollectorConfig, DestinationState, DirOutbox, FailureDetail, JournalStore,
    MailSubmitter, MemoryOutbox, MemoryStore, OutboxStore, ReportPolicy, ReportStore, ResultType, RetryPolicy,
    SendOutcome, Session, Window, WindowLength, queue_due, send_due,
};
use smtp_tls_policy::sts::Policy;
use support::https::{Pki, ReportReceiver};
use support::memory::{MemoryDns, records};

/// 2026-12-08T12:00:00Z.
const NOON: u64 = 1_796_731_200;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn name(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

fn config() -> CollectorConfig {
    CollectorConfig::new("Example Sender", "mailto:postmaster@mta.example", name("mta.example")).node(7)
}

fn sts_policy(domain: &DomainName) -> ReportPolicy {
    let policy =
        Policy::parse("version: STSv1\nmode: enforce\nmx: *.mail.company-y.example\nmax_age: 86400\n").unwrap();
    ReportPolicy::sts(domain, &policy)
}

/// What one delivery of the tests yields: two successes and one expired
/// certificate at mx1.
fn sessions(domain: &DomainName) -> Vec<Session> {
    let sts = sts_policy(domain);
    let mx = name("mx1.mail.company-y.example");
    vec![
        Session::success(sts.clone()),
        Session::success(sts.clone()),
        Session::failure(sts, FailureDetail::new(ResultType::CertificateExpired, Some(&mx))),
    ]
}

fn totals(store: &impl ReportStore) -> (u64, u64) {
    let mut sum = (0, 0);
    for w in store.windows().unwrap() {
        let counts = store.counts(w).unwrap();
        for domain in counts.domains() {
            let (s, f) = counts.totals(&domain);
            sum = (sum.0 + s, sum.1 + f);
        }
    }
    sum
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "smtp-tls-policy-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The child of the kill tests: records batches of three sessions into the
/// journal (and an outbox entry per batch) until it is killed, saying
/// "acked N" once each batch is durable. Run by the tests below only.
#[test]
#[ignore = "the writer process of journal_and_outbox_survive_a_killed_writer"]
fn killed_writer_child() {
    let Ok(dir) = std::env::var("SMTP_TLS_POLICY_KILL_DIR") else { return };
    let dir = std::path::PathBuf::from(dir);
    let store = JournalStore::open(dir.join("journal")).unwrap();
    let outbox = DirOutbox::open(dir.join("outbox")).unwrap();
    let collector = Collector::new(store, config());
    let domain = name("company-y.example");
    let batch = sessions(&domain);
    let template = ready_entry();
    for n in 1u64.. {
        collector.record(at(NOON), &batch).unwrap();
        let mut entry = template.clone();
        entry.report.report_id = format!("r{n}@mta.example");
        outbox.put(&entry).unwrap();
        println!("acked {n}");
        if n % 40 == 0 {
            collector.store().compact().unwrap();
        }
    }
}

fn ready_entry() -> smtp_tls_policy::report::OutboxEntry {
    let collector = Collector::new(MemoryStore::new(), config().spread(Duration::ZERO));
    let domain = name("company-y.example");
    collector.record(at(NOON), &sessions(&domain)).unwrap();
    let window = Window::containing(at(NOON), WindowLength::Day);
    let ready = &collector.reports(window).unwrap()[0];
    let report = smtp_tls_policy::report::OutgoingReport::new(ready, &name("mta.example"));
    let rua = [smtp_tls_policy::report::ReportUri::Https("https://r.example/v1".into())];
    smtp_tls_policy::report::OutboxEntry::new(report, &rua, at(NOON + 86_400))
}

/// A writer killed with SIGKILL at a random point loses no acknowledged
/// batch and never counts one twice (the journal's checksummed lines and
/// atomic compaction), and leaves no outbox file that does not read.
#[test]
fn journal_and_outbox_survive_a_killed_writer() {
    for round in 0..3u64 {
        let dir = temp_dir(&format!("kill{round}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "killed_writer_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env("SMTP_TLS_POLICY_KILL_DIR", &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let stop_after = 60 + round * 37;
        let mut acked = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("acked ") {
                acked = n.parse::<u64>().unwrap();
                if acked >= stop_after {
                    break;
                }
            }
        }
        // A few more writes may be under way when the signal lands.
        child.kill().unwrap();
        child.wait().unwrap();
        let acked_after: u64 = lines
            .map_while(Result::ok)
            .filter_map(|l| l.strip_prefix("acked ").and_then(|n| n.parse().ok()))
            .last()
            .unwrap_or(acked);
        let store = JournalStore::open(dir.join("journal")).unwrap();
        let (ok, failed) = totals(&store);
        assert_eq!(ok % 2, 0, "a batch counted in part: {ok} successes");
        let batches = ok / 2;
        assert_eq!(failed, batches, "successes and failures of one batch land together");
        assert!(batches >= acked_after, "round {round}: {batches} batches kept, {acked_after} acknowledged");
        assert!(
            batches <= acked_after + 1,
            "round {round}: {batches} batches kept, only {acked_after} acknowledged (+1 in flight)"
        );
        assert!(store.skipped().is_empty(), "{:?}", store.skipped());
        let outbox = DirOutbox::open(dir.join("outbox")).unwrap();
        let files = std::fs::read_dir(dir.join("outbox"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
            .count();
        let entries = outbox.entries().unwrap();
        assert_eq!(entries.len(), files, "every outbox file reads back whole");
        assert!(entries.len() as u64 >= acked_after);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Collectors on several threads (nodes of one MTA) sharing one store
/// merge exactly: the store adds increments, it never rewrites a count.
#[test]
fn collectors_sharing_a_store_merge_exactly() {
    let dir = temp_dir("merge");
    let store = Arc::new(JournalStore::open(&dir).unwrap());
    let domain = name("company-y.example");
    std::thread::scope(|s| {
        for node in 0..4 {
            let store = Arc::clone(&store);
            let domain = domain.clone();
            s.spawn(move || {
                let collector = Collector::new(store, config().node(node));
                for _ in 0..50 {
                    collector.record(at(NOON), &sessions(&domain)).unwrap();
                }
            });
        }
    });
    assert_eq!(totals(&store), (4 * 50 * 2, 4 * 50));
    drop(store);
    let reopened = JournalStore::open(&dir).unwrap();
    assert_eq!(totals(&reopened), (400, 200));
    let _ = std::fs::remove_dir_all(&dir);
}

/// RFC 8460 §4.1: a window is reported once, after it closes (plus the
/// spread delay), with the sessions of before and after a restart.
#[test]
fn a_window_across_a_restart() {
    let dir = temp_dir("restart");
    let domain = name("company-y.example");
    {
        let collector = Collector::new(JournalStore::open(&dir).unwrap(), config());
        collector.record(at(NOON), &sessions(&domain)).unwrap();
    }
    let collector = Collector::new(JournalStore::open(&dir).unwrap(), config());
    collector.record(at(NOON + 3600), &sessions(&domain)).unwrap();
    let window = Window::containing(at(NOON), WindowLength::Day);
    assert!(collector.due(window.closes() - Duration::from_secs(1)).unwrap().is_empty());
    let due_at = collector.due_at(window);
    assert!(due_at >= window.closes() && due_at < window.closes() + Duration::from_secs(3600));
    assert!(collector.due(due_at - Duration::from_secs(1)).unwrap().is_empty());
    assert_eq!(collector.due(due_at).unwrap(), vec![window]);
    let reports = collector.reports(window).unwrap();
    assert_eq!(reports.len(), 1);
    let summary = reports[0].report.policies[0].summary;
    assert_eq!((summary.total_successful_session_count, summary.total_failure_session_count), (4, 2));
    assert_eq!(reports[0].report.date_range.start_datetime, "2026-12-08T00:00:00Z");
    assert_eq!(reports[0].report.date_range.end_datetime, "2026-12-08T23:59:59Z");
    collector.finish(window).unwrap();
    drop(collector);
    assert!(JournalStore::open(&dir).unwrap().windows().unwrap().is_empty(), "a finished window stays finished");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Report mails handed to the MTA, kept for the test.
#[derive(Default)]
struct Mailbox {
    messages: Mutex<Vec<(String, String, Vec<u8>)>>,
}

impl MailSubmitter for Mailbox {
    fn submit(&self, from: &str, to: &str, message: &[u8]) -> SendOutcome {
        self.messages.lock().unwrap().push((from.to_owned(), to.to_owned(), message.to_vec()));
        SendOutcome::Delivered
    }
}

/// A poster that trusts `pki` and reaches every host at `target`.
fn poster_to(pki: &Pki, target: std::net::SocketAddr) -> HttpsReportPoster {
    let roots = Roots::custom(std::slice::from_ref(&pki.ca_der)).unwrap();
    HttpsReportPoster::new(FetchConfig::default().roots(roots).proxy_from_env(false).lookup(move |_| vec![target]))
        .unwrap()
}

fn gunzip(bytes: &[u8]) -> String {
    let mut json = String::new();
    flate2::read::GzDecoder::new(bytes).read_to_string(&mut json).unwrap();
    json
}

/// RFC 8460 §3, §5.3, §5.4, §5.5: the report goes to every `rua` of the
/// record found at send time — an HTTPS POST (retried after a 503) and a
/// §5.3 mail — and leaves the outbox only when both are delivered.
#[test]
fn reports_reach_every_rua_over_https_and_mail() {
    let pki = Pki::new();
    let receiver =
        ReportReceiver::start(pki.server("reports.company-y.example", false), &["503 Service Unavailable", "200 OK"]);
    let port = receiver.addr.port();
    let target = receiver.addr;
    let poster = poster_to(&pki, target);
    let record =
        format!("v=TLSRPTv1; rua=https://reports.company-y.example:{port}/tlsrpt,mailto:tlsrpt@company-y.example");
    let dns = MemoryDns::new()
        .txt("_smtp._tls.company-y.example", Ok(records(vec![record], DnssecStatus::Insecure)))
        .txt("_smtp._tls.no-reports.example", Ok(support::memory::nxdomain(DnssecStatus::Insecure)));
    let collector = Collector::new(MemoryStore::new(), config());
    let domain = name("company-y.example");
    collector.record(at(NOON), &sessions(&domain)).unwrap();
    collector.record(at(NOON), &[Session::success(ReportPolicy::none(&name("no-reports.example")))]).unwrap();
    let outbox_dir = temp_dir("outbox");
    let outbox = DirOutbox::open(&outbox_dir).unwrap();
    let window = Window::containing(at(NOON), WindowLength::Day);
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let due = collector.due_at(window);
    let queued = runtime.block_on(queue_due(&collector, &outbox, &dns, due)).unwrap();
    assert_eq!(queued.queued.len(), 1, "{queued:?}");
    assert_eq!(queued.no_record.len(), 1, "{queued:?}");
    assert_eq!(queued.no_record[0].0, name("no-reports.example"));
    assert!(collector.store().windows().unwrap().is_empty(), "the window is forgotten once queued");

    let mailbox = Mailbox::default();
    let retry = RetryPolicy::default();
    let first = send_due(&outbox, due, &retry, &poster, &mailbox, "tlsrpt@mta.example").unwrap();
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.iter().any(|s| s.uri.starts_with("mailto:") && s.state == DestinationState::Delivered), "{first:?}");
    assert!(
        first.iter().any(|s| s.uri.starts_with("https:") && matches!(s.state, DestinationState::Pending { .. })),
        "{first:?}"
    );
    assert_eq!(outbox.entries().unwrap().len(), 1, "kept until every destination is done");
    assert!(
        send_due(&outbox, due + Duration::from_secs(299), &retry, &poster, &mailbox, "tlsrpt@mta.example")
            .unwrap()
            .is_empty()
    );
    let second =
        send_due(&outbox, due + Duration::from_secs(300), &retry, &poster, &mailbox, "tlsrpt@mta.example").unwrap();
    assert_eq!(second.len(), 1, "only the https destination is retried: {second:?}");
    assert_eq!(second[0].state, DestinationState::Delivered);
    assert!(outbox.entries().unwrap().is_empty());

    // RFC 8460 §5.4 as the receiver saw it.
    let posts = receiver.received();
    assert_eq!(posts.len(), 2);
    let head = posts[1].head.to_ascii_lowercase();
    assert!(head.starts_with("post /tlsrpt http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\ncontent-type: application/tlsrpt+gzip\r\n"), "{head}");
    let report: AggregateReport = serde_json::from_str(&gunzip(&posts[1].body)).unwrap();
    report.validate().unwrap();
    assert_eq!(report.organization_name, "Example Sender");
    assert_eq!(report.contact_info, "mailto:postmaster@mta.example");
    assert_eq!(report.policies.len(), 1);
    assert_eq!(report.policies[0].policy.policy_domain, "company-y.example");
    assert_eq!(report.policies[0].summary.total_successful_session_count, 2);
    assert_eq!(report.policies[0].failure_details[0].result_type, ResultType::CertificateExpired);

    // RFC 8460 §5.3 as a MIME parser reads it.
    let messages = mailbox.messages.lock().unwrap().clone();
    assert_eq!(messages.len(), 1);
    let (from, to, raw) = &messages[0];
    assert_eq!((from.as_str(), to.as_str()), ("tlsrpt@mta.example", "tlsrpt@company-y.example"));
    let mail = MessageParser::default().parse(raw).unwrap();
    let ct = mail.content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
    assert_eq!(ct.attribute("report-type"), Some("tlsrpt"));
    assert_eq!(mail.header_raw("TLS-Report-Domain").map(str::trim), Some("company-y.example"));
    assert_eq!(mail.header_raw("TLS-Report-Submitter").map(str::trim), Some("mta.example"));
    assert_eq!(mail.header_raw("TLS-Required").map(str::trim), Some("No"));
    let subject = mail.subject().unwrap();
    assert_eq!(
        subject,
        format!("Report Domain: company-y.example Submitter: mta.example Report-ID: <{}>", report.report_id)
    );
    let attachment = mail.attachments().next().unwrap();
    let act = attachment.content_type().unwrap();
    assert_eq!((act.ctype(), act.subtype()), ("application", Some("tlsrpt+gzip")));
    let file = attachment.attachment_name().unwrap();
    assert!(
        file.starts_with("mta.example!company-y.example!1796688000!1796774399!") && file.ends_with(".json.gz"),
        "{file}"
    );
    let mailed: AggregateReport = serde_json::from_str(&gunzip(attachment.contents())).unwrap();
    assert_eq!(mailed, report);

    parsedmarc_reads(&posts[1].body, raw);
    let _ = std::fs::remove_dir_all(&outbox_dir);
}

/// A failed `_smtp._tls` lookup keeps the window for the next try; a 4xx
/// is not retried (RFC 8460 §5.5 as the issue reads it).
#[test]
fn lookup_failures_wait_and_4xx_gives_up() {
    let dns = MemoryDns::new().txt(
        "_smtp._tls.company-y.example",
        Err(support::memory::error(
            smtp_tls_policy::discovery::DnsErrorKind::ServerFailure,
            "_smtp._tls.company-y.example",
            "TXT",
        )),
    );
    let collector = Collector::new(MemoryStore::new(), config().spread(Duration::ZERO));
    collector.record(at(NOON), &sessions(&name("company-y.example"))).unwrap();
    let outbox = MemoryOutbox::new();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let later = at(NOON + 86_400);
    let queued = runtime.block_on(queue_due(&collector, &outbox, &dns, later)).unwrap();
    assert_eq!((queued.queued.len(), queued.deferred.len()), (0, 1));
    assert_eq!(collector.store().windows().unwrap().len(), 1, "kept for the next try");
    // A day after the close, the broken domain no longer holds the window.
    let much_later = at(NOON + 2 * 86_400);
    let queued = runtime.block_on(queue_due(&collector, &outbox, &dns, much_later)).unwrap();
    assert_eq!((queued.queued.len(), queued.deferred.len(), queued.no_record.len()), (0, 0, 1));
    assert!(queued.no_record[0].1.ends_with("(given up)"), "{queued:?}");
    assert!(collector.store().windows().unwrap().is_empty());

    let pki = Pki::new();
    let receiver = ReportReceiver::start(pki.server("r.example", false), &["404 Not Found"]);
    let target = receiver.addr;
    let poster = poster_to(&pki, target);
    let mut entry = ready_entry();
    entry.destinations[0].uri = format!("https://r.example:{}/v1", target.port());
    outbox.put(&entry).unwrap();
    let sent =
        send_due(&outbox, at(entry.created), &RetryPolicy::default(), &poster, &Mailbox::default(), "t@mta.example")
            .unwrap();
    assert!(matches!(&sent[0].state, DestinationState::GaveUp { reason } if reason.contains("HTTP 404")), "{sent:?}");
    assert!(outbox.entries().unwrap().is_empty());
}

/// parsedmarc (the report consumer many receivers run) reads the JSON and
/// the whole mail without a warning. Required when
/// SMTP_TLS_POLICY_REQUIRE_PARSEDMARC is set (`.ci/run` installs it in
/// /opt/parsedmarc-venv); found there or on PATH.
fn parsedmarc_reads(gzip: &[u8], eml: &[u8]) {
    let venv = std::path::Path::new("/opt/parsedmarc-venv/bin/parsedmarc");
    let program = if venv.exists() { venv.to_path_buf() } else { std::path::PathBuf::from("parsedmarc") };
    let found = Command::new(&program).arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("SMTP_TLS_POLICY_REQUIRE_PARSEDMARC").is_none() && std::env::var_os("CI").is_none(),
            "parsedmarc is required here: pip install parsedmarc (into /opt/parsedmarc-venv)"
        );
        eprintln!("parsedmarc not installed: skipping its check");
        return;
    }
    let dir = temp_dir("parsedmarc");
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    std::fs::write(&json, gunzip(gzip)).unwrap();
    let mail = dir.join("report.eml");
    std::fs::write(&mail, eml).unwrap();
    for file in [&json, &mail] {
        let out = Command::new(&program).arg(file).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "parsedmarc {}: {stderr}", file.display());
        let lower = stderr.to_ascii_lowercase();
        assert!(!lower.contains("warning") && !lower.contains("error"), "parsedmarc {}: {stderr}", file.display());
        let parsed: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        let reports = &parsed["smtp_tls_reports"];
        assert_eq!(reports.as_array().map(Vec::len), Some(1), "{}: {stdout}", file.display());
        assert_eq!(reports[0]["organization_name"], "Example Sender", "{stdout}");
        assert_eq!(reports[0]["policies"][0]["policy_domain"], "company-y.example", "{stdout}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The §5.3 mail submitted over SMTP with STARTTLS (feature `submission`)
/// to a local SMTP server, which receives it whole.
#[cfg(feature = "submission")]
#[test]
fn report_mail_submitted_over_smtp_with_starttls() {
    use smtp_tls_policy::report::{SmtpSubmitter, SubmissionConfig};
    use support::smtp::{Starttls, smtp_server};
    let pki = Pki::new();
    let (chain, key) = pki.server("localhost", false);
    let server = smtp_server("localhost", Starttls::with(chain, key));
    let submitter =
        SmtpSubmitter::new(SubmissionConfig::new("localhost").port(server.addr.port()).roots(vec![pki.ca_der.clone()]))
            .unwrap();
    let entry = ready_entry();
    let message = entry.report.mail_message("tlsrpt@mta.example", "tlsrpt@company-y.example", at(entry.created));
    assert_eq!(submitter.submit("tlsrpt@mta.example", "tlsrpt@company-y.example", &message), SendOutcome::Delivered);
    let received = server.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let mail = MessageParser::default().parse(received[0].as_bytes()).unwrap();
    assert_eq!(mail.header_raw("TLS-Required").map(str::trim), Some("No"));
    let attachment = mail.attachments().next().unwrap();
    let report: AggregateReport = serde_json::from_str(&gunzip(attachment.contents())).unwrap();
    report.validate().unwrap();

    // A server that is not there: temporary, for the outbox to retry.
    let gone = SmtpSubmitter::new(SubmissionConfig::new("localhost").port(1).roots(vec![pki.ca_der.clone()])).unwrap();
    assert!(matches!(gone.submit("a@mta.example", "b@company-y.example", &message), SendOutcome::Temporary(_)));
}
