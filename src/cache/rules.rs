//! The rules of RFC 8461 §3.3 and §5.1 for one domain: what a TXT outcome
//! means given the cached policy and the failed fetches, and what a failed
//! fetch leaves in force. No locks, no clock: times are seconds since the
//! epoch handed in by the cache. The table test below is the rule book.

use std::sync::Arc;

use super::{ApplyReason, Decision, FetchFailure, NoPolicyReason, TxtLookup, policy_bytes};
use crate::sts::{Policy, PolicyId};

/// A policy as cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cached {
    pub(super) id: PolicyId,
    pub(super) policy: Arc<Policy>,
    pub(super) fetched_at: u64,
    /// `fetched_at` + the clamped `max_age`: kept only so that the hit path
    /// need not add it up; always made by [`Cached::new`].
    pub(super) expires_at: u64,
    /// What holding it costs, for [`CacheConfig::max_bytes`].
    pub(super) bytes: usize,
}

impl Cached {
    /// The one place the expiry is computed (RFC 8461 §3.2, §3.3).
    pub(super) fn new(id: PolicyId, policy: Arc<Policy>, fetched_at: u64) -> Self {
        let expires_at = fetched_at.saturating_add(u64::from(policy.max_age_value().as_secs()));
        let bytes = policy_bytes(&policy);
        Self { id, policy, fetched_at, expires_at, bytes }
    }
}

/// A failed fetch of one id, suppressing another until `until`.
#[derive(Debug, Clone)]
pub(super) struct Failed {
    pub(super) id: PolicyId,
    pub(super) until: u64,
    pub(super) failure: FetchFailure,
}

/// The most back-offs kept per domain (the most recent ids).
pub const MAX_BACKOFFS: usize = 4;

/// The failed fetches of one domain, by id (RFC 8461 §3.3: the back-off is
/// per domain and id), oldest first.
pub(super) type Failures = Vec<Failed>;

pub(super) fn backing_off(failed: &[Failed], id: PolicyId, now: u64) -> Option<&Failed> {
    failed.iter().find(|f| f.id == id && now < f.until)
}

/// A cached policy. Failed fetches live in their own bounded map
/// ([`Shard::failures`]), so that domains whose fetches fail never evict
/// live policies.
#[derive(Debug, Default)]
pub(super) struct Entry {
    pub(super) policy: Option<Cached>,
    /// Lookups with a fetch in flight; a pinned entry is never evicted or
    /// removed by a purge.
    pub(super) pinned: u32,
}

impl Entry {
    pub(super) fn live(&self, now: u64) -> Option<&Cached> {
        self.policy.as_ref().filter(|c| now < c.expires_at)
    }

    /// RFC 8461 §3.3, §5.1: the decision for a TXT outcome, given the
    /// domain's failed fetches.
    pub(super) fn decide(&self, txt: TxtLookup, now: u64, failed: &[Failed]) -> Decision {
        let live = self.live(now);
        let apply = |c: &Cached, reason| Decision::Apply { policy: Arc::clone(&c.policy), id: c.id, reason };
        match txt {
            TxtLookup::Record(id) => {
                if let Some(c) = live.filter(|c| c.id == id) {
                    return apply(c, ApplyReason::SameId);
                }
                match (backing_off(failed, id, now), live) {
                    (Some(f), Some(c)) => apply(c, ApplyReason::FetchFailed(f.failure.clone())),
                    (Some(f), None) => {
                        Decision::NoPolicy(NoPolicyReason::Backoff { failure: f.failure.clone(), until: f.until })
                    }
                    (None, _) => Decision::Fetch { id },
                }
            }
            TxtLookup::NoRecord => {
                live.map_or(Decision::NoPolicy(NoPolicyReason::NoTxtRecord), |c| apply(c, ApplyReason::TxtMissing))
            }
            TxtLookup::Invalid => {
                live.map_or(Decision::NoPolicy(NoPolicyReason::TxtInvalid), |c| apply(c, ApplyReason::TxtInvalid))
            }
            TxtLookup::Failed => live.map_or(Decision::NoPolicy(NoPolicyReason::TxtLookupFailed), |c| {
                apply(c, ApplyReason::TxtLookupFailed)
            }),
        }
    }

    /// RFC 8461 §5.1: after a failed (or abandoned) fetch, a live policy
    /// still applies; without one, no policy does.
    pub(super) fn after_failure(&self, failure: FetchFailure, now: u64) -> Decision {
        match self.live(now) {
            Some(c) => {
                Decision::Apply { policy: Arc::clone(&c.policy), id: c.id, reason: ApplyReason::FetchFailed(failure) }
            }
            None => Decision::NoPolicy(NoPolicyReason::FetchFailed(failure)),
        }
    }

