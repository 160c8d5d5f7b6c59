//! The policy cache's shared tier on Redis (feature `redis`): the nodes of
//! an MTA cluster see each other's fetched policies.
//!
//! One key per policy domain, `{prefix}:sts:v1:{domain}`, holding
//! `{"v":1,"id":…,"fetched_at":…,"policy":…}` (the policy in its canonical
//! text) with the policy's own expiry as the key's TTL. The local
//! [`PolicyCache`](super::PolicyCache) answers hits; Redis is asked on a
//! local miss and written after every fetch. A value read back is
//! validated like a snapshot: one that does not parse is ignored (and
//! counted, [`RedisStore::skipped`]), never applied — and since Redis is
//! only asked when the local cache holds no policy to apply, it can never
//! take a live local entry's place. Redis down or slow: each call fails
//! within the timeout, then at once for two seconds, and the cache
//! decides from what it holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::store::{CacheStore, StoreError, StoredPolicy};
use crate::name::DomainName;
use crate::redis_link::Link;
use crate::sts::{Policy, PolicyId};

/// The format version of the values (`"v"`).
const VERSION: u32 = 1;

/// The longest value read back: a stored policy at its bound, escaped in
/// JSON (a line end becomes two bytes), and the other members.
const MAX_VALUE: usize = 2 * crate::sts::MAX_STORED_POLICY_BYTES + 1_024;

#[derive(Serialize, Deserialize)]
struct Value {
    v: u32,
    id: String,
    fetched_at: u64,
    policy: String,
}

/// A [`CacheStore`] on Redis (see the module docs).
#[derive(Debug)]
pub struct RedisStore {
    link: Link,
    skipped: AtomicU64,
    /// Who holds this node's fetch leases.
    node: u64,
}

fn error(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError(Box::new(e))
}

impl RedisStore {
    /// A store at `url` (`redis://[user:password@]host:port/db`, or
    /// `rediss://` for TLS) under `prefix` (default
    /// [`DEFAULT_PREFIX`](crate::report::DEFAULT_PREFIX)), each call bounded
    /// by `timeout` (keep it short: a lookup waits for it on a local miss).
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
        let link = Link::open_with_root(url, prefix, timeout, root_pem)
            .map_err(|e| error(crate::report::StoreError::Unavailable(e)))?;
        // A number for this instance's leases: the process, the time and
        // a count of instances, mixed.
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let seed = u64::from(std::process::id()) ^ (nanos as u64) ^ (INSTANCES.fetch_add(1, Ordering::Relaxed) << 48);
        let node = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Ok(Self { link, skipped: AtomicU64::new(0), node })
    }

    /// Values read back that were not valid (ignored).
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Calls that failed (Redis down, slow or refusing): a metric.
    pub fn failures(&self) -> u64 {
        self.link.failures()
    }

    /// Whether the last call failed and sharing is paused.
    pub fn is_degraded(&self) -> bool {
        self.link.is_degraded()
    }

    fn key(&self, domain: &DomainName) -> String {
        self.link.key(&format!("sts:v{VERSION}:{domain}"))
    }
}

fn read(bytes: &str) -> Option<StoredPolicy> {
    let value: Value = serde_json::from_str(bytes).ok()?;
    if value.v != VERSION {
        return None;
    }
    let id = PolicyId::parse(&value.id).ok()?;
    let policy = Policy::parse_stored(value.policy.as_bytes()).ok()?;
    Some(StoredPolicy::new(id, Arc::new(policy), value.fetched_at))
}

impl CacheStore for RedisStore {
    fn load(&self, domain: &DomainName) -> Result<Option<StoredPolicy>, StoreError> {
        let key = self.key(domain);
        // At most MAX_VALUE bytes are read: a huge value planted in Redis
        // costs one bounded read, never the node's memory.
        // Bytes, not text: a cut may fall inside a character (that is a bad
        // value, not a failing Redis).
        let bytes: Vec<u8> =
            self.link.with(|c| redis::cmd("GETRANGE").arg(&key).arg(0).arg(MAX_VALUE).query(c)).map_err(error)?;
        if bytes.is_empty() {
            return Ok(None);
        }
        let fits = bytes.len() <= MAX_VALUE;
        match std::str::from_utf8(&bytes).ok().filter(|_| fits).and_then(read) {
            Some(stored) => Ok(Some(stored)),
            None => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%domain, "a policy value on Redis does not read back; ignored");
                Ok(None)
            }
        }
    }

    fn save(&self, domain: &DomainName, policy: &StoredPolicy) -> Result<(), StoreError> {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let ttl = policy.expires_at.saturating_sub(now);
        if ttl == 0 {
            return Ok(());
        }
        let value = Value {
            v: VERSION,
            id: policy.id.as_str().to_owned(),
            fetched_at: policy.fetched_at,
            policy: policy.policy.to_string(),
        };
        let json = serde_json::to_string(&value).unwrap_or_default();
        let key = self.key(domain);
        self.link.with(|c| redis::cmd("SET").arg(&key).arg(&json).arg("EX").arg(ttl).query::<()>(c)).map_err(error)
    }

    fn remove(&self, domain: &DomainName) -> Result<(), StoreError> {
        let key = self.key(domain);
        self.link.with(|c| redis::cmd("DEL").arg(&key).query::<()>(c)).map_err(error)
    }

    fn claim_fetch(&self, domain: &DomainName, ttl: Duration) -> Result<bool, StoreError> {
        let key = self.link.key(&format!("sts:v{VERSION}:fetch:{domain}"));
        self.link.lease(&key, self.node, ttl).map_err(error)
    }

    fn fetch_failed(&self, domain: &DomainName, ttl: Duration) -> Result<(), StoreError> {
        let key = self.link.key(&format!("sts:v{VERSION}:backoff:{domain}"));
        let fetch = self.link.key(&format!("sts:v{VERSION}:fetch:{domain}"));
        let secs = ttl.as_secs().max(1);
        self.link
            .with(|c| {
                redis::pipe()
                    .cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("EX")
                    .arg(secs)
                    .ignore()
                    .cmd("DEL")
                    .arg(&fetch)
                    .ignore()
                    .query::<()>(c)
            })
            .map_err(error)
    }

    fn fetch_backed_off(&self, domain: &DomainName) -> Result<bool, StoreError> {
        let key = self.link.key(&format!("sts:v{VERSION}:backoff:{domain}"));
        self.link.with(|c| redis::cmd("EXISTS").arg(&key).query::<bool>(c)).map_err(error)
    }
}
