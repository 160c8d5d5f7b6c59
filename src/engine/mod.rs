//! The decision engine (no IO): the destination controls of a secure email
//! gateway, the per-MX plan with DANE before MTA-STS, the assessment of
//! each connection, and the verdict for the message.
//!
//! ```text
//! DomainFacts ──plan()──▶ Plan ──(the MTA connects)──▶ Attempt ──assess()──▶ HostResult
//!                                                           all attempts ──verdict()──▶ Verdict
//! ```
//!
//! Precedence, per destination (DESIGN.md):
//!
//! 1. An SMTP route exempts the domain from DANE and MTA-STS; the profile's
//!    TLS support applies to the route host (or, with
//!    [`Options::route_policy_domain`], the route host's domain's MTA-STS
//!    policy, RFC 8461 §3.4).
//! 2. DANE first, per MX host, behind a secure MX RRset: usable TLSA
//!    records mean TLS with DANE authentication and MTA-STS is not
//!    consulted for that host; bogus or failed TLSA lookups mean the host is
//!    not used; DANE Mandatory uses no host without usable TLSA records.
//! 3. MTA-STS: `enforce` allows only matching MX hosts, with TLS 1.2+ and a
//!    WebPKI certificate for the MX host name; `testing` delivers under the
//!    TLS support and reports failures (or is enforced, with
//!    [`Options::testing_as_enforce`]); `none` or no policy leaves the TLS
//!    support.
//! 4. The TLS support: No, Preferred, Required, Preferred-Verify,
//!    Required-Verify, Required-Verify-Hosted-Domains.
//!
//! Verdicts: deliver on the first host that passes; otherwise defer —
//! security failures are temporary — and bounce only past the queue
//! lifetime, and under an enforced MTA-STS policy only after the policy
//! was re-checked for a newer id (RFC 8461 §5.1; the verdict asks for it).

mod config;
mod delivery;
mod plan;
mod verdict;

/// The facts the engine plans from (defined in [`discovery`](crate::discovery)).
pub use crate::discovery::{DnssecStatus, DomainFacts, MxFacts, StsFacts, TlsaFacts};
pub use config::{
    ConfigErrors, ConfigProblem, DaneSupport, Destination, DestinationControls, Loaded, Options, Profile, StsSupport,
    TlsSupport, UnknownKeyword, Validation, parse_duration,
};
pub use delivery::{Delivery, Outcome, StsOutcome};
pub use plan::{
    Authentication, Basis, HostPlan, OnAuthFailure, Plan, PlanSts, Requirement, SkipReason, TestingCheck,
    TlsRequirement, TlsVersion,
};
pub use verdict::{
    Attempt, AuthOutcome, CertFailure, DeliveryContext, EnhancedStatus, Failure, HostResult, SecurityLevel, Verdict,
    assess, verdict,
};
