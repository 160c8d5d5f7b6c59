//! The one-call façade an MTA uses (feature `resolver`): DNS, the policy
//! fetch, the policy cache and the destination controls behind one
//! thread-safe object.
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
//! [`PolicyResolver::refresh_due`] refreshes what the cache lists as due
//! (RFC 8461 §10.2: new TXT lookup, then a fetch); [`PolicyResolver::
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
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;

use crate::ParseError;
use crate::cache::{ApplyReason, CacheConfig, Decision, FetchFailure, NoPolicyReason, PolicyCache, TxtLookup};
use crate::dns::{DnsConfig, DnsError, DnsResolver, Rrset};
use crate::engine::{
    DaneSupport, DeliveryContext, DestinationControls, DnssecStatus, DomainFacts, HostResult, MxFacts, Plan,
    SecurityLevel, StsFacts, StsSupport, TlsaFacts, Verdict,
};
use crate::fetch::{FetchConfig, FetchError, PolicyFetcher};
use crate::name::DomainName;
use crate::report::ResultType;
use crate::sts::{Mode, TxtError, select_txt};

/// Everything a [`PolicyResolver`] is made from.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ResolverConfig {
    /// DNS servers, DNSSEC mode and timeouts.
    pub dns: DnsConfig,
    /// Roots, timeout and proxy of the policy fetch.
    pub fetch: FetchConfig,
    /// Capacity, back-off and refresh rules of the policy cache.
    pub cache: CacheConfig,
    /// The destination controls (profiles and routes).
    pub controls: DestinationControls,
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
    /// The resolver could not be made.
    #[error("resolver configuration: {0}")]
    Config(String),
    /// The resolve task ended without an answer (it panicked or its
    /// runtime shut down); temporary: the mail waits.
    #[error("the resolve task ended without an answer: {0}; retry later")]
    TaskEnded(String),
}

impl ResolveError {
    /// Whether trying again later may succeed (defer rather than bounce).
    pub fn is_temporary(&self) -> bool {
        match self {
            Self::Dns(e) | Self::Mx { error: e, .. } => e.is_temporary(),
            Self::TaskEnded(_) => true,
            Self::Domain(_) | Self::Config(_) => false,
        }
    }

