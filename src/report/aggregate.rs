//! Aggregating sessions into RFC 8460 §4 reports.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ResultType;
use crate::dane::TlsaRecord;
use crate::name::DomainName;
use crate::sts::Policy;

/// The `policy-type` of RFC 8460 §4.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PolicyType {
    /// An MTA-STS policy.
    #[serde(rename = "sts")]
    Sts,
    /// DANE TLSA records.
    #[serde(rename = "tlsa")]
    Tlsa,
    /// Neither.
    #[serde(rename = "no-policy-found")]
    NoPolicyFound,
}

impl PolicyType {
    /// The name in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sts => "sts",
            Self::Tlsa => "tlsa",
            Self::NoPolicyFound => "no-policy-found",
        }
    }
}

impl std::fmt::Display for PolicyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The policy a session was evaluated against (RFC 8460 §4.4 `policy`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub struct ReportPolicy {
    /// The policy domain. First, so that policies sort by domain and a
    /// domain's report is one run of the aggregator's map.
    pub policy_domain: DomainName,
    /// `sts`, `tlsa` or `no-policy-found`.
    pub policy_type: PolicyType,
    /// The policy as text: the MTA-STS policy lines, or the TLSA records
    /// in presentation form.
    pub policy_string: Vec<String>,
    /// For MTA-STS, the policy's `mx` patterns.
    pub mx_host: Vec<String>,
}

impl ReportPolicy {
    /// An MTA-STS policy of `domain` (RFC 8460 §4.4: `policy-string` is the
    /// policy's lines, `mx-host` its patterns).
    pub fn sts(domain: &DomainName, policy: &Policy) -> Self {
        Self {
            policy_type: PolicyType::Sts,
            policy_string: policy.to_string().lines().map(str::to_owned).collect(),
            policy_domain: domain.clone(),
            mx_host: policy.mx().iter().map(ToString::to_string).collect(),
        }
    }

    /// A DANE TLSA policy of `domain` (the recipient domain), its records in
    /// presentation form.
    pub fn tlsa(domain: &DomainName, records: &[TlsaRecord]) -> Self {
        Self {
            policy_type: PolicyType::Tlsa,
            policy_string: records.iter().map(ToString::to_string).collect(),
            policy_domain: domain.clone(),
            mx_host: Vec::new(),
        }
    }

    /// An MTA-STS policy `domain` announces (TXT record) but that could
    /// not be fetched or parsed: no policy string, no patterns.
    pub fn sts_unavailable(domain: &DomainName) -> Self {
        Self {
            policy_type: PolicyType::Sts,
            policy_string: Vec::new(),
            policy_domain: domain.clone(),
            mx_host: Vec::new(),
        }
    }

    /// No policy was found for `domain`.
    pub fn none(domain: &DomainName) -> Self {
        Self {
            policy_type: PolicyType::NoPolicyFound,
            policy_string: Vec::new(),
            policy_domain: domain.clone(),
            mx_host: Vec::new(),
        }
    }
}

/// One failed session's details (RFC 8460 §4.4 `failure-details`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub struct FailureDetail {
    /// The result type.
    pub result_type: ResultType,
    /// The sending MTA's IP address.
    pub sending_mta_ip: Option<IpAddr>,
    /// The receiving MX host name.
    pub receiving_mx_hostname: Option<String>,
    /// The receiving MX's HELO/EHLO name.
    pub receiving_mx_helo: Option<String>,
    /// The receiving MX's IP address.
    pub receiving_ip: Option<IpAddr>,
    /// Free text for the receiving domain.
    pub additional_information: Option<String>,
    /// A code naming the failure more precisely.
    pub failure_reason_code: Option<String>,
}

impl FailureDetail {
    /// A failure of this type at this MX host.
    pub fn new(result_type: ResultType, receiving_mx_hostname: Option<&DomainName>) -> Self {
        Self {
            result_type,
            sending_mta_ip: None,
            receiving_mx_hostname: receiving_mx_hostname.map(ToString::to_string),
            receiving_mx_helo: None,
            receiving_ip: None,
            additional_information: None,
            failure_reason_code: None,
        }
    }

    /// Sets the sending and receiving IP addresses.
    pub fn with_ips(mut self, sending: Option<IpAddr>, receiving: Option<IpAddr>) -> Self {
        self.sending_mta_ip = sending;
        self.receiving_ip = receiving;
        self
    }

