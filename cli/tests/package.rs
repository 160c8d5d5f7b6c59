//! The packaging: the default configuration shipped is what `config init`
//! prints (and parses); the systemd units pass `systemd-analyze verify`;
//! `cargo deb` builds a .deb with the binary, the configuration (a
//! conffile), the units and the Grafana dashboard; the dashboard's queries
//! name metrics the server exports.

#[path = "../../examples/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn program() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_smtp-tls-policy"))
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_shipped_configuration_is_config_init() {
    let init = Command::new(program()).args(["config", "init"]).output().unwrap();
    assert!(init.status.success());
    let shipped = std::fs::read(manifest_dir().join("debian/config.toml")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&shipped),
        String::from_utf8_lossy(&init.stdout),
        "cli/debian/config.toml differs from `smtp-tls-policy config init`: regenerate it"
    );
}

#[test]
fn the_dashboard_names_exported_metrics() {
    let text = std::fs::read_to_string(manifest_dir().join("../grafana/smtp-tls-policy.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let metrics = std::fs::read_to_string(manifest_dir().join("src/metrics.rs")).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8);
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let name = expr.split("smtp_tls_policy_").nth(1).unwrap().split(['[', ')', ' ', '{']).next().unwrap();
            let family = ["_total", "_bucket"].iter().fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
            assert!(metrics.contains(&format!("\"{family}\"")), "{expr}: no metric {family:?} in src/metrics.rs");
        }
    }
}

#[test]
fn the_units_verify_and_the_deb_holds_everything() {
    let units = manifest_dir().join("debian");
    if let Some(analyze) = support::tool("systemd-analyze", "SMTP_TLS_POLICY_REQUIRE_SYSTEMD") {
        // verify wants the unit's programs where the unit says: a root
        // with /usr/bin/smtp-tls-policy and /bin/kill.
        let root = std::env::temp_dir().join(format!("smtp-tls-policy-units-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["usr/bin", "bin", "etc/systemd/system"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy(program(), root.join("usr/bin/smtp-tls-policy")).unwrap();
        std::fs::copy("/bin/kill", root.join("bin/kill")).unwrap();
        // The system's own units (sysinit.target, …), which ours need.
        std::fs::create_dir_all(root.join("lib/systemd/system")).unwrap();
        for entry in std::fs::read_dir("/lib/systemd/system").unwrap().flatten() {
            if entry.path().is_file() {
                let _ = std::fs::copy(entry.path(), root.join("lib/systemd/system").join(entry.file_name()));
            }
        }
        for unit in ["smtp-tls-policy.service", "smtp-tls-policy.socket"] {
            std::fs::copy(units.join(unit), root.join("etc/systemd/system").join(unit)).unwrap();
        }
        let out = Command::new(analyze)
            .arg(format!("--root={}", root.display()))
            .args(["verify", "smtp-tls-policy.service", "smtp-tls-policy.socket"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "systemd-analyze verify: {err}");
        assert!(!err.contains("smtp-tls-policy"), "systemd-analyze verify: {err}");
        let _ = std::fs::remove_dir_all(&root);
    }

    let Some(cargo_deb) = support::tool("cargo-deb", "SMTP_TLS_POLICY_REQUIRE_CARGO_DEB") else { return };
    // The binary cargo built for these tests (the dev profile), packaged
    // as it is: no second build inside the test.
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deb");
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = Command::new(&cargo_deb)
        .arg("deb")
        .args(["-p", "smtp-tls-policy-cli", "--profile", "dev", "--no-build", "--no-strip", "--fast", "--output"])
        .arg(&out_dir)
        .current_dir(manifest_dir().join(".."))
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo deb: {}", String::from_utf8_lossy(&out.stderr));
    let deb = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .unwrap();
    let contents = Command::new("dpkg-deb").arg("-c").arg(&deb).output().unwrap();
    let listing = String::from_utf8_lossy(&contents.stdout);
    for path in [
        "./usr/bin/smtp-tls-policy",
        "./etc/smtp-tls-policy/config.toml",
        "./lib/systemd/system/smtp-tls-policy.service",
        "./lib/systemd/system/smtp-tls-policy.socket",
        "./usr/share/doc/smtp-tls-policy/grafana-dashboard.json",
        "./usr/share/doc/smtp-tls-policy/README.md",
    ] {
        assert!(listing.lines().any(|l| l.ends_with(path)), "{path} not in the .deb:\n{listing}");
    }
    assert!(
        listing.lines().any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("./usr/bin/smtp-tls-policy")),
        "{listing}"
    );
    let info = Command::new("dpkg-deb").arg("-I").arg(&deb).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    for field in ["Package: smtp-tls-policy", "Section: mail", "Depends: "] {
        assert!(info.contains(field), "{field} not in the control file:\n{info}");
    }
    let conffiles = Command::new("dpkg-deb").args(["--info"]).arg(&deb).arg("conffiles").output().unwrap();
    assert!(String::from_utf8_lossy(&conffiles.stdout).contains("/etc/smtp-tls-policy/config.toml"), "{conffiles:?}");
}
