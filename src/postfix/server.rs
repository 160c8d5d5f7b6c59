//! The socketmap server for Postfix's `smtp_tls_policy_maps` (feature
//! `resolver`): TCP and UNIX-domain listeners served by one event loop on
//! a thread of its own (no thread per connection),
//! one [`PolicyResolver`] per map name ("zone"), cache snapshots restored
//! at start and saved at shutdown.
//!
//! Limits: a request is one netstring of at most [`MAX_REQUEST`] bytes; a
//! malformed or oversized one is answered `PERM` and the connection closed
//! (Postfix reconnects); a connection idle for
//! [`ServerConfig::idle_timeout`] is closed; at most
//! [`ServerConfig::max_connections`] are served at once, the next ones get
//! `TEMP` and are closed. An `OK` or `NOTFOUND` reply is reused for the same
//! request for [`ServerConfig::reply_ttl`] (1 s by default).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use super::netstring::{decode, encode};
use super::{MAX_REPLY, MAX_REQUEST, Reply, Request, ZoneOptions, policy_reply, policy_without_mx};
use crate::cache::{load_snapshot, save_snapshot};
use crate::dns::DnsErrorKind;
use crate::name::DomainName;
use futures_util::future::{Either, select};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use crate::engine::Plan;
use crate::resolver::ResolveError;
use crate::resolver::blocking::PolicyResolver;

/// One map name: its resolver (DNS mode, timeouts, controls such as strict
/// testing) and its reply options.
#[derive(Debug, Clone)]
pub struct Zone {
    /// The resolver of this zone.
    pub resolver: PolicyResolver,
    /// How replies are written.
    pub options: ZoneOptions,
}

/// What the server listens on and serves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// TCP addresses (`socketmap:inet:host:port:name`).
    pub(crate) inet: Vec<SocketAddr>,
    /// UNIX-domain socket paths (`socketmap:unix:path:name`); an existing
    /// socket file is replaced.
    pub(crate) unix: Vec<PathBuf>,
    /// The zones by map name.
    pub(crate) zones: HashMap<String, Zone>,
    /// A connection idle this long is closed (default 300 s).
    pub(crate) idle_timeout: Duration,
    /// A request must arrive whole, and its reply be taken by the client,
    /// within this (default 10 s): a client that trickles a request a byte
    /// at a time, or pipelines requests and never reads the replies, is
    /// closed instead of holding a connection slot.
    pub(crate) request_timeout: Duration,
    /// Connections served at once (default 1000).
    pub(crate) max_connections: usize,
    /// Where cache snapshots live (`<dir>/<zone>.snapshot`); none: no
    /// snapshots.
    pub(crate) snapshot_dir: Option<PathBuf>,
    /// How long an `OK` or `NOTFOUND` reply is reused for the same request
    /// (default 1 s; zero: never; at most [`MAX_REPLY_TTL`]). Postfix asks
    /// once per delivery attempt, so a burst to one domain is answered from
    /// here; a second is below any DNS TTL that matters.
    pub(crate) reply_ttl: Duration,
    /// Told of every answer and connection event (metrics).
    pub(crate) observer: Option<Arc<dyn ServerObserver>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            inet: Vec::new(),
            unix: Vec::new(),
            zones: HashMap::new(),
            idle_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(10),
            max_connections: 1000,
            snapshot_dir: None,
            reply_ttl: Duration::from_secs(1),
            observer: None,
        }
    }
}

impl ServerConfig {
    /// The zones by map name.
    pub fn zones(&self) -> &HashMap<String, Zone> {
        &self.zones
    }

    /// Whether any listener is configured.
    pub fn listens(&self) -> bool {
        !(self.inet.is_empty() && self.unix.is_empty())
    }

    /// Adds a zone.
    pub fn zone(mut self, name: impl Into<String>, zone: Zone) -> Self {
        self.zones.insert(name.into(), zone);
        self
    }

    /// Listens on a TCP address.
    pub fn inet(mut self, addr: SocketAddr) -> Self {
        self.inet.push(addr);
        self
    }

