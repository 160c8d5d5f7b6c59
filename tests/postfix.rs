//! The Postfix socketmap server against the local world (signed DNS,
//! HTTPS policy hosts): the protocol, every kind of reply, limits,
//! concurrency, the UNIX-domain socket, snapshots — and the real Postfix
//! client, `postmap -q … socketmap:…`, when Postfix is installed (`.ci/run`
//! installs Debian's `postfix` and sets SMTP_TLS_POLICY_REQUIRE_POSTFIX=1,
//! which makes a missing `postmap` a failure).
#![cfg(feature = "resolver")]

#[path = "../examples/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use smtp_tls_policy::engine::Options;
use smtp_tls_policy::postfix::netstring::{decode, encode};
use smtp_tls_policy::postfix::server::{ServerConfig, SocketmapServer, Zone};
use smtp_tls_policy::postfix::{Level, ZoneOptions};
use smtp_tls_policy::resolver::blocking::PolicyResolver;
use support::dns::Zones;
use support::https::response;
use support::world::{LocalWorld, controls, policy};

const TLSA: &str = "3 1 1 2bb9e4c1a6e2b5d2f0e1b7a1c9d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6";

fn zones() -> Zones {
    let signed = format!(
        r#"
mx.common A 127.0.0.1
_tcp.mx.common TXT "no TLSA below"
enforce MX 10 mx.common
_mta-sts.enforce TXT "v=STSv1; id=1;"
wild MX 10 mx.common
_mta-sts.wild TXT "v=STSv1; id=1;"
testing MX 10 mx.common
_mta-sts.testing TXT "v=STSv1; id=1;"
fetchfail MX 10 mx.common
_mta-sts.fetchfail TXT "v=STSv1; id=1;"
snap MX 10 mx.common
_mta-sts.snap TXT "v=STSv1; id=1;"
nopolicy MX 10 mx.common
dane MX 10 mx.dane
mx.dane A 127.0.0.1
_25._tcp.mx.dane TLSA {TLSA}
mixed MX 10 mx.dane
mixed MX 20 mx.common
danests MX 10 mx.dane
danests MX 20 mx.common
_mta-sts.danests TXT "v=STSv1; id=1;"
tlsafail MX 10 mx.servfail
mx.servfail A 127.0.0.1
forged MX 10 _mx.attacker.example.
_mta-sts.forged TXT "v=STSv1; id=1;"
forgedxn MX 10 mx-.attacker.example.
_mta-sts.forgedxn TXT "v=STSv1; id=1;"
forgedtesting MX 10 _mx.attacker.example.
_mta-sts.forgedtesting TXT "v=STSv1; id=1;"
forgednopolicy MX 10 _mx.attacker.example.
braces MX 10 mx.common
_mta-sts.braces TXT "v=STSv1; id=1;"
keyword MX 10 mx.common
_mta-sts.keyword TXT "v=STSv1; id=1;"
"#
    );
    let broken = "b MX 10 mx.b\nmx.b A 127.0.0.1\n".into();
    Zones { signed, broken, ..Zones::default() }
}

type World = LocalWorld;

fn world() -> World {
    let w = LocalWorld::start(&zones());
    for d in ["enforce", "snap", "danests", "forged", "forgedxn"] {
        w.https.set(&format!("mta-sts.{d}.signed"), policy("enforce", "mx.common.signed"));
    }
    w.https.set("mta-sts.wild.signed", policy("enforce", "*.common.signed"));
    w.https.set("mta-sts.testing.signed", policy("testing", "mx.common.signed"));
    w.https.set("mta-sts.forgedtesting.signed", policy("testing", "mx.common.signed"));
    // Policy text that would close Postfix's `{ … }` quoting and add a `match=`.
    w.https.set(
        "mta-sts.braces.signed",
        support::https::ok(
            b"version: STSv1\r\nmode: enforce\r\nmx: mx.common.signed\r\nmax_age: 86400\r\n\
              x-evil: } match=attacker.example {\r\n",
        ),
    );
    // `hostname` is a keyword in Postfix's match= list.
    w.https.set(
        "mta-sts.keyword.signed",
        support::https::ok(
            b"version: STSv1\r\nmode: enforce\r\nmx: hostname\r\nmx: mx.common.signed\r\nmax_age: 86400\r\n",
        ),
    );
    w.https.set("mta-sts.fetchfail.signed", response("404 Not Found", &[("Content-Length", "0")], b""));
    w
}

