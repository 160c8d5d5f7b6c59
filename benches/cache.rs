//! Policy cache benchmarks (DESIGN.md: cache hit ≤ 200 ns and flat from
//! 1 k to 1 M entries; ≤ 512 bytes of memory per cached domain beyond the
//! policy text), and two threads contending.
//!
//! Run: `cargo bench --bench cache` (the memory figures print first).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use divan::{Bencher, black_box};
use smtp_tls_policy::cache::{CacheConfig, PolicyCache, TxtLookup};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::sts::{Policy, PolicyId};

/// Counts the bytes held, to measure memory per entry.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const POLICY: &str =
    "version: STSv1\nmode: enforce\nmx: mx1.mail.example.com\nmx: *.backup.example.net\nmax_age: 604800\n";

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn id() -> PolicyId {
    PolicyId::parse("20240101T000000").unwrap()
}

fn names(n: usize) -> Vec<DomainName> {
    (0..n).map(|i| DomainName::parse(&format!("mail-domain-{i}.example.com")).unwrap()).collect()
}

/// A cache holding `names`, each with its own copy of a typical policy.
fn filled(names: &[DomainName]) -> PolicyCache {
    let cache = PolicyCache::new(CacheConfig::default().capacity(names.len()));
    let policy = Policy::parse(POLICY).unwrap();
    for d in names {
        let _ = cache.record_fetch(d, id(), Ok(policy.clone()), now());
    }
    cache
}

fn main() {
    memory_per_entry();
    divan::main();
}

/// Prints the memory a cached domain costs, beyond the policy text (the
/// domain name and the MX pattern strings).
fn memory_per_entry() {
    for n in [10_000, 100_000] {
        let names = names(n);
        let before = HELD.load(Ordering::Relaxed);
        let cache = filled(&names);
        let total = HELD.load(Ordering::Relaxed) - before;
        let policy = Policy::parse(POLICY).unwrap();
        let text: usize = names.iter().map(|d| d.as_str().len()).sum::<usize>()
            + n * policy.mx().iter().map(|p| p.base().as_str().len()).sum::<usize>();
        println!(
            "memory: {n} domains: {} bytes per domain in all, {} beyond the policy text (target ≤ 512)",
            total / n,
            (total - text) / n
        );
        drop(cache);
    }
}

static SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];

fn world(n: usize) -> &'static (PolicyCache, Vec<DomainName>) {
    static WORLDS: [OnceLock<(PolicyCache, Vec<DomainName>)>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = SIZES.iter().position(|&s| s == n).unwrap();
    WORLDS[slot].get_or_init(|| {
        let names = names(n);
        (filled(&names), names)
    })
}

/// A hit on a hot domain (the same one each time) in a cache of `n`
/// entries: the cost of the cache's own work, which must not grow with `n`.
#[divan::bench(args = SIZES)]
fn hit(bencher: Bencher, n: usize) {
    let (cache, names) = world(n);
    let d = names[n / 2].clone();
    bencher.bench_local(|| cache.decide(black_box(&d), TxtLookup::Record(id()), now()));
}

/// A hit on a different domain each time, spread over the whole cache:
/// once the cache outgrows the CPU caches this measures memory latency
/// (the map, the entry, the policy's reference count, and the name read
/// from the benchmark's own array of a million names).
#[divan::bench(args = SIZES)]
fn hit_spread(bencher: Bencher, n: usize) {
    thread_local!(static NEXT: Cell<usize> = const { Cell::new(0) });
    let (cache, names) = world(n);
    bencher.bench(|| {
        let i = NEXT.with(|i| {
            i.set((i.get() + 7919) % names.len());
            i.get()
        });
        cache.decide(black_box(&names[i]), TxtLookup::Record(id()), now())
    });
}

/// Two threads hitting the same domain (one shard) at once.
#[divan::bench(threads = [1, 2], sample_size = 1000)]
fn contention_same_domain(bencher: Bencher) {
    let (cache, names) = world(1_000);
    let d = &names[0];
    bencher.bench(|| cache.decide(black_box(d), TxtLookup::Record(id()), now()));
}

/// Two threads hitting different domains.
#[divan::bench(threads = [1, 2], sample_size = 1000)]
fn contention_spread(bencher: Bencher) {
    thread_local!(static NEXT: Cell<usize> = const { Cell::new(0) });
    let (cache, names) = world(1_000);
    bencher.bench(|| {
        let i = NEXT.with(|n| {
            n.set((n.get() + 7919) % names.len());
            n.get()
        });
        cache.decide(black_box(&names[i]), TxtLookup::Record(id()), now())
    });
}
