//! DNS lookups with their DNSSEC status (feature `dns`), validated in
//! process (see [the manual](crate::manual#dns-and-dnssec-rfc-7672-2-feature-dns)).
//!
//! What the rest of the crate asks DNS, each answer with its DNSSEC status
//! (RFC 4035 §4.3: secure, insecure, bogus, indeterminate) and TTL, and
//! NXDOMAIN and NODATA told apart from failures (SERVFAIL, timeouts):
//!
//! - [`DnsResolver::txt`]: a TXT RRset, the strings of each record joined
//!   (RFC 8461 §3.1 for `_mta-sts.<domain>`), CNAMEs followed;
//! - [`DnsResolver::mx_hosts`]: the MX hosts in preference order, the
//!   domain itself when it has no MX records (RFC 5321 §5.1), a null MX
//!   (RFC 7505) and a domain that does not exist as errors;
//! - [`DnsResolver::addresses`]: A and AAAA with the CNAME chain followed;
//! - [`DnsResolver::tlsa`]: TLSA at `_25._tcp.<host>`;
//! - [`DnsResolver::mx_facts`]: RFC 7672 §2.2.2 for one MX host — the
//!   address chain decides whether TLSA is looked up and at which base
//!   domain — as the engine's [`MxFacts`].
//!
//! # DNSSEC modes
//!
//! [`DnssecMode::Validate`] validates in process from trust anchors (the
//! IANA root KSKs by default; custom anchors for test worlds and private
//! roots): RFC 4035 §5 and RFC 5155 §8 on answers asked with DO and CD,
//! each RRset and denial proven or not; a path whose servers strip DNSSEC
//! is told apart ([`Health::CannotValidate`]) and, by choice, fails
//! lookups or runs degraded ([`DnsConfig::degraded`]). [`DnssecMode::TrustAd`] trusts the AD bit of a validating
//! resolver, which must be on a loopback address (RFC 6698 §A.1.4 and RFC
//! 7672 §2.1.1: the path between the resolver and the MTA must be trusted);
//! any other address is refused when the resolver is made. In this mode a
//! bogus answer looks like a failure (the upstream resolver answers
//! SERVFAIL), which has the same effect: the host is not used.
//! [`DnssecMode::Off`] asks without validation: every status is
//! indeterminate, and DANE is reported as unavailable, never as bogus.
//!
//! # Blocking and async
//!
//! The lookups are async (tokio). A [`DnsResolver`] owns a small tokio runtime (two
//! worker threads) that runs its lookups: the plain methods block the
//! calling thread and must not be called from async code (they return
//! [`DnsErrorKind::InAsyncContext`] there instead of panicking, a
//! temporary error so that the mail is deferred, never bounced); the
//! `*_async` methods run the lookup on that runtime and can be awaited from
//! any executor.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::dnssec::TrustAnchors;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};

mod cache;
mod transport;
mod validate;

pub use cache::{ANSWER_CACHE_BYTES, ANSWER_CACHE_SIZE, MAX_NEGATIVE_TTL};
use transport::Transport;
pub use validate::{Health, MAX_NSEC3_ITERATIONS};
use validate::{LookupError, Lookups, Mode, weakest};

use crate::dane::TlsaRecord;
use crate::engine::{DnssecStatus, MxFacts, TlsaFacts};
use crate::name::DomainName;

/// The default timeout of one DNS query (each of [`DnsConfig::attempts`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The most MX hosts kept for one domain (the most preferred): a hostile
/// domain cannot make one resolve ask for thousands of TLSA records.
/// Postfix tries 5 addresses by default (`smtp_mx_address_limit`).
pub const MAX_MX_HOSTS: usize = 32;

/// Trust anchors for in-process DNSSEC validation.
#[derive(Clone)]
pub struct TrustAnchor(Arc<TrustAnchors>);

impl TrustAnchor {
    /// The IANA root zone key-signing keys (KSK-2017 and KSK-2024).
    pub fn iana_root() -> Self {
        Self(Arc::new(TrustAnchors::default()))
    }

    /// Anchors from DNSKEY records in zone-file form, one per line, e.g.
    /// `. 3600 IN DNSKEY 257 3 13 <base64>` (a key for another name anchors
    /// that name).
    pub fn parse(dnskeys: &str) -> Result<Self, DnsError> {
        TrustAnchors::from_str(dnskeys)
            .map(|a| Self(Arc::new(a)))
            .map_err(|e| DnsError::new(DnsErrorKind::Config(format!("trust anchor: {e}")), ".", "DNSKEY"))
    }
}

