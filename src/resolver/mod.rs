//! The one-call façade an MTA uses (feature `resolver`): DNS, the policy
//! fetch, the policy cache and the destination controls behind one
//! thread-safe object.
//!
//! [`PolicyResolver::resolve`] is async and runs on the caller's tokio
//! runtime (any flavour, with its IO and time drivers on:
//! `Builder::enable_all`, as `#[tokio::main]` does; the blocking HTTPS
//! fetch moves to its blocking pool); [`blocking::PolicyResolver`] wraps it with a small runtime of its
//! own for callers on plain threads, as `reqwest::blocking` does.
//!
//! [`PolicyResolver::resolve`] gathers the facts about a recipient domain —
//! the MTA-STS discovery (the `_mta-sts` TXT record, then the cache, which
//! fetches with single flight when it must; RFC 8461 §3.3, §5.1), the MX
//! hosts (RFC 5321 §5.1) and the TLSA facts of each (RFC 7672 §2.2) — and
//! returns the engine's [`Plan`]. Lookups are concurrent: the TXT and MX
//! lookups run together, and the TLSA lookups of all MX hosts together.
//! MTA-STS is looked up only for destinations whose profile turns it on,
//! TLSA only where DANE support is not `None`; a routed destination needs
//! no MX lookup.
//!
//! The facts are gathered by [`gather`](crate::discovery::gather)
//! with the crate's [`DnsResolver`] as its [`DnsLookup`](crate::discovery::DnsLookup)
//! and the HTTPS fetch as its [`PolicyFetch`]: the RFC rules live there, this
//! module only wires the IO and logs.
//!
//! [`PolicyResolver::refresh_due`] refreshes what the cache lists as due
//! (RFC 8461 §10.2: new TXT lookup, then a fetch); [`blocking::PolicyResolver::
//! start_refresher`] does that on a background thread.
//!
//! This is the one place in the crate that reads the system clock.
//!
//! # Policy domain of a route
//!
//! With [`Options::route_policy_domain`](crate::engine::Options), RFC 8461
//! §3.4 says the smart host's domain is the policy domain. The façade takes
//! the route host's name as written in the configuration as that domain
//! (write the route as the domain whose policy should apply).

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::StreamExt;

use crate::ParseError;
use crate::cache::{ApplyReason, CacheConfig, Decision, FetchFailure, NoPolicyReason, PolicyCache};
use crate::discovery::{self, Gathered, PolicyFetch, StsDiscovery, TxtFinding};
use crate::dns::{DnsConfig, DnsError, DnsResolver};
use crate::engine::{
    Delivery, DeliveryContext, DestinationControls, DomainFacts, HostResult, Outcome, Plan, StsFacts, Verdict,
};
use crate::fetch::{FetchConfig, FetchError, PolicyFetcher};
use crate::name::DomainName;
use crate::report::ResultType;
use crate::sts::Policy;

pub mod blocking;

/// Everything a [`PolicyResolver`] is made from.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ResolverConfig {
    /// DNS servers, DNSSEC mode and timeouts.
    pub(crate) dns: DnsConfig,
    /// Roots, timeout and proxy of the policy fetch.
    pub(crate) fetch: FetchConfig,
    /// Capacity, back-off and refresh rules of the policy cache.
    pub(crate) cache: CacheConfig,
    /// The destination controls (profiles and routes).
    pub(crate) controls: DestinationControls,
    /// The shared tier of the policy cache (a cluster's Redis).
    pub(crate) cache_store: Option<Arc<dyn crate::cache::CacheStore>>,
}

impl ResolverConfig {
    /// Sets the DNS configuration.
    pub fn dns(mut self, dns: DnsConfig) -> Self {
        self.dns = dns;
        self
    }

    /// Sets the fetch configuration.
    pub fn fetch(mut self, fetch: FetchConfig) -> Self {
        self.fetch = fetch;
        self
    }

    /// Sets the cache configuration.
    pub fn cache(mut self, cache: CacheConfig) -> Self {
        self.cache = cache;
        self
    }

    /// Backs the policy cache with a store the nodes of a cluster share
    /// (e.g. [`RedisStore`](crate::cache::RedisStore), feature `redis`): a
    /// domain this node does not hold is looked up there before a fetch,
    /// and every fetched policy is written there.
    pub fn cache_store(mut self, store: Arc<dyn crate::cache::CacheStore>) -> Self {
        self.cache_store = Some(store);
        self
    }

