//! Hostile input (DESIGN.md "Failure and hostile input"): bodies and records
//! built to hurt a parser return a value or a typed error, never a panic.
//! Their cost is measured in `benches/sts.rs` (`hostile_*`), not here.

use smtp_tls_policy::ParseErrorKind;
use smtp_tls_policy::sts::{MAX_POLICY_BYTES, MxPattern, Policy, TxtRecord, select_txt};

/// Repeats `unit` until the body is exactly MAX_POLICY_BYTES long.
fn fill(head: &str, unit: &str) -> String {
    let mut body = String::from(head);
    while body.len() + unit.len() <= MAX_POLICY_BYTES {
        body.push_str(unit);
    }
    body.push_str(&" ".repeat(MAX_POLICY_BYTES - body.len()));
    body
}

const HEAD: &str = "version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mx.example\n";

#[test]
fn a_full_body_of_distinct_extension_keys_keeps_each_once() {
    let mut body = String::from(HEAD);
    let mut n = 0;
    while body.len() < MAX_POLICY_BYTES - 40 {
        body.push_str(&format!("k{n}: v\nk{}: dup\n", n / 2));
        n += 1;
    }
    let p = Policy::parse(&body).unwrap();
    assert_eq!(p.extensions().len(), n);
    assert!(p.extensions().iter().all(|e| e.value() == "v"));
}

#[test]
fn a_full_body_of_mx_lines_parses() {
    let body = fill(HEAD, "mx: *.mx-pool-0123456789.example.com\n");
    let p = Policy::parse(&body).unwrap();
    assert!(p.mx().len() > 1700);
    assert!(p.allows_mx("a.mx-pool-0123456789.example.com"));
}

#[test]
fn one_line_of_64_kib_fails_with_a_short_message() {
    for body in [
        format!("{HEAD}x: {}", "a".repeat(MAX_POLICY_BYTES - HEAD.len() - 3)),
        "z".repeat(MAX_POLICY_BYTES),
        format!("{HEAD}mx: {}", "a.".repeat((MAX_POLICY_BYTES - HEAD.len() - 4) / 2)),
    ] {
        assert!(body.len() <= MAX_POLICY_BYTES);
        match Policy::parse(&body) {
            Ok(p) => assert_eq!(p.extensions().len(), 1),
            Err(e) => assert!(e.to_string().len() < 400, "{} bytes of message", e.to_string().len()),
        }
    }
}

#[test]
fn pathological_bytes_fail_typed() {
    let cases: Vec<(Vec<u8>, ParseErrorKind)> = vec![
        (vec![b'\n'; MAX_POLICY_BYTES], ParseErrorKind::Empty),
        (vec![b'\r'; MAX_POLICY_BYTES], ParseErrorKind::MalformedLine),
        (vec![b':'; MAX_POLICY_BYTES], ParseErrorKind::InvalidFieldName),
        (vec![0; MAX_POLICY_BYTES], ParseErrorKind::MalformedLine),
        (vec![0xff; MAX_POLICY_BYTES], ParseErrorKind::InvalidUtf8),
        (vec![b'a'; MAX_POLICY_BYTES + 1], ParseErrorKind::TooLarge),
        (fill("", "version: STSv1\n").into_bytes(), ParseErrorKind::MissingField),
    ];
    for (body, kind) in cases {
        let err = Policy::parse_bytes(&body).unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
    }
    // Duplicated known keys with junk values are ignored (first wins).
    let dup = fill(HEAD, "mode: garbage!\n");
    assert!(Policy::parse(&dup).is_ok());
}

#[test]
fn long_txt_records_and_rrsets() {
    let mut record = String::from("v=STSv1; id=a");
    while record.len() < 64 * 1024 {
        record.push_str("; e=x");
    }
    let txt = TxtRecord::parse(&record).unwrap();
    assert_eq!(txt.extensions().len(), 1);
    let junk = format!("v=STSv1; id={}", "9".repeat(64 * 1024));
    assert_eq!(TxtRecord::parse(&junk).unwrap_err().kind(), ParseErrorKind::InvalidId);
    assert!(TxtRecord::parse(&junk).unwrap_err().to_string().len() < 200);
    let rrset = vec!["v=STSv1; id=x"; 10_000];
    assert!(select_txt(rrset.iter().copied()).is_err());
}

#[test]
fn long_mx_patterns_and_hosts() {
    let p = MxPattern::parse("*.example.com").unwrap();
    let long_host = format!("{}.example.com", "a".repeat(100_000));
    assert!(!p.matches(&long_host));
    assert!(!p.matches(&"é".repeat(10_000)));
    assert!(MxPattern::parse(&"*.".repeat(10_000)).is_err());
    assert!(MxPattern::parse(&"a.".repeat(10_000)).is_err());
}