    /// Listens on a UNIX-domain socket.
    pub fn unix(mut self, path: impl Into<PathBuf>) -> Self {
        self.unix.push(path.into());
        self
    }

    /// Sets where cache snapshots live.
    pub fn snapshot_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.snapshot_dir = Some(dir.into());
        self
    }

    /// Sets the idle timeout.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets how long replies are reused (zero: never; longer than
    /// [`MAX_REPLY_TTL`] is that).
    pub fn reply_ttl(mut self, ttl: Duration) -> Self {
        self.reply_ttl = ttl;
        self
    }

    /// Sets how many connections are served at once (at least one); more
    /// wait in the listen queue.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// Sets the request timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Tells `observer` of every answer and connection event (for
    /// metrics); it is called on the server's event loop, so it must not
    /// block.
    pub fn observer(mut self, observer: Arc<dyn ServerObserver>) -> Self {
        self.observer = Some(observer);
        self
    }
}

/// What a server tells its [`ServerConfig::observer`]: every method has an
/// empty default, and each is called on the event loop (count, never
/// block).
pub trait ServerObserver: Send + Sync {
    /// A request was answered.
    fn answered(&self, answer: &Answered<'_>) {
        let _ = answer;
    }

    /// Something happened to a connection.
    fn connection(&self, event: ConnectionEvent) {
        let _ = event;
    }
}

impl fmt::Debug for dyn ServerObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerObserver")
    }
}

/// One answered request, for a [`ServerObserver`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Answered<'a> {
    /// The map name asked, when the request named a configured one.
    pub zone: Option<&'a str>,
    /// What kind of reply went out.
    pub reply: ReplyKind,
    /// From the complete request to the reply's bytes.
    pub took: Duration,
    /// Whether a kept reply was reused ([`ServerConfig::reply_ttl`]): no
    /// lookup, no plan.
    pub reused: bool,
    /// The plan the reply was made from.
    pub plan: Option<&'a Plan>,
    /// Why there is no plan, when a lookup failed.
    pub error: Option<&'a ResolveError>,
}

/// The kind of a socketmap [`Reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplyKind {
    /// `OK`.
    Ok,
    /// `NOTFOUND`.
    NotFound,
    /// `TEMP`.
    Temp,
    /// `TIMEOUT`.
    Timeout,
    /// `PERM`.
    Perm,
}

impl ReplyKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ReplyKind; 5] = [Self::Ok, Self::NotFound, Self::Temp, Self::Timeout, Self::Perm];

    /// The reply's keyword, as Postfix reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::NotFound => "NOTFOUND",
            Self::Temp => "TEMP",
            Self::Timeout => "TIMEOUT",
            Self::Perm => "PERM",
        }
    }
}

impl Reply {
    /// Its kind.
    pub fn kind(&self) -> ReplyKind {
        match self {
            Self::Ok(_) => ReplyKind::Ok,
            Self::NotFound => ReplyKind::NotFound,
            Self::Temp(_) => ReplyKind::Temp,
            Self::Timeout(_) => ReplyKind::Timeout,
            Self::Perm(_) => ReplyKind::Perm,
        }
    }
}

/// A connection event, for a [`ServerObserver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// A connection was accepted and is served.
    Accepted,
    /// A connection over [`ServerConfig::max_connections`] got `TEMP` and
    /// was closed.
    OverLimit,
    /// A request that is not a netstring, or is too long, got `PERM` and
    /// the connection was closed.
    Malformed,
    /// A request that did not arrive whole within
    /// [`ServerConfig::request_timeout`], or a reply that was not taken
    /// within it: the connection was closed.
    RequestTimeout,
    /// A connection idle for [`ServerConfig::idle_timeout`] was closed.
    Idle,
}

impl ConnectionEvent {
    /// Every event, in a fixed order.
    pub const ALL: [ConnectionEvent; 5] =
        [Self::Accepted, Self::OverLimit, Self::Malformed, Self::RequestTimeout, Self::Idle];

    /// A short name (`accepted`, `over_limit`, `malformed`,
    /// `request_timeout`, `idle`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::OverLimit => "over_limit",
            Self::Malformed => "malformed",
            Self::RequestTimeout => "request_timeout",
            Self::Idle => "idle",
        }
    }
}