    /// The fetch configuration (to change one setting of it).
    pub fn fetch_config(&self) -> &FetchConfig {
        &self.fetch
    }

    /// Sets the destination controls.
    pub fn controls(mut self, controls: DestinationControls) -> Self {
        self.controls = controls;
        self
    }
}

/// Why a domain could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The recipient domain is not a valid domain name.
    #[error("recipient domain: {0}")]
    Domain(#[from] ParseError),
    /// A DNS lookup the façade needed outside a resolve failed; see
    /// [`DnsError::kind`].
    #[error("{0}")]
    Dns(#[from] DnsError),
    /// The MX lookup failed, the domain does not exist, or it accepts no
    /// mail ([`DnsError::kind`] says which). `sts` is what the MTA-STS
    /// discovery found meanwhile: a live policy stays in force whatever the
    /// MX answer was (an attacker who forges the MX RRset must not turn
    /// the policy off), so a caller that does its own MX lookup, such as
    /// the Postfix socketmap server, can still apply it.
    #[error("{error}")]
    Mx {
        /// The MX lookup's error.
        error: DnsError,
        /// The MTA-STS facts gathered alongside.
        sts: Box<StsFacts>,
    },
    /// The destination controls have errors
    /// ([`DestinationControls::validate`]): the first, and how many.
    #[error("resolver configuration: destination controls: {first} ({count} error(s) in all)")]
    Controls {
        /// The first error.
        first: Box<crate::engine::ConfigProblem>,
        /// How many errors there are.
        count: usize,
    },
    /// The fetch configuration cannot work.
    #[error("resolver configuration: {0}")]
    Fetch(#[source] FetchError),
    /// The runtime of a blocking resolver could not start.
    #[error("resolver configuration: cannot start the resolver's runtime: {0}")]
    Runtime(std::io::ErrorKind),
}

impl ResolveError {
    /// Whether trying again later may succeed (defer rather than bounce).
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Dns(e) | Self::Mx { error: e, .. } => e.is_temporary(),
            Self::Domain(_) | Self::Controls { .. } | Self::Fetch(_) | Self::Runtime(_) => false,
        }
    }

    /// The DNS error, if a lookup failed.
    pub fn dns_error(&self) -> Option<&DnsError> {
        match self {
            Self::Dns(e) | Self::Mx { error: e, .. } => Some(e),
            Self::Domain(_) | Self::Controls { .. } | Self::Fetch(_) | Self::Runtime(_) => None,
        }
    }

    /// The MTA-STS facts found while the MX lookup failed.
    pub fn sts(&self) -> Option<&StsFacts> {
        match self {
            Self::Mx { sts, .. } => Some(sts),
            _ => None,
        }
    }
}

/// What one [`PolicyResolver::refresh_due`] run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshReport {
    /// Domains the cache listed as due.
    pub due: usize,
    /// Policies fetched again successfully.
    pub refreshed: usize,
    /// Fetches that failed (the cached policies stay while they live).
    pub failed: usize,
}

/// The façade: thread-safe, cheap to clone (clones share everything).
/// Its async methods need a tokio runtime; see [`blocking`] for threads.
#[derive(Clone)]
pub struct PolicyResolver {
    inner: Arc<Inner>,
}

struct Inner {
    dns: DnsResolver,
    fetcher: PolicyFetcher,
    cache: PolicyCache,
    controls: DestinationControls,
    /// The cluster's shared store, for the cluster-wide single flight.
    store: Option<Arc<dyn crate::cache::CacheStore>>,
    fetch_timeout: std::time::Duration,
    backoff: std::time::Duration,
}

impl fmt::Debug for PolicyResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyResolver")
            .field("dns", &self.inner.dns)
            .field("cache", &self.inner.cache.stats())
            .finish()
    }
}

/// The fetch as discovery sees it: the policy host's addresses from the
/// resolver's own DNS (unless the fetch configuration names its own
/// lookup), then the blocking HTTPS request on the runtime's blocking pool.
struct Fetch<'a> {
    dns: &'a DnsResolver,
    fetcher: &'a PolicyFetcher,
    inner: &'a Inner,
}

