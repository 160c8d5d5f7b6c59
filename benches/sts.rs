//! MTA-STS grammar benchmarks (DESIGN.md "Performance"): TXT parse ≤ 150 ns,
//! typical policy parse ≤ 1 µs, a 64 KiB policy ≥ 300 MB/s, MX match ≤ 50 ns,
//! and the hostile bodies of `tests/hostile.rs` staying linear.
//!
//! Run: `cargo bench --bench sts`

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use smtp_tls_policy::sts::{MAX_POLICY_BYTES, MxPattern, Policy, TxtRecord, select_txt};

fn main() {
    divan::main();
}

const TXT: &str = "v=STSv1; id=20160831085700Z;";

const TYPICAL: &str = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";

/// Repeats `unit` after `head` up to MAX_POLICY_BYTES.
fn fill(head: &str, unit: &str) -> String {
    let mut body = String::from(head);
    while body.len() + unit.len() <= MAX_POLICY_BYTES {
        body.push_str(unit);
    }
    body
}

const HEAD: &str = "version: STSv1\nmode: enforce\nmax_age: 86400\n";

#[divan::bench]
fn txt_parse() -> TxtRecord {
    TxtRecord::parse(black_box(TXT)).unwrap()
}

#[divan::bench]
fn txt_select_from_rrset() -> TxtRecord {
    select_txt(black_box(["v=spf1 include:_spf.example.com -all", TXT, "google-site-verification=abc"])).unwrap()
}

#[divan::bench]
fn policy_parse_typical(bencher: Bencher) {
    bencher.counter(BytesCount::of_str(TYPICAL)).bench(|| Policy::parse_bytes(black_box(TYPICAL.as_bytes())).unwrap());
}

/// A 64 KiB policy of mx lines, the largest body a server may send.
#[divan::bench]
fn policy_parse_64k_mx(bencher: Bencher) {
    let body = fill(HEAD, "mx: *.mx-pool-0123456789.example.com\n");
    bencher.counter(BytesCount::of_str(&body)).bench(|| Policy::parse_bytes(black_box(body.as_bytes())).unwrap());
}

/// A 64 KiB policy whose bulk is one extension value.
#[divan::bench]
fn policy_parse_64k_long_line(bencher: Bencher) {
    let body = format!("{HEAD}mx: mx.example\nx: {}\n", "v".repeat(MAX_POLICY_BYTES - HEAD.len() - 20));
    bencher.counter(BytesCount::of_str(&body)).bench(|| Policy::parse_bytes(black_box(body.as_bytes())).unwrap());
}

/// Hostile: 64 KiB of distinct extension keys (the duplicate check must not
/// be quadratic).
#[divan::bench]
fn hostile_distinct_keys(bencher: Bencher) {
    let mut body = format!("{HEAD}mx: mx.example\n");
    let mut n = 0;
    while body.len() < MAX_POLICY_BYTES - 20 {
        body.push_str(&format!("k{n}: v\n"));
        n += 1;
    }
    bencher.counter(BytesCount::of_str(&body)).bench(|| Policy::parse_bytes(black_box(body.as_bytes())).unwrap());
}

/// Hostile: 64 KiB of blank CRLF lines, then nothing (fails).
#[divan::bench]
fn hostile_blank_lines(bencher: Bencher) {
    let body = "\r\n".repeat(MAX_POLICY_BYTES / 2);
    bencher.counter(BytesCount::of_str(&body)).bench(|| Policy::parse_bytes(black_box(body.as_bytes())).unwrap_err());
}

/// Hostile: 64 KiB of duplicated `mode` lines after a valid head.
#[divan::bench]
fn hostile_duplicate_known_keys(bencher: Bencher) {
    let body = fill(&format!("{HEAD}mx: mx.example\n"), "mode: garbage!\n");
    bencher.counter(BytesCount::of_str(&body)).bench(|| Policy::parse_bytes(black_box(body.as_bytes())).unwrap());
}

#[divan::bench(args = ["mail.example.com", "MAIL.EXAMPLE.COM.", "mail.example.org"])]
fn mx_match_exact(bencher: Bencher, host: &str) {
    let pattern = MxPattern::parse("mail.example.com").unwrap();
    bencher.bench(|| black_box(&pattern).matches(black_box(host)));
}

#[divan::bench(args = ["mx1.example.net", "a.b.example.net", "example.net"])]
fn mx_match_wildcard(bencher: Bencher, host: &str) {
    let pattern = MxPattern::parse("*.example.net").unwrap();
    bencher.bench(|| black_box(&pattern).matches(black_box(host)));
}

/// A whole policy's allows_mx over the RFC example's three patterns, for a
/// host that matches the last one.
#[divan::bench]
fn policy_allows_mx(bencher: Bencher) {
    let policy = Policy::parse(TYPICAL).unwrap();
    bencher.bench(|| black_box(&policy).allows_mx(black_box("backupmx.example.com")));
}
