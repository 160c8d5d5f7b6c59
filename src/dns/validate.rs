//! DNSSEC validation in process (RFC 4033, RFC 4034, RFC 4035, RFC 5155,
//! RFC 6840), on the answers of a recursive resolver asked with DO and CD.
//!
//! The rule: **secure only with proof; bogus when a required proof
//! (signature or denial) is missing or wrong; extra signatures never weaken
//! a status.** Every RRset of an answer (each CNAME on the way and the
//! records at its end) is secure when one RRSIG over it verifies with a key
//! of a zone whose DNSKEY RRset is secure (the chain from the trust anchor
//! through DS records); a wildcard expansion is secure only with the proof
//! that no closer name exists (RFC 4035 §5.3.4, RFC 5155 §8.8); a denial is
//! secure only with verified NSEC or NSEC3 records that prove it (RFC 4035
//! §5.4, RFC 5155 §8). An RRset without signatures is insecure only where a
//! secure denial of DS proves an unsigned delegation above it (RFC 4035
//! §5.2); in a signed zone it is bogus. DS records that name only
//! algorithms or digests this crate cannot check make the zone insecure
//! (RFC 4035 §5.2, RFC 6840 §5.2), as do NSEC3 records with more than
//! [`MAX_NSEC3_ITERATIONS`] iterations (RFC 9276 §3.2).
//!
//! hickory-proto supplies the record types, the canonical signed-data form
//! and the signature check (ring); the procedure is here, so that its
//! statuses do not depend on hickory's validator (which, in 0.26, takes
//! wildcard answers for bogus: hickory-dns issue #2882).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, NSEC, NSEC3, RRSIG};
use hickory_proto::dnssec::{TrustAnchors, Verifier};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::cache::AnswerCache;
use super::negative::{Denial, closest_encloser, covering_nsec3, covers, nsec_denial, nsec3_denial, nsec3_params};
use super::transport::{Failure, Flags, Transport};
use crate::discovery::{CannotValidate, Malformed};
use crate::engine::DnssecStatus;

/// NSEC3 records with more iterations are treated as insecure (RFC 9276
/// §3.2; the limit BIND and unbound use).
pub const MAX_NSEC3_ITERATIONS: u16 = 150;

/// The longest CNAME chain followed.
pub(super) const MAX_CNAME_HOPS: usize = 8;

/// How deep validation may go (DS and DNSKEY lookups up the tree).
const MAX_DEPTH: u8 = 24;

/// The longest any answer is kept.
pub(super) const MAX_TTL: u32 = 86_400;

/// An answer, validated or not: the CNAMEs followed from the name asked,
/// the RRset of the type asked at their end (empty: NODATA or NXDOMAIN),
/// and its status.
#[derive(Debug, Clone)]
pub(super) struct Resolved {
    /// The names the CNAME chain went through, after the name asked; the
    /// last is the canonical name.
    pub chain: Vec<Name>,
    /// The records of the type asked at the canonical name.
    pub records: Vec<Record>,
    /// The canonical name does not exist.
    pub nx: bool,
    /// The weakest status of every RRset and denial in the answer.
    pub status: DnssecStatus,
    /// The smallest TTL (the negative TTL for a denial).
    pub ttl: u32,
    /// A secure denial of DS that proves an unsigned delegation (NS without
    /// DS in the NSEC bitmap, or NSEC3 opt-out).
    pub delegation: bool,
}

/// A failed lookup.
#[derive(Debug, Clone)]
pub(super) enum LookupError {
    Timeout,
    Network(std::io::ErrorKind),
    Malformed(Malformed),
    Rcode(ResponseCode),
    /// The trust anchor's DNSKEY RRset cannot be validated through these
    /// servers (they strip or break DNSSEC), and the resolver refuses to run
    /// degraded.
    CannotValidate(CannotValidate),
}

impl From<Failure> for LookupError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Timeout => Self::Timeout,
            Failure::Network(m) => Self::Network(m),
            Failure::Malformed(m) => Self::Malformed(m),
        }
    }
}

type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How statuses are established.
pub(super) enum Mode {
    Validate { anchors: Arc<TrustAnchors>, degrade: bool },
    TrustAd,
    Off,
}

