//! The MTA-STS policy cache (RFC 8461 §3.3, §5.1, §10): one named test per
//! rule, through the public API.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

use proptest::prelude::*;

use smtp_tls_policy::cache::{
    ApplyReason, CacheConfig, CacheStore, Decision, FetchFailure, MemoryStore, NoPolicyReason, PolicyCache,
    SnapshotError, TxtLookup,
};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::report::ResultType;
use smtp_tls_policy::sts::{Mode, Policy, PolicyId};

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

/// A time in seconds since the epoch.
fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn domain(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

fn id(s: &str) -> PolicyId {
    PolicyId::parse(s).unwrap()
}

fn policy(mode: &str, max_age: u64) -> Policy {
    let mx = if mode == "none" { "" } else { "mx: mx.example.com\n" };
    Policy::parse(&format!("version: STSv1\nmode: {mode}\n{mx}max_age: {max_age}\n")).unwrap()
}

#[derive(Debug, thiserror::Error)]
#[error("connection refused by mta-sts.example.com:443")]
struct Refused;

fn refused() -> FetchFailure {
    FetchFailure::new(ResultType::StsPolicyFetchError, Refused)
}

/// A cache holding `example.com` with id `a`, enforce, max_age 86400,
/// fetched at t(0).
fn cached() -> (PolicyCache, DomainName) {
    let cache = PolicyCache::default();
    let d = domain("example.com");
    assert_eq!(cache.decide(&d, TxtLookup::Record(id("a")), t(0)), Decision::Fetch { id: id("a") });
    let applied = cache.record_fetch(&d, id("a"), Ok(policy("enforce", 86_400)), t(0));
    assert!(matches!(applied, Decision::Apply { reason: ApplyReason::Fetched, .. }));
    (cache, d)
}

fn reason(d: &Decision) -> Option<&ApplyReason> {
    match d {
        Decision::Apply { reason, .. } => Some(reason),
        _ => None,
    }
}

fn mode(d: &Decision) -> Option<Mode> {
    d.policy().map(|p| p.mode())
}

/// RFC 8461 §3.3: "If a valid TXT record is found … and the id is the same
/// as the cached policy's, the sender … uses the cached policy."
#[test]
fn rfc8461_3_3_same_id_and_live_uses_the_cache_without_a_fetch() {
    let (cache, d) = cached();
    let got = cache.decide(&d, TxtLookup::Record(id("a")), t(86_399));
    assert_eq!(reason(&got), Some(&ApplyReason::SameId));
    assert_eq!(mode(&got), Some(Mode::Enforce));
}

/// The async path's shortcut: hits answered and counted, a needed fetch
/// neither answered nor counted (the lookup that follows counts it).
#[test]
fn decide_unless_fetch_answers_hits_only() {
    let (cache, d) = cached();
    let before = cache.stats();
    let hit = cache.decide_unless_fetch(&d, TxtLookup::Record(id("a")), t(10)).unwrap();
    assert_eq!(reason(&hit), Some(&ApplyReason::SameId));
    assert_eq!(cache.decide_unless_fetch(&d, TxtLookup::Record(id("b")), t(10)), None);
    let after = cache.stats();
    assert_eq!((after.hits - before.hits, after.misses - before.misses), (1, 0));
    let fetched = cache.lookup(&d, TxtLookup::Record(id("b")), t(10), |_| Ok(policy("testing", 600)));
    assert_eq!(mode(&fetched), Some(Mode::Testing));
    assert_eq!(cache.stats().misses - before.misses, 1);
}

/// RFC 8461 §3.3: a changed id means a new policy: fetch it.
#[test]
fn rfc8461_3_3_changed_id_fetches() {
    let (cache, d) = cached();
    assert_eq!(cache.decide(&d, TxtLookup::Record(id("b")), t(10)), Decision::Fetch { id: id("b") });
    let got = cache.record_fetch(&d, id("b"), Ok(policy("testing", 600)), t(10));
    assert_eq!(mode(&got), Some(Mode::Testing));
    assert_eq!(reason(&cache.decide(&d, TxtLookup::Record(id("b")), t(20))), Some(&ApplyReason::SameId));
}

/// RFC 8461 §3.3: an expired entry is fetched again; expiry is fetch time
/// plus max_age.
#[test]
fn rfc8461_3_3_expired_entry_fetches() {
    let (cache, d) = cached();
    assert_eq!(cache.decide(&d, TxtLookup::Record(id("a")), t(86_400)), Decision::Fetch { id: id("a") });
}

/// RFC 8461 §3.3: nothing cached: fetch.
#[test]
fn rfc8461_3_3_absent_entry_fetches() {
    let cache = PolicyCache::default();
    let got = cache.decide(&domain("new.example"), TxtLookup::Record(id("x")), t(0));
    assert_eq!(got, Decision::Fetch { id: id("x") });
}

/// RFC 8461 §5.1, §10: an attacker who removes the TXT record and blocks
/// HTTPS does not remove a live cached policy.
#[test]
fn rfc8461_10_txt_removed_and_https_blocked_cached_policy_applies() {
    let (cache, d) = cached();
    let got = cache.decide(&d, TxtLookup::NoRecord, t(1000));
    assert_eq!((reason(&got), mode(&got)), (Some(&ApplyReason::TxtMissing), Some(Mode::Enforce)));
    let got = cache.decide(&d, TxtLookup::Failed, t(1000));
    assert_eq!(reason(&got), Some(&ApplyReason::TxtLookupFailed));
    let got = cache.decide(&d, TxtLookup::Invalid, t(1000));
    assert_eq!(reason(&got), Some(&ApplyReason::TxtInvalid));
}

/// RFC 8461 §5.1: id changed and the fetch fails: the old live policy
/// still applies.
#[test]
fn rfc8461_5_1_id_changed_and_fetch_fails_old_live_policy_applies() {
    let (cache, d) = cached();
    assert_eq!(cache.decide(&d, TxtLookup::Record(id("b")), t(100)), Decision::Fetch { id: id("b") });
    let got = cache.record_fetch(&d, id("b"), Err(refused()), t(100));
    assert_eq!(reason(&got), Some(&ApplyReason::FetchFailed(refused())));
    assert_eq!(got.policy().map(|p| p.max_age().as_secs()), Some(86_400));
    let info = cache.entry(&d).unwrap();
    assert_eq!(info.policy.as_ref().map(|(i, _)| *i), Some(id("a")));
}

/// RFC 8461 §3.3: expired and the fetch fails: no policy.
#[test]
fn rfc8461_3_3_expired_and_fetch_fails_gives_no_policy() {
    let (cache, d) = cached();
    assert_eq!(cache.decide(&d, TxtLookup::Record(id("a")), t(90_000)), Decision::Fetch { id: id("a") });
    let got = cache.record_fetch(&d, id("a"), Err(refused()), t(90_000));
    assert_eq!(got, Decision::NoPolicy(NoPolicyReason::FetchFailed(refused())));
    assert_eq!(cache.decide(&d, TxtLookup::NoRecord, t(90_001)), Decision::NoPolicy(NoPolicyReason::NoTxtRecord));
}

/// DESIGN.md: after a failed fetch without a live entry, that (domain, id)
/// is not fetched again for the back-off; another id is.
#[test]
fn failed_fetch_backoff_is_honoured_and_expires() {
    let cache = PolicyCache::new(CacheConfig::default().fetch_backoff(Duration::from_secs(300)));
    let d = domain("example.org");
    assert_eq!(cache.decide(&d, TxtLookup::Record(id("a")), t(0)), Decision::Fetch { id: id("a") });
    let _ = cache.record_fetch(&d, id("a"), Err(refused()), t(0));
    let got = cache.decide(&d, TxtLookup::Record(id("a")), t(299));
    assert_eq!(got, Decision::NoPolicy(NoPolicyReason::Backoff { failure: refused(), until: 1_800_000_300 }));
    assert_eq!(cache.decide(&d, TxtLookup::Record(id("b")), t(299)), Decision::Fetch { id: id("b") });
    assert_eq!(cache.decide(&d, TxtLookup::Record(id("a")), t(300)), Decision::Fetch { id: id("a") });
    // With a live entry, the back-off keeps the cached policy without fetching.
    let (cache, d) = cached();
    let _ = cache.record_fetch(&d, id("b"), Err(refused()), t(10));
    let got = cache.decide(&d, TxtLookup::Record(id("b")), t(20));
    assert_eq!(reason(&got), Some(&ApplyReason::FetchFailed(refused())));
    assert_eq!(cache.decide(&d, TxtLookup::Record(id("b")), t(310)), Decision::Fetch { id: id("b") });
}

/// RFC 8461 §3.3: TXT lookup problems without a live entry: no policy.
#[test]
fn txt_problems_without_a_live_entry_give_no_policy() {
    let cache = PolicyCache::default();
    let d = domain("example.net");
    for (txt, why) in [
        (TxtLookup::NoRecord, NoPolicyReason::NoTxtRecord),
        (TxtLookup::Invalid, NoPolicyReason::TxtInvalid),
        (TxtLookup::Failed, NoPolicyReason::TxtLookupFailed),
    ] {
        assert_eq!(cache.decide(&d, txt, t(0)), Decision::NoPolicy(why));
    }
}

/// RFC 8461 §8.3: a fetched `mode: none` replaces the entry; it is how a
/// domain withdraws its policy.
#[test]
fn rfc8461_8_3_mode_none_withdraws() {
    let (cache, d) = cached();
    assert_eq!(cache.decide(&d, TxtLookup::Record(id("gone")), t(50)), Decision::Fetch { id: id("gone") });
    let got = cache.record_fetch(&d, id("gone"), Ok(policy("none", 86_400)), t(50));
    assert_eq!(mode(&got), Some(Mode::None));
    assert_eq!(mode(&cache.decide(&d, TxtLookup::NoRecord, t(60))), Some(Mode::None));
    assert_eq!(cache.entry(&d).unwrap().policy.unwrap().0, id("gone"));
}

/// RFC 8461 §3.2: expiry is fetch time + max_age after the clamp to 31557600.
#[test]
fn rfc8461_3_2_expiry_uses_the_clamped_max_age() {
    let cache = PolicyCache::default();
    let d = domain("example.com");
    let _ = cache.record_fetch(&d, id("a"), Ok(policy("enforce", 9_999_999_999)), t(0));
    assert_eq!(cache.entry(&d).unwrap().expires_at, Some(at(1_800_000_000 + 31_557_600)));
    assert!(cache.decide(&d, TxtLookup::NoRecord, t(31_557_599)).policy().is_some());
    assert_eq!(cache.decide(&d, TxtLookup::NoRecord, t(31_557_600)), Decision::NoPolicy(NoPolicyReason::NoTxtRecord));
}

/// DESIGN.md: `max_age: 0` applies to the delivery that fetched it only.
#[test]
fn max_age_zero_applies_to_this_delivery_only() {
    let cache = PolicyCache::default();
    let d = domain("example.com");
    let got = cache.record_fetch(&d, id("a"), Ok(policy("enforce", 0)), t(0));
    assert_eq!(reason(&got), Some(&ApplyReason::Fetched));
    assert_eq!(cache.decide(&d, TxtLookup::Record(id("a")), t(0)), Decision::Fetch { id: id("a") });
    assert_eq!(cache.decide(&d, TxtLookup::NoRecord, t(0)), Decision::NoPolicy(NoPolicyReason::NoTxtRecord));
}

/// RFC 8461 §3.3: an expired policy never applies, whatever the TXT says.
#[test]
fn an_expired_policy_never_applies() {
    let (cache, d) = cached();
    for txt in [TxtLookup::NoRecord, TxtLookup::Invalid, TxtLookup::Failed, TxtLookup::Record(id("a"))] {
        assert!(cache.decide(&d, txt, t(86_400)).policy().is_none(), "{txt:?}");
    }
}

/// RFC 8461 §10.2: proactive refresh — daily, and before expiry.
#[test]
fn rfc8461_10_2_proactive_refresh() {
    let cache = PolicyCache::new(CacheConfig::default().refresh_spread(Duration::ZERO));
    let week = domain("week.example");
    let hour = domain("hour.example");
    let _ = cache.record_fetch(&week, id("w"), Ok(policy("enforce", 604_800)), t(0));
    let _ = cache.record_fetch(&hour, id("h"), Ok(policy("enforce", 3_600)), t(0));
    assert!(cache.due_for_refresh(t(1_000)).is_empty());
    assert_eq!(cache.due_for_refresh(t(1_801)), std::slice::from_ref(&hour));
    let mut due = cache.due_for_refresh(t(86_400));
    due.sort();
    assert_eq!(due, std::slice::from_ref(&week), "the hour policy has expired by then");
    // A refresh fetches even with the same id, and extends the lifetime.
    assert_eq!(cache.refresh(&week, TxtLookup::Record(id("w")), t(86_400)), Decision::Fetch { id: id("w") });
    let _ = cache.record_fetch(&week, id("w"), Ok(policy("enforce", 604_800)), t(86_400));
    assert_eq!(cache.entry(&week).unwrap().expires_at, Some(at(1_800_000_000 + 86_400 + 604_800)));
    assert!(cache.due_for_refresh(t(86_401)).is_empty());
    // A failed refresh is not listed or retried within the back-off.
    let _ = cache.record_fetch(&week, id("w"), Err(refused()), t(172_800));
    assert!(cache.due_for_refresh(t(172_801)).is_empty());
    let got = cache.refresh(&week, TxtLookup::Record(id("w")), t(172_801));
    assert_eq!(reason(&got), Some(&ApplyReason::SameId));
    assert_eq!(cache.due_for_refresh(t(173_100)), std::slice::from_ref(&week));
    // With the TXT record gone and the id backing off, a refresh keeps the live policy.
    assert_eq!(reason(&cache.refresh(&week, TxtLookup::NoRecord, t(172_900))), Some(&ApplyReason::TxtMissing));
    // A shorter interval and a larger fraction, configured.
    let eager = PolicyCache::new(
        CacheConfig::default()
            .refresh_interval(Duration::from_secs(60))
            .refresh_fraction(0.9)
            .refresh_spread(Duration::ZERO),
    );
    let _ = eager.record_fetch(&week, id("w"), Ok(policy("enforce", 604_800)), t(0));
    assert_eq!(eager.due_for_refresh(t(60)), [week]);
}

/// RFC 8461 §10.2: refreshes of domains fetched together come spread over
/// the configured window (an hour by default), each domain at its own
/// moment, all of them by its end — and never later than half the time the
/// fraction rule leaves.
#[test]
fn rfc8461_10_2_refreshes_are_spread_out() {
    let cache = PolicyCache::default();
    let domains: Vec<DomainName> = (0..400).map(|i| domain(&format!("d{i}.example"))).collect();
    for d in &domains {
        let _ = cache.record_fetch(d, id("a"), Ok(policy("enforce", 604_800)), t(0));
    }
    let due = |at: u64| cache.due_for_refresh(t(at)).len();
    assert_eq!(due(86_399), 0, "none before the interval");
    let quarter = due(86_400 + 900);
    let half = due(86_400 + 1_800);
    assert!(quarter > 40 && quarter < 160, "about a quarter after 15 minutes: {quarter}");
    assert!(half > quarter && half < 300, "{half}");
    assert_eq!(due(86_400 + 3_600), 400, "all by the end of the window");
    let same: Vec<_> = cache.due_for_refresh(t(86_400 + 900));
    let again: Vec<_> = cache.due_for_refresh(t(86_400 + 900));
    assert_eq!(same, again, "a domain's moment does not change between calls");
    // A policy about to expire is not held back beyond half its margin.
    let short = PolicyCache::default();
    let d = domain("short.example");
    let _ = short.record_fetch(&d, id("a"), Ok(policy("enforce", 600)), t(0));
    assert_eq!(short.due_for_refresh(t(451)), [d], "300 s margin, at most 150 s of delay");
}

/// RFC 8461 §8.3, §10.2: blocking or removing the TXT record does not
/// starve the proactive refresh — a due policy is fetched again with its
/// cached id whatever the TXT lookup says, so an attacker cannot wait for
/// `max_age` to run out (withdrawal is by `mode: none`).
#[test]
fn a_failing_txt_lookup_does_not_starve_the_refresh() {
    for txt in [TxtLookup::Failed, TxtLookup::NoRecord, TxtLookup::Invalid] {
        let (cache, d) = cached();
        assert_eq!(cache.due_for_refresh(t(86_000)), std::slice::from_ref(&d));
        assert_eq!(cache.refresh(&d, txt, t(86_000)), Decision::Fetch { id: id("a") }, "{txt:?}");
        // The fetch extends the lifetime with the cached id.
        let _ = cache.record_fetch(&d, id("a"), Ok(policy("enforce", 86_400)), t(86_000));
        assert_eq!(cache.entry(&d).unwrap().expires_at, Some(at(1_800_000_000 + 86_000 + 86_400)));
        // A fetched `mode: none` withdraws it.
        let _ = cache.record_fetch(&d, id("a"), Ok(policy("none", 86_400)), t(86_001));
        assert_eq!(mode(&cache.decide(&d, txt, t(86_002))), Some(Mode::None));
        // A failed refresh fetch backs off; the policy stays.
        let (cache, d) = cached();
        let _ = cache.record_fetch(&d, id("a"), Err(refused()), t(86_000));
        let got = cache.refresh(&d, txt, t(86_100));
        assert!(got.policy().is_some() && !matches!(got, Decision::Fetch { .. }), "{txt:?}: {got:?}");
    }
}

/// RFC 8461 §3.3: the fetch back-off is per (domain, id): the failure of a
/// second id does not erase the first id's back-off.
#[test]
fn backoffs_are_kept_per_domain_and_id() {
    let cache = PolicyCache::default();
    let d = domain("example.com");
    for (n, i) in ["a", "b"].iter().enumerate() {
        assert_eq!(cache.decide(&d, TxtLookup::Record(id(i)), t(n as u64)), Decision::Fetch { id: id(i) });
        let _ = cache.record_fetch(&d, id(i), Err(refused()), t(n as u64));
    }
    for i in ["a", "b"] {
        let got = cache.decide(&d, TxtLookup::Record(id(i)), t(10));
        assert!(matches!(got, Decision::NoPolicy(NoPolicyReason::Backoff { .. })), "{i}: {got:?}");
    }
    // After the back-off, each id may be fetched again.
    assert_eq!(cache.decide(&d, TxtLookup::Record(id("a")), t(301)), Decision::Fetch { id: id("a") });
    // A success for one id leaves the other's back-off alone.
    let _ = cache.record_fetch(&d, id("c"), Ok(policy("enforce", 86_400)), t(5));
    let got = cache.decide(&d, TxtLookup::Record(id("b")), t(10));
    assert_eq!(reason(&got), Some(&ApplyReason::FetchFailed(refused())), "{got:?}");
}

/// Domains whose fetches fail (wildcard names whose policy host refuses
/// connections, three times the capacity of them) never evict a live
/// policy; nor do expired policies, which go first.
#[test]
fn failed_fetches_and_expired_policies_never_evict_a_live_policy() {
    let cache = PolicyCache::new(CacheConfig::default().capacity(10).shards(1));
    let victim = domain("enforce.example");
    let _ = cache.record_fetch(&victim, id("a"), Ok(policy("enforce", 86_400)), t(0));
    for n in 0..30 {
        let d = domain(&format!("x{n}.attacker.example"));
        let got = cache.lookup(&d, TxtLookup::Record(id("1")), t(1), |_| Err(refused()));
        assert!(matches!(got, Decision::NoPolicy(NoPolicyReason::FetchFailed(_))));
    }
    assert!(cache.decide(&victim, TxtLookup::Failed, t(2)).policy().is_some(), "the live policy was evicted");
    // Their back-offs are bounded too, on their own.
    assert!(cache.entries().len() <= 1 + 10, "{}", cache.entries().len());
    // Short-lived policies fill the rest; once expired they go before the
    // (least recently used) live policy.
    for n in 0..9 {
        let d = domain(&format!("s{n}.attacker.example"));
        let _ = cache.record_fetch(&d, id("1"), Ok(policy("enforce", 1)), t(3));
    }
    let _ = cache.record_fetch(&domain("new.example"), id("1"), Ok(policy("enforce", 86_400)), t(10));
    assert!(cache.decide(&victim, TxtLookup::Failed, t(11)).policy().is_some(), "evicted before expired entries");
}

/// Memory is bounded by bytes, not only by entries: hostile 64 KiB policies
/// stay within `max_bytes`, and small live policies are not all pushed out
/// by a few big ones.
#[test]
fn policies_are_held_within_a_byte_budget() {
    let mut big = String::from("version: STSv1\nmode: enforce\nmax_age: 86400\n");
    let mut n = 0;
    while big.len() + 40 < smtp_tls_policy::sts::MAX_POLICY_BYTES {
        big += &format!("x{n}: {}\n", "v".repeat(30));
        n += 1;
    }
    big += "mx: mx.example.com\n";
    let big = Policy::parse(&big).unwrap();
    let budget = 1 << 20;
    let cache = PolicyCache::new(CacheConfig::default().max_bytes(budget).shards(1));
    for i in 0..200 {
        let _ = cache.record_fetch(&domain(&format!("big{i}.example")), id("a"), Ok(big.clone()), t(0));
    }
    let held = cache.stats().entries;
    // Each big policy counts at least its 64 KiB of text: about 16 fit.
    assert!((1..=16).contains(&held), "{held} big policies held in a {budget}-byte budget");
    assert!(cache.entry(&domain("big199.example")).is_some(), "the newest stays");
    // Small policies: thousands fit in the same budget.
    let small = PolicyCache::new(CacheConfig::default().max_bytes(budget).shards(1));
    for i in 0..2_000 {
        let _ = small.record_fetch(&domain(&format!("d{i}.example")), id("a"), Ok(policy("enforce", 86_400)), t(0));
    }
    assert_eq!(small.stats().entries, 2_000);
}

/// DESIGN.md: bounded, least recently used first.
#[test]
fn lru_order_and_capacity() {
    let cache = PolicyCache::new(CacheConfig::default().capacity(3).shards(1));
    let names: Vec<DomainName> = ["a", "b", "c", "d"].iter().map(|n| domain(&format!("{n}.example"))).collect();
    for n in &names[..3] {
        let _ = cache.record_fetch(n, id("x"), Ok(policy("enforce", 86_400)), t(0));
    }
    // Touch a: b becomes the least recently used.
    assert!(cache.decide(&names[0], TxtLookup::Record(id("x")), t(1)).policy().is_some());
    let _ = cache.record_fetch(&names[3], id("x"), Ok(policy("enforce", 86_400)), t(2));
    let held: Vec<String> = cache.entries().iter().map(|e| e.domain.to_string()).collect();
    assert_eq!(held, ["d.example", "a.example", "c.example"]);
    assert_eq!(cache.stats().evictions, 1);
    assert_eq!(cache.stats().entries, 3);
}

/// DESIGN.md: the capacity bounds the whole cache, however the domains
/// fall into shards: nothing is evicted below it, nothing kept above it.
#[test]
fn capacity_is_exact_across_shards() {
    let cache = PolicyCache::new(CacheConfig::default().capacity(1_000));
    let fill = |range: std::ops::Range<usize>| {
        for i in range {
            let _ = cache.record_fetch(&domain(&format!("d{i}.example")), id("x"), Ok(policy("enforce", 86_400)), t(0));
        }
    };
    fill(0..1_000);
    assert_eq!((cache.stats().entries, cache.stats().evictions), (1_000, 0));
    fill(1_000..1_100);
    assert_eq!((cache.stats().entries, cache.stats().evictions), (1_000, 100));
    // The newest are all held.
    assert!((1_000..1_100).all(|i| cache.entry(&domain(&format!("d{i}.example"))).is_some()));
    // A tiny capacity over many shards still keeps the newest domain.
    let one = PolicyCache::new(CacheConfig::default().capacity(1));
    for n in ["a", "b", "c"] {
        let _ = one.record_fetch(&domain(&format!("{n}.example")), id("x"), Ok(policy("enforce", 86_400)), t(0));
        assert!(one.entry(&domain(&format!("{n}.example"))).is_some(), "{n}");
        assert_eq!(one.stats().entries, 1);
    }
}

/// DESIGN.md: eviction never drops an entry being fetched, so a failed
/// refetch under memory pressure still finds its live policy.
#[test]
fn eviction_never_drops_an_entry_being_fetched() {
    let cache = PolicyCache::new(CacheConfig::default().capacity(1).shards(1));
    let d = domain("pinned.example");
    let _ = cache.record_fetch(&d, id("a"), Ok(policy("enforce", 86_400)), t(0));
    let got = cache.lookup(&d, TxtLookup::Record(id("b")), t(10), |_| {
        // While the fetch runs, other domains fill the cache.
        for n in 0..5 {
            let other = domain(&format!("other{n}.example"));
            let _ = cache.record_fetch(&other, id("x"), Ok(policy("enforce", 86_400)), t(10));
        }
        Err(refused())
    });
    assert_eq!(reason(&got), Some(&ApplyReason::FetchFailed(refused())));
    assert_eq!(got.policy().map(|p| p.mode()), Some(Mode::Enforce));
    // Unpinned after the fetch, the cache is back within its capacity.
    assert_eq!(cache.stats().entries, 1);
}

/// DESIGN.md: N concurrent lookups of one domain make one fetch.
#[test]
fn eight_threads_times_ten_thousand_lookups_make_one_fetch() {
    let cache = Arc::new(PolicyCache::default());
    let fetches = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (cache, fetches, start) = (Arc::clone(&cache), Arc::clone(&fetches), Arc::clone(&start));
            std::thread::spawn(move || {
                let d = domain("busy.example");
                start.wait();
                let mut applied = 0;
                for _ in 0..10_000 {
                    let got = cache.lookup(&d, TxtLookup::Record(id("a")), t(0), |_| {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        Ok(policy("enforce", 86_400))
                    });
                    applied += usize::from(got.policy().is_some());
                }
                applied
            })
        })
        .collect();
    let applied: usize = threads.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert_eq!(applied, 80_000);
    assert_eq!(cache.stats().fetches, 1);
}