fn secs_of(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// How often a node waiting for another node's fetch looks at the store.
const CLUSTER_POLL: std::time::Duration = std::time::Duration::from_millis(50);

impl Fetch<'_> {
    /// With a shared store: another node's failed fetch stops this one (the
    /// shared back-off); another node's fetch in progress is waited for, up
    /// to the fetch timeout, and its policy taken from the store. `None`:
    /// this node fetches (it holds the lease, or the store cannot say).
    async fn cluster(&self, domain: &DomainName) -> Option<Result<Policy, FetchFailure>> {
        let store = self.inner.store.as_ref()?;
        let started = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let deadline = tokio::time::Instant::now() + self.inner.fetch_timeout;
        let lease = self.inner.fetch_timeout + std::time::Duration::from_secs(5);
        loop {
            if store.fetch_backed_off(domain).unwrap_or(false) {
                let why = "another node of the cluster failed to fetch it; backing off";
                return Some(Err(FetchFailure::new(ResultType::StsPolicyFetchError, ClusterBackoff(why))));
            }
            match store.claim_fetch(domain, lease) {
                Ok(false) => {}
                // Ours, or Redis cannot say: fetch (alone, if need be).
                Ok(true) | Err(_) => return None,
            }
            // Another node fetches: its policy appears in the store.
            if let Ok(Some(stored)) = store.load(domain)
                && stored.fetched_at + 5 >= started
            {
                return Some(Ok((*stored.policy).clone()));
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(CLUSTER_POLL).await;
        }
    }
}

/// Why a fetch was not made: another node's failure.
#[derive(Debug)]
struct ClusterBackoff(&'static str);

impl fmt::Display for ClusterBackoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ClusterBackoff {}

impl PolicyFetch for Fetch<'_> {
    async fn fetch(&self, domain: &DomainName) -> Result<Policy, FetchFailure> {
        if let Some(decided) = self.cluster(domain).await {
            return decided;
        }
        let result = self.fetch_here(domain).await;
        if result.is_err()
            && let Some(store) = &self.inner.store
        {
            let _ = store.fetch_failed(domain, self.inner.backoff);
        }
        result
    }
}

impl Fetch<'_> {
    async fn fetch_here(&self, domain: &DomainName) -> Result<Policy, FetchFailure> {
        let addresses = if self.fetcher.has_lookup() {
            None
        } else {
            let host = DomainName::parse(&crate::sts::fetch::policy_host(domain)).ok();
            Some(match host {
                Some(host) => self.dns.connect_addresses(&host).await,
                None => Vec::new(),
            })
        };
        let (fetcher, domain) = (self.fetcher.clone(), domain.clone());
        let task = tokio::task::spawn_blocking(move || match addresses {
            Some(addresses) => fetcher.fetch_at(&domain, &addresses),
            None => fetcher.fetch(&domain),
        });
        match task.await {
            Ok(result) => result.map_err(FetchFailure::from),
            // The blocking task panicked or its runtime shut down.
            Err(e) => Err(FetchFailure::new(ResultType::StsPolicyFetchError, e)),
        }
    }
}

impl PolicyResolver {
    /// Makes a resolver. Fails on a DNS or fetch configuration that cannot
    /// work (see [`DnsResolver::new`] and [`PolicyFetcher::new`]) or on
    /// destination controls with errors ([`DestinationControls::validate`]).
    pub fn new(config: ResolverConfig) -> Result<Self, ResolveError> {
        let validation = config.controls.validate();
        if let Some(problem) = validation.errors.first() {
            return Err(ResolveError::Controls { first: Box::new(problem.clone()), count: validation.errors.len() });
        }
        let dns = DnsResolver::new(config.dns)?;
        let fetch_timeout = config.fetch.timeout;
        let fetcher = PolicyFetcher::new(config.fetch).map_err(ResolveError::Fetch)?;
        let backoff = config.cache.fetch_backoff;
        let cache = match &config.cache_store {
            Some(store) => PolicyCache::new(config.cache).with_store(Arc::clone(store)),
            None => PolicyCache::new(config.cache),
        };
        let inner =
            Inner { dns, fetcher, cache, controls: config.controls, store: config.cache_store, fetch_timeout, backoff };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The policy cache (inspect, purge, snapshot).
    pub fn cache(&self) -> &PolicyCache {
        &self.inner.cache
    }

    /// The DNS resolver.
    pub fn dns(&self) -> &DnsResolver {
        &self.inner.dns
    }

    /// The destination controls.
    pub fn controls(&self) -> &DestinationControls {
        &self.inner.controls
    }

    fn fetch(&self) -> Fetch<'_> {
        Fetch { dns: &self.inner.dns, fetcher: &self.inner.fetcher, inner: &self.inner }
    }