/// The longest [`ServerConfig::reply_ttl`]: a reply reused longer would
/// outlive policy changes the cache already knows of.
pub const MAX_REPLY_TTL: Duration = Duration::from_secs(3600);

/// The shortest timeouts the server uses: a socket timeout of zero means
/// "none" to the system.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// The most replies kept for reuse.
const MAX_KEPT_REPLIES: usize = 65_536;

/// The most bytes of replies (and their requests) kept for reuse: 65 536
/// replies of Postfix's 100 000-byte limit would be 6.5 GB; real replies
/// are under 200 bytes.
pub const MAX_KEPT_REPLY_BYTES: usize = 32 << 20;

/// Encoded `OK`/`NOTFOUND` replies by request payload, for
/// [`ServerConfig::reply_ttl`].
struct Replies {
    ttl: Duration,
    kept: Mutex<KeptReplies>,
}

/// The kept replies and the bytes they hold.
#[derive(Default)]
struct KeptReplies {
    replies: HashMap<Vec<u8>, Kept>,
    bytes: usize,
}

impl KeptReplies {
    fn cost(request: &[u8], reply: &[u8]) -> usize {
        request.len() + reply.len() + 64
    }

    /// Keeps `reply` until `until`, within [`MAX_KEPT_REPLIES`] and
    /// [`MAX_KEPT_REPLY_BYTES`]: expired replies go first, then all.
    fn keep(&mut self, request: &[u8], until: Instant, reply: Arc<[u8]>, now: Instant) {
        let cost = Self::cost(request, &reply);
        if cost > MAX_KEPT_REPLY_BYTES / 16 {
            return; // one reply never takes a large share
        }
        if self.replies.len() >= MAX_KEPT_REPLIES || self.bytes + cost > MAX_KEPT_REPLY_BYTES {
            let mut freed = 0;
            self.replies.retain(|k, (until, r)| {
                let keep = *until > now;
                if !keep {
                    freed += Self::cost(k, r);
                }
                keep
            });
            self.bytes -= freed;
            if self.replies.len() >= MAX_KEPT_REPLIES || self.bytes + cost > MAX_KEPT_REPLY_BYTES {
                self.replies.clear();
                self.bytes = 0;
            }
        }
        if let Some((_, old)) = self.replies.insert(request.to_vec(), (until, reply)) {
            self.bytes -= Self::cost(request, &old);
        }
        self.bytes += cost;
    }
}

/// A reply kept until the instant, encoded as a netstring.
type Kept = (Instant, Arc<[u8]>);

impl Replies {
    /// The kept reply to `payload`, if it is still fresh.
    fn kept(&self, payload: &[u8], now: Instant) -> Option<Arc<[u8]>> {
        if self.ttl.is_zero() {
            return None;
        }
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.replies.get(payload).filter(|(until, _)| now < *until).map(|(_, bytes)| Arc::clone(bytes))
    }

    /// `reply` encoded, and kept for reuse when it is `OK` or `NOTFOUND`;
    /// the kind of reply that goes out.
    fn keep(&self, payload: &[u8], mut reply: Reply, now: Instant) -> (Arc<[u8]>, ReplyKind) {
        let mut text = reply.to_string();
        if text.len() > MAX_REPLY {
            reply = Reply::Temp("the policy is too long for Postfix".into());
            text = reply.to_string();
        }
        let bytes: Arc<[u8]> = encode(text.as_bytes()).into();
        if !self.ttl.is_zero() && matches!(reply, Reply::Ok(_) | Reply::NotFound) {
            // `ttl` is at most MAX_REPLY_TTL; an Instant that far ahead exists.
            if let Some(until) = now.checked_add(self.ttl) {
                let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
                kept.keep(payload, until, Arc::clone(&bytes), now);
            }
        }
        (bytes, reply.kind())
    }

    /// Forgets every kept reply (the zones changed).
    fn clear(&self) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.replies.clear();
        kept.bytes = 0;
    }
}

