//! Outbound SMTP transport security for a sending MTA: for each recipient
//! domain, which MX hosts may be used, whether TLS is required and how the
//! peer must be authenticated — MTA-STS ([RFC 8461]), DANE for SMTP
//! ([RFC 7672]) — and what to report through TLS-RPT ([RFC 8460]).
//!
//! This release holds the core: validated [`name::DomainName`]s, the whole
//! MTA-STS grammar of [`sts`] (the `_mta-sts` TXT record, the policy body,
//! MX patterns), DANE in [`dane`] (TLSA records, verifying a certificate
//! chain against them), the MTA-STS policy [`cache`], the decision
//! [`engine`] and TLS-RPT in [`report`]; and the IO layers: DNS with
//! DNSSEC status (`dns`), the policy fetch (`fetch`) and the one-call
//! façade (`resolver::PolicyResolver`), and the rustls verifier that
//! enforces a plan on the TLS connection (`verify::TlsSetup`).
//!
//! # Data flow
//!
//! ```text
//!  domain ─▶ discovery (DNS, HTTPS, cache) ─▶ facts ─▶ engine plan (+ destination profile)
//!         ─▶ the MTA connects; the TLS verifier checks the peer ─▶ outcome
//!         ─▶ engine verdict (Deliver / Defer / Bounce) ─▶ TLS-RPT aggregate
//!
//!  core (no IO, builds with --no-default-features)
//!    name      DomainName: lower-case A-labels, no trailing dot, RFC 1035 limits
//!    sts       TXT record, policy body, MX patterns, fetch rules (RFC 8461 §3)
//!    discovery DnsLookup/PolicyFetch seams, the RFC rules of discovery, gather
//!    dane      TLSA records, chain verification              (RFC 7672, RFC 7671, RFC 6698)
//!    cache     policy cache: max_age, ids, failures, LRU     (RFC 8461 §3.3, §5.1, §10)
//!    engine    destination profiles -> per-MX plan -> Delivery -> Outcome
//!    report    TLS-RPT record, result types, aggregate JSON  (RFC 8460)
//!  io (cargo features, on by default)
//!    dns      DnsLookup with in-process DNSSEC validation (hickory-proto records)
//!    fetch    the RFC 8461 §3.3 policy fetch (ureq + rustls)
//!    resolver the one-call façade, async on your tokio runtime; `blocking` for threads
//!    verify   rustls ServerCertVerifier enforcing a per-MX plan (feature `rustls`)
//! ```
//!
//! No core module does IO or reads the clock; the resolver façade is the
//! one place that reads the system clock. The whole flow is drawn in
//! [the manual](manual#data-flow-from-a-domain-to-a-report).
//!
//! # Example
//!
//! ```
//! use smtp_tls_policy::sts::{Mode, Policy, select_txt};
//!
//! // The _mta-sts.example.com TXT RRset, each record's strings joined.
//! let txt = select_txt(["v=spf1 -all", "v=STSv1; id=20160831085700Z;"])?;
//! assert_eq!(txt.id(), "20160831085700Z");
//!
//! // The body of https://mta-sts.example.com/.well-known/mta-sts.txt.
//! let policy = Policy::parse_bytes(b"version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 86400\n")?;
//! assert_eq!(policy.mode(), Mode::Enforce);
//! assert!(policy.allows_mx("mx1.example.net"));
//! assert!(!policy.allows_mx("mx1.attacker.example"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Errors say what failed and where:
//!
//! ```
//! use smtp_tls_policy::{ParseErrorKind, sts::Policy};
//! let err = Policy::parse("version: STSv1\nmode: enforce\nmax_age: 86400\n").unwrap_err();
//! assert_eq!(err.kind(), ParseErrorKind::MissingField);
//! assert_eq!(err.to_string(), "mx: missing (at least one mx line is required when the mode is enforce)");
//! ```
//!
//! The design decisions and RFC readings are in [`manual`].
//!
//! [RFC 8461]: https://www.rfc-editor.org/rfc/rfc8461
//! [RFC 7672]: https://www.rfc-editor.org/rfc/rfc7672
//! [RFC 8460]: https://www.rfc-editor.org/rfc/rfc8460
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cache;
pub mod dane;
pub mod discovery;
#[cfg(feature = "dns")]
pub mod dns;
pub mod engine;
mod error;
#[cfg(feature = "fetch")]
pub mod fetch;
pub mod manual;
pub mod name;
pub mod postfix;
#[cfg(feature = "redis")]
mod redis_link;
pub mod report;
#[cfg(feature = "resolver")]
pub mod resolver;
mod result_type;
#[cfg(any(feature = "fetch", feature = "rustls"))]
pub mod roots;
pub mod sts;
#[cfg(feature = "rustls")]
pub mod verify;

pub use error::{ParseError, ParseErrorKind};
pub use result_type::{ResultType, UnknownResultType};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
