//! This crate's socketmap server against postfix-mta-sts-resolver (PyPI),
//! each as its own process pinned to core 0, with BIND `named` (a signed
//! zone `bench.` under a local root, on 127.0.0.1:53) and `nginx` (the
//! HTTPS policy hosts, a certificate each from a local CA, 127.0.0.1:443)
//! as the world and the load generator on core 1. The measure the set-up
//! cannot cap is **server CPU time per query** (user + system of the
//! server's process, from `/proc`), beside queries per second and p50/p99.
//! The floor is a do-nothing responder (this program with `--floor`): one
//! thread, one event loop, a fixed reply.
//!
//! - cold: 500 domains the server has not seen, 32 connections at once;
//! - warm: 100 of them again, 8 connections for 3 s (reply reuse as
//!   configured: 1 s by default), then a server with `reply-ttl 0` whose
//!   every warm answer is made afresh.
//!
//! This crate's server answers MTA-STS and DANE with DNSSEC validation
//! (zone `postfix`); `stsonly` leaves TLSA out (DANE `none`), and `plain`
//! also turns DNSSEC off — the incumbent's work. postfix-mta-sts-resolver
//! reads /etc/resolv.conf and the system CA store, so it runs in a private
//! mount namespace (`unshare -m`) where /etc/resolv.conf names 127.0.0.1,
//! with SSL_CERT_FILE set to the local CA.
//!
//! Needs root, `taskset`, `unshare`, `named` and `dnssec-signzone`,
//! `nginx`, `mta-sts-daemon` on PATH, and the release build of the
//! program (`target/release/smtp-tls-policy`, `cargo build --release -p
//! smtp-tls-policy-cli`): `scripts/compare-postfix-mta-sts-resolver`
//! installs what is missing, builds it and runs `cargo bench --bench
//! postfix_compare`. Without them it says so and exits successfully (so
//! that `cargo bench` still runs everything else).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use smtp_tls_policy::postfix::netstring::{decode, encode};

#[path = "../examples/support/mod.rs"]
mod support;

use support::bind::{BENCH_DOMAINS, BindWorld};
use support::https::{Pki, pem};

const COLD: usize = 500;
const WARM: usize = 100;
const COLD_CONNECTIONS: usize = 32;
const WARM_CONNECTIONS: usize = 8;
const WARM_SECONDS: u64 = 3;
const DNS: &str = "127.0.0.1:53";
const OURS: &str = "127.0.0.1:18461";
const FRESH: &str = "127.0.0.1:18462";
const THEIRS: &str = "127.0.0.1:18463";
const FLOOR: &str = "127.0.0.1:18464";
const POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx.common.bench\r\nmax_age: 86400\r\n";

