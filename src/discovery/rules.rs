//! The pure procedures of discovery: one DNS answer in, what it means out.

use std::net::IpAddr;

use super::{Answer, DnsError, DnsErrorKind, DnssecStatus, Malformed, MxFacts, MxHosts, Rrset, TlsaFacts};
use crate::cache::TxtLookup;
use crate::dane::TlsaRecord;
use crate::name::DomainName;
use crate::sts::{TxtError, TxtRecord, select_txt};

/// The most MX hosts kept for one domain (the most preferred): a hostile
/// domain cannot make one resolve ask for thousands of TLSA records.
/// Postfix tries 5 addresses by default (`smtp_mx_address_limit`).
pub const MAX_MX_HOSTS: usize = 32;

/// One MX record as the DNS has it (RFC 1035 §3.3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxRecord {
    /// The preference (lower is preferred).
    pub preference: u16,
    /// The exchange name as written (`.` for a null MX).
    pub exchange: String,
}

impl MxRecord {
    /// An MX record.
    pub fn new(preference: u16, exchange: impl Into<String>) -> Self {
        Self { preference, exchange: exchange.into() }
    }
}

/// What the `_mta-sts.<domain>` TXT lookup found (RFC 8461 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxtFinding {
    /// Exactly one valid STSv1 record.
    Record(TxtRecord),
    /// No record starting with `v=STSv1` (or no TXT RRset at all).
    NoRecord,
    /// Records that cannot be used (two of them, or a bad one).
    Invalid(TxtError),
    /// The lookup failed.
    Failed(DnsError),
}

impl TxtFinding {
    /// What the policy cache is told ([`PolicyCache::decide`](crate::cache::PolicyCache::decide)).
    pub fn lookup(&self) -> TxtLookup {
        match self {
            Self::Record(r) => TxtLookup::Record(r.policy_id()),
            Self::NoRecord => TxtLookup::NoRecord,
            Self::Invalid(_) => TxtLookup::Invalid,
            Self::Failed(_) => TxtLookup::Failed,
        }
    }
}

/// The TXT answer at `_mta-sts.<domain>` as MTA-STS reads it (RFC 8461
/// §3.1): NODATA and NXDOMAIN are "no record"; of the records, those not
/// starting with `v=STSv1` are ignored, and more than one STSv1 record is
/// invalid.
pub fn txt_finding(answer: Result<Answer<String>, DnsError>) -> TxtFinding {
    match answer {
        Err(e) => TxtFinding::Failed(e),
        Ok(answer) => match answer.rrset {
            Rrset::Records(records) => match select_txt(records.iter().map(String::as_str)) {
                Ok(record) => TxtFinding::Record(record),
                Err(TxtError::NoRecord) => TxtFinding::NoRecord,
                Err(e) => TxtFinding::Invalid(e),
            },
            Rrset::NoData | Rrset::NxDomain => TxtFinding::NoRecord,
        },
    }
}

/// The hosts to deliver to for `domain` from its MX answer (RFC 5321
/// §5.1): in preference order (equal preferences keep the answer's order),
/// duplicates dropped, names that are not host names dropped, at most
/// [`MAX_MX_HOSTS`]; the domain itself when it has no MX records (NODATA).
/// Errors: a domain that does not exist ([`DnsErrorKind::NxDomain`]), a
/// null MX (RFC 7505 §3: the single record `0 .`; [`DnsErrorKind::NullMx`])
/// and an RRset that names no usable host (temporary: it may be forged).
pub fn mx_hosts(domain: &DomainName, answer: Answer<MxRecord>) -> Result<MxHosts, DnsError> {
    let error = |kind| Err(DnsError::new(kind, domain.as_str(), "MX"));
    let (status, ttl) = (answer.status, answer.ttl);
    let mut records = match answer.rrset {
        Rrset::NxDomain => return error(DnsErrorKind::NxDomain),
        Rrset::NoData => {
            return Ok(MxHosts {
                hosts: vec![domain.clone()],
                implicit: true,
                status,
                ttl,
                dropped: Vec::new(),
                truncated: false,
            });
        }
        Rrset::Records(r) => r,
    };
    if let [only] = records.as_slice()
        && only.exchange.trim_end_matches('.').is_empty()
    {
        return error(DnsErrorKind::NullMx);
    }
    records.sort_by_key(|r| r.preference);
    let (mut hosts, mut dropped, mut truncated) = (Vec::<DomainName>::with_capacity(records.len()), Vec::new(), false);
    for record in records {
        if hosts.len() == MAX_MX_HOSTS {
            truncated = true;
            break;
        }
        match DomainName::parse(record.exchange.trim_end_matches('.')) {
            Ok(host) if !hosts.contains(&host) => hosts.push(host),
            Ok(_) => {}
            Err(_) => dropped.push(record.exchange),
        }
    }
    if hosts.is_empty() {
        return error(DnsErrorKind::Malformed(Malformed::NoUsableMxHost));
    }
    Ok(MxHosts { hosts, implicit: false, status, ttl, dropped, truncated })
}

