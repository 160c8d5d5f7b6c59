//! This crate's socketmap server against postfix-mta-sts-resolver (PyPI),
//! on the same machine and the same local world: a signed DNS server on
//! 127.0.0.53:53 and an HTTPS policy host on 127.0.0.1:443 serving
//! `d<N>.signed` (MX `mx.common.signed`, an MTA-STS `enforce` policy).
//!
//! - cold: 1 000 domains neither server has seen, 32 connections at once;
//!   domains per second and latency;
//! - warm: 100 cached domains, 8 connections for 3 s; queries per second,
//!   p50 and p99 latency.
//!
//! postfix-mta-sts-resolver reads /etc/resolv.conf and the system CA
//! store, so it runs in a private mount namespace (`unshare -m`) where
//! /etc/resolv.conf names 127.0.0.53, with SSL_CERT_FILE set to the local
//! CA. This needs root, `unshare`, and `mta-sts-daemon` on PATH:
//! `scripts/compare-postfix-mta-sts-resolver` installs what is missing and
//! runs `cargo bench --bench postfix_compare`. Without them it says so and
//! exits successfully (so that `cargo bench` still runs everything else).
//!
//! This crate's server answers MTA-STS and DANE (it also looks up MX, the
//! MX hosts' addresses and TLSA records, with DNSSEC validation); the zone
//! `stsonly` (DANE support `none`) leaves TLSA out, and `plain` also turns
//! DNSSEC off — the incumbent's work. A fifth line measures the ceiling of
//! the set-up: the same connections with a reply that needs no lookup.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtp_tls_policy::dns::{DnsConfig, DnssecMode, TrustAnchor};
use smtp_tls_policy::engine::{DaneSupport, DestinationControls, Profile, StsSupport, TlsSupport};
use smtp_tls_policy::fetch::{FetchConfig, Roots};
use smtp_tls_policy::postfix::ZoneOptions;
use smtp_tls_policy::postfix::netstring::{decode, encode};
use smtp_tls_policy::postfix::server::{ServerConfig, SocketmapServer, Zone};
use smtp_tls_policy::resolver::ResolverConfig;
use smtp_tls_policy::resolver::blocking::PolicyResolver;

#[path = "../examples/support/mod.rs"]
mod support;

use support::dns::{DnsWorld, Zones};
use support::https::{Pki, PolicyServer, ok};

const COLD: usize = 1000;
const WARM: usize = 100;
const COLD_CONNECTIONS: usize = 32;
const WARM_CONNECTIONS: usize = 8;
const WARM_SECONDS: u64 = 3;
const DNS: &str = "127.0.0.53:53";
const THEIRS: &str = "127.0.0.1:8462";