/// What a request asks, before any lookup.
enum Query<'a> {
    /// Answered without a lookup.
    Done(Reply),
    /// The policy of `domain` in `zone` (map name `name`).
    Resolve { zone: &'a Zone, name: &'a str, domain: DomainName },
}

fn query<'a>(zones: &'a HashMap<String, Zone>, payload: &'a [u8]) -> Query<'a> {
    let request = match Request::parse(payload) {
        Ok(r) => r,
        Err(why) => return Query::Done(Reply::Perm(why.into())),
    };
    let Some(zone) = zones.get(request.name) else {
        return Query::Done(Reply::Perm(format!("unknown map name {:?}: configure it as a zone", request.name)));
    };
    let key = request.key.trim_end_matches('.');
    // "[host]:port" and "host:port" next hops are not domains with policies.
    if key.starts_with('[') || key.contains(':') {
        return Query::Done(Reply::NotFound);
    }
    match DomainName::parse(key) {
        Ok(domain) => Query::Resolve { zone, name: request.name, domain },
        Err(_) => Query::Done(Reply::NotFound),
    }
}

/// The reply for a resolve's result.
fn reply_of(zone: &Zone, name: &str, domain: &DomainName, result: &Result<Plan, ResolveError>) -> Reply {
    match result {
        Ok(plan) => {
            let reply = policy_reply(plan, zone.options);
            tracing::debug!(domain = %domain, zone = name, reply = %reply, "socketmap answer");
            reply
        }
        Err(e) => {
            // A live policy survives any MX answer (a forged one included);
            // a bogus MX RRset defers (RFC 7672 §2.2.1).
            let bogus = e.dns_error().is_some_and(|d| d.kind() == &DnsErrorKind::Bogus);
            let enforcing = zone.resolver.controls().options();
            let kept =
                e.sts().filter(|_| !bogus).and_then(|sts| policy_without_mx(domain, sts, &enforcing, zone.options));
            match kept {
                Some(reply) => {
                    tracing::debug!(domain = %domain, zone = name, reason = %e,
                        "MX lookup failed; the domain's MTA-STS policy still applies");
                    reply
                }
                None if e.is_temporary() => Reply::Temp(e.to_string()),
                None => Reply::NotFound,
            }
        }
    }
}

/// The answer to one request payload (the bytes inside the netstring),
/// from a plain thread (the zone's blocking resolver).
pub fn answer(zones: &HashMap<String, Zone>, payload: &[u8]) -> Reply {
    match query(zones, payload) {
        Query::Done(reply) => reply,
        Query::Resolve { zone, name, domain } => {
            let result = zone.resolver.resolve_domain(&domain);
            reply_of(zone, name, &domain, &result)
        }
    }
}

