//! The answers of one resolver, kept for their TTL: positive and negative
//! (RFC 2308 §5), each with the CNAME chain that led to it, so that a
//! lookup of an alias answered from the cache still names its canonical
//! name (RFC 7672 §2.2.2 needs it for the TLSA base domain). Bogus answers
//! are never kept; denials live at most [`MAX_NEGATIVE_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use super::validate::Resolved;
use crate::engine::DnssecStatus;

/// The most answers kept; when full, expired ones go first, then all.
pub const ANSWER_CACHE_SIZE: usize = 65_536;

/// The most bytes of answers kept (their records' wire size and a fixed
/// overhead each): a hostile zone's 60 KB TXT answers would otherwise fill
/// [`ANSWER_CACHE_SIZE`] entries with 4 GB. When over, expired answers go
/// first, then all; an answer over a sixteenth of it is not kept.
pub const ANSWER_CACHE_BYTES: usize = 64 << 20;

/// The longest a negative answer is kept, whatever its SOA says.
pub const MAX_NEGATIVE_TTL: Duration = Duration::from_secs(3600);

type Key = (Name, u16);

/// Until when, the answer, what it costs.
type Kept = (Instant, Arc<Resolved>, usize);

#[derive(Default)]
struct Answers {
    map: HashMap<Key, Kept>,
    bytes: usize,
}

#[derive(Default)]
pub(super) struct AnswerCache(Mutex<Answers>);

/// What keeping an answer costs: its records' wire size, its CNAME chain
/// and a fixed overhead.
fn cost(answer: &Resolved) -> usize {
    // A record that cannot be encoded (none from the wire) is not kept.
    let records: usize = answer.records.iter().map(|r| r.to_bytes().map_or(ANSWER_CACHE_BYTES, |b| b.len())).sum();
    let chain: usize = answer.chain.iter().map(|n| n.len() + 32).sum();
    256 + records + chain
}

impl AnswerCache {
    pub fn get(&self, name: &Name, rtype: RecordType) -> Option<Arc<Resolved>> {
        // The key is built before the lock. Name's Hash and Eq ignore case
        // (RFC 4343), so the name needs no lower-casing to be found.
        let key = (name.clone(), u16::from(rtype));
        let now = Instant::now();
        let answers = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (until, answer, _) = answers.map.get(&key)?;
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
        let cost = cost(answer);
        if cost > ANSWER_CACHE_BYTES / 16 {
            return;
        }
        let mut answers = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let full = |a: &Answers| a.map.len() >= ANSWER_CACHE_SIZE || a.bytes + cost > ANSWER_CACHE_BYTES;
        if full(&answers) {
            answers.map.retain(|_, (u, _, _)| *u > now);
            answers.bytes = answers.map.values().map(|(_, _, c)| c).sum();
            if full(&answers) {
                answers.map.clear();
                answers.bytes = 0;
            }
        }
        if let Some((_, _, old)) =
            answers.map.insert((name.to_lowercase(), u16::from(rtype)), (until, Arc::clone(answer), cost))
        {
            answers.bytes -= old;
        }
        answers.bytes += cost;
    }

    /// The bytes of the answers kept.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::TXT;
    use hickory_proto::rr::{RData, Record};

    fn txt_answer(name: &Name, bytes: usize) -> Arc<Resolved> {
        let strings: Vec<String> = (0..bytes / 250).map(|_| "x".repeat(250)).collect();
        let record = Record::from_rdata(name.clone(), 300, RData::TXT(TXT::new(strings)));
        Arc::new(Resolved {
            chain: Vec::new(),
            records: vec![record],
            nx: false,
            status: DnssecStatus::Insecure,
            ttl: 300,
            delegation: false,
        })
    }

    /// A hostile zone's big answers never hold more than the byte budget.
    #[test]
    fn answers_stay_within_their_byte_budget() {
        let cache = AnswerCache::default();
        for i in 0..3_000 {
            let name = Name::from_ascii(format!("_mta-sts.x{i}.attacker.example.")).unwrap();
            cache.put(&name, RecordType::TXT, &txt_answer(&name, 60_000));
            assert!(cache.bytes() <= ANSWER_CACHE_BYTES, "{} bytes after {i}", cache.bytes());
        }
        // The latest answer is kept; an answer too big for a share is not.
        let last = Name::from_ascii("_mta-sts.x2999.attacker.example.").unwrap();
        assert!(cache.get(&last, RecordType::TXT).is_some());
        let huge = Name::from_ascii("huge.example.").unwrap();
        cache.put(&huge, RecordType::TXT, &txt_answer(&huge, ANSWER_CACHE_BYTES / 8));
        assert!(cache.get(&huge, RecordType::TXT).is_none());
    }
}