impl Default for TrustAnchor {
    fn default() -> Self {
        Self::iana_root()
    }
}

impl fmt::Debug for TrustAnchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustAnchor({} keys)", self.0.len())
    }
}

/// How the DNSSEC status of answers is established.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DnssecMode {
    /// Validate in process from these trust anchors.
    Validate(TrustAnchor),
    /// Trust the AD bit of the configured resolver, which must be on a
    /// loopback address.
    TrustAd,
    /// No DNSSEC: every status is indeterminate; DANE is unavailable.
    Off,
}

impl Default for DnssecMode {
    /// Validation from the IANA root.
    fn default() -> Self {
        Self::Validate(TrustAnchor::iana_root())
    }
}

/// Where queries go and how their status is established.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DnsConfig {
    /// The servers asked (recursion desired); empty: the system's
    /// (`/etc/resolv.conf`).
    pub servers: Vec<SocketAddr>,
    /// The DNSSEC mode (default: validate from the IANA root).
    pub dnssec: DnssecMode,
    /// The timeout of one query (default 5 s; at most [`MAX_TIMEOUT`]).
    pub timeout: Duration,
    /// How often a query is tried (default 2; 1 to [`MAX_ATTEMPTS`]).
    pub attempts: usize,
    /// When the servers' path cannot validate the trust anchor's keys (they
    /// strip or break DNSSEC): `false` (the default) fails such lookups
    /// ([`DnsErrorKind::CannotValidate`], temporary: mail waits); `true`
    /// runs degraded, every status indeterminate and DANE unavailable, as
    /// with DNSSEC off, with an error log line and
    /// [`DnsResolver::degraded_answers`] counting.
    pub degraded: bool,
}

/// The longest [`DnsConfig::timeout`] used (longer is this): a query
/// unanswered for an hour will not be answered.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The most [`DnsConfig::attempts`] (more is this): every attempt asks
/// every server.
pub const MAX_ATTEMPTS: usize = 10;

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            dnssec: DnssecMode::default(),
            timeout: DEFAULT_TIMEOUT,
            attempts: 2,
            degraded: false,
        }
    }
}

impl DnsConfig {
    /// Asks these servers instead of the system's.
    pub fn servers(mut self, servers: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.servers = servers.into_iter().collect();
        self
    }

    /// Sets the DNSSEC mode.
    pub fn dnssec(mut self, mode: DnssecMode) -> Self {
        self.dnssec = mode;
        self
    }

    /// Sets the timeout of one query.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs degraded (DANE unavailable) rather than failing lookups when the
    /// path cannot validate; see [`DnsConfig::degraded`].
    pub fn degraded(mut self, degraded: bool) -> Self {
        self.degraded = degraded;
        self
    }

    /// Sets how often a query is tried (at least once, at most
    /// [`MAX_ATTEMPTS`]).
    pub fn attempts(mut self, attempts: usize) -> Self {
        self.attempts = attempts.clamp(1, MAX_ATTEMPTS);
        self
    }
}

/// What a DNS failure was.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsErrorKind {
    /// No answer within the timeout.
    Timeout,
    /// The server answered SERVFAIL (a validating resolver's answer to a
    /// bogus name, too).
    ServerFailure,
    /// The server refused the query.
    Refused,
    /// Another error response code.
    ResponseCode(String),
    /// DNSSEC validation failed (bogus) without any usable answer.
    Bogus,
    /// The domain does not exist (NXDOMAIN) where it must.
    NxDomain,
    /// The domain announces that it accepts no mail (RFC 7505 null MX).
    NullMx,
    /// The answer could not be used (a malformed name, no usable MX host);
    /// temporary.
    Malformed(String),
    /// The network (sockets, connections).
    Network(String),
    /// The configuration is not usable.
    Config(String),
    /// A blocking lookup was called from async code; use the `*_async` form.
    InAsyncContext,
    /// The root zone's NS RRset could not be validated: the servers cannot
    /// serve DNSSEC (or the network is cut off), so no answer can be secure.
    CannotValidate(String),
}

/// A DNS lookup that failed: what was asked and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsError {
    kind: DnsErrorKind,
    name: String,
    rtype: &'static str,
}

impl DnsError {
    fn new(kind: DnsErrorKind, name: impl Into<String>, rtype: &'static str) -> Self {
        Self { kind, name: name.into(), rtype }
    }

