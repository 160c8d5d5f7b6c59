//! From the facts about a domain to a plan: which MX hosts to try, in
//! order, and what each connection must achieve.

use std::sync::Arc;

use super::config::{DaneSupport, DestinationControls, Options, Profile, StsSupport, TlsSupport};
use super::verdict::DeliveryContext;
use crate::ResultType;
use crate::cache::FetchFailure;
use crate::dane::TlsaRecord;
use crate::discovery::{DnssecStatus, DomainFacts, StsFacts, TlsaFacts};
use crate::name::DomainName;
use crate::sts::{Mode, Policy, PolicyId};

/// The lowest TLS version a connection may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.0.
    Tls10,
    /// TLS 1.1.
    Tls11,
    /// TLS 1.2 (RFC 8461 §4.2 and RFC 7672 §3 require at least this).
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl std::fmt::Display for TlsVersion {
    /// `TLS 1.2`, as operators write it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tls10 => "TLS 1.0",
            Self::Tls11 => "TLS 1.1",
            Self::Tls12 => "TLS 1.2",
            Self::Tls13 => "TLS 1.3",
        })
    }
}

/// Whether the connection uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsRequirement {
    /// Plain text only: do not issue STARTTLS.
    Never,
    /// STARTTLS when offered, else plain text.
    Opportunistic,
    /// STARTTLS or no delivery to this host.
    Required,
}

/// How the server must be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Authentication {
    /// No certificate check (encryption only).
    None,
    /// A certificate chaining to a trusted root that names one of `names`
    /// in a DNS subject alternative name. `cn_fallback` lists the names the
    /// subject CN may match when the certificate has no DNS SAN at all
    /// (empty: the CN is never used, as RFC 8461 §4.2 requires).
    WebPki {
        /// Reference identifiers for DNS SANs.
        names: Vec<DomainName>,
        /// Names the CN may match when there is no DNS SAN.
        cn_fallback: Vec<DomainName>,
    },
    /// DANE (RFC 7672 §3): the usable TLSA records and the reference names
    /// (TLSA base domain and MX host).
    Dane {
        /// The usable records.
        records: Vec<TlsaRecord>,
        /// Reference identifiers for DANE-TA.
        names: Vec<DomainName>,
    },
}

/// What MTA-STS `testing` checks of a host for TLS-RPT beside the
/// delivery's own requirement (RFC 8461 §5: a testing policy reports every
/// failure that enforce would have had, while delivery goes on).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TestingCheck {
    /// The policy does not list the host (RFC 8461 §4.1): reported as
    /// `certificate-host-mismatch`.
    Unlisted,
    /// The certificate must also be valid under WebPKI for these names (the
    /// MX host, RFC 8461 §4.2), where the delivery checks other names (the
    /// recipient domain under Required-Verify): a failure is reported.
    WebPki {
        /// The reference names enforce would require.
        names: Vec<DomainName>,
    },
}

/// What happens when the certificate check fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OnAuthFailure {
    /// Do not deliver to this host.
    Fail,
    /// Deliver anyway and report the failure (Preferred-Verify, MTA-STS
    /// `testing`).
    DeliverAndReport,
}

/// Which rule set the requirement of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Basis {
    /// DANE with usable TLSA records (RFC 7672).
    Dane,
    /// An MTA-STS policy in this mode (RFC 8461); `Testing` only when
    /// tested for reporting, `Enforce` also for testing-as-enforce.
    Sts(Mode),
    /// The destination's TLS support.
    TlsSupport,
    /// An SMTP route (exempt from DANE and MTA-STS).
    Route,
}

/// What a connection to one host must achieve.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Requirement {
    /// Whether TLS is used.
    pub tls: TlsRequirement,
    /// How the server is authenticated.
    pub auth: Authentication,
    /// What an authentication failure means.
    pub on_auth_failure: OnAuthFailure,
    /// The lowest TLS version accepted.
    pub min_version: TlsVersion,
    /// Which rule set this requirement.
    pub basis: Basis,
    /// MTA-STS `testing`: what is checked for reporting only.
    pub testing: Option<TestingCheck>,
}

impl Requirement {
    /// Whether plain text is allowed to this host.
    pub fn allows_plaintext(&self) -> bool {
        self.tls != TlsRequirement::Required
    }
}

/// One host to try.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostPlan {
    /// The host to connect to (an MX host or the route host).
    pub host: DomainName,
    /// What the connection must achieve.
    pub requirement: Requirement,
}

