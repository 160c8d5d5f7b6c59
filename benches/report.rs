//! Recording TLS-RPT sessions (DESIGN.md: ≤ 1 µs a session in memory;
//! the issue `tlsrpt:` sets ≤ 20 µs durable, batched).
//!
//! ```sh
//! cargo bench --bench report
//! ```
//!
//! The durable rows write a checksummed journal line per distinct
//! (policy, failure) of the batch and `fdatasync` once per call, in a
//! directory under the system's temporary directory.

use std::time::{Duration, SystemTime};

use divan::{Bencher, black_box};
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::report::{
    Collector, CollectorConfig, FailureDetail, JournalStore, MemoryStore, ReportPolicy, ResultType, Session,
};
use smtp_tls_policy::sts::Policy;

fn main() {
    divan::main();
}

fn config() -> CollectorConfig {
    CollectorConfig::new("Bench", "mailto:postmaster@mta.example", DomainName::parse("mta.example").unwrap())
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_731_200)
}

/// The sessions of deliveries to `n` domains: one success each, and an
/// expired certificate for every fourth.
fn sessions(n: usize) -> Vec<Session> {
    let policy = Policy::parse("version: STSv1\nmode: enforce\nmx: *.mail.example.com\nmax_age: 86400\n").unwrap();
    (0..n)
        .flat_map(|i| {
            let domain = DomainName::parse(&format!("d{i}.example.com")).unwrap();
            let sts = ReportPolicy::sts(&domain, &policy);
            let mx = DomainName::parse(&format!("mx.d{i}.example.com")).unwrap();
            let fail = (i % 4 == 0)
                .then(|| Session::failure(sts.clone(), FailureDetail::new(ResultType::CertificateExpired, Some(&mx))));
            std::iter::once(Session::success(sts)).chain(fail)
        })
        .collect()
}

/// One session per call into memory, over 1 000 domains already counted.
#[divan::bench]
fn record_one_in_memory(bencher: Bencher) {
    let collector = Collector::new(MemoryStore::new(), config());
    let all = sessions(1_000);
    for s in &all {
        collector.record(now(), std::slice::from_ref(s)).unwrap();
    }
    let mut i = 0;
    bencher.bench_local(|| {
        i = (i + 1) % all.len();
        collector.record(now(), std::slice::from_ref(black_box(&all[i]))).unwrap();
    });
}

/// A batch of `n` sessions per call into the journal (one `fdatasync` per
/// call); the figure is per session.
#[divan::bench(args = [1, 100, 1000])]
fn record_durable_batched(bencher: Bencher, n: usize) {
    let dir = std::env::temp_dir().join(format!("smtp-tls-policy-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let collector = Collector::new(JournalStore::open(&dir).unwrap(), config());
    let batch = sessions(n);
    bencher.counter(divan::counter::ItemsCount::new(batch.len())).bench_local(|| {
        collector.record(now(), black_box(&batch)).unwrap();
    });
    drop(collector);
    let _ = std::fs::remove_dir_all(&dir);
}