/// What the chain of trust says of one zone's keys.
#[derive(Debug, Clone)]
enum Keys {
    Secure(Arc<Vec<DNSKEY>>),
    Insecure,
    Bogus,
    /// The lookups failed (timeouts, SERVFAIL): nothing can be said.
    Failed,
    /// The trust anchor's own DNSKEY RRset does not validate through these
    /// servers: the path cannot do DNSSEC.
    CannotValidate,
}

/// Whether the servers' path can validate the trust anchor's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Not known yet (nothing validated so far).
    Unknown,
    /// The trust anchor's DNSKEY RRset validated.
    Validating,
    /// The servers strip or break DNSSEC: in degraded mode DANE is
    /// unavailable (answers are indeterminate); otherwise lookups fail.
    CannotValidate,
}

/// The lookups of one resolver: transport, mode, caches, health.
pub(super) struct Lookups {
    pub transport: Transport,
    pub mode: Mode,
    pub cache: AnswerCache,
    keys: Mutex<HashMap<Name, (Instant, Keys)>>,
    /// One key fetch per zone at a time ([`Lookups::zone_keys`]).
    key_gates: Mutex<HashMap<Name, Arc<tokio::sync::Mutex<()>>>>,
    key_fetches: AtomicU64,
    health: AtomicU8,
    degraded: AtomicU64,
}

/// The most zones whose keys are kept.
const KEY_CACHE_SIZE: usize = 4096;

impl Lookups {
    pub fn new(transport: Transport, mode: Mode) -> Self {
        Self {
            transport,
            mode,
            cache: AnswerCache::default(),
            keys: Mutex::default(),
            key_gates: Mutex::default(),
            key_fetches: AtomicU64::new(0),
            health: AtomicU8::new(0),
            degraded: AtomicU64::new(0),
        }
    }

    pub fn health(&self) -> Health {
        match self.health.load(Ordering::Relaxed) {
            1 => Health::Validating,
            2 => Health::CannotValidate,
            _ => Health::Unknown,
        }
    }

    /// How many answers were given as indeterminate because the path cannot
    /// validate.
    pub fn degraded_answers(&self) -> u64 {
        self.degraded.load(Ordering::Relaxed)
    }

    fn set_health(&self, health: Health) {
        let value = match health {
            Health::Validating => 1,
            Health::CannotValidate => 2,
            Health::Unknown => 0,
        };
        let before = self.health.swap(value, Ordering::Relaxed);
        if before != value && health == Health::CannotValidate {
            tracing::error!(
                "DNSSEC validation does not work with these DNS servers: the trust anchor's DNSKEY RRset does not \
                 validate (the servers strip or break DNSSEC); DANE is unavailable until it does"
            );
        } else if before == 2 && health == Health::Validating {
            tracing::warn!("DNSSEC validation works again with these DNS servers");
        }
    }

    /// The answer for (`name`, `rtype`), from the cache or the servers.
    pub async fn lookup(&self, name: &Name, rtype: RecordType) -> Result<Arc<Resolved>, LookupError> {
        self.lookup_at(name, rtype, 0).await
    }

