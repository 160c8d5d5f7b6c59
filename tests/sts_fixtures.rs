//! The MTA-STS grammar against the shapes operators publish: the policy
//! bodies under `tests/data/policies/` and the TXT RRsets of
//! `tests/data/txt/rrsets.txt` (RFC 8461 §3.1, §3.2, §4.1).

use std::path::Path;
use std::time::Duration;

use smtp_tls_policy::ParseErrorKind;
use smtp_tls_policy::sts::{Mode, Policy, TxtError, select_txt};

fn data(path: &str) -> Vec<u8> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn policy(name: &str) -> Policy {
    Policy::parse_bytes(&data(&format!("policies/{name}"))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn mx(p: &Policy) -> Vec<String> {
    p.mx().iter().map(ToString::to_string).collect()
}

/// Every published shape that must parse, with what it means.
#[test]
fn published_policies_parse() {
    let cases: &[(&str, Mode, u64, &[&str])] = &[
        ("rfc8461-example.txt", Mode::Enforce, 604_800, &["mail.example.com", "*.example.net", "backupmx.example.com"]),
        ("lf-only.txt", Mode::Enforce, 86_400, &["smtp.google.com", "aspmx.l.google.com", "*.aspmx.l.google.com"]),
        ("hosted-wildcard.txt", Mode::Enforce, 604_800, &["*.mail.protection.outlook.com"]),
        ("no-final-newline.txt", Mode::Testing, 1_209_600, &["mx1.example.org", "mx2.example.org"]),
        ("extension-keys.txt", Mode::Enforce, 604_800, &["mx.example.org"]),
        // §3.2 leaves duplicates undefined; DESIGN.md: the first wins, mx accumulates.
        ("duplicated-keys.txt", Mode::Enforce, 604_800, &["mx.example.org", "backup.example.org"]),
        // DESIGN.md: a max_age above 31557600 is clamped, not refused.
        ("huge-max-age.txt", Mode::Enforce, 31_557_600, &["mx.example.org"]),
        ("mode-none.txt", Mode::None, 86_400, &[]),
        ("blank-lines-and-spaces.txt", Mode::Enforce, 86_400, &["mx.example.org"]),
        ("utf8-extension.txt", Mode::Testing, 86_400, &["mx.example.org"]),
        ("idn-mx.txt", Mode::Enforce, 86_400, &["mx.xn--bcher-kva.example", "*.xn--bcher-kva.example"]),
        ("field-order.txt", Mode::Enforce, 31_557_600, &["mail.example.net"]),
    ];
    for &(name, mode, max_age, patterns) in cases {
        let p = policy(name);
        assert_eq!(p.mode(), mode, "{name}");
        assert_eq!(p.max_age(), Duration::from_secs(max_age), "{name}");
        assert_eq!(mx(&p), patterns, "{name}");
        // Display renders text that parses back equal.
        assert_eq!(Policy::parse(&p.to_string()).as_ref(), Ok(&p), "{name}");
    }
    let ext = policy("extension-keys.txt");
    let ext: Vec<_> = ext.extensions().iter().map(|e| (e.name(), e.value())).collect();
    assert_eq!(ext, [("x-contact", "postmaster@example.org"), ("renewal.hint", "weekly")]);
    let utf8 = policy("utf8-extension.txt");
    assert_eq!(utf8.extensions()[0].value(), "Équipe messagerie — 郵便");
}

/// Every published mistake, with the kind and line of the error.
#[test]
fn broken_policies_fail_with_the_right_error() {
    let cases: &[(&str, ParseErrorKind, Option<usize>)] = &[
        ("mode-typo.txt", ParseErrorKind::UnknownMode, Some(2)),
        ("missing-mx.txt", ParseErrorKind::MissingField, None),
        ("missing-version.txt", ParseErrorKind::MissingField, None),
        ("version-2.txt", ParseErrorKind::UnsupportedVersion, Some(1)),
        ("max-age-11-digits.txt", ParseErrorKind::MaxAgeTooLong, Some(4)),
        ("max-age-negative.txt", ParseErrorKind::InvalidMaxAge, Some(4)),
        ("html-error-page.txt", ParseErrorKind::MalformedLine, Some(1)),
        ("json-policy.txt", ParseErrorKind::InvalidFieldName, Some(1)),
        ("mx-with-port.txt", ParseErrorKind::InvalidCharacter, Some(3)),
        ("mx-inner-wildcard.txt", ParseErrorKind::MisplacedWildcard, Some(3)),
        ("space-before-colon.txt", ParseErrorKind::InvalidFieldName, Some(2)),
        ("latin1.txt", ParseErrorKind::InvalidUtf8, Some(5)),
    ];
    for &(name, kind, line) in cases {
        let err = Policy::parse_bytes(&data(&format!("policies/invalid/{name}"))).expect_err(name);
        assert_eq!((err.kind(), err.line()), (kind, line), "{name}: {err}");
        assert!(!err.is_temporary());
    }
    let typo = Policy::parse_bytes(&data("policies/invalid/mode-typo.txt")).unwrap_err();
    assert_eq!(typo.to_string(), r#"line 2: mode: unknown value "enforced" (expected enforce, testing or none)"#);
}

/// The whole fixture directory is covered by the two tables above, so a
/// new fixture cannot be added without saying what it must do.
#[test]
fn every_fixture_is_in_a_table() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/policies");
    let count = |d: &Path| std::fs::read_dir(d).unwrap().filter(|e| e.as_ref().unwrap().path().is_file()).count();
    assert_eq!(count(&dir), 12);
    assert_eq!(count(&dir.join("invalid")), 12);
}

/// RFC 8461 §3.1 record selection over whole RRsets.
#[test]
fn txt_rrsets() {
    let text = String::from_utf8(data("txt/rrsets.txt")).unwrap();
    let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let mut blocks = 0;
    for block in body.split(|l| *l == "---").filter(|b| !b.is_empty()) {
        let (want, rrset) = block.split_first().unwrap();
        let got = select_txt(rrset.iter().copied());
        let shown = match &got {
            Ok(txt) => format!("id={}", txt.id()),
            Err(TxtError::NoRecord) => "none".to_owned(),
            Err(TxtError::Several { count }) => format!("several {count}"),
            Err(TxtError::Invalid(e)) => format!("invalid {:?}", e.kind()),
            Err(other) => panic!("unexpected {other:?}"),
        };
        assert_eq!(&shown, want, "{rrset:?}");
        blocks += 1;
    }
    assert_eq!(blocks, 18);
}