    /// What happened.
    pub fn kind(&self) -> &DnsErrorKind {
        &self.kind
    }

    /// The name asked.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether asking again later may succeed: true for timeouts, server
    /// failures, bogus and malformed answers (an MX RRset of names that
    /// cannot be hosts may be forged: mail waits rather than bounces),
    /// network errors and a blocking call made from async code (a misuse
    /// must defer mail, never bounce it; it is also logged as an error);
    /// false for a domain that does not exist, a null MX and configuration.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self.kind,
            DnsErrorKind::Timeout
                | DnsErrorKind::Malformed(_)
                | DnsErrorKind::InAsyncContext
                | DnsErrorKind::ServerFailure
                | DnsErrorKind::Refused
                | DnsErrorKind::ResponseCode(_)
                | DnsErrorKind::Bogus
                | DnsErrorKind::Network(_)
                | DnsErrorKind::CannotValidate(_)
        )
    }
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, t) = (&self.name, self.rtype);
        match &self.kind {
            DnsErrorKind::Timeout => write!(f, "{t} lookup of {name} timed out; check the DNS servers and retry later"),
            DnsErrorKind::ServerFailure => {
                write!(f, "{t} lookup of {name}: SERVFAIL (the zone is broken or fails DNSSEC validation); retry later")
            }
            DnsErrorKind::Refused => {
                write!(f, "{t} lookup of {name}: the server refused; check that it serves recursion to us")
            }
            DnsErrorKind::ResponseCode(c) => write!(f, "{t} lookup of {name}: error response {c}; retry later"),
            DnsErrorKind::Bogus => {
                write!(f, "{t} lookup of {name}: DNSSEC validation failed (bogus); the zone's signatures must be fixed")
            }
            DnsErrorKind::NxDomain => write!(f, "{name} does not exist (NXDOMAIN); check the recipient domain"),
            DnsErrorKind::NullMx => write!(f, "{name} accepts no mail (null MX, RFC 7505)"),
            DnsErrorKind::Malformed(m) => write!(f, "{t} lookup of {name}: unusable answer: {m}; retry later"),
            DnsErrorKind::Network(m) => write!(f, "{t} lookup of {name}: network error: {m}; retry later"),
            DnsErrorKind::Config(m) => write!(f, "DNS configuration: {m}"),
            DnsErrorKind::CannotValidate(why) => write!(
                f,
                "DNSSEC validation does not work with these DNS servers ({why}): no answer can be secure, so \
                 DANE cannot apply; use servers that return DNSSEC records, or turn DNSSEC off"
            ),
            DnsErrorKind::InAsyncContext => {
                write!(f, "{t} lookup of {name}: blocking DNS call from async code; use the *_async method")
            }
        }
    }
}

impl std::error::Error for DnsError {}

/// The records found, or which kind of "nothing" (RFC 2308).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rrset<T> {
    /// The records (never empty).
    Records(Vec<T>),
    /// The name exists but has no records of this type.
    NoData,
    /// The name does not exist.
    NxDomain,
}

/// One DNS answer with its DNSSEC status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Answer<T> {
    /// The records or the negative answer.
    pub rrset: Rrset<T>,
    /// The DNSSEC status of the whole answer: the weakest of its records and
    /// of the CNAMEs that led to them, or of the denial of existence.
    pub status: DnssecStatus,
    /// The smallest TTL in the answer (the negative TTL for NXDOMAIN and
    /// NODATA; zero when the server gave none).
    pub ttl: Duration,
    /// The name the records belong to after following CNAMEs, when that is
    /// not the name asked.
    pub canonical: Option<String>,
}

impl<T> Answer<T> {
    /// The records, empty for NODATA and NXDOMAIN.
    pub fn records(&self) -> &[T] {
        match &self.rrset {
            Rrset::Records(r) => r,
            _ => &[],
        }
    }
}

/// The hosts to deliver to for a domain (RFC 5321 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MxHosts {
    /// In preference order (equal preferences keep the server's order);
    /// the domain itself when it has no MX records.
    pub hosts: Vec<DomainName>,
    /// The domain had no MX records and stands for itself.
    pub implicit: bool,
    /// The DNSSEC status of the MX RRset (or of its denial).
    pub status: DnssecStatus,
    /// The TTL of the MX RRset.
    pub ttl: Duration,
}

