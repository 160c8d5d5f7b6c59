//! Postfix's TLSRPT events (libtlsrpt's datagrams) into our collector,
//! beside sys4's tlsrpt-collectd receiving the very same datagrams: the
//! counts per policy and the result types must agree.
//!
//! tlsrpt-collectd comes from PyPI (`tlsrpt-reporter`, installed by
//! `.ci/run` in /opt/tlsrpt-venv); the comparison is required when
//! SMTP_TLS_POLICY_REQUIRE_TLSRPT or CI is set, and skipped (with a line on
//! stderr) otherwise.
#![cfg(all(unix, feature = "resolver"))]

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::postfix::TlsrptListener;
use smtp_tls_policy::postfix::tlsrpt::result_type_of;
use smtp_tls_policy::report::{Collector, CollectorConfig, MemoryStore, ReportStore, Window, WindowLength};

const COLLECTD: &str = "/opt/tlsrpt-venv/bin/tlsrpt-collectd";

/// One delivery request as libtlsrpt writes it: `policy-type`, the final
/// result, and at most one failure detail (what Postfix sends).
fn datagram(domain: &str, policy_type: u8, failure: Option<(u16, &str)>) -> String {
    let strings = match policy_type {
        2 => {
            r#","policy-string":["version: STSv1","mode: enforce","mx: *.mail.example","max_age: 86400"],"mx-host":["*.mail.example"]"#
        }
        1 => r#","policy-string":["3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"]"#,
        _ => "",
    };
    let (details, t, f) = match failure {
        Some((code, mx)) => (
            format!(
                r#","failure-details":[{{"c":{code},"s": "192.0.2.1","n": "{mx}","r": "198.51.100.7","f": "test"}}]"#
            ),
            1,
            1,
        ),
        None => (String::new(), 0, 0),
    };
    let policy_domain = if policy_type == 9 { String::new() } else { format!(r#","policy-domain": "{domain}""#) };
    format!(
        r#"{{"dpv": "1","d": "{domain}","pr": "v=TLSRPTv1; rua=mailto:tlsrpt@{domain}","policies":[{{"policy-type":{policy_type}{policy_domain}{strings}{details},"t":{t},"f":{f}}}]}}"#
    )
}

/// The events of the test: successes and failures of each policy type.
fn events() -> Vec<String> {
    let mut all = Vec::new();
    let mut push = |n: usize, d: String| all.extend(std::iter::repeat_n(d, n));
    push(5, datagram("company-y.example", 2, None));
    push(3, datagram("company-y.example", 2, Some((204, "mx1.mail.example"))));
    push(2, datagram("company-y.example", 2, Some((202, "mx2.mail.example"))));
    push(1, datagram("company-y.example", 2, Some((301, "mx1.mail.example"))));
    push(4, datagram("dane.example", 1, None));
    push(1, datagram("dane.example", 1, Some((305, "mx.dane.example"))));
    push(2, datagram("dane.example", 1, Some((306, "mx.dane.example"))));
    push(2, datagram("plain.example", 9, None));
    push(1, datagram("plain.example", 9, Some((201, "mx.plain.example"))));
    all
}

/// Per (domain, policy type): successful, failed, and failures by result type.
type Counts = BTreeMap<(String, String), (u64, u64, BTreeMap<String, u64>)>;

fn ours(store: &MemoryStore) -> Counts {
    let mut counts = Counts::new();
    for w in store.windows().unwrap() {
        let agg = store.counts(w).unwrap();
        for domain in agg.domains() {
            let report =
                agg.aggregate(&domain, &smtp_tls_policy::report::ReportMeta::new("o", "c", "r", w.start(), w.end()));
            for p in report.policies {
                let entry =
                    counts.entry((p.policy.policy_domain.clone(), p.policy.policy_type.to_string())).or_default();
                entry.0 += p.summary.total_successful_session_count;
                entry.1 += p.summary.total_failure_session_count;
                for d in p.failure_details {
                    *entry.2.entry(d.result_type.to_string()).or_default() += d.failed_session_count;
                }
            }
        }
    }
    counts
}

/// tlsrpt-collectd's counts from its SQLite tables, summed the way
/// tlsrpt-reportd writes its report (its `total-successful-session-count`
/// is `cntrtotal - cntrfailure`, `total-failure-session-count` is
/// `cntrfailure`, each `failed-session-count` the count of its detail).
fn theirs(db: &Path) -> Counts {
    let script = r#"
import json, sqlite3, sys
c = sqlite3.connect(sys.argv[1])
out = {"final": [], "failures": []}
for d, p, total, failed in c.execute("SELECT domain, policy, cntrtotal, cntrfailure FROM finalresults"):
    out["final"].append([d, json.loads(p)["policy-type"], total, failed])
for d, p, reason, n in c.execute("SELECT domain, policy, reason, cntr FROM failures"):
    out["failures"].append([d, json.loads(p)["policy-type"], json.loads(reason)["c"], n])
print(json.dumps(out))
"#;
    let out = Command::new("python3").args(["-c", script]).arg(db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kind = |t: i64| match t {
        1 => "tlsa",
        2 => "sts",
        _ => "no-policy-found",
    };
    let mut counts = Counts::new();
    for row in v["final"].as_array().unwrap() {
        let key = (row[0].as_str().unwrap().to_owned(), kind(row[1].as_i64().unwrap()).to_owned());
        let (total, failed) = (row[2].as_u64().unwrap(), row[3].as_u64().unwrap());
        let entry = counts.entry(key).or_default();
        entry.0 += total - failed;
        entry.1 += failed;
    }
    for row in v["failures"].as_array().unwrap() {
        let key = (row[0].as_str().unwrap().to_owned(), kind(row[1].as_i64().unwrap()).to_owned());
        let result = result_type_of(row[2].as_i64().unwrap()).unwrap().to_string();
        *counts.entry(key).or_default().2.entry(result).or_default() += row[3].as_u64().unwrap();
    }
    counts
}

struct Collectd {
    child: Child,
    socket: PathBuf,
    db: PathBuf,
}

impl Collectd {
    fn start(dir: &Path) -> Option<Self> {
        if !Path::new(COLLECTD).exists() {
            let required =
                std::env::var_os("SMTP_TLS_POLICY_REQUIRE_TLSRPT").is_some() || std::env::var_os("CI").is_some();
            assert!(!required, "tlsrpt-collectd is required here: pip install tlsrpt-reporter (into /opt/tlsrpt-venv)");
            eprintln!("tlsrpt-collectd not installed: comparing against it is skipped");
            return None;
        }
        let config = dir.join("collectd.cfg");
        std::fs::write(&config, "[tlsrpt_collectd]\n").unwrap();
        let (socket, db) = (dir.join("collectd.sock"), dir.join("collectd.sqlite"));
        let child = Command::new(COLLECTD)
            .arg("--config_file")
            .arg(&config)
            .arg("--storage")
            .arg(format!("sqlite://{}", db.display()))
            .arg("--socketname")
            .arg(&socket)
            .args(["--max_uncommited_datagrams", "1", "--sockettimeout", "1"])
            .arg("--logfilename")
            .arg(dir.join("collectd.log"))
            .spawn()
            .unwrap();
        let started = Instant::now();
        while !socket.exists() {
            assert!(started.elapsed() < Duration::from_secs(20), "tlsrpt-collectd did not create its socket");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self { child, socket, db })
    }

    /// SIGTERM (it commits and exits), then wait.
    fn stop(mut self) -> PathBuf {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        self.db.clone()
    }
}

/// The same libtlsrpt datagrams to tlsrpt-collectd and to our listener:
/// equal counts per policy, equal result types (RFC 8460 §4.3).
#[test]
fn postfix_tlsrpt_datagrams_match_tlsrpt_collectd() {
    let dir = std::env::temp_dir().join(format!("smtp-tls-policy-tlsrpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(MemoryStore::new());
    let config = CollectorConfig::new("o", "mailto:c@mta.example", DomainName::parse("mta.example").unwrap());
    let collector = Arc::new(Collector::new(Arc::clone(&store), config));
    let listener = TlsrptListener::start(dir.join("ours.sock"), collector).unwrap();
    let collectd = Collectd::start(&dir);
    let sender = UnixDatagram::unbound().unwrap();
    let events = events();
    for d in &events {
        sender.send_to(d.as_bytes(), listener.path()).unwrap();
        if let Some(c) = &collectd {
            sender.send_to(d.as_bytes(), &c.socket).unwrap();
        }
    }
    // Not JSON, another version: counted as invalid, nothing recorded.
    sender.send_to(b"not json", listener.path()).unwrap();
    sender.send_to(br#"{"dpv": "9","d": "x.example","policies":[]}"#, listener.path()).unwrap();
    let started = Instant::now();
    while listener.datagrams() < events.len() as u64 + 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "only {} datagrams arrived", listener.datagrams());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(listener.invalid(), 2);
    assert_eq!(listener.unrecorded(), 0);
    listener.stop();

    let mine = ours(&store);
    let expected: Counts = [
        (
            ("company-y.example", "sts"),
            (5, 6, &[("certificate-expired", 3), ("certificate-host-mismatch", 2), ("sts-policy-fetch-error", 1)][..]),
        ),
        (("dane.example", "tlsa"), (4, 3, &[("dnssec-invalid", 1), ("dane-required", 2)][..])),
        (("plain.example", "no-policy-found"), (2, 1, &[("starttls-not-supported", 1)][..])),
    ]
    .into_iter()
    .map(|((d, t), (ok, failed, types))| {
        let types = types.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect();
        ((d.to_owned(), t.to_owned()), (ok, failed, types))
    })
    .collect();
    assert_eq!(mine, expected);
    // The window of today holds them, reported after it closes.
    let today = Window::containing(SystemTime::now(), WindowLength::Day);
    assert!(store.windows().unwrap().contains(&today));

    if let Some(c) = collectd {
        std::thread::sleep(Duration::from_millis(1500));
        let db = c.stop();
        assert_eq!(theirs(&db), mine, "tlsrpt-collectd and we count the same datagrams differently");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
