//! A store behind the cache, so that a cluster of MTAs can share the
//! policies each one fetched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Cached, lock};
use crate::name::DomainName;
use crate::sts::{Policy, PolicyId};

/// A fetched policy as a store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredPolicy {
    /// The TXT id it was fetched for.
    pub id: PolicyId,
    /// The policy.
    pub policy: Arc<Policy>,
    /// When it was fetched, seconds since the Unix epoch.
    pub fetched_at: u64,
    /// When it expires (fetch time + max_age), seconds since the Unix epoch.
    pub expires_at: u64,
}

impl StoredPolicy {
    /// A stored policy; `expires_at` is `fetched_at` + the policy's max_age.
    pub fn new(id: PolicyId, policy: Arc<Policy>, fetched_at: u64) -> Self {
        Self::from_cached(&Cached::new(id, policy, fetched_at))
    }

    pub(super) fn from_cached(c: &Cached) -> Self {
        Self { id: c.id, policy: Arc::clone(&c.policy), fetched_at: c.fetched_at, expires_at: c.expires_at }
    }

    /// The expiry is recomputed from the policy, whatever a store kept.
    pub(super) fn into_cached(self) -> Cached {
        Cached::new(self.id, self.policy, self.fetched_at)
    }
}

/// Why a store could not serve a request. The cache treats every store
/// error as "not in the store": sharing is lost, protection is not.
#[derive(Debug, thiserror::Error)]
#[error("policy store: {0}")]
pub struct StoreError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// A shared backend for [`PolicyCache`](super::PolicyCache): Redis, a
/// database, a file per domain. The cache reads it when it has no policy
/// to apply from memory (a fetch or no policy would follow), writes every
/// fetched policy through, and removes purged domains. Calls are made with a shard lock held, so they should
/// answer fast; a slow store slows lookups of the domains in that shard.
pub trait CacheStore: Send + Sync {
    /// The stored policy of `domain`, if any.
    fn load(&self, domain: &DomainName) -> Result<Option<StoredPolicy>, StoreError>;
    /// Stores (replaces) the policy of `domain`.
    fn save(&self, domain: &DomainName, policy: &StoredPolicy) -> Result<(), StoreError>;
    /// Forgets `domain`.
    fn remove(&self, domain: &DomainName) -> Result<(), StoreError>;

    /// Claims the fetch of `domain` for `ttl`, so that of the nodes sharing
    /// the store one fetches a new policy while the others wait for it:
    /// `true` for the node that fetches. A store of one node always says yes.
    fn claim_fetch(&self, domain: &DomainName, ttl: std::time::Duration) -> Result<bool, StoreError> {
        let _ = (domain, ttl);
        Ok(true)
    }

    /// Records that a fetch of `domain` failed, so that no node of the
    /// cluster fetches it again before `ttl` (the back-off of RFC 8461 §3.3
    /// hammering aside, shared).
    fn fetch_failed(&self, domain: &DomainName, ttl: std::time::Duration) -> Result<(), StoreError> {
        let _ = (domain, ttl);
        Ok(())
    }

    /// Whether a node's fetch of `domain` failed within its back-off.
    fn fetch_backed_off(&self, domain: &DomainName) -> Result<bool, StoreError> {
        let _ = domain;
        Ok(false)
    }
}

/// A [`CacheStore`] in memory, shared between caches of one process (and
/// a model for a real backend).
#[derive(Debug, Default)]
pub struct MemoryStore {
    policies: Mutex<HashMap<DomainName, StoredPolicy>>,
}

impl CacheStore for MemoryStore {
    fn load(&self, domain: &DomainName) -> Result<Option<StoredPolicy>, StoreError> {
        Ok(lock(&self.policies).get(domain).cloned())
    }

    fn save(&self, domain: &DomainName, policy: &StoredPolicy) -> Result<(), StoreError> {
        lock(&self.policies).insert(domain.clone(), policy.clone());
        Ok(())
    }

    fn remove(&self, domain: &DomainName) -> Result<(), StoreError> {
        lock(&self.policies).remove(domain);
        Ok(())
    }
}
