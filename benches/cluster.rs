//! The policy cache with Redis behind it (feature `redis`; starts its own
//! `redis-server` on 127.0.0.1): a hit answered by the local tier, as
//! without Redis; a local miss answered from Redis (one round trip); and
//! the fetches N nodes make for M new domains.
//!
//! ```sh
//! cargo bench --features redis --bench cluster
//! ```

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use divan::{Bencher, black_box};
use smtp_tls_policy::cache::{CacheConfig, PolicyCache, RedisStore, TxtLookup};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::sts::{Policy, PolicyId};

const POLICY: &str = "version: STSv1\nmode: enforce\nmx: *.mail.example.com\nmax_age: 86400\n";

/// The bench's redis-server (a static is never dropped: `main` stops it).
struct Redis(std::sync::Mutex<Child>, u16);

static REDIS: std::sync::OnceLock<Redis> = std::sync::OnceLock::new();

fn redis() -> &'static Redis {
    REDIS.get_or_init(|| {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis(std::sync::Mutex::new(child), port)
    })
}

fn store(prefix: &str) -> Arc<RedisStore> {
    let url = format!("redis://127.0.0.1:{}/", redis().1);
    Arc::new(RedisStore::open(&url, prefix, Duration::from_millis(500)).unwrap())
}

fn id() -> PolicyId {
    PolicyId::parse("20261203").unwrap()
}

fn main() {
    fetches_across_nodes(3, 100);
    divan::main();
    if let Some(r) = REDIS.get()
        && let Ok(mut child) = r.0.lock()
    {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// N nodes look up M new domains one after the other: the fetch count.
fn fetches_across_nodes(nodes: usize, domains: usize) {
    let store = store("bench-n");
    let caches: Vec<_> =
        (0..nodes).map(|_| PolicyCache::new(CacheConfig::default()).with_store(store.clone())).collect();
    let fetches = AtomicUsize::new(0);
    let now = SystemTime::now();
    for d in 0..domains {
        let domain = DomainName::parse(&format!("d{d}.example.com")).unwrap();
        for cache in &caches {
            let _ = cache.lookup(&domain, TxtLookup::Record(id()), now, |_| {
                fetches.fetch_add(1, Ordering::Relaxed);
                Ok(Policy::parse(POLICY).unwrap())
            });
        }
    }
    println!("{nodes} nodes, {domains} new domains: {} fetches", fetches.load(Ordering::Relaxed));
}

/// A hit of the local tier (Redis behind it is not asked).
#[divan::bench(args = [false, true])]
fn hit(bencher: Bencher, with_redis: bool) {
    let cache = PolicyCache::new(CacheConfig::default());
    let cache = if with_redis { cache.with_store(store("bench-hit")) } else { cache };
    let domain = DomainName::parse("example.com").unwrap();
    let now = SystemTime::now();
    let _ = cache.lookup(&domain, TxtLookup::Record(id()), now, |_| Ok(Policy::parse(POLICY).unwrap()));
    bencher.bench_local(|| cache.lookup(black_box(&domain), TxtLookup::Record(id()), now, |_| unreachable!()));
}

/// A local miss answered by Redis: a fresh node's first lookup of a domain
/// another node fetched.
#[divan::bench]
fn miss_from_redis(bencher: Bencher) {
    let store = store("bench-miss");
    let domain = DomainName::parse("example.com").unwrap();
    let now = SystemTime::now();
    let first = PolicyCache::new(CacheConfig::default()).with_store(store.clone());
    let _ = first.lookup(&domain, TxtLookup::Record(id()), now, |_| Ok(Policy::parse(POLICY).unwrap()));
    bencher.with_inputs(|| PolicyCache::new(CacheConfig::default()).with_store(store.clone())).bench_local_values(
        |fresh| {
            let d = fresh.lookup(&domain, TxtLookup::Record(id()), now, |_| unreachable!("the policy is on Redis"));
            let _ = black_box(d);
            fresh
        },
    );
}