/// A panicking fetch does not hang the lookups waiting for it, and the
/// next lookup fetches again.
#[test]
fn a_panicking_fetch_releases_its_waiters() {
    let cache = PolicyCache::default();
    let d = domain("panic.example");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = cache.lookup(&d, TxtLookup::Record(id("a")), t(0), |_| panic!("fetch bug"));
    }));
    assert!(result.is_err());
    assert!(!cache.entry(&d).is_some_and(|e| e.fetching));
    let got = cache.lookup(&d, TxtLookup::Record(id("a")), t(1), |_| Ok(policy("testing", 60)));
    assert_eq!(mode(&got), Some(Mode::Testing));
}

/// Operations: inspect, list, purge one, purge all.
#[test]
fn inspect_list_and_purge() {
    let (cache, d) = cached();
    let other = domain("other.example");
    let _ = cache.record_fetch(&other, id("o"), Ok(policy("testing", 60)), t(0));
    let info = cache.entry(&d).unwrap();
    assert_eq!(
        (info.fetched_at, info.expires_at, info.fetching),
        (Some(at(1_800_000_000)), Some(at(1_800_086_400)), false)
    );
    assert_eq!(cache.entries().len(), 2);
    assert!(cache.purge(&d));
    assert!(!cache.purge(&d));
    assert_eq!(cache.decide(&d, TxtLookup::Record(id("a")), t(1)), Decision::Fetch { id: id("a") });
    cache.purge_all();
    assert!(cache.entries().is_empty());
    assert!(cache.entry(&other).is_none());
}