    /// Sets the failure reason code (free text, e.g. the verifier's error).
    pub fn with_reason_code(mut self, code: impl Into<String>) -> Self {
        self.failure_reason_code = Some(code.into());
        self
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Counts {
    successful: u64,
    failed: u64,
    details: BTreeMap<FailureDetail, u64>,
}

/// The fields of a report that do not come from the sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReportMeta {
    /// The reporting organization.
    pub organization_name: String,
    /// Where to reach it.
    pub contact_info: String,
    /// A unique id for the report.
    pub report_id: String,
    /// The start of the reporting period.
    pub start: SystemTime,
    /// The end of the reporting period.
    pub end: SystemTime,
}

impl ReportMeta {
    /// Report metadata.
    pub fn new(
        organization_name: impl Into<String>,
        contact_info: impl Into<String>,
        report_id: impl Into<String>,
        start: SystemTime,
        end: SystemTime,
    ) -> Self {
        Self {
            organization_name: organization_name.into(),
            contact_info: contact_info.into(),
            report_id: report_id.into(),
            start,
            end,
        }
    }
}

/// Counts successful and failed sessions per policy domain and policy, and
/// renders the RFC 8460 §4.4 JSON report of a domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aggregator {
    policies: BTreeMap<ReportPolicy, Counts>,
}

impl Aggregator {
    /// An empty aggregator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a session that met the policy.
    pub fn record_success(&mut self, policy: &ReportPolicy) {
        self.entry(policy).successful += 1;
    }

    /// Records a session that failed, with its details.
    pub fn record_failure(&mut self, policy: &ReportPolicy, detail: FailureDetail) {
        let counts = self.entry(policy);
        counts.failed += 1;
        *counts.details.entry(detail).or_insert(0) += 1;
    }

    /// Adds `count` sessions against `policy`, failed with `failure` or
    /// successful (what a [`ReportStore`](super::ReportStore) replays).
    pub fn add(&mut self, policy: &ReportPolicy, failure: Option<&FailureDetail>, count: u64) {
        let counts = self.entry(policy);
        match failure {
            None => counts.successful = counts.successful.saturating_add(count),
            Some(detail) => {
                counts.failed = counts.failed.saturating_add(count);
                let n = counts.details.entry(detail.clone()).or_insert(0);
                *n = n.saturating_add(count);
            }
        }
    }

    /// Every count, as the increments that would rebuild it.
    pub fn increments(&self) -> impl Iterator<Item = (&ReportPolicy, Option<&FailureDetail>, u64)> {
        self.policies.iter().flat_map(|(policy, c)| {
            let success = (c.successful > 0).then_some((policy, None, c.successful));
            success.into_iter().chain(c.details.iter().map(move |(d, n)| (policy, Some(d), *n)))
        })
    }

    /// Whether no session is counted.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    fn entry(&mut self, policy: &ReportPolicy) -> &mut Counts {
        self.policies.entry(policy.clone()).or_default()
    }

    /// The policy domains with sessions.
    pub fn domains(&self) -> Vec<DomainName> {
        let mut d: Vec<DomainName> = self.policies.keys().map(|p| p.policy_domain.clone()).collect();
        d.dedup();
        d
    }

    /// The successful and failed session counts for `domain`.
    pub fn totals(&self, domain: &DomainName) -> (u64, u64) {
        self.policies
            .iter()
            .filter(|(p, _)| &p.policy_domain == domain)
            .fold((0, 0), |(s, f), (_, c)| (s + c.successful, f + c.failed))
    }

    /// The RFC 8460 §4.4 report for `domain`.
    pub fn aggregate(&self, domain: &DomainName, meta: &ReportMeta) -> AggregateReport {
        let policies = self
            .policies
            .iter()
            .filter(|(p, _)| &p.policy_domain == domain)
            .map(|(p, c)| PolicyReport {
                policy: PolicyDescription {
                    policy_type: p.policy_type,
                    policy_string: p.policy_string.clone(),
                    policy_domain: p.policy_domain.to_string(),
                    mx_host: p.mx_host.clone(),
                },
                summary: Summary {
                    total_successful_session_count: c.successful,
                    total_failure_session_count: c.failed,
                },
                failure_details: c
                    .details
                    .iter()
                    .map(|(d, n)| FailureDetails {
                        result_type: d.result_type,
                        sending_mta_ip: d.sending_mta_ip,
                        receiving_mx_hostname: d.receiving_mx_hostname.clone(),
                        receiving_mx_helo: d.receiving_mx_helo.clone(),
                        receiving_ip: d.receiving_ip,
                        failed_session_count: *n,
                        additional_information: d.additional_information.clone(),
                        failure_reason_code: d.failure_reason_code.clone(),
                    })
                    .collect(),
            })
            .collect();
        AggregateReport {
            organization_name: meta.organization_name.clone(),
            date_range: DateRange { start_datetime: rfc3339(meta.start), end_datetime: rfc3339(meta.end) },
            contact_info: meta.contact_info.clone(),
            report_id: meta.report_id.clone(),
            policies,
        }
    }

    /// [`aggregate`](Self::aggregate) as JSON.
    pub fn report(&self, domain: &DomainName, meta: &ReportMeta) -> Value {
        // Strings, numbers and sequences only: serializing cannot fail.
        serde_json::to_value(self.aggregate(domain, meta)).unwrap_or_default()
    }
}

