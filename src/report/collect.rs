//! Collecting sessions into reporting windows (RFC 8460 §4.1), in a store
//! that several MTAs may share.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::{AggregateReport, Aggregator, FailureDetail, ReportError, ReportMeta, ReportPolicy, Session};
use crate::name::DomainName;

/// How long a reporting window lasts. RFC 8460 §4.1: a report covers a
/// UTC day, 00:00:00Z to 23:59:59Z, which is what large senders use; an
/// hour serves tests and operators who want reports sooner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum WindowLength {
    /// A UTC day (the default).
    #[default]
    Day,
    /// A UTC hour.
    Hour,
}

impl WindowLength {
    /// The length in seconds.
    pub fn secs(self) -> u64 {
        match self {
            Self::Day => 86_400,
            Self::Hour => 3_600,
        }
    }
}

/// One reporting window: a UTC day (or hour), aligned to its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// Seconds since the Unix epoch of the first second.
    start: u64,
    /// Seconds in the window.
    length: u64,
}

impl Window {
    /// The window of `length` that holds `t` (a time before the epoch falls
    /// in the first window).
    pub fn containing(t: SystemTime, length: WindowLength) -> Self {
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let length = length.secs();
        Self { start: secs - secs % length, length }
    }

    /// A window from its stored form: `start` must be aligned to `length`,
    /// which must be one of [`WindowLength`]'s.
    pub fn from_parts(start: u64, length: u64) -> Option<Self> {
        let known = [WindowLength::Day.secs(), WindowLength::Hour.secs()].contains(&length);
        (known && start.is_multiple_of(length)).then_some(Self { start, length })
    }

    /// The first second, in seconds since the Unix epoch.
    pub fn start_secs(&self) -> u64 {
        self.start
    }

    /// The window's length in seconds.
    pub fn length_secs(&self) -> u64 {
        self.length
    }

    /// The first second (`start-datetime`).
    pub fn start(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(self.start)
    }

    /// The last second (`end-datetime`, e.g. 23:59:59Z).
    pub fn end(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(self.start + self.length - 1)
    }

    /// When the window is over and may be reported.
    pub fn closes(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(self.start + self.length)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {}", super::aggregate::rfc3339(self.start()), super::aggregate::rfc3339(self.end()))
    }
}

/// A count to add to a window: `count` sessions against `policy`, failed
/// with `failure` or successful. Stores add increments and never rewrite a
/// count they read, so that collectors on several MTAs sharing one store
/// merge exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Increment {
    /// The window the sessions fall in.
    pub window: Window,
    /// The policy they were evaluated against.
    pub policy: ReportPolicy,
    /// `None` for successful sessions.
    pub failure: Option<FailureDetail>,
    /// How many.
    pub count: u64,
}

impl Increment {
    /// `count` sessions like `session` in `window`.
    pub fn new(window: Window, session: &Session, count: u64) -> Self {
        Self { window, policy: session.policy.clone(), failure: session.failure.clone(), count }
    }
}

/// Why a report store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing the store failed; nothing recorded by the call
    /// that failed is counted. Check the path, its permissions and free space.
    #[error("TLS-RPT store {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The store holds a record that does not read back; it was skipped
    /// and the rest kept.
    #[error("TLS-RPT store {path}: record {record} is not valid ({reason}); it was skipped")]
    Corrupt {
        /// The file.
        path: String,
        /// Which record (1-based).
        record: usize,
        /// Why.
        reason: String,
    },
    /// A shared store could not be reached; the sessions were not recorded.
    #[error("TLS-RPT store unavailable: {0}")]
    Unavailable(String),
}

/// Why the collector could not make a window's reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A report is not fit to send (see the configuration).
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// Where the collector keeps its counts: in memory ([`MemoryStore`]), a
/// journal on disk ([`JournalStore`](super::JournalStore), feature `fs`) or
/// a store several MTAs share. Every method may be called from several
/// threads.
pub trait ReportStore: Send + Sync {
    /// Adds the increments, all or none.
    fn add(&self, increments: &[Increment]) -> Result<(), StoreError>;

