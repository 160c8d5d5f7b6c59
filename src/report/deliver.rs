//! Delivering reports (RFC 8460 §5): the §5.3 mail message, where a report
//! goes, and the outbox that retries each destination (§5.5).

use std::fmt;
use std::time::{Duration, SystemTime};

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;
use serde::{Deserialize, Serialize};

use super::collect::ReadyReport;
use super::{ReportUri, report_filename};
use crate::name::DomainName;

/// The most `rua` destinations one report goes to (RFC 8460 §3 sets no
/// limit; published records name one or two). Further ones are ignored.
pub const MAX_RUA_DESTINATIONS: usize = 10;

/// The media type of a gzipped report (RFC 8460 §6.5).
pub const TLSRPT_GZIP: &str = "application/tlsrpt+gzip";

/// A report ready for its destinations: the gzipped JSON and what the mail
/// message needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutgoingReport {
    /// The report id.
    pub report_id: String,
    /// The policy domain.
    pub policy_domain: String,
    /// The submitting MTA domain.
    pub submitter: String,
    /// Start and end of the window, seconds since the Unix epoch.
    pub window: (u64, u64),
    /// The report, gzipped JSON (RFC 8460 §5.1).
    #[serde(with = "hex_bytes")]
    pub gzip: Vec<u8>,
}

impl OutgoingReport {
    /// A validated report of `ready`, from `submitter`.
    pub fn new(ready: &ReadyReport, submitter: &DomainName) -> Self {
        Self {
            report_id: ready.report.report_id.clone(),
            policy_domain: ready.policy_domain.to_string(),
            submitter: submitter.to_string(),
            window: (ready.window.start_secs(), ready.window.start_secs() + ready.window.length_secs() - 1),
            gzip: ready.report.to_gzip(),
        }
    }

    /// The file name of RFC 8460 §5.1:
    /// `sender!policy-domain!begin!end!unique-id.json.gz`.
    pub fn filename(&self) -> String {
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        match (DomainName::parse(&self.submitter), DomainName::parse(&self.policy_domain)) {
            (Ok(sender), Ok(domain)) => {
                let unique = format!("{:x}", fnv1a(self.report_id.as_bytes()));
                report_filename(&sender, &domain, at(self.window.0), at(self.window.1), Some(&unique), true)
            }
            _ => "report.json.gz".to_owned(),
        }
    }

    /// The complete RFC 5322 message of RFC 8460 §5.3 from `from` to `to`,
    /// dated `date`: `multipart/report; report-type="tlsrpt"`, the
    /// `TLS-Report-Domain` and `TLS-Report-Submitter` fields, the §5.3
    /// Subject, a text part and the report as `application/tlsrpt+gzip`
    /// named per §5.1, and `TLS-Required: No` (RFC 8689 §5) so that a
    /// domain whose TLS is broken still receives its reports.
    pub fn mail_message(&self, from: &str, to: &str, date: SystemTime) -> Vec<u8> {
        let secs = date.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let text = format!(
            "This is an aggregate TLS report (RFC 8460) from {} for {}.\r\nReport-ID: {}\r\n",
            self.submitter, self.policy_domain, self.report_id
        );
        let boundary = format!("tlsrpt-{:016x}", fnv1a(self.report_id.as_bytes()));
        let report = MimePart::new(TLSRPT_GZIP, self.gzip.as_slice()).attachment(self.filename());
        let body = MimePart::new(
            ContentType::new("multipart/report").attribute("report-type", "tlsrpt").attribute("boundary", boundary),
            vec![MimePart::new("text/plain", text), report],
        );
        let message = MessageBuilder::new()
            .from(from)
            .to(to)
            // Plain text folded at its spaces (RFC 5322 §2.2.3), not an
            // encoded word: receivers read the §5.3 Subject as it stands.
            .header(
                "Subject",
                Raw::new(format!(
                    "Report Domain: {}\r\n Submitter: {}\r\n Report-ID: <{}>",
                    self.policy_domain, self.submitter, self.report_id
                )),
            )
            .date(i64::try_from(secs).unwrap_or(0))
            .message_id(format!("{}.{}", fnv1a(to.as_bytes()), self.report_id))
            .header("TLS-Report-Domain", Raw::new(self.policy_domain.clone()))
            .header("TLS-Report-Submitter", Raw::new(self.submitter.clone()))
            .header("TLS-Required", Raw::new("No"))
            .body(body);
        // Writing into a Vec cannot fail.
        message.write_to_vec().unwrap_or_default()
    }
}

/// 64-bit FNV-1a: stable names (file names, boundaries, ids) and the
/// journal's checksum against torn and damaged lines (not against an
/// attacker, who could rewrite the whole directory).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// How a delivery attempt to one destination ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendOutcome {
    /// Accepted (HTTP 2xx, or the message submitted).
    Delivered,
    /// Failed for now (HTTP 5xx, a network error, an SMTP 4xx): retried.
    Temporary(String),
    /// Refused for good (HTTP 4xx, an SMTP 5xx): not retried.
    Permanent(String),
}