/// Why a host is not tried.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Not matched by the `enforce` MTA-STS policy (RFC 8461 §4.1).
    NotInStsPolicy,
    /// The TLSA answer is bogus (RFC 7672 §2.2).
    TlsaBogus,
    /// The TLSA lookup failed (RFC 7672 §2.2).
    TlsaLookupFailed,
    /// DANE Mandatory, and the host has no secure usable TLSA records.
    DaneRequired,
    /// DANE Mandatory, and the resolver cannot validate DNSSEC.
    DnssecUnavailable,
    /// DANE Mandatory, and the MX RRset is not secure.
    MxInsecure,
}

impl SkipReason {
    /// The TLS-RPT result type, when the skip is a reportable failure.
    pub fn result_type(&self) -> Option<ResultType> {
        match self {
            Self::NotInStsPolicy => Some(ResultType::ValidationFailure),
            Self::TlsaBogus | Self::TlsaLookupFailed => Some(ResultType::DnssecInvalid),
            Self::DaneRequired | Self::DnssecUnavailable | Self::MxInsecure => Some(ResultType::DaneRequired),
        }
    }

    /// One line an operator can act on.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::NotInStsPolicy => "MX host not allowed by the MTA-STS policy (RFC 8461 §4.1)",
            Self::TlsaBogus => "TLSA records fail DNSSEC validation; the host is not used (RFC 7672 §2.2)",
            Self::TlsaLookupFailed => "TLSA lookup failed; the host is not used (RFC 7672 §2.2)",
            Self::DaneRequired => {
                "DANE is mandatory for this destination but the host has no secure usable TLSA records"
            }
            Self::DnssecUnavailable => "DANE is mandatory but the resolver cannot validate DNSSEC",
            Self::MxInsecure => "DANE is mandatory but the MX records are not DNSSEC-signed",
        }
    }
}

/// The plan for one recipient domain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Plan {
    /// The recipient domain.
    pub domain: DomainName,
    /// The profile that applied.
    pub profile: Profile,
    /// The SMTP route host, for a routed domain.
    pub route: Option<DomainName>,
    /// The hosts to try, in order.
    pub hosts: Vec<HostPlan>,
    /// The hosts not tried, and why.
    pub skipped: Vec<(DomainName, SkipReason)>,
    /// What MTA-STS contributed: the policy applied to a host, a policy
    /// announced but not to be had, or nothing (for TLS-RPT, the log and
    /// the re-check before a bounce).
    pub sts: PlanSts,
}

/// MTA-STS in a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PlanSts {
    /// The policy governs at least one host (or excluded one as unlisted).
    Applied {
        /// Its id.
        id: PolicyId,
        /// The policy.
        policy: Arc<Policy>,
    },
    /// The domain announces a policy (TXT record) that could not be
    /// fetched or did not parse, and none is cached: delivery goes on under
    /// the TLS support (RFC 8461 §5.1), and TLS-RPT reports the failure
    /// (RFC 8460 §4.3.2.2).
    Unavailable(FetchFailure),
    /// No policy, MTA-STS off for the destination, or a policy that no
    /// host needed (every host DANE).
    #[default]
    None,
}

impl PlanSts {
    /// The applied policy, if any.
    pub fn applied(&self) -> Option<(PolicyId, &Arc<Policy>)> {
        match self {
            Self::Applied { id, policy } => Some((*id, policy)),
            _ => None,
        }
    }
}

impl Plan {
    /// Whether an `enforce` MTA-STS policy (or `testing` treated as enforce)
    /// governs any host.
    pub fn sts_enforced(&self) -> bool {
        self.hosts.iter().any(|h| h.requirement.basis == Basis::Sts(Mode::Enforce))
            || self.skipped.iter().any(|(_, r)| *r == SkipReason::NotInStsPolicy)
    }
}

impl DestinationControls {
    /// Plans delivery to `facts.domain` (DESIGN.md "Destination controls and
    /// precedence"): an SMTP route exempts it from DANE and MTA-STS; then per
    /// MX host DANE first, then MTA-STS, then the TLS support.
    pub fn plan(&self, facts: &DomainFacts) -> Plan {
        self.plan_with(facts, self.profile_for(&facts.domain))
    }

    /// [`plan`](Self::plan) for a message in `context`: one marked
    /// [`tls_required_no`](DeliveryContext::tls_required_no) (RFC 8689 §5)
    /// is planned without the recipient domain's DANE and MTA-STS policies
    /// and with TLS when offered (the profile's TLS support `No` stays
    /// `No`), so that a domain whose TLS is broken still receives its
    /// reports. Any other message is planned as by `plan`.
    pub fn plan_for(&self, facts: &DomainFacts, context: &DeliveryContext) -> Plan {
        let mut profile = self.profile_for(&facts.domain);
        if context.tls_required_no {
            if profile.tls != TlsSupport::No {
                profile.tls = TlsSupport::Preferred;
            }
            profile.dane = DaneSupport::None;
            profile.sts = StsSupport::Off;
        }
        self.plan_with(facts, profile)
    }

