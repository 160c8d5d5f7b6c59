//! An in-memory `DnsLookup` and `PolicyFetch`: answers set by the test,
//! every question recorded. The public seam of `discovery`, used as an MTA
//! with its own resolver would use it.
#![allow(dead_code)] // each user takes what it needs

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use smtp_tls_policy::cache::FetchFailure;
use smtp_tls_policy::dane::TlsaRecord;
use smtp_tls_policy::discovery::{
    Answer, DnsError, DnsErrorKind, DnsLookup, DnssecStatus, MxRecord, PolicyFetch, Rrset,
};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::report::ResultType;
use smtp_tls_policy::sts::Policy;

type Reply<T> = Result<Answer<T>, DnsError>;

/// Answers by (type, name); an unset question is a timeout.
#[derive(Default)]
pub struct MemoryDns {
    txt: HashMap<String, Reply<String>>,
    mx: HashMap<String, Reply<MxRecord>>,
    a: HashMap<String, Reply<IpAddr>>,
    tlsa: HashMap<String, Reply<TlsaRecord>>,
    off: bool,
    asked: Mutex<Vec<String>>,
}

/// Records with a status.
pub fn records<T>(records: Vec<T>, status: DnssecStatus) -> Answer<T> {
    Answer::new(Rrset::Records(records), status).with_ttl(Duration::from_secs(300))
}

/// NODATA with a status.
pub fn nodata<T>(status: DnssecStatus) -> Answer<T> {
    Answer::new(Rrset::NoData, status)
}

/// NXDOMAIN with a status.
pub fn nxdomain<T>(status: DnssecStatus) -> Answer<T> {
    Answer::new(Rrset::NxDomain, status)
}

/// A failure of this kind for `name`.
pub fn error(kind: DnsErrorKind, name: &str, rtype: &'static str) -> DnsError {
    DnsError::new(kind, name, rtype)
}

impl MemoryDns {
    /// An empty world that validates.
    pub fn new() -> Self {
        Self::default()
    }

    /// Without validation (every answer indeterminate).
    pub fn not_validating(mut self) -> Self {
        self.off = true;
        self
    }

    /// The TXT answer at `name`.
    pub fn txt(mut self, name: &str, reply: Reply<String>) -> Self {
        self.txt.insert(name.into(), reply);
        self
    }

    /// The MX answer of `domain`.
    pub fn mx(mut self, domain: &str, reply: Reply<MxRecord>) -> Self {
        self.mx.insert(domain.into(), reply);
        self
    }

    /// The address answer of `host`.
    pub fn addresses(mut self, host: &str, reply: Reply<IpAddr>) -> Self {
        self.a.insert(host.into(), reply);
        self
    }

    /// The TLSA answer at `_25._tcp.<host>`.
    pub fn tlsa(mut self, host: &str, reply: Reply<TlsaRecord>) -> Self {
        self.tlsa.insert(host.into(), reply);
        self
    }

    /// The questions asked, as "TYPE name", in order.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }

    fn answer<T: Clone>(&self, map: &HashMap<String, Reply<T>>, rtype: &'static str, name: &str) -> Reply<T> {
        self.asked.lock().unwrap().push(format!("{rtype} {name}"));
        map.get(name).cloned().unwrap_or_else(|| Err(error(DnsErrorKind::Timeout, name, rtype)))
    }
}

impl DnsLookup for MemoryDns {
    async fn txt(&self, name: &str) -> Reply<String> {
        tokio::task::yield_now().await;
        self.answer(&self.txt, "TXT", name)
    }

    async fn mx(&self, domain: &DomainName) -> Reply<MxRecord> {
        tokio::task::yield_now().await;
        self.answer(&self.mx, "MX", domain.as_str())
    }

    async fn addresses(&self, host: &DomainName) -> Reply<IpAddr> {
        tokio::task::yield_now().await;
        self.answer(&self.a, "A", host.as_str())
    }

    async fn tlsa(&self, host: &DomainName) -> Reply<TlsaRecord> {
        tokio::task::yield_now().await;
        self.answer(&self.tlsa, "TLSA", host.as_str())
    }

    fn validates(&self) -> bool {
        !self.off
    }
}

/// Policies by domain; counts fetches; a fetch takes `delay`.
#[derive(Default)]
pub struct MemoryFetch {
    policies: HashMap<String, String>,
    delay: Duration,
    fetches: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error("no policy host for {0}")]
struct NoHost(String);

impl MemoryFetch {
    /// No policies.
    pub fn new() -> Self {
        Self::default()
    }

    /// The policy body served for `domain`.
    pub fn policy(mut self, domain: &str, body: &str) -> Self {
        self.policies.insert(domain.into(), body.into());
        self
    }

    /// Each fetch takes this long.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Fetches made.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl PolicyFetch for MemoryFetch {
    async fn fetch(&self, domain: &DomainName) -> Result<Policy, FetchFailure> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        match self.policies.get(domain.as_str()) {
            Some(body) => Policy::parse(body).map_err(FetchFailure::invalid),
            None => Err(FetchFailure::new(ResultType::StsPolicyFetchError, NoHost(domain.to_string()))),
        }
    }
}
