//! The attempt loop of one message as a state machine (the core owns the
//! state, the MTA does the IO): which host next, the assessment of each
//! attempt, and at the end the verdict, the MTA-STS outcome and the
//! TLS-RPT sessions.

use std::fmt;

use super::plan::{Authentication, Basis, HostPlan, Plan, PlanSts, SkipReason};
use super::verdict::{Attempt, DeliveryContext, HostResult, SecurityLevel, Verdict, assess, verdict};
use crate::name::DomainName;
use crate::report::{FailureDetail, ReportPolicy, Session};
use crate::sts::{Mode, PolicyId};

/// One message's delivery to one destination ([`Plan::delivery`]).
///
/// ```
/// # use smtp_tls_policy::engine::{Attempt, DeliveryContext, Plan, Verdict};
/// # fn try_host(_: &smtp_tls_policy::engine::HostPlan) -> Attempt { Attempt::Unreachable }
/// # fn run(plan: &Plan) {
/// let mut delivery = plan.delivery();
/// while let Some(host) = delivery.next_host() {
///     delivery.record(try_host(host)); // connect, STARTTLS, handshake: yours
/// }
/// let outcome = delivery.finish(DeliveryContext::new(std::time::Duration::from_secs(60)));
/// # let _ = outcome; }
/// ```
#[derive(Debug)]
pub struct Delivery<'p> {
    plan: &'p Plan,
    /// The assessment of each host handed out, in plan order.
    results: Vec<HostResult>,
    /// A host was handed out and its attempt not yet recorded.
    pending: bool,
    stopped: bool,
}

impl Plan {
    /// Starts the attempt loop for one message on this plan.
    pub fn delivery(&self) -> Delivery<'_> {
        Delivery { plan: self, results: Vec::with_capacity(self.hosts.len()), pending: false, stopped: false }
    }
}

impl<'p> Delivery<'p> {
    /// The next host to try, in the plan's order; `None` once a host took
    /// the message, a failure stopped the loop, or no host is left. A host
    /// handed out and not [`record`](Self::record)ed counts as unreachable.
    pub fn next_host(&mut self) -> Option<&'p HostPlan> {
        if self.pending {
            self.record(Attempt::Unreachable);
        }
        if self.stopped {
            return None;
        }
        let host = self.plan.hosts.get(self.results.len())?;
        self.pending = true;
        Some(host)
    }

    /// Records how the attempt on the host last handed out went, and
    /// returns its assessment ([`assess`]): on [`HostResult::Deliver`] send
    /// the message on that session. `None` when no host is pending.
    pub fn record(&mut self, attempt: Attempt) -> Option<&HostResult> {
        if !self.pending {
            return None;
        }
        let host = &self.plan.hosts[self.results.len()];
        let result = assess(self.plan, host, &attempt);
        self.record_result(result)
    }

    /// Records an assessment made elsewhere for the pending host (a
    /// result kept from [`assess`]); as [`record`](Self::record).
    pub fn record_result(&mut self, result: HostResult) -> Option<&HostResult> {
        if !self.pending {
            return None;
        }
        self.pending = false;
        self.stopped = !matches!(result, HostResult::TryNext(_));
        self.results.push(result);
        self.results.last()
    }

    /// Whether a host took the message.
    pub fn delivered(&self) -> bool {
        matches!(self.results.last(), Some(HostResult::Deliver { .. }))
    }

    /// The assessments so far, one per host tried, in plan order.
    pub fn results(&self) -> &[HostResult] {
        &self.results
    }

    /// Ends the loop: the verdict ([`verdict`]), the MTA-STS outcome and
    /// the TLS-RPT sessions.
    pub fn finish(mut self, context: DeliveryContext) -> Outcome {
        if self.pending {
            self.record(Attempt::Unreachable);
        }
        let verdict = verdict(self.plan, &self.results, context);
        let sts = sts_outcome(self.plan, &verdict);
        // Loop guard: a message with TLS-Required: No (a report) is never
        // itself reported.
        let sessions = if context.tls_required_no { Vec::new() } else { sessions(self.plan, &self.results) };
        Outcome { verdict, sts, sessions }
    }
}