/// Why a report is not fit to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A member RFC 8460 §4.4 requires is empty (receivers such as
    /// parsedmarc refuse the report): set it in the collector's configuration.
    #[error("TLS-RPT report: {0} is empty (RFC 8460 §4.4 requires it)")]
    MissingField(&'static str),
    /// The report has no policy (nothing to report).
    #[error("TLS-RPT report {report_id}: no policies")]
    NoPolicies {
        /// The report.
        report_id: String,
    },
    /// A policy's failure details count more sessions than its summary.
    #[error(
        "TLS-RPT report {report_id}: policy of {policy_domain} lists {details} failed sessions in its details but {summary} in its summary"
    )]
    Inconsistent {
        /// The report.
        report_id: String,
        /// The policy's domain.
        policy_domain: String,
        /// The sum of the details.
        details: u64,
        /// The summary's failure count.
        summary: u64,
    },
    /// The date range does not read as RFC 3339 or ends before it starts.
    #[error("TLS-RPT report {report_id}: date range {start} to {end} is not valid")]
    DateRange {
        /// The report.
        report_id: String,
        /// `start-datetime`.
        start: String,
        /// `end-datetime`.
        end: String,
    },
}

impl AggregateReport {
    /// Checks what receivers rely on (RFC 8460 §4.4): organization name,
    /// contact info and report id present, a date range that reads, at
    /// least one policy, each with its `policy-domain`, and failure details
    /// within the failure count.
    pub fn validate(&self) -> Result<(), ReportError> {
        for (name, value) in [
            ("organization-name", &self.organization_name),
            ("contact-info", &self.contact_info),
            ("report-id", &self.report_id),
        ] {
            if value.trim().is_empty() {
                return Err(ReportError::MissingField(name));
            }
        }
        let parse = |t: &str| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok();
        match (parse(&self.date_range.start_datetime), parse(&self.date_range.end_datetime)) {
            (Some(start), Some(end)) if start <= end => {}
            _ => {
                return Err(ReportError::DateRange {
                    report_id: self.report_id.clone(),
                    start: self.date_range.start_datetime.clone(),
                    end: self.date_range.end_datetime.clone(),
                });
            }
        }
        if self.policies.is_empty() {
            return Err(ReportError::NoPolicies { report_id: self.report_id.clone() });
        }
        for p in &self.policies {
            if p.policy.policy_domain.trim().is_empty() {
                return Err(ReportError::MissingField("policy-domain"));
            }
            let details = p.failure_details.iter().fold(0u64, |n, d| n.saturating_add(d.failed_session_count));
            if details > p.summary.total_failure_session_count {
                return Err(ReportError::Inconsistent {
                    report_id: self.report_id.clone(),
                    policy_domain: p.policy.policy_domain.clone(),
                    details,
                    summary: p.summary.total_failure_session_count,
                });
            }
        }
        Ok(())
    }

    /// The report as JSON (RFC 8460 §4.4).
    pub fn to_json(&self) -> String {
        // Strings, numbers and sequences only: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The JSON compressed with gzip (RFC 8460 §5.1, `application/tlsrpt+gzip`).
    pub fn to_gzip(&self) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        // Writing into a Vec cannot fail.
        let _ = gz.write_all(self.to_json().as_bytes());
        gz.finish().unwrap_or_default()
    }
}