/// [`answer`] in async code: the zone's async resolver on the caller's
/// runtime (what the server does).
pub async fn answer_async(zones: &HashMap<String, Zone>, payload: &[u8]) -> Reply {
    match query(zones, payload) {
        Query::Done(reply) => reply,
        Query::Resolve { zone, name, domain } => {
            let result = zone.resolver.inner().resolve_domain(&domain).await;
            reply_of(zone, name, &domain, &result)
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct SocketmapServer {
    inet: Vec<SocketAddr>,
    unix: Vec<PathBuf>,
    snapshot_dir: Option<PathBuf>,
    shared: Arc<Shared>,
    thread: Option<thread::JoinHandle<()>>,
}

struct Shared {
    /// Replaced whole by [`SocketmapServer::replace_zones`]; a request
    /// holds the map it started with.
    zones: RwLock<Arc<HashMap<String, Zone>>>,
    replies: Replies,
    observer: Option<Arc<dyn ServerObserver>>,
    stop: AtomicBool,
    stopped: Notify,
    active: AtomicUsize,
    idle_timeout: Duration,
    request_timeout: Duration,
    max_connections: usize,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").field("active", &self.active.load(Ordering::Relaxed)).finish()
    }
}

impl SocketmapServer {
    /// Restores the zones' cache snapshots, binds every listener and starts
    /// serving on a thread of its own: one event loop (a current-thread
    /// tokio runtime) for every connection, the lookups included; the
    /// blocking policy fetches on its blocking pool. Fails when a listener
    /// cannot be bound or the runtime cannot start.
    pub fn start(config: ServerConfig) -> io::Result<Self> {
        Self::start_on(config, Vec::new(), Vec::new())
    }

    /// [`start`](Self::start), also serving listeners bound already (by
    /// systemd's socket activation, say): they are served as they are and
    /// a UNIX-domain one is not removed at shutdown.
    pub fn start_on(
        config: ServerConfig,
        tcp: Vec<std::net::TcpListener>,
        unix: Vec<std::os::unix::net::UnixListener>,
    ) -> io::Result<Self> {
        let now = SystemTime::now();
        if let Some(dir) = &config.snapshot_dir {
            for (name, zone) in &config.zones {
                match load_snapshot(zone.resolver.cache(), &snapshot_path(dir, name), now) {
                    Ok(restored) => {
                        for (domain, why) in &restored.skipped {
                            tracing::warn!(zone = %name, domain = %domain, "cache snapshot entry left out: {why}");
                        }
                        tracing::info!(zone = %name, policies = restored.loaded, skipped = restored.skipped.len(),
                            "cache snapshot restored");
                    }
                    Err(e) => tracing::warn!(zone = %name, "cache snapshot not restored: {e}"),
                }
            }
        }
        let mut inet_listeners = Vec::new();
        let mut inet = Vec::new();
        for listener in tcp {
            listener.set_nonblocking(true)?;
            inet.push(listener.local_addr()?);
            inet_listeners.push(listener);
        }
        let mut unix_listeners = Vec::new();
        for listener in unix {
            listener.set_nonblocking(true)?;
            unix_listeners.push(listener);
        }
        for addr in &config.inet {
            let listener = std::net::TcpListener::bind(addr)?;
            listener.set_nonblocking(true)?;
            inet.push(listener.local_addr()?);
            inet_listeners.push(listener);
        }
        for path in &config.unix {
            if std::fs::metadata(path).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_socket()
            }) {
                std::fs::remove_file(path)?;
            }
            let listener = std::os::unix::net::UnixListener::bind(path)?;
            listener.set_nonblocking(true)?;
            unix_listeners.push(listener);
        }
        // Its blocking pool (the policy fetches) is named after the server too.
        let runtime =
            tokio::runtime::Builder::new_current_thread().thread_name("socketmap-blk").enable_all().build()?;
        let shared = Arc::new(Shared {
            zones: RwLock::new(Arc::new(config.zones)),
            replies: Replies { ttl: config.reply_ttl.min(MAX_REPLY_TTL), kept: Mutex::default() },
            observer: config.observer,
            stop: AtomicBool::new(false),
            stopped: Notify::new(),
            active: AtomicUsize::new(0),
            idle_timeout: config.idle_timeout.max(MIN_TIMEOUT),
            request_timeout: config.request_timeout.max(MIN_TIMEOUT),
            max_connections: config.max_connections,
        });
        // The listeners join the runtime inside it (tokio needs its context).
        let (tcp, unix) = {
            let _context = runtime.enter();
            let tcp =
                inet_listeners.into_iter().map(tokio::net::TcpListener::from_std).collect::<io::Result<Vec<_>>>()?;
            let unix =
                unix_listeners.into_iter().map(tokio::net::UnixListener::from_std).collect::<io::Result<Vec<_>>>()?;
            (tcp, unix)
        };
        let loop_shared = Arc::clone(&shared);
        let thread = thread::Builder::new().name("socketmap".into()).spawn(move || {
            let shared = loop_shared;
            runtime.block_on(async {
                let mut accepting = Vec::new();
                for listener in tcp {
                    accepting.push(tokio::spawn(accept(Arc::clone(&shared), Listener::Tcp(listener))));
                }
                for listener in unix {
                    accepting.push(tokio::spawn(accept(Arc::clone(&shared), Listener::Unix(listener))));
                }
                for task in accepting {
                    let _ = task.await;
                }
            });
            // Connections still open get a moment to finish their answer.
            runtime.shutdown_timeout(Duration::from_secs(1));
        })?;
        Ok(Self { inet, unix: config.unix, snapshot_dir: config.snapshot_dir, shared, thread: Some(thread) })
    }

    /// The zones served now.
    pub fn zones(&self) -> Arc<HashMap<String, Zone>> {
        self.shared.zones()
    }

    /// Serves `zones` from now on (a configuration reload): requests being
    /// answered finish with the old ones, kept replies are forgotten. To
    /// keep a zone's cached policies, build its new resolver's cache from
    /// the old one (e.g. [`PolicyCache::snapshot`](crate::cache::PolicyCache::snapshot)
    /// and [`restore`](crate::cache::PolicyCache::restore)).
    pub fn replace_zones(&self, zones: HashMap<String, Zone>) {
        *self.shared.zones.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(zones);
        self.shared.replies.clear();
    }

    /// The bound TCP addresses (with the ports the system chose for port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.inet
    }

    /// Connections being served now.
    pub fn connections(&self) -> usize {
        self.shared.active.load(Ordering::Acquire)
    }

    /// Saves every zone's cache snapshot now; the errors, by zone.
    pub fn save_snapshots(&self) -> Vec<(String, String)> {
        let Some(dir) = &self.snapshot_dir else { return Vec::new() };
        let now = SystemTime::now();
        let mut errors = Vec::new();
        for (name, zone) in self.zones().iter() {
            if let Err(e) = save_snapshot(zone.resolver.cache(), &snapshot_path(dir, name), now) {
                tracing::warn!(zone = %name, "cache snapshot not saved: {e}");
                errors.push((name.clone(), e.to_string()));
            }
        }
        errors
    }

    /// Stops accepting connections, gives open ones a second to finish,
    /// saves the snapshots and removes the UNIX-domain sockets.
    pub fn shutdown(mut self) -> Vec<(String, String)> {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.stopped.notify_waiters();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for path in &self.unix {
            let _ = std::fs::remove_file(path);
        }
        self.save_snapshots()
    }
}

