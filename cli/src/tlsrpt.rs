//! TLS-RPT (RFC 8460) for Postfix ≥ 3.10: Postfix's datagrams collected
//! into the store, closed days turned into reports for every `rua`, sent
//! by HTTPS or by mail through Postfix's own `sendmail`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use smtp_tls_policy::dns::blocking::DnsResolver;
use smtp_tls_policy::fetch::{FetchConfig, HttpsReportPoster};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::postfix::TlsrptListener;
use smtp_tls_policy::report::{
    Collector, CollectorConfig, DestinationState, DirOutbox, JournalStore, MailSubmitter, OutboxStore, ReportStore,
    RetryPolicy, SendOutcome, queue_due, send_due,
};

use crate::config::Tlsrpt;

/// What the sender thread is asked.
enum Ask {
    /// Run a pass now; the summary goes back.
    SendNow(Sender<String>),
}

/// Counts for the metrics.
#[derive(Default)]
pub struct Counts {
    pub queued: AtomicU64,
    pub delivered: AtomicU64,
    pub retrying: AtomicU64,
    pub gave_up: AtomicU64,
    pub errors: AtomicU64,
}

/// The running collector and sender; stops when dropped.
pub struct Running {
    listener: TlsrptListener,
    collector: Arc<Collector<Arc<dyn ReportStore>>>,
    outbox: Arc<dyn OutboxStore>,
    ask: Mutex<Option<Sender<Ask>>>,
    sender: Option<JoinHandle<()>>,
    pub counts: Arc<Counts>,
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.ask.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(t) = self.sender.take() {
            let _ = t.join();
        }
    }
}

impl Running {
    /// Datagrams received, and those refused as invalid.
    pub fn datagrams(&self) -> (u64, u64) {
        (self.listener.datagrams(), self.listener.invalid())
    }

    /// `report list`: the windows collecting and the reports in the outbox.
    pub fn list(&self) -> Result<String, String> {
        let mut out = String::new();
        let windows = self.collector.store().windows().map_err(|e| e.to_string())?;
        for w in windows {
            let due = self.collector.due_at(w);
            out.push_str(&format!("window {} +{}s: due {}\n", w.start_secs(), w.length_secs(), secs(due),));
        }
        let entries = self.outbox.entries().map_err(|e| e.to_string())?;
        for e in entries {
            out.push_str(&format!("report {} for {}\n", e.report.report_id, e.report.policy_domain));
            for d in e.destinations {
                let state = match d.state {
                    DestinationState::Pending { attempts, next, last_error } => format!(
                        "pending: {attempts} attempt(s), next at {next}{}",
                        last_error.map(|e| format!(", last error: {e}")).unwrap_or_default()
                    ),
                    DestinationState::Delivered => "delivered".into(),
                    DestinationState::GaveUp { reason } => format!("given up: {reason}"),
                    _ => "unknown".into(),
                };
                out.push_str(&format!("  {}: {state}\n", d.uri));
            }
        }
        if out.is_empty() {
            out.push_str("nothing collected, nothing to send\n");
        }
        Ok(out)
    }

    /// `report send-now`: one pass now (closed windows queued, due
    /// destinations tried), instead of at the next tick.
    pub fn send_now(&self) -> Result<String, String> {
        let (tx, rx) = channel();
        let ask = self.ask.lock().unwrap_or_else(|p| p.into_inner()).clone();
        ask.ok_or("the report sender has stopped")?
            .send(Ask::SendNow(tx))
            .map_err(|_| "the report sender has stopped")?;
        rx.recv_timeout(Duration::from_secs(600)).map_err(|_| "the pass did not finish within 10 minutes".into())
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// How long `sendmail` may take to accept one report mail.
const SENDMAIL_DEADLINE: Duration = Duration::from_secs(60);

/// Report mails through Postfix's own queue: `sendmail -f FROM -- TO`.
struct Sendmail;

impl MailSubmitter for Sendmail {
    fn submit(&self, from: &str, to: &str, message: &[u8]) -> SendOutcome {
        let child = Command::new("/usr/sbin/sendmail").args(["-i", "-f", from, "--", to]).stdin(Stdio::piped()).spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => return SendOutcome::Temporary(format!("/usr/sbin/sendmail: {e}")),
        };
        // The message is written from a thread of its own and the wait
        // has a deadline: a sendmail that never reads or never exits is
        // killed, and the outbox retries later.
        let writer = child.stdin.take().map(|mut stdin| {
            let message = message.to_vec();
            std::thread::spawn(move || stdin.write_all(&message).is_ok())
        });
        let deadline = std::time::Instant::now() + SENDMAIL_DEADLINE;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("no answer within {} s; killed", SENDMAIL_DEADLINE.as_secs()));
                }
                Err(e) => break Err(e.to_string()),
            }
        };
        let written = writer.is_some_and(|w| w.join().unwrap_or(false));
        match status {
            Ok(status) if status.success() && written => SendOutcome::Delivered,
            Ok(status) => SendOutcome::Temporary(format!("/usr/sbin/sendmail exited with {status}")),
            Err(e) => SendOutcome::Temporary(format!("/usr/sbin/sendmail: {e}")),
        }
    }
}