/// An RFC 8460 §4.4 aggregate report: what [`Aggregator::aggregate`]
/// makes, and what a report consumer reads back (`serde_json::from_str`;
/// unknown members are ignored, as §4.4 asks of extensions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct AggregateReport {
    /// The reporting organization.
    pub organization_name: String,
    /// The period covered.
    pub date_range: DateRange,
    /// Whom to contact about the report.
    pub contact_info: String,
    /// The report's unique id.
    pub report_id: String,
    /// One entry per policy.
    pub policies: Vec<PolicyReport>,
}

/// `date-range`: RFC 3339 date-times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct DateRange {
    /// The start.
    pub start_datetime: String,
    /// The end.
    pub end_datetime: String,
}

/// One policy's entry of `policies`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct PolicyReport {
    /// The policy.
    pub policy: PolicyDescription,
    /// The session counts.
    pub summary: Summary,
    /// The failures, grouped (left out when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failure_details: Vec<FailureDetails>,
}

/// `policy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct PolicyDescription {
    /// `sts`, `tlsa` or `no-policy-found`.
    pub policy_type: PolicyType,
    /// The policy's text (left out when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_string: Vec<String>,
    /// The policy domain.
    pub policy_domain: String,
    /// MTA-STS `mx` patterns (left out when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mx_host: Vec<String>,
}

/// `summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct Summary {
    /// Sessions that met the policy.
    pub total_successful_session_count: u64,
    /// Sessions that failed.
    pub total_failure_session_count: u64,
}

/// One entry of `failure-details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct FailureDetails {
    /// The result type.
    pub result_type: ResultType,
    /// The sending MTA's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_mta_ip: Option<IpAddr>,
    /// The receiving MX host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiving_mx_hostname: Option<String>,
    /// The receiving MX's HELO/EHLO name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiving_mx_helo: Option<String>,
    /// The receiving address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiving_ip: Option<IpAddr>,
    /// How many sessions failed so.
    pub failed_session_count: u64,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_information: Option<String>,
    /// A code naming the failure more precisely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason_code: Option<String>,
}

/// The report file name (RFC 8460 §5.1):
/// `sender "!" policy-domain "!" begin "!" end ["!" unique-id] "." ext`,
/// timestamps in seconds since the epoch, ext `json` or `json.gz`. The
/// unique-id is `1*(ALPHA / DIGIT)`: other characters of `unique_id` are
/// dropped, and one left empty is omitted.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use smtp_tls_policy::name::DomainName;
/// use smtp_tls_policy::report::report_filename;
/// let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_470_013_207);
/// let end = SystemTime::UNIX_EPOCH + Duration::from_secs(1_470_186_007);
/// let sender = DomainName::parse("mail.sender.example").unwrap();
/// let domain = DomainName::parse("recipient.example").unwrap();
/// assert_eq!(
///     report_filename(&sender, &domain, start, end, Some("001"), true),
///     "mail.sender.example!recipient.example!1470013207!1470186007!001.json.gz"
/// );
/// // Only letters and digits make a unique-id.
/// assert_eq!(
///     report_filename(&sender, &domain, start, end, Some("../x!1.json"), false),
///     "mail.sender.example!recipient.example!1470013207!1470186007!x1json.json"
/// );
/// assert_eq!(
///     report_filename(&sender, &domain, start, end, Some("-_-"), false),
///     "mail.sender.example!recipient.example!1470013207!1470186007.json"
/// );
/// ```
pub fn report_filename(
    sender: &DomainName,
    policy_domain: &DomainName,
    start: SystemTime,
    end: SystemTime,
    unique_id: Option<&str>,
    gzip: bool,
) -> String {
    let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // RFC 8460 §5.1: unique-id = 1*(ALPHA / DIGIT); anything else (a `!`,
    // a `/`, a dot that would change the extension) is dropped.
    let unique: String = unique_id.unwrap_or("").chars().filter(char::is_ascii_alphanumeric).collect();
    let unique = if unique.is_empty() { unique } else { format!("!{unique}") };
    let ext = if gzip { "json.gz" } else { "json" };
    format!("{sender}!{policy_domain}!{}!{}{unique}.{ext}", secs(start), secs(end))
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC; whole seconds).
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let at = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_dates() {
        let at = |s| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_459_468_800), "2016-04-01T00:00:00Z");
        assert_eq!(at(1_459_555_199), "2016-04-01T23:59:59Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_795_824_000), "2026-11-28T00:00:00Z");
    }
}
