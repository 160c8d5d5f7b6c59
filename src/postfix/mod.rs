//! Postfix's TLS policy table, spoken over its socketmap protocol
//! (`smtp_tls_policy_maps = socketmap:…`; Postfix socketmap_table(5)).
//!
//! The core part (no IO): [`netstring`] framing, the [`Request`] a
//! socketmap client sends, the [`Reply`] it expects, and [`policy_reply`],
//! which turns the engine's [`Plan`] into a Postfix TLS policy. The server
//! (feature `resolver`) is in [`server`].
//!
//! # From a plan to a Postfix policy
//!
//! Postfix applies one policy to a whole destination and does its own DNS
//! (and, at levels `dane`/`dane-only`, its own TLSA lookups), so the
//! engine's per-host plan is summarised:
//!
//! | the plan | reply |
//! |---|---|
//! | every host excluded (bogus or failed TLSA, DANE mandatory without TLSA, no MX allowed by an enforced policy) | `TEMP <reason>`: defer |
//! | some host DANE-authenticated, and every host is, or MTA-STS is enforced, or DANE support is mandatory | `OK dane-only` |
//! | some host DANE-authenticated, the others under no policy | `OK dane` (DANE where TLSA exists, Postfix's opportunistic TLS elsewhere) |
//! | MTA-STS enforce (or testing, in a zone with strict testing) | `OK secure match=<patterns> servername=hostname` |
//! | MTA-STS testing, `none`, no policy, a policy that could not be had | `NOTFOUND ` (main.cf decides) |
//! | a temporary MX lookup failure | `TEMP <reason>` |
//! | NXDOMAIN, null MX, a key that is not a domain | `NOTFOUND ` (Postfix's own lookups bounce) |
//!
//! `match=`: Postfix's `.example.com` matches names at any depth below
//! `example.com`, while RFC 8461 §4.1's `*.example.com` matches exactly one
//! label; Postfix before 3.10 has no way to say "one label", so the pattern
//! is widened to `.example.com` (the certificate must still come from a
//! trusted CA and name a host of the domain). Exact patterns are kept. With
//! [`ZoneOptions::tlsrpt`] (Postfix 3.10 and later), the reply also
//! carries the RFC 8461 patterns as `mx_host_pattern` attributes, which
//! Postfix 3.10 enforces exactly (`smtp_tls_enforce_sts_mx_patterns`), and
//! the TLS-RPT attributes `policy_type`, `policy_domain`, `policy_string`
//! (`{ policy_string = … }` for values with spaces) and, for a policy that
//! was announced but could not be had, `policy_failure` on an `OK may`
//! reply. Postfix before 3.10 refuses unknown attributes (the delivery
//! defers), so TLS-RPT attributes are off by default.

pub mod netstring;
#[cfg(feature = "resolver")]
pub mod server;

use std::fmt;

use crate::engine::{Authentication, Basis, DaneSupport, Plan, StsFacts};
use crate::name::DomainName;
use crate::sts::Policy;

/// The longest request accepted (name, space, key): a domain name is at
/// most 253 octets.
pub const MAX_REQUEST: usize = 1024;

/// Postfix accepts replies up to 100 000 characters (socketmap_table(5)).
pub const MAX_REPLY: usize = 100_000;

/// A socketmap request: `<name> <key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The map name (the zone).
    pub name: &'a str,
    /// The key (for TLS policy lookups, the next-hop domain).
    pub key: &'a str,
}

impl<'a> Request<'a> {
    /// Parses the payload of a request netstring.
    pub fn parse(payload: &'a [u8]) -> Result<Self, &'static str> {
        let text = std::str::from_utf8(payload).map_err(|_| "the request is not UTF-8")?;
        let (name, key) = text.split_once(' ').ok_or("the request has no space between name and key")?;
        if name.is_empty() || key.is_empty() {
            return Err("the request's name or key is empty");
        }
        Ok(Self { name, key })
    }
}

/// A socketmap reply (socketmap_table(5) "REPLY FORMAT").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// `OK <data>`: the policy.
    Ok(String),
    /// `NOTFOUND `: no policy; main.cf decides.
    NotFound,
    /// `TEMP <reason>`: try again later (Postfix defers).
    Temp(String),
    /// `TIMEOUT <reason>`.
    Timeout(String),
    /// `PERM <reason>`: the request was wrong.
    Perm(String),
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Reasons are one line of text.
        let clean = |s: &str| s.replace(['\r', '\n', ','], " ");
        match self {
            Self::Ok(data) => write!(f, "OK {data}"),
            Self::NotFound => f.write_str("NOTFOUND "),
            Self::Temp(r) => write!(f, "TEMP {}", clean(r)),
            Self::Timeout(r) => write!(f, "TIMEOUT {}", clean(r)),
            Self::Perm(r) => write!(f, "PERM {}", clean(r)),
        }
    }
}