/// Stops its processes when dropped: SIGTERM, so that nginx's master
/// takes its workers along (a SIGKILL would leave them holding port 443).
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        }
        for child in &mut self.0 {
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--floor") {
        floor(args.get(i + 1).map_or(FLOOR, String::as_str).parse().expect("--floor ADDR"));
        return;
    }
    let socketmap = match prerequisites() {
        Ok(path) => path,
        Err(missing) => {
            println!("postfix_compare: skipped ({missing}); scripts/compare-postfix-mta-sts-resolver sets it up");
            return;
        }
    };
    // This process and everything it starts from now on (named, nginx, the
    // load generator's threads) on core 1; the servers on core 0.
    let _ = Command::new("taskset").args(["-p", "-c", "1", &std::process::id().to_string()]).output();
    let runs = [
        "ours (MTA-STS + DANE, DNSSEC)",
        "ours, MTA-STS only, DNSSEC",
        "ours, MTA-STS only, no DNSSEC",
        "postfix-mta-sts-resolver",
    ];
    BENCH_DOMAINS.store(COLD * runs.len(), Ordering::Relaxed);
    let world = BindWorld::start_on(DNS.parse().unwrap());
    let dir = std::env::temp_dir().join(format!("postfix-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pki = Arc::new(Pki::new());
    std::fs::write(dir.join("ca.pem"), pem(&pki.ca_der)).unwrap();
    std::fs::write(dir.join("root.key"), &world.root_anchor).unwrap();
    let mut processes = Processes(Vec::new());
    processes.0.push(start_nginx(&dir, &pki, COLD * runs.len()));

    let zone = |name: &str, extra: &str| {
        format!(
            "[zones.{name}]\ndns = [\"{DNS}\"]\nanchor = \"{}\"\nroots = \"{}\"\ntimeout = \"5s\"\n{extra}",
            dir.join("root.key").display(),
            dir.join("ca.pem").display()
        )
    };
    let config = |listen: &str, reply_ttl: &str| {
        format!(
            "[server]\nlisten = [\"inet:{listen}\"]\nreply-ttl = \"{reply_ttl}\"\n[admin]\nsocket = \"\"\n{}{}{}",
            zone("postfix", ""),
            zone("stsonly", "dane = \"none\"\n"),
            zone("plain", "dane = \"none\"\ndnssec = \"off\"\n")
        )
    };
    std::fs::write(dir.join("ours.toml"), config(OURS, "1s")).unwrap();
    std::fs::write(dir.join("fresh.toml"), config(FRESH, "0")).unwrap();
    let on_core_0 = |program: &Path| {
        let mut c = Command::new("taskset");
        c.args(["-c", "0"]).arg(program);
        c
    };
    let server = |name: &str| {
        on_core_0(&socketmap)
            .arg("--config")
            .arg(dir.join(format!("{name}.toml")))
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
            .spawn()
            .expect("the socketmap server starts")
    };
    let ours = server("ours");
    let fresh = server("fresh");
    let theirs = start_theirs(&dir);
    let floor = on_core_0(&std::env::current_exe().unwrap())
        .args(["--floor", FLOOR])
        .stdout(Stdio::null())
        .spawn()
        .expect("the floor starts");
    let pids = [ours.id(), fresh.id(), theirs.id(), floor.id()];
    processes.0.extend([ours, fresh, theirs, floor]);
    for (addr, log) in [(OURS, "ours.log"), (FRESH, "fresh.log"), (THEIRS, "daemon.log"), (FLOOR, "")] {
        if !wait_for(addr.parse().unwrap()) {
            let log = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
            println!("postfix_compare: {addr} did not start\n{log}");
            return;
        }
    }
    let [ours_pid, fresh_pid, theirs_pid, floor_pid] = pids;

    println!(
        "servers on core 0 (one at a time under load), named + nginx + load on core 1; {COLD} cold domains with \
         {COLD_CONNECTIONS} connections, then {WARM} warm domains with {WARM_CONNECTIONS} connections for {WARM_SECONDS} s\n"
    );
    let per = |cpu: Duration, n: usize| cpu.as_secs_f64() * 1e6 / n.max(1) as f64;
    let measure = |pid: u32, addr: &str, zone: &str, domains: &[String], connections, duration| {
        let before = process_cpu(pid);
        let f = run(addr.parse().unwrap(), zone, domains, connections, duration);
        let cpu = per(process_cpu(pid) - before, f.count);
        (f, cpu)
    };
    let warm_for = Some(Duration::from_secs(WARM_SECONDS));
    let some: Vec<String> = (0..WARM).map(|n| format!("d{n}.bench")).collect();
    let (floor_fig, floor_cpu) = measure(floor_pid, FLOOR, "postfix", &some, WARM_CONNECTIONS, warm_for);
    line("floor: one event loop, a fixed reply", None, &floor_fig, floor_cpu);
    let targets = [
        (ours_pid, OURS, "postfix"),
        (ours_pid, OURS, "stsonly"),
        (ours_pid, OURS, "plain"),
        (theirs_pid, THEIRS, "postfix"),
    ];
    let mut results = Vec::new();
    for (i, ((pid, addr, zone), name)) in targets.iter().zip(runs).enumerate() {
        let domains: Vec<String> = (i * COLD..(i + 1) * COLD).map(|n| format!("d{n}.bench")).collect();
        let cold = measure(*pid, addr, zone, &domains, COLD_CONNECTIONS, None);
        let warm = measure(*pid, addr, zone, &domains[..WARM], WARM_CONNECTIONS, warm_for);
        line(name, Some(&cold), &warm.0, warm.1);
        results.push((cold.1, warm.1));
    }
    // The same warm domains against the server that reuses no reply (its
    // caches made warm first).
    let warmed: Vec<String> = (0..WARM).map(|n| format!("d{n}.bench")).collect();
    let _ = run(FRESH.parse().unwrap(), "postfix", &warmed, COLD_CONNECTIONS, None);
    let (fresh_fig, fresh_cpu) = measure(fresh_pid, FRESH, "postfix", &warmed, WARM_CONNECTIONS, warm_for);
    line("ours (MTA-STS + DANE), reply-ttl 0", None, &fresh_fig, fresh_cpu);

    let (theirs_cold, theirs_warm) = results[3];
    println!();
    for (name, (cold, warm)) in runs.iter().zip(&results).take(3) {
        println!(
            "{name}: CPU per warm query {:.2}× the floor (target ≤ 1.25×), {:.1}× less than the incumbent; CPU per cold domain {:.1}× less (target ≥ 3×; with DNSSEC and DANE ≥ 2×)",
            warm / floor_cpu,
            theirs_warm / warm,
            theirs_cold / cold
        );
    }
    println!(
        "ours (MTA-STS + DANE), every answer fresh: CPU per warm query {:.2}× the floor (target ≤ 2×), {:.1}× less than the incumbent",
        fresh_cpu / floor_cpu,
        theirs_warm / fresh_cpu
    );
    drop(processes);
    drop(world);
    let _ = std::fs::remove_dir_all(&dir);
}

fn line(name: &str, cold: Option<&(Figures, f64)>, warm: &Figures, warm_cpu: f64) {
    let cold = match cold {
        Some((c, cpu)) => format!(
            "cold {:>6.0} domains/s (p50 {:>6.2} ms, p99 {:>7.2} ms) {:>5.0} µs CPU/domain",
            c.rate,
            c.p50.as_secs_f64() * 1e3,
            c.p99.as_secs_f64() * 1e3,
            cpu
        ),
        None => String::new(),
    };
    println!(
        "{name:<36} {cold:<77}   warm {:>7.0} q/s (p50 {:>6.1} µs, p99 {:>6.1} µs) {:>5.1} µs CPU/query",
        warm.rate,
        warm.p50.as_secs_f64() * 1e6,
        warm.p99.as_secs_f64() * 1e6,
        warm_cpu
    );
}

/// The release build of the program, or what is missing.
fn prerequisites() -> Result<PathBuf, String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")));
    if uid != Some(true) {
        return Err("needs root: ports 53 and 443, and a mount namespace".into());
    }
    for program in ["taskset", "unshare", "named", "dnssec-signzone", "nginx", "mta-sts-daemon"] {
        if which(program).is_none() && !Path::new("/usr/sbin").join(program).exists() {
            return Err(format!("{program} not found on PATH"));
        }
    }
    // target/release/deps/postfix_compare-… → target/release/smtp-tls-policy
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let program = exe.parent().and_then(Path::parent).map(|d| d.join("smtp-tls-policy"));
    match program {
        Some(path) if path.exists() => Ok(path),
        _ => Err("target/release/smtp-tls-policy is missing (cargo build --release -p smtp-tls-policy-cli)".into()),
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(program)).find(|p| p.exists())
}

