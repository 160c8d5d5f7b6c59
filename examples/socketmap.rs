//! A TLS policy server for Postfix: `smtp_tls_policy_maps =
//! socketmap:inet:127.0.0.1:8461:postfix` (or `socketmap:unix:PATH:NAME`).
//! MTA-STS (RFC 8461) and DANE (RFC 7672) through this crate, answered in
//! Postfix's TLS policy language (see the `postfix` module for the table).
//!
//! ```text
//! cargo build --release --example socketmap
//! target/release/examples/socketmap --config /etc/smtp-tls-policy/socketmap.conf
//! target/release/examples/socketmap --check --config FILE   # validate and exit
//! target/release/examples/socketmap                         # inet:127.0.0.1:8461, zone postfix
//! ```
//!
//! It is an example rather than a `[[bin]]` so that the library keeps no
//! server-only dependencies (signal handling, a log writer); an operator
//! builds it once with the command above.
//!
//! The configuration file (`#` starts a comment):
//!
//! ```text
//! listen    inet:127.0.0.1:8461          # as often as needed
//! listen    unix:/var/spool/postfix/private/tls-policy
//! snapshots /var/lib/smtp-tls-policy     # cache snapshots: restored at start, saved every 10 min and at exit
//! refresh   1h                           # proactive refresh of cached policies (RFC 8461 §10.2)
//! idle      300s                         # close connections idle this long
//! reply-ttl 1s                           # reuse an OK/NOTFOUND reply this long (0: never, at most 1h)
//! request-timeout 10s                    # a request must arrive, and its reply be read, within this
//! zone postfix                           # a map name and its options:
//! zone strict strict-testing=yes         #   treat MTA-STS testing as enforce
//! zone rpt    tlsrpt=yes                 #   Postfix >= 3.10 TLS-RPT attributes
//! #   dane=none|opportunistic|mandatory  dnssec=validate|trust-ad|off  timeout=20s
//! #   dns=IP[:PORT][,…]  anchor=FILE (DNSKEY records)  roots=webpki|os|FILE.pem  proxy=http://host:port
//! #   dnssec-broken=refuse|degrade: when the DNS servers cannot validate (they strip DNSSEC), refuse to
//! #   start (default) or run with DANE unavailable, logged loudly
//! #   sts-unavailable=none|may|encrypt|dane|dane-only|verify|secure: the answer for a policy that was
//! #   announced but could not be had: none (default) answers NOTFOUND (main.cf's level applies); a
//! #   level overrides main.cf for such domains (with policy_failure when tlsrpt=yes)
//! #   store=redis://[user:pass@]host:6379/0 (or rediss://): the policy cache shared by the nodes
//! #   of a cluster (build with --features redis); Redis down: decisions go on from the local cache
//!
//! # TLS-RPT (RFC 8460) for Postfix >= 3.10 (smtp_tlsrpt_enable = yes,
//! # smtp_tlsrpt_socket_name = the socket below): all four lines, or none.
//! tlsrpt-socket /var/spool/postfix/private/tlsrpt   # libtlsrpt's datagrams
//! tlsrpt-store  /var/lib/smtp-tls-policy/tlsrpt     # the durable journal and outbox (or redis://…
//!                                                   # shared by a cluster: one report per domain and day)
//! tlsrpt-org    "Example Mail" mailto:postmaster@example.net   # organization-name, contact-info
//! tlsrpt-from   tlsrpt@mta.example.net              # report mails, handed to /usr/sbin/sendmail
//! ```
//!
//! With TLS-RPT on, the server records the sessions Postfix reports, and
//! every five minutes turns closed UTC days into reports for every `rua`
//! of each domain's `_smtp._tls` record (DNS of the first zone): HTTPS
//! POSTs, and mails through Postfix's `sendmail` marked `TLS-Required: No`.
//!
//! Signals: SIGTERM and SIGINT save the snapshots and exit; SIGHUP saves
//! them now. Logs go to stderr.

