//! The outbox: reports waiting for their destinations (RFC 8460 §5.5), and
//! the two steps that move reports along — from closed windows into the
//! outbox, and from the outbox to every `rua`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use super::collect::{CollectError, Collector, ReportStore, StoreError};
use super::deliver::{DestinationState, OutboxEntry, OutgoingReport, RetryPolicy, SendOutcome};
use super::{ReportUri, TlsRptError, select_tlsrpt};
use crate::discovery::{DnsLookup, Rrset};
use crate::name::DomainName;

/// Where reports wait for delivery: in memory ([`MemoryOutbox`]) or a
/// directory ([`DirOutbox`](super::DirOutbox), feature `fs`). An entry is
/// stored whole under its key each time it changes.
pub trait OutboxStore: Send + Sync {
    /// Stores (or replaces) the entry.
    fn put(&self, entry: &OutboxEntry) -> Result<(), StoreError>;
    /// Every entry.
    fn entries(&self) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Removes the entry of this report id.
    fn remove(&self, report_id: &str) -> Result<(), StoreError>;

    /// Claims the next attempts of `report_id` for `ttl`, so that of the
    /// nodes sharing an outbox one sends it: `true` to go on. An outbox of
    /// one node always says yes.
    fn claim(&self, report_id: &str, ttl: std::time::Duration) -> Result<bool, StoreError> {
        let _ = (report_id, ttl);
        Ok(true)
    }
}

impl<S: OutboxStore + ?Sized> OutboxStore for std::sync::Arc<S> {
    fn put(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        (**self).put(entry)
    }
    fn entries(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        (**self).entries()
    }
    fn remove(&self, report_id: &str) -> Result<(), StoreError> {
        (**self).remove(report_id)
    }
    fn claim(&self, report_id: &str, ttl: std::time::Duration) -> Result<bool, StoreError> {
        (**self).claim(report_id, ttl)
    }
}

/// How long a node holds a window or an outbox entry it works on.
const LEASE: std::time::Duration = std::time::Duration::from_secs(300);

/// An [`OutboxStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    entries: Mutex<BTreeMap<String, OutboxEntry>>,
}

impl MemoryOutbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }
}

impl OutboxStore for MemoryOutbox {
    fn put(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.insert(entry.report.report_id.clone(), entry.clone());
        Ok(())
    }
    fn entries(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values().cloned().collect())
    }
    fn remove(&self, report_id: &str) -> Result<(), StoreError> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(report_id);
        Ok(())
    }
}

/// The DNS name of a domain's TLS-RPT record (RFC 8460 §3).
pub fn tlsrpt_name(domain: &DomainName) -> String {
    format!("_smtp._tls.{domain}")
}

/// Where the reports of `domain` go, looked up when the report is sent
/// (RFC 8460 §3): the `rua` of the one `v=TLSRPTv1` record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rua {
    /// Every URI of the record.
    Uris(Vec<ReportUri>),
    /// No record, several, an invalid one, or a lookup refused for good:
    /// the domain gets no report (why, for the log).
    NoReports(String),
    /// The lookup failed: try again later.
    LookupFailed(String),
}

/// Looks up where `domain`'s reports go, through any [`DnsLookup`].
pub async fn discover_rua(dns: &impl DnsLookup, domain: &DomainName) -> Rua {
    match dns.txt(&tlsrpt_name(domain)).await {
        Ok(answer) => match answer.rrset {
            Rrset::Records(records) => match select_tlsrpt(records.iter().map(String::as_str)) {
                Ok(record) => Rua::Uris(record.rua().to_vec()),
                Err(e) => Rua::NoReports(e.to_string()),
            },
            Rrset::NoData | Rrset::NxDomain => Rua::NoReports(TlsRptError::NoRecord.to_string()),
        },
        Err(e) if e.is_temporary() => Rua::LookupFailed(e.to_string()),
        Err(e) => Rua::NoReports(e.to_string()),
    }
}

/// What [`queue_due`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Queued {
    /// Reports put in the outbox, by report id.
    pub queued: Vec<String>,
    /// Domains that publish no (valid) TLS-RPT record, with why.
    pub no_record: Vec<(DomainName, String)>,
    /// Windows kept for later because a lookup failed: the domain whose
    /// lookup failed, and how.
    pub deferred: Vec<(DomainName, String)>,
}

