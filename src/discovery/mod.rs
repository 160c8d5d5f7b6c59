//! Discovery (core, no IO): what DNS and the policy cache say about a
//! recipient domain, turned into the engine's [`DomainFacts`] by the pure
//! procedures of the RFCs.
//!
//! The IO is behind two traits: [`DnsLookup`] (TXT, MX, addresses, TLSA,
//! each an [`Answer`] with its [`DnssecStatus`]) and [`PolicyFetch`] (the
//! HTTPS fetch of RFC 8461 §3.3). The crate's `dns` module implements
//! [`DnsLookup`] with in-process DNSSEC validation; an MTA with a resolver
//! of its own implements the trait instead and keeps every rule below.
//!
//! - [`txt_finding`]: the `_mta-sts` TXT answer → a [`TxtFinding`] (RFC 8461 §3.1);
//! - [`mx_hosts`]: the MX answer → the hosts, with the implicit MX of
//!   RFC 5321 §5.1, the null MX of RFC 7505 and the cap [`MAX_MX_HOSTS`];
//! - [`join_addresses`]: A and AAAA → one answer (a bogus family is never
//!   hidden behind a good one);
//! - [`tlsa_query`]: the address answer → where TLSA is asked (RFC 7672
//!   §2.2.2: only behind secure addresses, at the end of a secure CNAME
//!   chain first);
//! - [`tlsa_facts`]: the TLSA answer → [`TlsaFacts`] (RFC 7672 §2.2.3);
//! - [`gather`]: all of it for one domain, lookups concurrent, the policy
//!   fetched with the cache's single flight.

use std::fmt;
use std::time::Duration;

use crate::name::DomainName;

mod facts;
mod gather;
mod rules;

pub use facts::{DomainFacts, MxFacts, StsFacts, TlsaFacts};
// (CannotValidate, DnsConfigError and Malformed are defined below.)
pub use gather::{
    DnsLookup, Gathered, MxFailure, PolicyFetch, StsDiscovery, Wants, discover_sts, gather, mx_facts, sts_txt,
};
pub use rules::{
    MAX_MX_HOSTS, MxRecord, TlsaQuery, TxtFinding, join_addresses, mx_hosts, tlsa_facts, tlsa_query, txt_finding,
};

/// DNSSEC status of an answer (RFC 4035 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DnssecStatus {
    /// Validated.
    Secure,
    /// Provably unsigned.
    Insecure,
    /// Validation failed.
    Bogus,
    /// Not validated: the resolver cannot validate (DNSSEC off).
    Indeterminate,
}

impl fmt::Display for DnssecStatus {
    /// The RFC 4035 §4.3 words: "secure", "insecure", "bogus", "indeterminate".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Secure => "secure",
            Self::Insecure => "insecure",
            Self::Bogus => "bogus",
            Self::Indeterminate => "indeterminate",
        })
    }
}

impl DnssecStatus {
    /// The weaker of two statuses: bogus < indeterminate < insecure < secure
    /// (an answer is only as good as its weakest part).
    pub fn weakest(self, other: Self) -> Self {
        if self.rank() <= other.rank() { self } else { other }
    }

    fn rank(self) -> u8 {
        match self {
            Self::Bogus => 0,
            Self::Indeterminate => 1,
            Self::Insecure => 2,
            Self::Secure => 3,
        }
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
    /// Another error response code (RFC 1035 §4.1.1, RFC 6895 §2.3).
    ResponseCode(u16),
    /// DNSSEC validation failed (bogus) without any usable answer.
    Bogus,
    /// The domain does not exist (NXDOMAIN) where it must.
    NxDomain,
    /// The domain announces that it accepts no mail (RFC 7505 null MX).
    NullMx,
    /// The answer could not be used; temporary.
    Malformed(Malformed),
    /// The network (sockets, connections): what the system said.
    Network(std::io::ErrorKind),
    /// The servers have no NS records for the root zone: they do not
    /// resolve public names (a probe at start).
    NoRoot,
    /// The configuration is not usable.
    Config(DnsConfigError),
    /// A blocking lookup was called from async code; use the async
    /// resolver instead (temporary: the mail is deferred, never bounced).
    InAsyncContext,
    /// The servers cannot serve DNSSEC (or the network is cut off), so no
    /// answer can be secure.
    CannotValidate(CannotValidate),
}

/// Why an answer could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// No MX record names a usable host.
    NoUsableMxHost,
    /// The name asked is not a DNS name.
    BadName,
    /// The query could not be encoded.
    Encode,
    /// The answer could not be decoded.
    Decode,
    /// The answer is not for the question asked.
    WrongAnswer,
    /// The answer over TCP was truncated too.
    TruncatedOverTcp,
    /// The query is longer than a DNS message may be.
    QueryTooLong,
    /// The chain of trust is deeper than the validator follows.
    ChainTooDeep,
    /// More CNAMEs than the resolver follows.
    TooManyCnames(usize),
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoUsableMxHost => f.write_str("no MX record names a usable host"),
            Self::BadName => f.write_str("the name is not a valid DNS name"),
            Self::Encode => f.write_str("the query cannot be encoded"),
            Self::Decode => f.write_str("the answer cannot be decoded"),
            Self::WrongAnswer => f.write_str("the answer is not for the question asked"),
            Self::TruncatedOverTcp => f.write_str("the answer over TCP is truncated too"),
            Self::QueryTooLong => f.write_str("the query is too long"),
            Self::ChainTooDeep => f.write_str("the chain of trust is too deep"),
            Self::TooManyCnames(n) => write!(f, "more than {n} CNAMEs"),
        }
    }
}

