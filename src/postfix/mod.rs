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
//! | MTA-STS testing, `none`, no policy | `NOTFOUND ` (main.cf decides) |
//! | a policy that was announced but could not be had | `NOTFOUND `, or `OK <level>` with [`ZoneOptions::unavailable`] |
//! | the MX lookup failed or was unusable, MTA-STS enforced (a live policy) | `OK secure match=…` as above: the policy survives any MX answer |
//! | a temporary MX lookup failure (no enforced policy, or a bogus MX RRset) | `TEMP <reason>` |
//! | NXDOMAIN, null MX, a key that is not a domain | `NOTFOUND ` (Postfix's own lookups bounce) |
//!
//! Never weaker than main.cf: a reply overrides `smtp_tls_security_level`
//! for the destination, so where nothing better is known the answer is
//! `NOTFOUND` (Postfix's own level applies), never `may`.
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
//! was announced but could not be had, `policy_failure` on the reply of
//! [`ZoneOptions::unavailable`] (with no such level, nothing: the failure
//! is not worth a weaker level). Postfix before 3.10 refuses unknown
//! attributes (the delivery defers), so TLS-RPT attributes are off by
//! default.
//!
//! Policy text never becomes attributes: a policy line that cannot be
//! written inside `{ … }` (a brace, a control or non-ASCII character)
//! leaves every `policy_string` out, and `mx` patterns that Postfix reads
//! as `match=` keywords (`hostname`, `nexthop`, `dot-nexthop`) are not
//! written; a policy left with no pattern is answered `TEMP`.

pub mod netstring;
#[cfg(feature = "resolver")]
pub mod server;
pub mod tlsrpt;
#[cfg(all(unix, feature = "resolver"))]
mod tlsrpt_listener;
#[cfg(all(unix, feature = "resolver"))]
pub use tlsrpt_listener::TlsrptListener;

use std::fmt;

use crate::cache::FetchFailure;
use crate::engine::{Authentication, Basis, DaneSupport, Options, Plan, PlanSts, StsFacts};
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

/// A Postfix TLS security level (postconf(5) `smtp_tls_security_level`),
/// as a zone's configured answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Level {
    /// `may`: opportunistic TLS.
    May,
    /// `encrypt`: mandatory TLS, no authentication.
    Encrypt,
    /// `dane`: opportunistic DANE.
    Dane,
    /// `dane-only`: mandatory DANE.
    DaneOnly,
    /// `verify`: mandatory TLS, verified against the `match` defaults.
    Verify,
    /// `secure`: mandatory TLS, verified against the next hop's names.
    Secure,
}

impl Level {
    /// The level's name in Postfix.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::May => "may",
            Self::Encrypt => "encrypt",
            Self::Dane => "dane",
            Self::DaneOnly => "dane-only",
            Self::Verify => "verify",
            Self::Secure => "secure",
        }
    }

    /// Parses a level's Postfix name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::May, Self::Encrypt, Self::Dane, Self::DaneOnly, Self::Verify, Self::Secure]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-zone (per map name) choices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ZoneOptions {
    /// Add the Postfix 3.10 TLS-RPT and `mx_host_pattern` attributes.
    pub(crate) tlsrpt: bool,
    /// The answer for a domain whose MTA-STS policy was announced but could
    /// not be had (and none is cached): `None` (default) answers
    /// `NOTFOUND`, so main.cf's level applies; a level answers `OK <level>`
    /// (with `policy_failure` when [`tlsrpt`](Self::tlsrpt) is on). Choose
    /// one at least as strong as `smtp_tls_security_level`: this reply
    /// overrides it.
    pub(crate) unavailable: Option<Level>,
}

impl ZoneOptions {
    /// Sets [`tlsrpt`](Self::tlsrpt).
    pub fn tlsrpt(mut self, on: bool) -> Self {
        self.tlsrpt = on;
        self
    }

    /// Sets [`unavailable`](Self::unavailable).
    pub fn unavailable(mut self, level: Option<Level>) -> Self {
        self.unavailable = level;
        self
    }
}

/// The Postfix TLS policy for a plan (see the module docs for the table).
pub fn policy_reply(plan: &Plan, options: ZoneOptions) -> Reply {
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
        (PlanSts::Applied { policy, .. }, true) => secure(domain, policy, options),
        (PlanSts::Unavailable(failure), _) => unavailable_reply(domain, failure, options),
        _ => Reply::NotFound,
    }
}

/// The reply when the MX lookup failed (or its answer was unusable) and
/// `sts` is what the MTA-STS discovery found: an enforced policy is
/// answered as [`policy_reply`] would (`secure match=…`; Postfix does its
/// own MX lookup and the certificate must still match the policy), since an
/// attacker who forges the MX answer must not switch the policy off.
/// `enforcing` are the controls' [`Options`] (which modes are enforced).
/// `None` when no policy is enforced: the caller answers from the error.
pub fn policy_without_mx(
    domain: &DomainName,
    sts: &StsFacts,
    enforcing: &Options,
    options: ZoneOptions,
) -> Option<Reply> {
    match sts {
        StsFacts::Policy { policy, .. } if enforcing.enforces(policy.mode()) => Some(secure(domain, policy, options)),
        _ => None,
    }
}