/// The state of one destination of an outbox entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DestinationState {
    /// To be tried at `next` (seconds since the Unix epoch).
    Pending {
        /// Attempts so far.
        attempts: u32,
        /// When to try next.
        next: u64,
        /// The last failure, if any.
        last_error: Option<String>,
    },
    /// Delivered.
    Delivered,
    /// Refused for good, or given up after the retry time.
    GaveUp {
        /// Why.
        reason: String,
    },
}

/// One destination of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Destination {
    /// The `rua` URI.
    pub uri: String,
    /// Where it stands.
    pub state: DestinationState,
}

impl Destination {
    /// The URI as a [`ReportUri`].
    pub fn report_uri(&self) -> Option<ReportUri> {
        if self.uri.starts_with("mailto:") {
            Some(ReportUri::Mailto(self.uri.clone()))
        } else if self.uri.starts_with("https:") {
            Some(ReportUri::Https(self.uri.clone()))
        } else {
            None
        }
    }
}

/// A report and every destination of it: removed from the outbox only when
/// each destination is delivered or given up (RFC 8460 §5.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutboxEntry {
    /// The report.
    pub report: OutgoingReport,
    /// When the entry was made (seconds since the Unix epoch).
    pub created: u64,
    /// Every `rua` of the domain's `_smtp._tls` record.
    pub destinations: Vec<Destination>,
}

/// How the outbox retries (RFC 8460 §5.5: retry with back-off, and give
/// up after a while).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    first: Duration,
    max: Duration,
    give_up: Duration,
}

impl Default for RetryPolicy {
    /// Five minutes, doubling up to six hours, given up after four days.
    fn default() -> Self {
        Self {
            first: Duration::from_secs(300),
            max: Duration::from_secs(6 * 3600),
            give_up: Duration::from_secs(4 * 86_400),
        }
    }
}

impl RetryPolicy {
    /// The first retry delay (it doubles with each failure).
    pub fn first(mut self, delay: Duration) -> Self {
        self.first = delay;
        self
    }

    /// The longest delay between retries.
    pub fn max(mut self, delay: Duration) -> Self {
        self.max = delay;
        self
    }

    /// How long after the report was made a destination is given up.
    pub fn give_up_after(mut self, after: Duration) -> Self {
        self.give_up = after;
        self
    }

    fn delay(&self, attempts: u32) -> Duration {
        let factor = 1u32.checked_shl(attempts.saturating_sub(1)).unwrap_or(u32::MAX);
        self.first.checked_mul(factor).map_or(self.max, |d| d.min(self.max))
    }
}

impl OutboxEntry {
    /// An entry for `report` to every URI of `rua`, made at `now`: each
    /// distinct URI once, and at most [`MAX_RUA_DESTINATIONS`] of them, so
    /// that a domain cannot turn one report into a flood of mails or POSTs
    /// by listing many (or the same) addresses.
    pub fn new(report: OutgoingReport, rua: &[ReportUri], now: SystemTime) -> Self {
        let now = secs(now);
        let mut distinct: Vec<&ReportUri> = Vec::new();
        for u in rua {
            if !distinct.contains(&u) && distinct.len() < MAX_RUA_DESTINATIONS {
                distinct.push(u);
            }
        }
        let destinations = distinct
            .into_iter()
            .map(|u| Destination {
                uri: u.as_str().to_owned(),
                state: DestinationState::Pending { attempts: 0, next: now, last_error: None },
            })
            .collect();
        Self { report, created: now, destinations }
    }

    /// The destinations to try at `now`, by index.
    pub fn due(&self, now: SystemTime) -> Vec<usize> {
        let now = secs(now);
        (0..self.destinations.len())
            .filter(|&i| matches!(self.destinations[i].state, DestinationState::Pending { next, .. } if next <= now))
            .collect()
    }

    /// Records how the attempt to destination `i` at `now` ended. Returns
    /// the new state.
    pub fn record(
        &mut self,
        i: usize,
        attempt: SendOutcome,
        now: SystemTime,
        retry: &RetryPolicy,
    ) -> Option<&DestinationState> {
        let created = self.created;
        let destination = self.destinations.get_mut(i)?;
        let attempts = match destination.state {
            DestinationState::Pending { attempts, .. } => attempts.saturating_add(1),
            _ => return Some(&destination.state),
        };
        let now_secs = secs(now);
        destination.state = match attempt {
            SendOutcome::Delivered => DestinationState::Delivered,
            SendOutcome::Permanent(reason) => DestinationState::GaveUp { reason },
            SendOutcome::Temporary(reason) => {
                let next = now_secs.saturating_add(retry.delay(attempts).as_secs());
                if next.saturating_sub(created) > retry.give_up.as_secs() {
                    DestinationState::GaveUp { reason: format!("{reason} (given up after {attempts} attempts)") }
                } else {
                    DestinationState::Pending { attempts, next, last_error: Some(reason) }
                }
            }
        };
        Some(&destination.state)
    }

