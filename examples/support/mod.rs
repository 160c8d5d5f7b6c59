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
