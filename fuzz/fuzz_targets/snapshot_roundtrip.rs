//! Policy → cache → snapshot → restore: every policy the parser accepts
//! (up to 64 KiB, whatever its `Display` form grows to) survives a
//! snapshot, and one domain's policy never keeps another's from loading.
//! The input is up to eight policy bodies separated by 0xFF bytes. Run
//! with `-max_len=65536` or more.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use smtp_tls_policy::cache::PolicyCache;
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::sts::{Policy, PolicyId};

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let cache = PolicyCache::default();
    let mut kept = Vec::new();
    for (n, body) in data.split(|&b| b == 0xff).take(8).enumerate() {
        let Ok(policy) = Policy::parse_bytes(body) else { continue };
        let domain = DomainName::parse(&format!("d{n}.example")).unwrap();
        let _ = cache.record_fetch(&domain, PolicyId::parse("1").unwrap(), Ok(policy.clone()), now);
        // max_age 0 expires at once: such a policy is not snapshotted.
        if !policy.max_age().is_zero() {
            kept.push((domain, policy));
        }
    }
    let restored = PolicyCache::default();
    let report = restored.restore(&cache.snapshot(now), now).expect("a snapshot of the cache loads");
    assert_eq!((report.loaded, report.skipped.len()), (kept.len(), 0));
    for (domain, policy) in kept {
        let entry = restored.entry(&domain).expect("restored");
        assert_eq!(*entry.policy.expect("a policy").1, policy);
    }
});