    /// The delivery plan for `domain` (a recipient domain, U-labels
    /// allowed): gathers the facts and asks the engine.
    ///
    /// Errors only when no plan can be made: an invalid domain, a failed or
    /// unusable MX lookup (temporary: defer), a domain that does not exist
    /// or a null MX (permanent: bounce); the MX errors carry the MTA-STS
    /// facts ([`ResolveError::sts`]). Failures of MTA-STS and TLSA lookups are facts
    /// the plan accounts for.
    pub async fn resolve(&self, domain: &str) -> Result<Plan, ResolveError> {
        let facts = self.facts(domain).await?;
        Ok(self.inner.controls.plan(&facts))
    }

    /// [`resolve`](Self::resolve) for a name already parsed.
    pub async fn resolve_domain(&self, domain: &DomainName) -> Result<Plan, ResolveError> {
        let facts = self.facts_of(domain).await?;
        Ok(self.inner.controls.plan(&facts))
    }

    /// The facts [`resolve`](Self::resolve) plans from.
    pub async fn facts(&self, domain: &str) -> Result<DomainFacts, ResolveError> {
        self.facts_of(&DomainName::parse(domain)?).await
    }

    /// [`facts`](Self::facts) for a name already parsed.
    pub async fn facts_of(&self, domain: &DomainName) -> Result<DomainFacts, ResolveError> {
        let inner = &self.inner;
        let wants = inner.controls.wants(domain);
        let gathered =
            discovery::gather(&inner.dns, &inner.cache, &self.fetch(), domain, &wants, SystemTime::now()).await;
        log_gathered(domain, &gathered);
        gathered.facts.map_err(|f| ResolveError::Mx { error: f.error, sts: Box::new(f.sts) })
    }

    /// The MTA-STS discovery alone for `domain` (the TXT record, then the
    /// cache, fetching if needed), whatever the destination's profile.
    pub async fn sts(&self, domain: &DomainName) -> Decision {
        let inner = &self.inner;
        let found = discovery::discover_sts(&inner.dns, &inner.cache, &self.fetch(), domain, SystemTime::now()).await;
        log_sts(&found);
        found.decision
    }

    /// Refreshes every policy the cache lists as due (RFC 8461 §10.2): a
    /// new TXT lookup, then a fetch unless the policy id is backing off.
    /// Up to 16 domains at a time. Run it every few minutes from a task of
    /// your own (or use [`blocking::PolicyResolver::start_refresher`]).
    pub async fn refresh_due(&self) -> RefreshReport {
        let due = self.inner.cache.due_for_refresh(SystemTime::now());
        let mut report = RefreshReport { due: due.len(), ..RefreshReport::default() };
        let results: Vec<Option<bool>> =
            futures_util::stream::iter(due).map(|d| self.refresh_one(d)).buffer_unordered(16).collect().await;
        for r in results.into_iter().flatten() {
            if r { report.refreshed += 1 } else { report.failed += 1 }
        }
        report
    }

    /// `Some(true)` refreshed, `Some(false)` failed, `None` no fetch needed.
    async fn refresh_one(&self, domain: DomainName) -> Option<bool> {
        let txt = discovery::sts_txt(&self.inner.dns, &domain).await;
        log_txt(&domain, &txt);
        let now = SystemTime::now();
        let Decision::Fetch { id } = self.inner.cache.refresh(&domain, txt.lookup(), now) else {
            return None;
        };
        if let Some(store) = &self.inner.store {
            // Another node refreshed it already: take its policy.
            let local = self.inner.cache.entry(&domain).and_then(|e| e.fetched_at);
            if let Ok(Some(stored)) = store.load(&domain)
                && stored.id == id
                && local.is_none_or(|t| stored.fetched_at > secs_of(t))
            {
                let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(stored.fetched_at);
                let _ = self.inner.cache.record_fetch(&domain, id, Ok((*stored.policy).clone()), at);
                return Some(true);
            }
            // Another node is refreshing it: its policy is taken next time.
            let lease = self.inner.fetch_timeout + std::time::Duration::from_secs(5);
            if let Ok(false) = store.claim_fetch(&domain, lease) {
                return None;
            }
        }
        let result = self.fetch().fetch(&domain).await;
        let ok = result.is_ok();
        let _ = self.inner.cache.record_fetch(&domain, id, result, now);
        Some(ok)
    }

