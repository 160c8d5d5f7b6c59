//! The MTA-STS policy cache (RFC 8461 §3.3, §5.1, §10): where downgrade
//! attacks are won or lost.
//!
//! The cache does no IO and never reads the clock. It answers two
//! questions:
//!
//! - [`PolicyCache::decide`]: given the outcome of the `_mta-sts` TXT lookup
//!   and `now`, apply a policy (and why), fetch one (with the id), or
//!   apply none (and why);
//! - [`PolicyCache::record_fetch`]: given the result of that fetch, what
//!   applies now.
//!
//! [`PolicyCache::lookup`] drives both around a fetch function the caller
//! supplies, with a single-flight guard: concurrent lookups of one domain
//! make one fetch and all get its answer.
//!
//! The rules (each a named test):
//!
//! - same id and not expired: use the cache, no fetch (§3.3);
//! - id changed, entry expired, or no entry: fetch (§3.3, §5.1);
//! - a failed fetch never evicts a live entry (§5.1, §10);
//! - without a live entry a failed fetch gives no policy, and that
//!   (domain, id) is not fetched again for [`CacheConfig::fetch_backoff`]
//!   (default 5 minutes);
//! - a missing, invalid or failing TXT lookup keeps a live entry in force
//!   (§5.1, §10.2), and a due proactive refresh then fetches with the
//!   cached id (an attacker who blocks the TXT lookup cannot wait for the
//!   policy to expire; withdrawal is by `mode: none`, §8.3);
//! - back-offs are kept per (domain, id), the [`MAX_BACKOFFS`] latest ids
//!   of a domain, in a map of their own bounded by the capacity: domains
//!   whose fetches fail never evict a live policy, and when the cache is
//!   full its expired policies go before least recently used live ones;
//! - a fetched `mode: none` replaces the entry (§8.3);
//! - an entry expires at fetch time + `max_age` (after the clamp); with
//!   `max_age: 0` the policy applies to the delivery that fetched it only;
//! - an expired policy never applies.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, SystemTime};
//! use smtp_tls_policy::cache::{Decision, PolicyCache, TxtLookup};
//! use smtp_tls_policy::name::DomainName;
//! use smtp_tls_policy::sts::{Policy, PolicyId};
//!
//! let cache = PolicyCache::default();
//! let domain = DomainName::parse("example.com").unwrap();
//! let id = PolicyId::parse("20160831085700Z").unwrap();
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
//!
//! // First delivery: nothing cached, so fetch.
//! assert_eq!(cache.decide(&domain, TxtLookup::Record(id), now), Decision::Fetch { id });
//! let policy = Policy::parse("version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n").unwrap();
//! let applied = cache.record_fetch(&domain, id, Ok(policy), now);
//! assert!(applied.policy().is_some());
//!
//! // An hour later, same id: the cached policy, no fetch.
//! let later = now + Duration::from_secs(3600);
//! assert!(matches!(cache.decide(&domain, TxtLookup::Record(id), later), Decision::Apply { .. }));
//! // The TXT record vanished (an attacker?): the live policy still applies.
//! assert!(cache.decide(&domain, TxtLookup::NoRecord, later).policy().is_some());
//! ```

mod flight;
mod lru;
mod rules;
mod snapshot;
mod store;

use flight::Flight;
pub use flight::{Begin, FetchTicket, FlightWait};
pub use rules::MAX_BACKOFFS;
use rules::{Cached, Entry, Failed, Failures, backing_off};
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ResultType;
use crate::name::DomainName;
use crate::sts::{Policy, PolicyId};

use lru::{Lru, Weighed};

#[cfg(feature = "fs")]
pub(crate) use snapshot::write_atomically;
pub use snapshot::{Restored, SnapshotError};
#[cfg(feature = "fs")]
pub use snapshot::{load_snapshot, save_snapshot};
pub use store::{CacheStore, MemoryStore, StoreError, StoredPolicy};
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
pub use redis::RedisStore;

/// The outcome of the `_mta-sts` TXT lookup for a domain (RFC 8461 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxtLookup {
    /// Exactly one valid record, with this id.
    Record(PolicyId),
    /// No record beginning with `v=STSv1` (NXDOMAIN, NODATA, or none of
    /// that version).
    NoRecord,
    /// Several records, or one that does not parse.
    Invalid,
    /// The lookup failed (SERVFAIL, timeout, bogus DNSSEC).
    Failed,
}