    /// Whether every destination is delivered or given up.
    pub fn is_done(&self) -> bool {
        self.destinations.iter().all(|d| !matches!(d.state, DestinationState::Pending { .. }))
    }

    /// When the next attempt is due, if any is pending.
    pub fn next_due(&self) -> Option<SystemTime> {
        self.destinations
            .iter()
            .filter_map(|d| match d.state {
                DestinationState::Pending { next, .. } => Some(SystemTime::UNIX_EPOCH + Duration::from_secs(next)),
                _ => None,
            })
            .min()
    }
}

impl fmt::Display for OutboxEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS-RPT report {} for {}", self.report.report_id, self.report.policy_domain)
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Bytes as lower-case hex in JSON (the outbox files stay text).
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd number of hex digits"));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(text.get(i..i + 2).unwrap_or("zz"), 16).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> OutboxEntry {
        let report = OutgoingReport {
            report_id: "r1@mta.example".into(),
            policy_domain: "example.com".into(),
            submitter: "mta.example".into(),
            window: (1_796_688_000, 1_796_774_399),
            gzip: vec![0x1f, 0x8b],
        };
        let rua =
            [ReportUri::Https("https://r.example/tlsrpt".into()), ReportUri::Mailto("mailto:t@example.com".into())];
        OutboxEntry::new(report, &rua, SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_774_400))
    }

    /// RFC 8460 §5.5: retry with back-off; a report leaves the outbox only
    /// when every destination is delivered or given up.
    #[test]
    fn retries_back_off_and_give_up() {
        let retry = RetryPolicy::default();
        let mut e = entry();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(e.created);
        assert_eq!(e.due(t0), vec![0, 1]);
        e.record(1, SendOutcome::Delivered, t0, &retry);
        e.record(0, SendOutcome::Temporary("HTTP 503".into()), t0, &retry);
        assert!(!e.is_done());
        assert_eq!(e.due(t0 + Duration::from_secs(299)), Vec::<usize>::new());
        assert_eq!(e.due(t0 + Duration::from_secs(300)), vec![0]);
        let mut t = t0;
        let mut delays = Vec::new();
        while !e.is_done() {
            let next = e.next_due().unwrap();
            delays.push(next.duration_since(t).unwrap().as_secs());
            t = next;
            e.record(0, SendOutcome::Temporary("HTTP 503".into()), t, &retry);
        }
        assert_eq!(&delays[..7], &[300, 600, 1200, 2400, 4800, 9600, 19200]);
        assert!(delays.iter().all(|&d| d <= 6 * 3600), "{delays:?}");
        let DestinationState::GaveUp { reason } = &e.destinations[0].state else { panic!() };
        assert!(reason.starts_with("HTTP 503 (given up after"), "{reason}");
        assert!(t.duration_since(t0).unwrap() <= Duration::from_secs(4 * 86_400));

        let mut e = entry();
        e.record(0, SendOutcome::Permanent("HTTP 404".into()), t0, &retry);
        e.record(1, SendOutcome::Delivered, t0, &retry);
        assert!(e.is_done());
    }

    /// A hostile record listing many, or repeated, addresses gets each
    /// distinct one once, and no more than MAX_RUA_DESTINATIONS.
    #[test]
    fn rua_destinations_are_distinct_and_bounded() {
        let e = entry();
        let many: Vec<ReportUri> = (0..50).map(|i| ReportUri::Mailto(format!("mailto:t{i}@example.com"))).collect();
        let bounded = OutboxEntry::new(e.report.clone(), &many, SystemTime::UNIX_EPOCH);
        assert_eq!(bounded.destinations.len(), MAX_RUA_DESTINATIONS);
        let same = vec![ReportUri::Https("https://r.example/t".into()); 20];
        assert_eq!(OutboxEntry::new(e.report, &same, SystemTime::UNIX_EPOCH).destinations.len(), 1);
    }

    /// RFC 8460 §5.3: the mail message's fields and parts.
    #[test]
    fn mail_message_rfc8460_5_3() {
        let e = entry();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_774_400);
        let message = e.report.mail_message("tlsrpt@mta.example", "t@example.com", at);
        let text = String::from_utf8(message.clone()).unwrap();
        for want in [
            "Subject: Report Domain: example.com\r\n Submitter: mta.example\r\n Report-ID: <r1@mta.example>",
            "TLS-Report-Domain: example.com",
            "TLS-Report-Submitter: mta.example",
            "TLS-Required: No",
            "multipart/report",
            "report-type=\"tlsrpt\"",
            "Content-Type: application/tlsrpt+gzip",
            "mta.example!example.com!1796688000!1796774399!",
            ".json.gz",
        ] {
            assert!(text.contains(want), "{want:?} missing in\n{text}");
        }
        assert_eq!(message, e.report.mail_message("tlsrpt@mta.example", "t@example.com", at), "deterministic");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<OutboxEntry>(&json).unwrap(), e);
    }
}
