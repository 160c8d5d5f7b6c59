//! [`PolicyResolver`](super::PolicyResolver) for MTAs on plain threads: it
//! owns a small tokio runtime (two worker threads) and blocks the calling
//! thread for each call, as `reqwest::blocking` does for reqwest.
//!
//! Its methods must not be called from async code: there they return a
//! temporary error ([`InAsyncContext`](crate::dns::DnsErrorKind::InAsyncContext),
//! logged as an error), so that a misuse defers mail and never bounces it.
//! Async code uses [`super::PolicyResolver`].

use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use super::{RefreshReport, ResolveError, ResolverConfig};
use crate::cache::{Decision, NoPolicyReason, PolicyCache};
use crate::dns::blocking::Runtime;
use crate::dns::{DnsError, DnsErrorKind};
use crate::engine::{Delivery, DeliveryContext, DestinationControls, DomainFacts, HostResult, Outcome, Plan, Verdict};
use crate::name::DomainName;

/// The blocking façade. Thread-safe, cheap to clone (clones share
/// everything, the runtime too).
#[derive(Debug, Clone)]
pub struct PolicyResolver {
    inner: super::PolicyResolver,
    dns: crate::dns::blocking::DnsResolver,
    runtime: Arc<Runtime>,
}

fn in_async(name: &str, rtype: &'static str) -> ResolveError {
    ResolveError::Dns(DnsError::new(DnsErrorKind::InAsyncContext, name, rtype))
}

impl PolicyResolver {
    /// Makes a resolver ([`super::PolicyResolver::new`]) and its runtime.
    pub fn new(config: ResolverConfig) -> Result<Self, ResolveError> {
        let runtime = Runtime::new("smtp-tls-policy").map_err(|e| ResolveError::Runtime(e.kind()))?;
        let runtime = Arc::new(runtime);
        let inner = super::PolicyResolver::new(config)?;
        let dns = crate::dns::blocking::DnsResolver::from_parts(inner.dns().clone(), Arc::clone(&runtime));
        Ok(Self { inner, dns, runtime })
    }

    /// The async resolver inside (shares the cache and DNS).
    pub fn inner(&self) -> &super::PolicyResolver {
        &self.inner
    }

    /// The policy cache (inspect, purge, snapshot).
    pub fn cache(&self) -> &PolicyCache {
        self.inner.cache()
    }

    /// The DNS resolver, blocking (sharing this resolver's runtime and cache).
    pub fn dns(&self) -> &crate::dns::blocking::DnsResolver {
        &self.dns
    }

    /// The destination controls.
    pub fn controls(&self) -> &DestinationControls {
        self.inner.controls()
    }

    /// [`super::PolicyResolver::resolve`], blocking.
    pub fn resolve(&self, domain: &str) -> Result<Plan, ResolveError> {
        self.runtime.block(self.inner.resolve(domain), || in_async(domain, "MX"))
    }

    /// [`super::PolicyResolver::resolve_domain`], blocking.
    pub fn resolve_domain(&self, domain: &DomainName) -> Result<Plan, ResolveError> {
        self.runtime.block(self.inner.resolve_domain(domain), || in_async(domain.as_str(), "MX"))
    }

    /// [`super::PolicyResolver::facts`], blocking.
    pub fn facts(&self, domain: &str) -> Result<DomainFacts, ResolveError> {
        self.runtime.block(self.inner.facts(domain), || in_async(domain, "MX"))
    }

    /// [`super::PolicyResolver::facts_of`], blocking.
    pub fn facts_of(&self, domain: &DomainName) -> Result<DomainFacts, ResolveError> {
        self.runtime.block(self.inner.facts_of(domain), || in_async(domain.as_str(), "MX"))
    }

    /// [`super::PolicyResolver::sts`], blocking; from async code, no
    /// policy (logged as an error).
    pub fn sts(&self, domain: &DomainName) -> Decision {
        let decision = async { Ok::<_, ResolveError>(self.inner.sts(domain).await) };
        self.runtime
            .block(decision, || in_async(domain.as_str(), "TXT"))
            .unwrap_or(Decision::NoPolicy(NoPolicyReason::TxtLookupFailed))
    }

    /// [`super::PolicyResolver::refresh_due`], blocking.
    pub fn refresh_due(&self) -> RefreshReport {
        let report = async { Ok::<_, ResolveError>(self.inner.refresh_due().await) };
        self.runtime.block(report, || in_async("", "TXT")).unwrap_or_default()
    }

    /// [`super::PolicyResolver::finish`]: the message's outcome, logged.
    pub fn finish(&self, delivery: Delivery<'_>, context: DeliveryContext) -> Outcome {
        self.inner.finish(delivery, context)
    }

    /// [`super::PolicyResolver::verdict`].
    pub fn verdict(&self, plan: &Plan, results: &[HostResult], context: DeliveryContext) -> Verdict {
        self.inner.verdict(plan, results, context)
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