/// Why a fetch failed: its TLS-RPT result type and the underlying error.
#[derive(Debug, Clone)]
pub struct FetchFailure {
    result_type: ResultType,
    error: Arc<dyn std::error::Error + Send + Sync>,
}

impl FetchFailure {
    /// A failure with its TLS-RPT result type (`sts-policy-fetch-error`,
    /// `sts-webpki-invalid` or `sts-policy-invalid`) and cause.
    pub fn new(result_type: ResultType, error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self { result_type, error: Arc::new(error) }
    }

    /// A policy body that did not parse (`sts-policy-invalid`).
    pub fn invalid(error: crate::ParseError) -> Self {
        Self::new(ResultType::StsPolicyInvalid, error)
    }

    /// The TLS-RPT result type.
    pub fn result_type(&self) -> ResultType {
        self.result_type
    }

    /// The underlying error.
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.error
    }
}

impl PartialEq for FetchFailure {
    /// Failures compare by result type and message.
    fn eq(&self, other: &Self) -> bool {
        self.result_type == other.result_type && self.error.to_string() == other.error.to_string()
    }
}

impl Eq for FetchFailure {}

impl fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.error, self.result_type)
    }
}

/// Why a cached or fetched policy applies.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApplyReason {
    /// Just fetched (RFC 8461 §3.3).
    Fetched,
    /// Cached, not expired, and the TXT id is unchanged (RFC 8461 §3.3).
    SameId,
    /// The TXT id changed but the fetch failed (now or within the back-off);
    /// the cached policy is still live (RFC 8461 §5.1).
    FetchFailed(FetchFailure),
    /// No TXT record now, but the cached policy is live (RFC 8461 §5.1).
    TxtMissing,
    /// The TXT RRset is invalid now, but the cached policy is live.
    TxtInvalid,
    /// The TXT lookup failed, but the cached policy is live.
    TxtLookupFailed,
}

/// Why no policy applies: deliver as if the domain had no MTA-STS
/// (RFC 8461 §3.3, §5).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoPolicyReason {
    /// No TXT record and nothing live cached.
    NoTxtRecord,
    /// An invalid TXT RRset and nothing live cached.
    TxtInvalid,
    /// The TXT lookup failed and nothing live cached.
    TxtLookupFailed,
    /// The fetch failed and nothing live cached.
    FetchFailed(FetchFailure),
    /// The fetch for this id failed recently; it is not retried before
    /// `until` (seconds since the Unix epoch).
    Backoff {
        /// The failure that started the back-off.
        failure: FetchFailure,
        /// When a fetch may be tried again, seconds since the Unix epoch.
        until: u64,
    },
}

/// What the cache says to do.
#[must_use = "the decision says which policy applies"]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Apply this policy (its mode may be `none`, which applies nothing).
    Apply {
        /// The policy.
        policy: Arc<Policy>,
        /// Its id.
        id: PolicyId,
        /// Why it applies.
        reason: ApplyReason,
    },
    /// Fetch the policy for this id, then call
    /// [`PolicyCache::record_fetch`].
    Fetch {
        /// The id the TXT record carries.
        id: PolicyId,
    },
    /// No policy applies.
    NoPolicy(NoPolicyReason),
}

impl Decision {
    /// The policy that applies, if any.
    pub fn policy(&self) -> Option<&Arc<Policy>> {
        match self {
            Self::Apply { policy, .. } => Some(policy),
            _ => None,
        }
    }
}

