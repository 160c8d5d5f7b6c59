//! RFC 8461 §3.2, §4.1: any string parses to a pattern or a typed error;
//! a pattern prints to text that parses back equal; matching never panics,
//! ignores case and one trailing dot, and a wildcard never matches its bare
//! base or a host two labels below it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_tls_policy::sts::MxPattern;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is the pattern, the rest a host to match.
    let (pattern, host) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(p) = MxPattern::parse(pattern) else {
        return;
    };
    let printed = p.to_string();
    assert_eq!(MxPattern::parse(&printed).as_ref(), Ok(&p), "round trip via {printed:?}");
    let m = p.matches(host);
    if host.is_ascii() {
        assert_eq!(p.matches(&host.to_ascii_uppercase()), m, "case changes {host:?}");
        if !host.ends_with('.') {
            assert_eq!(p.matches(&format!("{host}.")), m, "a trailing dot changes {host:?}");
        }
    }
    let base = p.base().as_str();
    if p.is_wildcard() {
        assert!(!p.matches(base));
        assert!(!p.matches(&format!("a.b.{base}")));
        assert!(p.matches(&format!("a.{base}")));
    } else {
        assert!(p.matches(base));
    }
});