    /// Ends a message's [`Delivery`]: its [`Outcome`] (verdict, MTA-STS
    /// outcome, TLS-RPT sessions), with the MTA-STS outcome logged as
    /// gateway operators read it: "MTA-STS policy for the domain (…)
    /// Successful." when the delivery met an applied policy, "… Failed."
    /// with the reason when it did not (info).
    pub fn finish(&self, delivery: Delivery<'_>, context: DeliveryContext) -> Outcome {
        let outcome = delivery.finish(context);
        log_outcome(&outcome);
        outcome
    }

    /// The engine's [`verdict`](crate::engine::verdict) for a message after
    /// the attempts on `plan`'s hosts (in plan order), logged as
    /// [`finish`](Self::finish) logs it. Prefer [`Plan::delivery`], which
    /// keeps the results in step with the hosts.
    pub fn verdict(&self, plan: &Plan, results: &[HostResult], context: DeliveryContext) -> Verdict {
        let mut delivery = plan.delivery();
        for result in results {
            if delivery.next_host().is_none() {
                break;
            }
            delivery.record_result(result.clone());
        }
        self.finish(delivery, context).verdict
    }
}

fn log_outcome(outcome: &Outcome) {
    if let Some(sts) = &outcome.sts {
        let (domain, id, mode) = (&sts.domain, &sts.id, sts.mode);
        if sts.met {
            tracing::info!(domain = %domain, id = %id, mode = %mode, "{sts}");
        } else {
            tracing::info!(domain = %domain, id = %id, mode = %mode, reason = %outcome.verdict.reason(), "{sts}");
        }
    }
}

/// The log lines of one discovery, as gateway operators read them.
fn log_gathered(domain: &DomainName, gathered: &Gathered) {
    if let Some(found) = &gathered.sts {
        log_sts(found);
    }
    if let Some(mx) = &gathered.mx {
        crate::dns::log_mx(domain, mx);
    }
}

fn log_sts(found: &StsDiscovery) {
    log_txt(&found.domain, &found.txt);
    log_decision(&found.domain, &found.decision);
}

/// The TXT lookup, at debug: it is made for every answer and says nothing
/// new when the decision stays the same (the decision's own line does).
fn log_txt(domain: &DomainName, txt: &TxtFinding) {
    match txt {
        TxtFinding::Record(record) => tracing::debug!(domain = %domain, id = %record.id(),
            "Successfully fetched MTA-STS TXT record for domain ({domain})"),
        TxtFinding::NoRecord => tracing::debug!(domain = %domain, "No MTA-STS TXT record for domain ({domain})"),
        TxtFinding::Invalid(e) => {
            tracing::debug!(domain = %domain, reason = %e, "Invalid MTA-STS TXT record for domain ({domain})")
        }
        TxtFinding::Failed(e) => {
            tracing::debug!(domain = %domain, reason = %e, "Failed to fetch MTA-STS TXT record for domain ({domain})")
        }
    }
}

/// One info line when the decision changes — a policy fetched and applied
/// (new, or a new id), or a fetch that failed with no live policy left —
/// and debug lines for every answer from the cache (RFC 8461 §3.3 hits,
/// a live policy kept through a TXT or fetch failure, a back-off).
fn log_decision(domain: &DomainName, decision: &Decision) {
    match decision {
        Decision::Apply { policy, id, reason: ApplyReason::Fetched } => {
            tracing::info!(domain = %domain, id = %id, mode = %policy.mode(),
                "Applying MTA-STS policy for the domain ({domain})");
        }
        Decision::Apply { policy, id, reason } => {
            if *reason == ApplyReason::SameId {
                tracing::debug!(domain = %domain, id = %id, "Valid cache entry found for the domain ({domain})");
            }
            tracing::debug!(domain = %domain, id = %id, mode = %policy.mode(),
                "Applying MTA-STS policy for the domain ({domain})");
        }
        Decision::NoPolicy(NoPolicyReason::FetchFailed(failure)) => {
            tracing::info!(domain = %domain, reason = %failure, "No MTA-STS policy applies to the domain ({domain})");
        }
        _ => {}
    }
}