/// Cache settings. `Default` gives the values of DESIGN.md.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// The most domains held (default 100 000). When an insert goes over,
    /// expired policies go first, then the least recently used entries of
    /// the inserting shard; an entry being fetched is never evicted. The
    /// back-offs of failed fetches are bounded by the same number, apart.
    pub(crate) capacity: usize,
    /// How long a failed fetch of one (domain, id) suppresses another
    /// (default 5 minutes).
    pub(crate) fetch_backoff: Duration,
    /// Refresh a live policy this long after it was fetched (default 24 h;
    /// RFC 8461 §10.2 suggests daily).
    pub(crate) refresh_interval: Duration,
    /// Refresh a live policy when less than this fraction of its `max_age`
    /// is left (default 0.5).
    pub(crate) refresh_fraction: f64,
    /// Each domain's refresh comes up to this much later than the rules
    /// above say (default one hour), by a per-domain delay drawn at random
    /// for this process: RFC 8461 §10.2 refreshes are spread out, not made
    /// all at once after a restart or a burst of new domains. The delay is
    /// capped at half the time the fraction rule leaves.
    pub(crate) refresh_spread: Duration,
    /// Number of independently locked shards (default 64; rounded up to a
    /// power of two). The LRU order is exact within a shard; with one shard
    /// it is exact for the whole cache.
    pub(crate) shards: usize,
    /// The most bytes of policies held (default 128 MiB), each policy
    /// counted as the bytes its fields hold (patterns, extensions) plus a
    /// fixed overhead ([`POLICY_OVERHEAD`]):
    /// 100 000 real policies take about 30 MB, while as many hostile 64 KiB
    /// ones would take 6.5 GB. Each shard keeps its share; over it, least
    /// recently used policies go (an entry being fetched, and the one just
    /// stored, stay).
    pub(crate) max_bytes: usize,
}

/// What a cached policy costs beyond its text, for
/// [`CacheConfig::max_bytes`]: the entry, its domain and the LRU node.
pub const POLICY_OVERHEAD: usize = 256;

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            fetch_backoff: Duration::from_secs(300),
            refresh_interval: Duration::from_secs(86_400),
            refresh_fraction: 0.5,
            refresh_spread: Duration::from_secs(3_600),
            shards: 64,
            max_bytes: 128 << 20,
        }
    }
}

impl CacheConfig {
    /// Sets [`capacity`](Self::capacity).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets [`fetch_backoff`](Self::fetch_backoff).
    pub fn fetch_backoff(mut self, backoff: Duration) -> Self {
        self.fetch_backoff = backoff;
        self
    }

    /// Sets [`refresh_interval`](Self::refresh_interval).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// Sets [`refresh_fraction`](Self::refresh_fraction), clamped to 0–1.
    pub fn refresh_fraction(mut self, fraction: f64) -> Self {
        self.refresh_fraction = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
        self
    }

    /// Sets [`refresh_spread`](Self::refresh_spread) (zero: no spread).
    pub fn refresh_spread(mut self, spread: Duration) -> Self {
        self.refresh_spread = spread;
        self
    }

    /// Sets [`shards`](Self::shards).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// Sets [`max_bytes`](Self::max_bytes).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }
}

/// A policy's cost: the bytes its patterns and extensions hold (with their
/// allocations) and the fixed overhead.
pub(super) fn policy_bytes(policy: &Policy) -> usize {
    let mx: usize = policy.mx().iter().map(|p| p.base().as_str().len() + 2 + 16).sum();
    let ext: usize = policy.extensions().iter().map(|e| e.name().len() + e.value().len() + 48).sum();
    POLICY_OVERHEAD + mx + ext
}

impl Weighed for Entry {
    fn weight(&self) -> usize {
        self.policy.as_ref().map_or(0, |c| c.bytes)
    }
}

impl Weighed for Failures {
    fn weight(&self) -> usize {
        0
    }
}

#[derive(Default)]
struct Counters {
    hits: u64,
    misses: u64,
    fetches: u64,
    evictions: u64,
}

struct Shard {
    entries: Lru<Entry>,
    /// Failed fetches by domain, bounded on their own (LRU).
    failures: Lru<Failures>,
    flights: HashMap<DomainName, (PolicyId, Arc<Flight>)>,
    counters: Counters,
    /// When expired policies were last swept out (seconds since the epoch).
    swept: u64,
}

impl Shard {
    fn failed(&self, domain: &DomainName) -> &[Failed] {
        self.failures.peek(domain).map_or(&[], Vec::as_slice)
    }

    /// Starts the back-off of `failed.id` for `domain`, keeping at most
    /// [`MAX_BACKOFFS`] ids per domain and `capacity` domains.
    fn note_failure(&mut self, domain: &DomainName, failed: Failed, now: u64, capacity: usize) {
        let list = self.failures.get_or_default(domain);
        list.retain(|f| f.id != failed.id && now < f.until);
        list.push(failed);
        if list.len() > MAX_BACKOFFS {
            list.remove(0);
        }
        self.failures.evict_to(capacity, true, |_| true);
    }