/// `NOTFOUND`, or the zone's level for a policy that could not be had.
fn unavailable_reply(domain: &DomainName, failure: &FetchFailure, options: ZoneOptions) -> Reply {
    match options.unavailable {
        Some(level) => {
            let mut data = level.to_string();
            if options.tlsrpt {
                data.push_str(&format!(" policy_type=sts policy_domain={domain}"));
                data.push_str(&format!(" policy_failure={}", failure.result_type()));
            }
            Reply::Ok(data)
        }
        _ => Reply::NotFound,
    }
}

/// Words Postfix reads as keywords in a `match=` list, not as names.
const MATCH_KEYWORDS: [&str; 3] = ["hostname", "nexthop", "dot-nexthop"];

/// `secure match=… servername=hostname` for an enforced policy; `TEMP`
/// when no pattern can be written.
fn secure(domain: &DomainName, policy: &Policy, options: ZoneOptions) -> Reply {
    let mut patterns: Vec<String> = Vec::new();
    for p in policy.mx() {
        let base = p.base().as_str();
        if MATCH_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(base)) {
            continue;
        }
        let widened = if p.is_wildcard() { format!(".{base}") } else { base.to_owned() };
        if !patterns.contains(&widened) {
            patterns.push(widened);
        }
    }
    if patterns.is_empty() {
        return Reply::Temp(format!(
            "the MTA-STS policy of {domain} lists no mx pattern Postfix can match (only {})",
            MATCH_KEYWORDS.join("/")
        ));
    }
    let mut data = format!("secure match={} servername=hostname", patterns.join(":"));
    if options.tlsrpt {
        let lines: Vec<String> = policy.to_string().lines().map(str::to_owned).collect();
        let mx: Vec<String> = policy.mx().iter().map(ToString::to_string).collect();
        tlsrpt_attributes(&mut data, "sts", domain, &lines, &mx);
    }
    Reply::Ok(data)
}

/// Whether `s` can be written as an attribute value inside `{ … }`:
/// printable ASCII, spaces and tabs, no braces.
fn quotable(s: &str) -> bool {
    s.bytes().all(|b| (b == b'\t' || (0x20..0x7f).contains(&b)) && b != b'{' && b != b'}')
}

/// The Postfix 3.10 TLS-RPT attributes; values with white space in braces.
/// If any string cannot be quoted, no `policy_string` is written (a
/// partial policy string would be wrong in the report).
fn tlsrpt_attributes(data: &mut String, kind: &str, domain: &DomainName, strings: &[String], mx: &[String]) {
    data.push_str(&format!(" policy_type={kind} policy_domain={domain}"));
    // Patterns are LDH names (`*.` at most): always writable as they are.
    for p in mx {
        data.push_str(&format!(" mx_host_pattern={p}"));
    }
    if !strings.iter().all(|s| quotable(s)) {
        return;
    }
    for s in strings {
        if s.contains([' ', '\t', ',', '=']) {
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

    fn enforced(body: &str) -> StsFacts {
        let policy = Policy::parse(body).unwrap();
        StsFacts::Policy { id: crate::sts::PolicyId::parse("1").unwrap(), policy: std::sync::Arc::new(policy) }
    }

    #[test]
    fn policy_text_never_becomes_attributes() {
        let d = DomainName::parse("example.com").unwrap();
        let only_keywords =
            enforced("version: STSv1\nmode: enforce\nmx: nexthop\nmx: dot-nexthop\nmx: HOSTNAME\nmax_age: 1\n");
        let reply = policy_without_mx(&d, &only_keywords, &Options::default(), ZoneOptions::default()).unwrap();
        assert!(matches!(&reply, Reply::Temp(why) if why.contains("no mx pattern")), "{reply}");
        let tab = enforced("version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 1\nx: a\tb { c\n");
        let reply =
            policy_without_mx(&d, &tab, &Options::default(), ZoneOptions::default().tlsrpt(true)).unwrap().to_string();
        assert!(!reply.contains("policy_string"), "{reply}");
        let plain = enforced("version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 1\nx: a=b\n");
        let reply = policy_without_mx(&d, &plain, &Options::default(), ZoneOptions::default().tlsrpt(true))
            .unwrap()
            .to_string();
        assert!(reply.ends_with("{ policy_string = max_age: 1 } { policy_string = x: a=b }"), "{reply}");
        assert!(reply.starts_with("OK secure match=.example.com servername=hostname"), "{reply}");
    }

    #[test]
    fn testing_survives_a_failed_mx_lookup_only_when_enforced() {
        let d = DomainName::parse("example.com").unwrap();
        let testing = enforced("version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 1\n");
        assert_eq!(policy_without_mx(&d, &testing, &Options::default(), ZoneOptions::default()), None);
        assert!(
            policy_without_mx(&d, &testing, &Options::default().testing_as_enforce(true), ZoneOptions::default())
                .is_some()
        );
        assert_eq!(
            policy_without_mx(
                &d,
                &StsFacts::NoPolicy,
                &Options::default().testing_as_enforce(true),
                ZoneOptions::default()
            ),
            None
        );
    }

    #[test]
    fn levels_parse_and_print() {
        for l in [Level::May, Level::Encrypt, Level::Dane, Level::DaneOnly, Level::Verify, Level::Secure] {
            assert_eq!(Level::parse(l.as_str()), Some(l));
        }
        assert_eq!(Level::parse("none"), None);
    }
}
