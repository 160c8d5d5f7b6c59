//! Aggregating sessions into RFC 8460 §4 reports.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use serde_json::{Map, Value, json};

use super::ResultType;
use crate::dane::TlsaRecord;
use crate::name::DomainName;
use crate::sts::Policy;

/// The policy a session was evaluated against (RFC 8460 §4.4 `policy`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub struct ReportPolicy {
    /// The policy domain. First, so that policies sort by domain and a
    /// domain's report is one run of the aggregator's map.
    pub policy_domain: DomainName,
    /// `sts`, `tlsa` or `no-policy-found`.
    pub policy_type: &'static str,
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
            policy_type: "sts",
            policy_string: policy.to_string().lines().map(str::to_owned).collect(),
            policy_domain: domain.clone(),
            mx_host: policy.mx().iter().map(ToString::to_string).collect(),
        }
    }

    /// A DANE TLSA policy of `domain` (the recipient domain), its records in
    /// presentation form.
    pub fn tlsa(domain: &DomainName, records: &[TlsaRecord]) -> Self {
        Self {
            policy_type: "tlsa",
            policy_string: records.iter().map(ToString::to_string).collect(),
            policy_domain: domain.clone(),
            mx_host: Vec::new(),
        }
    }

    /// An MTA-STS policy `domain` announces (TXT record) but that could
    /// not be fetched or parsed: no policy string, no patterns.
    pub fn sts_unavailable(domain: &DomainName) -> Self {
        Self { policy_type: "sts", policy_string: Vec::new(), policy_domain: domain.clone(), mx_host: Vec::new() }
    }

    /// No policy was found for `domain`.
    pub fn none(domain: &DomainName) -> Self {
        Self {
            policy_type: "no-policy-found",
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

    /// The RFC 8460 §4.4 report for `domain`, as JSON.
    pub fn report(&self, domain: &DomainName, meta: &ReportMeta) -> Value {
        let policies: Vec<Value> = self
            .policies
            .iter()
            .filter(|(p, _)| &p.policy_domain == domain)
            .map(|(p, c)| {
                let mut policy = Map::new();
                policy.insert("policy-type".into(), json!(p.policy_type));
                if !p.policy_string.is_empty() {
                    policy.insert("policy-string".into(), json!(p.policy_string));
                }
                policy.insert("policy-domain".into(), json!(p.policy_domain.as_str()));
                if !p.mx_host.is_empty() {
                    policy.insert("mx-host".into(), json!(p.mx_host));
                }
                let details: Vec<Value> = c.details.iter().map(|(d, n)| detail_json(d, *n)).collect();
                let mut entry = Map::new();
                entry.insert("policy".into(), Value::Object(policy));
                entry.insert(
                    "summary".into(),
                    json!({
                        "total-successful-session-count": c.successful,
                        "total-failure-session-count": c.failed,
                    }),
                );
                if !details.is_empty() {
                    entry.insert("failure-details".into(), Value::Array(details));
                }
                Value::Object(entry)
            })
            .collect();
        json!({
            "organization-name": meta.organization_name,
            "date-range": {
                "start-datetime": rfc3339(meta.start),
                "end-datetime": rfc3339(meta.end),
            },
            "contact-info": meta.contact_info,
            "report-id": meta.report_id,
            "policies": policies,
        })
    }
}

fn detail_json(d: &FailureDetail, count: u64) -> Value {
    let fields = [
        ("sending-mta-ip", d.sending_mta_ip.map(|ip| ip.to_string())),
        ("receiving-mx-hostname", d.receiving_mx_hostname.clone()),
        ("receiving-mx-helo", d.receiving_mx_helo.clone()),
        ("receiving-ip", d.receiving_ip.map(|ip| ip.to_string())),
    ];
    let extra = [
        ("additional-information", d.additional_information.clone()),
        ("failure-reason-code", d.failure_reason_code.clone()),
    ];
    let mut m = Map::new();
    m.insert("result-type".into(), json!(d.result_type.as_str()));
    for (key, value) in fields {
        if let Some(v) = value {
            m.insert(key.into(), json!(v));
        }
    }
    m.insert("failed-session-count".into(), json!(count));
    for (key, value) in extra {
        if let Some(v) = value {
            m.insert(key.into(), json!(v));
        }
    }
    Value::Object(m)
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
