//! The single flight: one fetch for any number of concurrent lookups of
//! the same domain and policy id, for callers on threads and in async code.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use super::{Decision, Entry, FetchFailure, PolicyCache, Shard, lock};
use crate::ResultType;
use crate::name::DomainName;
use crate::sts::{Policy, PolicyId};

/// One in-flight fetch that concurrent lookups wait for.
#[derive(Default)]
pub(super) struct Flight {
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Default)]
struct State {
    result: Option<Decision>,
    wakers: Vec<Waker>,
}

impl Flight {
    /// Hands the decision to every waiter, on threads and in tasks.
    fn publish(&self, decision: Decision) {
        let wakers = {
            let mut state = lock(&self.state);
            state.result = Some(decision);
            std::mem::take(&mut state.wakers)
        };
        self.done.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// What a lookup does next ([`PolicyCache::begin`]).
#[must_use = "a Fetch ticket that is dropped abandons the fetch"]
pub enum Begin<'a> {
    /// The answer, no fetch needed.
    Decided(Decision),
    /// Another lookup is fetching this domain's policy id: its answer.
    Wait(FlightWait),
    /// This lookup fetches: do it, then [`FetchTicket::finish`].
    Fetch(FetchTicket<'a>),
}

impl std::fmt::Debug for Begin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Decided(d) => f.debug_tuple("Decided").field(d).finish(),
            Self::Wait(_) => f.write_str("Wait"),
            Self::Fetch(t) => f.debug_tuple("Fetch").field(&t.id).finish(),
        }
    }
}

/// The answer of another lookup's fetch: `.await` it in async code, or
/// [`wait`](Self::wait) on a thread.
pub struct FlightWait {
    flight: Arc<Flight>,
}

impl FlightWait {
    pub(super) fn new(flight: Arc<Flight>) -> Self {
        Self { flight }
    }

    /// Blocks the thread until the fetch is recorded (or abandoned).
    pub fn wait(self) -> Decision {
        let mut state = lock(&self.flight.state);
        loop {
            if let Some(d) = state.result.as_ref() {
                return d.clone();
            }
            state = self.flight.done.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Future for FlightWait {
    type Output = Decision;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Decision> {
        let mut state = lock(&self.flight.state);
        if let Some(d) = state.result.as_ref() {
            return Poll::Ready(d.clone());
        }
        if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// The right and duty to fetch one domain's policy id: the entry is pinned
/// (never evicted) until the result is recorded with
/// [`finish`](Self::finish). Dropped unfinished (the fetching thread
/// panicked, the task was cancelled), the waiters get a failure without
/// back-off and the next lookup fetches again.
pub struct FetchTicket<'a> {
    cache: &'a PolicyCache,
    domain: DomainName,
    id: PolicyId,
    flight: Arc<Flight>,
    now: u64,
    done: bool,
}

/// The error a waiter sees when the fetch was abandoned.
#[derive(Debug, thiserror::Error)]
#[error(
    "the policy fetch was abandoned (the fetching thread panicked or its task was cancelled); the next lookup fetches again"
)]
struct FetchAbandoned;

impl<'a> FetchTicket<'a> {
    pub(super) fn new(cache: &'a PolicyCache, domain: DomainName, id: PolicyId, flight: Arc<Flight>, now: u64) -> Self {
        Self { cache, domain, id, flight, now, done: false }
    }

    /// The policy id to fetch (the TXT record's, or the cached one's on a
    /// refresh without a usable TXT record).
    pub fn id(&self) -> PolicyId {
        self.id
    }

    /// Records the fetch's result at the lookup's time, hands it to the
    /// waiters and says what applies (as
    /// [`PolicyCache::record_fetch`]).
    pub fn finish(mut self, result: Result<Policy, FetchFailure>) -> Decision {
        self.done = true;
        let decision = {
            let mut shard = self.cache.shard(&self.domain);
            let decision = self.cache.record_locked(&mut shard, &self.domain, self.id, result, self.now);
            self.unpin(&mut shard);
            decision
        };
        self.flight.publish(decision.clone());
        decision
    }

    fn unpin(&self, shard: &mut Shard) {
        if shard.flights.get(&self.domain).is_some_and(|(_, f)| Arc::ptr_eq(f, &self.flight)) {
            shard.flights.remove(&self.domain);
        }
        if let Some(e) = shard.entries.get_mut(&self.domain) {
            e.pinned = e.pinned.saturating_sub(1);
        }
        let before = shard.entries.len();
        self.cache.track(shard, before, Some(self.now));
    }
}

impl Drop for FetchTicket<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let decision = {
            let mut shard = self.cache.shard(&self.domain);
            self.unpin(&mut shard);
            // No back-off: the fetch did not fail, it was abandoned.
            let failure = FetchFailure::new(ResultType::StsPolicyFetchError, FetchAbandoned);
            match shard.entries.peek(&self.domain) {
                Some(entry) => entry.after_failure(failure, self.now),
                None => Entry::default().after_failure(failure, self.now),
            }
        };
        self.flight.publish(decision);
    }
}
