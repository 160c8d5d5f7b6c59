//! From the outcome of each connection attempt to the verdict for the
//! message: deliver, defer or bounce.

use std::fmt;
use std::time::Duration;

use super::config::TlsSupport;
use super::plan::{Authentication, Basis, HostPlan, OnAuthFailure, Plan, TestingCheck, TlsRequirement, TlsVersion};
use crate::ResultType;
use crate::dane::DaneOutcome;
use crate::name::DomainName;
use crate::sts::Mode;

/// Why a WebPKI certificate check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertFailure {
    /// The certificate names none of the reference names.
    HostMismatch {
        /// Whether it names the MX host (or route host) it came from: the
        /// mark of a hosted destination.
        names_connected_host: bool,
    },
    /// The certificate (or one of its chain) is expired or not yet valid.
    Expired,
    /// It does not chain to a trusted root.
    NotTrusted,
    /// Anything else (bad signature, unsupported algorithm…).
    Other(String),
}

impl fmt::Display for CertFailure {
    /// Operator text: "certificate expired or not yet valid".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HostMismatch { names_connected_host: true } => {
                f.write_str("certificate does not name the reference names (it names the connected host)")
            }
            Self::HostMismatch { .. } => f.write_str("certificate does not name the reference names"),
            Self::Expired => f.write_str("certificate expired or not yet valid"),
            Self::NotTrusted => f.write_str("certificate not signed by a trusted CA"),
            Self::Other(e) => write!(f, "certificate check failed: {e}"),
        }
    }
}

impl CertFailure {
    /// The TLS-RPT result type (RFC 8460 §4.3.1).
    pub fn result_type(&self) -> ResultType {
        match self {
            Self::HostMismatch { .. } => ResultType::CertificateHostMismatch,
            Self::Expired => ResultType::CertificateExpired,
            Self::NotTrusted => ResultType::CertificateNotTrusted,
            Self::Other(_) => ResultType::ValidationFailure,
        }
    }
}

/// What the certificate check of a TLS connection found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthOutcome {
    /// No check was made.
    NotChecked,
    /// The WebPKI check, and the reference name matched when it passed.
    WebPki(Result<String, CertFailure>),
    /// The DANE check.
    Dane(DaneOutcome),
}

/// How a connection attempt to one host went.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attempt {
    /// No SMTP session (connection refused, timeout, 4xx greeting).
    Unreachable,
    /// The session went on in plain text: STARTTLS was not offered, or the
    /// plan said never to use it.
    Plaintext {
        /// Whether the server offered STARTTLS.
        starttls_offered: bool,
    },
    /// The TLS handshake failed (before any certificate verdict).
    HandshakeFailed {
        /// What the TLS stack said.
        reason: String,
    },
    /// TLS was negotiated.
    Tls {
        /// The negotiated version.
        version: TlsVersion,
        /// The certificate check.
        auth: AuthOutcome,
        /// The check of [`TestingCheck::WebPki`](super::TestingCheck) (MTA-STS
        /// testing, for reporting only), when the requirement asked for one
        /// and the MTA made it; the reference name matched when it passed.
        testing: Option<Result<String, CertFailure>>,
    },
}

impl Attempt {
    /// TLS with this version and certificate check, no testing check.
    pub fn tls(version: TlsVersion, auth: AuthOutcome) -> Self {
        Self::Tls { version, auth, testing: None }
    }
}

/// What was achieved on a delivered connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SecurityLevel {
    /// Plain text.
    Plaintext,
    /// Encrypted, server not authenticated.
    Encrypted,
    /// Encrypted, WebPKI certificate verified.
    WebPkiVerified,
    /// Encrypted, DANE verified.
    DaneVerified,
}

impl fmt::Display for SecurityLevel {
    /// Operator text: "plain text", "encrypted", "WebPKI-verified", "DANE-verified".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plaintext => "plain text",
            Self::Encrypted => "encrypted",
            Self::WebPkiVerified => "WebPKI-verified",
            Self::DaneVerified => "DANE-verified",
        })
    }
}

/// A failure: one line for the operator, its TLS-RPT result type (when it
/// is a TLS-RPT failure), and whether it is a security failure.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// The host it happened on.
    pub host: DomainName,
    /// What happened, and what to do.
    pub reason: String,
    /// The TLS-RPT result type.
    pub result_type: Option<ResultType>,
    /// A security failure (TLS, certificate, policy) rather than a
    /// connection failure.
    pub security: bool,
}