    /// Forgets the policy; an entry being fetched stays (pinned), any other
    /// is for removal. Returns whether a policy was held.
    pub(super) fn forget(&mut self) -> bool {
        self.policy.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResultType;

    #[derive(Debug, thiserror::Error)]
    #[error("HTTP 503")]
    struct Unavailable;

    fn id(s: &str) -> PolicyId {
        PolicyId::parse(s).unwrap()
    }

    fn held(policy_id: &str, fetched_at: u64, max_age: u32) -> Entry {
        let text = format!("version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: {max_age}\n");
        let policy = Arc::new(Policy::parse(&text).unwrap());
        Entry { policy: Some(Cached::new(id(policy_id), policy, fetched_at)), pinned: 0 }
    }

    fn failed(policy_id: &str, until: u64) -> Failed {
        Failed { id: id(policy_id), until, failure: FetchFailure::new(ResultType::StsPolicyFetchError, Unavailable) }
    }

    fn kind(d: &Decision) -> String {
        match d {
            Decision::Apply { id, reason, .. } => format!(
                "apply {id} {}",
                match reason {
                    ApplyReason::Fetched => "fetched",
                    ApplyReason::SameId => "same-id",
                    ApplyReason::FetchFailed(_) => "fetch-failed",
                    ApplyReason::TxtMissing => "txt-missing",
                    ApplyReason::TxtInvalid => "txt-invalid",
                    ApplyReason::TxtLookupFailed => "txt-failed",
                }
            ),
            Decision::Fetch { id } => format!("fetch {id}"),
            Decision::NoPolicy(why) => format!(
                "none {}",
                match why {
                    NoPolicyReason::NoTxtRecord => "no-txt".to_owned(),
                    NoPolicyReason::TxtInvalid => "txt-invalid".to_owned(),
                    NoPolicyReason::TxtLookupFailed => "txt-failed".to_owned(),
                    NoPolicyReason::FetchFailed(_) => "fetch-failed".to_owned(),
                    NoPolicyReason::Backoff { until, .. } => format!("backoff-until-{until}"),
                }
            ),
        }
    }

    /// RFC 8461 §3.3 and §5.1, one row per case: what is held, which
    /// fetches failed, the TXT outcome, the time, and the decision.
    #[test]
    fn the_rules_of_rfc8461_3_3_and_5_1() {
        let t0: u64 = 1_800_000_000;
        let day: u32 = 86_400;
        let d = u64::from(day);
        let rec = |s: &str| TxtLookup::Record(id(s));
        type Row = (&'static str, Entry, Vec<Failed>, TxtLookup, u64, &'static str);
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            ("nothing held: fetch the TXT id",                      Entry::default(), vec![], rec("a"), t0, "fetch a"),
            ("same id, live: the cache, no fetch (§3.3)",           held("a", t0, day), vec![], rec("a"), t0 + 10, "apply a same-id"),
            ("same id, the last second of max_age",                 held("a", t0, day), vec![], rec("a"), t0 + d - 1, "apply a same-id"),
            ("same id, expired at fetch time + max_age: fetch",     held("a", t0, day), vec![], rec("a"), t0 + d, "fetch a"),
            ("a new id: fetch it (§3.3)",                           held("a", t0, day), vec![], rec("b"), t0 + 10, "fetch b"),
            ("a new id backing off, live policy: the live one",     held("a", t0, day), vec![failed("b", t0 + 300)], rec("b"), t0 + 10, "apply a fetch-failed"),
            ("a new id backing off, nothing live: no policy",       Entry::default(), vec![failed("b", t0 + 300)], rec("b"), t0 + 10, "none backoff-until-1800000300"),
            ("the back-off is over: fetch again",                   Entry::default(), vec![failed("b", t0 + 300)], rec("b"), t0 + 300, "fetch b"),
            ("a back-off of another id does not hold this one",     Entry::default(), vec![failed("c", t0 + 300)], rec("b"), t0 + 10, "fetch b"),
            ("same id, live, though a fetch of it failed",          held("a", t0, day), vec![failed("a", t0 + 300)], rec("a"), t0 + 10, "apply a same-id"),
            ("the TXT record vanished: a live policy stays (§5.1)", held("a", t0, day), vec![], TxtLookup::NoRecord, t0 + 10, "apply a txt-missing"),
            ("the TXT record vanished, nothing live",               held("a", t0, day), vec![], TxtLookup::NoRecord, t0 + d, "none no-txt"),
            ("an invalid TXT record: a live policy stays",          held("a", t0, day), vec![], TxtLookup::Invalid, t0 + 10, "apply a txt-invalid"),
            ("an invalid TXT record, nothing held",                 Entry::default(), vec![], TxtLookup::Invalid, t0, "none txt-invalid"),
            ("the TXT lookup failed: a live policy stays (§10.2)",  held("a", t0, day), vec![], TxtLookup::Failed, t0 + 10, "apply a txt-failed"),
            ("the TXT lookup failed, nothing held",                 Entry::default(), vec![], TxtLookup::Failed, t0, "none txt-failed"),
            ("max_age 0: expired at once",                          held("a", t0, 0), vec![], rec("a"), t0, "fetch a"),
            ("max_age 0, no TXT record: nothing live",              held("a", t0, 0), vec![], TxtLookup::NoRecord, t0, "none no-txt"),
            ("max_age above the cap is clamped (31557600 s)",       held("a", t0, u32::MAX), vec![], rec("a"), t0 + 31_557_600, "fetch a"),
            ("a clock before the fetch: still live",                held("a", t0, day), vec![], rec("a"), t0 - 100, "apply a same-id"),
        ];
        for (case, entry, failures, txt, now, want) in rows {
            assert_eq!(kind(&entry.decide(txt, now, &failures)), want, "{case}");
        }
    }

    /// RFC 8461 §5.1: a failed fetch never takes a live policy's place.
    #[test]
    fn after_a_failed_fetch() {
        let t0 = 1_800_000_000;
        let failure = || FetchFailure::new(ResultType::StsPolicyFetchError, Unavailable);
        assert_eq!(kind(&held("a", t0, 86_400).after_failure(failure(), t0 + 10)), "apply a fetch-failed");
        assert_eq!(kind(&held("a", t0, 86_400).after_failure(failure(), t0 + 86_400)), "none fetch-failed");
        assert_eq!(kind(&Entry::default().after_failure(failure(), t0)), "none fetch-failed");
    }
}
