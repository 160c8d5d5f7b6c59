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
//! The resolver implements [`DnsLookup`]: it
//! asks and reports; the RFC rules on the answers (implicit and null MX,
//! the TLSA base domain) are the pure functions of
//! [`discovery`].
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
//! The lookups are async (tokio) and run on the runtime of whoever awaits
//! them: a [`DnsResolver`] owns no runtime. [`blocking::DnsResolver`] owns a
//! small one (two worker threads) for callers on plain threads; its
//! methods must not be called from async code (they return
//! [`DnsErrorKind::InAsyncContext`] there instead of panicking, a
//! temporary error so that the mail is deferred, never bounced).

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::dnssec::TrustAnchors;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};

pub mod blocking;
mod cache;
mod negative;
mod transport;
mod validate;

pub use cache::{ANSWER_CACHE_BYTES, ANSWER_CACHE_SIZE, MAX_NEGATIVE_TTL};
use transport::Transport;
pub use validate::{Health, MAX_NSEC3_ITERATIONS};
use validate::{LookupError, Lookups, Mode};

use crate::dane::TlsaRecord;
use crate::discovery::{self, DnsLookup, MxFacts, MxRecord};
pub use crate::discovery::{
    Answer, CannotValidate, DnsConfigError, DnsError, DnsErrorKind, DnssecStatus, MAX_MX_HOSTS, Malformed, MxHosts,
    Rrset, TlsaFacts,
};
use crate::name::DomainName;

/// The default timeout of one DNS query (each of [`DnsConfig::attempts`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

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
            .map_err(|_| DnsError::new(DnsErrorKind::Config(DnsConfigError::TrustAnchor), ".", "DNSKEY"))
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
    pub(crate) servers: Vec<SocketAddr>,
    /// The DNSSEC mode (default: validate from the IANA root).
    pub(crate) dnssec: DnssecMode,
    /// The timeout of one query (default 5 s; at most [`MAX_TIMEOUT`]).
    pub(crate) timeout: Duration,
    /// How often a query is tried (default 2; 1 to [`MAX_ATTEMPTS`]).
    pub(crate) attempts: usize,
    /// When the servers' path cannot validate the trust anchor's keys (they
    /// strip or break DNSSEC): `false` (the default) fails such lookups
    /// ([`DnsErrorKind::CannotValidate`], temporary: mail waits); `true`
    /// runs degraded, every status indeterminate and DANE unavailable, as
    /// with DNSSEC off, with an error log line and
    /// [`DnsResolver::degraded_answers`] counting.
    pub(crate) degraded: bool,
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

/// Looks up what transport security needs: TXT, MX, addresses, TLSA, on
/// the caller's tokio runtime (any flavour). Cheap to clone (clones share
/// the answer cache and the validator); thread-safe. Implements
/// [`DnsLookup`]; [`blocking::DnsResolver`] runs it from plain threads.
#[derive(Clone)]
pub struct DnsResolver {
    inner: Arc<Lookups>,
    /// The same servers without validation, for the addresses of hosts
    /// authenticated by their certificate ([`connect_addresses`](Self::connect_addresses)).
    connect: Arc<Lookups>,
}

impl fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match &self.inner.mode {
            Mode::Validate { .. } => "validate",
            Mode::Off => "off",
            Mode::TrustAd => "trust-ad",
        };
        f.debug_struct("DnsResolver").field("dnssec", &mode).finish()
    }
}

fn config_error(error: DnsConfigError) -> DnsError {
    DnsError::new(DnsErrorKind::Config(error), "", "")
}

impl DnsResolver {
    /// Makes a resolver. Fails when the system configuration cannot be read
    /// (no servers given) or when [`DnssecMode::TrustAd`] names anything but
    /// exactly one loopback server. Needs no runtime to be made; its
    /// lookups run on the runtime of whoever awaits them.
    pub fn new(config: DnsConfig) -> Result<Self, DnsError> {
        let mode = match &config.dnssec {
            DnssecMode::TrustAd => match config.servers.as_slice() {
                [server] if server.ip().is_loopback() => Mode::TrustAd,
                [server] => return Err(config_error(DnsConfigError::TrustAdNotLoopback(*server))),
                servers => return Err(config_error(DnsConfigError::TrustAdServerCount(servers.len()))),
            },
            DnssecMode::Validate(anchor) => Mode::Validate { anchors: Arc::clone(&anchor.0), degrade: config.degraded },
            DnssecMode::Off => Mode::Off,
        };
        let servers = if config.servers.is_empty() { system_servers()? } else { config.servers.clone() };
        let attempts = config.attempts.clamp(1, MAX_ATTEMPTS);
        let timeout = config.timeout.min(MAX_TIMEOUT);
        let transport = Transport { servers, timeout, attempts };
        let connect = Arc::new(Lookups::new(transport.clone(), Mode::Off));
        Ok(Self { inner: Arc::new(Lookups::new(transport, mode)), connect })
    }

