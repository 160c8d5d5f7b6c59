//! A real Postfix delivers through the local world with this crate's
//! socketmap server as its `smtp_tls_policy_maps`: Postfix looks up the MX
//! records itself (from the local DNS world, via a private mount namespace
//! whose /etc/resolv.conf names it), asks the map, and connects to local
//! STARTTLS servers on port 25. An MTA-STS enforce domain whose MX presents
//! a valid certificate is delivered to over verified TLS; one whose MX
//! presents a certificate for another name is deferred by Postfix.
//!
//! Needs root (ports 25 and 53 on 127.0.0.x, a mount namespace), Debian's
//! postfix and util-linux `unshare`. Without them the test says so and
//! passes, unless SMTP_TLS_POLICY_REQUIRE_POSTFIX is set (as `.ci/run`
//! does), which makes it fail.
#![cfg(all(feature = "resolver", feature = "rustls"))]

#[path = "../examples/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smtp_tls_policy::postfix::ZoneOptions;
use smtp_tls_policy::postfix::server::{ServerConfig, SocketmapServer, Zone};
use smtp_tls_policy::resolver::blocking::PolicyResolver;
use support::dns::{DnsWorld, Zones};
use support::https::{Pki, PolicyServer, ok};
use support::smtp::{Starttls, smtp_server_on};
use support::world::local_config;

const DNS: &str = "127.0.0.76:53";
const GOOD_MX: &str = "127.0.0.77:25";
const BAD_MX: &str = "127.0.0.78:25";

fn available() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        == Some(true);
    let tools = Path::new("/usr/sbin/postfix").exists() && Path::new("/usr/bin/unshare").exists();
    if !(root && tools) {
        assert!(
            !support::required("SMTP_TLS_POLICY_REQUIRE_POSTFIX"),
            "the real-Postfix delivery test needs root, /usr/sbin/postfix and /usr/bin/unshare"
        );
        eprintln!("skipped: needs root, Debian's postfix and unshare (.ci/run provides them)");
    }
    root && tools
}

struct Postfix {
    dir: PathBuf,
}

impl Postfix {
    /// A Postfix instance in `dir`: an SMTP server on `inject` for local
    /// submission, the smtp client with the socketmap policy, and DNS from
    /// `resolv.conf` in a private mount namespace.
    fn start(dir: &Path, inject: SocketAddr, map: &str, ca_pem: &str) -> Self {
        std::fs::create_dir_all(dir.join("queue")).unwrap();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let chown = Command::new("chown").args(["postfix"]).arg(dir.join("data")).status().unwrap();
        assert!(chown.success());
        std::fs::write(dir.join("ca.pem"), ca_pem).unwrap();
        std::fs::write(dir.join("resolv.conf"), format!("nameserver {}\n", DNS.trim_end_matches(":53"))).unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {d}/queue\ndata_directory = {d}/data\n\
                 command_directory = /usr/sbin\ndaemon_directory = /usr/lib/postfix/sbin\n\
                 mail_owner = postfix\nsetgid_group = postdrop\nmyhostname = sender.test\n\
                 mydomain = sender.test\nmyorigin = sender.test\nmydestination =\n\
                 inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nmynetworks = 127.0.0.0/8\n\
                 smtpd_relay_restrictions = permit_mynetworks, reject\n\
                 maillog_file = {d}/maillog\nmaillog_file_prefixes = {d}\n\
                 smtp_dns_support_level = enabled\nsmtp_tls_security_level = may\n\
                 smtp_tls_CAfile = {d}/ca.pem\nsmtp_tls_loglevel = 1\n\
                 smtp_tls_policy_maps = {map}\n"
            ),
        )
        .unwrap();
        let services = [
            format!("{inject} inet n - n - - smtpd"),
            "pickup unix n - n 60 1 pickup".into(),
            "cleanup unix n - n - 0 cleanup".into(),
            "qmgr unix n - n 300 1 qmgr".into(),
            "tlsmgr unix - - n 1000? 1 tlsmgr".into(),
            "rewrite unix - - n - - trivial-rewrite".into(),
            "bounce unix - - n - 0 bounce".into(),
            "defer unix - - n - 0 bounce".into(),
            "trace unix - - n - 0 bounce".into(),
            "verify unix - - n - 1 verify".into(),
            "flush unix n - n 1000? 0 flush".into(),
            "proxymap unix - - n - - proxymap".into(),
            "smtp unix - - n - - smtp".into(),
            "relay unix - - n - - smtp".into(),
            "error unix - - n - - error".into(),
            "retry unix - - n - - error".into(),
            "discard unix - - n - - discard".into(),
            "anvil unix - - n - 1 anvil".into(),
            "scache unix - - n - 1 scache".into(),
            "postlog unix-dgram n - n - 1 postlogd".into(),
        ];
        std::fs::write(dir.join("master.cf"), services.join("\n") + "\n").unwrap();
        let started = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!("mount --bind {d}/resolv.conf /etc/resolv.conf && postfix -c {d} start"))
            .output()
            .unwrap();
        assert!(started.status.success(), "postfix start: {}", String::from_utf8_lossy(&started.stderr));
        Self { dir: dir.to_owned() }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix").arg("-c").arg(&self.dir).arg("stop").output();
    }
}