/// This node's number: from the host name, so that it stays the same
/// across restarts and differs between the nodes of a cluster.
fn node_id() -> u64 {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    host.trim().bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

type Stores = (Arc<dyn ReportStore>, Arc<dyn OutboxStore>);

/// A directory (journal and outbox files), or `redis://…` shared by the
/// nodes of a cluster (the `redis` feature).
fn stores(at: &str, node: u64) -> Result<Stores, String> {
    if at.starts_with("redis://") || at.starts_with("rediss://") {
        return redis_stores(at, node);
    }
    let at = std::path::Path::new(at);
    let journal = JournalStore::open(at.join("journal")).map_err(|e| e.to_string())?;
    for skipped in journal.skipped() {
        tracing::warn!("{skipped}");
    }
    let outbox = DirOutbox::open(at.join("outbox")).map_err(|e| e.to_string())?;
    Ok((Arc::new(journal), Arc::new(outbox)))
}

#[cfg(feature = "redis")]
fn redis_stores(url: &str, node: u64) -> Result<Stores, String> {
    use smtp_tls_policy::report::{DEFAULT_PREFIX, RedisOutbox, RedisReportStore};
    let timeout = Duration::from_millis(500);
    let reports = RedisReportStore::open(url, DEFAULT_PREFIX, timeout).map_err(|e| e.to_string())?;
    let outbox = RedisOutbox::open(url, DEFAULT_PREFIX, node, timeout).map_err(|e| e.to_string())?;
    Ok((Arc::new(reports), Arc::new(outbox)))
}

#[cfg(not(feature = "redis"))]
fn redis_stores(url: &str, _node: u64) -> Result<Stores, String> {
    Err(format!("tlsrpt.store = {url:?}: this build has no Redis support (build with --features redis)"))
}

/// Starts collecting from `config.socket` and sending every
/// `config.every`; `dns` finds the `_smtp._tls` records.
pub fn start(config: &Tlsrpt, dns: DnsResolver) -> Result<Running, String> {
    let from = config.from.get_ref().clone();
    let submitter =
        from.rsplit('@').next().and_then(|d| DomainName::parse(d).ok()).ok_or("tlsrpt.from: no domain after the @")?;
    let node = node_id();
    let (reports, outbox) = stores(&config.store, node)?;
    let collector_config =
        CollectorConfig::new(config.organization.clone(), config.contact.clone(), submitter).node(node);
    let collector = Arc::new(Collector::new(reports, collector_config));
    let listener = TlsrptListener::start(&config.socket, Arc::clone(&collector))
        .map_err(|e| format!("tlsrpt.socket {}: {e}", config.socket.display()))?;
    let poster = HttpsReportPoster::new(FetchConfig::default()).map_err(|e| e.to_string())?;
    let (ask, asked) = channel::<Ask>();
    let counts = Arc::new(Counts::default());
    let every = config.every.max(Duration::from_secs(1));
    let (pass_collector, pass_outbox, pass_counts) = (Arc::clone(&collector), Arc::clone(&outbox), Arc::clone(&counts));
    let sender = std::thread::Builder::new()
        .name("tlsrpt-sender".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            let pass = || {
                let now = SystemTime::now();
                let mut summary = String::new();
                match runtime.block_on(queue_due(&pass_collector, &pass_outbox, dns.inner(), now)) {
                    Ok(q) => {
                        for id in q.queued {
                            tracing::info!(report = %id, "TLS-RPT report queued");
                            summary.push_str(&format!("queued {id}\n"));
                            pass_counts.queued.fetch_add(1, Ordering::Relaxed);
                        }
                        for (domain, why) in q.no_record {
                            tracing::info!(%domain, "no TLS-RPT report: {why}");
                            summary.push_str(&format!("no report for {domain}: {why}\n"));
                        }
                        for (domain, why) in q.deferred {
                            summary.push_str(&format!("held for {domain}: {why}\n"));
                        }
                    }
                    Err(e) => {
                        tracing::warn!("TLS-RPT: {e}");
                        summary.push_str(&format!("error: {e}\n"));
                        pass_counts.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                match send_due(&pass_outbox, now, &RetryPolicy::default(), &poster, &Sendmail, &from) {
                    Ok(sent) => {
                        for s in sent {
                            let counter = match &s.state {
                                DestinationState::Delivered => &pass_counts.delivered,
                                DestinationState::GaveUp { .. } => &pass_counts.gave_up,
                                _ => &pass_counts.retrying,
                            };
                            counter.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(report = %s.report_id, uri = %s.uri, state = ?s.state, "TLS-RPT delivery");
                            summary.push_str(&format!("{} to {}: {:?}\n", s.report_id, s.uri, s.state));
                        }
                    }
                    Err(e) => {
                        tracing::warn!("TLS-RPT outbox: {e}");
                        summary.push_str(&format!("outbox error: {e}\n"));
                        pass_counts.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if summary.is_empty() {
                    summary.push_str("nothing due\n");
                }
                summary
            };
            run(&asked, every, pass);
        })
        .map_err(|e| e.to_string())?;
    tracing::info!(socket = %config.socket.display(), "TLS-RPT datagrams collected");
    Ok(Running { listener, collector, outbox, ask: Mutex::new(Some(ask)), sender: Some(sender), counts })
}

/// A pass every `every`, and one whenever asked, until the asking side is
/// dropped.
fn run(asked: &Receiver<Ask>, every: Duration, pass: impl Fn() -> String) {
    loop {
        match asked.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {
                pass();
            }
            Ok(Ask::SendNow(reply)) => {
                let _ = reply.send(pass());
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