/// nginx on 127.0.0.1:443 with a certificate for each policy host
/// `mta-sts.d<N>.bench` from the local CA, serving the policy.
fn start_nginx(dir: &Path, pki: &Pki, domains: usize) -> Child {
    assert!(
        TcpStream::connect("127.0.0.1:443").is_err(),
        "port 443 is taken (an nginx left over from an earlier run? `pkill nginx`)"
    );
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let mut conf = format!(
        "daemon off;\nworker_processes 1;\npid {0}/nginx.pid;\nerror_log {0}/nginx.err warn;\nevents {{ worker_connections 4096; }}\n\
         http {{\n access_log off;\n client_body_temp_path {0}/body;\n proxy_temp_path {0}/proxy;\n fastcgi_temp_path {0}/fcgi;\n \
         uwsgi_temp_path {0}/uwsgi;\n scgi_temp_path {0}/scgi;\n ssl_protocols TLSv1.2 TLSv1.3;\n",
        dir.display()
    );
    let policy = POLICY.replace("\r\n", "\\r\\n");
    for n in 0..domains {
        let host = format!("mta-sts.d{n}.bench");
        let (chain, key) = pki.server(&host, false);
        let (crt, key_file) = (certs.join(format!("{n}.crt")), certs.join(format!("{n}.key")));
        std::fs::write(&crt, pem(&chain[0])).unwrap();
        let key_pem = pem(key.secret_der())
            .replace("BEGIN CERTIFICATE", "BEGIN PRIVATE KEY")
            .replace("END CERTIFICATE", "END PRIVATE KEY");
        std::fs::write(&key_file, key_pem).unwrap();
        conf += &format!(
            " server {{ listen 127.0.0.1:443 ssl; server_name {host}; ssl_certificate {}; ssl_certificate_key {};\n  \
             location = /.well-known/mta-sts.txt {{ default_type text/plain; return 200 \"{policy}\"; }} }}\n",
            crt.display(),
            key_file.display()
        );
    }
    conf += "}\n";
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let nginx = Command::new("nginx")
        .arg("-e")
        .arg(dir.join("nginx.err"))
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("nginx.log")).unwrap())
        .spawn()
        .expect("nginx starts");
    assert!(wait_for("127.0.0.1:443".parse().unwrap()), "nginx did not start: {}", dir.join("nginx.err").display());
    nginx
}

fn start_theirs(dir: &Path) -> Child {
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\noptions timeout:2 attempts:1\n").unwrap();
    let config = dir.join("daemon.yml");
    let (host, port) = THEIRS.split_once(':').unwrap();
    std::fs::write(
        &config,
        format!(
            "host: {host}\nport: {port}\nreuse_port: true\nshutdown_timeout: 1\ncache:\n  type: internal\n  options:\n    cache_size: 10000\ndefault_zone:\n  strict_testing: false\n  timeout: 4\n"
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    Command::new("taskset")
        .args(["-c", "0", "unshare", "-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount --bind {} /etc/resolv.conf && exec mta-sts-daemon -v warn -c {}",
            resolv.display(),
            config.display()
        ))
        .env("SSL_CERT_FILE", dir.join("ca.pem"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("unshare")
}

fn wait_for(addr: SocketAddr) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
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

/// The CPU time of a process (all its threads).
fn process_cpu(pid: u32) -> Duration {
    stat_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

/// The floor: one thread, one event loop, a fixed reply read from no cache
/// and no lookup — what one request per read costs on this kernel with the
/// same runtime as the server, to which the servers' CPU is compared.
fn floor(addr: SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let reply = encode(b"OK secure match=mx.common.bench servername=hostname");
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
}

/// Queries `domains` over `connections` connections: once each (cold), or
/// round and round for `duration` (warm).
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
                    assert!(reply.starts_with("OK secure match=mx.common.bench"), "{addr} {domain}: {reply}");
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