/// A purge during a fetch forgets the old policy but keeps the pinned
/// entry, so the fetch still records its result.
#[test]
fn a_purge_during_a_fetch_keeps_the_result() {
    let (cache, d) = cached();
    let got = cache.lookup(&d, TxtLookup::Record(id("b")), t(10), |_| {
        assert!(cache.purge(&d), "the old policy was held");
        assert!(cache.entry(&d).is_none(), "nothing left to show but the pin");
        Ok(policy("testing", 600))
    });
    assert_eq!(mode(&got), Some(Mode::Testing));
    assert_eq!(cache.entry(&d).unwrap().policy.unwrap().0, id("b"));
    cache.purge_all();
    assert_eq!(cache.stats().entries, 0);
}

/// DESIGN.md: snapshot to bytes and back; expired entries are not restored.
#[test]
fn snapshot_round_trip() {
    let (cache, d) = cached();
    let short = domain("short.example");
    let _ = cache.record_fetch(&short, id("s"), Ok(policy("testing", 60)), t(0));
    let bytes = cache.snapshot(t(10));
    let restored = PolicyCache::default();
    assert_eq!(restored.restore(&bytes, t(100)).unwrap().loaded, 1, "short.example expired at t(60)");
    assert_eq!(restored.entry(&d).unwrap().policy, cache.entry(&d).unwrap().policy);
    let got = restored.decide(&d, TxtLookup::NoRecord, t(100));
    assert_eq!(reason(&got), Some(&ApplyReason::TxtMissing));
    // A restore never replaces a newer policy.
    let newer = PolicyCache::default();
    let _ = newer.record_fetch(&d, id("n"), Ok(policy("testing", 86_400)), t(50));
    assert_eq!(newer.restore(&bytes, t(100)).unwrap().loaded, 0);
    assert_eq!(newer.entry(&d).unwrap().policy.unwrap().0, id("n"));
}

