//! TLS-RPT state shared on a real Redis (Debian's `redis-server`, started
//! by each test on 127.0.0.1 with its own port and directory): several
//! nodes, one report per domain and day with the summed counts, sent once;
//! Redis killed and restarted empty; hostile values; a node dying while it
//! holds a lease. Required when SMTP_TLS_POLICY_REQUIRE_REDIS or CI is set.
#![cfg(all(feature = "redis", feature = "fetch"))]

#[path = "../examples/support/mod.rs"]
mod support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use smtp_tls_policy::cache::{CacheConfig, PolicyCache, RedisStore, TxtLookup};
use smtp_tls_policy::discovery::DnssecStatus;
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::report::{
    Collector, CollectorConfig, FailureDetail, MailSubmitter, OutboxStore, RedisOutbox, RedisReportStore, ReportPolicy,
    ReportPoster, ReportStore, ResultType, RetryPolicy, SendOutcome, Session, StoreError, Window, WindowLength,
    queue_due, send_due,
};
use smtp_tls_policy::sts::{Policy, PolicyId};
use support::memory::{MemoryDns, records};

/// 2026-12-08T12:00:00Z.
const NOON: u64 = 1_796_731_200;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn name(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

/// A redis-server of this test.
struct Redis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    fn start(tag: &str) -> Option<Self> {
        if Command::new("redis-server").arg("--version").output().is_err() {
            let required =
                std::env::var_os("SMTP_TLS_POLICY_REQUIRE_REDIS").is_some() || std::env::var_os("CI").is_some();
            assert!(!required, "redis-server is required here: apt-get install redis-server");
            eprintln!("redis-server not installed: skipping");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("smtp-tls-policy-redis-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self { port, dir, child: None };
        redis.run();
        Some(redis)
    }

    fn run(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string(), "--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn store(redis: &Redis, prefix: &str) -> RedisReportStore {
    RedisReportStore::open(&redis.url(), prefix, Duration::from_millis(500)).unwrap()
}

fn config(node: u64) -> CollectorConfig {
    CollectorConfig::new("Cluster", "mailto:postmaster@mta.example", name("mta.example"))
        .node(node)
        .spread(Duration::ZERO)
}

fn sessions(domain: &str) -> Vec<Session> {
    let d = name(domain);
    let none = ReportPolicy::none(&d);
    let mx = name(&format!("mx.{domain}"));
    vec![
        Session::success(none.clone()),
        Session::failure(none, FailureDetail::new(ResultType::StarttlsNotSupported, Some(&mx))),
    ]
}

#[derive(Default)]
struct Counting(Mutex<Vec<String>>);

impl ReportPoster for Counting {
    fn post(&self, uri: &str, _gzip: &[u8]) -> SendOutcome {
        self.0.lock().unwrap().push(uri.to_owned());
        SendOutcome::Delivered
    }
}

impl MailSubmitter for Counting {
    fn submit(&self, _from: &str, to: &str, _message: &[u8]) -> SendOutcome {
        self.0.lock().unwrap().push(to.to_owned());
        SendOutcome::Delivered
    }
}

/// Three nodes count into one Redis: one report per domain and day with
/// the summed counts, made by one node and sent once.
#[test]
fn three_nodes_make_one_report_per_domain_and_day() {
    let Some(redis) = Redis::start("nodes") else { return };
    let nodes: Vec<_> = (1..=3).map(|n| Collector::new(store(&redis, "t1"), config(n))).collect();
    std::thread::scope(|s| {
        for node in &nodes {
            s.spawn(move || {
                for _ in 0..20 {
                    node.record(at(NOON), &sessions("a.example")).unwrap();
                    node.record(at(NOON), &sessions("b.example")).unwrap();
                }
            });
        }
    });
    let window = Window::containing(at(NOON), WindowLength::Day);
    let counts = nodes[0].store().counts(window).unwrap();
    assert_eq!(counts.totals(&name("a.example")), (60, 60));
    assert_eq!(counts.totals(&name("b.example")), (60, 60));

    let dns = MemoryDns::new()
        .txt(
            "_smtp._tls.a.example",
            Ok(records(vec!["v=TLSRPTv1; rua=https://r.a.example/t".into()], DnssecStatus::Insecure)),
        )
        .txt(
            "_smtp._tls.b.example",
            Ok(records(vec!["v=TLSRPTv1; rua=mailto:t@b.example".into()], DnssecStatus::Insecure)),
        );
    let outboxes: Vec<_> =
        (1..=3).map(|n| RedisOutbox::open(&redis.url(), "t1", n, Duration::from_millis(500)).unwrap()).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let later = window.closes() + Duration::from_secs(60);
    let queued: Vec<usize> = nodes
        .iter()
        .zip(&outboxes)
        .map(|(node, outbox)| runtime.block_on(queue_due(node, outbox, &dns, later)).unwrap().queued.len())
        .collect();
    assert_eq!(queued.iter().sum::<usize>(), 2, "one node made both reports: {queued:?}");
    let entries = outboxes[2].entries().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(nodes.iter().all(|n| n.store().windows().unwrap().is_empty()), "the window is gone for every node");

    let sent = Counting::default();
    for outbox in &outboxes {
        send_due(outbox, later, &RetryPolicy::default(), &sent, &sent, "tlsrpt@mta.example").unwrap();
    }
    let mut to = sent.0.lock().unwrap().clone();
    to.sort();
    assert_eq!(to, ["https://r.a.example/t", "t@b.example"], "each report sent once");
    assert!(outboxes[0].entries().unwrap().is_empty());
}

/// Redis down: a record fails at once with Unavailable (the MTA goes on
/// delivering); Redis back, empty: recording resumes without a restart.
#[test]
fn redis_killed_and_restarted_empty() {
    let Some(mut redis) = Redis::start("kill") else { return };
    let collector = Collector::new(store(&redis, "t2"), config(1));
    collector.record(at(NOON), &sessions("a.example")).unwrap();
    redis.kill();
    let started = Instant::now();
    let err = collector.record(at(NOON), &sessions("a.example")).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "bounded by the timeout: {:?}", started.elapsed());
    assert!(collector.due(at(NOON + 86_400)).is_err());
    redis.run();
    // Sharing resumes by itself once Redis answers (after a short pause).
    let started = Instant::now();
    while collector.record(at(NOON), &sessions("a.example")).is_err() {
        assert!(started.elapsed() < Duration::from_secs(5), "no reconnect");
        std::thread::sleep(Duration::from_millis(100));
    }
    let window = Window::containing(at(NOON), WindowLength::Day);
    assert_eq!(collector.store().counts(window).unwrap().totals(&name("a.example")), (1, 1), "only what came after");
}

/// Values planted in Redis that do not read are skipped, never counted.
#[test]
fn hostile_values_are_skipped() {
    let Some(redis) = Redis::start("hostile") else { return };
    let s = store(&redis, "t3");
    let collector = Collector::new(s, config(1));
    collector.record(at(NOON), &sessions("a.example")).unwrap();
    let window = Window::containing(at(NOON), WindowLength::Day);
    let key = format!("t3:tlsrpt:v1:w:{}:86400", window.start_secs());
    redis.cli(&["HSET", &key, "not json", "5"]);
    redis.cli(&["HSET", &key, r#"{"window":[0,0],"domain":"bad_domain","policy_type":"sts","count":0}"#, "7"]);
    redis.cli(&["HSET", &key, r#"{"window":[0,0],"domain":"c.example","policy_type":"sts","count":0}"#, "many"]);
    redis.cli(&["SADD", "t3:tlsrpt:v1:windows", "12:86400", "garbage"]);
    let counts = collector.store().counts(window).unwrap();
    assert_eq!(counts.domains(), vec![name("a.example")]);
    assert_eq!(counts.totals(&name("a.example")), (1, 1));
    assert_eq!(collector.store().windows().unwrap(), vec![window]);
    assert!(collector.store().skipped() >= 4, "{}", collector.store().skipped());
    collector.reports(window).unwrap().iter().for_each(|r| r.report.validate().unwrap());
}

/// A node that dies holding a window's lease blocks the others only until
/// the lease expires.
#[test]
fn a_node_killed_while_holding_a_lease() {
    let Some(redis) = Redis::start("lease") else { return };
    let (a, b) = (store(&redis, "t4"), store(&redis, "t4"));
    let window = Window::containing(at(NOON), WindowLength::Day);
    assert!(a.claim(window, 1, Duration::from_millis(300)).unwrap());
    assert!(a.claim(window, 1, Duration::from_millis(300)).unwrap(), "the holder keeps its lease");
    assert!(!b.claim(window, 2, Duration::from_millis(300)).unwrap());
    drop(a); // node 1 dies without finishing
    std::thread::sleep(Duration::from_millis(400));
    assert!(b.claim(window, 2, Duration::from_millis(300)).unwrap(), "the lease expired");
}

fn cache_on(redis: &Redis, prefix: &str) -> (PolicyCache, std::sync::Arc<RedisStore>) {
    let store = std::sync::Arc::new(RedisStore::open(&redis.url(), prefix, Duration::from_millis(300)).unwrap());
    (PolicyCache::new(CacheConfig::default()).with_store(store.clone()), store)
}

const POLICY: &str = "version: STSv1\nmode: enforce\nmx: *.mail.example.com\nmax_age: 86400\n";

/// Three nodes' caches over one Redis: the policy one node fetched is the
/// others' too, so a new domain is fetched once in the cluster; its key
/// lives as long as the policy (RFC 8461 §3.3 max_age).
#[test]
fn three_caches_share_one_fetch() {
    let Some(redis) = Redis::start("cache") else { return };
    let nodes: Vec<_> = (0..3).map(|_| cache_on(&redis, "c1")).collect();
    let domain = name("example.com");
    let id = PolicyId::parse("20261203").unwrap();
    let now = SystemTime::now();
    let fetches = std::sync::atomic::AtomicUsize::new(0);
    for (cache, _) in &nodes {
        let decision = cache.lookup(&domain, TxtLookup::Record(id), now, |_| {
            fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Policy::parse(POLICY).unwrap())
        });
        assert!(decision.policy().is_some(), "{decision:?}");
    }
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1, "one fetch across three nodes");
    let ttl: i64 = redis.cli(&["TTL", "c1:sts:v1:example.com"]).trim().parse().unwrap();
    assert!((86_000..=86_400).contains(&ttl), "TTL {ttl}");
}

/// A hostile value planted in Redis is ignored (and counted), never
/// applied; the node fetches and the value is replaced by a valid one.
#[test]
fn a_hostile_policy_value_is_ignored() {
    let Some(redis) = Redis::start("cache-hostile") else { return };
    let (cache, store) = cache_on(&redis, "c2");
    let domain = name("example.com");
    for value in [
        "not json",
        r#"{"v":1,"id":"20261203","fetched_at":1,"policy":"version: STSv1\nmode: enforce\nmax_age: 86400\n"}"#,
        r#"{"v":9,"id":"20261203","fetched_at":1,"policy":"x"}"#,
        r#"{"v":1,"id":"bad id!","fetched_at":1,"policy":"x"}"#,
    ] {
        redis.cli(&["SET", "c2:sts:v1:example.com", value]);
        let fresh = PolicyCache::new(CacheConfig::default()).with_store(store.clone());
        let mut fetched = false;
        let d =
            fresh.lookup(&domain, TxtLookup::Record(PolicyId::parse("20261203").unwrap()), SystemTime::now(), |_| {
                fetched = true;
                Ok(Policy::parse(POLICY).unwrap())
            });
        assert!(fetched, "{value}: the planted value was used");
        assert!(d.policy().is_some());
    }
    // A value far over any policy's size: one bounded read, ignored.
    let huge = format!(r#"{{"v":1,"id":"20261203","fetched_at":1,"policy":"{}"}}"#, "x".repeat(2_000_000));
    let mut cli = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "-x", "SET", "c2:sts:v1:example.com"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(cli.stdin.as_mut().unwrap(), huge.as_bytes()).unwrap();
    drop(cli.stdin.take());
    cli.wait().unwrap();
    let fresh = PolicyCache::new(CacheConfig::default()).with_store(store.clone());
    let mut fetched = false;
    let _ = fresh.lookup(&domain, TxtLookup::Record(PolicyId::parse("20261203").unwrap()), SystemTime::now(), |_| {
        fetched = true;
        Ok(Policy::parse(POLICY).unwrap())
    });
    assert!(fetched, "the huge value was used");
    assert_eq!(store.skipped(), 5);
    let _ = cache;
    assert!(
        redis.cli(&["GET", "c2:sts:v1:example.com"]).contains("*.mail.example.com"),
        "replaced by the fetched policy"
    );
}

/// Redis gone: a node keeps applying the live policies it holds, a node
/// that holds none fetches by itself, and the store says it is degraded.
#[test]
fn redis_down_the_cache_keeps_deciding() {
    let Some(mut redis) = Redis::start("cache-down") else { return };
    let (cache, store) = cache_on(&redis, "c3");
    let domain = name("example.com");
    let id = PolicyId::parse("20261203").unwrap();
    let now = SystemTime::now();
    assert!(
        cache.lookup(&domain, TxtLookup::Record(id), now, |_| Ok(Policy::parse(POLICY).unwrap())).policy().is_some()
    );
    redis.kill();
    let d = cache.lookup(&domain, TxtLookup::Record(id), now, |_| panic!("a live local policy needs no fetch"));
    assert!(d.policy().is_some());
    let (other, other_store) = cache_on(&redis, "c3");
    let started = Instant::now();
    let d = other.lookup(&domain, TxtLookup::Record(id), now, |_| Ok(Policy::parse(POLICY).unwrap()));
    assert!(d.policy().is_some());
    assert!(started.elapsed() < Duration::from_secs(2), "bounded by the timeout: {:?}", started.elapsed());
    assert!(other_store.is_degraded() && other_store.failures() >= 1);
    let _ = store;
}

/// Three resolvers (nodes) with one Redis and the local DNS and HTTPS
/// world: concurrent first lookups of a new domain make one fetch in the
/// cluster; a failed fetch on one node keeps the others from hammering the
/// policy host (the shared back-off).
#[cfg(feature = "resolver")]
#[test]
fn three_resolvers_one_fetch_and_a_shared_back_off() {
    use smtp_tls_policy::resolver::blocking::PolicyResolver;
    use support::dns::Zones;
    use support::world::{LocalWorld, policy};
    let Some(redis) = Redis::start("resolvers") else { return };
    let mut signed = String::from("mx.common A 127.0.0.1\n_tcp.mx.common TXT \"no TLSA below\"\n");
    for d in ["new", "down"] {
        signed += &format!("{d} MX 10 mx.common\n_mta-sts.{d} TXT \"v=STSv1; id=1;\"\n");
    }
    let world = LocalWorld::start(&Zones { signed, ..Zones::default() });
    world.https.set("mta-sts.new.signed", policy("enforce", "mx.common.signed"));
    world.https.set("mta-sts.down.signed", support::https::response("500 Internal Server Error", &[], b""));
    let nodes: Vec<PolicyResolver> = (0..3)
        .map(|_| {
            let store = RedisStore::open(&redis.url(), "r1", Duration::from_millis(300)).unwrap();
            PolicyResolver::new(world.config().cache_store(std::sync::Arc::new(store))).unwrap()
        })
        .collect();
    let barrier = std::sync::Barrier::new(3);
    std::thread::scope(|s| {
        for node in &nodes {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                let plan = node.resolve("new.signed").unwrap();
                assert!(plan.sts.applied().is_some(), "every node applies the policy");
            });
        }
    });
    assert_eq!(world.https.requests("mta-sts.new.signed"), 1, "one fetch across the cluster");

    let _ = nodes[0].resolve("down.signed");
    assert_eq!(world.https.requests("mta-sts.down.signed"), 1);
    for node in &nodes[1..] {
        let _ = node.resolve("down.signed");
    }
    assert_eq!(world.https.requests("mta-sts.down.signed"), 1, "the others back off with the first");
}

/// RFC 8461 §10.2 across the cluster: when the policy is due on every
/// node, one node refreshes it and the others take its fetch from Redis.
#[cfg(feature = "resolver")]
#[test]
fn one_refresh_across_three_resolvers() {
    use smtp_tls_policy::resolver::blocking::PolicyResolver;
    use support::dns::Zones;
    use support::world::{LocalWorld, policy};
    let Some(redis) = Redis::start("refresh") else { return };
    let signed = "mx.common A 127.0.0.1\n_tcp.mx.common TXT \"no TLSA below\"\nr MX 10 mx.common\n_mta-sts.r TXT \"v=STSv1; id=1;\"\n";
    let world = LocalWorld::start(&Zones { signed: signed.into(), ..Zones::default() });
    world.https.set("mta-sts.r.signed", policy("enforce", "mx.common.signed"));
    let eager = CacheConfig::default().refresh_interval(Duration::ZERO).refresh_spread(Duration::ZERO);
    let nodes: Vec<PolicyResolver> = (0..3)
        .map(|_| {
            let store = RedisStore::open(&redis.url(), "r2", Duration::from_millis(300)).unwrap();
            PolicyResolver::new(world.config().cache(eager.clone()).cache_store(std::sync::Arc::new(store))).unwrap()
        })
        .collect();
    for node in &nodes {
        assert!(node.resolve("r.signed").unwrap().sts.applied().is_some());
    }
    assert_eq!(world.https.requests("mta-sts.r.signed"), 1);
    // A second later, so that a refreshed policy is newer to the second.
    std::thread::sleep(Duration::from_millis(1_100));
    let first = nodes[0].refresh_due();
    assert_eq!((first.due, first.refreshed, first.failed), (1, 1, 0));
    // The others' refreshes come later, once the first node's lease is
    // gone: they take its refreshed policy from Redis instead of fetching.
    redis.cli(&["DEL", "r2:sts:v1:fetch:r.signed"]);
    let reports: Vec<_> = nodes[1..].iter().map(|n| n.refresh_due()).collect();
    assert!(reports.iter().all(|r| r.due == 1 && r.failed == 0), "{reports:?}");
    assert_eq!(world.https.requests("mta-sts.r.signed"), 2, "one refresh fetch for three nodes: {reports:?}");
    // Their policies are now the refreshed one (fetched a second later).
    let fetched: Vec<_> = nodes.iter().map(|n| n.cache().entry(&name("r.signed")).unwrap().fetched_at).collect();
    assert!(fetched.windows(2).all(|w| w[0] == w[1]), "{fetched:?}");
}

/// A node that died holding a fetch lease: the others wait for its policy
/// only up to their fetch timeout, then fetch themselves. Redis slow (a
/// `DEBUG SLEEP` longer than the timeout): calls fail within the timeout.
#[cfg(feature = "resolver")]
#[test]
fn a_dead_fetch_lease_holder_and_a_slow_redis() {
    use smtp_tls_policy::resolver::blocking::PolicyResolver;
    use support::dns::Zones;
    use support::world::{LocalWorld, policy};
    let Some(redis) = Redis::start("dead-holder") else { return };
    let signed = "mx.common A 127.0.0.1\n_tcp.mx.common TXT \"no TLSA below\"\nz MX 10 mx.common\n_mta-sts.z TXT \"v=STSv1; id=1;\"\n";
    let world = LocalWorld::start(&Zones { signed: signed.into(), ..Zones::default() });
    world.https.set("mta-sts.z.signed", policy("enforce", "mx.common.signed"));
    // The lease of a node that is gone (60 s left on it).
    redis.cli(&["SET", "r3:sts:v1:fetch:z.signed", "deadbeefdeadbeef", "PX", "60000"]);
    let store = RedisStore::open(&redis.url(), "r3", Duration::from_millis(300)).unwrap();
    let node = PolicyResolver::new(world.config().cache_store(std::sync::Arc::new(store))).unwrap();
    let started = Instant::now();
    assert!(node.resolve("z.signed").unwrap().sts.applied().is_some());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1_500) && waited < Duration::from_secs(6), "waited {waited:?}");
    assert_eq!(world.https.requests("mta-sts.z.signed"), 1);

    let collector = Collector::new(store_slow(&redis), config(1));
    let port = redis.port.to_string();
    let sleeper = std::thread::spawn(move || {
        let _ = Command::new("redis-cli").args(["-p", &port, "DEBUG", "SLEEP", "1.5"]).output();
    });
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let err = collector.record(at(NOON), &sessions("a.example")).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(started.elapsed() < Duration::from_millis(1_200), "bounded by the timeout: {:?}", started.elapsed());
    sleeper.join().unwrap();
}

fn store_slow(redis: &Redis) -> RedisReportStore {
    RedisReportStore::open(&redis.url(), "r3", Duration::from_millis(300)).unwrap()
}

/// `rediss://`: a redis-server speaking only TLS, its certificate from a
/// local CA the store is told to trust; AUTH in the URL. Policies and
/// TLS-RPT counts go through.
#[test]
fn rediss_with_a_local_ca_and_auth() {
    let Some(plain) = Redis::start("tls-probe") else { return };
    drop(plain);
    let pki = support::https::Pki::new();
    let (chain, key) = pki.server("localhost", false);
    let dir = std::env::temp_dir().join(format!("smtp-tls-policy-rediss-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pem = |der: &[u8]| support::https::pem(der);
    std::fs::write(dir.join("server.pem"), pem(&chain[0])).unwrap();
    let rustls::pki_types::PrivateKeyDer::Pkcs8(k) = &key else { panic!("PKCS#8 key") };
    let key_pem = support::https::pem(k.secret_pkcs8_der()).replace("CERTIFICATE", "PRIVATE KEY");
    std::fs::write(dir.join("server.key"), key_pem).unwrap();
    let ca = pem(&pki.ca_der);
    std::fs::write(dir.join("ca.pem"), &ca).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--tls-auth-clients", "no", "--requirepass", "s3cret"])
        .arg("--tls-cert-file")
        .arg(dir.join("server.pem"))
        .arg("--tls-key-file")
        .arg(dir.join("server.key"))
        .arg("--tls-ca-cert-file")
        .arg(dir.join("ca.pem"))
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "redis-server with TLS did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("rediss://:s3cret@localhost:{port}/");
    let store = RedisStore::open_with_root(&url, "tls", Duration::from_secs(2), Some(ca.as_bytes())).unwrap();
    let cache = PolicyCache::new(CacheConfig::default()).with_store(std::sync::Arc::new(store));
    let d =
        cache.lookup(&name("example.com"), TxtLookup::Record(PolicyId::parse("1").unwrap()), SystemTime::now(), |_| {
            Ok(Policy::parse(POLICY).unwrap())
        });
    assert!(d.policy().is_some());
    let reports = RedisReportStore::open_with_root(&url, "tls", Duration::from_secs(2), Some(ca.as_bytes())).unwrap();
    let collector = Collector::new(reports, config(1));
    collector.record(at(NOON), &sessions("a.example")).unwrap();
    assert_eq!(collector.store().windows().unwrap().len(), 1);
    // Without the CA, the server is not trusted.
    let untrusted = RedisReportStore::open(&url, "tls", Duration::from_secs(2)).unwrap();
    assert!(matches!(untrusted.windows(), Err(StoreError::Unavailable(_))));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
