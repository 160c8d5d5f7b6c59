//! The IO seams and the one procedure that uses them.

use std::future::Future;
use std::net::IpAddr;
use std::time::SystemTime;

use super::rules::at_target;
use super::{
    Answer, DnsError, DnssecStatus, DomainFacts, MxFacts, MxHosts, MxRecord, StsFacts, TlsaFacts, TlsaQuery,
    TxtFinding, mx_hosts, tlsa_facts, tlsa_query, txt_finding,
};
use crate::cache::{Begin, Decision, FetchFailure, PolicyCache};
use crate::dane::TlsaRecord;
use crate::name::DomainName;
use crate::sts::{Policy, fetch::txt_name};

/// The DNS lookups discovery needs, each answer with its DNSSEC status.
///
/// The crate's `dns::DnsResolver` implements it (feature `dns`); an MTA
/// with a resolver of its own implements it instead. An implementation
/// reports what the DNS said and nothing more: NXDOMAIN and NODATA as
/// [`Rrset`](super::Rrset) values, failures as [`DnsError`]s (a bogus
/// answer as [`DnsErrorKind::Bogus`](super::DnsErrorKind::Bogus)), CNAMEs
/// followed with [`Answer::canonical`] set and the status the weakest of
/// the chain. The RFC rules (implicit MX, null MX, the TLSA base domain)
/// are applied by discovery, not by the implementation.
pub trait DnsLookup: Send + Sync {
    /// The TXT RRset at `name`, the strings of each record joined.
    fn txt(&self, name: &str) -> impl Future<Output = Result<Answer<String>, DnsError>> + Send;
    /// The MX RRset of `domain`, as it comes.
    fn mx(&self, domain: &DomainName) -> impl Future<Output = Result<Answer<MxRecord>, DnsError>> + Send;
    /// The A and AAAA records of `host` (see [`join_addresses`](super::join_addresses)).
    fn addresses(&self, host: &DomainName) -> impl Future<Output = Result<Answer<IpAddr>, DnsError>> + Send;
    /// The TLSA RRset at `_25._tcp.<host>` (RFC 7672 §2.2.3).
    fn tlsa(&self, host: &DomainName) -> impl Future<Output = Result<Answer<TlsaRecord>, DnsError>> + Send;
    /// Whether answers can be secure at all (validation in process, or a
    /// trusted AD bit). When false, DANE is unavailable and no TLSA is asked.
    fn validates(&self) -> bool {
        true
    }
}

/// The HTTPS fetch of a domain's MTA-STS policy (RFC 8461 §3.3): the
/// crate's `resolver` implements it with `fetch::PolicyFetcher`; a test or
/// an MTA with an HTTP client of its own implements it instead.
pub trait PolicyFetch: Send + Sync {
    /// The policy of `domain` from [`policy_url`](crate::sts::fetch::policy_url),
    /// or why there is none (with its TLS-RPT result type).
    fn fetch(&self, domain: &DomainName) -> impl Future<Output = Result<Policy, FetchFailure>> + Send;
}

/// What to look up for a destination: made from the destination controls
/// by [`DestinationControls::wants`](crate::engine::DestinationControls::wants).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Wants {
    /// The MTA-STS policy domain (the recipient domain, or a route's host
    /// under RFC 8461 §3.4); `None` when MTA-STS is off for it.
    pub sts: Option<DomainName>,
    /// Whether to look up TLSA for the MX hosts (DANE support not `None`).
    pub dane: bool,
    /// An SMTP route: the one host, no MX lookup, no DANE.
    pub route: Option<DomainName>,
}

impl Wants {
    /// Everything: MTA-STS for the domain itself and DANE, no route.
    pub fn all(domain: &DomainName) -> Self {
        Self { sts: Some(domain.clone()), dane: true, route: None }
    }

    /// Sets the MTA-STS policy domain (`None`: MTA-STS off).
    pub fn sts(mut self, domain: Option<DomainName>) -> Self {
        self.sts = domain;
        self
    }

    /// Sets whether TLSA is looked up.
    pub fn dane(mut self, on: bool) -> Self {
        self.dane = on;
        self
    }

    /// Sets an SMTP route.
    pub fn route(mut self, host: Option<DomainName>) -> Self {
        self.route = host;
        self
    }
}

/// The MX lookup failed, the domain does not exist, or it accepts no mail
/// ([`DnsError::kind`] says which). `sts` is what the MTA-STS discovery
/// found meanwhile: a live policy stays in force whatever the MX answer
/// was (an attacker who forges the MX RRset must not turn the policy off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxFailure {
    /// The MX lookup's error.
    pub error: DnsError,
    /// The MTA-STS facts gathered alongside.
    pub sts: StsFacts,
}