/// Looks up what transport security needs: TXT, MX, addresses, TLSA.
/// Cheap to clone; thread-safe.
#[derive(Clone)]
pub struct DnsResolver {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Option<tokio::runtime::Runtime>,
    lookups: Lookups,
    /// How long a waiting thread waits for one lookup.
    wait_limit: Duration,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A runtime dropped inside async code panics; this never does.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match &self.inner.lookups.mode {
            Mode::Validate { .. } => "validate",
            Mode::Off => "off",
            Mode::TrustAd => "trust-ad",
        };
        f.debug_struct("DnsResolver").field("dnssec", &mode).finish()
    }
}

fn config_error(message: impl Into<String>) -> DnsError {
    DnsError::new(DnsErrorKind::Config(message.into()), "", "")
}

impl DnsResolver {
    /// Makes a resolver. Fails when the system configuration cannot be read
    /// (no servers given), when [`DnssecMode::TrustAd`] names anything but
    /// exactly one loopback server, or when the runtime cannot start.
    pub fn new(config: DnsConfig) -> Result<Self, DnsError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("smtp-tls-policy-dns")
            .enable_all()
            .build()
            .map_err(|e| config_error(format!("cannot start the DNS runtime: {e}")))?;
        let mode = match &config.dnssec {
            DnssecMode::TrustAd => match config.servers.as_slice() {
                [server] if server.ip().is_loopback() => Mode::TrustAd,
                [server] => {
                    return Err(config_error(format!(
                        "the AD bit is trusted only from a validating resolver on a loopback address, not {server}; \
                         run a local validating resolver or use in-process validation"
                    )));
                }
                _ => {
                    return Err(config_error(
                        "trusting the AD bit needs exactly one server, a validating resolver on a loopback address",
                    ));
                }
            },
            DnssecMode::Validate(anchor) => Mode::Validate { anchors: Arc::clone(&anchor.0), degrade: config.degraded },
            DnssecMode::Off => Mode::Off,
        };
        let servers = if config.servers.is_empty() { system_servers()? } else { config.servers.clone() };
        let attempts = config.attempts.clamp(1, MAX_ATTEMPTS);
        let timeout = config.timeout.min(MAX_TIMEOUT);
        let transport = Transport { servers, timeout, attempts };
        // Every server, every attempt, A and AAAA one after the other, and
        // the chain of trust: a generous bound that never overflows.
        let rounds =
            u32::try_from(attempts.saturating_mul(transport.servers.len()).saturating_mul(4)).unwrap_or(u32::MAX);
        let wait_limit = timeout.saturating_mul(rounds).saturating_add(Duration::from_secs(1));
        Ok(Self {
            inner: Arc::new(Inner { runtime: Some(runtime), lookups: Lookups::new(transport, mode), wait_limit }),
        })
    }

    /// Whether the servers' path can validate the trust anchor's keys, as
    /// far as is known: [`Health::Unknown`] until something was validated
    /// (or [`probe`](Self::probe) ran). Always `Unknown` without in-process
    /// validation.
    pub fn health(&self) -> Health {
        self.inner.lookups.health()
    }

    /// How many answers were given as indeterminate (DANE unavailable)
    /// because the path cannot validate, in degraded mode
    /// ([`DnsConfig::degraded`]): a counter for a metric.
    pub fn degraded_answers(&self) -> u64 {
        self.inner.lookups.degraded_answers()
    }

    /// Whether answers can be secure (validation in process or a trusted AD
    /// bit); when false, DANE is unavailable.
    pub fn validates(&self) -> bool {
        !matches!(self.inner.lookups.mode, Mode::Off)
    }

    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        self.inner.runtime.as_ref().expect("the runtime lives as long as the resolver")
    }

    pub(crate) fn block<T>(
        &self,
        name: &str,
        rtype: &'static str,
        f: impl Future<Output = Result<T, DnsError>>,
    ) -> Result<T, DnsError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            let error = DnsError::new(DnsErrorKind::InAsyncContext, name, rtype);
            tracing::error!("{error} (the mail is deferred, not bounced: fix the caller)");
            return Err(error);
        }
        self.runtime().block_on(f)
    }

    pub(crate) async fn spawn<T: Send + 'static, F>(&self, f: impl FnOnce(Self) -> F) -> Result<T, DnsError>
    where
        F: Future<Output = Result<T, DnsError>> + Send + 'static,
    {
        let task = self.runtime().spawn(f(self.clone()));
        task.await.map_err(|e| config_error(format!("the DNS task ended: {e}")))?
    }

    /// Checks that the servers answer and, when validating, that the root's
    /// NS RRset validates as secure: a quick way to tell "no network" or "a
    /// resolver that strips DNSSEC" from real answers before relying on
    /// them. Without validation, only that the root's NS RRset comes back.
    pub fn probe(&self) -> Result<(), DnsError> {
        self.block(".", "NS", async {
            let answer = self.query(".", RecordType::NS, |r| matches!(r, RData::NS(_)).then_some(())).await;
            let cannot = |why: String| Err(DnsError::new(DnsErrorKind::CannotValidate(why), ".", "NS"));
            match answer {
                Ok(a) if a.records().is_empty() => Err(DnsError::new(
                    DnsErrorKind::Network(format!(
                        "the servers have no NS records for the root zone ({:?}): they do not resolve public names",
                        a.rrset
                    )),
                    ".",
                    "NS",
                )),
                Ok(a) if self.validates() && a.status != DnssecStatus::Secure => {
                    cannot(format!("the root zone's NS RRset is {:?}", a.status).to_lowercase())
                }
                Ok(_) => Ok(()),
                Err(e) if e.kind == DnsErrorKind::Bogus => cannot("the root zone's NS RRset does not validate".into()),
                Err(e) => Err(e),
            }
        })
    }

    /// The TXT RRset at `name` (e.g. `_mta-sts.example.com`), the strings
    /// of each record joined (RFC 7208 §3.3 style, as RFC 8461 §3.1 asks).
    /// Bytes that are not UTF-8 are replaced, so such a record never parses.
    pub fn txt(&self, name: &str) -> Result<Answer<String>, DnsError> {
        self.block(name, "TXT", self.query_txt(name))
    }

    /// [`txt`](Self::txt), awaitable from any executor.
    pub async fn txt_async(&self, name: &str) -> Result<Answer<String>, DnsError> {
        let name = name.to_owned();
        self.spawn(move |r| async move { r.query_txt(&name).await }).await
    }

    pub(crate) async fn query_txt(&self, name: &str) -> Result<Answer<String>, DnsError> {
        self.query(name, RecordType::TXT, |rdata| match rdata {
            RData::TXT(txt) => {
                let bytes: Vec<u8> = txt.txt_data.iter().flat_map(|s| s.iter().copied()).collect();
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => None,
        })
        .await
    }

    /// The MX hosts of `domain` in preference order (RFC 5321 §5.1): the
    /// domain itself when it has no MX records; a null MX (RFC 7505) and a
    /// domain that does not exist are errors that are not temporary.
    /// Exchange names that are not valid host names are dropped, and at most
    /// [`MAX_MX_HOSTS`] are kept.
    pub fn mx_hosts(&self, domain: &DomainName) -> Result<MxHosts, DnsError> {
        self.block(domain.as_str(), "MX", self.query_mx(domain))
    }

    /// [`mx_hosts`](Self::mx_hosts), awaitable from any executor.
    pub async fn mx_hosts_async(&self, domain: &DomainName) -> Result<MxHosts, DnsError> {
        let domain = domain.clone();
        self.spawn(move |r| async move { r.query_mx(&domain).await }).await
    }

    pub(crate) async fn query_mx(&self, domain: &DomainName) -> Result<MxHosts, DnsError> {
        let answer = self
            .query(domain.as_str(), RecordType::MX, |rdata| match rdata {
                RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                _ => None,
            })
            .await?;
        let error = |kind| Err(DnsError::new(kind, domain.as_str(), "MX"));
        let mut records = match answer.rrset {
            Rrset::NxDomain => return error(DnsErrorKind::NxDomain),
            Rrset::NoData => {
                return Ok(MxHosts {
                    hosts: vec![domain.clone()],
                    implicit: true,
                    status: answer.status,
                    ttl: answer.ttl,
                });
            }
            Rrset::Records(r) => r,
        };
        if records.len() == 1 && records[0].1 == "." {
            return error(DnsErrorKind::NullMx);
        }
        records.sort_by_key(|(preference, _)| *preference);
        let mut hosts: Vec<DomainName> = Vec::with_capacity(records.len());
        for (_, exchange) in records {
            if hosts.len() == MAX_MX_HOSTS {
                tracing::warn!(domain = %domain, "more than {MAX_MX_HOSTS} MX hosts; the least preferred are dropped");
                break;
            }
            match DomainName::parse(exchange.trim_end_matches('.')) {
                Ok(host) if !hosts.contains(&host) => hosts.push(host),
                Ok(_) => {}
                Err(e) => tracing::warn!(domain = %domain, mx = %exchange, "MX host dropped: {e}"),
            }
        }
        if hosts.is_empty() {
            return error(DnsErrorKind::Malformed("no MX record names a usable host".into()));
        }
        Ok(MxHosts { hosts, implicit: false, status: answer.status, ttl: answer.ttl })
    }

    /// The addresses of `host`, A then AAAA, CNAMEs followed. The status is
    /// the weakest of both lookups and of every CNAME on the way; the
    /// canonical name is the end of the chain.
    pub fn addresses(&self, host: &DomainName) -> Result<Answer<IpAddr>, DnsError> {
        self.block(host.as_str(), "A", self.query_addresses(host))
    }

    /// [`addresses`](Self::addresses), awaitable from any executor.
    pub async fn addresses_async(&self, host: &DomainName) -> Result<Answer<IpAddr>, DnsError> {
        let host = host.clone();
        self.spawn(move |r| async move { r.query_addresses(&host).await }).await
    }

    async fn query_addresses(&self, host: &DomainName) -> Result<Answer<IpAddr>, DnsError> {
        let v4 = self
            .query(host.as_str(), RecordType::A, |r| if let RData::A(a) = r { Some(IpAddr::V4(a.0)) } else { None });
        let v6 = self.query(host.as_str(), RecordType::AAAA, |r| {
            if let RData::AAAA(a) = r { Some(IpAddr::V6(a.0)) } else { None }
        });
        let (v4, v6) = futures_util::join!(v4, v6);
        let (v4, v6) = match (v4, v6) {
            (Ok(a), Ok(b)) => (a, b),
            // A bogus family is never hidden behind a good one (RFC 4035 §5,
            // RFC 7672 §2.2.2: the host is not used); a validating resolver
            // says bogus with SERVFAIL.
            (Ok(_), Err(e)) | (Err(e), Ok(_))
                if matches!(e.kind, DnsErrorKind::Bogus | DnsErrorKind::ServerFailure) =>
            {
                return Err(e);
            }
            // One family failing while the other answers: use what we have,
            // but the status can then only be as good as the answer we got.
            (Ok(a), Err(_)) | (Err(_), Ok(a)) => return Ok(a),
            (Err(e), Err(_)) => return Err(e),
        };
        let status = weakest(v4.status, v6.status);
        let canonical = v4.canonical.clone().or_else(|| v6.canonical.clone());
        let rrset = match (v4.rrset, v6.rrset) {
            (Rrset::Records(mut a), Rrset::Records(b)) => {
                a.extend(b);
                Rrset::Records(a)
            }
            (Rrset::Records(a), _) | (_, Rrset::Records(a)) => Rrset::Records(a),
            (Rrset::NxDomain, _) | (_, Rrset::NxDomain) => Rrset::NxDomain,
            _ => Rrset::NoData,
        };
        Ok(Answer { rrset, status, ttl: v4.ttl.min(v6.ttl), canonical })
    }

    /// The addresses of `host` (e.g. a policy host), from any thread —
    /// also from a blocking task of this resolver's own runtime, where the
    /// blocking methods refuse to run: the lookup runs on the runtime and
    /// this thread waits for its answer (at most the configured timeout
    /// times the attempts, twice over for A and AAAA). Empty when there is
    /// none or the lookup fails; for a name lookup hook such as
    /// [`FetchConfig::lookup`](crate::fetch::FetchConfig::lookup).
    pub fn host_addresses(&self, host: &str) -> Vec<IpAddr> {
        let Ok(name) = DomainName::parse(host) else { return Vec::new() };
        let (tx, rx) = std::sync::mpsc::channel();
        let this = self.clone();
        self.runtime().spawn(async move {
            let _ = tx.send(this.query_addresses(&name).await);
        });
        match rx.recv_timeout(self.inner.wait_limit) {
            Ok(Ok(answer)) => answer.records().to_vec(),
            _ => Vec::new(),
        }
    }

    /// The TLSA RRset at `_25._tcp.<host>` (RFC 7672 §2.2.3). Records whose
    /// fields cannot be held are kept as they come; unusable ones stay in
    /// the set (the engine tells usable from unusable).
    pub fn tlsa(&self, host: &DomainName) -> Result<Answer<TlsaRecord>, DnsError> {
        self.block(host.as_str(), "TLSA", self.query_tlsa(host))
    }

    /// [`tlsa`](Self::tlsa), awaitable from any executor.
    pub async fn tlsa_async(&self, host: &DomainName) -> Result<Answer<TlsaRecord>, DnsError> {
        let host = host.clone();
        self.spawn(move |r| async move { r.query_tlsa(&host).await }).await
    }

    async fn query_tlsa(&self, host: &DomainName) -> Result<Answer<TlsaRecord>, DnsError> {
        self.query(&format!("_25._tcp.{host}"), RecordType::TLSA, |rdata| match rdata {
            RData::TLSA(t) => Some(TlsaRecord::new(
                u8::from(t.cert_usage),
                u8::from(t.selector),
                u8::from(t.matching),
                t.cert_data.clone(),
            )),
            _ => None,
        })
        .await
    }

    /// The DANE facts of one MX host (RFC 7672 §2.2.2): its address records
    /// must be secure for TLSA to be looked up at all; after a secure CNAME
    /// chain, TLSA is looked up at the end of the chain first and, on a
    /// secure denial there, at the host name. Without validation DANE is
    /// [`TlsaFacts::Unavailable`] and nothing is asked.
    pub fn mx_facts(&self, host: &DomainName) -> MxFacts {
        self.mx_facts_many(std::slice::from_ref(host)).pop().unwrap_or_else(|| failed(host))
    }

    /// [`mx_facts`](Self::mx_facts), awaitable from any executor.
    pub async fn mx_facts_async(&self, host: &DomainName) -> MxFacts {
        let h = host.clone();
        self.spawn(move |r| async move { Ok(r.tlsa_facts(&h).await) }).await.unwrap_or_else(|e| {
            tracing::warn!(mx = %host, "{e}");
            failed(host)
        })
    }

    /// [`mx_facts`](Self::mx_facts) of several hosts, looked up
    /// concurrently, in the order given.
    pub fn mx_facts_many(&self, hosts: &[DomainName]) -> Vec<MxFacts> {
        let name = hosts.first().map(DomainName::as_str).unwrap_or_default();
        self.block(name, "TLSA", async { Ok(self.facts_of_hosts(hosts).await) }).unwrap_or_else(|e| {
            tracing::warn!("{e}");
            hosts.iter().map(failed).collect()
        })
    }

    pub(crate) async fn facts_of_hosts(&self, hosts: &[DomainName]) -> Vec<MxFacts> {
        futures_util::future::join_all(hosts.iter().map(|host| self.tlsa_facts(host))).await
    }

    /// RFC 7672 §2.2.2 for one host; lookup failures become facts.
    async fn tlsa_facts(&self, host: &DomainName) -> MxFacts {
        if !self.validates() {
            return MxFacts::new(host.clone(), TlsaFacts::Unavailable);
        }
        let facts = |tlsa| MxFacts::new(host.clone(), tlsa);
        let addresses = match self.query_addresses(host).await {
            Ok(a) => a,
            Err(e) if e.kind == DnsErrorKind::Bogus => return facts(TlsaFacts::Bogus),
            Err(e) => {
                tracing::debug!(mx = %host, "address lookup failed: {e}");
                return facts(TlsaFacts::Failed);
            }
        };
        match addresses.status {
            DnssecStatus::Secure => {}
            DnssecStatus::Bogus => return facts(TlsaFacts::Bogus),
            DnssecStatus::Insecure => return facts(TlsaFacts::Insecure),
            // Not validated (a path that cannot validate, run degraded).
            _ => return facts(TlsaFacts::Unavailable),
        }
        let target = addresses.canonical.as_deref().and_then(|c| DomainName::parse(c).ok()).filter(|c| c != host);
        if let Some(target) = target {
            let at_target = tlsa_facts_of(self.query_tlsa(&target).await);
            if at_target != TlsaFacts::SecureNone {
                return MxFacts::new(host.clone(), at_target).with_tlsa_base(target);
            }
        }
        facts(tlsa_facts_of(self.query_tlsa(host).await))
    }

    async fn query<T>(
        &self,
        name: &str,
        rtype: RecordType,
        extract: impl Fn(&RData) -> Option<T>,
    ) -> Result<Answer<T>, DnsError> {
        let rtype_name = rtype_name(rtype);
        let fqdn = Name::from_ascii(format!("{}.", name.trim_end_matches('.')))
            .map_err(|e| DnsError::new(DnsErrorKind::Malformed(e.to_string()), name, rtype_name))?;
        let name = name.trim_end_matches('.');
        let resolved = self.inner.lookups.lookup(&fqdn, rtype).await.map_err(|e| lookup_error(e, name, rtype_name))?;
        if resolved.status == DnssecStatus::Bogus {
            return Err(DnsError::new(DnsErrorKind::Bogus, name, rtype_name));
        }
        let records: Vec<T> = resolved.records.iter().filter_map(|r| extract(&r.data)).collect();
        let rrset = if !records.is_empty() {
            Rrset::Records(records)
        } else if resolved.nx {
            Rrset::NxDomain
        } else {
            Rrset::NoData
        };
        let canonical = resolved.chain.last().map(|c| c.to_ascii().trim_end_matches('.').to_ascii_lowercase());
        Ok(Answer { rrset, status: resolved.status, ttl: Duration::from_secs(u64::from(resolved.ttl)), canonical })
    }
}