/// Moves every due window of `collector` into `outbox`: one entry per
/// policy domain that publishes a TLS-RPT record, to each of its `rua`
/// URIs. A window is forgotten only once all its reports are in the
/// outbox; a failed lookup keeps it for the next call, until
/// [`CollectorConfig::lookup_give_up`](super::CollectorConfig::lookup_give_up)
/// after the window closed, when that domain's report is dropped.
pub async fn queue_due<S: ReportStore>(
    collector: &Collector<S>,
    outbox: &impl OutboxStore,
    dns: &impl DnsLookup,
    now: SystemTime,
) -> Result<Queued, CollectError> {
    let mut done = Queued::default();
    'windows: for window in collector.due(now)? {
        // Of the nodes sharing the store, one makes the window's reports.
        if !collector.store().claim(window, collector.config().node_id(), LEASE)? {
            continue;
        }
        let mut entries = Vec::new();
        let mut no_record = Vec::new();
        for ready in collector.reports(window)? {
            match discover_rua(dns, &ready.policy_domain).await {
                Rua::Uris(rua) => {
                    let report = OutgoingReport::new(&ready, collector.config().submitter());
                    entries.push(OutboxEntry::new(report, &rua, now));
                }
                Rua::NoReports(why) => no_record.push((ready.policy_domain.clone(), why)),
                Rua::LookupFailed(why) if now < window.closes() + collector.config().lookup_give_up_after() => {
                    done.deferred.push((ready.policy_domain.clone(), why));
                    continue 'windows;
                }
                Rua::LookupFailed(why) => no_record.push((ready.policy_domain.clone(), format!("{why} (given up)"))),
            }
        }
        for entry in &entries {
            outbox.put(entry)?;
        }
        collector.finish(window)?;
        done.queued.extend(entries.into_iter().map(|e| e.report.report_id));
        done.no_record.extend(no_record);
    }
    Ok(done)
}

/// Submits a report mail to the MTA's own queue (or a submission server):
/// the MTA implements it. Report mails carry `TLS-Required: No`.
pub trait MailSubmitter: Send + Sync {
    /// Hands over the complete message for the envelope `from` → `to`.
    fn submit(&self, from: &str, to: &str, message: &[u8]) -> SendOutcome;
}

/// POSTs a gzipped report to an `https:` `rua` (RFC 8460 §5.4): see
/// [`HttpsReportPoster`](crate::fetch::HttpsReportPoster) (feature `fetch`).
pub trait ReportPoster: Send + Sync {
    /// POSTs `gzip` to `uri` with `Content-Type: application/tlsrpt+gzip`.
    fn post(&self, uri: &str, gzip: &[u8]) -> SendOutcome;
}

/// One delivery attempt made by [`send_due`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sent {
    /// The report.
    pub report_id: String,
    /// The destination.
    pub uri: String,
    /// The state after the attempt.
    pub state: DestinationState,
}

/// Tries every due destination of every outbox entry once, records the
/// outcome (retry with back-off, or done), and removes the entries whose
/// destinations are all delivered or given up. `from` is the envelope and
/// header sender of report mails.
pub fn send_due(
    outbox: &impl OutboxStore,
    now: SystemTime,
    retry: &RetryPolicy,
    poster: &dyn ReportPoster,
    mail: &dyn MailSubmitter,
    from: &str,
) -> Result<Vec<Sent>, StoreError> {
    let mut sent = Vec::new();
    for mut entry in outbox.entries()? {
        let due = entry.due(now);
        if due.is_empty() && !entry.is_done() {
            continue;
        }
        if !outbox.claim(&entry.report.report_id, LEASE)? {
            continue;
        }
        for i in due {
            let uri = entry.destinations[i].uri.clone();
            let attempt = match entry.destinations[i].report_uri() {
                Some(ReportUri::Https(u)) => poster.post(&u, &entry.report.gzip),
                Some(ReportUri::Mailto(u)) => {
                    let to = mailto_address(&u);
                    mail.submit(from, &to, &entry.report.mail_message(from, &to, now))
                }
                _ => SendOutcome::Permanent(format!("{uri}: not an https: or mailto: URI")),
            };
            let report_id = entry.report.report_id.clone();
            if let Some(state) = entry.record(i, attempt, now, retry) {
                sent.push(Sent { report_id, uri, state: state.clone() });
            }
        }
        if entry.is_done() {
            outbox.remove(&entry.report.report_id)?;
        } else {
            outbox.put(&entry)?;
        }
    }
    Ok(sent)
}

/// The address of a `mailto:` URI (RFC 6068), without query or escapes
/// beyond `%40`.
fn mailto_address(uri: &str) -> String {
    let rest = uri.strip_prefix("mailto:").unwrap_or(uri);
    let address = rest.split('?').next().unwrap_or(rest);
    address.replace("%40", "@")
}