fn main() {
    if let Err(missing) = prerequisites() {
        println!("postfix_compare: skipped ({missing}); scripts/compare-postfix-mta-sts-resolver sets it up");
        return;
    }
    // Three disjoint sets of 1 000 domains: one per server run, so that each
    // cold run is cold.
    let runs = [
        "ours (MTA-STS + DANE, DNSSEC)",
        "ours, MTA-STS only, DNSSEC",
        "ours, MTA-STS only, no DNSSEC",
        "postfix-mta-sts-resolver",
    ];
    let total = COLD * runs.len();
    let mut signed = String::from("mx.common A 127.0.0.1\n_tcp.mx.common TXT \"no TLSA records\"\n");
    for n in 0..total {
        signed += &format!("d{n} MX 10 mx.common\n_mta-sts.d{n} TXT \"v=STSv1; id=1;\"\nmta-sts.d{n} A 127.0.0.1\n");
    }
    let pki = Arc::new(Pki::new());
    let https = PolicyServer::start_on(Arc::clone(&pki), "127.0.0.1:443".parse().unwrap());
    let body = b"version: STSv1\r\nmode: enforce\r\nmx: mx.common.signed\r\nmax_age: 86400\r\n";
    for n in 0..total {
        let host = format!("mta-sts.d{n}.signed");
        https.set(&host, ok(body));
        https.prepare(&host);
    }
    let dns = DnsWorld::start_on(&Zones { signed, ..Zones::default() }, DNS.parse().unwrap());
    let dir = std::env::temp_dir().join(format!("postfix-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let ours_zone = zone(&dns, &pki, DaneSupport::Opportunistic, true);
    let ours = SocketmapServer::start(
        ServerConfig::default()
            .inet("127.0.0.1:0".parse().unwrap())
            .zone("postfix", ours_zone.clone())
            .zone("stsonly", zone(&dns, &pki, DaneSupport::None, true))
            .zone("plain", zone(&dns, &pki, DaneSupport::None, false)),
    )
    .unwrap();
    let ours_addr = ours.local_addrs()[0];
    // The same zone (same resolver and caches) behind a server that reuses
    // no reply: every warm answer made afresh.
    let fresh = SocketmapServer::start(
        ServerConfig::default()
            .inet("127.0.0.1:0".parse().unwrap())
            .reply_ttl(Duration::ZERO)
            .zone("postfix", ours_zone.clone()),
    )
    .unwrap();
    let fresh_addr = fresh.local_addrs()[0];
    let mut theirs = start_theirs(&dir, &pki);
    let theirs_addr: SocketAddr = THEIRS.parse().unwrap();
    if !wait_for(theirs_addr) {
        let _ = theirs.kill();
        let _ = theirs.wait();
        println!("postfix_compare: mta-sts-daemon did not start (see {})", dir.join("daemon.log").display());
        return;
    }

    println!(
        "same machine, same local world; {COLD} cold domains with {COLD_CONNECTIONS} connections, then {WARM} warm domains with {WARM_CONNECTIONS} connections for {WARM_SECONDS} s\n"
    );
    // The ceiling of this machine: the same connections, a reply that needs
    // no lookup at all (PERM for an unknown map name).
    let some: Vec<String> = (0..WARM).map(|n| format!("d{n}.signed")).collect();
    let per = |cpu: Duration, n: usize| cpu.as_secs_f64() * 1e6 / n.max(1) as f64;
    let floor_addr = start_floor();
    let before = threads_cpu("floor");
    let floor = run(floor_addr, "postfix", &some, WARM_CONNECTIONS, Some(Duration::from_secs(WARM_SECONDS)));
    let floor_cpu = per(threads_cpu("floor") - before, floor.count);
    println!(
        "{:<36} {:>58} {:>8.0} q/s (p50 {:>6.1} µs, p99 {:>7.1} µs) {:>6.1} µs CPU/query",
        "floor: one event loop, a fixed reply",
        "",
        floor.rate,
        floor.p50.as_secs_f64() * 1e6,
        floor.p99.as_secs_f64() * 1e6,
        floor_cpu
    );
    let before = threads_cpu("socketmap");
    let ceiling = run(ours_addr, "nosuchzone", &some, WARM_CONNECTIONS, Some(Duration::from_secs(WARM_SECONDS)));
    println!(
        "{:<36} {:>58} {:>8.0} q/s (p50 {:>6.1} µs, p99 {:>7.1} µs) {:>6.1} µs CPU/query",
        "ours: a reply without any lookup",
        "",
        ceiling.rate,
        ceiling.p50.as_secs_f64() * 1e6,
        ceiling.p99.as_secs_f64() * 1e6,
        per(threads_cpu("socketmap") - before, ceiling.count)
    );
    let targets = [(ours_addr, "postfix"), (ours_addr, "stsonly"), (ours_addr, "plain"), (theirs_addr, "postfix")];
    let mut results = Vec::new();
    for (i, ((addr, zone), name)) in targets.iter().zip(runs).enumerate() {
        let domains: Vec<String> = (i * COLD..(i + 1) * COLD).map(|n| format!("d{n}.signed")).collect();
        // The server's CPU: our event loop and its blocking pool, or the
        // incumbent's whole process.
        let cpu = || if *addr == theirs_addr { process_cpu(theirs.id()) } else { threads_cpu("socketmap") };
        let at = cpu();
        let cold = run(*addr, zone, &domains, COLD_CONNECTIONS, None);
        let cold_cpu = per(cpu() - at, cold.count);
        let at = cpu();
        let warm = run(*addr, zone, &domains[..WARM], WARM_CONNECTIONS, Some(Duration::from_secs(WARM_SECONDS)));
        let warm_cpu = per(cpu() - at, warm.count);
        println!(
            "{name:<36} cold {:>7.0} domains/s (p50 {:>6.2} ms, p99 {:>7.2} ms) {:>6.0} µs CPU/domain   warm {:>8.0} q/s (p50 {:>6.1} µs, p99 {:>7.1} µs) {:>6.1} µs CPU/query",
            cold.rate,
            cold.p50.as_secs_f64() * 1e3,
            cold.p99.as_secs_f64() * 1e3,
            cold_cpu,
            warm.rate,
            warm.p50.as_secs_f64() * 1e6,
            warm.p99.as_secs_f64() * 1e6,
            warm_cpu
        );
        results.push((cold, warm, cold_cpu, warm_cpu));
    }
    // Warm again, every answer made afresh (no reply reuse): the crate's own
    // work per answer on top of the kernel's.
    let before = threads_cpu("socketmap");
    let domains: Vec<String> = (0..WARM).map(|n| format!("d{n}.signed")).collect();
    let again = run(fresh_addr, "postfix", &domains, WARM_CONNECTIONS, Some(Duration::from_secs(WARM_SECONDS)));
    let fresh_cpu = per(threads_cpu("socketmap") - before, again.count);
    println!(
        "{:<36} {:>58} {:>8.0} q/s (p50 {:>6.1} µs, p99 {:>7.1} µs) {:>6.1} µs CPU/query",
        "ours (MTA-STS + DANE), reply-ttl 0",
        "",
        again.rate,
        again.p50.as_secs_f64() * 1e6,
        again.p99.as_secs_f64() * 1e6,
        fresh_cpu
    );
    let (theirs_cold, theirs_warm, theirs_cold_cpu, theirs_warm_cpu) = &results[3];
    println!();
    for (name, (cold, warm, cold_cpu, warm_cpu)) in runs.iter().zip(&results).take(3) {
        println!(
            "{name}: CPU per warm query {:.2}× the floor (target ≤ 1.25×), {:.1}× less than the incumbent; CPU per cold domain {:.1}× less (target ≥ 3×, with DNSSEC and DANE ≥ 2×); throughput warm {:.1}×, cold {:.1}×",
            warm_cpu / floor_cpu,
            theirs_warm_cpu / warm_cpu,
            theirs_cold_cpu / cold_cpu,
            warm.rate / theirs_warm.rate,
            cold.rate / theirs_cold.rate
        );
    }
    println!(
        "ours (MTA-STS + DANE), every answer fresh: CPU per warm query {:.2}× the floor (target ≤ 2×), {:.1}× less than the incumbent",
        fresh_cpu / floor_cpu,
        theirs_warm_cpu / fresh_cpu
    );
    let _ = theirs.kill();
    let _ = theirs.wait();
    fresh.shutdown();
    ours.shutdown();
}

fn prerequisites() -> Result<(), String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")));
    if uid != Some(true) {
        return Err("needs root: ports 53 and 443, and a mount namespace".into());
    }
    for program in ["unshare", "mta-sts-daemon"] {
        if which(program).is_none() {
            return Err(format!("{program} not found on PATH"));
        }
    }
    Ok(())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(program)).find(|p| p.exists())
}

