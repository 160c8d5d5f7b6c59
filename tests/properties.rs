//! Property tests: every parser's Display parses back equal, no input
//! panics, and the RFC 8461 §4.1 matcher laws hold.

use proptest::prelude::*;
use smtp_tls_policy::dane::TlsaRecord;
use smtp_tls_policy::name::DomainName;
use smtp_tls_policy::report::TlsRptRecord;
use smtp_tls_policy::sts::{Mode, MxPattern, Policy, TxtRecord, select_txt};

/// An LDH label of 1 to 20 characters, mixed case (not an `xn--` label:
/// those must be valid punycode, tested in `names_roundtrip`).
fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,18}[a-zA-Z0-9])?"
        .prop_filter("not xn--", |l| !l.to_ascii_lowercase().starts_with("xn--"))
}

/// A host name of 1 to 4 labels.
fn host() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 1..=4).prop_map(|l| l.join("."))
}

/// An `mx` value as an operator might write it.
fn mx_value() -> impl Strategy<Value = String> {
    (any::<bool>(), host(), any::<bool>())
        .prop_map(|(wild, h, dot)| format!("{}{h}{}", if wild { "*." } else { "" }, if dot { "." } else { "" }))
}

/// RFC 5234 *WSP.
fn wsp() -> impl Strategy<Value = String> {
    "[ \t]{0,3}"
}

/// RFC 8461 §3.1 sts-ext-name and sts-ext-value.
fn txt_extension() -> impl Strategy<Value = (String, String)> {
    ("[a-zA-Z0-9][a-zA-Z0-9_.-]{0,31}", "[!-:<>-~]{1,20}").prop_filter("not id", |(n, _)| n != "id")
}