/// The engine's assessment of one attempt.
#[must_use = "the assessment says whether the message was delivered"]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostResult {
    /// The host may receive the message at this level. `reported` lists
    /// failures that did not stop delivery (MTA-STS testing,
    /// Preferred-Verify) for TLS-RPT.
    Deliver {
        /// What was achieved.
        level: SecurityLevel,
        /// Failures to report.
        reported: Vec<Failure>,
    },
    /// Not this host: try the next one.
    TryNext(Failure),
    /// Not this host, and the same would happen on every other host of the
    /// destination: stop trying.
    Stop(Failure),
}

/// Assesses one attempt against the host's plan (DESIGN.md "Destination
/// controls and precedence").
///
/// A failed TLS handshake moves on to the next host. Where the requirement
/// is opportunistic TLS, an MTA may instead retry the same host in plain
/// text, as Postfix does at level `may`, and assess that second attempt as
/// [`Attempt::Plaintext`] with `starttls_offered: true`: it is accepted.
pub fn assess(plan: &Plan, host: &HostPlan, attempt: &Attempt) -> HostResult {
    let mut result = assess_delivery(plan, host, attempt);
    if let (HostResult::Deliver { reported, .. }, Some(check)) = (&mut result, &host.requirement.testing) {
        reported.extend(testing_failure(host, check, attempt));
    }
    result
}

/// What MTA-STS testing reports beside the delivery (RFC 8461 §5).
fn testing_failure(host: &HostPlan, check: &TestingCheck, attempt: &Attempt) -> Option<Failure> {
    let failure = |reason: String, result_type| Failure {
        host: host.host.clone(),
        reason: format!("{}: {reason} (MTA-STS testing, RFC 8461: delivered, reported)", host.host),
        result_type: Some(result_type),
        security: true,
    };
    match (check, attempt) {
        (TestingCheck::Unlisted, _) => {
            Some(failure("the MX host is not listed in the MTA-STS policy".into(), ResultType::CertificateHostMismatch))
        }
        (TestingCheck::WebPki { names }, Attempt::Tls { testing: Some(Err(cert)), .. }) => {
            let names: Vec<&str> = names.iter().map(DomainName::as_str).collect();
            let what = match cert {
                CertFailure::HostMismatch { .. } => format!("certificate does not name {}", names.join(" or ")),
                other => other.to_string(),
            };
            Some(failure(what, cert.result_type()))
        }
        _ => None,
    }
}

fn assess_delivery(plan: &Plan, host: &HostPlan, attempt: &Attempt) -> HostResult {
    let r = &host.requirement;
    let failure = |reason: String, result_type: Option<ResultType>, security| Failure {
        host: host.host.clone(),
        reason,
        result_type,
        security,
    };
    match attempt {
        Attempt::Unreachable => {
            HostResult::TryNext(failure(format!("{}: no SMTP session; trying the next host", host.host), None, false))
        }
        Attempt::Plaintext { starttls_offered } => {
            if r.tls == TlsRequirement::Required {
                let why = if *starttls_offered {
                    "TLS is required but the session went on in plain text"
                } else {
                    "TLS is required but the server did not offer STARTTLS"
                };
                return HostResult::TryNext(failure(
                    format!("{}: {why} ({})", host.host, basis_text(r.basis)),
                    Some(ResultType::StarttlsNotSupported),
                    true,
                ));
            }
            let mut reported = Vec::new();
            if !starttls_offered && r.basis == Basis::Sts(Mode::Testing) {
                reported.push(failure(
                    format!("{}: STARTTLS not offered (MTA-STS testing: delivered, reported)", host.host),
                    Some(ResultType::StarttlsNotSupported),
                    true,
                ));
            }
            HostResult::Deliver { level: SecurityLevel::Plaintext, reported }
        }
        Attempt::HandshakeFailed { reason } => HostResult::TryNext(failure(
            format!("{}: TLS handshake failed: {reason}", host.host),
            Some(ResultType::ValidationFailure),
            true,
        )),
        Attempt::Tls { version, auth, .. } => {
            if *version < r.min_version {
                return HostResult::TryNext(failure(
                    format!(
                        "{}: {version} is below the {} that {} requires",
                        host.host,
                        r.min_version,
                        basis_text(r.basis)
                    ),
                    Some(ResultType::ValidationFailure),
                    true,
                ));
            }
            match (&r.auth, auth) {
                (Authentication::None, _) => HostResult::Deliver { level: SecurityLevel::Encrypted, reported: vec![] },
                (Authentication::Dane { .. }, AuthOutcome::Dane(outcome)) => match outcome.failure() {
                    None => HostResult::Deliver { level: SecurityLevel::DaneVerified, reported: vec![] },
                    Some(f) => HostResult::TryNext(failure(
                        format!("{}: DANE verification failed: {f}", host.host),
                        Some(f.result_type()),
                        true,
                    )),
                },
                (Authentication::WebPki { .. }, AuthOutcome::WebPki(Ok(_))) => {
                    HostResult::Deliver { level: SecurityLevel::WebPkiVerified, reported: vec![] }
                }
                (Authentication::WebPki { names, .. }, AuthOutcome::WebPki(Err(cert))) => {
                    let reason = cert_reason(plan, host, names, cert);
                    let f = failure(reason, Some(cert.result_type()), true);
                    match r.on_auth_failure {
                        OnAuthFailure::DeliverAndReport => {
                            HostResult::Deliver { level: SecurityLevel::Encrypted, reported: vec![f] }
                        }
                        _ if hosted(plan, cert) => HostResult::Stop(f),
                        _ => HostResult::TryNext(f),
                    }
                }
                (_, _) => HostResult::TryNext(failure(
                    format!("{}: the certificate was not checked as the plan requires (an MTA bug)", host.host),
                    Some(ResultType::ValidationFailure),
                    true,
                )),
            }
        }
    }
}

