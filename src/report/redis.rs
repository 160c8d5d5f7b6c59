//! TLS-RPT state on Redis, shared by the nodes of an MTA cluster (feature
//! `redis`): counters that every node increments, leases so that one node
//! makes and sends each report, and the outbox.
//!
//! Keys (all under the configured prefix, default `stp`):
//!
//! ```text
//! {prefix}:tlsrpt:v1:windows               set of "start:length"
//! {prefix}:tlsrpt:v1:w:{start}:{length}    hash: field = a count key (JSON), value = the count
//! {prefix}:tlsrpt:v1:lease:{start}:{len}   the node making the window's reports (SET NX PX)
//! {prefix}:tlsrpt:v1:outbox                hash: report id → outbox entry (JSON)
//! {prefix}:tlsrpt:v1:send:{report id}      the node sending that entry (SET NX PX)
//! ```
//!
//! Every increment is `HINCRBY` inside one `MULTI`/`EXEC` with the window's
//! `SADD`: counts merge exactly, whatever the number of nodes, and a call
//! that fails counts nothing. Values read back are validated like cache
//! snapshots: a field that does not read is skipped (and counted, see
//! [`RedisReportStore::skipped`]), never applied. Every operation has a
//! timeout; when Redis is down, slow or unreachable the call fails with
//! [`StoreError::Unavailable`] at once and the connection is made again on
//! the next call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::Aggregator;
use super::collect::{Increment, ReportStore, StoreError, Window};
use super::deliver::OutboxEntry;
use super::encode::CountRecord;
use super::outbox::OutboxStore;
use crate::redis_link::Link;

pub use crate::redis_link::DEFAULT_PREFIX;

/// How long a window's counts stay in Redis after the window closes, if
/// no node reports them (a week).
const RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// A [`ReportStore`] on Redis (see the module docs for the keys).
#[derive(Debug)]
pub struct RedisReportStore {
    link: Link,
    skipped: AtomicU64,
}

impl RedisReportStore {
    /// A store at `url` (`redis://[user:password@]host:port/db`, or
    /// `rediss://` for TLS) under `prefix`, each operation bounded by
    /// `timeout`. Nothing is connected until the first call.
    pub fn open(url: &str, prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        Self::open_with_root(url, prefix, timeout, None)
    }

    /// [`open`](Self::open) for a `rediss://` server whose certificate
    /// chains to `root_pem` (PEM) rather than to the webpki roots.
    pub fn open_with_root(
        url: &str,
        prefix: &str,
        timeout: Duration,
        root_pem: Option<&[u8]>,
    ) -> Result<Self, StoreError> {
        let link = Link::open_with_root(url, prefix, timeout, root_pem).map_err(StoreError::Unavailable)?;
        Ok(Self { link, skipped: AtomicU64::new(0) })
    }

    /// Fields read back that were not valid, and so not counted.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    fn key(&self, rest: &str) -> String {
        self.link.key(&format!("tlsrpt:v1:{rest}"))
    }

    fn window_key(&self, w: Window) -> String {
        self.key(&format!("w:{}:{}", w.start_secs(), w.length_secs()))
    }
}

/// A count key: the increment without its window and count.
fn field(i: &Increment) -> String {
    let mut record = CountRecord::new(i.window, &i.policy, i.failure.as_ref(), 0);
    record.window = (0, 0);
    serde_json::to_string(&record).unwrap_or_default()
}