/// The snapshot file of a zone: `<name>.snapshot`, the name encoded
/// injectively (lower-case letters, digits and `-` as they are, every
/// other byte as `_` and two hex digits), so that two map names never share
/// a file, on case-insensitive file systems too.
pub fn snapshot_path(dir: &Path, zone: &str) -> PathBuf {
    let mut safe = String::with_capacity(zone.len());
    for b in zone.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' {
            safe.push(char::from(b));
        } else {
            safe.push_str(&format!("_{b:02x}"));
        }
    }
    dir.join(format!("{safe}.snapshot"))
}

enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

/// Accepts connections until the server stops.
async fn accept(shared: Arc<Shared>, listener: Listener) {
    loop {
        let stopped = shared.stopped.notified();
        let mut stopped = std::pin::pin!(stopped);
        stopped.as_mut().enable();
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let accepted = async {
            match &listener {
                Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
                    // One small reply per request: no Nagle delay.
                    let _ = s.set_nodelay(true);
                    Stream::Tcp(s)
                }),
                Listener::Unix(l) => l.accept().await.map(|(s, _)| Stream::Unix(s)),
            }
        };
        match select(std::pin::pin!(accepted), stopped).await {
            Either::Left((Ok(stream), _)) => spawn_connection(&shared, stream),
            // Out of file descriptors or a connection reset before accept:
            // wait a moment rather than spin.
            Either::Left((Err(_), _)) => tokio::time::sleep(Duration::from_millis(10)).await,
            Either::Right(_) => return,
        }
    }
}

enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf).await,
            Self::Unix(s) => s.read(buf).await,
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.write_all(bytes).await,
            Self::Unix(s) => s.write_all(bytes).await,
        }
    }

    /// Writes what the socket takes now, without waiting: how many bytes.
    fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.try_write(bytes),
            Self::Unix(s) => s.try_write(bytes),
        }
    }
}

