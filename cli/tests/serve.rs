//! `smtp-tls-policy serve` as an operator runs it, against the local world
//! (signed DNS, the HTTPS policy host behind an HTTP CONNECT proxy, the
//! local CA as roots): real Postfix `postmap -q` queries, every admin
//! command, SIGHUP reloads (a good one keeps the cache, a bad one is
//! refused with its line and column and changes nothing), `/metrics`
//! through Prometheus's `promtool`, the status and check pages in headless
//! Chromium (with a screenshot), SIGTERM saving the snapshot.

#[path = "../../examples/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::dns::Zones;
use support::https::proxy;
use support::world::{LocalWorld, policy};

const ZONE: &str = "mx.common A 127.0.0.1\n_tcp.mx.common TXT \"no TLSA below\"\n\
                    c MX 10 mx.common\n_mta-sts.c TXT \"v=STSv1; id=1;\"\nmta-sts.c A 127.0.0.1\n\
                    _smtp._tls.c TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@c.signed\"\n";

fn program() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_smtp-tls-policy"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running server and its files.
struct Server {
    child: Child,
    dir: PathBuf,
    config: PathBuf,
    admin: PathBuf,
    socketmap: SocketAddr,
    web: SocketAddr,
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        self.run_with(args, None)
    }

    fn run_with(&self, args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
        let mut child = Command::new(program())
            .args(args)
            .arg("--admin")
            .arg(&self.admin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or_default()).unwrap();
        drop(input);
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits until the log has `text` (a reload is done), at most 10 s.
    fn wait_log(&self, text: &str, times: usize) {
        let until = Instant::now() + Duration::from_secs(10);
        while self.log().matches(text).count() < times {
            assert!(Instant::now() < until, "no {text:?} in the log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn http_get(&self, path: &str) -> String {
        self.http_get_as(path, "localhost")
    }

    fn http_get_as(&self, path: &str, host: &str) -> String {
        let mut s = TcpStream::connect(self.web).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_text(
    dir: &Path,
    world: &LocalWorld,
    proxy: SocketAddr,
    socketmap: SocketAddr,
    web: SocketAddr,
    dane: &str,
) -> String {
    format!(
        "[server]\nlisten = [\"inet:{socketmap}\"]\nsnapshots = \"{dir}/snap\"\n\n\
         [zones.postfix]\ndane = \"{dane}\"\ndns = [\"{dns}\"]\nanchor = \"{dir}/root.key\"\nroots = \"{dir}/ca.pem\"\n\
         proxy = \"http://{proxy}\"\ntimeout = \"3s\"\n\n\
         [admin]\nsocket = \"{dir}/admin.sock\"\n\n[web]\nlisten = \"{web}\"\n",
        dir = dir.display(),
        dns = world.dns.addr,
    )
}

/// A fresh directory with the world's root key and CA, and a
/// configuration for it: the directory, the configuration file, the
/// socketmap and web addresses.
fn prepare(world: &LocalWorld, name: &str) -> (PathBuf, PathBuf, SocketAddr, SocketAddr) {
    let dir = std::env::temp_dir().join(format!("smtp-tls-policy-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("root.key"), &world.dns.root_anchor).unwrap();
    let ca = world.pki.ca_params.self_signed(&world.pki.ca_key).unwrap().pem();
    std::fs::write(dir.join("ca.pem"), ca).unwrap();
    let tunnel = proxy(world.https.addr, false);
    let socketmap: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let web: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.join("config.toml");
    std::fs::write(&config, config_text(&dir, world, tunnel, socketmap, web, "opportunistic")).unwrap();
    (dir, config, socketmap, web)
}

/// `command` (the program, or a launcher followed by it) with `--config
/// CONFIG serve`, its stderr in `serve.log`.
fn launch(mut command: Command, dir: PathBuf, config: PathBuf, socketmap: SocketAddr, web: SocketAddr) -> Server {
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let child = command.arg("--config").arg(&config).arg("serve").stdout(Stdio::null()).stderr(log).spawn().unwrap();
    Server { child, admin: dir.join("admin.sock"), config, dir, socketmap, web }
}

fn start(world: &LocalWorld, name: &str) -> Server {
    start_with(world, name, "")
}

/// [`start`] with more configuration (whole tables) at the end.
fn start_with(world: &LocalWorld, name: &str, extra: &str) -> Server {
    let (dir, config, socketmap, web) = prepare(world, name);
    let extra = extra.replace("{dir}", &dir.display().to_string());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&extra);
    std::fs::write(&config, text).unwrap();
    let server = launch(Command::new(program()), dir, config, socketmap, web);
    let until = Instant::now() + Duration::from_secs(15);
    while std::os::unix::net::UnixStream::connect(&server.admin).is_err() || TcpStream::connect(web).is_err() {
        assert!(Instant::now() < until, "the server did not start:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn world() -> LocalWorld {
    let world = LocalWorld::start(&Zones { signed: ZONE.into(), ..Zones::default() });
    world.https.set("mta-sts.c.signed", policy("enforce", "mx.common.signed"));
    world
}

/// The reply Postfix gets, through `postmap -q` (or our own netstring
/// client without Postfix).
fn postfix_query(server: &Server, domain: &str) -> String {
    match support::postmap() {
        Some(postmap) => {
            let map = format!("socketmap:inet:{}:postfix", server.socketmap);
            let out = Command::new(postmap).args(["-q", domain, &map]).output().unwrap();
            assert!(out.status.success(), "postmap -q {domain}: {out:?}\n{}", server.log());
            String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
        }
        None => {
            let mut s = TcpStream::connect(server.socketmap).unwrap();
            let request = format!("postfix {domain}");
            write!(s, "{}:{request},", request.len()).unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let (_, rest) = text.split_once(':').unwrap();
            rest.trim_end_matches(',').trim_start_matches("OK ").to_owned()
        }
    }
}

#[test]
fn postfix_queries_admin_commands_reloads_metrics_and_shutdown() {
    let world = world();
    let mut server = start(&world, "main");

    // Postfix's view.
    let reply = postfix_query(&server, "c.signed");
    assert!(reply.starts_with("secure") && reply.contains("mx.common.signed"), "{reply}\n{}", server.log());
    assert_eq!(world.https.requests("mta-sts.c.signed"), 1);

    // query: the same reply, and why.
    let (code, out, err) = server.run(&["query", "c.signed", "--map", "postfix"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().next(), Some(format!("OK {reply}").as_str()), "{out}");
    assert!(out.contains("MTA-STS: policy id 1, mode enforce"), "{out}");
    assert!(
        out.contains("host mx.common.signed: TLS 1.2+, WebPKI certificate for mx.common.signed (MTA-STS enforce)"),
        "{out}"
    );
    let (code, _, err) = server.run(&["query", "c.signed", "--map", "nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("no zone \"nosuch\" (zones: postfix)"), "{err}");

    // cache list / show / export / purge / import.
    let (code, list, _) = server.run(&["cache", "list"]);
    assert_eq!(code, 0);
    assert!(list.contains("postfix\tc.signed\tid=1\tmode=enforce\tmx=1\texpires "), "{list}");
    let (_, show, _) = server.run(&["cache", "show", "c.signed"]);
    assert!(show.contains("  mx: mx.common.signed"), "{show}");
    let export = Command::new(program()).args(["cache", "export", "--admin"]).arg(&server.admin).output().unwrap();
    assert!(export.status.success() && !export.stdout.is_empty(), "{export:?}");
    let (code, purged, _) = server.run(&["cache", "purge", "c.signed"]);
    assert_eq!(code, 0);
    assert!(purged.contains("c.signed purged from postfix"), "{purged}");
    assert!(!server.run(&["cache", "list"]).1.contains("c.signed"));
    let (code, _, err) = server.run(&["cache", "purge", "c.signed"]);
    assert_eq!(code, 1);
    assert!(err.contains("c.signed is not in the cache of postfix"), "{err}");
    let (code, imported, err) = server.run_with(&["cache", "import", "--map", "postfix"], Some(&export.stdout));
    assert_eq!(code, 0, "{err}");
    assert!(imported.starts_with("1 policies imported into postfix, 0 left out"), "{imported}");
    assert!(server.run(&["cache", "list"]).1.contains("c.signed\tid=1"));
    // No fetch: the policy came back from the snapshot.
    assert_eq!(postfix_query(&server, "c.signed"), reply);
    assert_eq!(world.https.requests("mta-sts.c.signed"), 1);
    let (code, _, err) = server.run(&["report", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("TLS-RPT is not configured"), "{err}");

    // SIGHUP with a changed zone option: the cache stays.
    let text = std::fs::read_to_string(&server.config).unwrap();
    std::fs::write(&server.config, text.replace("dane = \"opportunistic\"", "dane = \"none\"")).unwrap();
    server.signal("-HUP");
    server.wait_log("configuration reloaded; cached policies kept", 1);
    // Only a zone changed (the tables after it moved in the file).
    assert!(!server.log().contains("restart the server to apply it"), "{}", server.log());
    assert!(server.run(&["cache", "list"]).1.contains("c.signed\tid=1"));
    assert_eq!(postfix_query(&server, "c.signed"), reply);
    assert_eq!(world.https.requests("mta-sts.c.signed"), 1, "a reload must not refetch");

    // SIGHUP with an error: refused with line and column, nothing changes.
    std::fs::write(&server.config, text.replace("dane = \"opportunistic\"", "dane = \"sometimes\"")).unwrap();
    server.signal("-HUP");
    server.wait_log("configuration not reloaded, the running one stays", 1);
    let config = server.config.display().to_string();
    assert!(server.log().contains(&format!("{config}:6:8: unknown variant `sometimes`")), "{}", server.log());
    assert_eq!(postfix_query(&server, "c.signed"), reply);
    let (code, _, err) = Command::new(program())
        .args(["--config", &config, "config", "check"])
        .output()
        .map(|o| (o.status.code().unwrap_or(-1), (), String::from_utf8_lossy(&o.stderr).into_owned()))
        .unwrap();
    assert_eq!(code, 2);
    assert!(
        err.contains(":6:8: unknown variant `sometimes`, expected one of `none`, `opportunistic`, `mandatory`"),
        "{err}"
    );
    std::fs::write(&server.config, &text).unwrap();

    // A name of someone else's pointed at 127.0.0.1 (DNS rebinding) gets
    // nothing; the address and localhost do.
    for host in ["rebind.attacker.example", "rebind.attacker.example:8462"] {
        let refused = server.http_get_as("/", host);
        assert!(refused.starts_with("HTTP/1.0 421") || refused.starts_with("HTTP/1.1 421"), "{refused}");
        assert!(!refused.contains("c.signed"), "{refused}");
    }
    for host in [server.web.to_string(), "127.0.0.1".into(), "LOCALHOST:1".into(), "[::1]:8462".into()] {
        assert!(server.http_get_as("/", &host).contains("c.signed"), "{host}");
    }

    // Metrics: what happened, in a format Prometheus's own linter accepts.
    let response = server.http_get("/metrics");
    let (head, metrics) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    // Four Postfix queries: fresh answers, or kept replies within the
    // reply TTL (which of the two depends on timing).
    let ok: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("smtp_tls_policy_socketmap_queries_total{zone=\"postfix\",reply=\"OK\","))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(ok, 4, "{metrics}");
    for line in [
        "smtp_tls_policy_socketmap_queries_total{zone=\"postfix\",reply=\"OK\",reused=\"no\"}",
        "smtp_tls_policy_socketmap_connections_total{event=\"accepted\"}",
        "smtp_tls_policy_cache_entries{zone=\"postfix\"} 1",
        "smtp_tls_policy_sts_plans_total{outcome=\"applied\"}",
        "smtp_tls_policy_tlsa_outcomes_total{outcome=\"webpki\"}",
        "smtp_tls_policy_config_reloads_total{outcome=\"ok\"} 1",
        "smtp_tls_policy_config_reloads_total{outcome=\"refused\"} 1",
        "smtp_tls_policy_socketmap_query_duration_seconds_count",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    if let Some(promtool) = support::tool("promtool", "SMTP_TLS_POLICY_REQUIRE_PROMETHEUS") {
        let mut child = Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(metrics.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "promtool check metrics: {out:?}\n{metrics}");
    }

    // SIGTERM: the snapshot is saved, the admin socket removed, exit 0.
    server.signal("-TERM");
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < until, "no exit after SIGTERM:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}\n{}", server.log());
    assert!(server.dir.join("snap/postfix.snapshot").exists());
    assert!(!server.admin.exists());
    let _ = std::fs::remove_dir_all(&server.dir);
}

/// Headless Chromium, as the machine notes start it (no sandbox as root,
/// no background networking on a closed network).
fn chromium(browser: &Path, profile: &Path, args: &[&str]) -> std::process::Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_pages_render_in_chromium() {
    let Some(browser) = support::tool("chromium", "SMTP_TLS_POLICY_REQUIRE_CHROMIUM") else { return };
    let world = world();
    let server = start(&world, "web");
    assert!(postfix_query(&server, "c.signed").starts_with("secure"));
    let profile = server.dir.join("chromium");
    let base = format!("http://{}", server.web);

    // The status page: the cache.
    let out = chromium(&browser, &profile, &["--dump-dom", &format!("{base}/")]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("<h2>Cache (1 domains)</h2>") && dom.contains("c.signed\tid=1\tmode=enforce"),
        "{dom}\n{out:?}"
    );

    // The check page, through the zone's DNS, roots and proxy.
    let check = format!("{base}/check?domain=c.signed");
    let out = chromium(&browser, &profile, &["--dump-dom", &check]);
    let dom = String::from_utf8_lossy(&out.stdout);
    for text in [
        "<h1>Check of c.signed</h1>",
        "<code>v=STSv1; id=1;</code>",
        "Policy https://mta-sts.c.signed/.well-known/mta-sts.txt",
        "mode: enforce",
        "<td>mx.common.signed</td><td>yes</td>",
        "TLS 1.2+, WebPKI certificate for mx.common.signed (MTA-STS enforce)",
        "<code>v=TLSRPTv1; rua=mailto:tlsrpt@c.signed</code>",
        "No problems found.",
    ] {
        assert!(dom.contains(text), "{text:?} not in\n{dom}");
    }
    // Hostile input is escaped, never markup.
    let out =
        chromium(&browser, &profile, &["--dump-dom", &format!("{base}/check?domain=%3Cscript%3Ex%3C%2Fscript%3E")]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("value=\"&lt;script&gt;x&lt;/script&gt;\"") && !dom.contains("<script>"), "{dom}");

    // The screenshot the README shows.
    let shot = server.dir.join("check-page.png");
    let out =
        chromium(&browser, &profile, &["--window-size=1100,1000", &format!("--screenshot={}", shot.display()), &check]);
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "{} bytes", png.len());
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("check-page.png");
    std::fs::copy(&shot, &keep).unwrap();
    eprintln!("screenshot: {}", keep.display());
    let _ = std::fs::remove_dir_all(&server.dir);
}

/// systemd's own `systemd-socket-activate` hands the socketmap socket over
/// (the configuration lists the same address, which is then not bound
/// again); readiness, reload and stop reach `NOTIFY_SOCKET`.
#[test]
fn socket_activation_and_readiness_notification() {
    let Some(activate) = support::tool("systemd-socket-activate", "SMTP_TLS_POLICY_REQUIRE_SYSTEMD") else { return };
    let world = world();
    let (dir, config, socketmap, web) = prepare(&world, "activate");
    let notify = std::os::unix::net::UnixDatagram::bind(dir.join("notify")).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut command = Command::new(activate);
    command
        .arg("--listen")
        .arg(socketmap.to_string())
        // It passes on only the environment it is told to.
        .arg(format!("--setenv=NOTIFY_SOCKET={}", dir.join("notify").display()))
        .arg(program());
    let server = launch(command, dir.clone(), config, socketmap, web);
    // The first connection starts the program, which answers it.
    let until = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(socketmap).is_err() {
        assert!(Instant::now() < until, "systemd-socket-activate did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let reply = postfix_query(&server, "c.signed");
    assert!(reply.starts_with("secure"), "{reply}\n{}", server.log());
    let mut buf = [0u8; 512];
    let n = notify.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1\n", "{}", server.log());
    assert!(server.log().contains(&format!("addrs=[{socketmap}]")), "{}", server.log());
    server.signal("-HUP");
    let n = notify.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("RELOADING=1"), "{:?}", &buf[..n]);
    let n = notify.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1\n");
    server.signal("-TERM");
    let n = notify.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1\n");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// TLS-RPT in the server: Postfix's datagrams (libtlsrpt's format) are
/// counted into the durable store, `report list` shows the open window,
/// `report send-now` runs a pass (nothing is due before the day closes),
/// the metrics count valid and invalid datagrams.
#[test]
fn tlsrpt_datagrams_are_collected_and_reported_on() {
    let world = world();
    let server = start_with(
        &world,
        "tlsrpt",
        "\n[tlsrpt]\nsocket = \"{dir}/tlsrpt.sock\"\nstore = \"{dir}/tlsrpt\"\norganization = \"Example Mail\"\n\
         contact = \"mailto:postmaster@mta.example\"\nfrom = \"tlsrpt@mta.example\"\n\n[log]\nformat = \"json\"\n",
    );
    let socket = server.dir.join("tlsrpt.sock");
    let until = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < until, "no TLS-RPT socket:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let success = r#"{"dpv": "1","d": "c.signed","pr": "v=TLSRPTv1; rua=mailto:tlsrpt@c.signed","policies":[{"policy-type":2,"policy-domain": "c.signed","policy-string":["version: STSv1","mode: enforce","mx: mx.common.signed","max_age: 86400"],"mx-host":["mx.common.signed"],"t":0,"f":0}]}"#;
    let sender = std::os::unix::net::UnixDatagram::unbound().unwrap();
    for d in [success.as_bytes(), success.as_bytes(), b"not json"] {
        sender.send_to(d, &socket).unwrap();
    }
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = server.http_get("/metrics");
        if metrics.contains("smtp_tls_policy_tlsrpt_datagrams_total{state=\"valid\"} 2")
            && metrics.contains("smtp_tls_policy_tlsrpt_datagrams_total{state=\"invalid\"} 1")
        {
            break;
        }
        assert!(Instant::now() < until, "{metrics}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, list, err) = server.run(&["report", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(list.starts_with("window ") && list.contains(" +86400s: due "), "{list}");
    let (code, pass, err) = server.run(&["report", "send-now"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(pass, "nothing due\n");
    assert!(server.dir.join("tlsrpt/journal").exists());
    // `[log] format = "json"`: one JSON object per line.
    let log = server.log();
    assert!(log.contains("TLS-RPT datagrams collected"), "{log}");
    for line in log.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(event["fields"]["message"].is_string(), "{line}");
    }
    let _ = std::fs::remove_dir_all(&server.dir);
}

/// `check --map NAME`: the checker sees the domain exactly as the zone
/// does — its DNS and anchor, its roots, its proxy (the policy host is
/// reachable only through it here).
#[test]
fn check_through_a_zone_of_the_configuration() {
    let world = world();
    let (dir, config, _, _) = prepare(&world, "check");
    let out = Command::new(program())
        .arg("--config")
        .arg(&config)
        .args(["check", "c.signed", "--map", "postfix", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["mta_sts"]["mode"], "enforce", "{report:#}");
    assert_eq!(report["mx"]["dnssec"], "secure", "{report:#}");
    assert_eq!(report["mx"]["hosts"][0]["allowed_by_policy"], true, "{report:#}");
    assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
    let out = Command::new(program())
        .arg("--config")
        .arg(&config)
        .args(["check", "c.signed", "--map", "nosuch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--map nosuch: no such zone in"), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