use std::mem::take;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use smtp_tls_policy::dns::{DnsConfig, DnsErrorKind, DnssecMode, TrustAnchor};
use smtp_tls_policy::engine::{DaneSupport, DestinationControls, Options, Profile, StsSupport, TlsSupport};
use smtp_tls_policy::fetch::{FetchConfig, Roots};
use smtp_tls_policy::postfix::server::{ServerConfig, SocketmapServer, Zone};
use smtp_tls_policy::postfix::{Level, ZoneOptions};
use smtp_tls_policy::resolver::ResolverConfig;
use smtp_tls_policy::resolver::blocking::PolicyResolver;

const DEFAULT_CONFIG: &str = "listen inet:127.0.0.1:8461\nzone postfix\n";

struct Config {
    server: ServerConfig,
    refresh: Duration,
    tlsrpt: Option<Tlsrpt>,
}

/// The TLS-RPT lines of the configuration.
#[derive(Default)]
struct Tlsrpt {
    socket: Option<PathBuf>,
    store: Option<PathBuf>,
    org: Option<(String, String)>,
    from: Option<String>,
}

fn main() -> ExitCode {
    let mut path = None;
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => path = args.next(),
            "--check" => check = true,
            _ => {
                eprintln!("usage: socketmap [--config FILE] [--check]");
                return ExitCode::from(2);
            }
        }
    }
    let text = match &path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("socketmap: cannot read {p}: {e}");
                return ExitCode::from(2);
            }
        },
        None => DEFAULT_CONFIG.to_owned(),
    };
    let config = match parse(&text) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                eprintln!("socketmap: {}: {e}", path.as_deref().unwrap_or("built-in configuration"));
            }
            return ExitCode::from(2);
        }
    };
    if check {
        println!("configuration OK: {} zone(s)", config.server.zones().len());
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt().with_writer(log::NonBlocking::stderr()).with_ansi(false).init();
    let refreshers: Vec<_> =
        config.server.zones().values().map(|z| z.resolver.start_refresher(config.refresh)).collect();
    let dns = config.server.zones().values().next().map(|z| z.resolver.dns().clone());
    let server = match SocketmapServer::start(config.server) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("socketmap: cannot listen: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!(addrs = ?server.local_addrs(), "socketmap server ready");
    let reports = match (&config.tlsrpt, dns) {
        (Some(t), Some(dns)) => match tlsrpt::start(t, dns) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("socketmap: TLS-RPT: {e}");
                return ExitCode::from(1);
            }
        },
        _ => None,
    };
    let Ok(mut signals) = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ]) else {
        eprintln!("socketmap: cannot install signal handlers");
        return ExitCode::from(1);
    };
    std::thread::scope(|scope| {
        // Snapshots every 10 minutes, so that a crash loses little.
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let server = &server;
        scope.spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(Duration::from_secs(600)) {
                server.save_snapshots();
            }
        });
        for signal in signals.forever() {
            if signal != signal_hook::consts::SIGHUP {
                break;
            }
            let errors = server.save_snapshots();
            tracing::info!(errors = errors.len(), "cache snapshots saved");
        }
        drop(stop);
    });
    drop(refreshers);
    drop(reports);
    let errors = server.shutdown();
    tracing::info!(errors = errors.len(), "stopped; cache snapshots saved");
    if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// Parses the configuration; every problem, with its line.
