//! Verifying a server's certificate chain against its TLSA records
//! (RFC 7672 §3.1, §3.2; RFC 7671 §5, §9).

use std::fmt;

use ring::digest;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use webpki::{ALL_VERIFICATION_ALGS, EndEntityCert, KeyUsage, anchor_from_trusted_cert};

use super::record::{CertUsage, MatchingType, Selector, TlsaRecord};
use super::x509::{self as der, Certificate};
use crate::ResultType;

/// The result of [`verify_chain`]: authenticated by a record, or the reason
/// no record authenticated the peer.
#[must_use = "a DANE outcome says whether the peer may be trusted"]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DaneOutcome {
    /// A usable record authenticated the chain.
    Authenticated(DaneMatch),
    /// No record did; the failure says why.
    Failed(DaneFailure),
}

impl DaneOutcome {
    /// Whether the peer is authenticated.
    pub fn is_authenticated(&self) -> bool {
        matches!(self, Self::Authenticated(_))
    }

    /// What matched, when authenticated.
    pub fn matched(&self) -> Option<&DaneMatch> {
        match self {
            Self::Authenticated(m) => Some(m),
            Self::Failed(_) => None,
        }
    }

    /// Why it failed, when not authenticated.
    pub fn failure(&self) -> Option<&DaneFailure> {
        match self {
            Self::Failed(f) => Some(f),
            Self::Authenticated(_) => None,
        }
    }
}

/// Which record authenticated the chain, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DaneMatch {
    /// The index of the record in the slice given to [`verify_chain`].
    pub record_index: usize,
    /// The record.
    pub record: TlsaRecord,
    /// Depth in the validated path: 0 for the server certificate
    /// (DANE-EE), the trust anchor's depth for DANE-TA (1 when the anchor
    /// issued the server certificate).
    pub depth: usize,
    /// Where the matching certificate stood in the chain the server sent;
    /// `None` for a DANE-TA `2 0 0` record whose certificate was not sent.
    pub chain_index: Option<usize>,
    /// The reference name the server certificate matched (DANE-TA only).
    pub name: Option<String>,
}

/// Why a chain was not authenticated. Each maps to a TLS-RPT result type
/// ([`result_type`](Self::result_type)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DaneFailure {
    /// The server sent no certificate.
    #[error("the server presented no certificate")]
    EmptyChain,
    /// No record is usable for SMTP (RFC 7672 §3.1). The caller requires
    /// TLS without authentication in this case (RFC 7672 §2.2).
    #[error(
        "no TLSA record is usable for SMTP ({count} published; RFC 7672 §3.1 needs usage 2 or 3, selector 0 or 1, matching type 0, 1 or 2); the receiving domain must fix its TLSA records"
    )]
    NoUsableRecords {
        /// How many records there were.
        count: usize,
    },
    /// The server certificate is not DER X.509.
    #[error("the certificate at position {index} of the server's chain is not a valid DER X.509 certificate")]
    MalformedCertificate {
        /// Its position in the chain the server sent.
        index: usize,
    },
    /// No usable record matches the server certificate (DANE-EE) or a CA
    /// certificate the server sent (DANE-TA).
    #[error(
        "no TLSA record matches the server certificate (DANE-EE) or a certificate the server sent after it (DANE-TA; the server must send its trust anchor, RFC 7672 §3.1.2); the receiving domain must update its TLSA records or its certificate"
    )]
    NoMatch,
    /// A DANE-TA anchor matched, but a certificate of the path is outside
    /// its validity period.
    #[error("a certificate of the DANE-TA path{} is expired or not yet valid; the receiving server must renew it", at_position(*.chain_index))]
    Expired {
        /// The position in the server's chain of the first certificate
        /// found outside its validity period, when it was sent.
        chain_index: Option<usize>,
    },
    /// A DANE-TA path was built, but the server certificate names none of
    /// the reference names (RFC 7672 §3.2.3).
    #[error(
        "the server certificate names none of {names:?} in its subject alternative names (DANE-TA, RFC 7672 §3.2.3); the receiving server needs a certificate for its MX host name"
    )]
    NameMismatch {
        /// The reference names tried.
        names: Vec<String>,
    },
    /// A DANE-TA anchor matched, but the path from the server certificate
    /// to it is not valid.
    #[error("a TLSA record matches a certificate the server sent, but the path to it is invalid: {problem}")]
    PathInvalid {
        /// What is wrong with the path.
        problem: PathProblem,
    },
}