/// A connection's slot: given back when the connection's task ends,
/// however it ends (a panic included).
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shared {
    fn zones(&self) -> Arc<HashMap<String, Zone>> {
        Arc::clone(&self.zones.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn event(&self, event: ConnectionEvent) {
        if let Some(o) = &self.observer {
            o.connection(event);
        }
    }
}

fn spawn_connection(shared: &Arc<Shared>, stream: Stream) {
    if shared.active.fetch_add(1, Ordering::AcqRel) >= shared.max_connections {
        shared.active.fetch_sub(1, Ordering::AcqRel);
        shared.event(ConnectionEvent::OverLimit);
        // What the socket takes now, then close: a flood of connections over
        // the cap holds no task, no timer and no descriptor beyond this.
        let busy = encode(Reply::Temp("too many connections; retry".into()).to_string().as_bytes());
        let _ = stream.try_write(&busy);
        return;
    }
    shared.event(ConnectionEvent::Accepted);
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let _slot = Slot(&shared.active);
        serve(&shared, stream).await;
    });
}

/// Writes `bytes` whole within `timeout` (a client that never reads its
/// replies does not hold its slot).
async fn write_within(stream: &mut Stream, bytes: &[u8], timeout: Duration) -> bool {
    // A small reply almost always fits the socket's buffer at once: no timer
    // for it. What does not fit is written under the deadline.
    let sent = match stream.try_write(bytes) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(_) => return false,
    };
    sent == bytes.len() || matches!(tokio::time::timeout(timeout, stream.write_all(&bytes[sent..])).await, Ok(Ok(())))
}

/// A reply made now (not a kept one), told to the observer.
async fn fresh_answer(shared: &Shared, payload: &[u8], now: Instant) -> Arc<[u8]> {
    let zones = shared.zones();
    let answered = |zone, reply, result: Option<&Result<Plan, ResolveError>>| {
        if let Some(o) = &shared.observer {
            o.answered(&Answered {
                zone,
                reply,
                took: now.elapsed(),
                reused: false,
                plan: result.and_then(|r| r.as_ref().ok()),
                error: result.and_then(|r| r.as_ref().err()),
            });
        }
    };
    match query(&zones, payload) {
        Query::Done(reply) => {
            let (bytes, kind) = shared.replies.keep(payload, reply, now);
            answered(None, kind, None);
            bytes
        }
        Query::Resolve { zone, name, domain } => {
            let result = zone.resolver.inner().resolve_domain(&domain).await;
            let reply = reply_of(zone, name, &domain, &result);
            let (bytes, kind) = shared.replies.keep(payload, reply, now);
            answered(Some(name), kind, Some(&result));
            bytes
        }
    }
}