    /// Ends the back-off of `id` for `domain` (it was fetched).
    fn clear_failure(&mut self, domain: &DomainName, id: PolicyId) {
        if let Some(list) = self.failures.get_mut(domain) {
            list.retain(|f| f.id != id);
            if list.is_empty() {
                self.failures.remove(domain);
            }
        }
    }
}

/// What an operator sees of one cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryInfo {
    /// The policy domain.
    pub domain: DomainName,
    /// The cached policy and its id, live or expired.
    pub policy: Option<(PolicyId, Arc<Policy>)>,
    /// When it was fetched (to the second).
    pub fetched_at: Option<SystemTime>,
    /// When it expires: fetched at + the clamped `max_age`.
    pub expires_at: Option<SystemTime>,
    /// The last failed fetch: the id, its failure, and the end of its
    /// back-off.
    pub last_failure: Option<(PolicyId, FetchFailure, SystemTime)>,
    /// Whether a fetch is in flight.
    pub fetching: bool,
}

/// Counters of the cache's work since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Domains held.
    pub entries: usize,
    /// Decisions that applied a cached policy.
    pub hits: u64,
    /// Decisions that needed a fetch.
    pub misses: u64,
    /// Fetches run by [`PolicyCache::lookup`].
    pub fetches: u64,
    /// Entries evicted to stay within capacity.
    pub evictions: u64,
}

/// A bounded, sharded, thread-safe MTA-STS policy cache keyed by policy
/// domain. See the [module docs](self) for the rules.
pub struct PolicyCache {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    config: CacheConfig,
    /// Entries held across all shards, kept within `config.capacity`.
    len: AtomicUsize,
    store: Option<Arc<dyn CacheStore>>,
}

impl Default for PolicyCache {
    fn default() -> Self {
        Self::new(CacheConfig::default())
    }
}

impl fmt::Debug for PolicyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyCache").field("config", &self.config).field("stats", &self.stats()).finish()
    }
}

