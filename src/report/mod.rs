//! SMTP TLS Reporting (RFC 8460): the `_smtp._tls` record, the result
//! types every failure of the crate maps to, and the aggregate report.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use smtp_tls_policy::name::DomainName;
//! use smtp_tls_policy::report::{Aggregator, FailureDetail, ReportMeta, ReportPolicy, ResultType};
//! use smtp_tls_policy::sts::Policy;
//!
//! let domain = DomainName::parse("company-y.example").unwrap();
//! let policy = Policy::parse("version: STSv1\nmode: testing\nmx: *.mail.company-y.example\nmax_age: 86400\n").unwrap();
//! let sts = ReportPolicy::sts(&domain, &policy);
//! let mut agg = Aggregator::new();
//! agg.record_success(&sts);
//! let mx = DomainName::parse("mx1.mail.company-y.example").unwrap();
//! agg.record_failure(&sts, FailureDetail::new(ResultType::CertificateExpired, Some(&mx)));
//! let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_459_468_800);
//! let meta = ReportMeta::new("Company-X", "sts-reporting@company-x.example", "5065427c", start, start + Duration::from_secs(86_399));
//! let json = agg.report(&domain, &meta);
//! assert_eq!(json["policies"][0]["summary"]["total-failure-session-count"], 1);
//! assert_eq!(json["date-range"]["end-datetime"], "2016-04-01T23:59:59Z");
//! ```

mod aggregate;
mod collect;
mod deliver;
#[cfg(any(feature = "fs", feature = "redis"))]
mod encode;
#[cfg(feature = "fs")]
mod journal;
mod outbox;
mod record;
#[cfg(feature = "redis")]
mod redis;
mod session;
#[cfg(feature = "submission")]
mod submission;

pub use aggregate::{
    AggregateReport, Aggregator, DateRange, FailureDetail, FailureDetails, PolicyDescription, PolicyReport, PolicyType,
    ReportError, ReportMeta, ReportPolicy, Summary, report_filename,
};
pub use collect::{
    CollectError, Collector, CollectorConfig, Increment, MemoryStore, ReadyReport, ReportStore, StoreError, Window,
    WindowLength,
};
pub use deliver::{
    Destination, DestinationState, MAX_RUA_DESTINATIONS, OutboxEntry, OutgoingReport, RetryPolicy, SendOutcome,
    TLSRPT_GZIP,
};
#[cfg(feature = "fs")]
pub use journal::{COMPACT_AFTER_LINES, DirOutbox, JournalStore};
pub use outbox::{
    MailSubmitter, MemoryOutbox, OutboxStore, Queued, ReportPoster, Rua, Sent, discover_rua, queue_due, send_due,
    tlsrpt_name,
};
pub use record::{ReportUri, TLSRPT_VERSION, TlsRptError, TlsRptRecord, select_tlsrpt};
#[cfg(feature = "redis")]
pub use redis::{DEFAULT_PREFIX, RedisOutbox, RedisReportStore};
pub use session::Session;
#[cfg(feature = "submission")]
pub use submission::{SmtpSubmitter, SubmissionConfig, SubmissionError, SubmissionSecurity};

/// The result types (defined in a leaf module that the DANE and cache
/// modules use too).
pub use crate::result_type::ResultType;