fn zone(w: &World, strict: bool, options: ZoneOptions) -> Zone {
    let config = w.config();
    let config = config.controls(controls().with_options(Options::default().testing_as_enforce(strict)));
    Zone { resolver: PolicyResolver::new(config).unwrap(), options }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn server(w: &World, dir: &Path) -> SocketmapServer {
    let config = ServerConfig::default()
        .inet("127.0.0.1:0".parse().unwrap())
        .unix(dir.join("policy.sock"))
        .snapshot_dir(dir)
        .zone("postfix", zone(w, false, ZoneOptions::default()))
        .zone("strict", zone(w, true, ZoneOptions::default()))
        .zone("rpt", zone(w, false, ZoneOptions::default().tlsrpt(true)))
        .zone("rptlevel", zone(w, false, ZoneOptions::default().tlsrpt(true).unavailable(Some(Level::Encrypt))));
    SocketmapServer::start(config).unwrap()
}

/// One request on a connection, its reply.
fn ask(stream: &mut (impl Read + Write), request: &str) -> String {
    stream.write_all(&encode(request.as_bytes())).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((payload, _)) = decode(&buf, 200_000).unwrap() {
            return String::from_utf8(payload.to_vec()).unwrap();
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before a reply to {request:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn query(addr: SocketAddr, request: &str) -> String {
    ask(&mut TcpStream::connect(addr).unwrap(), request)
}

#[test]
fn every_kind_of_reply() {
    let w = world();
    let dir = temp_dir("kinds");
    let s = server(&w, &dir);
    let a = s.local_addrs()[0];
    let cases = [
        ("postfix enforce.signed", "OK secure match=mx.common.signed servername=hostname"),
        // RFC 8461 §4.1's one-label wildcard, widened for Postfix < 3.10.
        ("postfix wild.signed", "OK secure match=.common.signed servername=hostname"),
        ("postfix Enforce.Signed.", "OK secure match=mx.common.signed servername=hostname"),
        ("postfix dane.signed", "OK dane-only"),
        ("postfix mixed.signed", "OK dane"),
        ("postfix danests.signed", "OK dane-only"),
        ("postfix testing.signed", "NOTFOUND "),
        ("strict testing.signed", "OK secure match=mx.common.signed servername=hostname"),
        ("postfix nopolicy.signed", "NOTFOUND "),
        ("postfix fetchfail.signed", "NOTFOUND "),
        ("postfix nosuchdomain.signed", "NOTFOUND "),
        ("postfix [192.0.2.1]:25", "NOTFOUND "),
        ("postfix example.com:587", "NOTFOUND "),
        ("nosuchzone enforce.signed", "PERM unknown map name \"nosuchzone\": configure it as a zone"),
    ];
    for (request, expected) in cases {
        assert_eq!(query(a, request), expected, "{request}");
    }
    // Deferral: every MX host excluded (TLSA lookup failed), or a bogus MX RRset.
    let tlsafail = query(a, "postfix tlsafail.signed");
    assert!(tlsafail.starts_with("TEMP no usable MX host for tlsafail.signed"), "{tlsafail}");
    let bogus = query(a, "postfix b.broken");
    assert!(bogus.starts_with("TEMP MX lookup of b.broken: DNSSEC validation failed"), "{bogus}");
    s.shutdown();
}

#[test]
fn postfix_3_10_tlsrpt_attributes() {
    let w = world();
    let dir = temp_dir("rpt");
    let s = server(&w, &dir);
    let a = s.local_addrs()[0];
    assert_eq!(
        query(a, "rpt wild.signed"),
        "OK secure match=.common.signed servername=hostname policy_type=sts policy_domain=wild.signed \
         mx_host_pattern=*.common.signed { policy_string = version: STSv1 } { policy_string = mode: enforce } \
         { policy_string = mx: *.common.signed } { policy_string = max_age: 86400 }"
    );
    assert_eq!(
        query(a, "rpt dane.signed"),
        format!("OK dane-only policy_type=tlsa policy_domain=dane.signed {{ policy_string = {TLSA} }}")
    );
    // A policy that could not be had: never a level weaker than main.cf's
    // (`OK may` would override `encrypt` or `dane`), unless the zone names one.
    assert_eq!(query(a, "rpt fetchfail.signed"), "NOTFOUND ");
    assert_eq!(
        query(a, "rptlevel fetchfail.signed"),
        "OK encrypt policy_type=sts policy_domain=fetchfail.signed policy_failure=sts-policy-fetch-error"
    );
    assert_eq!(query(a, "rpt nopolicy.signed"), "NOTFOUND ");
    // Policy text never becomes attributes: a line that cannot be quoted
    // leaves every policy_string out.
    let braces = query(a, "rpt braces.signed");
    assert_eq!(
        braces,
        "OK secure match=mx.common.signed servername=hostname policy_type=sts policy_domain=braces.signed \
         mx_host_pattern=mx.common.signed"
    );
    s.shutdown();
}

#[test]
fn a_forged_mx_answer_never_turns_a_live_policy_off() {
    let w = world();
    let dir = temp_dir("forged");
    let s = server(&w, &dir);
    let a = s.local_addrs()[0];
    // MX names the crate refuses (Postfix accepts `_`): the enforced policy
    // still applies to whatever Postfix's own MX lookup finds.
    for d in ["forged", "forgedxn"] {
        assert_eq!(query(a, &format!("postfix {d}.signed")), "OK secure match=mx.common.signed servername=hostname");
    }
    assert_eq!(query(a, "strict forgedtesting.signed"), "OK secure match=mx.common.signed servername=hostname");
    // Without an enforced policy: try again later (a malformed answer may be forged).
    for request in ["postfix forgedtesting.signed", "postfix forgednopolicy.signed"] {
        let reply = query(a, request);
        assert!(reply.starts_with("TEMP MX lookup of forged"), "{request}: {reply}");
    }
    // Postfix's match= keywords are never written as patterns.
    assert_eq!(query(a, "postfix keyword.signed"), "OK secure match=mx.common.signed servername=hostname");
    s.shutdown();
}

#[test]
fn malformed_and_oversized_requests_get_perm_and_the_connection_closes() {
    let w = world();
    let dir = temp_dir("perm");
    let s = server(&w, &dir);
    let a = s.local_addrs()[0];
    for raw in [&b"5:hello!"[..], b"x:", b"05:hello,", b"99999:", b"2000:"] {
        let mut c = TcpStream::connect(a).unwrap();
        c.write_all(raw).unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).unwrap();
        let (reply, _) = decode(&out, 1000).unwrap().unwrap();
        let reply = String::from_utf8_lossy(reply);
        assert!(reply.starts_with("PERM "), "{raw:?}: {reply}");
    }
    // A request without a key.
    assert!(query(a, "postfix").starts_with("PERM "));
    s.shutdown();
}

#[test]
fn many_connections_are_served_at_once_and_requests_pipeline() {
    let w = world();
    let dir = temp_dir("many");
    let s = server(&w, &dir);
    let a = s.local_addrs()[0];
    let threads: Vec<_> = (0..100)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(a).unwrap();
                for _ in 0..20 {
                    let d = if i % 2 == 0 { "enforce.signed" } else { "dane.signed" };
                    let reply = ask(&mut c, &format!("postfix {d}"));
                    assert!(reply.starts_with("OK "), "{reply}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Two requests in one write: two replies, in order.
    let mut c = TcpStream::connect(a).unwrap();
    c.write_all(&[encode(b"postfix dane.signed"), encode(b"postfix nopolicy.signed")].concat()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while decode(&buf, 1000).unwrap().is_none_or(|(_, n)| decode(&buf[n..], 1000).unwrap().is_none()) {
        let n = c.read(&mut chunk).unwrap();
        buf.extend_from_slice(&chunk[..n]);
    }
    let (first, n) = decode(&buf, 1000).unwrap().unwrap();
    assert_eq!(first, b"OK dane-only");
    assert_eq!(decode(&buf[n..], 1000).unwrap().unwrap().0, b"NOTFOUND ");
    assert_eq!(w.https.requests("mta-sts.enforce.signed"), 1);
    s.shutdown();
}

#[test]
fn replies_are_reused_for_the_reply_ttl_only() {
    let w = world();
    for (ttl, lookups) in [(Duration::from_secs(60), 1), (Duration::ZERO, 3)] {
        let resolver_zone = zone(&w, false, ZoneOptions::default());
        let cache = resolver_zone.resolver.clone();
        let config =
            ServerConfig::default().inet("127.0.0.1:0".parse().unwrap()).reply_ttl(ttl).zone("postfix", resolver_zone);
        let s = SocketmapServer::start(config).unwrap();
        let mut c = TcpStream::connect(s.local_addrs()[0]).unwrap();
        for _ in 0..3 {
            assert_eq!(ask(&mut c, "postfix enforce.signed"), "OK secure match=mx.common.signed servername=hostname");
        }
        // Each resolve asks the policy cache once (a miss, then hits).
        let stats = cache.cache().stats();
        assert_eq!(stats.hits + stats.misses, lookups, "reply_ttl {ttl:?}");
        s.shutdown();
    }
}

/// What an observer is told: every answer with its zone, kind, reuse and
/// plan, and connection events; `replace_zones` serves the new zones at
/// once and forgets kept replies.
#[test]
fn the_observer_sees_every_answer_and_zones_can_be_replaced() {
    use smtp_tls_policy::postfix::server::{Answered, ConnectionEvent, ReplyKind, ServerObserver};
    use std::sync::{Arc, Mutex};

    /// Zone, reply kind, reused, with a plan.
    type Seen1 = (Option<String>, ReplyKind, bool, bool);
    #[derive(Default)]
    struct Seen {
        answers: Mutex<Vec<Seen1>>,
        events: Mutex<Vec<ConnectionEvent>>,
    }
    impl ServerObserver for Seen {
        fn answered(&self, a: &Answered<'_>) {
            let entry = (a.zone.map(str::to_owned), a.reply, a.reused, a.plan.is_some());
            self.answers.lock().unwrap().push(entry);
        }
        fn connection(&self, event: ConnectionEvent) {
            self.events.lock().unwrap().push(event);
        }
    }

    let w = world();
    let seen = Arc::new(Seen::default());
    let config = ServerConfig::default()
        .inet("127.0.0.1:0".parse().unwrap())
        .reply_ttl(Duration::from_secs(60))
        .observer(Arc::clone(&seen) as Arc<dyn ServerObserver>)
        .zone("postfix", zone(&w, false, ZoneOptions::default()));
    let s = SocketmapServer::start(config).unwrap();
    let a = s.local_addrs()[0];
    let enforce = "OK secure match=mx.common.signed servername=hostname";
    assert_eq!(query(a, "postfix enforce.signed"), enforce);
    assert_eq!(query(a, "postfix enforce.signed"), enforce);
    assert_eq!(query(a, "other enforce.signed"), "PERM unknown map name \"other\": configure it as a zone");
    let mut bad = TcpStream::connect(a).unwrap();
    bad.write_all(b"x:").unwrap();
    let mut rest = Vec::new();
    let _ = bad.read_to_end(&mut rest);
    // The zones change: "other" is served, "postfix" is gone, and the kept
    // reply of "postfix" is not given out any more.
    let mut zones = std::collections::HashMap::new();
    zones.insert("other".to_owned(), zone(&w, true, ZoneOptions::default()));
    s.replace_zones(zones);
    assert_eq!(s.zones().keys().collect::<Vec<_>>(), ["other"]);
    assert_eq!(query(a, "other enforce.signed"), enforce);
    assert!(query(a, "postfix enforce.signed").starts_with("PERM unknown map name \"postfix\""));
    s.shutdown();
    let answers = seen.answers.lock().unwrap().clone();
    let postfix = Some("postfix".to_owned());
    let other = Some("other".to_owned());
    assert_eq!(
        answers,
        [
            (postfix.clone(), ReplyKind::Ok, false, true),
            (postfix, ReplyKind::Ok, true, false),
            (None, ReplyKind::Perm, false, false),
            (other, ReplyKind::Ok, false, true),
            (None, ReplyKind::Perm, false, false),
        ]
    );
    let events = seen.events.lock().unwrap().clone();
    assert_eq!(events.iter().filter(|e| **e == ConnectionEvent::Accepted).count(), 6, "{events:?}");
    assert!(events.contains(&ConnectionEvent::Malformed), "{events:?}");
}

#[test]
fn idle_connections_are_closed() {
    let w = world();
    let dir = temp_dir("idle");
    let config = ServerConfig::default()
        .inet("127.0.0.1:0".parse().unwrap())
        .idle_timeout(Duration::from_millis(200))
        .zone("postfix", zone(&w, false, ZoneOptions::default()));
    let s = SocketmapServer::start(config).unwrap();
    let mut c = TcpStream::connect(s.local_addrs()[0]).unwrap();
    assert_eq!(ask(&mut c, "postfix nopolicy.signed"), "NOTFOUND ");
    std::thread::sleep(Duration::from_millis(600));
    let mut out = Vec::new();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(c.read_to_end(&mut out).unwrap(), 0, "closed by the server");
    drop(dir);
    s.shutdown();
}

/// A client that trickles a request a byte at a time (each byte within the
/// idle timeout), or pipelines requests and never reads a reply, is closed
/// after the request timeout, and its slot serves the next client.
#[test]
fn slow_clients_are_closed_after_the_request_timeout() {
    let w = world();
    let config = ServerConfig::default()
        .inet("127.0.0.1:0".parse().unwrap())
        .idle_timeout(Duration::from_secs(30))
        .request_timeout(Duration::from_millis(400))
        .zone("postfix", zone(&w, false, ZoneOptions::default()));
    let config = config.max_connections(1);
    let s = SocketmapServer::start(config).unwrap();
    let a = s.local_addrs()[0];
    // Trickling: one byte every 100 ms of "23:postfix nopolicy.signed,".
    let mut c = TcpStream::connect(a).unwrap();
    let started = std::time::Instant::now();
    let request = encode(b"postfix nopolicy.signed");
    let mut closed = false;
    for b in &request[..request.len() - 1] {
        if c.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out);
    assert!(closed || out.contains("PERM the request took too long"), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "closed after {:?}", started.elapsed());
    // Pipelining without reading: the replies (13 MB) fill the socket
    // buffers, the server's write times out, the connection is closed —
    // long before the 30 s idle timeout.
    let mut hog = TcpStream::connect(a).unwrap();
    let burst: Vec<u8> = (0..1_000_000).flat_map(|_| encode(b"postfix [192.0.2.1]:25")).collect();
    let _writer = std::thread::spawn(move || {
        let _ = hog.write_all(&burst);
        hog
    });
    // The slot is free again soon: a new client is served.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = query(a, "postfix nopolicy.signed");
        if reply == "NOTFOUND " {
            break;
        }
        assert!(reply.starts_with("TEMP too many connections"), "{reply}");
        assert!(std::time::Instant::now() < deadline, "the pipelining client still holds the only slot");
        std::thread::sleep(Duration::from_millis(100));
    }
    s.shutdown();
}

#[test]
fn the_unix_socket_answers_too() {
    let w = world();
    let dir = temp_dir("unix");
    let s = server(&w, &dir);
    let mut c = std::os::unix::net::UnixStream::connect(dir.join("policy.sock")).unwrap();
    assert_eq!(ask(&mut c, "postfix dane.signed"), "OK dane-only");
    s.shutdown();
    assert!(!dir.join("policy.sock").exists(), "the socket is removed at shutdown");
}

#[test]
fn the_cache_survives_a_restart_through_its_snapshot() {
    let w = world();
    let dir = temp_dir("snap");
    let s = server(&w, &dir);
    let expected = "OK secure match=mx.common.signed servername=hostname";
    assert_eq!(query(s.local_addrs()[0], "postfix snap.signed"), expected);
    assert!(s.shutdown().is_empty(), "snapshots saved");
    assert!(dir.join("postfix.snapshot").exists());
    // The policy host is down now; the restored policy still applies.
    w.https.set("mta-sts.snap.signed", response("503 Down", &[("Content-Length", "0")], b""));
    let s = server(&w, &dir);
    assert_eq!(query(s.local_addrs()[0], "postfix snap.signed"), expected);
    assert_eq!(w.https.requests("mta-sts.snap.signed"), 1);
    s.shutdown();
}

// ------------------------------------------------------- the real Postfix

fn postmap_query(postmap: &Path, key: &str, map: &str) -> (i32, String, String) {
    let out = Command::new(postmap).args(["-q", key, map]).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned(),
        String::from_utf8_lossy(&out.stderr).trim_end().to_owned(),
    )
}

#[test]
fn postmap_queries_the_server_over_tcp_and_unix_sockets() {
    let Some(postmap) = support::postmap() else { return };
    let w = world();
    let dir = temp_dir("postmap");
    let s = server(&w, &dir);
    let port = s.local_addrs()[0].port();
    let inet = format!("socketmap:inet:127.0.0.1:{port}:postfix");
    let unix = format!("socketmap:unix:{}:postfix", dir.join("policy.sock").display());
    for map in [&inet, &unix] {
        let (code, out, err) = postmap_query(&postmap, "enforce.signed", map);
        assert_eq!((code, out.as_str()), (0, "secure match=mx.common.signed servername=hostname"), "{map}: {err}");
        let (code, out, _) = postmap_query(&postmap, "dane.signed", map);
        assert_eq!((code, out.as_str()), (0, "dane-only"), "{map}");
        // NOTFOUND: exit status 1, nothing printed.
        let (code, out, _) = postmap_query(&postmap, "nopolicy.signed", map);
        assert_eq!((code, out.as_str()), (1, ""), "{map}");
    }
    let (code, out, _) = postmap_query(&postmap, "testing.signed", &format!("socketmap:inet:127.0.0.1:{port}:strict"));
    assert_eq!((code, out.as_str()), (0, "secure match=mx.common.signed servername=hostname"));
    // TEMP: postmap reports a lookup error and fails.
    let (code, _, err) = postmap_query(&postmap, "tlsafail.signed", &inet);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("socketmap server temporary error: no usable MX host for tlsafail.signed"), "{err}");
    s.shutdown();
}