/// Seconds since the epoch (the cache's own representation) as a time.
fn time(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A poisoned lock only means another thread panicked while holding it;
/// the entries stay consistent (every update is a single assignment).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PolicyCache {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Self {
        let count = config.shards.clamp(1, 1 << 16).next_power_of_two();
        let shards = (0..count)
            .map(|_| {
                Mutex::new(Shard {
                    entries: Lru::new(),
                    failures: Lru::new(),
                    flights: HashMap::new(),
                    counters: Counters::default(),
                    swept: 0,
                })
            })
            .collect();
        Self { shards, hasher: RandomState::new(), config, len: AtomicUsize::new(0), store: None }
    }

    /// Backs the cache with a shared store: a domain not held in memory is
    /// looked up there, and every fetched policy and purge is written
    /// through, so that a cluster of MTAs shares what each fetched.
    pub fn with_store(mut self, store: Arc<dyn CacheStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    fn shard(&self, domain: &DomainName) -> MutexGuard<'_, Shard> {
        let h = self.hasher.hash_one(domain);
        // The shard count is a power of two.
        lock(&self.shards[(h as usize) & (self.shards.len() - 1)])
    }

    /// When no policy applies, brings a live policy from the shared store into memory
    /// when it is newer than what is held. Returns whether it did.
    fn load_from_store(&self, shard: &mut Shard, domain: &DomainName, now: u64) -> bool {
        let Some(store) = &self.store else {
            return false;
        };
        let Ok(Some(stored)) = store.load(domain) else {
            return false;
        };
        let cached = stored.into_cached();
        if now >= cached.expires_at {
            return false;
        }
        let held = shard.entries.peek(domain).and_then(|e| e.policy.as_ref()).map(|c| c.fetched_at);
        if held.is_some_and(|at| at >= cached.fetched_at) {
            return false;
        }
        self.store_policy(shard, domain, cached, now);
        true
    }

    /// Holds `cached` as the policy of `domain` (a pinned entry keeps its
    /// pin), within the capacity and the byte budget.
    fn store_policy(&self, shard: &mut Shard, domain: &DomainName, cached: Cached, now: u64) {
        let before = shard.entries.len();
        if shard.entries.peek(domain).is_some() {
            shard.entries.modify(domain, |entry| entry.policy = Some(cached));
            self.track(shard, before, Some(now));
        } else {
            self.insert(shard, domain.clone(), Entry { policy: Some(cached), pinned: 0 }, now);
        }
    }

    fn insert(&self, shard: &mut Shard, domain: DomainName, entry: Entry, now: u64) {
        let before = shard.entries.len();
        shard.entries.insert(domain, entry);
        self.track(shard, before, Some(now));
    }

    /// Domains whose failed fetches one shard keeps (its share of the
    /// capacity).
    fn failure_capacity(&self) -> usize {
        self.config.capacity.max(1).div_ceil(self.shards.len())
    }

    /// Accounts for a change of the shard's size from `before`, keeps the
    /// shard within its share of [`CacheConfig::max_bytes`], then, when
    /// the whole cache is over capacity, evicts: first this shard's expired
    /// policies (swept at most once a second), then least recently used
    /// unpinned entries of this shard (never its most recent entry, the one
    /// just used), then of any other shard not locked right now.
    fn track(&self, shard: &mut Shard, before: usize, now: Option<u64>) {
        let after = shard.entries.len();
        if after >= before {
            self.len.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.len.fetch_sub(before - after, Ordering::Relaxed);
        }
        // Bytes: each shard keeps its share of the budget, newest entry kept.
        let budget = self.config.max_bytes / self.shards.len();
        if shard.entries.weight() > budget {
            let len = shard.entries.len();
            let evicted = shard.entries.evict_within(len, budget, true, |e| e.pinned == 0);
            self.len.fetch_sub(evicted, Ordering::Relaxed);
            shard.counters.evictions += evicted as u64;
        }
        let mut excess = self.len.load(Ordering::Relaxed).saturating_sub(self.config.capacity.max(1));
        if excess == 0 {
            return;
        }
        // Purges know no time: they sweep nothing.
        if let Some(now) = now.filter(|&now| shard.swept != now) {
            shard.swept = now;
            let dead = shard.entries.evict_to(0, true, |e| e.pinned == 0 && e.live(now).is_none());
            self.len.fetch_sub(dead, Ordering::Relaxed);
            shard.counters.evictions += dead as u64;
            excess = excess.saturating_sub(dead);
            if excess == 0 {
                return;
            }
        }
        let after = shard.entries.len();
        let evicted = shard.entries.evict_to(after.saturating_sub(excess), true, |e| e.pinned == 0);
        self.len.fetch_sub(evicted, Ordering::Relaxed);
        shard.counters.evictions += evicted as u64;
        excess -= evicted;
        // try_lock: waiting for another shard while holding this one could
        // deadlock, and this shard's own lock is held (so it is skipped).
        for other in &*self.shards {
            if excess == 0 {
                break;
            }
            let Ok(mut other) = other.try_lock() else { continue };
            let len = other.entries.len();
            let evicted = other.entries.evict_to(len.saturating_sub(excess), false, |e| e.pinned == 0);
            self.len.fetch_sub(evicted, Ordering::Relaxed);
            other.counters.evictions += evicted as u64;
            excess -= evicted;
        }
    }

    /// What to do for `domain` given the outcome of its TXT lookup at
    /// `now` (RFC 8461 §3.3, §5.1). See the [module docs](self).
    pub fn decide(&self, domain: &DomainName, txt: TxtLookup, now: SystemTime) -> Decision {
        let mut shard = self.shard(domain);
        self.decide_locked(&mut shard, domain, txt, secs(now))
    }

    /// [`decide`](Self::decide) when no fetch is needed; `None` (counted
    /// as nothing) when one is, to be done with [`lookup`](Self::lookup).
    /// Lets an async caller answer hits in place and move only fetches to
    /// a blocking thread.
    pub fn decide_unless_fetch(&self, domain: &DomainName, txt: TxtLookup, now: SystemTime) -> Option<Decision> {
        let mut shard = self.shard(domain);
        let decision = self.decide_uncounted(&mut shard, domain, txt, secs(now));
        if matches!(decision, Decision::Fetch { .. }) {
            return None;
        }
        count(&mut shard, &decision);
        Some(decision)
    }

    fn decide_locked(&self, shard: &mut Shard, domain: &DomainName, txt: TxtLookup, now: u64) -> Decision {
        let decision = self.decide_uncounted(shard, domain, txt, now);
        count(shard, &decision);
        decision
    }

    fn decide_uncounted(&self, shard: &mut Shard, domain: &DomainName, txt: TxtLookup, now: u64) -> Decision {
        let held = |shard: &mut Shard| {
            let Shard { entries, failures, .. } = shard;
            let failed = failures.peek(domain).map_or(&[][..], Vec::as_slice);
            match entries.get_mut(domain) {
                Some(entry) => entry.decide(txt, now, failed),
                None => Entry::default().decide(txt, now, failed),
            }
        };
        let mut decision = held(shard);
        // The shared store is asked only when the memory has no policy to
        // apply, so a hit never waits for it.
        if !matches!(decision, Decision::Apply { .. }) && self.load_from_store(shard, domain, now) {
            decision = held(shard);
        }
        decision
    }

    /// Records the result of fetching the policy `id` of `domain` at `now`
    /// and says what applies (RFC 8461 §3.3, §5.1). A success replaces the
    /// entry (a `mode: none` policy too); a failure keeps a live entry and
    /// starts the back-off for that id.
    pub fn record_fetch(
        &self,
        domain: &DomainName,
        id: PolicyId,
        result: Result<Policy, FetchFailure>,
        now: SystemTime,
    ) -> Decision {
        let mut shard = self.shard(domain);
        self.record_locked(&mut shard, domain, id, result, secs(now))
    }

    fn record_locked(
        &self,
        shard: &mut Shard,
        domain: &DomainName,
        id: PolicyId,
        result: Result<Policy, FetchFailure>,
        now: u64,
    ) -> Decision {
        let decision = match result {
            Ok(policy) => {
                let policy = Arc::new(policy);
                let cached = Cached::new(id, Arc::clone(&policy), now);
                shard.clear_failure(domain, id);
                self.store_policy(shard, domain, cached, now);
                Decision::Apply { policy, id, reason: ApplyReason::Fetched }
            }
            Err(failure) => {
                let until = now.saturating_add(self.config.fetch_backoff.as_secs());
                let failed = Failed { id, until, failure: failure.clone() };
                shard.note_failure(domain, failed, now, self.failure_capacity());
                // Peeked, not touched: a failure does not make a policy recent.
                match shard.entries.peek(domain) {
                    Some(entry) => entry.after_failure(failure, now),
                    None => Entry::default().after_failure(failure, now),
                }
            }
        };
        if let (Some(store), Decision::Apply { reason: ApplyReason::Fetched, .. }) = (&self.store, &decision)
            && let Some(Entry { policy: Some(cached), .. }) = shard.entries.peek(domain)
        {
            // A store that cannot be written loses only the sharing.
            let _ = store.save(domain, &StoredPolicy::from_cached(cached));
        }
        decision
    }

    /// [`decide`](Self::decide), and when a fetch is needed, `fetch` it and
    /// [`record_fetch`](Self::record_fetch) — with one fetch for any number
    /// of concurrent lookups of the same domain and id: the first caller
    /// runs `fetch`, the others wait for its answer. The entry is pinned
    /// (never evicted) while the fetch runs.
    ///
    /// `fetch` does the IO (the HTTPS request of RFC 8461 §3.3); `now` is
    /// the time of the lookup and is also used to record the result.
    pub fn lookup(
        &self,
        domain: &DomainName,
        txt: TxtLookup,
        now: SystemTime,
        fetch: impl FnOnce(PolicyId) -> Result<Policy, FetchFailure>,
    ) -> Decision {
        match self.begin(domain, txt, now) {
            Begin::Decided(decision) => decision,
            Begin::Wait(flight) => flight.wait(),
            Begin::Fetch(ticket) => {
                let id = ticket.id();
                // If `fetch` panics, the ticket's drop tells the waiters.
                ticket.finish(fetch(id))
            }
        }
    }

    /// [`lookup`](Self::lookup) in steps, for a caller whose fetch is
    /// async: [`Begin::Decided`] is the answer; [`Begin::Wait`] is another
    /// lookup's fetch of the same domain and id to wait for (a future, or
    /// [`FlightWait::wait`] on a thread); [`Begin::Fetch`] makes this caller
    /// the one that fetches and records the result with
    /// [`FetchTicket::finish`] (dropping the ticket abandons the fetch:
    /// the waiters get a failure without back-off).
    pub fn begin(&self, domain: &DomainName, txt: TxtLookup, now: SystemTime) -> Begin<'_> {
        let now = secs(now);
        let mut shard = self.shard(domain);
        let decision = self.decide_locked(&mut shard, domain, txt, now);
        let Decision::Fetch { id } = decision else {
            return Begin::Decided(decision);
        };
        if let Some((flying, flight)) = shard.flights.get(domain)
            && *flying == id
        {
            return Begin::Wait(FlightWait::new(Arc::clone(flight)));
        }
        let flight = Arc::new(Flight::default());
        shard.flights.insert(domain.clone(), (id, Arc::clone(&flight)));
        // A held entry is pinned; none is made for the fetch (a fetch
        // that fails must not take a live policy's place).
        if let Some(entry) = shard.entries.get_mut(domain) {
            entry.pinned += 1;
        }
        shard.counters.fetches += 1;
        Begin::Fetch(FetchTicket::new(self, domain.clone(), id, flight, now))
    }

    /// Domains whose live policy is due for a proactive refresh at `now`:
    /// fetched at least [`CacheConfig::refresh_interval`] ago, or with less
    /// than [`CacheConfig::refresh_fraction`] of `max_age` left, neither
    /// being fetched nor within the back-off of a failed fetch. Refresh each
    /// with [`refresh`](Self::refresh) after a new TXT lookup (RFC 8461
    /// §10.2).
    pub fn due_for_refresh(&self, now: SystemTime) -> Vec<DomainName> {
        let now = secs(now);
        let interval = self.config.refresh_interval.as_secs();
        let fraction = self.config.refresh_fraction;
        let spread = self.config.refresh_spread.as_secs();
        let mut due = Vec::new();
        for shard in &*self.shards {
            let shard = lock(shard);
            for (domain, entry) in shard.entries.iter() {
                let Some(c) = entry.live(now) else { continue };
                let lifetime = c.expires_at.saturating_sub(c.fetched_at);
                let left = c.expires_at.saturating_sub(now);
                let margin = fraction * lifetime as f64;
                // This domain's share of the spread, the same on every call.
                let delay = if spread == 0 { 0 } else { self.hasher.hash_one(domain) % (spread + 1) };
                let old = now.saturating_sub(c.fetched_at) >= interval.saturating_add(delay);
                let short = (left as f64) + (delay as f64).min(margin / 2.0) < margin;
                let failed_lately = shard.failed(domain).iter().any(|f| now < f.until);
                if (old || short) && entry.pinned == 0 && !failed_lately {
                    due.push(domain.clone());
                }
            }
        }
        due
    }

    /// A proactive refresh: like [`decide`](Self::decide), but a live
    /// policy is fetched again (to extend its lifetime before it expires)
    /// with its cached id when the TXT id is unchanged — and also when the
    /// TXT lookup fails, finds no record or an invalid one: an attacker who
    /// blocks the TXT lookup must not be able to wait for the policy to
    /// expire (withdrawal is by `mode: none`, RFC 8461 §8.3). Not while
    /// that id is backing off. Returns `Fetch` or what applies without one.
    pub fn refresh(&self, domain: &DomainName, txt: TxtLookup, now: SystemTime) -> Decision {
        let mut shard = self.shard(domain);
        let now = secs(now);
        let decision = self.decide_locked(&mut shard, domain, txt, now);
        let backing_off = |id| backing_off(shard.failed(domain), id, now).is_some();
        match decision {
            Decision::Apply {
                id,
                reason:
                    ApplyReason::SameId | ApplyReason::TxtMissing | ApplyReason::TxtInvalid | ApplyReason::TxtLookupFailed,
                ..
            } if !backing_off(id) => Decision::Fetch { id },
            other => other,
        }
    }

    /// What the cache holds for `domain`.
    pub fn entry(&self, domain: &DomainName) -> Option<EntryInfo> {
        let shard = self.shard(domain);
        info(&shard, domain)
    }

    /// Every entry, most recently used first within each shard (policies,
    /// then domains that have only failed fetches).
    pub fn entries(&self) -> Vec<EntryInfo> {
        let mut all = Vec::new();
        for shard in &*self.shards {
            let shard = lock(shard);
            let failure_only = shard.failures.iter().map(|(d, _)| d).filter(|d| shard.entries.peek(d).is_none());
            let domains: Vec<&DomainName> = shard.entries.iter().map(|(d, _)| d).chain(failure_only).collect();
            all.extend(domains.into_iter().filter_map(|d| info(&shard, d)));
        }
        all
    }

    /// Forgets `domain` (and removes it from the store): the operator's
    /// answer to a domain that changed its policy without changing the id.
    /// A fetch in flight still records its result. Returns whether anything
    /// was held.
    pub fn purge(&self, domain: &DomainName) -> bool {
        let mut shard = self.shard(domain);
        let before = shard.entries.len();
        let (held, pinned) = shard.entries.modify(domain, |e| (e.forget(), e.pinned > 0)).unwrap_or((false, false));
        if !pinned {
            shard.entries.remove(domain);
        }
        let held = shard.failures.remove(domain).is_some() || held;
        self.track(&mut shard, before, None);
        if let Some(store) = &self.store {
            let _ = store.remove(domain);
        }
        held
    }

    /// Forgets every domain held in memory (the store is left alone).
    pub fn purge_all(&self) {
        for shard in &*self.shards {
            let mut shard = lock(shard);
            let before = shard.entries.len();
            let domains: Vec<DomainName> = shard.entries.iter().map(|(d, _)| d.clone()).collect();
            for d in domains {
                let pinned = shard.entries.modify(&d, |e| {
                    e.forget();
                    e.pinned > 0
                }) == Some(true);
                if !pinned {
                    shard.entries.remove(&d);
                }
            }
            shard.failures = Lru::new();
            self.track(&mut shard, before, None);
        }
    }

    /// Counters and the number of domains held.
    pub fn stats(&self) -> CacheStats {
        let mut stats = CacheStats::default();
        for shard in &*self.shards {
            let shard = lock(shard);
            stats.entries +=
                shard.entries.len() + shard.failures.iter().filter(|(d, _)| shard.entries.peek(d).is_none()).count();
            stats.hits += shard.counters.hits;
            stats.misses += shard.counters.misses;
            stats.fetches += shard.counters.fetches;
            stats.evictions += shard.counters.evictions;
        }
        stats
    }

    /// Every live policy, for a snapshot.
    fn live_policies(&self, now: u64) -> Vec<(DomainName, Cached)> {
        let mut all = Vec::new();
        for shard in &*self.shards {
            let shard = lock(shard);
            all.extend(shard.entries.iter().filter_map(|(d, e)| e.live(now).map(|c| (d.clone(), c.clone()))));
        }
        all
    }

    /// Inserts restored policies that are newer than what is held; returns
    /// how many it inserted.
    fn restore_policies(&self, policies: Vec<(DomainName, Cached)>, now: u64) -> usize {
        let mut inserted = 0;
        for (domain, cached) in policies {
            let mut shard = self.shard(&domain);
            let newer = shard
                .entries
                .peek(&domain)
                .and_then(|e| e.policy.as_ref())
                .is_none_or(|held| held.fetched_at < cached.fetched_at);
            if newer {
                let entry = Entry { policy: Some(cached), pinned: 0 };
                self.insert(&mut shard, domain, entry, now);
                inserted += 1;
            }
        }
        inserted
    }
}

fn count(shard: &mut Shard, decision: &Decision) {
    match decision {
        Decision::Apply { .. } => shard.counters.hits += 1,
        Decision::Fetch { .. } => shard.counters.misses += 1,
        Decision::NoPolicy(_) => {}
    }
}

/// What is held for `domain`: its policy and its latest failed fetch.
fn info(shard: &Shard, domain: &DomainName) -> Option<EntryInfo> {
    let policy = shard.entries.peek(domain).and_then(|e| e.policy.as_ref());
    let last = shard.failed(domain).last();
    if policy.is_none() && last.is_none() {
        return None;
    }
    Some(EntryInfo {
        domain: domain.clone(),
        policy: policy.map(|c| (c.id, Arc::clone(&c.policy))),
        fetched_at: policy.map(|c| time(c.fetched_at)),
        expires_at: policy.map(|c| time(c.expires_at)),
        last_failure: last.map(|f| (f.id, f.failure.clone(), time(f.until))),
        fetching: shard.flights.contains_key(domain),
    })
}