/// The servers of `/etc/resolv.conf` (`nameserver` lines, port 53).
fn system_servers() -> Result<Vec<SocketAddr>, DnsError> {
    let text = std::fs::read_to_string("/etc/resolv.conf")
        .map_err(|e| config_error(format!("cannot read the system DNS configuration /etc/resolv.conf: {e}")))?;
    let servers: Vec<SocketAddr> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect();
    if servers.is_empty() {
        return Err(config_error("/etc/resolv.conf names no nameserver; configure the DNS servers explicitly"));
    }
    Ok(servers)
}

fn lookup_error(e: LookupError, name: &str, rtype: &'static str) -> DnsError {
    let kind = match e {
        LookupError::Timeout => DnsErrorKind::Timeout,
        LookupError::Network(m) => DnsErrorKind::Network(m),
        LookupError::Malformed(m) => DnsErrorKind::Malformed(m),
        LookupError::Rcode(ResponseCode::ServFail) => DnsErrorKind::ServerFailure,
        LookupError::Rcode(ResponseCode::Refused) => DnsErrorKind::Refused,
        LookupError::Rcode(code) => DnsErrorKind::ResponseCode(code.to_string()),
        LookupError::CannotValidate(why) => DnsErrorKind::CannotValidate(why),
    };
    DnsError::new(kind, name, rtype)
}