    /// The windows that hold counts, oldest first.
    fn windows(&self) -> Result<Vec<Window>, StoreError>;

    /// The counts of `window`.
    fn counts(&self, window: Window) -> Result<Aggregator, StoreError>;

    /// Forgets `window` (once its reports are in the outbox).
    fn remove(&self, window: Window) -> Result<(), StoreError>;

    /// Claims the making of `window`'s reports for the node `node` for
    /// `ttl`: `true` for the one node that may go on. A store only one
    /// collector uses always says yes; a shared one (Redis) gives a lease
    /// that expires if its holder dies.
    fn claim(&self, window: Window, node: u64, ttl: Duration) -> Result<bool, StoreError> {
        let _ = (window, node, ttl);
        Ok(true)
    }
}

/// A [`ReportStore`] in memory: counts are lost with the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    windows: Mutex<BTreeMap<Window, Aggregator>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ReportStore for MemoryStore {
    fn add(&self, increments: &[Increment]) -> Result<(), StoreError> {
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for i in increments {
            windows.entry(i.window).or_default().add(&i.policy, i.failure.as_ref(), i.count);
        }
        Ok(())
    }

    fn windows(&self) -> Result<Vec<Window>, StoreError> {
        Ok(self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner).keys().copied().collect())
    }

    fn counts(&self, window: Window) -> Result<Aggregator, StoreError> {
        let windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(windows.get(&window).cloned().unwrap_or_default())
    }

    fn remove(&self, window: Window) -> Result<(), StoreError> {
        self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&window);
        Ok(())
    }
}

impl<S: ReportStore + ?Sized> ReportStore for std::sync::Arc<S> {
    fn add(&self, increments: &[Increment]) -> Result<(), StoreError> {
        (**self).add(increments)
    }
    fn windows(&self) -> Result<Vec<Window>, StoreError> {
        (**self).windows()
    }
    fn counts(&self, window: Window) -> Result<Aggregator, StoreError> {
        (**self).counts(window)
    }
    fn remove(&self, window: Window) -> Result<(), StoreError> {
        (**self).remove(window)
    }
    fn claim(&self, window: Window, node: u64, ttl: Duration) -> Result<bool, StoreError> {
        (**self).claim(window, node, ttl)
    }
}

/// What a collector puts in every report, and when it reports.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    organization_name: String,
    contact_info: String,
    submitter: DomainName,
    window: WindowLength,
    spread: Duration,
    node: u64,
    lookup_give_up: Duration,
}

impl CollectorConfig {
    /// Reports from `organization_name`, reachable at `contact_info` (RFC
    /// 8460 §4.4 requires both; receivers' parsers refuse reports without
    /// them), submitted by the MTA domain `submitter` (§5.3
    /// `TLS-Report-Submitter`). Daily windows, reported within an hour of
    /// their close.
    pub fn new(organization_name: impl Into<String>, contact_info: impl Into<String>, submitter: DomainName) -> Self {
        Self {
            organization_name: organization_name.into(),
            contact_info: contact_info.into(),
            submitter,
            window: WindowLength::Day,
            spread: Duration::from_secs(3_600),
            node: 0,
            lookup_give_up: Duration::from_secs(86_400),
        }
    }

    /// How long after a window closes a failing `_smtp._tls` lookup (a
    /// timeout, SERVFAIL, a bogus answer) keeps the window waiting; past
    /// it, that domain's report is dropped so that one broken domain does
    /// not hold back the others' (default a day).
    pub fn lookup_give_up(mut self, after: Duration) -> Self {
        self.lookup_give_up = after;
        self
    }

    /// [`lookup_give_up`](Self::lookup_give_up).
    pub fn lookup_give_up_after(&self) -> Duration {
        self.lookup_give_up
    }