    fn lookup_at<'a>(
        &'a self,
        name: &'a Name,
        rtype: RecordType,
        depth: u8,
    ) -> Fut<'a, Result<Arc<Resolved>, LookupError>> {
        Box::pin(async move {
            if let Some(hit) = self.cache.get(name, rtype) {
                return Ok(hit);
            }
            if depth > MAX_DEPTH {
                return Err(LookupError::Malformed(Malformed::ChainTooDeep));
            }
            let resolved = self.resolve(name, rtype, depth).await?;
            let resolved = match (&self.mode, resolved.status) {
                (Mode::Validate { degrade, .. }, DnssecStatus::Indeterminate) if self.cannot_validate() => {
                    if !degrade {
                        return Err(LookupError::CannotValidate(CannotValidate::AnchorKeys));
                    }
                    self.degraded.fetch_add(1, Ordering::Relaxed);
                    resolved
                }
                _ => resolved,
            };
            let resolved = Arc::new(resolved);
            self.cache.put(name, rtype, &resolved);
            Ok(resolved)
        })
    }

    fn cannot_validate(&self) -> bool {
        self.health() == Health::CannotValidate
    }

    fn flags(&self) -> Flags {
        match self.mode {
            Mode::Validate { .. } => Flags { dnssec_ok: true, checking_disabled: true, authentic_data: false },
            Mode::TrustAd => Flags { dnssec_ok: true, checking_disabled: false, authentic_data: true },
            Mode::Off => Flags { dnssec_ok: false, checking_disabled: false, authentic_data: false },
        }
    }

    async fn resolve(&self, qname: &Name, qtype: RecordType, depth: u8) -> Result<Resolved, LookupError> {
        let message = self.transport.exchange(qname, qtype, self.flags()).await?;
        let code = message.metadata.response_code;
        if !matches!(code, ResponseCode::NoError | ResponseCode::NXDomain) {
            return Err(LookupError::Rcode(code));
        }
        let walk = walk(&message, qname, qtype);
        let mut status = DnssecStatus::Secure;
        let mut ttl = MAX_TTL;
        let mut chain = Vec::with_capacity(walk.hops.len());
        for (owner, cname, target) in &walk.hops {
            status = weakest(status, self.rrset_status(&message, owner, RecordType::CNAME, cname, depth).await);
            ttl = ttl.min(min_ttl(cname));
            chain.push(target.clone());
        }
        let end = chain.last().unwrap_or(qname).clone();
        if !walk.records.is_empty() {
            status = weakest(status, self.rrset_status(&message, &end, qtype, &walk.records, depth).await);
            ttl = ttl.min(min_ttl(&walk.records));
            let records = walk.records;
            return Ok(self.finish(Resolved { chain, records, nx: false, status, ttl, delegation: false }));
        }
        // No records at the end of the chain. A chain that ends without the
        // servers' denial for its last name (a server that does not follow
        // CNAMEs into another zone) is asked on from there.
        let has_denial = message.authorities.iter().any(|r| r.record_type() == RecordType::SOA)
            || message.authorities.iter().any(|r| matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3));
        if !chain.is_empty() && (!has_denial || walk.hops.len() >= MAX_CNAME_HOPS) {
            if chain.len() >= MAX_CNAME_HOPS {
                return Err(LookupError::Malformed(Malformed::TooManyCnames(MAX_CNAME_HOPS)));
            }
            let rest = self.lookup_at(&end, qtype, depth).await?;
            let mut resolved = (*rest).clone();
            chain.append(&mut resolved.chain);
            resolved.chain = chain;
            resolved.status = weakest(status, resolved.status);
            resolved.ttl = ttl.min(resolved.ttl);
            return Ok(resolved);
        }
        let nx = code == ResponseCode::NXDomain;
        let (denial, delegation) = self.denial_status(&message, &end, qtype, nx, depth).await;
        status = weakest(status, denial);
        ttl = ttl.min(negative_ttl(&message).unwrap_or(0));
        Ok(self.finish(Resolved { chain, records: Vec::new(), nx, status, ttl, delegation }))
    }

    fn finish(&self, mut r: Resolved) -> Resolved {
        if matches!(self.mode, Mode::Off) {
            r.status = DnssecStatus::Indeterminate;
        }
        r
    }

    /// The status of one RRset of `message` in the answer section.
    async fn rrset_status(
        &self,
        message: &Message,
        owner: &Name,
        rtype: RecordType,
        rrset: &[Record],
        depth: u8,
    ) -> DnssecStatus {
        match &self.mode {
            Mode::Off => return DnssecStatus::Indeterminate,
            Mode::TrustAd => {
                return if message.metadata.authentic_data { DnssecStatus::Secure } else { DnssecStatus::Insecure };
            }
            Mode::Validate { .. } => {}
        }
        let sigs = signatures(&message.answers, owner, rtype);
        if sigs.is_empty() {
            return self.unsigned_status(owner, depth).await;
        }
        // Every signer must be the owner or above it, and a DS RRset is signed
        // by the parent (RFC 4035 §5.3.1).
        let mut worst = None;
        for signer in distinct_signers(&sigs) {
            let fits = signer.zone_of(owner) && !(rtype == RecordType::DS && signer == *owner);
            let status = if !fits {
                DnssecStatus::Bogus
            } else {
                match self.zone_keys(&signer, depth + 1).await {
                    Keys::Secure(keys) => match verify_rrset(owner, rrset, &sigs, &signer, &keys) {
                        Some(labels) if usize::from(labels) < usize::from(owner.num_labels()) => {
                            self.wildcard_status(message, owner, labels, &signer, &keys)
                        }
                        Some(_) => DnssecStatus::Secure,
                        None => DnssecStatus::Bogus,
                    },
                    Keys::Insecure => DnssecStatus::Insecure,
                    Keys::Bogus => DnssecStatus::Bogus,
                    Keys::Failed | Keys::CannotValidate => DnssecStatus::Indeterminate,
                }
            };
            // One signer proving the RRset is enough; extra signatures by
            // other (stale, foreign) signers never weaken it.
            if status == DnssecStatus::Secure {
                return status;
            }
            worst = Some(worst.map_or(status, |w| best(w, status)));
        }
        worst.unwrap_or(DnssecStatus::Bogus)
    }

    /// RFC 4035 §5.3.4 / RFC 5155 §8.8: a wildcard expansion needs the proof
    /// that the name asked does not exist closer than the wildcard.
    fn wildcard_status(
        &self,
        message: &Message,
        owner: &Name,
        labels: u8,
        zone: &Name,
        keys: &[DNSKEY],
    ) -> DnssecStatus {
        let proof = verified_proof(&message.authorities, zone, keys);
        let source_parent = owner.trim_to(usize::from(labels));
        let ok = if !proof.nsec3.is_empty() {
            let next_closer = owner.trim_to(usize::from(labels) + 1);
            match nsec3_params(&proof.nsec3) {
                Some(params) if params.iterations > MAX_NSEC3_ITERATIONS => return DnssecStatus::Insecure,
                // RFC 5155 §9.2: an opt-out span may hide an unsigned
                // delegation at the next closer name: insecure.
                Some(params) => match covering_nsec3(&proof.nsec3, &params, &next_closer, zone) {
                    Some(n) if n.opt_out() => return DnssecStatus::Insecure,
                    Some(_) => true,
                    None => false,
                },
                None => false,
            }
        } else {
            proof.nsec.iter().any(|(o, n)| covers(o, n, owner) && closest_encloser(owner, o, n).num_labels() <= labels)
                && source_parent.zone_of(owner)
        };
        if ok { DnssecStatus::Secure } else { DnssecStatus::Bogus }
    }

    /// An RRset (or a denial) without signatures: insecure when a secure
    /// denial of DS proves an unsigned delegation at or above `name`, bogus
    /// when `name` is in a signed zone.
    fn unsigned_status<'a>(&'a self, name: &'a Name, depth: u8) -> Fut<'a, DnssecStatus> {
        Box::pin(async move {
            let Some(anchor) = self.anchor_above() else { return DnssecStatus::Insecure };
            match self.zone_keys(&anchor, depth + 1).await {
                Keys::Secure(_) => {}
                Keys::Insecure => return DnssecStatus::Insecure,
                Keys::Bogus => return DnssecStatus::Bogus,
                Keys::Failed | Keys::CannotValidate => return DnssecStatus::Indeterminate,
            }
            let (top, bottom) = (usize::from(anchor.num_labels()), usize::from(name.num_labels()));
            for labels in top + 1..=bottom {
                let cut = name.trim_to(labels);
                let ds = match self.lookup_at(&cut, RecordType::DS, depth + 1).await {
                    Ok(ds) => ds,
                    Err(_) => return DnssecStatus::Indeterminate,
                };
                match ds.status {
                    DnssecStatus::Secure if !ds.records.is_empty() => match self.zone_keys(&cut, depth + 1).await {
                        Keys::Secure(_) => {}
                        Keys::Insecure => return DnssecStatus::Insecure,
                        Keys::Bogus => return DnssecStatus::Bogus,
                        Keys::Failed | Keys::CannotValidate => return DnssecStatus::Indeterminate,
                    },
                    DnssecStatus::Secure if ds.delegation => return DnssecStatus::Insecure,
                    // The name does not exist: unsigned records claiming it are forged.
                    DnssecStatus::Secure if ds.nx => return DnssecStatus::Bogus,
                    DnssecStatus::Secure => {}
                    other => return other,
                }
            }
            DnssecStatus::Bogus
        })
    }

    /// The trust anchor at or above `name` (the root for the IANA anchors).
    fn anchor_above(&self) -> Option<Name> {
        matches!(self.mode, Mode::Validate { .. }).then(Name::root)
    }

    /// The cached keys of `zone`, while their TTL lasts.
    fn cached_keys(&self, zone: &Name) -> Option<Keys> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.get(zone).filter(|(until, _)| *until > Instant::now()).map(|(_, k)| k.clone())
    }

    /// The gate of `zone`'s key fetch (made on first use).
    fn key_gate(&self, zone: &Name) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.key_gates.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(gates.entry(zone.clone()).or_default())
    }

    /// Forgets the gate when nobody else holds or waits for it.
    fn release_gate(&self, zone: &Name, gate: &Arc<tokio::sync::Mutex<()>>) {
        let mut gates = self.key_gates.lock().unwrap_or_else(|p| p.into_inner());
        // The map's reference and this one: nobody else.
        if Arc::strong_count(gate) <= 2 {
            gates.remove(zone);
        }
    }

    /// DNSKEY RRsets fetched since the resolver was made (a metric; tests
    /// use it to see that concurrent lookups share one fetch).
    pub fn key_fetches(&self) -> u64 {
        self.key_fetches.load(Ordering::Relaxed)
    }

    /// The keys of `zone` through the chain of trust, cached for their TTL.
    /// One fetch per zone at a time: concurrent lookups wait for the first
    /// and then read its keys from the cache. The wait is bounded by one
    /// query timeout (a lookup that could wait on its own zone's gate goes
    /// on after it), so a gate may slow a lookup down, never hang it.
    fn zone_keys<'a>(&'a self, zone: &'a Name, depth: u8) -> Fut<'a, Keys> {
        Box::pin(async move {
            if let Some(k) = self.cached_keys(zone) {
                return k;
            }
            if depth > MAX_DEPTH {
                return Keys::Failed;
            }
            // Released however this lookup ends (a cancelled task included).
            let mut gate = Gate { lookups: self, zone, gate: Some(self.key_gate(zone)), held: None };
            let lock = Arc::clone(gate.gate.as_ref().expect("just set")).lock_owned();
            gate.held = tokio::time::timeout(self.transport.timeout, lock).await.ok();
            if gate.held.is_some()
                && let Some(k) = self.cached_keys(zone)
            {
                return k;
            }
            let now = Instant::now();
            let (keys, ttl) = self.fetch_keys(zone, depth).await;
            if zone.is_root() {
                match keys {
                    Keys::Secure(_) => self.set_health(Health::Validating),
                    Keys::CannotValidate => self.set_health(Health::CannotValidate),
                    _ => {}
                }
            }
            if matches!(keys, Keys::Secure(_) | Keys::Insecure) && ttl > 0 {
                let mut map = self.keys.lock().unwrap_or_else(|p| p.into_inner());
                if map.len() >= KEY_CACHE_SIZE {
                    map.retain(|_, (until, _)| *until > now);
                    if map.len() >= KEY_CACHE_SIZE {
                        map.clear();
                    }
                }
                let until = now.checked_add(Duration::from_secs(u64::from(ttl.min(MAX_TTL)))).unwrap_or(now);
                map.insert(zone.clone(), (until, keys.clone()));
            }
            drop(gate);
            keys
        })
    }

    async fn fetch_keys(&self, zone: &Name, depth: u8) -> (Keys, u32) {
        let Mode::Validate { anchors, .. } = &self.mode else { return (Keys::Insecure, 0) };
        let mut ttl = MAX_TTL;
        if !zone.is_root() {
            let ds = match self.lookup_at(zone, RecordType::DS, depth + 1).await {
                Ok(ds) => ds,
                Err(_) => return (Keys::Failed, 0),
            };
            match ds.status {
                DnssecStatus::Secure if ds.records.is_empty() => return (Keys::Insecure, ds.ttl),
                DnssecStatus::Secure => {}
                DnssecStatus::Insecure => return (Keys::Insecure, ds.ttl),
                DnssecStatus::Bogus => return (Keys::Bogus, 0),
                _ => return (Keys::Failed, 0),
            }
            ttl = ttl.min(ds.ttl);
            let usable: Vec<_> = ds
                .records
                .iter()
                .filter_map(|r| match &r.data {
                    RData::DNSSEC(DNSSECRData::DS(ds)) => Some(ds),
                    _ => None,
                })
                .filter(|ds| ds.algorithm().is_supported() && ds.digest_type().is_supported())
                .collect();
            if usable.is_empty() {
                // RFC 4035 §5.2, RFC 6840 §5.2: only algorithms or digests we
                // cannot check: the zone is treated as unsigned.
                return (Keys::Insecure, ttl);
            }
            self.key_fetches.fetch_add(1, Ordering::Relaxed);
            let message = match self.transport.exchange(zone, RecordType::DNSKEY, self.flags()).await {
                Ok(m) => m,
                Err(_) => return (Keys::Failed, 0),
            };
            let rrset = rrset_of(&message.answers, zone, RecordType::DNSKEY);
            let keys = dnskeys(&rrset);
            let trusted: Vec<DNSKEY> =
                keys.iter().filter(|k| usable.iter().any(|ds| ds.covers(zone, k).unwrap_or(false))).cloned().collect();
            return match self_signed(&message, zone, &rrset, &trusted) {
                Some(t) => (Keys::Secure(Arc::new(keys)), ttl.min(t)),
                None => (Keys::Bogus, 0),
            };
        }
        self.key_fetches.fetch_add(1, Ordering::Relaxed);
        let message = match self.transport.exchange(zone, RecordType::DNSKEY, self.flags()).await {
            Ok(m) if matches!(m.metadata.response_code, ResponseCode::NoError) => m,
            Ok(m) if m.metadata.response_code == ResponseCode::NXDomain => return (Keys::CannotValidate, 0),
            Ok(_) | Err(_) => return (Keys::Failed, 0),
        };
        let rrset = rrset_of(&message.answers, zone, RecordType::DNSKEY);
        let keys = dnskeys(&rrset);
        let anchored: Vec<DNSKEY> = keys.iter().filter(|k| anchors.contains(k.public_key())).cloned().collect();
        if keys.is_empty() || signatures(&message.answers, zone, RecordType::DNSKEY).is_empty() {
            return (Keys::CannotValidate, 0);
        }
        match self_signed(&message, zone, &rrset, &anchored) {
            Some(t) => (Keys::Secure(Arc::new(keys)), ttl.min(t)),
            None if anchored.is_empty() => (Keys::Bogus, 0),
            None => (Keys::CannotValidate, 0),
        }
    }

    /// The status of a denial (NXDOMAIN or NODATA) of (`qname`, `qtype`) in
    /// `message`, and whether it proves an unsigned delegation (for DS).
    async fn denial_status(
        &self,
        message: &Message,
        qname: &Name,
        qtype: RecordType,
        nx: bool,
        depth: u8,
    ) -> (DnssecStatus, bool) {
        match &self.mode {
            Mode::Off => return (DnssecStatus::Indeterminate, false),
            Mode::TrustAd => {
                let s = if message.metadata.authentic_data { DnssecStatus::Secure } else { DnssecStatus::Insecure };
                return (s, false);
            }
            Mode::Validate { .. } => {}
        }
        let signer = message.authorities.iter().find_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(sig))
                if matches!(sig.input().type_covered, RecordType::SOA | RecordType::NSEC | RecordType::NSEC3) =>
            {
                Some(sig.input().signer_name.clone())
            }
            _ => None,
        });
        let Some(zone) = signer else {
            // Nothing signed: insecure only under an unsigned delegation.
            return (self.unsigned_status(qname, depth).await, false);
        };
        if !zone.zone_of(qname) || (qtype == RecordType::DS && zone == *qname) {
            return (DnssecStatus::Bogus, false);
        }
        let keys = match self.zone_keys(&zone, depth + 1).await {
            Keys::Secure(keys) => keys,
            Keys::Insecure => return (DnssecStatus::Insecure, false),
            Keys::Bogus => return (DnssecStatus::Bogus, false),
            Keys::Failed | Keys::CannotValidate => return (DnssecStatus::Indeterminate, false),
        };
        let proof = verified_proof(&message.authorities, &zone, &keys);
        let outcome = if !proof.nsec3.is_empty() {
            nsec3_denial(&proof.nsec3, &zone, qname, qtype, nx)
        } else {
            nsec_denial(&proof.nsec, qname, qtype, nx)
        };
        match outcome {
            Denial::Proven { delegation } => (DnssecStatus::Secure, delegation),
            Denial::OptOut => (DnssecStatus::Insecure, qtype == RecordType::DS && !nx),
            Denial::Insecure => (DnssecStatus::Insecure, false),
            Denial::Missing => (DnssecStatus::Bogus, false),
        }
    }
}

