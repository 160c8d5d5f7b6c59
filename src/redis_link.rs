//! One Redis connection, made on demand, with bounded timeouts and a
//! short pause after a failure (feature `redis`): what the cache store
//! and the TLS-RPT stores share.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "stp";

/// After a failure, calls fail at once for this long instead of waiting
/// for a timeout each (a lookup holds a cache shard lock while it asks).
const PAUSE: Duration = Duration::from_secs(2);

pub(crate) struct Link {
    client: redis::Client,
    state: Mutex<State>,
    timeout: Duration,
    prefix: String,
    failures: AtomicU64,
}

struct State {
    conn: Option<redis::Connection>,
    paused_until: Option<Instant>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("prefix", &self.prefix).field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl Link {
    /// A link to `url` (not connected yet); the error says why the URL is
    /// not usable, without its password.
    pub(crate) fn open(url: &str, prefix: &str, timeout: Duration) -> Result<Self, String> {
        Self::open_with_root(url, prefix, timeout, None)
    }

    /// [`open`](Self::open), trusting `root_pem` (PEM certificates) for a
    /// `rediss://` server instead of the webpki roots.
    pub(crate) fn open_with_root(
        url: &str,
        prefix: &str,
        timeout: Duration,
        root_pem: Option<&[u8]>,
    ) -> Result<Self, String> {
        let client = match root_pem {
            None => redis::Client::open(url),
            Some(pem) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates { client_tls: None, root_cert: Some(pem.to_vec()) },
            ),
        }
        .map_err(|e| format!("{}: {e}", redacted(url)))?;
        Ok(Self {
            client,
            state: Mutex::new(State { conn: None, paused_until: None }),
            timeout,
            prefix: prefix.to_owned(),
            failures: AtomicU64::new(0),
        })
    }

    /// `{prefix}:{rest}`.
    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    /// Failed calls so far (a metric: sharing is degraded while it grows).
    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Whether the last call failed and the link is pausing.
    pub(crate) fn is_degraded(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.paused_until.is_some_and(|t| Instant::now() < t)
    }

    /// Runs `f` on the connection, connecting first if needed. An error
    /// drops the connection and pauses the link.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, crate::report::StoreError> {
        use crate::report::StoreError;
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(until) = state.paused_until {
            if Instant::now() < until {
                return Err(StoreError::Unavailable(
                    "Redis unavailable (a recent call failed; retrying shortly)".into(),
                ));
            }
            state.paused_until = None;
        }
        let failed = |state: &mut State, why: String| {
            state.conn = None;
            state.paused_until = Some(Instant::now() + PAUSE);
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(prefix = %self.prefix, "sharing on Redis degraded, deciding from the local cache: {why}");
            StoreError::Unavailable(why)
        };
        if state.conn.is_none() {
            let conn = self.client.get_connection_with_timeout(self.timeout).and_then(|c| {
                c.set_read_timeout(Some(self.timeout))?;
                c.set_write_timeout(Some(self.timeout))?;
                Ok(c)
            });
            match conn {
                Ok(c) => state.conn = Some(c),
                Err(e) => return Err(failed(&mut state, format!("cannot reach Redis: {e}"))),
            }
        }
        let Some(conn) = state.conn.as_mut() else { return Err(StoreError::Unavailable("no connection".into())) };
        match f(conn) {
            Ok(v) => Ok(v),
            Err(e) => Err(failed(&mut state, format!("Redis: {e}"))),
        }
    }

    /// `SET key node NX PX ttl`, or the lease is already this node's.
    pub(crate) fn lease(&self, key: &str, node: u64, ttl: Duration) -> Result<bool, crate::report::StoreError> {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let holder = format!("{node:016x}");
        self.with(|c| {
            let set: Option<String> = redis::cmd("SET").arg(key).arg(&holder).arg("NX").arg("PX").arg(ms).query(c)?;
            if set.is_some() {
                return Ok(true);
            }
            let current: Option<String> = redis::cmd("GET").arg(key).query(c)?;
            Ok(current.as_deref() == Some(holder.as_str()))
        })
    }
}

/// The password of a `redis://user:password@host` URL, hidden for logs.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}