/// The A and AAAA answers of one host as one answer. The status is the
/// weakest of both; the canonical name the end of either chain. A bogus
/// family (or SERVFAIL, a validating resolver's bogus) is never hidden
/// behind a good one (RFC 4035 §5, RFC 7672 §2.2.2: the host is not used);
/// another failure of one family leaves the other's answer.
pub fn join_addresses(
    v4: Result<Answer<IpAddr>, DnsError>,
    v6: Result<Answer<IpAddr>, DnsError>,
) -> Result<Answer<IpAddr>, DnsError> {
    let (v4, v6) = match (v4, v6) {
        (Ok(a), Ok(b)) => (a, b),
        (Ok(_), Err(e)) | (Err(e), Ok(_)) if matches!(e.kind(), DnsErrorKind::Bogus | DnsErrorKind::ServerFailure) => {
            return Err(e);
        }
        (Ok(a), Err(_)) | (Err(_), Ok(a)) => return Ok(a),
        (Err(e), Err(_)) => return Err(e),
    };
    let status = v4.status.weakest(v6.status);
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

/// Where to look up TLSA for an MX host, from its address answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsaQuery {
    /// Nothing to ask: the facts are known.
    Known(TlsaFacts),
    /// Ask at `_25._tcp.<host>`; when `first` is set (the end of a secure
    /// CNAME chain), ask there first and at the host only on a secure
    /// denial there.
    Ask {
        /// The end of the CNAME chain, when the host is an alias.
        first: Option<DomainName>,
    },
}

/// RFC 7672 §2.2.2 for one MX host: TLSA is looked up only when its
/// address records are secure (insecure addresses mean no DANE, bogus ones
/// or a failure mean the host is not used); after a secure CNAME chain,
/// first at the end of the chain. Without validation (`validates` false),
/// or with a status that was not validated, DANE is unavailable.
pub fn tlsa_query(host: &DomainName, validates: bool, addresses: Result<&Answer<IpAddr>, &DnsError>) -> TlsaQuery {
    if !validates {
        return TlsaQuery::Known(TlsaFacts::Unavailable);
    }
    let addresses = match addresses {
        Ok(a) => a,
        Err(e) if *e.kind() == DnsErrorKind::Bogus => return TlsaQuery::Known(TlsaFacts::Bogus),
        Err(_) => return TlsaQuery::Known(TlsaFacts::Failed),
    };
    match addresses.status {
        DnssecStatus::Secure => {}
        DnssecStatus::Bogus => return TlsaQuery::Known(TlsaFacts::Bogus),
        DnssecStatus::Insecure => return TlsaQuery::Known(TlsaFacts::Insecure),
        DnssecStatus::Indeterminate => return TlsaQuery::Known(TlsaFacts::Unavailable),
    }
    let first = addresses.canonical.as_deref().and_then(|c| DomainName::parse(c).ok()).filter(|c| c != host);
    TlsaQuery::Ask { first }
}

/// The TLSA answer as DANE reads it (RFC 7672 §2.2.3): records only from a
/// secure RRset; a secure denial is "no TLSA"; insecure means no DANE;
/// bogus or a failed lookup mean the host is not used; not validated means
/// DANE is unavailable.
pub fn tlsa_facts(answer: Result<Answer<TlsaRecord>, DnsError>) -> TlsaFacts {
    match answer {
        Err(e) if *e.kind() == DnsErrorKind::Bogus => TlsaFacts::Bogus,
        Err(_) => TlsaFacts::Failed,
        Ok(answer) => match (answer.status, answer.rrset) {
            (DnssecStatus::Secure, Rrset::Records(records)) => TlsaFacts::Secure(records),
            (DnssecStatus::Secure, _) => TlsaFacts::SecureNone,
            (DnssecStatus::Bogus, _) => TlsaFacts::Bogus,
            (DnssecStatus::Insecure, _) => TlsaFacts::Insecure,
            (DnssecStatus::Indeterminate, _) => TlsaFacts::Unavailable,
        },
    }
}

/// The facts of a host whose TLSA lookup at the end of its CNAME chain
/// (`target`) gave `at_target`: used unless that was a secure denial.
pub(super) fn at_target(host: &DomainName, target: DomainName, at_target: TlsaFacts) -> Option<MxFacts> {
    (at_target != TlsaFacts::SecureNone).then(|| MxFacts::new(host.clone(), at_target).with_tlsa_base(target))
}