    fn plan_with(&self, facts: &DomainFacts, profile: Profile) -> Plan {
        let options = self.options();
        // MTA-STS or DANE on with TLS support No is a configuration error
        // (`validate` reports it); at delivery time they are skipped and the
        // TLS support applies.
        let tls_allowed = profile.tls != TlsSupport::No;
        let sts_policy = match (&facts.sts, profile.sts) {
            (StsFacts::Policy { id, policy }, StsSupport::On) if tls_allowed => Some((*id, Arc::clone(policy))),
            _ => None,
        };
        let mut plan = Plan {
            domain: facts.domain.clone(),
            profile,
            route: None,
            hosts: Vec::new(),
            skipped: Vec::new(),
            sts: match (&facts.sts, profile.sts) {
                (StsFacts::Unavailable(failure), StsSupport::On) if tls_allowed => {
                    PlanSts::Unavailable(failure.clone())
                }
                _ => PlanSts::None,
            },
        };

        if let Some(route) = self.route_for(&facts.domain) {
            plan.route = Some(route.clone());
            let mut requirement = tls_support(&profile, &facts.domain, route, Some(route));
            requirement.basis = Basis::Route;
            if options.route_policy_domain
                && let Some((id, policy)) = &sts_policy
                && let Some(sts) = sts_requirement(policy, route, &options, &requirement)
            {
                plan.sts = PlanSts::Applied { id: *id, policy: Arc::clone(policy) };
                match sts {
                    Some(r) => requirement = r,
                    None => {
                        plan.skipped.push((route.clone(), SkipReason::NotInStsPolicy));
                        return plan;
                    }
                }
            }
            plan.hosts.push(HostPlan { host: route.clone(), requirement });
            return plan;
        }

        let dane_on = profile.dane != DaneSupport::None && tls_allowed;
        let mandatory = dane_on && profile.dane == DaneSupport::Mandatory;
        for mx in &facts.mx {
            // RFC 7672 §2.2.1: DANE only behind a secure MX RRset.
            let dane = if !dane_on {
                DaneState::Off
            } else {
                match facts.mx_dnssec {
                    DnssecStatus::Secure => dane_state(&mx.tlsa),
                    DnssecStatus::Indeterminate => DaneState::Unavailable,
                    _ => DaneState::MxInsecure,
                }
            };
            let tls_floor = match dane {
                DaneState::Usable(records) => {
                    let mut names = vec![mx.tlsa_base.clone()];
                    if mx.host != mx.tlsa_base {
                        names.push(mx.host.clone());
                    }
                    let requirement = Requirement {
                        tls: TlsRequirement::Required,
                        auth: Authentication::Dane { records, names },
                        on_auth_failure: OnAuthFailure::Fail,
                        min_version: TlsVersion::Tls12,
                        basis: Basis::Dane,
                        testing: None,
                    };
                    plan.hosts.push(HostPlan { host: mx.host.clone(), requirement });
                    continue;
                }
                DaneState::Skip(reason) => {
                    plan.skipped.push((mx.host.clone(), reason));
                    continue;
                }
                DaneState::AllUnusable if mandatory => {
                    plan.skipped.push((mx.host.clone(), SkipReason::DaneRequired));
                    continue;
                }
                DaneState::None | DaneState::Unavailable | DaneState::MxInsecure if mandatory => {
                    let reason = match dane {
                        DaneState::Unavailable => SkipReason::DnssecUnavailable,
                        DaneState::MxInsecure => SkipReason::MxInsecure,
                        _ => SkipReason::DaneRequired,
                    };
                    plan.skipped.push((mx.host.clone(), reason));
                    continue;
                }
                // RFC 7672 §2.2: secure but all unusable: TLS, unauthenticated.
                DaneState::AllUnusable => true,
                _ => false,
            };
            let mut requirement = tls_support(&profile, &facts.domain, &mx.host, None);
            if let Some((id, policy)) = &sts_policy {
                match sts_requirement(policy, &mx.host, &options, &requirement) {
                    Some(Some(r)) => {
                        plan.sts = PlanSts::Applied { id: *id, policy: Arc::clone(policy) };
                        requirement = r;
                    }
                    Some(None) => {
                        plan.sts = PlanSts::Applied { id: *id, policy: Arc::clone(policy) };
                        plan.skipped.push((mx.host.clone(), SkipReason::NotInStsPolicy));
                        continue;
                    }
                    None => {}
                }
            }
            if tls_floor {
                requirement.tls = TlsRequirement::Required;
                requirement.min_version = requirement.min_version.max(TlsVersion::Tls12);
            }
            plan.hosts.push(HostPlan { host: mx.host.clone(), requirement });
        }
        plan
    }
}