/// DESIGN.md: a truncated or corrupt snapshot is reported and skipped,
/// never half-loaded.
#[test]
fn corrupt_and_truncated_snapshots_load_nothing() {
    let (cache, _) = cached();
    let _ = cache.record_fetch(&domain("second.example"), id("b"), Ok(policy("enforce", 86_400)), t(0));
    let bytes = cache.snapshot(t(1));
    for cut in [0, 5, 30, bytes.len() / 2, bytes.len() - 1] {
        let fresh = PolicyCache::default();
        let err = fresh.restore(&bytes[..cut], t(2)).unwrap_err();
        assert!(matches!(err, SnapshotError::Truncated | SnapshotError::Corrupt { .. }), "cut {cut}: {err}");
        assert!(fresh.entries().is_empty(), "cut at {cut} loaded something");
    }
    let mut flipped = bytes.clone();
    let at = flipped.iter().position(|&b| b == b'8').unwrap();
    flipped[at] = b'9';
    let fresh = PolicyCache::default();
    let err = fresh.restore(&flipped, t(2)).unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert!(fresh.entries().is_empty());
    assert!(matches!(fresh.restore(b"garbage\n", t(2)), Err(SnapshotError::UnknownFormat)));
    let mut trailing = bytes.clone();
    trailing.extend_from_slice(b"x");
    assert!(matches!(fresh.restore(&trailing, t(2)), Err(SnapshotError::Corrupt { .. })));
}