/// A DNSKEY RRset signed by one of the `trusted` keys (RFC 4035 §5.2):
/// the TTL it may be kept for.
fn self_signed(message: &Message, zone: &Name, rrset: &[Record], trusted: &[DNSKEY]) -> Option<u32> {
    let sigs = signatures(&message.answers, zone, RecordType::DNSKEY);
    verify_rrset(zone, rrset, &sigs, zone, trusted).map(|_| min_ttl(rrset))
}

/// The answer section read from the name asked: the CNAMEs on the way and
/// the records of the type asked at the end.
struct Walk {
    /// (owner, CNAME RRset, target) for each hop.
    hops: Vec<(Name, Vec<Record>, Name)>,
    records: Vec<Record>,
}

fn walk(message: &Message, qname: &Name, qtype: RecordType) -> Walk {
    let mut hops = Vec::new();
    let mut current = qname.clone();
    loop {
        let records = rrset_of(&message.answers, &current, qtype);
        if !records.is_empty() || qtype == RecordType::CNAME {
            return Walk { hops, records };
        }
        let cname = rrset_of(&message.answers, &current, RecordType::CNAME);
        let target = cname.iter().find_map(|r| match &r.data {
            RData::CNAME(t) => Some(t.0.clone()),
            _ => None,
        });
        match target {
            Some(t) if hops.len() < MAX_CNAME_HOPS && !hops.iter().any(|(o, _, _)| *o == t) && t != *qname => {
                hops.push((current, cname, t.clone()));
                current = t;
            }
            _ => return Walk { hops, records },
        }
    }
}