fn zone(dns: &DnsWorld, pki: &Pki, dane: DaneSupport, dnssec: bool) -> Zone {
    let mode =
        if dnssec { DnssecMode::Validate(TrustAnchor::parse(&dns.root_anchor).unwrap()) } else { DnssecMode::Off };
    let config = ResolverConfig::default()
        .dns(DnsConfig::default().servers([dns.addr]).dnssec(mode))
        // The policy hosts resolve through the same DNS, to port 443.
        .fetch(
            FetchConfig::default()
                .roots(Roots::custom(std::slice::from_ref(&pki.ca_der)).unwrap())
                .proxy_from_env(false),
        )
        .controls(DestinationControls::new(Profile::new(TlsSupport::Preferred, dane, StsSupport::On)));
    Zone { resolver: PolicyResolver::new(config).unwrap(), options: ZoneOptions::default() }
}

fn start_theirs(dir: &Path, pki: &Pki) -> Child {
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.53\noptions timeout:2 attempts:1\n").unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, support::https::pem(&pki.ca_der)).unwrap();
    let config = dir.join("daemon.yml");
    std::fs::write(
        &config,
        "host: 127.0.0.1\nport: 8462\nreuse_port: true\nshutdown_timeout: 1\ncache:\n  type: internal\n  options:\n    cache_size: 10000\ndefault_zone:\n  strict_testing: false\n  timeout: 4\n",
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount --bind {} /etc/resolv.conf && exec mta-sts-daemon -v warn -c {}",
            resolv.display(),
            config.display()
        ))
        .env("SSL_CERT_FILE", &ca)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("unshare")
}

