//! Cache snapshots: any bytes are restored (entries this version refuses
//! left out alone) or refused whole with a typed error, never a panic and
//! never half-loaded; what loads snapshots back to the same policies.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use smtp_tls_policy::cache::PolicyCache;

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let cache = PolicyCache::default();
    match cache.restore(data, now) {
        Ok(restored) => {
            let loaded = restored.loaded;
            assert!(cache.entries().len() <= loaded, "more entries than loaded");
            let again = PolicyCache::default();
            let back = again.restore(&cache.snapshot(now), now).expect("a snapshot of restored policies loads");
            assert_eq!((back.loaded, back.skipped.len()), (cache.entries().len(), 0));
            let mut a: Vec<_> = cache.entries().into_iter().map(|e| (e.domain, e.policy, e.expires_at)).collect();
            let mut b: Vec<_> = again.entries().into_iter().map(|e| (e.domain, e.policy, e.expires_at)).collect();
            a.sort_by(|x, y| x.0.cmp(&y.0));
            b.sort_by(|x, y| x.0.cmp(&y.0));
            assert_eq!(a, b);
        }
        Err(_) => assert!(cache.entries().is_empty(), "a refused snapshot loaded something"),
    }
});