fn parse(text: &str) -> Result<Config, Vec<String>> {
    let mut server = ServerConfig::default();
    let mut refresh = Duration::from_secs(3600);
    let mut tlsrpt = Tlsrpt::default();
    let mut errors = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let keyword = words.next().unwrap_or_default();
        let rest: Vec<&str> = words.collect();
        let result = match (keyword, rest.as_slice()) {
            ("listen", [spec]) => match spec.split_once(':') {
                Some(("inet", addr)) => addr
                    .parse::<SocketAddr>()
                    .map(|a| server = take(&mut server).inet(a))
                    .map_err(|e| format!("listen {spec}: {e}")),
                Some(("unix", path)) => {
                    server = take(&mut server).unix(PathBuf::from(path));
                    Ok(())
                }
                _ => Err(format!("listen {spec}: expected inet:HOST:PORT or unix:PATH")),
            },
            ("snapshots", [dir]) => {
                server = take(&mut server).snapshot_dir(PathBuf::from(dir));
                Ok(())
            }
            ("refresh", [d]) => duration(d).map(|d| refresh = d),
            ("idle", [d]) => duration(d).map(|d| server = take(&mut server).idle_timeout(d)),
            ("reply-ttl", [d]) => duration(d).map(|d| server = take(&mut server).reply_ttl(d)),
            ("request-timeout", [d]) => duration(d).map(|d| server = take(&mut server).request_timeout(d)),
            ("zone", [name, options @ ..]) => zone(options).map(|z| server = take(&mut server).zone(*name, z)),
            ("tlsrpt-socket", [path]) => {
                tlsrpt.socket = Some(PathBuf::from(path));
                Ok(())
            }
            ("tlsrpt-store", [dir]) => {
                tlsrpt.store = Some(PathBuf::from(dir));
                Ok(())
            }
            ("tlsrpt-org", [..]) => {
                quoted_pair(line.trim_start_matches("tlsrpt-org")).map(|pair| tlsrpt.org = Some(pair))
            }
            ("tlsrpt-from", [address]) if address.contains('@') => {
                tlsrpt.from = Some((*address).to_owned());
                Ok(())
            }
            _ => Err(format!("unknown line {line:?}")),
        };
        if let Err(e) = result {
            errors.push(format!("line {}: {e}", n + 1));
        }
    }
    if !server.listens() {
        errors.push("no listen line: add e.g. \"listen inet:127.0.0.1:8461\"".into());
    }
    if server.zones().is_empty() {
        errors.push("no zone line: add e.g. \"zone postfix\"".into());
    }
    let any = tlsrpt.socket.is_some() || tlsrpt.store.is_some() || tlsrpt.org.is_some() || tlsrpt.from.is_some();
    let all = tlsrpt.socket.is_some() && tlsrpt.store.is_some() && tlsrpt.org.is_some() && tlsrpt.from.is_some();
    if any && !all {
        errors.push("TLS-RPT needs all of tlsrpt-socket, tlsrpt-store, tlsrpt-org and tlsrpt-from".to_owned());
    }
    let tlsrpt = all.then_some(tlsrpt);
    if errors.is_empty() { Ok(Config { server, refresh, tlsrpt }) } else { Err(errors) }
}

fn duration(text: &str) -> Result<Duration, String> {
    smtp_tls_policy::engine::parse_duration(text)
}

fn yes(v: &str) -> Result<bool, String> {
    match v {
        "yes" | "true" | "on" => Ok(true),
        "no" | "false" | "off" => Ok(false),
        _ => Err(format!("{v:?}: expected yes or no")),
    }
}