fn rrset_of(records: &[Record], owner: &Name, rtype: RecordType) -> Vec<Record> {
    records
        .iter()
        .filter(|r| r.record_type() == rtype && r.name == *owner && r.dns_class == DNSClass::IN)
        .cloned()
        .collect()
}

fn dnskeys(rrset: &[Record]) -> Vec<DNSKEY> {
    rrset
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.clone()),
            _ => None,
        })
        .collect()
}

fn signatures(section: &[Record], owner: &Name, rtype: RecordType) -> Vec<RRSIG> {
    section
        .iter()
        .filter(|r| r.name == *owner)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(sig)) if sig.input().type_covered == rtype => Some(sig.clone()),
            _ => None,
        })
        .collect()
}

fn distinct_signers(sigs: &[RRSIG]) -> Vec<Name> {
    let mut out: Vec<Name> = Vec::new();
    for s in sigs {
        let n = &s.input().signer_name;
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

fn min_ttl(rrset: &[Record]) -> u32 {
    rrset.iter().map(|r| r.ttl).min().unwrap_or(0).min(MAX_TTL)
}

/// RFC 2308 §5: the smaller of the SOA's TTL and its MINIMUM field.
pub(super) fn negative_ttl(message: &Message) -> Option<u32> {
    message.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
        _ => None,
    })
}

