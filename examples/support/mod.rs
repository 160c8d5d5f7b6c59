//! The local world the demo starts (DNS, HTTPS policy hosts, SMTP servers,
//! a CA) and a small SMTP client; the integration tests and benches use it too.

/// Whether a missing real component (`named`, `postfix`…) must fail the
/// test rather than skip it: when `.ci/run` says so with `var`, or on any
/// CI (`CI` set and not `false` or `0`).
#[allow(dead_code)] // each user takes what it needs
pub fn required(var: &str) -> bool {
    std::env::var_os(var).is_some() || std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// `postmap`, or `None` (a failure when SMTP_TLS_POLICY_REQUIRE_POSTFIX is
/// set, as `.ci/run` does).
#[allow(dead_code)] // each user takes what it needs
pub fn postmap() -> Option<std::path::PathBuf> {
    let found =
        ["/usr/sbin/postmap", "/usr/bin/postmap"].into_iter().map(std::path::PathBuf::from).find(|p| p.exists());
    if found.is_none() {
        assert!(
            !required("SMTP_TLS_POLICY_REQUIRE_POSTFIX"),
            "postmap not found: install Debian's postfix package (.ci/run does)"
        );
        eprintln!("postmap not installed: the real-Postfix queries were not run (.ci/run installs postfix)");
    }
    found
}

/// The program `name` on PATH (or in /usr/sbin, /sbin, cargo's bin
/// directory), or `None` — a failure when `var` is set or on CI, since
/// `.ci/run` installs it.
#[allow(dead_code)] // each user takes what it needs
pub fn tool(name: &str, var: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .chain(cargo_home.map(|c| c.join("bin")))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(!required(var), "{name} not found: .ci/run installs it ({var} is set, or CI)");
        eprintln!("{name} not installed: that part of the test was not run (.ci/run installs it)");
    }
    found
}

#[cfg(feature = "dns")]
pub mod bind;
#[cfg(feature = "dns")]
pub mod dns;
pub mod https;
pub mod matrix;
pub mod memory;
#[cfg(feature = "rustls")]
pub mod smtp;
#[cfg(feature = "resolver")]
pub mod world;
pub mod x509;