/// A hostile policy just under 64 KiB whose `Display` form is longer (LF
/// line ends, no space after the colon) still round-trips through a
/// snapshot, and never keeps the other domains' policies from loading.
#[test]
fn a_policy_near_the_size_limit_round_trips_through_a_snapshot() {
    let mut body = String::from("version:STSv1\nmode:enforce\nmax_age:86400\n");
    let mut n = 0;
    while body.len() + 20 < smtp_tls_policy::sts::MAX_POLICY_BYTES {
        body += &format!("mx:a{n}.example\n");
        n += 1;
    }
    let hostile = Policy::parse(&body).unwrap();
    assert!(hostile.to_string().len() > smtp_tls_policy::sts::MAX_POLICY_BYTES, "the Display form grows");
    let (cache, d) = cached();
    let big = domain("big.example");
    let _ = cache.record_fetch(&big, id("h"), Ok(hostile.clone()), t(0));
    let restored = PolicyCache::default();
    let report = restored.restore(&cache.snapshot(t(1)), t(2)).unwrap();
    assert_eq!((report.loaded, report.skipped.len()), (2, 0));
    assert_eq!(*restored.entry(&big).unwrap().policy.unwrap().1, hostile);
    assert!(restored.entry(&d).is_some());
}

/// An entry whose content this version refuses is left out alone: the
/// other entries load (the framing and checksum are sound).
#[test]
fn one_entry_that_does_not_parse_leaves_the_others() {
    let good = policy("enforce", 86_400).to_string();
    let bad = "version: STSv9\r\n";
    let mut text = String::from("smtp-tls-policy-cache 1\n");
    let at = 1_800_000_000;
    text += &format!("bad.example 1 {at} {}\n{bad}\n", bad.len());
    text += &format!("good.example 1 {at} {}\n{good}\n", good.len());
    text += &format!("not_a..domain 1 {at} {}\n{good}\n", good.len());
    let sum: String = ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    text += &format!("end 3 {sum}\n");
    let fresh = PolicyCache::default();
    let report = fresh.restore(text.as_bytes(), t(1)).unwrap();
    assert_eq!(report.loaded, 1);
    let skipped: Vec<&str> = report.skipped.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(skipped, ["bad.example", "not_a..domain"]);
    assert!(fresh.entry(&domain("good.example")).is_some());
}