/// Seconds since the epoch in RRSIG serial arithmetic (RFC 4034 §3.1.5).
fn now_serial() -> u32 {
    let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    (secs & 0xffff_ffff) as u32
}

/// Whether `now` lies within the signature's validity (RFC 4034 §3.1.5,
/// RFC 1982 serial number arithmetic).
fn in_validity(sig: &RRSIG, now: u32) -> bool {
    let inception = sig.input().sig_inception.get();
    let expiration = sig.input().sig_expiration.get();
    (now.wrapping_sub(inception) as i32) >= 0 && (expiration.wrapping_sub(now) as i32) >= 0
}

/// Verifies `rrset` at `owner` with one of `sigs` made by `signer` with one
/// of `keys` (RFC 4035 §5.3): the RRSIG's labels field of the signature that
/// verified (less than the owner's labels for a wildcard expansion).
fn verify_rrset(owner: &Name, rrset: &[Record], sigs: &[RRSIG], signer: &Name, keys: &[DNSKEY]) -> Option<u8> {
    if rrset.is_empty() {
        return None;
    }
    let now = now_serial();
    for sig in sigs {
        let input = sig.input();
        if input.signer_name != *signer || !in_validity(sig, now) || input.num_labels > owner.num_labels() {
            continue;
        }
        if !input.algorithm.is_supported() {
            continue;
        }
        for key in keys {
            if !key.zone_key() || key.revoke() || key.algorithm() != input.algorithm {
                continue;
            }
            if key.calculate_key_tag().ok() != Some(input.key_tag) {
                continue;
            }
            if key.verify_rrsig(owner, DNSClass::IN, sig, rrset.iter()).is_ok() {
                return Some(input.num_labels);
            }
        }
    }
    None
}

