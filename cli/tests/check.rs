//! `smtp-tls-policy check` against the local DNS world: every lookup, the
//! policy host's addresses included, goes through the resolver it is
//! pointed at (`--dns`), not the system's.

#[path = "../../examples/support/mod.rs"]
mod support;

use std::process::Command;

use support::dns::Zones;
use support::world::{LocalWorld, policy};

/// The program cargo builds for these tests.
fn checker() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_smtp-tls-policy"))
}

#[test]
fn the_checker_resolves_the_policy_host_through_its_own_dns() {
    let program = checker();
    let signed = "mx.common A 127.0.0.1\n_tcp.mx.common TXT \"no TLSA below\"\n\
                  c MX 10 mx.common\n_mta-sts.c TXT \"v=STSv1; id=1;\"\nmta-sts.c A 127.0.0.1\n";
    let world = LocalWorld::start(&Zones { signed: signed.into(), ..Zones::default() });
    world.https.set("mta-sts.c.signed", policy("enforce", "mx.common.signed"));
    let dir = std::env::temp_dir().join(format!("smtp-tls-policy-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let anchor = dir.join("root.key");
    std::fs::write(&anchor, &world.dns.root_anchor).unwrap();
    let out = Command::new(&program)
        .args(["check", "c.signed", "--json", "--dns", &world.dns.addr.to_string(), "--anchor"])
        .arg(&anchor)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    let sts = &report["mta_sts"];
    assert_eq!(sts["id"], "1", "{report:#}");
    assert_eq!(sts["policy_host_addresses"], serde_json::json!(["127.0.0.1"]), "{report:#}");
    // The certificate is the local CA's, which the checker does not trust:
    // the fetch got as far as TLS, so the address came from the world.
    let text = report.to_string();
    assert!(!text.contains("failed to lookup address"), "{report:#}");
    let _ = std::fs::remove_dir_all(&dir);
}
