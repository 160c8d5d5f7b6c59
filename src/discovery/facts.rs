//! The facts the engine plans from.

use std::sync::Arc;

use super::DnssecStatus;
use crate::cache::{Decision, FetchFailure, NoPolicyReason};
use crate::dane::TlsaRecord;
use crate::name::DomainName;
use crate::sts::{Policy, PolicyId};

/// The TLSA lookup at `_25._tcp.<host>` (RFC 7672 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsaFacts {
    /// A secure TLSA RRset (its records may all be unusable).
    Secure(Vec<TlsaRecord>),
    /// Secure NODATA or NXDOMAIN: the host has no TLSA records.
    SecureNone,
    /// An insecure answer: no DANE for this host.
    Insecure,
    /// DNSSEC validation failed: the host must not be used.
    Bogus,
    /// The lookup failed (SERVFAIL, timeout): the host must not be used.
    Failed,
    /// Not looked up, or the resolver cannot validate (DNSSEC off): DANE
    /// is unavailable, never bogus.
    Unavailable,
}

/// One MX host and its TLSA facts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MxFacts {
    /// The MX host name.
    pub host: DomainName,
    /// The TLSA base domain (RFC 7672 §2.2.2: the host after a secure CNAME
    /// chain; the host itself otherwise).
    pub tlsa_base: DomainName,
    /// The TLSA lookup.
    pub tlsa: TlsaFacts,
}

impl MxFacts {
    /// An MX host whose TLSA base domain is itself.
    pub fn new(host: DomainName, tlsa: TlsaFacts) -> Self {
        Self { tlsa_base: host.clone(), host, tlsa }
    }

    /// Sets the TLSA base domain (after a secure CNAME chain).
    pub fn with_tlsa_base(mut self, base: DomainName) -> Self {
        self.tlsa_base = base;
        self
    }
}

/// What the MTA-STS discovery found (the policy cache's decision).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StsFacts {
    /// A policy applies (any mode).
    Policy {
        /// Its id.
        id: PolicyId,
        /// The policy.
        policy: Arc<Policy>,
    },
    /// The domain has no policy (no TXT record, or nothing live cached).
    NoPolicy,
    /// A policy was announced but could not be had (fetch failed, invalid).
    Unavailable(FetchFailure),
    /// Not looked up.
    NotChecked,
}

impl From<&Decision> for StsFacts {
    fn from(d: &Decision) -> Self {
        match d {
            Decision::Apply { id, policy, .. } => Self::Policy { id: *id, policy: Arc::clone(policy) },
            Decision::NoPolicy(NoPolicyReason::FetchFailed(f))
            | Decision::NoPolicy(NoPolicyReason::Backoff { failure: f, .. }) => Self::Unavailable(f.clone()),
            _ => Self::NoPolicy,
        }
    }
}

/// Everything known about a recipient domain before connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DomainFacts {
    /// The recipient domain.
    pub domain: DomainName,
    /// The MX hosts in preference order (for a domain without MX records,
    /// the domain itself, RFC 5321 §5.1).
    pub mx: Vec<MxFacts>,
    /// The DNSSEC status of the MX RRset (or, without MX records, of the
    /// address records): DANE applies only when it is secure (RFC 7672
    /// §2.2.1).
    pub mx_dnssec: DnssecStatus,
    /// The MTA-STS discovery. For a routed domain with
    /// [`Options::route_policy_domain`](crate::engine::Options::route_policy_domain),
    /// the policy of the route host's domain.
    pub sts: StsFacts,
}

impl DomainFacts {
    /// Facts with the given MX hosts and no MTA-STS policy.
    pub fn new(domain: DomainName, mx: Vec<MxFacts>, mx_dnssec: DnssecStatus) -> Self {
        Self { domain, mx, mx_dnssec, sts: StsFacts::NoPolicy }
    }

    /// Sets the MTA-STS facts.
    pub fn with_sts(mut self, sts: StsFacts) -> Self {
        self.sts = sts;
        self
    }
}