    /// The DNS error, if a lookup failed.
    pub fn dns_error(&self) -> Option<&DnsError> {
        match self {
            Self::Dns(e) | Self::Mx { error: e, .. } => Some(e),
            Self::Domain(_) | Self::Config(_) | Self::TaskEnded(_) => None,
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
#[derive(Clone)]
pub struct PolicyResolver {
    inner: Arc<Inner>,
}

struct Inner {
    dns: DnsResolver,
    fetcher: PolicyFetcher,
    cache: PolicyCache,
    controls: DestinationControls,
}

impl fmt::Debug for PolicyResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyResolver")
            .field("dns", &self.inner.dns)
            .field("cache", &self.inner.cache.stats())
            .finish()
    }
}

impl PolicyResolver {
    /// Makes a resolver. Fails on a DNS or fetch configuration that cannot
    /// work (see [`DnsResolver::new`] and [`PolicyFetcher::new`]) or on
    /// destination controls with errors ([`DestinationControls::validate`]).
    pub fn new(config: ResolverConfig) -> Result<Self, ResolveError> {
        let validation = config.controls.validate();
        if let Some(problem) = validation.errors.first() {
            return Err(ResolveError::Config(format!(
                "destination controls: {problem} ({} error(s) in all)",
                validation.errors.len()
            )));
        }
        let dns = DnsResolver::new(config.dns)?;
        let mut fetch = config.fetch;
        if fetch.lookup.is_none() {
            // The policy host is found with the resolver's own DNS servers.
            let dns = dns.clone();
            fetch = fetch.lookup(move |host| {
                dns.host_addresses(host).into_iter().map(|ip| std::net::SocketAddr::new(ip, 443)).collect()
            });
        }
        let fetcher = PolicyFetcher::new(fetch).map_err(|e: FetchError| ResolveError::Config(e.to_string()))?;
        let cache = PolicyCache::new(config.cache);
        Ok(Self { inner: Arc::new(Inner { dns, fetcher, cache, controls: config.controls }) })
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

    /// The delivery plan for `domain` (a recipient domain, U-labels
    /// allowed): gathers the facts and asks the engine. Blocks; from async
    /// code use [`resolve_async`](Self::resolve_async).
    ///
    /// Errors only when no plan can be made: an invalid domain, a failed or
    /// unusable MX lookup (temporary: defer), a domain that does not exist
    /// or a null MX (permanent: bounce); the MX errors carry the MTA-STS
    /// facts ([`ResolveError::sts`]). Failures of MTA-STS and TLSA lookups are facts
    /// the plan accounts for.
    pub fn resolve(&self, domain: &str) -> Result<Plan, ResolveError> {
        let facts = self.facts(domain)?;
        Ok(self.inner.controls.plan(&facts))
    }

    /// [`resolve`](Self::resolve), awaitable from any executor.
    pub async fn resolve_async(&self, domain: &str) -> Result<Plan, ResolveError> {
        let facts = self.facts_async(domain).await?;
        Ok(self.inner.controls.plan(&facts))
    }

    /// The facts [`resolve`](Self::resolve) plans from.
    pub fn facts(&self, domain: &str) -> Result<DomainFacts, ResolveError> {
        self.facts_of(&DomainName::parse(domain)?)
    }

    /// [`facts`](Self::facts) for a name already parsed.
    pub fn facts_of(&self, domain: &DomainName) -> Result<DomainFacts, ResolveError> {
        let (this, name, domain) = (self.clone(), domain.to_string(), domain.clone());
        self.inner.dns.block(&name, "MX", async move { Ok(this.gather(domain).await) })?
    }

    /// [`facts`](Self::facts), awaitable from any executor.
    pub async fn facts_async(&self, domain: &str) -> Result<DomainFacts, ResolveError> {
        let domain = DomainName::parse(domain)?;
        let this = self.clone();
        let task = self.inner.dns.runtime().spawn(async move { this.gather(domain).await });
        task.await.map_err(|e| ResolveError::TaskEnded(e.to_string()))?
    }

    /// The MTA-STS discovery alone for `domain` (the TXT record, then the
    /// cache, fetching if needed), whatever the destination's profile.
    pub fn sts(&self, domain: &DomainName) -> Decision {
        let this = self.clone();
        let d = domain.clone();
        self.inner.dns.block(domain.as_str(), "TXT", async move { Ok(this.discover(&d).await) }).unwrap_or_else(|e| {
            tracing::warn!("{e}");
            Decision::NoPolicy(NoPolicyReason::TxtLookupFailed)
        })
    }

    async fn gather(self, domain: DomainName) -> Result<DomainFacts, ResolveError> {
        let inner = &self.inner;
        let profile = inner.controls.profile_for(&domain);
        let route = inner.controls.route_for(&domain).cloned();
        // RFC 8461 §3.4: a route's policy domain is the route host.
        let sts_domain = match &route {
            Some(host) if inner.controls.options().route_policy_domain => Some(host.clone()),
            Some(_) => None,
            None => Some(domain.clone()),
        };
        let sts = async {
            match (profile.sts, sts_domain) {
                (StsSupport::Off, _) | (_, None) => StsFacts::NotChecked,
                (_, Some(d)) => StsFacts::from(&self.discover(&d).await),
            }
        };
        let mx = async {
            if let Some(route) = &route {
                return Ok((vec![MxFacts::new(route.clone(), TlsaFacts::Unavailable)], DnssecStatus::Insecure));
            }
            let mx = inner.dns.query_mx(&domain).await?;
            let facts = if profile.dane == DaneSupport::None {
                mx.hosts.iter().map(|h| MxFacts::new(h.clone(), TlsaFacts::Unavailable)).collect()
            } else {
                inner.dns.facts_of_hosts(&mx.hosts).await
            };
            Ok::<_, DnsError>((facts, mx.status))
        };
        let (sts, mx) = futures_util::join!(sts, mx);
        let (mx, mx_dnssec) = match mx {
            Ok(mx) => mx,
            Err(error) => return Err(ResolveError::Mx { error, sts: Box::new(sts) }),
        };
        Ok(DomainFacts::new(domain, mx, mx_dnssec).with_sts(sts))
    }

    /// The `_mta-sts` TXT lookup as the cache wants it.
    async fn txt(&self, domain: &DomainName) -> TxtLookup {
        match self.inner.dns.query_txt(&format!("_mta-sts.{domain}")).await {
            Ok(answer) => match answer.rrset {
                Rrset::Records(records) => match select_txt(records.iter().map(String::as_str)) {
                    Ok(record) => {
                        tracing::info!(domain = %domain, id = %record.id(),
                            "Successfully fetched MTA-STS TXT record for domain ({domain})");
                        TxtLookup::Record(record.policy_id())
                    }
                    Err(TxtError::NoRecord) => TxtLookup::NoRecord,
                    Err(e) => {
                        tracing::info!(domain = %domain, reason = %e, "Invalid MTA-STS TXT record for domain ({domain})");
                        TxtLookup::Invalid
                    }
                },
                Rrset::NoData | Rrset::NxDomain => {
                    tracing::debug!(domain = %domain, "No MTA-STS TXT record for domain ({domain})");
                    TxtLookup::NoRecord
                }
            },
            Err(e) => {
                tracing::info!(domain = %domain, reason = %e, "Failed to fetch MTA-STS TXT record for domain ({domain})");
                TxtLookup::Failed
            }
        }
    }

    /// TXT, then the cache; a fetch runs on a blocking thread, one per
    /// domain and id however many resolves ask at once.
    async fn discover(&self, domain: &DomainName) -> Decision {
        let txt = self.txt(domain).await;
        // A hit is answered here; only a fetch moves to a blocking thread.
        if let Some(decision) = self.inner.cache.decide_unless_fetch(domain, txt, SystemTime::now()) {
            log_decision(domain, &decision);
            return decision;
        }
        let this = self.clone();
        let d = domain.clone();
        let task = self.inner.dns.runtime().spawn_blocking(move || {
            let inner = &this.inner;
            inner.cache.lookup(&d, txt, SystemTime::now(), |_id| inner.fetcher.fetch(&d).map_err(FetchFailure::from))
        });
        let decision = task.await.unwrap_or_else(|e| {
            let failure = FetchFailure::new(ResultType::StsPolicyFetchError, TaskEnded(e.to_string()));
            Decision::NoPolicy(NoPolicyReason::FetchFailed(failure))
        });
        log_decision(domain, &decision);
        decision
    }

    /// Refreshes every policy the cache lists as due (RFC 8461 §10.2): a
    /// new TXT lookup, then a fetch unless the policy id is backing off.
    /// Up to 16 domains at a time. Blocks.
    pub fn refresh_due(&self) -> RefreshReport {
        let this = self.clone();
        self.inner.dns.block("", "TXT", async move { Ok(this.refresh_all().await) }).unwrap_or_default()
    }

    async fn refresh_all(self) -> RefreshReport {
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
        let txt = self.txt(&domain).await;
        let this = self.clone();
        let task = self.inner.dns.runtime().spawn_blocking(move || {
            let inner = &this.inner;
            let now = SystemTime::now();
            match inner.cache.refresh(&domain, txt, now) {
                Decision::Fetch { id } => {
                    let result = inner.fetcher.fetch(&domain).map_err(FetchFailure::from);
                    let ok = result.is_ok();
                    let _ = inner.cache.record_fetch(&domain, id, result, now);
                    Some(ok)
                }
                _ => None,
            }
        });
        task.await.unwrap_or(Some(false))
    }

    /// The engine's [`verdict`](crate::engine::verdict) for a message after
    /// the attempts on `plan`'s hosts, logged as gateway operators read it:
    /// "MTA-STS policy for the domain (…) Successful." when a delivery met
    /// an applied MTA-STS policy, "… Failed." with the reason when it did
    /// not (info).
    pub fn verdict(&self, plan: &Plan, results: &[HostResult], context: DeliveryContext) -> Verdict {
        let verdict = crate::engine::verdict(plan, results, context);
        let domain = &plan.domain;
        if let Some((id, policy)) = plan.sts.as_ref().filter(|(_, p)| p.mode() != Mode::None) {
            let met = match &verdict {
                Verdict::Deliver { level, failures, .. } => {
                    *level >= SecurityLevel::WebPkiVerified && failures.iter().all(|f| f.result_type.is_none())
                }
                _ => false,
            };
            if met {
                tracing::info!(domain = %domain, id = %id, mode = %policy.mode(),
                    "MTA-STS policy for the domain ({domain}) Successful.");
            } else {
                tracing::info!(domain = %domain, id = %id, mode = %policy.mode(), reason = %verdict.reason(),
                    "MTA-STS policy for the domain ({domain}) Failed.");
            }
        }
        verdict
    }

    /// Starts a thread that calls [`refresh_due`](Self::refresh_due) every
    /// `every`; it stops when the returned handle is stopped or dropped.
    pub fn start_refresher(&self, every: Duration) -> Refresher {
        let (stop, stopped) = mpsc::channel::<()>();
        let this = self.clone();
        let thread = thread::Builder::new()
            .name("smtp-tls-policy-refresh".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let report = this.refresh_due();
                    if report.due > 0 {
                        tracing::info!(
                            due = report.due,
                            refreshed = report.refreshed,
                            failed = report.failed,
                            "MTA-STS policy refresh"
                        );
                    }
                }
            })
            .ok();
        Refresher { stop: Some(stop), thread }
    }
}

/// The background refresher of [`PolicyResolver::start_refresher`].
#[derive(Debug)]
pub struct Refresher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Refresher {
    /// Stops the refresher and waits for a running refresh to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[derive(Debug)]
struct TaskEnded(String);

impl fmt::Display for TaskEnded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the fetch task ended without an answer: {}", self.0)
    }
}

impl std::error::Error for TaskEnded {}

fn log_decision(domain: &DomainName, decision: &Decision) {
    if let Decision::Apply { policy, id, reason } = decision {
        if *reason == ApplyReason::SameId {
            tracing::info!(domain = %domain, id = %id, "Valid cache entry found for the domain ({domain})");
        }
        tracing::info!(domain = %domain, id = %id, mode = %policy.mode(),
            "Applying MTA-STS policy for the domain ({domain})");
    }
}