/// One zone from its `key=value` options.
fn zone(options: &[&str]) -> Result<Zone, String> {
    let mut dns = DnsConfig::default();
    let mut fetch = FetchConfig::default();
    let mut dane = DaneSupport::Opportunistic;
    let mut strict = false;
    let mut tlsrpt = false;
    let mut dnssec = "validate";
    let mut anchor = None;
    let mut degrade = false;
    let mut unavailable = None;
    let mut store = None;
    for option in options {
        let (key, value) = option.split_once('=').ok_or_else(|| format!("{option:?}: expected key=value"))?;
        match key {
            "strict-testing" => strict = yes(value)?,
            "tlsrpt" => tlsrpt = yes(value)?,
            "dane" => {
                dane = match value {
                    "none" => DaneSupport::None,
                    "opportunistic" => DaneSupport::Opportunistic,
                    "mandatory" => DaneSupport::Mandatory,
                    _ => return Err(format!("dane={value}: expected none, opportunistic or mandatory")),
                }
            }
            "timeout" => {
                let t = duration(value)?;
                fetch = fetch.timeout(t);
                dns = dns.timeout(t.min(Duration::from_secs(5)));
            }
            "dnssec" => {
                dnssec = match value {
                    "validate" => "validate",
                    "trust-ad" => "trust-ad",
                    "off" => "off",
                    _ => return Err(format!("dnssec={value}: expected validate, trust-ad or off")),
                }
            }
            "dns" => {
                let servers: Result<Vec<SocketAddr>, String> = value
                    .split(',')
                    .map(|s| {
                        s.parse::<SocketAddr>()
                            .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                            .map_err(|_| format!("dns={s}: expected IP or IP:PORT"))
                    })
                    .collect();
                dns = dns.servers(servers?);
            }
            "anchor" => {
                let text = std::fs::read_to_string(value).map_err(|e| format!("anchor={value}: {e}"))?;
                anchor = Some(TrustAnchor::parse(&text).map_err(|e| format!("anchor={value}: {e}"))?);
            }
            "roots" => {
                fetch = fetch.roots(match value {
                    "webpki" => Roots::webpki(),
                    "os" => Roots::os().map_err(|e| format!("roots=os: {e}"))?,
                    path => {
                        use rustls_pki_types::CertificateDer;
                        use rustls_pki_types::pem::PemObject;
                        let certs: Result<Vec<_>, _> =
                            CertificateDer::pem_file_iter(path).map_err(|e| format!("roots={path}: {e}"))?.collect();
                        let certs = certs.map_err(|e| format!("roots={path}: {e}"))?;
                        Roots::custom(&certs).map_err(|e| format!("roots={path}: {e}"))?
                    }
                })
            }
            "proxy" => fetch = fetch.proxy(value),
            "sts-unavailable" => {
                unavailable = match value {
                    "none" => None,
                    _ => Some(Level::parse(value).ok_or_else(|| {
                        format!(
                            "sts-unavailable={value}: expected none, may, encrypt, dane, dane-only, verify or secure"
                        )
                    })?),
                }
            }
            "dnssec-broken" => {
                degrade = match value {
                    "refuse" => false,
                    "degrade" => true,
                    _ => return Err(format!("dnssec-broken={value}: expected refuse or degrade")),
                }
            }
            "store" => store = Some(cache_store(value)?),
            _ => return Err(format!("unknown zone option {key:?}")),
        }
    }
    dns = dns.dnssec(match (dnssec, anchor) {
        ("off", _) => DnssecMode::Off,
        ("trust-ad", _) => DnssecMode::TrustAd,
        (_, Some(anchor)) => DnssecMode::Validate(anchor),
        (_, None) => DnssecMode::default(),
    });
    // Postfix applies its own TLS settings when the map says NOTFOUND, so
    // the TLS support here only shapes the plan; MTA-STS is always on.
    let controls = DestinationControls::new(Profile::new(TlsSupport::Preferred, dane, StsSupport::On))
        .with_options(Options::default().testing_as_enforce(strict));
    let validating = matches!(dnssec, "validate");
    let mut config = ResolverConfig::default().dns(dns.degraded(degrade)).fetch(fetch).controls(controls);
    if let Some(store) = store {
        config = config.cache_store(store);
    }
    let resolver = PolicyResolver::new(config).map_err(|e| e.to_string())?;
    // At start: can these servers validate at all? (A resolver path that
    // strips DNSSEC would otherwise make every MX lookup fail.)
    if validating {
        match resolver.dns().probe() {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), DnsErrorKind::CannotValidate(_)) && !degrade => {
                return Err(format!("{e} (or set dnssec-broken=degrade to run with DANE unavailable)"));
            }
            Err(e) => tracing::warn!("DNS check at start: {e}"),
        }
    }
    Ok(Zone { resolver, options: ZoneOptions::default().tlsrpt(tlsrpt).unavailable(unavailable) })
}