    /// The window length (default: a UTC day).
    pub fn window(mut self, length: WindowLength) -> Self {
        self.window = length;
        self
    }

    /// The longest delay after a window closes before it is reported (RFC
    /// 8460 §4.1 asks senders not to all report at 00:00Z); the delay of
    /// each window is drawn from `0..spread` by the node seed. Default one
    /// hour; zero reports at once.
    pub fn spread(mut self, spread: Duration) -> Self {
        self.spread = spread;
        self
    }

    /// A number that tells this collector from the others sending for the
    /// same organization (it goes into every report id, and draws the
    /// spread delay); pick it at random once per node, e.g. at install.
    pub fn node(mut self, node: u64) -> Self {
        self.node = node;
        self
    }

    /// The submitting MTA domain.
    pub fn submitter(&self) -> &DomainName {
        &self.submitter
    }

    /// The window length.
    pub fn window_length(&self) -> WindowLength {
        self.window
    }

    /// The node number.
    pub fn node_id(&self) -> u64 {
        self.node
    }
}

/// One domain's report of one window, validated and ready to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadyReport {
    /// The policy domain (whose `_smtp._tls` record says where it goes).
    pub policy_domain: DomainName,
    /// The window it covers.
    pub window: Window,
    /// The report.
    pub report: AggregateReport,
}

/// Records the sessions of deliveries into UTC windows and turns each
/// closed window into one report per policy domain (RFC 8460 §4).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use smtp_tls_policy::name::DomainName;
/// use smtp_tls_policy::report::{Collector, CollectorConfig, MemoryStore, ReportPolicy, Session};
///
/// let config = CollectorConfig::new("Example MTA", "mailto:tlsrpt@mta.example", DomainName::parse("mta.example").unwrap())
///     .spread(Duration::ZERO);
/// let collector = Collector::new(MemoryStore::new(), config);
/// let noon = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_731_200); // 2026-12-08T12:00:00Z
/// let domain = DomainName::parse("example.com").unwrap();
/// collector.record(noon, &[Session::success(ReportPolicy::none(&domain))]).unwrap();
/// assert!(collector.due(noon).unwrap().is_empty(), "the day is not over");
/// let next_day = noon + Duration::from_secs(12 * 3600);
/// let window = collector.due(next_day).unwrap()[0];
/// let reports = collector.reports(window).unwrap();
/// assert_eq!(reports[0].report.policies[0].summary.total_successful_session_count, 1);
/// assert_eq!(reports[0].report.date_range.end_datetime, "2026-12-08T23:59:59Z");
/// ```
#[derive(Debug)]
pub struct Collector<S> {
    store: S,
    config: CollectorConfig,
}

