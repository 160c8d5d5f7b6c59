//! RFC 6698 §2.2: any string parses to a TLSA record or a typed error,
//! never a panic; a record prints to text that parses back equal, and its
//! usability never panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_tls_policy::dane::TlsaRecord;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(record) = TlsaRecord::parse(text) {
        let printed = record.to_string();
        assert_eq!(TlsaRecord::parse(&printed).as_ref(), Ok(&record), "round trip via {printed:?}");
        let _ = record.unusable_reason();
    }
});