    /// Whether the servers' path can validate the trust anchor's keys, as
    /// far as is known: [`Health::Unknown`] until something was validated
    /// (or [`probe`](Self::probe) ran). Always `Unknown` without in-process
    /// validation.
    pub fn health(&self) -> Health {
        self.inner.health()
    }

    /// How many answers were given as indeterminate (DANE unavailable)
    /// because the path cannot validate, in degraded mode
    /// ([`DnsConfig::degraded`]): a counter for a metric.
    pub fn degraded_answers(&self) -> u64 {
        self.inner.degraded_answers()
    }

    /// DNSKEY RRsets fetched since the resolver was made: a metric (a
    /// cold burst of lookups in one zone fetches its keys once).
    pub fn key_fetches(&self) -> u64 {
        self.inner.key_fetches()
    }

    /// Whether answers can be secure (validation in process or a trusted AD
    /// bit); when false, DANE is unavailable.
    pub fn validates(&self) -> bool {
        !matches!(self.inner.mode, Mode::Off)
    }

    /// Checks that the servers answer and, when validating, that the root's
    /// NS RRset validates as secure: a quick way to tell "no network" or "a
    /// path that strips DNSSEC" at start, before mail waits on it.
    pub async fn probe(&self) -> Result<(), DnsError> {
        let answer = self.query(".", RecordType::NS, |r| matches!(r, RData::NS(_)).then_some(())).await;
        let cannot = |why| Err(DnsError::new(DnsErrorKind::CannotValidate(why), ".", "NS"));
        match answer {
            Ok(a) if a.records().is_empty() => Err(DnsError::new(DnsErrorKind::NoRoot, ".", "NS")),
            Ok(a) if self.validates() && a.status != DnssecStatus::Secure => cannot(CannotValidate::RootNs(a.status)),
            Ok(_) => Ok(()),
            Err(e) if *e.kind() == DnsErrorKind::Bogus => cannot(CannotValidate::RootNs(DnssecStatus::Bogus)),
            Err(e) => Err(e),
        }
    }