/// What one message's delivery came to ([`Delivery::finish`]).
#[must_use = "the outcome says whether to deliver, defer or bounce"]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// Deliver, defer or bounce.
    pub verdict: Verdict,
    /// Whether an applied MTA-STS policy was met, for the log.
    pub sts: Option<StsOutcome>,
    /// The TLS-RPT sessions of this delivery, for a
    /// [`report::Aggregator`](crate::report::Aggregator).
    pub sessions: Vec<Session>,
}

/// Whether the delivery met the MTA-STS policy that applied (`mode: none`
/// policies have no outcome). Displayed as gateway operators read it:
/// "MTA-STS policy for the domain (example.com) Successful." or "… Failed."
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StsOutcome {
    /// The policy domain.
    pub domain: DomainName,
    /// The policy id.
    pub id: PolicyId,
    /// The policy mode.
    pub mode: Mode,
    /// Met: delivered with a verified certificate and nothing to report.
    pub met: bool,
}

impl fmt::Display for StsOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.met { "Successful" } else { "Failed" };
        write!(f, "MTA-STS policy for the domain ({}) {what}.", self.domain)
    }
}

fn sts_outcome(plan: &Plan, verdict: &Verdict) -> Option<StsOutcome> {
    let (id, policy) = plan.sts.applied().filter(|(_, p)| p.mode() != Mode::None)?;
    let met = match verdict {
        Verdict::Deliver { level, failures, .. } => {
            *level >= SecurityLevel::WebPkiVerified && failures.iter().all(|f| f.result_type.is_none())
        }
        _ => false,
    };
    Some(StsOutcome { domain: sts_domain(plan).clone(), id, mode: policy.mode(), met })
}

/// The MTA-STS policy domain: the route host under RFC 8461 §3.4, else the
/// recipient domain.
fn sts_domain(plan: &Plan) -> &DomainName {
    plan.route.as_ref().unwrap_or(&plan.domain)
}

/// The policy a host's sessions are reported under (RFC 8460 §4.4): the
/// TLSA records for DANE, the MTA-STS policy where it governs the host, an
/// announced policy that could not be had, or none.
fn host_policy(plan: &Plan, host: &HostPlan) -> ReportPolicy {
    match (&host.requirement.basis, &host.requirement.auth, &plan.sts) {
        (Basis::Dane, Authentication::Dane { records, .. }, _) => ReportPolicy::tlsa(&plan.domain, records),
        (Basis::Sts(_), _, PlanSts::Applied { policy, .. }) => ReportPolicy::sts(sts_domain(plan), policy),
        (_, _, PlanSts::Unavailable(_)) => ReportPolicy::sts_unavailable(sts_domain(plan)),
        _ => ReportPolicy::none(&plan.domain),
    }
}

/// One session per host that was skipped for a reportable reason and per
/// host attempted whose TLS outcome is known: successful when delivered
/// with nothing to report, failed with the first reported failure
/// otherwise; an attempt without a TLS outcome (no SMTP session) is none.
fn sessions(plan: &Plan, results: &[HostResult]) -> Vec<Session> {
    let mut out = Vec::new();
    for (host, why) in &plan.skipped {
        let Some(rt) = why.result_type() else { continue };
        let policy = match (why, &plan.sts) {
            (SkipReason::NotInStsPolicy, PlanSts::Applied { policy, .. }) => {
                ReportPolicy::sts(sts_domain(plan), policy)
            }
            _ => ReportPolicy::tlsa(&plan.domain, &[]),
        };
        out.push(Session::failure(policy, FailureDetail::new(rt, Some(host))));
    }
    if let PlanSts::Unavailable(failure) = &plan.sts {
        let detail = FailureDetail::new(failure.result_type(), None);
        out.push(Session::failure(ReportPolicy::sts_unavailable(sts_domain(plan)), detail));
    }
    for (result, host) in results.iter().zip(&plan.hosts) {
        let policy = host_policy(plan, host);
        let failure = match result {
            HostResult::Deliver { reported, .. } => reported.iter().find(|f| f.result_type.is_some()),
            HostResult::TryNext(f) | HostResult::Stop(f) if f.result_type.is_some() => Some(f),
            HostResult::TryNext(_) | HostResult::Stop(_) => continue,
        };
        out.push(match failure.and_then(|f| f.result_type) {
            Some(rt) => Session::failure(policy, FailureDetail::new(rt, Some(&host.host))),
            None => Session::success(policy),
        });
    }
    out
}