fn wait_for(addr: SocketAddr) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if TcpStream::connect(addr).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

struct Figures {
    rate: f64,
    p50: Duration,
    p99: Duration,
    /// Queries answered.
    count: usize,
}

/// CPU time (user + system) in a `/proc/.../stat` line; Linux counts in
/// USER_HZ, 100 per second.
fn stat_cpu(stat: &str) -> Duration {
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // After the command: state is field 3, utime 14 and stime 15 (1-based).
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// The CPU time of this process's threads whose name starts with `prefix`
/// (the server's event loop "socketmap" and its blocking pool "socketmap-blk").
fn threads_cpu(prefix: &str) -> Duration {
    let mut total = Duration::ZERO;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end().starts_with(prefix) {
            total += stat_cpu(&std::fs::read_to_string(task.path().join("stat")).unwrap_or_default());
        }
    }
    total
}

/// The CPU time of a process (all its threads).
fn process_cpu(pid: u32) -> Duration {
    stat_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

/// The floor: one thread, one event loop, a fixed reply read from no
/// cache and no lookup — the kernel's and the event loop's cost of one
/// request per read, to which the servers' CPU per query is compared.
fn start_floor() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::Builder::new()
        .name("floor".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let reply = encode(b"OK secure match=mx.common.signed servername=hostname");
                loop {
                    let Ok((mut s, _)) = listener.accept().await else { continue };
                    let _ = s.set_nodelay(true);
                    let reply = reply.clone();
                    tokio::spawn(async move {
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 4096];
                        loop {
                            while let Ok(Some((_, used))) = decode(&buf, 100_000) {
                                if s.write_all(&reply).await.is_err() {
                                    return;
                                }
                                buf.drain(..used);
                            }
                            match s.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                    });
                }
            });
        })
        .unwrap();
    addr
}

/// Queries `domains` over `connections` connections: once each (cold), or
/// round and round for `duration` (warm). Every reply must be a policy.
fn run(addr: SocketAddr, zone: &str, domains: &[String], connections: usize, duration: Option<Duration>) -> Figures {
    let next = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::new());
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..connections {
            scope.spawn(|| {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_nodelay(true).unwrap();
                let mut mine = Vec::new();
                let mut buf = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let domain = match duration {
                        None if n >= domains.len() => break,
                        None => &domains[n],
                        Some(d) if start.elapsed() >= d => break,
                        Some(_) => &domains[n % domains.len()],
                    };
                    let t = Instant::now();
                    let reply = ask(&mut stream, &mut buf, &format!("{zone} {domain}"));
                    mine.push(t.elapsed());
                    let expected = match zone {
                        "nosuchzone" => "PERM ",
                        _ => "OK secure match=mx.common.signed",
                    };
                    assert!(reply.starts_with(expected), "{domain}: {reply}");
                }
                latencies.lock().unwrap().extend(mine);
            });
        }
    });
    let elapsed = start.elapsed();
    let mut l = latencies.into_inner().unwrap();
    l.sort();
    let at = |q: f64| l[((l.len() as f64 * q) as usize).min(l.len() - 1)];
    Figures { rate: l.len() as f64 / elapsed.as_secs_f64(), p50: at(0.5), p99: at(0.99), count: l.len() }
}

fn ask(stream: &mut TcpStream, buf: &mut Vec<u8>, request: &str) -> String {
    stream.write_all(&encode(request.as_bytes())).unwrap();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((payload, used)) = decode(buf, 100_000).unwrap() {
            let reply = String::from_utf8_lossy(payload).into_owned();
            buf.drain(..used);
            return reply;
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}