/// Required-Verify, and the certificate names the host it came from but
/// not the recipient domain: every MX of a hosted service does the same.
fn hosted(plan: &Plan, cert: &CertFailure) -> bool {
    plan.profile.tls == TlsSupport::RequiredVerify
        && matches!(cert, CertFailure::HostMismatch { names_connected_host: true })
}

fn cert_reason(plan: &Plan, host: &HostPlan, names: &[DomainName], cert: &CertFailure) -> String {
    let names: Vec<&str> = names.iter().map(DomainName::as_str).collect();
    let what = match cert {
        CertFailure::HostMismatch { .. } if hosted(plan, cert) => {
            return format!(
                "{}: peer cert does not match domain {}: the destination looks hosted (the certificate names the MX host); use Required-Verify-Hosted-Domains for {}",
                host.host, plan.domain, plan.domain
            );
        }
        CertFailure::HostMismatch { .. } if host.requirement.basis == Basis::TlsSupport => {
            format!("peer cert does not match domain ({})", names.join(", "))
        }
        CertFailure::HostMismatch { .. } => format!("certificate does not name {}", names.join(" or ")),
        other => other.to_string(),
    };
    format!("{}: {what} ({})", host.host, basis_text(host.requirement.basis))
}

fn basis_text(basis: Basis) -> &'static str {
    match basis {
        Basis::Dane => "DANE, RFC 7672",
        Basis::Sts(Mode::Enforce) => "MTA-STS enforce, RFC 8461",
        Basis::Sts(_) => "MTA-STS testing, RFC 8461",
        Basis::TlsSupport => "the destination's TLS support",
        Basis::Route => "the SMTP route's TLS support",
    }
}

/// An RFC 3463 enhanced status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedStatus {
    /// 2 (success), 4 (persistent transient) or 5 (permanent).
    pub class: u8,
    /// The subject (4: network and routing, 7: security).
    pub subject: u16,
    /// The detail.
    pub detail: u16,
}

impl EnhancedStatus {
    const fn new(class: u8, subject: u16, detail: u16) -> Self {
        Self { class, subject, detail }
    }
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// What the message's delivery has come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryContext {
    /// How long the message has been queued.
    pub message_age: Duration,
    /// Whether the MTA-STS policy was re-checked for a newer id since the
    /// failure (RFC 8461 §5.1).
    pub policy_rechecked: bool,
    /// The message carries `TLS-Required: No` (RFC 8689) — a TLS report,
    /// typically. The engine never reads message headers: the MTA sets this
    /// for the messages it means it for (see
    /// [`DestinationControls::plan_for`](super::DestinationControls::plan_for)).
    pub tls_required_no: bool,
}

impl DeliveryContext {
    /// A message queued for `age`, policy not re-checked.
    pub fn new(message_age: Duration) -> Self {
        Self { message_age, policy_rechecked: false, tls_required_no: false }
    }

    /// Marks the message as one with `TLS-Required: No` (RFC 8689 §5): it
    /// is planned without the recipient's DANE and MTA-STS policies, and
    /// its delivery yields no TLS-RPT sessions — a report delivery is never
    /// itself reported, so a domain with broken TLS cannot start a loop of
    /// reports about reports.
    pub fn tls_required_no(mut self) -> Self {
        self.tls_required_no = true;
        self
    }

