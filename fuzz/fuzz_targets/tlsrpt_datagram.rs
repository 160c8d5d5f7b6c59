//! Postfix's TLSRPT datagrams (libtlsrpt): any bytes give sessions or a
//! typed error, never a panic; the sessions make a report that validates.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use smtp_tls_policy::postfix::tlsrpt::datagram_sessions;
use smtp_tls_policy::report::{Aggregator, ReportMeta};

fuzz_target!(|data: &[u8]| {
    let Ok(sessions) = datagram_sessions(data) else { return };
    let mut counts = Aggregator::new();
    sessions.iter().for_each(|s| counts.record(s));
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_688_000);
    let meta = ReportMeta::new("o", "c", "r", start, start + Duration::from_secs(86_399));
    for domain in counts.domains() {
        counts.aggregate(&domain, &meta).validate().expect("a report of datagram sessions validates");
    }
});
