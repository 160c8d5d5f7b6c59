//! The answers of one resolver, kept for their TTL: positive and negative
//! (RFC 2308 §5), each with the CNAME chain that led to it, so that a
//! lookup of an alias answered from the cache still names its canonical
//! name (RFC 7672 §2.2.2 needs it for the TLSA base domain). Bogus answers
//! are never kept; denials live at most [`MAX_NEGATIVE_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::rr::{Name, RecordType};

use super::validate::Resolved;
use crate::engine::DnssecStatus;

/// The most answers kept; when full, expired ones go first, then all.
pub const ANSWER_CACHE_SIZE: usize = 65_536;

/// The longest a negative answer is kept, whatever its SOA says.
pub const MAX_NEGATIVE_TTL: Duration = Duration::from_secs(3600);

type Key = (Name, u16);

#[derive(Default)]
pub(super) struct AnswerCache(Mutex<HashMap<Key, (Instant, Arc<Resolved>)>>);

impl AnswerCache {
    pub fn get(&self, name: &Name, rtype: RecordType) -> Option<Arc<Resolved>> {
        let now = Instant::now();
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (until, answer) = map.get(&(name.to_lowercase(), u16::from(rtype)))?;
        (*until > now).then(|| Arc::clone(answer))
    }

    pub fn put(&self, name: &Name, rtype: RecordType, answer: &Arc<Resolved>) {
        if answer.status == DnssecStatus::Bogus || answer.ttl == 0 {
            return;
        }
        let mut ttl = Duration::from_secs(u64::from(answer.ttl));
        if answer.records.is_empty() {
            ttl = ttl.min(MAX_NEGATIVE_TTL);
        }
        let now = Instant::now();
        let Some(until) = now.checked_add(ttl) else { return };
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= ANSWER_CACHE_SIZE {
            map.retain(|_, (u, _)| *u > now);
            if map.len() >= ANSWER_CACHE_SIZE {
                map.clear();
            }
        }
        map.insert((name.to_lowercase(), u16::from(rtype)), (until, Arc::clone(answer)));
    }
}