/// Log lines reach stderr from a thread of their own, so that an answer
/// never waits for the terminal or the journal: each event is one message
/// on a bounded channel; when [`PENDING`](log::PENDING) lines wait, new ones are
/// dropped, and the count of dropped lines is written with the next line
/// that gets through.
mod log {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::mpsc::{self, SyncSender, TrySendError};

    use tracing_subscriber::fmt::MakeWriter;

    /// Lines that may wait for the writer thread.
    pub const PENDING: usize = 4096;

    /// The `MakeWriter` of the subscriber.
    #[derive(Clone)]
    pub struct NonBlocking {
        tx: SyncSender<Vec<u8>>,
        dropped: Arc<AtomicU64>,
    }

    impl NonBlocking {
        /// Starts the writer thread on stderr.
        pub fn stderr() -> Self {
            let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(PENDING);
            let dropped = Arc::new(AtomicU64::new(0));
            let lost = Arc::clone(&dropped);
            let _ = std::thread::Builder::new().name("log".into()).spawn(move || {
                let mut err = std::io::stderr().lock();
                for line in rx {
                    let n = lost.swap(0, Ordering::Relaxed);
                    if n > 0 {
                        let _ = writeln!(err, "({n} log lines dropped: the log writer could not keep up)");
                    }
                    let _ = err.write_all(&line);
                }
            });
            Self { tx, dropped }
        }
    }

    /// One event's line, sent when the subscriber is done with it.
    pub struct Line {
        buf: Vec<u8>,
        sink: NonBlocking,
    }

