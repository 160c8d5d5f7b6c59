//! [`DnsResolver`](super::DnsResolver) for callers on plain threads (a
//! checker, a thread-per-connection server): it owns a small tokio runtime
//! (two worker threads) and blocks the calling thread for each lookup, as
//! `reqwest::blocking` does for reqwest.
//!
//! Its methods must not be called from async code; there they return
//! [`DnsErrorKind::InAsyncContext`] (temporary, logged as an error) rather
//! than panic, so a misuse defers mail and never bounces it. Async code
//! uses the async resolver ([`inner`](DnsResolver::inner)) instead.

use std::future::Future;
use std::net::IpAddr;

use super::{Answer, DnsConfig, DnsError, DnsErrorKind, Health, MxFacts, MxHosts};
use crate::dane::TlsaRecord;
use crate::name::DomainName;

/// The blocking form of [`super::DnsResolver`]. Cheap to clone; clones
/// share the runtime.
#[derive(Debug, Clone)]
pub struct DnsResolver {
    inner: super::DnsResolver,
    runtime: std::sync::Arc<Runtime>,
}

/// The runtime, shut down in the background when the last clone goes
/// (a runtime dropped inside async code would panic; this never does).
#[derive(Debug)]
pub(crate) struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    /// A two-thread runtime named `thread_name`.
    pub(crate) fn new(thread_name: &str) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(thread_name)
            .enable_all()
            .build()?;
        Ok(Self(Some(rt)))
    }

    /// Runs `f` to completion on this thread, or refuses from async code
    /// with `refused()` (logged as an error).
    pub(crate) fn block<T, E: std::fmt::Display>(
        &self,
        f: impl Future<Output = Result<T, E>>,
        refused: impl FnOnce() -> E,
    ) -> Result<T, E> {
        if tokio::runtime::Handle::try_current().is_ok() {
            let error = refused();
            tracing::error!("{error} (the mail is deferred, not bounced: fix the caller)");
            return Err(error);
        }
        self.0.as_ref().expect("the runtime lives until drop").block_on(f)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn in_async(name: &str, rtype: &'static str) -> DnsError {
    DnsError::new(DnsErrorKind::InAsyncContext, name, rtype)
}

impl DnsResolver {
    /// Makes a resolver ([`super::DnsResolver::new`]) and its runtime.
    pub fn new(config: DnsConfig) -> Result<Self, DnsError> {
        let runtime = Runtime::new("smtp-tls-policy-dns")
            .map_err(|e| DnsError::new(DnsErrorKind::Config(super::DnsConfigError::Runtime(e.kind())), "", ""))?;
        Ok(Self { inner: super::DnsResolver::new(config)?, runtime: std::sync::Arc::new(runtime) })
    }

    pub(crate) fn from_parts(inner: super::DnsResolver, runtime: std::sync::Arc<Runtime>) -> Self {
        Self { inner, runtime }
    }

    /// The async resolver inside (shares the answer cache).
    pub fn inner(&self) -> &super::DnsResolver {
        &self.inner
    }

    /// [`super::DnsResolver::health`].
    pub fn health(&self) -> Health {
        self.inner.health()
    }

    /// [`super::DnsResolver::degraded_answers`].
    pub fn degraded_answers(&self) -> u64 {
        self.inner.degraded_answers()
    }

    /// [`super::DnsResolver::key_fetches`].
    pub fn key_fetches(&self) -> u64 {
        self.inner.key_fetches()
    }

    /// [`super::DnsResolver::validates`].
    pub fn validates(&self) -> bool {
        self.inner.validates()
    }

    /// [`super::DnsResolver::probe`], blocking.
    pub fn probe(&self) -> Result<(), DnsError> {
        self.runtime.block(self.inner.probe(), || in_async(".", "NS"))
    }

    /// [`super::DnsResolver::txt`], blocking.
    pub fn txt(&self, name: &str) -> Result<Answer<String>, DnsError> {
        self.runtime.block(self.inner.txt(name), || in_async(name, "TXT"))
    }

    /// [`super::DnsResolver::mx_hosts`], blocking.
    pub fn mx_hosts(&self, domain: &DomainName) -> Result<MxHosts, DnsError> {
        self.runtime.block(self.inner.mx_hosts(domain), || in_async(domain.as_str(), "MX"))
    }

    /// [`super::DnsResolver::addresses`], blocking.
    pub fn addresses(&self, host: &DomainName) -> Result<Answer<IpAddr>, DnsError> {
        self.runtime.block(self.inner.addresses(host), || in_async(host.as_str(), "A"))
    }

    /// [`super::DnsResolver::tlsa`], blocking.
    pub fn tlsa(&self, host: &DomainName) -> Result<Answer<TlsaRecord>, DnsError> {
        self.runtime.block(self.inner.tlsa(host), || in_async(host.as_str(), "TLSA"))
    }

    /// [`super::DnsResolver::mx_facts`], blocking; from async code the host
    /// is not used ([`TlsaFacts::Failed`](super::TlsaFacts::Failed)).
    pub fn mx_facts(&self, host: &DomainName) -> MxFacts {
        self.mx_facts_many(std::slice::from_ref(host)).pop().unwrap_or_else(|| failed(host))
    }

    /// [`super::DnsResolver::connect_addresses`], blocking: the addresses
    /// to connect to `host` (the MTA-STS policy host), from this resolver
    /// rather than the system's. Empty when called on a runtime thread.
    pub fn connect_addresses(&self, host: &DomainName) -> Vec<std::net::IpAddr> {
        let found = async { Ok(self.inner.connect_addresses(host).await) };
        self.runtime.block(found, || in_async(host.as_str(), "A")).unwrap_or_default()
    }

    /// [`super::DnsResolver::mx_facts_many`], blocking.
    pub fn mx_facts_many(&self, hosts: &[DomainName]) -> Vec<MxFacts> {
        let name = hosts.first().map(DomainName::as_str).unwrap_or_default();
        let facts = async { Ok(self.inner.mx_facts_many(hosts).await) };
        self.runtime.block(facts, || in_async(name, "TLSA")).unwrap_or_else(|_| hosts.iter().map(failed).collect())
    }
}

fn failed(host: &DomainName) -> MxFacts {
    MxFacts::new(host.clone(), super::TlsaFacts::Failed)
}
