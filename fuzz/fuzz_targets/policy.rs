//! RFC 8461 §3.2: any byte string parses to a policy or a typed error,
//! never a panic; a parsed policy prints to text that parses back equal
//! as stored (`parse_stored`: the `Display` form may be longer than the
//! 64 KiB body). Run with `-max_len=65536`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_tls_policy::sts::{MAX_STORED_POLICY_BYTES, Policy};

fuzz_target!(|data: &[u8]| {
    let parsed = Policy::parse_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(Policy::parse(text), parsed, "parse and parse_bytes disagree");
    }
    if let Ok(policy) = parsed {
        let printed = policy.to_string();
        assert!(printed.len() <= MAX_STORED_POLICY_BYTES, "Display output of {} bytes", printed.len());
        let again = Policy::parse_stored(printed.as_bytes()).expect("Display output must parse as stored");
        assert_eq!(again, policy, "round trip via {printed:?}");
        for mx in policy.mx() {
            // A pattern's own base, or one label below it, is allowed.
            let host = if mx.is_wildcard() { format!("x.{}", mx.base()) } else { mx.base().to_string() };
            assert!(policy.allows_mx(&host), "{mx} must allow {host}");
        }
    }
});