impl<S: ReportStore> Collector<S> {
    /// A collector over `store`.
    pub fn new(store: S, config: CollectorConfig) -> Self {
        Self { store, config }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &CollectorConfig {
        &self.config
    }

    /// Records the sessions of deliveries that happened at `now` (one call
    /// per delivery or per batch: a store writes each call at once).
    /// Sessions of the same policy and failure are counted together.
    pub fn record(&self, now: SystemTime, sessions: &[Session]) -> Result<(), StoreError> {
        let window = Window::containing(now, self.config.window);
        let mut increments: Vec<Increment> = Vec::with_capacity(sessions.len());
        for session in sessions {
            match increments.iter_mut().find(|i| i.policy == session.policy && i.failure == session.failure) {
                Some(same) => same.count += 1,
                None => increments.push(Increment::new(window, session, 1)),
            }
        }
        if increments.is_empty() {
            return Ok(());
        }
        self.store.add(&increments)
    }

    /// When `window` is to be reported: after it closes, plus this node's
    /// spread delay for it.
    pub fn due_at(&self, window: Window) -> SystemTime {
        let spread = self.config.spread.as_secs();
        let delay = if spread == 0 { 0 } else { mix(self.config.node ^ window.start) % spread };
        window.closes() + Duration::from_secs(delay)
    }

    /// The windows to report at `now`: closed, and their spread delay past.
    pub fn due(&self, now: SystemTime) -> Result<Vec<Window>, StoreError> {
        Ok(self.store.windows()?.into_iter().filter(|w| self.due_at(*w) <= now).collect())
    }

    /// The reports of `window`, one per policy domain, each validated
    /// ([`AggregateReport::validate`]).
    pub fn reports(&self, window: Window) -> Result<Vec<ReadyReport>, CollectError> {
        let counts = self.store.counts(window)?;
        let reports = counts
            .domains()
            .into_iter()
            .map(|domain| {
                let meta = ReportMeta::new(
                    self.config.organization_name.clone(),
                    self.config.contact_info.clone(),
                    self.report_id(window, &domain),
                    window.start(),
                    window.end(),
                );
                let report = counts.aggregate(&domain, &meta);
                report.validate()?;
                Ok(ReadyReport { policy_domain: domain, window, report })
            })
            .collect::<Result<_, ReportError>>()?;
        Ok(reports)
    }

    /// Forgets `window` once its reports are safely elsewhere (the outbox).
    pub fn finish(&self, window: Window) -> Result<(), StoreError> {
        self.store.remove(window)
    }

    /// A report id unique to the window, the domain and this node
    /// (RFC 8460 §4.4 `report-id`).
    fn report_id(&self, window: Window, domain: &DomainName) -> String {
        let start = super::aggregate::rfc3339(window.start()).replace([':', '-'], "");
        format!("{start}.{domain}.{:016x}@{}", mix(self.config.node ^ mix(window.start)), self.config.submitter)
    }
}

/// A 64-bit mix (splitmix64's finaliser): spreads a seed over all bits.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// RFC 8460 §4.1: windows are UTC days, 00:00:00Z to 23:59:59Z.
    #[test]
    fn windows_are_utc_days_or_hours() {
        let day = Window::containing(at(1_796_731_200 + 5), WindowLength::Day);
        assert_eq!(day.start(), at(1_796_688_000));
        assert_eq!(super::super::aggregate::rfc3339(day.end()), "2026-12-08T23:59:59Z");
        assert_eq!(day.closes(), at(1_796_774_400));
        assert_eq!(day.to_string(), "2026-12-08T00:00:00Z to 2026-12-08T23:59:59Z");
        let hour = Window::containing(at(1_796_731_200 + 3_599), WindowLength::Hour);
        assert_eq!(hour.start(), at(1_796_731_200));
        assert_eq!(Window::containing(at(1_796_688_000), WindowLength::Day), day);
        assert_eq!(Window::containing(at(1_796_688_000 - 1), WindowLength::Day).closes(), day.start());
        assert_eq!(Window::from_parts(day.start_secs(), 86_400), Some(day));
        assert_eq!(Window::from_parts(day.start_secs() + 1, 86_400), None);
        assert_eq!(Window::from_parts(day.start_secs(), 60), None);
    }

    #[test]
    fn spread_stays_within_the_bound_and_differs_between_nodes() {
        let domain = DomainName::parse("mta.example").unwrap();
        let window = Window::containing(at(1_796_731_200), WindowLength::Day);
        let delays: Vec<u64> = (0..64)
            .map(|node| {
                let config = CollectorConfig::new("o", "c", domain.clone()).node(node);
                let c = Collector::new(MemoryStore::new(), config);
                c.due_at(window).duration_since(window.closes()).unwrap().as_secs()
            })
            .collect();
        assert!(delays.iter().all(|&d| d < 3_600), "{delays:?}");
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 32, "{distinct:?}");
        let none = Collector::new(MemoryStore::new(), CollectorConfig::new("o", "c", domain).spread(Duration::ZERO));
        assert_eq!(none.due_at(window), window.closes());
    }
}
