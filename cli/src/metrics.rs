//! Prometheus metrics (`/metrics`, the text exposition format): counted as
//! the socketmap server answers (a [`ServerObserver`]), and read from the
//! caches and the TLS-RPT sender when scraped.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use smtp_tls_policy::discovery::DnsErrorKind;
use smtp_tls_policy::engine::{Authentication, PlanSts, SkipReason};
use smtp_tls_policy::postfix::server::{Answered, ConnectionEvent, ReplyKind, ServerObserver, Zone};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Query {
    zone: String,
    reply: &'static str,
    reused: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Event {
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ZoneLabel {
    zone: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultTypeLabel {
    result_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct State {
    state: &'static str,
}

/// A zone's answer counters by reply kind and reuse, found without an
/// allocation on the server's event loop.
struct ZoneQueries([Counter; 2 * ReplyKind::ALL.len()]);

/// Every metric of the program.
pub struct Metrics {
    registry: Registry,
    queries: Family<Query, Counter>,
    by_zone: RwLock<HashMap<String, Arc<ZoneQueries>>>,
    latency: Histogram,
    connections: Family<Event, Counter>,
    open: Gauge,
    cache_entries: Family<ZoneLabel, Gauge>,
    cache_hits: Family<ZoneLabel, Counter>,
    cache_misses: Family<ZoneLabel, Counter>,
    cache_fetches: Family<ZoneLabel, Counter>,
    cache_evictions: Family<ZoneLabel, Counter>,
    sts: Family<Outcome, Counter>,
    sts_failures: Family<ResultTypeLabel, Counter>,
    tlsa: Family<Outcome, Counter>,
    dns: Family<Outcome, Counter>,
    reports: Family<State, Counter>,
    datagrams: Family<State, Counter>,
    reloads: Family<Outcome, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("smtp_tls_policy");
        let queries = Family::<Query, Counter>::default();
        registry.register(
            "socketmap_queries",
            "Socketmap requests answered, by zone, reply kind and whether a kept reply was reused",
            queries.clone(),
        );
        // 50 µs … ~26 s.
        let latency = Histogram::new(exponential_buckets(0.000_05, 2.0, 20));
        registry.register("socketmap_query_duration_seconds", "From a complete request to its reply", latency.clone());
        let connections = Family::<Event, Counter>::default();
        registry.register(
            "socketmap_connections",
            "Socketmap connection events: accepted, over_limit (refused at max-connections), malformed, request_timeout, idle",
            connections.clone(),
        );
        let open = Gauge::default();
        registry.register("socketmap_connections_open", "Socketmap connections being served", open.clone());
        let cache_entries = Family::<ZoneLabel, Gauge>::default();
        registry.register("cache_entries", "Policy domains held in the cache", cache_entries.clone());
        let cache_hits = Family::<ZoneLabel, Counter>::default();
        registry.register("cache_hits", "Decisions that applied a cached MTA-STS policy", cache_hits.clone());
        let cache_misses = Family::<ZoneLabel, Counter>::default();
        registry.register("cache_misses", "Decisions that needed a policy fetch", cache_misses.clone());
        let cache_fetches = Family::<ZoneLabel, Counter>::default();
        registry.register("cache_fetches", "MTA-STS policy fetches run", cache_fetches.clone());
        let cache_evictions = Family::<ZoneLabel, Counter>::default();
        registry.register("cache_evictions", "Cache entries evicted to stay within capacity", cache_evictions.clone());
        let sts = Family::<Outcome, Counter>::default();
        registry.register(
            "sts_plans",
            "Answers by what MTA-STS contributed: applied, unavailable (announced, not to be had), none",
            sts.clone(),
        );
        let sts_failures = Family::<ResultTypeLabel, Counter>::default();
        registry.register(
            "sts_policy_failures",
            "Answers whose announced MTA-STS policy could not be had, by TLS-RPT result type (RFC 8460 §4.3)",
            sts_failures.clone(),
        );
        let tlsa = Family::<Outcome, Counter>::default();
        registry.register(
            "tlsa_outcomes",
            "Hosts of the answers by DANE outcome: dane (usable TLSA records, DNSSEC secure), webpki, none, or why a host was skipped",
            tlsa.clone(),
        );
        let dns = Family::<Outcome, Counter>::default();
        registry.register(
            "dns_lookup_failures",
            "Answers whose lookup failed, by DNS outcome (bogus, cannot_validate, timeout, servfail, nxdomain, …)",
            dns.clone(),
        );
        let reports = Family::<State, Counter>::default();
        registry.register(
            "tlsrpt_reports",
            "TLS-RPT reports: queued, and deliveries to a rua by state (delivered, retrying, gave_up, error)",
            reports.clone(),
        );
        let datagrams = Family::<State, Counter>::default();
        registry.register(
            "tlsrpt_datagrams",
            "Postfix TLSRPT datagrams received (state valid or invalid)",
            datagrams.clone(),
        );
        let reloads = Family::<Outcome, Counter>::default();
        registry.register("config_reloads", "Configuration reloads (SIGHUP) by outcome: ok, refused", reloads.clone());
        Self {
            registry,
            queries,
            by_zone: RwLock::default(),
            latency,
            connections,
            open,
            cache_entries,
            cache_hits,
            cache_misses,
            cache_fetches,
            cache_evictions,
            sts,
            sts_failures,
            tlsa,
            dns,
            reports,
            datagrams,
            reloads,
        }
    }

    /// A reload: `ok` or refused.
    pub fn reloaded(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "refused" };
        self.reloads.get_or_create(&Outcome { outcome }).inc();
    }

    /// The text exposition, with the values read now from `zones`, the
    /// open connections and the TLS-RPT sender.
    pub fn render(
        &self,
        zones: &HashMap<String, Zone>,
        open: usize,
        tlsrpt: Option<&crate::tlsrpt::Running>,
    ) -> String {
        self.open.set(i64::try_from(open).unwrap_or(i64::MAX));
        for (name, zone) in zones {
            let stats = zone.resolver.cache().stats();
            let label = ZoneLabel { zone: name.clone() };
            self.cache_entries.get_or_create(&label).set(i64::try_from(stats.entries).unwrap_or(i64::MAX));
            let store = |family: &Family<ZoneLabel, Counter>, value: u64| {
                family.get_or_create(&label).inner().store(value, Ordering::Relaxed);
            };
            store(&self.cache_hits, stats.hits);
            store(&self.cache_misses, stats.misses);
            store(&self.cache_fetches, stats.fetches);
            store(&self.cache_evictions, stats.evictions);
        }
        if let Some(t) = tlsrpt {
            let c = &t.counts;
            for (state, n) in [
                ("queued", &c.queued),
                ("delivered", &c.delivered),
                ("retrying", &c.retrying),
                ("gave_up", &c.gave_up),
                ("error", &c.errors),
            ] {
                let value = n.load(Ordering::Relaxed);
                self.reports.get_or_create(&State { state }).inner().store(value, Ordering::Relaxed);
            }
            let (all, invalid) = t.datagrams();
            for (state, value) in [("valid", all.saturating_sub(invalid)), ("invalid", invalid)] {
                self.datagrams.get_or_create(&State { state }).inner().store(value, Ordering::Relaxed);
            }
        }
        let mut out = String::new();
        // Writing into a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of OpenMetrics, which [`Metrics::render`] writes.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of Prometheus's text format 0.0.4.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics text as Prometheus's text format 0.0.4, for scrapers that
/// do not ask for OpenMetrics (and `promtool check metrics`): a counter
/// family's HELP and TYPE name its `_total` samples, and there is no
/// `# EOF` or `# UNIT` line.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let lines: Vec<&str> = openmetrics.lines().collect();
    let counters: std::collections::HashSet<&str> =
        lines.iter().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len() + 256);
    for line in lines {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

impl Metrics {
    /// The counters of `zone` (registered on first use).
    fn zone_queries(&self, zone: &str) -> Arc<ZoneQueries> {
        if let Some(q) = self.by_zone.read().unwrap_or_else(|p| p.into_inner()).get(zone) {
            return Arc::clone(q);
        }
        let counters = std::array::from_fn(|i| {
            let label = Query {
                zone: zone.to_owned(),
                reply: ReplyKind::ALL[i / 2].as_str(),
                reused: if i % 2 == 1 { "yes" } else { "no" },
            };
            self.queries.get_or_create(&label).clone()
        });
        let q = Arc::new(ZoneQueries(counters));
        self.by_zone.write().unwrap_or_else(|p| p.into_inner()).insert(zone.to_owned(), Arc::clone(&q));
        q
    }
}

impl std::ops::Index<usize> for ZoneQueries {
    type Output = Counter;

    fn index(&self, i: usize) -> &Counter {
        &self.0[i]
    }
}

impl ServerObserver for Metrics {
    fn answered(&self, a: &Answered<'_>) {
        let kind = ReplyKind::ALL.iter().position(|k| *k == a.reply).unwrap_or(0);
        self.zone_queries(a.zone.unwrap_or(""))[2 * kind + usize::from(a.reused)].inc();
        self.latency.observe(a.took.as_secs_f64());
        if let Some(plan) = a.plan {
            let sts = match &plan.sts {
                PlanSts::Applied { .. } => "applied",
                PlanSts::Unavailable(failure) => {
                    let result_type = failure.result_type().as_str();
                    self.sts_failures.get_or_create(&ResultTypeLabel { result_type }).inc();
                    "unavailable"
                }
                _ => "none",
            };
            self.sts.get_or_create(&Outcome { outcome: sts }).inc();
            for host in &plan.hosts {
                let outcome = match host.requirement.auth {
                    Authentication::Dane { .. } => "dane",
                    Authentication::WebPki { .. } => "webpki",
                    _ => "none",
                };
                self.tlsa.get_or_create(&Outcome { outcome }).inc();
            }
            for (_, why) in &plan.skipped {
                let outcome = match why {
                    SkipReason::NotInStsPolicy => "skipped_not_in_sts_policy",
                    SkipReason::TlsaBogus => "skipped_tlsa_bogus",
                    SkipReason::TlsaLookupFailed => "skipped_tlsa_lookup_failed",
                    SkipReason::DaneRequired => "skipped_dane_required",
                    SkipReason::DnssecUnavailable => "skipped_dnssec_unavailable",
                    SkipReason::MxInsecure => "skipped_mx_insecure",
                    _ => "skipped_other",
                };
                self.tlsa.get_or_create(&Outcome { outcome }).inc();
            }
        }
        if let Some(dns) = a.error.and_then(|e| e.dns_error()) {
            let outcome = match dns.kind() {
                DnsErrorKind::Timeout => "timeout",
                DnsErrorKind::ServerFailure => "servfail",
                DnsErrorKind::Refused => "refused",
                DnsErrorKind::Bogus => "bogus",
                DnsErrorKind::NxDomain => "nxdomain",
                DnsErrorKind::NullMx => "null_mx",
                DnsErrorKind::CannotValidate(_) => "cannot_validate",
                DnsErrorKind::Malformed(_) => "malformed",
                DnsErrorKind::Network(_) => "network",
                _ => "other",
            };
            self.dns.get_or_create(&Outcome { outcome }).inc();
        }
    }

    fn connection(&self, event: ConnectionEvent) {
        self.connections.get_or_create(&Event { event: event.as_str() }).inc();
    }
}