/// RFC 8461 §3.2 sts-policy-ext-name and a UTF-8 sts-policy-ext-value.
fn policy_extension() -> impl Strategy<Value = (String, String)> {
    ("[a-zA-Z0-9][a-zA-Z0-9_.-]{0,31}", "[!-~é☕郵]([!-~é☕郵 \t]{0,20}[!-~é☕郵])?")
        .prop_filter("not a known key", |(n, _)| !matches!(n.as_str(), "version" | "mode" | "max_age" | "mx"))
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Enforce), Just(Mode::Testing), Just(Mode::None)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Well-formed TXT records (RFC 8461 §3.1) parse, keep their id, and
    /// round-trip through Display.
    #[test]
    fn txt_record_roundtrip(
        id in "[a-zA-Z0-9]{1,32}",
        before in prop::collection::vec(txt_extension(), 0..3),
        after in prop::collection::vec(txt_extension(), 0..3),
        gaps in prop::collection::vec((wsp(), wsp()), 8),
        trailing in any::<bool>(),
    ) {
        let mut record = String::from("v=STSv1");
        let fields = before.iter().map(|(n, v)| format!("{n}={v}"))
            .chain([format!("id={id}")])
            .chain(after.iter().map(|(n, v)| format!("{n}={v}")));
        for (field, (l, r)) in fields.zip(gaps.iter()) {
            record.push_str(&format!("{l};{r}{field}"));
        }
        if trailing {
            record.push_str(";  ");
        }
        let txt = TxtRecord::parse(&record).map_err(|e| TestCaseError::fail(format!("{record:?}: {e}")))?;
        prop_assert_eq!(txt.id(), id.as_str());
        prop_assert_eq!(TxtRecord::parse(&txt.to_string()), Ok(txt.clone()));
        prop_assert_eq!(select_txt(["v=spf1 -all", record.as_str()]), Ok(txt));
    }

    /// Any string: a typed error or a record that round-trips; never a panic.
    #[test]
    fn txt_record_any_input(s in "v=STSv1[ -~\t]{0,40}|\\PC{0,40}") {
        if let Ok(txt) = TxtRecord::parse(&s) {
            prop_assert_eq!(TxtRecord::parse(&txt.to_string()), Ok(txt));
        }
    }

    /// Well-formed policies (RFC 8461 §3.2), in any field order, with LF or
    /// CRLF, blank lines and extensions, parse to what they say and
    /// round-trip through Display.
    #[test]
    fn policy_roundtrip(
        mode in mode(),
        max_age in 0u64..=9_999_999_999,
        mx in prop::collection::vec(mx_value(), 1..5),
        extensions in prop::collection::vec(policy_extension(), 0..4),
        crlf in any::<bool>(),
        blank_lines in any::<bool>(),
        last_terminated in any::<bool>(),
        order in any::<u64>(),
        spacing in prop::collection::vec((wsp(), wsp()), 16),
    ) {
        let mut lines = vec![("version".to_owned(), "STSv1".to_owned()), ("mode".to_owned(), mode.to_string()),
            ("max_age".to_owned(), max_age.to_string())];
        lines.extend(mx.iter().map(|m| ("mx".to_owned(), m.clone())));
        lines.extend(extensions.iter().cloned());
        // A deterministic shuffle from the generated seed.
        let mut seed = order;
        for i in (1..lines.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            lines.swap(i, (seed >> 33) as usize % (i + 1));
        }
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut body = String::new();
        for (i, (k, v)) in lines.iter().enumerate() {
            let (l, r) = &spacing[i % spacing.len()];
            body.push_str(&format!("{k}:{l}{v}{r}{eol}"));
            if blank_lines && i % 2 == 0 {
                body.push_str(eol);
            }
        }
        if !last_terminated {
            body.truncate(body.trim_end_matches(['\r', '\n']).len());
        }
        let p = Policy::parse(&body).map_err(|e| TestCaseError::fail(format!("{body:?}: {e}")))?;
        prop_assert_eq!(p.mode(), mode);
        prop_assert_eq!(u64::from(p.max_age_value().as_secs()), max_age.min(31_557_600));
        // The shuffle reorders mx lines; compare them as multisets.
        let mut want: Vec<String> = mx.iter().map(|m| MxPattern::parse(m).unwrap().to_string()).collect();
        let mut got: Vec<String> = p.mx().iter().map(ToString::to_string).collect();
        want.sort();
        got.sort();
        prop_assert_eq!(got, want);
        prop_assert_eq!(Policy::parse(&p.to_string()), Ok(p.clone()));
        prop_assert_eq!(Policy::parse_bytes(body.as_bytes()), Ok(p));
    }

    /// Any bytes: a typed error or a policy that round-trips; never a panic.
    #[test]
    fn policy_any_input(body in prop::collection::vec(any::<u8>(), 0..200),
                        text in "(version|mode|mx|max_age|x)?:?[ -~\t\r\n]{0,60}") {
        for input in [&body[..], text.as_bytes()] {
            if let Ok(p) = Policy::parse_bytes(input) {
                prop_assert_eq!(Policy::parse(&p.to_string()), Ok(p));
            }
        }
    }

    /// RFC 8461 §4.1: a wildcard matches exactly one label below its base,
    /// never the base itself nor two labels below.
    #[test]
    fn wildcard_laws(base in host(), first in label(), second in label()) {
        let p = MxPattern::parse(&format!("*.{base}")).unwrap();
        let one_below = format!("{first}.{base}");
        let two_below = format!("{first}.{second}.{base}");
        let empty_label = format!(".{base}");
        prop_assert!(p.matches(&one_below));
        prop_assert!(!p.matches(&base));
        prop_assert!(!p.matches(&two_below));
        prop_assert!(!p.matches(&empty_label));
    }

    /// RFC 8461 §4.1: matching ignores case and one trailing dot, on both
    /// the pattern and the host.
    #[test]
    fn matching_ignores_case_and_trailing_dot(pattern in mx_value(), host in host(), sub in label()) {
        let p = MxPattern::parse(&pattern).unwrap();
        for h in [host.clone(), format!("{sub}.{host}"), p.base().to_string(), format!("{sub}.{}", p.base())] {
            let m = p.matches(&h);
            prop_assert_eq!(p.matches(&h.to_ascii_uppercase()), m);
            prop_assert_eq!(p.matches(&h.to_ascii_lowercase()), m);
            prop_assert_eq!(p.matches(&format!("{h}.")), m);
            let two_dots = format!("{h}..");
            prop_assert!(!p.matches(&two_dots));
            let upper = MxPattern::parse(&pattern.to_ascii_uppercase()).unwrap();
            prop_assert_eq!(upper.matches(&h), m);
        }
        // An exact pattern matches its own host and nothing below it.
        if !p.is_wildcard() {
            prop_assert!(p.matches(p.base().as_str()));
            let below = format!("{sub}.{}", p.base());
            prop_assert!(!p.matches(&below));
        }
    }

    /// DomainName and MxPattern round-trip through Display.
    #[test]
    fn names_roundtrip(h in host(), pattern in mx_value(), junk in "\\PC{0,30}") {
        let name = DomainName::parse(&h).unwrap();
        prop_assert_eq!(name.as_str(), h.to_ascii_lowercase());
        let shown = name.to_string();
        prop_assert_eq!(DomainName::parse(&shown), Ok(name));
        let p = MxPattern::parse(&pattern).unwrap();
        prop_assert_eq!(MxPattern::parse(&p.to_string()), Ok(p));
        if let Ok(n) = DomainName::parse(&junk) {
            prop_assert_eq!(DomainName::parse(n.as_str()), Ok(n));
        }
        if let Ok(p) = MxPattern::parse(&junk) {
            prop_assert_eq!(MxPattern::parse(&p.to_string()), Ok(p));
        }
    }

    /// RFC 6698 §2.2: the presentation form round-trips, whatever the
    /// spacing and case of the hex.
    #[test]
    fn tlsa_presentation_roundtrip(
        usage in any::<u8>(), selector in any::<u8>(), matching in any::<u8>(),
        data in prop::collection::vec(any::<u8>(), 1..80),
        upper in any::<bool>(), split in 1usize..9,
    ) {
        let record = TlsaRecord::new(usage, selector, matching, data.clone());
        let shown = record.to_string();
        prop_assert_eq!(TlsaRecord::parse(&shown), Ok(record.clone()));
        let hex: Vec<String> = data.chunks(split).map(|c| {
            let h: String = c.iter().map(|b| format!("{b:02x}")).collect();
            if upper { h.to_ascii_uppercase() } else { h }
        }).collect();
        let spaced = format!(" {usage}\t{selector}  {matching} {} ", hex.join(" "));
        prop_assert_eq!(TlsaRecord::parse(&spaced), Ok(record));
    }

    /// Any text: a typed error or a record that round-trips; never a panic.
    #[test]
    fn tlsa_any_input(s in "[0-9 ]{0,12}[0-9a-fA-F \t]{0,40}|\\PC{0,40}") {
        if let Ok(r) = TlsaRecord::parse(&s) {
            prop_assert_eq!(TlsaRecord::parse(&r.to_string()), Ok(r));
        }
    }

    /// RFC 8460 §3: TLS-RPT records round-trip through Display, whatever the
    /// spacing, extensions and ignored URI schemes.
    #[test]
    fn tlsrpt_record_roundtrip(
        rua in prop::collection::vec("(mailto:[a-z]{1,8}@[a-z]{1,8}\\.example|https://[a-z]{1,8}\\.example/[a-z0-9]{0,8})", 1..4),
        ext in prop::option::of(txt_extension()),
        gap in wsp(),
    ) {
        let mut record = format!("v=TLSRPTv1;{gap}rua={}", rua.join(&format!("{gap},{gap}")));
        if let Some((n, v)) = &ext {
            record.push_str(&format!("{gap};{gap}{n}={v}"));
        }
        let parsed = TlsRptRecord::parse(&record).map_err(|e| TestCaseError::fail(format!("{record:?}: {e}")))?;
        prop_assert_eq!(parsed.rua().len(), rua.len());
        prop_assert_eq!(TlsRptRecord::parse(&parsed.to_string()), Ok(parsed));
    }

    /// Any text: a typed error or a record that round-trips.
    #[test]
    fn tlsrpt_any_input(s in "v=TLSRPTv1[ -~\t]{0,60}|\\PC{0,40}") {
        if let Ok(r) = TlsRptRecord::parse(&s) {
            prop_assert_eq!(TlsRptRecord::parse(&r.to_string()), Ok(r));
        }
    }
}

proptest! {
    /// Postfix socketmap framing: any payload encodes to a netstring that
    /// decodes back to it, whole or split anywhere (every prefix asks for
    /// more), and a payload over the limit is refused.
    #[test]
    fn netstrings_roundtrip(payload in prop::collection::vec(any::<u8>(), 0..300), cut in 0usize..400) {
        use smtp_tls_policy::postfix::netstring::{NetstringError, decode, encode};
        let framed = encode(&payload);
        prop_assert_eq!(decode(&framed, 300), Ok(Some((&payload[..], framed.len()))));
        let cut = cut.min(framed.len() - 1);
        prop_assert_eq!(decode(&framed[..cut], 300), Ok(None));
        if !payload.is_empty() {
            prop_assert_eq!(decode(&framed, payload.len() - 1), Err(NetstringError::TooLong { limit: payload.len() - 1 }));
        }
    }
}