fn rtype_name(rtype: RecordType) -> &'static str {
    match rtype {
        RecordType::TXT => "TXT",
        RecordType::MX => "MX",
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::TLSA => "TLSA",
        RecordType::NS => "NS",
        _ => "DNS",
    }
}

/// A host whose TLSA facts could not be had at all: not used.
fn failed(host: &DomainName) -> MxFacts {
    MxFacts::new(host.clone(), TlsaFacts::Failed)
}

fn tlsa_facts_of(result: Result<Answer<TlsaRecord>, DnsError>) -> TlsaFacts {
    match result {
        Err(e) if e.kind == DnsErrorKind::Bogus => TlsaFacts::Bogus,
        Err(e) => {
            tracing::debug!("TLSA lookup failed: {e}");
            TlsaFacts::Failed
        }
        Ok(answer) => match (answer.status, answer.rrset) {
            (DnssecStatus::Secure, Rrset::Records(records)) => TlsaFacts::Secure(records),
            (DnssecStatus::Secure, _) => TlsaFacts::SecureNone,
            (DnssecStatus::Bogus, _) => TlsaFacts::Bogus,
            (DnssecStatus::Insecure, _) => TlsaFacts::Insecure,
            _ => TlsaFacts::Unavailable,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_ad_needs_a_loopback_resolver() {
        let config = DnsConfig::default().dnssec(DnssecMode::TrustAd);
        let err = DnsResolver::new(config.clone().servers(["192.0.2.1:53".parse().unwrap()])).unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        let err = DnsResolver::new(config.clone()).unwrap_err();
        assert!(err.to_string().contains("exactly one server"), "{err}");
        assert!(DnsResolver::new(config.servers(["127.0.0.1:53".parse().unwrap()])).is_ok());
        let v6 = DnsConfig::default().dnssec(DnssecMode::TrustAd).servers(["[::1]:53".parse().unwrap()]);
        assert!(DnsResolver::new(v6).is_ok());
    }

    #[test]
    fn a_bad_trust_anchor_is_a_config_error() {
        let err = TrustAnchor::parse(". 3600 IN DNSKEY 257 3 13 not-base64!").unwrap_err();
        assert!(matches!(err.kind(), DnsErrorKind::Config(_)), "{err}");
        assert!(!err.is_temporary());
    }
}
