//! One TLS-RPT session: the policy it was evaluated against and, for a
//! failed one, what failed (RFC 8460 §4.1, §4.4).

use super::{Aggregator, FailureDetail, ReportPolicy};

/// One session of an aggregate report: a connection attempt evaluated
/// against a policy, successful or failed
/// ([`engine::Outcome::sessions`](crate::engine::Outcome::sessions) makes them).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Session {
    /// The policy the session was evaluated against.
    pub policy: ReportPolicy,
    /// `None` for a successful session; the details of a failed one.
    pub failure: Option<FailureDetail>,
}

impl Session {
    /// A successful session.
    pub fn success(policy: ReportPolicy) -> Self {
        Self { policy, failure: None }
    }

    /// A failed session.
    pub fn failure(policy: ReportPolicy, detail: FailureDetail) -> Self {
        Self { policy, failure: Some(detail) }
    }

    /// Whether the session succeeded.
    pub fn is_success(&self) -> bool {
        self.failure.is_none()
    }
}

impl Aggregator {
    /// Counts one session ([`record_success`](Self::record_success) or
    /// [`record_failure`](Self::record_failure)).
    pub fn record(&mut self, session: &Session) {
        match &session.failure {
            None => self.record_success(&session.policy),
            Some(detail) => self.record_failure(&session.policy, detail.clone()),
        }
    }
}