/// What [`gather`] found, with what a caller logs.
#[derive(Debug)]
#[non_exhaustive]
pub struct Gathered {
    /// The facts, or the MX failure.
    pub facts: Result<DomainFacts, MxFailure>,
    /// The MTA-STS discovery, when it was made.
    pub sts: Option<StsDiscovery>,
    /// The MX hosts as the answer gave them, when it was usable.
    pub mx: Option<MxHosts>,
}

/// The MTA-STS discovery of one policy domain: the TXT record, then the
/// cache (which fetched when it had to).
#[derive(Debug)]
#[non_exhaustive]
pub struct StsDiscovery {
    /// The policy domain.
    pub domain: DomainName,
    /// The TXT lookup.
    pub txt: TxtFinding,
    /// The cache's decision.
    pub decision: Decision,
    /// Whether this lookup made the fetch (rather than a cache hit or
    /// waiting for another lookup's fetch).
    pub fetched: bool,
}

/// The `_mta-sts` TXT lookup of `domain` (RFC 8461 §3.1).
pub async fn sts_txt<L: DnsLookup>(lookup: &L, domain: &DomainName) -> TxtFinding {
    txt_finding(lookup.txt(&txt_name(domain)).await)
}

/// The MTA-STS discovery of `domain` at `now`: the TXT lookup, then the
/// cache; a fetch when the cache asks for one, one for any number of
/// concurrent discoveries of the same domain and id (RFC 8461 §3.3, §5.1).
pub async fn discover_sts<L: DnsLookup, F: PolicyFetch>(
    lookup: &L,
    cache: &PolicyCache,
    fetch: &F,
    domain: &DomainName,
    now: SystemTime,
) -> StsDiscovery {
    let txt = sts_txt(lookup, domain).await;
    let (decision, fetched) = match cache.begin(domain, txt.lookup(), now) {
        Begin::Decided(decision) => (decision, false),
        Begin::Wait(flight) => (flight.await, false),
        Begin::Fetch(ticket) => (ticket.finish(fetch.fetch(domain).await), true),
    };
    StsDiscovery { domain: domain.clone(), txt, decision, fetched }
}

/// The DANE facts of one MX host (RFC 7672 §2.2.2, [`tlsa_query`] and
/// [`tlsa_facts`]): its addresses first, then TLSA where they say so.
pub async fn mx_facts<L: DnsLookup>(lookup: &L, host: &DomainName) -> MxFacts {
    if !lookup.validates() {
        return MxFacts::new(host.clone(), TlsaFacts::Unavailable);
    }
    let addresses = lookup.addresses(host).await;
    match tlsa_query(host, true, addresses.as_ref()) {
        TlsaQuery::Known(facts) => MxFacts::new(host.clone(), facts),
        TlsaQuery::Ask { first } => {
            if let Some(target) = first {
                let facts = tlsa_facts(lookup.tlsa(&target).await);
                if let Some(found) = at_target(host, target, facts) {
                    return found;
                }
            }
            MxFacts::new(host.clone(), tlsa_facts(lookup.tlsa(host).await))
        }
    }
}

/// Everything known about `domain` before connecting, as [`Wants`] asks:
/// the MTA-STS discovery and the MX lookup run together, then the TLSA
/// facts of every MX host together. A routed destination needs no MX
/// lookup (its one host has no DANE); MTA-STS and TLSA failures are facts,
/// only an MX failure is an error ([`MxFailure`]).
pub async fn gather<L: DnsLookup, F: PolicyFetch>(
    lookup: &L,
    cache: &PolicyCache,
    fetch: &F,
    domain: &DomainName,
    wants: &Wants,
    now: SystemTime,
) -> Gathered {
    let sts = async {
        match &wants.sts {
            Some(d) => Some(discover_sts(lookup, cache, fetch, d, now).await),
            None => None,
        }
    };
    let mx = async {
        if let Some(route) = &wants.route {
            return Ok((vec![MxFacts::new(route.clone(), TlsaFacts::Unavailable)], DnssecStatus::Insecure, None));
        }
        let hosts = mx_hosts(domain, lookup.mx(domain).await?)?;
        let facts = if wants.dane {
            futures_util::future::join_all(hosts.hosts.iter().map(|h| mx_facts(lookup, h))).await
        } else {
            hosts.hosts.iter().map(|h| MxFacts::new(h.clone(), TlsaFacts::Unavailable)).collect()
        };
        Ok::<_, DnsError>((facts, hosts.status, Some(hosts)))
    };
    let (sts, mx) = futures_util::join!(sts, mx);
    let sts_facts = sts.as_ref().map_or(StsFacts::NotChecked, |d| StsFacts::from(&d.decision));
    match mx {
        Ok((facts, status, hosts)) => {
            Gathered { facts: Ok(DomainFacts::new(domain.clone(), facts, status).with_sts(sts_facts)), sts, mx: hosts }
        }
        Err(error) => Gathered { facts: Err(MxFailure { error, sts: sts_facts }), sts, mx: None },
    }
}