fn at_position(index: Option<usize>) -> String {
    index.map(|i| format!(" (position {i} of the server's chain)")).unwrap_or_default()
}

impl DaneFailure {
    /// The TLS-RPT result type of this failure (RFC 8460 §4.3).
    pub fn result_type(&self) -> ResultType {
        match self {
            Self::NoUsableRecords { .. } => ResultType::TlsaInvalid,
            Self::NoMatch => ResultType::CertificateNotTrusted,
            Self::Expired { .. } => ResultType::CertificateExpired,
            Self::NameMismatch { .. } => ResultType::CertificateHostMismatch,
            Self::PathInvalid { problem: PathProblem::UnknownIssuer } => ResultType::CertificateNotTrusted,
            Self::EmptyChain | Self::MalformedCertificate { .. } | Self::PathInvalid { .. } => {
                ResultType::ValidationFailure
            }
        }
    }

    /// Always `false`: the same chain and records fail the same way; the
    /// delivery is deferred by the engine, not retried here.
    pub fn is_temporary(&self) -> bool {
        false
    }

    /// How specific the failure is, to report the most telling one when
    /// several DANE-TA anchors were tried.
    fn rank(&self) -> u8 {
        match self {
            Self::NameMismatch { .. } => 4,
            Self::Expired { .. } => 3,
            Self::PathInvalid { .. } => 2,
            _ => 1,
        }
    }
}

/// What is wrong with a DANE-TA path (RFC 7671 §5.2.2, RFC 5280 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathProblem {
    /// The chain does not lead from the server certificate to the anchor.
    UnknownIssuer,
    /// A certificate between the server certificate and the anchor is not a CA.
    IssuerNotCa,
    /// The anchor certificate is not a CA (basicConstraints cA is not set,
    /// and it is not a self-issued v1 certificate).
    AnchorNotCa,
    /// A pathLenConstraint is exceeded.
    PathLength,
    /// The server certificate has an extendedKeyUsage without serverAuth.
    ExtendedKeyUsage,
    /// The server certificate is itself a CA certificate.
    ServerCertificateIsCa,
    /// A signature does not verify, or uses an unsupported algorithm.
    BadSignature,
    /// The server certificate is not X.509 v3, which path validation needs.
    UnsupportedCertificate,
    /// Anything else rustls-webpki reports.
    Other(webpki::Error),
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownIssuer => f.write_str("the chain does not lead to the trust anchor"),
            Self::IssuerNotCa => f.write_str("an intermediate certificate is not a CA"),
            Self::AnchorNotCa => f.write_str("the trust anchor certificate is not a CA"),
            Self::PathLength => f.write_str("a path length constraint is exceeded"),
            Self::ExtendedKeyUsage => f.write_str("the server certificate is not valid for serverAuth"),
            Self::ServerCertificateIsCa => f.write_str("the server certificate is a CA certificate"),
            Self::BadSignature => f.write_str("a signature does not verify or uses an unsupported algorithm"),
            Self::UnsupportedCertificate => f.write_str("the server certificate is not X.509 v3"),
            Self::Other(e) => write!(f, "rustls-webpki: {e}"),
        }
    }
}