/// Submits one message over SMTP.
fn submit(addr: SocketAddr, to: &str) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let reply = |s: &mut TcpStream| {
        let mut buf = [0u8; 2048];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(reply(&mut s).starts_with("220"));
    for (command, code) in [
        ("EHLO client.test".to_owned(), "250"),
        ("MAIL FROM:<sender@sender.test>".to_owned(), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_owned(), "354"),
        ("Subject: via Postfix\r\n\r\nhello\r\n.".to_owned(), "250"),
        ("QUIT".to_owned(), "221"),
    ] {
        s.write_all(format!("{command}\r\n").as_bytes()).unwrap();
        let r = reply(&mut s);
        assert!(r.starts_with(code), "{command}: {r}");
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

#[test]
fn postfix_delivers_over_verified_tls_and_defers_a_wrong_certificate() {
    if !available() {
        return;
    }
    let pki = Arc::new(Pki::new());
    let zones = Zones {
        signed: "enforce MX 10 mx.good\nmx.good A 127.0.0.77\n_tcp.mx.good TXT \"no TLSA\"\n\
                 _mta-sts.enforce TXT \"v=STSv1; id=1;\"\n\
                 badcert MX 10 mx.bad\nmx.bad A 127.0.0.78\n_tcp.mx.bad TXT \"no TLSA\"\n\
                 _mta-sts.badcert TXT \"v=STSv1; id=1;\"\n"
            .into(),
        ..Zones::default()
    };
    let dns = DnsWorld::start_on(&zones, DNS.parse().unwrap());
    let https = PolicyServer::start(Arc::clone(&pki));
    let policy = |mx: &str| ok(format!("version: STSv1\r\nmode: enforce\r\nmx: {mx}\r\nmax_age: 86400\r\n").as_bytes());
    https.set("mta-sts.enforce.signed", policy("mx.good.signed"));
    https.set("mta-sts.badcert.signed", policy("mx.bad.signed"));
    let (good_chain, good_key) = pki.server("mx.good.signed", false);
    let good = smtp_server_on("mx.good.signed", Starttls::with(good_chain, good_key), GOOD_MX.parse().unwrap());
    let (bad_chain, bad_key) = pki.server("somewhere.else.test", false);
    let bad = smtp_server_on("mx.bad.signed", Starttls::with(bad_chain, bad_key), BAD_MX.parse().unwrap());

    let map = SocketmapServer::start(ServerConfig::default().inet("127.0.0.1:0".parse().unwrap()).zone(
        "postfix",
        Zone {
            resolver: PolicyResolver::new(local_config(&dns, &https, &pki)).unwrap(),
            options: ZoneOptions::default(),
        },
    ))
    .unwrap();
    let map_name = format!("socketmap:inet:{}:postfix", map.local_addrs()[0]);
    let dir = std::env::temp_dir().join(format!("stp-postfix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let inject = free_port();
    let postfix = Postfix::start(&dir, inject, &map_name, &support::https::pem(&pki.ca_der));

    submit(inject, "user@enforce.signed");
    submit(inject, "user@badcert.signed");
    let start = Instant::now();
    let done = |log: &str| log.contains("status=sent") && log.contains("status=deferred");
    while !done(&postfix.log()) && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = postfix.log();
    let line = |needle: &str| log.lines().find(|l| l.contains(needle)).unwrap_or_default().to_owned();
    // Postfix asked the map and verified the certificate as `secure`.
    assert!(line("Verified TLS connection established to mx.good.signed").contains("127.0.0.77"), "{log}");
    assert!(line("to=<user@enforce.signed>").contains("status=sent"), "{log}");
    assert_eq!(good.received.lock().unwrap().len(), 1);
    // The wrong certificate: Postfix defers, nothing was sent.
    let deferred = line("to=<user@badcert.signed>");
    assert!(deferred.contains("status=deferred"), "{log}");
    assert!(deferred.contains("dsn=4.7.5") && deferred.contains("(Server certificate not verified)"), "{deferred}");
    assert!(bad.received.lock().unwrap().is_empty());
    if std::env::var_os("SHOW_POSTFIX_LOG").is_some() {
        eprintln!("{log}");
    }
    drop(postfix);
    map.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
