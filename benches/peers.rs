//! The core's parsers beside the other Rust MTA-STS parsers on crates.io,
//! on the same inputs in one run: `mailrs-mta-sts` 2.0 (TXT record, policy,
//! MX match) and Stalwart's `mail-auth` 0.7 (TXT record); the 64 KiB policy
//! also beside a plain `memchr` line split of the same bytes (the floor of
//! any line-based parser).
//!
//! ```sh
//! cargo bench --bench peers
//! ```
//!
//! Every peer is asked to do the same work and its answer is checked once
//! before timing, so that no row measures an error path. Each group fixes
//! its iterations per sample so that a sample lasts well above the timer's
//! precision for every parser in it (divan would otherwise pick fewer
//! iterations for a slower one, and time more of its own overhead).

use divan::{Bencher, black_box};
use mail_auth::common::parse::TxtRecordParser;
use smtp_tls_policy::sts::{MAX_POLICY_BYTES, MxPattern, Policy, TxtRecord};

fn main() {
    check();
    divan::main();
}

const TXT: &str = "v=STSv1; id=20160831085700Z;";

const TYPICAL: &str = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";

const HEAD: &str = "version: STSv1\nmode: enforce\nmax_age: 86400\n";

/// A 64 KiB policy of `mx` lines.
fn big() -> String {
    let unit = "mx: *.mx-pool-0123456789.example.com\n";
    let mut body = String::from(HEAD);
    while body.len() + unit.len() <= MAX_POLICY_BYTES {
        body.push_str(unit);
    }
    body
}

/// Every parser accepts the inputs and agrees on what they say.
fn check() {
    assert_eq!(TxtRecord::parse(TXT).unwrap().id(), "20160831085700Z");
    assert!(mailrs_mta_sts::StsRecord::parse(TXT).is_ok());
    assert!(mail_auth::mta_sts::MtaSts::parse(TXT.as_bytes()).is_ok());
    assert_eq!(Policy::parse(TYPICAL).unwrap().mx().len(), 3);
    let theirs = mailrs_mta_sts::Policy::parse(TYPICAL).unwrap();
    assert_eq!(theirs.mx.len(), 3);
    let body = big();
    let ours = Policy::parse(&body).unwrap().mx().len();
    assert_eq!(mailrs_mta_sts::Policy::parse(&body).unwrap().mx.len(), ours);
    assert!(MxPattern::parse("*.example.net").unwrap().matches("mx1.example.net"));
    assert!(mailrs_mta_sts::mx_matches("mx1.example.net", "*.example.net"));
}

#[divan::bench_group(sample_count = 200, sample_size = 1000)]
mod txt_record {
    use super::*;

    #[divan::bench]
    fn ours() -> TxtRecord {
        TxtRecord::parse(black_box(TXT)).unwrap()
    }

    #[divan::bench]
    fn mailrs_mta_sts() -> mailrs_mta_sts::StsRecord {
        mailrs_mta_sts::StsRecord::parse(black_box(TXT)).unwrap()
    }

    #[divan::bench]
    fn mail_auth() -> mail_auth::mta_sts::MtaSts {
        mail_auth::mta_sts::MtaSts::parse(black_box(TXT).as_bytes()).unwrap()
    }
}

#[divan::bench_group(sample_count = 200, sample_size = 200)]
mod typical_policy {
    use super::*;

    #[divan::bench]
    fn ours() -> Policy {
        Policy::parse(black_box(TYPICAL)).unwrap()
    }

    #[divan::bench]
    fn mailrs_mta_sts() -> mailrs_mta_sts::Policy {
        mailrs_mta_sts::Policy::parse(black_box(TYPICAL)).unwrap()
    }
}

#[divan::bench_group(sample_count = 400, sample_size = 1)]
mod policy_64k_mx {
    use super::*;

    #[divan::bench]
    fn ours(bencher: Bencher) {
        let body = big();
        bencher.counter(divan::counter::BytesCount::new(body.len())).bench(|| Policy::parse(black_box(&body)).unwrap());
    }

    #[divan::bench]
    fn mailrs_mta_sts(bencher: Bencher) {
        let body = big();
        bencher
            .counter(divan::counter::BytesCount::new(body.len()))
            .bench(|| mailrs_mta_sts::Policy::parse(black_box(&body)).unwrap());
    }

    /// The floor: split the body into its lines with `memchr` (each line's
    /// start and end found and handed on), nothing else.
    #[divan::bench]
    fn memchr_line_split(bencher: Bencher) {
        let body = big();
        bencher.counter(divan::counter::BytesCount::new(body.len())).bench(|| {
            let bytes = black_box(body.as_bytes());
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', bytes) {
                black_box(&bytes[start..end]);
                start = end + 1;
            }
            black_box(&bytes[start..]);
        });
    }

    /// Below the floor: `memchr`'s vectorised count of the line ends, which
    /// never visits a line (the floor this bench used until 0.x; shown for
    /// comparison).
    #[divan::bench]
    fn memchr_count_only(bencher: Bencher) {
        let body = big();
        bencher
            .counter(divan::counter::BytesCount::new(body.len()))
            .bench(|| memchr::memchr_iter(b'\n', black_box(body.as_bytes())).count());
    }
}

#[divan::bench_group(sample_count = 200, sample_size = 2000)]
mod mx_wildcard_match {
    use super::*;

    #[divan::bench]
    fn ours(bencher: Bencher) {
        let pattern = MxPattern::parse("*.example.net").unwrap();
        bencher.bench(|| pattern.matches(black_box("mx1.example.net")));
    }

    #[divan::bench]
    fn mailrs_mta_sts() -> bool {
        mailrs_mta_sts::mx_matches(black_box("mx1.example.net"), black_box("*.example.net"))
    }
}