    /// The TXT RRset at `name` (e.g. `_mta-sts.example.com`), the strings
    /// of each record joined (RFC 7208 §3.3 style, as RFC 8461 §3.1 asks).
    /// Bytes that are not UTF-8 are replaced, so such a record never parses.
    pub async fn txt(&self, name: &str) -> Result<Answer<String>, DnsError> {
        self.query(name, RecordType::TXT, |rdata| match rdata {
            RData::TXT(txt) => {
                let bytes: Vec<u8> = txt.txt_data.iter().flat_map(|s| s.iter().copied()).collect();
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => None,
        })
        .await
    }

    /// The MX RRset of `domain` as it comes (see [`mx_hosts`](Self::mx_hosts)).
    pub async fn mx(&self, domain: &DomainName) -> Result<Answer<MxRecord>, DnsError> {
        self.query(domain.as_str(), RecordType::MX, |rdata| match rdata {
            RData::MX(mx) => Some(MxRecord::new(mx.preference, mx.exchange.to_ascii())),
            _ => None,
        })
        .await
    }

    /// The MX hosts of `domain` in preference order ([`discovery::mx_hosts`]:
    /// RFC 5321 §5.1, RFC 7505, at most [`MAX_MX_HOSTS`]); dropped names are
    /// logged.
    pub async fn mx_hosts(&self, domain: &DomainName) -> Result<MxHosts, DnsError> {
        let hosts = discovery::mx_hosts(domain, self.mx(domain).await?)?;
        log_mx(domain, &hosts);
        Ok(hosts)
    }

    /// The addresses of `host`, A then AAAA, CNAMEs followed
    /// ([`discovery::join_addresses`]).
    pub async fn addresses(&self, host: &DomainName) -> Result<Answer<IpAddr>, DnsError> {
        let (v4, v6) = futures_util::join!(self.a(host), self.aaaa(host));
        discovery::join_addresses(v4, v6)
    }

    async fn a(&self, host: &DomainName) -> Result<Answer<IpAddr>, DnsError> {
        self.query(host.as_str(), RecordType::A, v4).await
    }

    async fn aaaa(&self, host: &DomainName) -> Result<Answer<IpAddr>, DnsError> {
        self.query(host.as_str(), RecordType::AAAA, v6).await
    }

    /// The addresses to connect to for an HTTPS fetch (an MTA-STS policy
    /// host): the A records, and the AAAA records only when there is no
    /// usable A record, asked without DNSSEC validation. The policy host is
    /// authenticated by its certificate, not by DNSSEC (RFC 8461 §3.3): a
    /// forged address leads to a failed TLS handshake, as a bogus one would
    /// have led to no fetch, so neither the signatures nor the other
    /// family's denial need be checked (and a path that cannot validate
    /// does not stop policy fetches). Empty when neither resolves.
    pub async fn connect_addresses(&self, host: &DomainName) -> Vec<IpAddr> {
        let records = |r: Result<Answer<IpAddr>, DnsError>| r.map(|a| a.records().to_vec()).unwrap_or_default();
        match records(self.query_with(&self.connect, host.as_str(), RecordType::A, v4).await) {
            found if !found.is_empty() => found,
            _ => records(self.query_with(&self.connect, host.as_str(), RecordType::AAAA, v6).await),
        }
    }

    /// The TLSA RRset at `_25._tcp.<host>` (RFC 7672 §2.2.3). Records whose
    /// fields cannot be held are kept as they come; unusable ones stay in
    /// the set (the engine tells usable from unusable).
    pub async fn tlsa(&self, host: &DomainName) -> Result<Answer<TlsaRecord>, DnsError> {
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

    /// The DANE facts of one MX host ([`discovery::mx_facts`], RFC 7672
    /// §2.2.2): its address records must be secure for TLSA to be looked
    /// up at all; after a secure CNAME chain, TLSA is looked up at the end
    /// of the chain first and, on a secure denial there, at the host name.
    /// Without validation DANE is [`TlsaFacts::Unavailable`] and nothing is
    /// asked.
    pub async fn mx_facts(&self, host: &DomainName) -> MxFacts {
        discovery::mx_facts(self, host).await
    }

    /// [`mx_facts`](Self::mx_facts) of several hosts, looked up
    /// concurrently, in the order given.
    pub async fn mx_facts_many(&self, hosts: &[DomainName]) -> Vec<MxFacts> {
        futures_util::future::join_all(hosts.iter().map(|host| self.mx_facts(host))).await
    }

    async fn query<T>(
        &self,
        name: &str,
        rtype: RecordType,
        extract: impl Fn(&RData) -> Option<T>,
    ) -> Result<Answer<T>, DnsError> {
        self.query_with(&self.inner, name, rtype, extract).await
    }

    async fn query_with<T>(
        &self,
        lookups: &Lookups,
        name: &str,
        rtype: RecordType,
        extract: impl Fn(&RData) -> Option<T>,
    ) -> Result<Answer<T>, DnsError> {
        let rtype_name = rtype_name(rtype);
        let name = name.trim_end_matches('.');
        // Absolute whether or not it was written with the final dot.
        let fqdn = Name::from_ascii(if name.is_empty() { "." } else { name })
            .map(|mut n| {
                n.set_fqdn(true);
                n
            })
            .map_err(|_| DnsError::new(DnsErrorKind::Malformed(Malformed::BadName), name, rtype_name))?;
        let resolved = lookups.lookup(&fqdn, rtype).await.map_err(|e| lookup_error(e, name, rtype_name))?;
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

impl DnsLookup for DnsResolver {
    fn txt(&self, name: &str) -> impl Future<Output = Result<Answer<String>, DnsError>> + Send {
        DnsResolver::txt(self, name)
    }

    fn mx(&self, domain: &DomainName) -> impl Future<Output = Result<Answer<MxRecord>, DnsError>> + Send {
        DnsResolver::mx(self, domain)
    }

    fn addresses(&self, host: &DomainName) -> impl Future<Output = Result<Answer<IpAddr>, DnsError>> + Send {
        DnsResolver::addresses(self, host)
    }

    fn tlsa(&self, host: &DomainName) -> impl Future<Output = Result<Answer<TlsaRecord>, DnsError>> + Send {
        DnsResolver::tlsa(self, host)
    }

    fn validates(&self) -> bool {
        DnsResolver::validates(self)
    }
}

fn v4(r: &RData) -> Option<IpAddr> {
    if let RData::A(a) = r { Some(IpAddr::V4(a.0)) } else { None }
}

fn v6(r: &RData) -> Option<IpAddr> {
    if let RData::AAAA(a) = r { Some(IpAddr::V6(a.0)) } else { None }
}

/// Logs what [`discovery::mx_hosts`] dropped.
pub(crate) fn log_mx(domain: &DomainName, hosts: &MxHosts) {
    for mx in &hosts.dropped {
        tracing::warn!(domain = %domain, mx = %mx, "MX host dropped: not a valid host name");
    }
    if hosts.truncated {
        tracing::warn!(domain = %domain, "more than {MAX_MX_HOSTS} MX hosts; the least preferred are dropped");
    }
}

/// The servers of `/etc/resolv.conf` (`nameserver` lines, port 53).
fn system_servers() -> Result<Vec<SocketAddr>, DnsError> {
    let text =
        std::fs::read_to_string("/etc/resolv.conf").map_err(|e| config_error(DnsConfigError::ResolvConf(e.kind())))?;
    let servers: Vec<SocketAddr> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect();
    if servers.is_empty() {
        return Err(config_error(DnsConfigError::NoNameserver));
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
        LookupError::Rcode(code) => DnsErrorKind::ResponseCode(u16::from(code)),
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