/// The verified NSEC and NSEC3 records of a section.
struct Proof {
    /// (owner, NSEC) of each verified NSEC.
    nsec: Vec<(Name, NSEC)>,
    /// (owner, NSEC3) of each verified NSEC3.
    nsec3: Vec<(Name, NSEC3)>,
}

fn verified_proof(section: &[Record], zone: &Name, keys: &[DNSKEY]) -> Proof {
    let mut proof = Proof { nsec: Vec::new(), nsec3: Vec::new() };
    let mut seen: Vec<(Name, RecordType)> = Vec::new();
    for r in section {
        let rtype = r.record_type();
        if !matches!(rtype, RecordType::NSEC | RecordType::NSEC3) || seen.contains(&(r.name.clone(), rtype)) {
            continue;
        }
        seen.push((r.name.clone(), rtype));
        if !zone.zone_of(&r.name) {
            continue;
        }
        let rrset = rrset_of(section, &r.name, rtype);
        let sigs = signatures(section, &r.name, rtype);
        // NSEC and NSEC3 records are never wildcard expansions.
        match verify_rrset(&r.name, &rrset, &sigs, zone, keys) {
            Some(labels) if labels == r.name.num_labels() => {}
            _ => continue,
        }
        for rec in &rrset {
            match &rec.data {
                RData::DNSSEC(DNSSECRData::NSEC(n)) => proof.nsec.push((rec.name.clone(), n.clone())),
                RData::DNSSEC(DNSSECRData::NSEC3(n)) => proof.nsec3.push((rec.name.clone(), n.clone())),
                _ => {}
            }
        }
    }
    proof
}