/// Per-zone (per map name) choices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ZoneOptions {
    /// Add the Postfix 3.10 TLS-RPT and `mx_host_pattern` attributes.
    pub tlsrpt: bool,
}

impl ZoneOptions {
    /// Sets [`tlsrpt`](Self::tlsrpt).
    pub fn tlsrpt(mut self, on: bool) -> Self {
        self.tlsrpt = on;
        self
    }
}

/// The Postfix TLS policy for a plan (see the module docs for the table).
/// `sts` is what the MTA-STS discovery found (for `policy_failure`).
pub fn policy_reply(plan: &Plan, sts: &StsFacts, options: ZoneOptions) -> Reply {
    if plan.route.is_some() {
        return Reply::NotFound;
    }
    if plan.hosts.is_empty() {
        if plan.skipped.is_empty() {
            return Reply::NotFound;
        }
        let why: Vec<String> = plan.skipped.iter().map(|(h, r)| format!("{h}: {}", r.describe())).collect();
        return Reply::Temp(format!("no usable MX host for {}: {}", plan.domain, why.join("; ")));
    }
    let dane = plan.hosts.iter().filter(|h| h.requirement.basis == Basis::Dane).count();
    let enforced = plan.sts_enforced();
    let domain = &plan.domain;
    if dane > 0 {
        let only = dane == plan.hosts.len() || enforced || plan.profile.dane == DaneSupport::Mandatory;
        let mut data = String::from(if only { "dane-only" } else { "dane" });
        if options.tlsrpt {
            let records: Vec<String> = plan
                .hosts
                .iter()
                .filter_map(|h| match &h.requirement.auth {
                    Authentication::Dane { records, .. } => Some(records.iter().map(ToString::to_string)),
                    _ => None,
                })
                .flatten()
                .collect();
            tlsrpt_attributes(&mut data, "tlsa", domain, &records, &[]);
        }
        return Reply::Ok(data);
    }
    match (&plan.sts, enforced) {
        (Some((_, policy)), true) => Reply::Ok(secure(domain, policy, options)),
        _ => match (sts, options.tlsrpt) {
            (StsFacts::Unavailable(failure), true) => {
                let mut data = format!("may policy_type=sts policy_domain={domain}");
                data.push_str(&format!(" policy_failure={}", failure.result_type()));
                Reply::Ok(data)
            }
            _ => Reply::NotFound,
        },
    }
}

/// `secure match=… servername=hostname` for an enforced policy.
fn secure(domain: &DomainName, policy: &Policy, options: ZoneOptions) -> String {
    let mut patterns: Vec<String> = Vec::new();
    for p in policy.mx() {
        let widened = if p.is_wildcard() { format!(".{}", p.base()) } else { p.base().to_string() };
        if !patterns.contains(&widened) {
            patterns.push(widened);
        }
    }
    let mut data = format!("secure match={} servername=hostname", patterns.join(":"));
    if options.tlsrpt {
        let lines: Vec<String> = policy.to_string().lines().map(str::to_owned).collect();
        let mx: Vec<String> = policy.mx().iter().map(ToString::to_string).collect();
        tlsrpt_attributes(&mut data, "sts", domain, &lines, &mx);
    }
    data
}

/// The Postfix 3.10 TLS-RPT attributes; values with white space in braces.
fn tlsrpt_attributes(data: &mut String, kind: &str, domain: &DomainName, strings: &[String], mx: &[String]) {
    data.push_str(&format!(" policy_type={kind} policy_domain={domain}"));
    for p in mx {
        data.push_str(&format!(" mx_host_pattern={p}"));
    }
    for s in strings {
        if s.contains([' ', '\t', ',']) {
            data.push_str(&format!(" {{ policy_string = {s} }}"));
        } else {
            data.push_str(&format!(" policy_string={s}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_replies_print() {
        assert_eq!(Request::parse(b"postfix example.com"), Ok(Request { name: "postfix", key: "example.com" }));
        assert!(Request::parse(b"postfix").is_err());
        assert!(Request::parse(b" example.com").is_err());
        assert!(Request::parse(b"postfix ").is_err());
        assert!(Request::parse(&[0xff, b' ', b'a']).is_err());
        assert_eq!(Reply::NotFound.to_string(), "NOTFOUND ");
        assert_eq!(Reply::Ok("dane-only".into()).to_string(), "OK dane-only");
        assert_eq!(Reply::Temp("a\r\nb, c".into()).to_string(), "TEMP a  b  c");
        assert_eq!(Reply::Perm("bad".into()).to_string(), "PERM bad");
        assert_eq!(Reply::Timeout("slow".into()).to_string(), "TIMEOUT slow");
    }
}
