//! The socketmap framing (Postfix socketmap_table(5)): any bytes decode to
//! a netstring, "need more", or a typed error, never a panic; a decoded
//! netstring encodes back to the bytes it came from; a request payload
//! parses or is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_tls_policy::postfix::netstring::{decode, encode};
use smtp_tls_policy::postfix::{MAX_REQUEST, Request};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((payload, used))) = decode(data, MAX_REQUEST) {
        assert!(payload.len() <= MAX_REQUEST);
        assert_eq!(encode(payload), &data[..used], "re-encoding");
        if let Ok(request) = Request::parse(payload) {
            assert!(!request.name.is_empty() && !request.key.is_empty());
            assert_eq!(format!("{} {}", request.name, request.key).as_bytes(), payload);
        }
    }
});