    /// Marks the MTA-STS policy as re-checked.
    pub fn rechecked(mut self) -> Self {
        self.policy_rechecked = true;
        self
    }
}

/// The verdict for the message.
#[must_use = "the verdict says whether to deliver, defer or bounce"]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Delivered (or to be delivered) to `host`.
    Deliver {
        /// The host.
        host: DomainName,
        /// What was achieved.
        level: SecurityLevel,
        /// 2.0.0.
        status: EnhancedStatus,
        /// One line for the log.
        reason: String,
        /// Failures to report through TLS-RPT (earlier hosts, testing).
        failures: Vec<Failure>,
    },
    /// Keep the message and try later.
    Defer {
        /// 4.x.x.
        status: EnhancedStatus,
        /// One line an operator can act on.
        reason: String,
        /// The TLS-RPT result type of the deciding failure.
        result_type: Option<ResultType>,
        /// Re-check the MTA-STS policy for a newer id before the next
        /// attempt (RFC 8461 §5.1).
        recheck_policy: bool,
        /// Every failure, for TLS-RPT.
        failures: Vec<Failure>,
    },
    /// Return the message to its sender.
    Bounce {
        /// 5.x.x.
        status: EnhancedStatus,
        /// One line an operator can act on.
        reason: String,
        /// The TLS-RPT result type of the deciding failure.
        result_type: Option<ResultType>,
        /// Every failure, for TLS-RPT.
        failures: Vec<Failure>,
    },
}

impl Verdict {
    /// The enhanced status code.
    pub fn status(&self) -> EnhancedStatus {
        match self {
            Self::Deliver { status, .. } | Self::Defer { status, .. } | Self::Bounce { status, .. } => *status,
        }
    }

    /// The one-line reason.
    pub fn reason(&self) -> &str {
        match self {
            Self::Deliver { reason, .. } | Self::Defer { reason, .. } | Self::Bounce { reason, .. } => reason,
        }
    }
}

/// The verdict for the message from the plan and the assessments of the
/// hosts tried, in order (DESIGN.md: security failures are temporary; a
/// bounce only past the queue lifetime, and under an enforced MTA-STS
/// policy only after the policy was re-checked).
pub fn verdict(plan: &Plan, results: &[HostResult], context: DeliveryContext) -> Verdict {
    let mut failures: Vec<Failure> = plan
        .skipped
        .iter()
        .map(|(host, why)| Failure {
            host: host.clone(),
            reason: format!("{host}: {}", why.describe()),
            result_type: why.result_type(),
            security: true,
        })
        .collect();
    for (result, host) in results.iter().zip(&plan.hosts) {
        match result {
            HostResult::Deliver { level, reported } => {
                failures.extend(reported.iter().cloned());
                return Verdict::Deliver {
                    host: host.host.clone(),
                    level: *level,
                    status: EnhancedStatus::new(2, 0, 0),
                    reason: format!("delivered to {} ({level}, {})", host.host, basis_text(host.requirement.basis)),
                    failures,
                };
            }
            HostResult::TryNext(f) => failures.push(f.clone()),
            HostResult::Stop(f) => {
                failures.push(f.clone());
                break;
            }
        }
    }
    let deciding = failures.iter().rev().find(|f| f.security).or(failures.last()).cloned();
    let (reason, result_type, security) = match &deciding {
        Some(f) => (f.reason.clone(), f.result_type, f.security),
        None => (format!("{}: no MX host to try", plan.domain), None, false),
    };
    let reason = if plan.hosts.is_empty() && !plan.skipped.is_empty() {
        format!("no usable MX host for {}: {reason}", plan.domain)
    } else {
        reason
    };
    // X.7.4 security features not supported; X.7.5 cryptographic failure;
    // X.4.4 unable to route (RFC 3463).
    let (subject, detail) = match (security, result_type) {
        (true, Some(ResultType::StarttlsNotSupported)) => (7, 4),
        (true, _) => (7, 5),
        (false, _) => (4, 4),
    };
    let recheck_policy = plan.sts_enforced() && security && !context.policy_rechecked;
    if context.message_age < plan.profile.queue_lifetime || recheck_policy {
        let reason = if recheck_policy && context.message_age >= plan.profile.queue_lifetime {
            format!("{reason}; re-check the MTA-STS policy for a newer id before bouncing (RFC 8461 §5.1)")
        } else {
            reason
        };
        return Verdict::Defer {
            status: EnhancedStatus::new(4, subject, detail),
            reason,
            result_type,
            recheck_policy,
            failures,
        };
    }
    Verdict::Bounce { status: EnhancedStatus::new(5, subject, detail), reason, result_type, failures }
}
