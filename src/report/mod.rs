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
mod record;
mod session;

use std::fmt;

pub use aggregate::{Aggregator, FailureDetail, ReportMeta, ReportPolicy, report_filename};
pub use record::{ReportUri, TLSRPT_VERSION, TlsRptError, TlsRptRecord, select_tlsrpt};
pub use session::Session;

/// A failure result type of an RFC 8460 aggregate report (§4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ResultType {
    /// `starttls-not-supported` (§4.3.1): the receiving MTA did not offer STARTTLS.
    StarttlsNotSupported,
    /// `certificate-host-mismatch` (§4.3.1): the certificate does not name the host.
    CertificateHostMismatch,
    /// `certificate-expired` (§4.3.1): a certificate is outside its validity period.
    CertificateExpired,
    /// `certificate-not-trusted` (§4.3.1): the certificate does not chain to a
    /// trusted anchor (a WebPKI root, or for DANE a matching TLSA record).
    CertificateNotTrusted,
    /// `validation-failure` (§4.3.1): a general failure not covered by another type.
    ValidationFailure,
    /// `tlsa-invalid` (§4.3.2.1): none of the TLSA records was usable.
    TlsaInvalid,
    /// `dnssec-invalid` (§4.3.2.1): DNSSEC validation of a record failed.
    DnssecInvalid,
    /// `dane-required` (§4.3.2.1): DANE was required but no TLSA record was found.
    DaneRequired,
    /// `sts-policy-fetch-error` (§4.3.2.2): the MTA-STS policy could not be fetched.
    StsPolicyFetchError,
    /// `sts-policy-invalid` (§4.3.2.2): the MTA-STS policy did not parse.
    StsPolicyInvalid,
    /// `sts-webpki-invalid` (§4.3.2.2): the policy host's certificate failed validation.
    StsWebpkiInvalid,
}

impl ResultType {
    /// Every result type, in the order of RFC 8460 §4.3.
    pub const ALL: [Self; 11] = [
        Self::StarttlsNotSupported,
        Self::CertificateHostMismatch,
        Self::CertificateExpired,
        Self::CertificateNotTrusted,
        Self::ValidationFailure,
        Self::TlsaInvalid,
        Self::DnssecInvalid,
        Self::DaneRequired,
        Self::StsPolicyFetchError,
        Self::StsPolicyInvalid,
        Self::StsWebpkiInvalid,
    ];

    /// The name used in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StarttlsNotSupported => "starttls-not-supported",
            Self::CertificateHostMismatch => "certificate-host-mismatch",
            Self::CertificateExpired => "certificate-expired",
            Self::CertificateNotTrusted => "certificate-not-trusted",
            Self::ValidationFailure => "validation-failure",
            Self::TlsaInvalid => "tlsa-invalid",
            Self::DnssecInvalid => "dnssec-invalid",
            Self::DaneRequired => "dane-required",
            Self::StsPolicyFetchError => "sts-policy-fetch-error",
            Self::StsPolicyInvalid => "sts-policy-invalid",
            Self::StsWebpkiInvalid => "sts-webpki-invalid",
        }
    }
}

impl fmt::Display for ResultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8460_4_3_names() {
        let names: Vec<_> = ResultType::ALL.iter().map(|t| t.to_string()).collect();
        assert_eq!(
            names,
            [
                "starttls-not-supported",
                "certificate-host-mismatch",
                "certificate-expired",
                "certificate-not-trusted",
                "validation-failure",
                "tlsa-invalid",
                "dnssec-invalid",
                "dane-required",
                "sts-policy-fetch-error",
                "sts-policy-invalid",
                "sts-webpki-invalid",
            ]
        );
    }
}
