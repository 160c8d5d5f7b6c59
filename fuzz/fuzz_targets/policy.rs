//! RFC 8461 §3.2: any byte string parses to a policy or a typed error,
//! never a panic; a parsed policy prints to text that parses back equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_tls_policy::sts::Policy;

fuzz_target!(|data: &[u8]| {
    let parsed = Policy::parse_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(Policy::parse(text), parsed, "parse and parse_bytes disagree");
    }
    if let Ok(policy) = parsed {
        let printed = policy.to_string();
        let again = Policy::parse(&printed).expect("Display output must parse");
        assert_eq!(again, policy, "round trip via {printed:?}");
        for mx in policy.mx() {
            // A pattern's own base, or one label below it, is allowed.
            let host = if mx.is_wildcard() { format!("x.{}", mx.base()) } else { mx.base().to_string() };
            assert!(policy.allows_mx(&host), "{mx} must allow {host}");
        }
    }
});