/// Verifies the chain a server presented (leaf first) against its TLSA
/// records (RFC 7672 §3.1, §3.2).
///
/// - Only records usable for SMTP count
///   ([`TlsaRecord::is_usable_for_smtp`]); among the digest records of one
///   usage and selector only the strongest matching type counts (RFC 7671
///   §9: SHA2-512 over SHA2-256; Full(0) records always count).
/// - DANE-EE(3): the server certificate (depth 0) matches a record. No name,
///   date or chain check (RFC 7672 §3.1.1); X.509 v1 and self-signed
///   certificates work.
/// - DANE-TA(2): a certificate the server sent after its own (depth ≥ 1;
///   never the server certificate itself) matches a record, or a `2 0 0`
///   record carries the anchor certificate; then the path from the server
///   certificate to that anchor is validated with rustls-webpki (dates, CA
///   flags, path length, serverAuth EKU); the anchor must be a CA, within
///   its dates and its own path length; and the server certificate must
///   name one of `names` in a DNS subject alternative name, a wildcard only
///   as the whole left-most label, the CN never (RFC 7672 §3.2.3).
///
/// `names` are the reference identifiers: the TLSA base domain and the MX
/// host name (RFC 7672 §3.2.2), with or without a trailing dot.
///
/// Only the certificates are checked here: the caller's TLS stack must
/// verify the handshake signature with the server certificate's key.
pub fn verify_chain(
    chain: &[CertificateDer<'_>],
    records: &[TlsaRecord],
    names: &[&str],
    now: UnixTime,
) -> DaneOutcome {
    match verify(chain, records, names, now) {
        Ok(m) => DaneOutcome::Authenticated(m),
        Err(f) => DaneOutcome::Failed(f),
    }
}

fn verify(
    chain: &[CertificateDer<'_>],
    records: &[TlsaRecord],
    names: &[&str],
    now: UnixTime,
) -> Result<DaneMatch, DaneFailure> {
    let Some(leaf_der) = chain.first() else {
        return Err(DaneFailure::EmptyChain);
    };
    let usable = strongest(records);
    if usable.is_empty() {
        return Err(DaneFailure::NoUsableRecords { count: records.len() });
    }
    // DANE-EE needs only the key (RFC 7671 §5.1); the TA path has webpki
    // read the whole server certificate.
    let leaf_spki = der::spki_of(leaf_der).ok_or(DaneFailure::MalformedCertificate { index: 0 })?;
    let found = |index: usize, depth, chain_index, name| DaneMatch {
        record_index: index,
        record: records[index].clone(),
        depth,
        chain_index,
        name,
    };

    // DANE-EE(3): the server certificate alone (RFC 7672 §3.1.1).
    let mut ee = usable.iter().filter(|&&i| records[i].usage() == CertUsage::DaneEe);
    if let Some(&index) = ee.find(|&&i| matches(&records[i], leaf_der, leaf_spki)) {
        return Ok(found(index, 0, Some(0), None));
    }

    // DANE-TA(2): anchors among the certificates sent after the server's
    // own, then full certificates of `2 0 0` records (RFC 7672 §3.1.2).
    let ta: Vec<usize> = usable.iter().copied().filter(|&i| records[i].usage() == CertUsage::DaneTa).collect();
    let mut anchors: Vec<Anchor<'_>> = Vec::new();
    for (chain_index, cert_der) in chain.iter().enumerate().skip(1) {
        if cert_der.as_ref() == leaf_der.as_ref() || anchors.iter().any(|a| a.der == cert_der.as_ref()) {
            continue; // never the server certificate; each anchor once
        }
        // Matched by the key alone; only an anchor is read whole.
        let Some(spki) = der::spki_of(cert_der) else {
            continue;
        };
        if let Some(&index) = ta.iter().find(|&&i| matches(&records[i], cert_der, spki))
            && let Some(cert) = der::parse_certificate(cert_der)
        {
            anchors.push(Anchor { der: cert_der, cert, record_index: index, chain_index: Some(chain_index) });
        }
    }
    for &index in &ta {
        let r = &records[index];
        if (r.selector(), r.matching_type()) != (Selector::Full, MatchingType::Full) {
            continue;
        }
        if anchors.iter().any(|a| a.der == r.data()) {
            continue;
        }
        // Usable, so the data parses.
        if let Some(cert) = der::parse_certificate(r.data()) {
            anchors.push(Anchor { der: r.data(), cert, record_index: index, chain_index: None });
        }
    }

    let mut failure = DaneFailure::NoMatch;
    for anchor in &anchors {
        match validate_path(chain, leaf_der, anchor, names, now) {
            Ok((depth, name)) => {
                return Ok(found(anchor.record_index, depth, anchor.chain_index, Some(name)));
            }
            Err(f) if f.rank() > failure.rank() => failure = f,
            Err(_) => {}
        }
    }
    Err(failure)
}

/// A candidate DANE-TA trust anchor.
struct Anchor<'a> {
    der: &'a [u8],
    cert: Certificate<'a>,
    record_index: usize,
    chain_index: Option<usize>,
}

/// The indexes of the records that count: usable for SMTP, and for digest
/// records only the strongest matching type of their usage and selector
/// (RFC 7671 §9).
fn strongest(records: &[TlsaRecord]) -> Vec<usize> {
    let strength = |m: MatchingType| match m {
        MatchingType::Sha256 => 1,
        MatchingType::Sha512 => 2,
        _ => 0,
    };
    let usable: Vec<usize> = (0..records.len()).filter(|&i| records[i].is_usable_for_smtp()).collect();
    usable
        .iter()
        .copied()
        .filter(|&i| {
            let r = &records[i];
            let s = strength(r.matching_type());
            s == 0
                || !usable.iter().any(|&j| {
                    let o = &records[j];
                    o.usage() == r.usage() && o.selector() == r.selector() && strength(o.matching_type()) > s
                })
        })
        .collect()
}

/// Whether `record` matches the certificate `cert_der` (RFC 6698 §2.1).
fn matches(record: &TlsaRecord, cert_der: &[u8], spki: &[u8]) -> bool {
    let selected = match record.selector() {
        Selector::Full => cert_der,
        Selector::Spki => spki,
        _ => return false,
    };
    match record.matching_type() {
        MatchingType::Full => selected == record.data(),
        MatchingType::Sha256 => digest::digest(&digest::SHA256, selected).as_ref() == record.data(),
        MatchingType::Sha512 => digest::digest(&digest::SHA512, selected).as_ref() == record.data(),
        _ => false,
    }
}

/// Validates the path from the server certificate to `anchor` and the
/// names (RFC 7672 §3.1.2, §3.2.3). Returns the anchor's depth and the
/// reference name that matched.
fn validate_path(
    chain: &[CertificateDer<'_>],
    leaf_der: &CertificateDer<'_>,
    anchor: &Anchor<'_>,
    names: &[&str],
    now: UnixTime,
) -> Result<(usize, String), DaneFailure> {
    let invalid = |problem| DaneFailure::PathInvalid { problem };
    let leaf = EndEntityCert::try_from(leaf_der).map_err(|e| invalid(path_problem(&e)))?;
    let anchor_der = CertificateDer::from(anchor.der);
    let trust_anchor = anchor_from_trusted_cert(&anchor_der).map_err(|e| invalid(path_problem(&e)))?;
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .filter(|c| c.as_ref() != anchor.der && c.as_ref() != leaf_der.as_ref())
        .map(|c| CertificateDer::from(c.as_ref()))
        .collect();
    let anchors = [trust_anchor];
    let path = leaf
        .verify_for_usage(ALL_VERIFICATION_ALGS, &anchors, &intermediates, now, KeyUsage::server_auth(), None, None)
        .map_err(|e| match e {
            webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
                DaneFailure::Expired { chain_index: first_out_of_date(chain, now) }
            }
            other => invalid(path_problem(&other)),
        })?;
    let between = path.intermediate_certificates().count();

    // The anchor certificate itself: rustls-webpki keeps only its name and
    // key, so its CA flag, path length and dates are checked here, as
    // OpenSSL does for a DANE-TA certificate at the top of the chain.
    let cert = &anchor.cert;
    let is_ca = match cert.basic_constraints {
        Some((ca, _)) => ca,
        None => cert.version < 3 && cert.self_issued,
    };
    if !is_ca {
        return Err(invalid(PathProblem::AnchorNotCa));
    }
    if let Some((_, Some(limit))) = cert.basic_constraints
        && u64::try_from(between).unwrap_or(u64::MAX) > limit
    {
        return Err(invalid(PathProblem::PathLength));
    }
    let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if secs < cert.not_before || secs > cert.not_after {
        return Err(DaneFailure::Expired { chain_index: anchor.chain_index });
    }

    for name in names {
        let name = name.strip_suffix('.').unwrap_or(name);
        let Ok(server_name) = ServerName::try_from(name) else {
            continue;
        };
        if leaf.verify_is_valid_for_subject_name(&server_name).is_ok() {
            return Ok((between + 1, name.to_owned()));
        }
    }
    Err(DaneFailure::NameMismatch { names: names.iter().map(|n| (*n).to_owned()).collect() })
}

/// The position of the first certificate of the chain outside its
/// validity period at `now`.
fn first_out_of_date(chain: &[CertificateDer<'_>], now: UnixTime) -> Option<usize> {
    let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    chain
        .iter()
        .position(|c| der::parse_certificate(c).is_some_and(|cert| secs < cert.not_before || secs > cert.not_after))
}

fn path_problem(e: &webpki::Error) -> PathProblem {
    use webpki::Error as E;
    match e {
        E::UnknownIssuer => PathProblem::UnknownIssuer,
        E::EndEntityUsedAsCa => PathProblem::IssuerNotCa,
        E::CaUsedAsEndEntity => PathProblem::ServerCertificateIsCa,
        E::PathLenConstraintViolated => PathProblem::PathLength,
        E::RequiredEkuNotFoundContext(_) => PathProblem::ExtendedKeyUsage,
        E::InvalidSignatureForPublicKey
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | E::SignatureAlgorithmMismatch => PathProblem::BadSignature,
        E::UnsupportedCertVersion => PathProblem::UnsupportedCertificate,
        other => PathProblem::Other(other.clone()),
    }
}