impl ReportStore for RedisReportStore {
    fn add(&self, increments: &[Increment]) -> Result<(), StoreError> {
        let windows = self.key("windows");
        self.link.with(|c| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for i in increments {
                let key = self.window_key(i.window);
                let count = i64::try_from(i.count).unwrap_or(i64::MAX);
                pipe.cmd("HINCRBY").arg(&key).arg(field(i)).arg(count).ignore();
                pipe.cmd("SADD")
                    .arg(&windows)
                    .arg(format!("{}:{}", i.window.start_secs(), i.window.length_secs()))
                    .ignore();
                let expire = i.window.length_secs() + RETENTION.as_secs();
                pipe.cmd("EXPIRE").arg(&key).arg(expire).ignore();
            }
            pipe.query::<()>(c)
        })
    }

    fn windows(&self) -> Result<Vec<Window>, StoreError> {
        let members: Vec<String> = self.link.with(|c| redis::cmd("SMEMBERS").arg(self.key("windows")).query(c))?;
        let mut windows: Vec<Window> = members
            .iter()
            .filter_map(|m| {
                let (start, length) = m.split_once(':')?;
                let window = Window::from_parts(start.parse().ok()?, length.parse().ok()?);
                if window.is_none() {
                    self.skipped.fetch_add(1, Ordering::Relaxed);
                }
                window
            })
            .collect();
        windows.sort();
        Ok(windows)
    }

    fn counts(&self, window: Window) -> Result<Aggregator, StoreError> {
        let fields: Vec<(String, String)> =
            self.link.with(|c| redis::cmd("HGETALL").arg(self.window_key(window)).query(c))?;
        let mut counts = Aggregator::new();
        for (f, n) in fields {
            let parsed = serde_json::from_str::<CountRecord>(&f).ok().and_then(|mut r| {
                r.window = (window.start_secs(), window.length_secs());
                let n: u64 = n.parse().ok()?;
                r.count = n;
                r.increment().ok()
            });
            match parsed {
                Some(i) if i.count > 0 => counts.add(&i.policy, i.failure.as_ref(), i.count),
                Some(_) => {}
                None => {
                    self.skipped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(counts)
    }

    fn remove(&self, window: Window) -> Result<(), StoreError> {
        let member = format!("{}:{}", window.start_secs(), window.length_secs());
        self.link.with(|c| {
            redis::pipe()
                .atomic()
                .cmd("DEL")
                .arg(self.window_key(window))
                .ignore()
                .cmd("SREM")
                .arg(self.key("windows"))
                .arg(&member)
                .ignore()
                .query::<()>(c)
        })
    }

    fn claim(&self, window: Window, node: u64, ttl: Duration) -> Result<bool, StoreError> {
        let key = self.key(&format!("lease:{}:{}", window.start_secs(), window.length_secs()));
        self.link.lease(&key, node, ttl)
    }
}

/// An [`OutboxStore`] on Redis: the entries in one hash, and a lease per
/// entry so that one node of the cluster sends it.
#[derive(Debug)]
pub struct RedisOutbox {
    link: Link,
    node: u64,
}

impl RedisOutbox {
    /// An outbox at `url` under `prefix` for the node `node` (see
    /// [`RedisReportStore::open`]).
    pub fn open(url: &str, prefix: &str, node: u64, timeout: Duration) -> Result<Self, StoreError> {
        Ok(Self { link: Link::open(url, prefix, timeout).map_err(StoreError::Unavailable)?, node })
    }
}

impl RedisOutbox {
    fn key(&self, rest: &str) -> String {
        self.link.key(&format!("tlsrpt:v1:{rest}"))
    }
}

impl OutboxStore for RedisOutbox {
    fn put(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        let json = serde_json::to_string(entry).unwrap_or_default();
        self.link
            .with(|c| redis::cmd("HSET").arg(self.key("outbox")).arg(&entry.report.report_id).arg(&json).query::<()>(c))
    }

    fn entries(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let all: Vec<(String, String)> = self.link.with(|c| redis::cmd("HGETALL").arg(self.key("outbox")).query(c))?;
        // One entry that does not read never stops the others.
        Ok(all.iter().filter_map(|(_, v)| serde_json::from_str(v).ok()).collect())
    }

    fn remove(&self, report_id: &str) -> Result<(), StoreError> {
        self.link.with(|c| redis::cmd("HDEL").arg(self.key("outbox")).arg(report_id).query::<()>(c))
    }

    fn claim(&self, report_id: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.link.lease(&self.key(&format!("send:{report_id}")), self.node, ttl)
    }
}