/// Saves of one path at the same moment (a timer and a signal) never
/// leave a corrupt file behind a successful save.
#[cfg(feature = "fs")]
#[test]
fn concurrent_saves_of_one_path_never_corrupt_it() {
    use smtp_tls_policy::cache::{load_snapshot, save_snapshot};
    let dir = std::env::temp_dir().join(format!("stp-cache-race-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("race.snapshot");
    let caches: Vec<PolicyCache> = (0..4)
        .map(|k| {
            let cache = PolicyCache::default();
            for i in 0..(50 * (k + 1)) {
                let _ =
                    cache.record_fetch(&domain(&format!("d{i}.example")), id("a"), Ok(policy("enforce", 86_400)), t(0));
            }
            cache
        })
        .collect();
    for round in 0..100 {
        std::thread::scope(|s| {
            for cache in &caches {
                let path = &path;
                s.spawn(move || save_snapshot(cache, path, t(1)).unwrap());
            }
        });
        let report = load_snapshot(&PolicyCache::default(), &path, t(2))
            .unwrap_or_else(|e| panic!("round {round}: every save said Ok, yet the file is refused: {e}"));
        assert!([50, 100, 150, 200].contains(&report.loaded), "round {round}: {}", report.loaded);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// DESIGN.md: snapshot files are written atomically; an interrupted write
/// leaves the previous snapshot in force.
#[cfg(feature = "fs")]
#[test]
fn snapshot_files_are_atomic() {
    use smtp_tls_policy::cache::{load_snapshot, save_snapshot};
    let dir = std::env::temp_dir().join(format!("stp-cache-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cache.snapshot");
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        load_snapshot(&PolicyCache::default(), &path, t(0)).unwrap().loaded,
        0,
        "a missing file is a first start"
    );
    let (cache, d) = cached();
    save_snapshot(&cache, &path, t(1)).unwrap();
    // A crash in the middle of the next save leaves a partial temporary file.
    let partial = cache.snapshot(t(2));
    std::fs::write(dir.join("cache.snapshot.tmp.999999"), &partial[..partial.len() / 2]).unwrap();
    let restored = PolicyCache::default();
    assert_eq!(load_snapshot(&restored, &path, t(3)).unwrap().loaded, 1);
    assert!(restored.entry(&d).is_some());
    // A snapshot truncated in place (no atomic write) is refused whole.
    std::fs::write(&path, &partial[..partial.len() - 10]).unwrap();
    let err = load_snapshot(&PolicyCache::default(), &path, t(3)).unwrap_err();
    assert!(matches!(err, SnapshotError::Truncated | SnapshotError::Corrupt { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// DESIGN.md: a store shared by a cluster: one MTA's fetch serves another.
#[test]
fn a_shared_store_serves_a_cluster() {
    let store = Arc::new(MemoryStore::default());
    let a = PolicyCache::default().with_store(store.clone());
    let b = PolicyCache::default().with_store(store.clone());
    let d = domain("example.com");
    assert_eq!(a.decide(&d, TxtLookup::Record(id("a")), t(0)), Decision::Fetch { id: id("a") });
    let _ = a.record_fetch(&d, id("a"), Ok(policy("enforce", 86_400)), t(0));
    let got = b.decide(&d, TxtLookup::Record(id("a")), t(5));
    assert_eq!(reason(&got), Some(&ApplyReason::SameId));
    // The downgrade protection carries over: TXT gone at b, policy applies.
    let c = PolicyCache::default().with_store(store.clone());
    assert_eq!(reason(&c.decide(&d, TxtLookup::NoRecord, t(5))), Some(&ApplyReason::TxtMissing));
    assert!(a.purge(&d));
    assert!(store.load(&d).unwrap().is_none());
}

/// One step of the random sequences: time passes, a TXT lookup happens,
/// and a fetch (if asked for) succeeds with a max_age or fails.
#[derive(Debug, Clone)]
struct Step {
    advance: u64,
    txt: TxtLookup,
    fetch: Result<u64, ()>,
}

fn step() -> impl Strategy<Value = Step> {
    let txt = prop_oneof![
        4 => prop::sample::select(vec!["a", "b", "c"]).prop_map(|i| TxtLookup::Record(id(i))),
        1 => Just(TxtLookup::NoRecord),
        1 => Just(TxtLookup::Invalid),
        1 => Just(TxtLookup::Failed),
    ];
    let fetch = prop_oneof![2 => (0u64..200_000).prop_map(Ok), 1 => Just(Err(()))];
    (0u64..100_000, txt, fetch).prop_map(|(advance, txt, fetch)| Step { advance, txt, fetch })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// RFC 8461 §5.1, §10: over any sequence of lookups, fetches and
    /// failures, a live policy is never lost to a failure and an expired
    /// one never applies.
    #[test]
    fn a_live_policy_is_never_lost_and_an_expired_one_never_applies(
        steps in prop::collection::vec(step(), 1..60),
        backoff in 0u64..1_000,
    ) {
        let cache = PolicyCache::new(CacheConfig::default().fetch_backoff(Duration::from_secs(backoff)));
        let d = domain("model.example");
        // The model: the last fetched policy (id, fetched at, max_age).
        let mut model: Option<(PolicyId, u64, u64)> = None;
        let mut now = 0;
        for s in steps {
            now += s.advance;
            let live = model.filter(|&(_, at, age)| now < at + age);
            let decision = cache.decide(&d, s.txt, t(now));
            if let Decision::Apply { id: applied, .. } = &decision {
                prop_assert_eq!(Some(*applied), live.map(|m| m.0), "an expired or unknown policy applied");
            }
            if let (Some(m), TxtLookup::NoRecord | TxtLookup::Invalid | TxtLookup::Failed) = (live, s.txt) {
                prop_assert_eq!(decision.policy().is_some(), true, "a TXT failure lost the live policy {:?}", m);
            }
            if let (Some(m), TxtLookup::Record(txt_id)) = (live, s.txt) {
                if m.0 == txt_id {
                    let same = matches!(decision, Decision::Apply { reason: ApplyReason::SameId, .. });
                    prop_assert!(same, "same id and live must apply the cache");
                } else {
                    let fetch = matches!(decision, Decision::Fetch { .. });
                    prop_assert!(decision.policy().is_some() || fetch, "a new id with a live policy");
                }
            }
            if let Decision::Fetch { id: want } = decision {
                let result = s.fetch.map(|age| policy("enforce", age)).map_err(|()| refused());
                let after = cache.record_fetch(&d, want, result, t(now));
                match s.fetch {
                    Ok(age) => {
                        let fetched = matches!(after, Decision::Apply { reason: ApplyReason::Fetched, .. });
                        prop_assert!(fetched, "a successful fetch applies");
                        model = Some((want, now, age.min(31_557_600)));
                    }
                    Err(()) => match live {
                        Some(m) => prop_assert_eq!(after.policy().is_some(), true, "a failed fetch lost {:?}", m),
                        None => prop_assert!(after.policy().is_none()),
                    },
                }
            }
        }
    }
}