/// Why DNSSEC cannot validate through these servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CannotValidate {
    /// The trust anchor's DNSKEY RRset does not validate.
    AnchorKeys,
    /// The root zone's NS RRset is not secure (it has this status).
    RootNs(DnssecStatus),
}

impl fmt::Display for CannotValidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AnchorKeys => f.write_str("the trust anchor's keys do not validate"),
            Self::RootNs(status) => write!(f, "the root zone's NS RRset is {status}"),
        }
    }
}

/// A DNS configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsConfigError {
    /// The runtime of a blocking resolver could not start.
    Runtime(std::io::ErrorKind),
    /// `/etc/resolv.conf` could not be read.
    ResolvConf(std::io::ErrorKind),
    /// `/etc/resolv.conf` names no nameserver.
    NoNameserver,
    /// Trust-AD with a server that is not on a loopback address.
    TrustAdNotLoopback(std::net::SocketAddr),
    /// Trust-AD with more or fewer than one server.
    TrustAdServerCount(usize),
    /// The trust anchor text is not DNSKEY records in presentation form.
    TrustAnchor,
}

impl fmt::Display for DnsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Runtime(e) => write!(f, "cannot start the DNS runtime: {e}"),
            Self::ResolvConf(e) => {
                write!(f, "cannot read the system DNS configuration /etc/resolv.conf: {e}; configure the servers")
            }
            Self::NoNameserver => {
                f.write_str("/etc/resolv.conf names no nameserver; configure the DNS servers explicitly")
            }
            Self::TrustAdNotLoopback(server) => write!(
                f,
                "the AD bit is trusted only from a validating resolver on a loopback address, not {server}; \
                 run a local validating resolver or use in-process validation"
            ),
            Self::TrustAdServerCount(n) => write!(
                f,
                "trusting the AD bit needs exactly one server, a validating resolver on a loopback address ({n} given)"
            ),
            Self::TrustAnchor => f.write_str(
                "the trust anchor is not DNSKEY records in presentation form (\". 3600 IN DNSKEY 257 3 8 …\")",
            ),
        }
    }
}

/// The mnemonic of a DNS response code (RFC 6895 §2.3), for operators.
fn rcode_name(code: u16) -> &'static str {
    match code {
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        _ => "unassigned",
    }
}

/// A DNS lookup that failed: what was asked and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsError {
    kind: DnsErrorKind,
    name: String,
    rtype: &'static str,
}

impl DnsError {
    /// A failed lookup of `name` for the record type `rtype` ("MX", "TLSA"…):
    /// what an implementation of [`DnsLookup`] returns.
    pub fn new(kind: DnsErrorKind, name: impl Into<String>, rtype: &'static str) -> Self {
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
                | DnsErrorKind::NoRoot
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
            DnsErrorKind::ResponseCode(c) => {
                write!(f, "{t} lookup of {name}: error response {c} ({}); retry later", rcode_name(*c))
            }
            DnsErrorKind::Bogus => {
                write!(f, "{t} lookup of {name}: DNSSEC validation failed (bogus); the zone's signatures must be fixed")
            }
            DnsErrorKind::NxDomain => write!(f, "{name} does not exist (NXDOMAIN); check the recipient domain"),
            DnsErrorKind::NullMx => write!(f, "{name} accepts no mail (null MX, RFC 7505)"),
            DnsErrorKind::Malformed(m) => write!(f, "{t} lookup of {name}: unusable answer: {m}; retry later"),
            DnsErrorKind::Network(m) => write!(f, "{t} lookup of {name}: network error: {m}; retry later"),
            DnsErrorKind::NoRoot => f.write_str(
                "the servers have no NS records for the root zone: they do not resolve public names; \
                 check the DNS servers",
            ),
            DnsErrorKind::Config(m) => write!(f, "DNS configuration: {m}"),
            DnsErrorKind::CannotValidate(why) => write!(
                f,
                "DNSSEC validation does not work with these DNS servers ({why}): no answer can be secure, so \
                 DANE cannot apply; use servers that return DNSSEC records, or turn DNSSEC off"
            ),
            DnsErrorKind::InAsyncContext => {
                write!(f, "{t} lookup of {name}: blocking DNS call from async code; use the async resolver (`inner()`)")
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
    /// An answer with this status, no TTL and no CNAME chain.
    pub fn new(rrset: Rrset<T>, status: DnssecStatus) -> Self {
        Self { rrset, status, ttl: Duration::ZERO, canonical: None }
    }

    /// Sets the TTL.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the end of the CNAME chain the records were found at.
    pub fn with_canonical(mut self, name: impl Into<String>) -> Self {
        self.canonical = Some(name.into());
        self
    }

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
    /// Exchange names dropped because they are not host names.
    pub dropped: Vec<String>,
    /// More than [`MAX_MX_HOSTS`] hosts: the least preferred were dropped.
    pub truncated: bool,
}