/// Serves requests until the peer closes, goes idle, sends garbage, takes
/// longer than the request timeout to send a request or to take a reply.
async fn serve(shared: &Shared, mut stream: Stream) {
    let mut buf: Vec<u8> = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    // When the first byte of the request in `buf` arrived.
    let mut started: Option<Instant> = None;
    loop {
        // Answer every complete request in the buffer.
        loop {
            match decode(&buf, MAX_REQUEST) {
                Ok(Some((payload, used))) => {
                    let now = Instant::now();
                    let reply = match shared.replies.kept(payload, now) {
                        Some(bytes) => {
                            if let Some(o) = &shared.observer {
                                // Only OK and NOTFOUND replies are kept.
                                let kind =
                                    if bytes.get(3..5) == Some(b"OK") { ReplyKind::Ok } else { ReplyKind::NotFound };
                                // A kept reply's request named a configured
                                // zone (others are never kept).
                                let zone = payload.split(|&b| b == b' ').next();
                                o.answered(&Answered {
                                    zone: zone.and_then(|z| std::str::from_utf8(z).ok()),
                                    reply: kind,
                                    took: now.elapsed(),
                                    reused: true,
                                    plan: None,
                                    error: None,
                                });
                            }
                            bytes
                        }
                        None => fresh_answer(shared, payload, now).await,
                    };
                    if !write_within(&mut stream, &reply, shared.request_timeout).await {
                        shared.event(ConnectionEvent::RequestTimeout);
                        return;
                    }
                    buf.drain(..used);
                    started = (!buf.is_empty()).then(Instant::now);
                }
                Ok(None) => break,
                Err(e) => {
                    shared.event(ConnectionEvent::Malformed);
                    let perm = encode(Reply::Perm(e.to_string()).to_string().as_bytes());
                    let _ = write_within(&mut stream, &perm, shared.request_timeout).await;
                    return;
                }
            }
        }
        if shared.stop.load(Ordering::Acquire) && buf.is_empty() {
            return;
        }
        // Idle between requests; within a request, what is left of its time.
        let timeout = match started {
            None => shared.idle_timeout,
            Some(at) => match shared.request_timeout.checked_sub(at.elapsed()) {
                Some(left) if left >= MIN_TIMEOUT => left,
                _ => {
                    shared.event(ConnectionEvent::RequestTimeout);
                    let perm = encode(b"PERM the request took too long to arrive");
                    let _ = write_within(&mut stream, &perm, shared.request_timeout).await;
                    return;
                }
            },
        };
        match tokio::time::timeout(timeout, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Err(_) => {
                shared.event(if started.is_some() { ConnectionEvent::RequestTimeout } else { ConnectionEvent::Idle });
                return;
            }
            Ok(Ok(n)) => {
                if buf.is_empty() {
                    started = Some(Instant::now());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_names_never_share_a_snapshot_file() {
        let dir = Path::new("/s");
        let names = ["rpt.a", "rpt_a", "rpt-a", "RPT.a", "rpt.A", "rpt a", "rpt/a", "rpt_2ea", "é", "_c3_a9"];
        let paths: std::collections::HashSet<String> =
            names.iter().map(|n| snapshot_path(dir, n).to_string_lossy().to_lowercase()).collect();
        assert_eq!(paths.len(), names.len(), "{paths:?}");
        assert_eq!(snapshot_path(dir, "postfix"), Path::new("/s/postfix.snapshot"));
        assert_eq!(snapshot_path(dir, "rpt.a"), Path::new("/s/rpt_2ea.snapshot"));
        assert_eq!(snapshot_path(dir, "../x"), Path::new("/s/_2e_2e_2fx.snapshot"));
    }

    #[test]
    fn kept_replies_stay_within_their_byte_budget() {
        let mut kept = KeptReplies::default();
        let now = Instant::now();
        let until = now + Duration::from_secs(60);
        let big: Arc<[u8]> = vec![b'x'; 99_000].into();
        for i in 0..2_000u32 {
            kept.keep(format!("postfix d{i}.example").as_bytes(), until, Arc::clone(&big), now);
            assert!(kept.bytes <= MAX_KEPT_REPLY_BYTES, "{} bytes after {i}", kept.bytes);
        }
        let counted: usize = kept.replies.iter().map(|(k, (_, r))| KeptReplies::cost(k, r)).sum();
        assert_eq!(counted, kept.bytes);
        // Small replies: many, and a replaced one is counted once.
        let mut small = KeptReplies::default();
        for _ in 0..3 {
            small.keep(b"postfix a.example", until, Arc::from(&b"9:NOTFOUND ,"[..]), now);
        }
        assert_eq!((small.replies.len(), small.bytes), (1, KeptReplies::cost(b"postfix a.example", b"9:NOTFOUND ,")));
        // An expired reply makes room first.
        let mut full = KeptReplies::default();
        full.keep(b"old", now, Arc::clone(&big), now);
        let share: Arc<[u8]> = vec![b'y'; MAX_KEPT_REPLY_BYTES / 16 - 200].into();
        for i in 0..16u32 {
            full.keep(format!("k{i}").as_bytes(), until, Arc::clone(&share), now);
        }
        assert!(!full.replies.contains_key(&b"old"[..]));
        assert!(full.bytes <= MAX_KEPT_REPLY_BYTES);
    }

    #[test]
    fn a_panicking_connection_gives_its_slot_back() {
        let active = Arc::new(AtomicUsize::new(1));
        let held = Arc::clone(&active);
        let ended = thread::spawn(move || {
            let _slot = Slot(&held);
            panic!("a bug in a connection thread");
        })
        .join();
        assert!(ended.is_err());
        assert_eq!(active.load(Ordering::Acquire), 0);
    }
}