    impl Write for Line {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.buf.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Drop for Line {
        fn drop(&mut self) {
            if self.buf.is_empty() {
                return;
            }
            match self.sink.tx.try_send(std::mem::take(&mut self.buf)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.sink.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    impl<'a> MakeWriter<'a> for NonBlocking {
        type Writer = Line;

        fn make_writer(&'a self) -> Line {
            Line { buf: Vec::with_capacity(256), sink: self.clone() }
        }
    }
}

/// `store=redis://…`: the policy cache shared by the nodes of a cluster
/// (needs the `redis` feature).
#[cfg(feature = "redis")]
fn cache_store(url: &str) -> Result<std::sync::Arc<dyn smtp_tls_policy::cache::CacheStore>, String> {
    let prefix = smtp_tls_policy::report::DEFAULT_PREFIX;
    let store = smtp_tls_policy::cache::RedisStore::open(url, prefix, Duration::from_millis(250))
        .map_err(|e| format!("store={url}: {e}"))?;
    Ok(std::sync::Arc::new(store))
}

#[cfg(not(feature = "redis"))]
fn cache_store(url: &str) -> Result<std::sync::Arc<dyn smtp_tls_policy::cache::CacheStore>, String> {
    Err(format!(
        "store={url}: build with the redis feature (cargo build --release --features redis --example socketmap)"
    ))
}

/// `"Organization Name" contact-uri`: a quoted name, then one word.
fn quoted_pair(rest: &str) -> Result<(String, String), String> {
    let rest = rest.trim();
    let usage = || "tlsrpt-org wants \"Organization Name\" contact (a mailto: or https: URI)".to_owned();
    let rest = rest.strip_prefix('"').ok_or_else(usage)?;
    let (name, contact) = rest.split_once('"').ok_or_else(usage)?;
    let contact = contact.trim();
    if name.trim().is_empty() || contact.is_empty() || contact.contains(char::is_whitespace) {
        return Err(usage());
    }
    Ok((name.to_owned(), contact.to_owned()))
}

/// TLS-RPT: the datagram socket, and the sender of the day's reports.
mod tlsrpt {
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::sync::Arc;
    use std::sync::mpsc::{Sender, channel};
    use std::thread::JoinHandle;
    use std::time::{Duration, SystemTime};

    use smtp_tls_policy::dns::blocking::DnsResolver;
    use smtp_tls_policy::fetch::{FetchConfig, HttpsReportPoster};
    use smtp_tls_policy::name::DomainName;
    use smtp_tls_policy::postfix::TlsrptListener;
    use smtp_tls_policy::report::{
        Collector, CollectorConfig, DirOutbox, JournalStore, MailSubmitter, OutboxStore, ReportStore, RetryPolicy,
        SendOutcome, queue_due, send_due,
    };

    /// Runs until dropped.
    pub struct Running {
        _listener: TlsrptListener,
        stop: Option<Sender<()>>,
        sender: Option<JoinHandle<()>>,
    }

    impl Drop for Running {
        fn drop(&mut self) {
            drop(self.stop.take());
            if let Some(t) = self.sender.take() {
                let _ = t.join();
            }
        }
    }

    /// How long `sendmail` may take to accept one report mail.
    const SENDMAIL_DEADLINE: Duration = Duration::from_secs(60);

    /// Report mails through Postfix's own queue: `sendmail -f FROM -- TO`.
    struct Sendmail;

    impl MailSubmitter for Sendmail {
        fn submit(&self, from: &str, to: &str, message: &[u8]) -> SendOutcome {
            let child =
                Command::new("/usr/sbin/sendmail").args(["-i", "-f", from, "--", to]).stdin(Stdio::piped()).spawn();
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
    fn stores(at: &std::path::Path, node: u64) -> Result<Stores, String> {
        let text = at.to_string_lossy();
        if text.starts_with("redis://") || text.starts_with("rediss://") {
            return redis_stores(&text, node);
        }
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
        Err(format!("tlsrpt-store {url}: build with the redis feature"))
    }

    pub fn start(config: &super::Tlsrpt, dns: DnsResolver) -> Result<Running, String> {
        let (Some(socket), Some(store), Some((org, contact)), Some(from)) =
            (&config.socket, &config.store, &config.org, &config.from)
        else {
            return Err("incomplete configuration".into());
        };
        let submitter =
            from.rsplit('@').next().and_then(|d| DomainName::parse(d).ok()).ok_or("tlsrpt-from: no domain")?;
        let node = node_id();
        let (reports, outbox) = stores(store, node)?;
        let config = CollectorConfig::new(org.clone(), contact.clone(), submitter).node(node);
        let collector = Arc::new(Collector::new(reports, config));
        let listener =
            TlsrptListener::start(socket, Arc::clone(&collector)).map_err(|e| format!("{}: {e}", socket.display()))?;
        let poster = HttpsReportPoster::new(FetchConfig::default()).map_err(|e| e.to_string())?;
        let (stop, stopped) = channel::<()>();
        let from = from.clone();
        let sender = std::thread::Builder::new()
            .name("tlsrpt-sender".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(Duration::from_secs(300)) {
                    let now = SystemTime::now();
                    match runtime.block_on(queue_due(&collector, &outbox, dns.inner(), now)) {
                        Ok(q) => {
                            for id in q.queued {
                                tracing::info!(report = %id, "TLS-RPT report queued");
                            }
                            for (domain, why) in q.no_record {
                                tracing::info!(%domain, "no TLS-RPT report: {why}");
                            }
                        }
                        Err(e) => tracing::warn!("TLS-RPT: {e}"),
                    }
                    match send_due(&outbox, now, &RetryPolicy::default(), &poster, &Sendmail, &from) {
                        Ok(sent) => {
                            for s in sent {
                                tracing::info!(report = %s.report_id, uri = %s.uri, state = ?s.state, "TLS-RPT delivery");
                            }
                        }
                        Err(e) => tracing::warn!("TLS-RPT outbox: {e}"),
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        tracing::info!(socket = %socket.display(), "TLS-RPT datagrams collected");
        Ok(Running { _listener: listener, stop: Some(stop), sender: Some(sender) })
    }
}