/// A lookup's hold on a zone's key-fetch gate: given up, and the gate
/// forgotten when nobody else uses it, when dropped.
struct Gate<'a> {
    lookups: &'a Lookups,
    zone: &'a Name,
    gate: Option<Arc<tokio::sync::Mutex<()>>>,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        drop(self.held.take());
        if let Some(gate) = self.gate.take() {
            self.lookups.release_gate(self.zone, &gate);
        }
    }
}

/// The weaker of two statuses: bogus < indeterminate < insecure < secure.
pub(super) fn weakest(a: DnssecStatus, b: DnssecStatus) -> DnssecStatus {
    if rank(a) <= rank(b) { a } else { b }
}

fn best(a: DnssecStatus, b: DnssecStatus) -> DnssecStatus {
    if rank(a) >= rank(b) { a } else { b }
}

fn rank(s: DnssecStatus) -> u8 {
    match s {
        DnssecStatus::Bogus => 0,
        DnssecStatus::Indeterminate => 1,
        DnssecStatus::Insecure => 2,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::rdata::{A, CNAME};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn weakest_orders_statuses() {
        use DnssecStatus::*;
        for (a, b, w) in [
            (Secure, Secure, Secure),
            (Secure, Insecure, Insecure),
            (Insecure, Indeterminate, Indeterminate),
            (Indeterminate, Bogus, Bogus),
            (Bogus, Secure, Bogus),
        ] {
            assert_eq!(weakest(a, b), w);
            assert_eq!(weakest(b, a), w);
            assert_eq!(best(a, b), if w == a { b } else { a });
        }
    }

    #[test]
    fn the_walk_follows_the_cname_chain_and_stops_at_loops() {
        let (q, t) = (name("mx.example."), name("real.example."));
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.answers = vec![
            Record::from_rdata(q.clone(), 300, RData::CNAME(CNAME(t.clone()))),
            Record::from_rdata(t.clone(), 60, RData::A(A::new(192, 0, 2, 1))),
            Record::from_rdata(q.clone(), 60, RData::A(A::new(192, 0, 2, 9))),
        ];
        let w = walk(&m, &q, RecordType::A);
        // The A record at the alias itself is not the answer: a CNAME owner has no other data.
        assert_eq!(w.records.len(), 1, "{:?}", w.records);
        assert_eq!(w.hops.len(), 0);
        let w = walk(&m, &q, RecordType::AAAA);
        assert_eq!(w.hops.len(), 1);
        assert_eq!(w.hops[0].2, t);
        m.answers = vec![
            Record::from_rdata(q.clone(), 300, RData::CNAME(CNAME(t.clone()))),
            Record::from_rdata(t.clone(), 300, RData::CNAME(CNAME(q.clone()))),
        ];
        let w = walk(&m, &q, RecordType::A);
        assert_eq!(w.hops.len(), 1, "a loop ends the walk");
    }
}