/// DANE for one host, after the MX RRset's status.
enum DaneState {
    Off,
    Usable(Vec<TlsaRecord>),
    AllUnusable,
    None,
    Unavailable,
    MxInsecure,
    Skip(SkipReason),
}

fn dane_state(tlsa: &TlsaFacts) -> DaneState {
    match tlsa {
        TlsaFacts::Secure(records) => {
            let usable: Vec<TlsaRecord> = records.iter().filter(|r| r.is_usable_for_smtp()).cloned().collect();
            if usable.is_empty() { DaneState::AllUnusable } else { DaneState::Usable(usable) }
        }
        TlsaFacts::SecureNone | TlsaFacts::Insecure => DaneState::None,
        TlsaFacts::Bogus => DaneState::Skip(SkipReason::TlsaBogus),
        TlsaFacts::Failed => DaneState::Skip(SkipReason::TlsaLookupFailed),
        TlsaFacts::Unavailable => DaneState::Unavailable,
    }
}

/// The requirement of the TLS support alone (the gateway's settings).
fn tls_support(profile: &Profile, domain: &DomainName, host: &DomainName, route: Option<&DomainName>) -> Requirement {
    let verify = |mut names: Vec<DomainName>| {
        names.dedup();
        let mut cn = names.clone();
        if !cn.contains(host) {
            cn.push(host.clone());
        }
        Authentication::WebPki { names, cn_fallback: cn }
    };
    let (tls, auth, on_auth_failure) = match profile.tls {
        TlsSupport::No => (TlsRequirement::Never, Authentication::None, OnAuthFailure::Fail),
        TlsSupport::Preferred => (TlsRequirement::Opportunistic, Authentication::None, OnAuthFailure::Fail),
        TlsSupport::Required => (TlsRequirement::Required, Authentication::None, OnAuthFailure::Fail),
        TlsSupport::PreferredVerify => {
            (TlsRequirement::Opportunistic, verify(vec![domain.clone()]), OnAuthFailure::DeliverAndReport)
        }
        TlsSupport::RequiredVerify => (TlsRequirement::Required, verify(vec![domain.clone()]), OnAuthFailure::Fail),
        TlsSupport::RequiredVerifyHostedDomains => {
            let mut names = vec![domain.clone(), host.clone()];
            names.extend(route.cloned());
            (TlsRequirement::Required, verify(names), OnAuthFailure::Fail)
        }
    };
    Requirement { tls, auth, on_auth_failure, min_version: TlsVersion::Tls10, basis: Basis::TlsSupport, testing: None }
}

/// The MTA-STS requirement for `host` (RFC 8461 §4, §5): `None` when the
/// policy does not change anything (mode none), `Some(None)` when an
/// enforcing policy excludes the host, `Some(Some(r))` otherwise.
fn sts_requirement(
    policy: &Policy,
    host: &DomainName,
    options: &Options,
    base: &Requirement,
) -> Option<Option<Requirement>> {
    let webpki = Authentication::WebPki { names: vec![host.clone()], cn_fallback: Vec::new() };
    match policy.mode() {
        mode if options.enforces(mode) => Some(enforce(policy, host, webpki)),
        Mode::Testing => {
            // Deliver under the TLS support; check (and report) what enforce
            // would: the host listed, the certificate valid for the host.
            let mut r = base.clone();
            if r.tls != TlsRequirement::Never {
                let listed = policy.allows_mx(host.as_str());
                if r.auth == Authentication::None {
                    r.auth = webpki;
                    r.on_auth_failure = OnAuthFailure::DeliverAndReport;
                } else if listed
                    && !matches!(&r.auth, Authentication::WebPki { names, .. } if names == std::slice::from_ref(host))
                {
                    r.testing = Some(TestingCheck::WebPki { names: vec![host.clone()] });
                }
                if !listed {
                    r.testing = Some(TestingCheck::Unlisted);
                }
            }
            r.basis = Basis::Sts(Mode::Testing);
            Some(Some(r))
        }
        _ => None,
    }
}

fn enforce(policy: &Policy, host: &DomainName, auth: Authentication) -> Option<Requirement> {
    policy.allows_mx(host.as_str()).then_some(Requirement {
        tls: TlsRequirement::Required,
        auth,
        on_auth_failure: OnAuthFailure::Fail,
        min_version: TlsVersion::Tls12,
        basis: Basis::Sts(Mode::Enforce),
        testing: None,
    })
}
