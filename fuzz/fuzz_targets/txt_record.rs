//! RFC 8461 §3.1: any string parses to a record or a typed error, never a
//! panic; a parsed record prints to text that parses back equal; the RRset
//! selection agrees with parsing a single record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_tls_policy::sts::{TxtRecord, select_txt};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = TxtRecord::parse(text);
    if let Ok(record) = &parsed {
        let printed = record.to_string();
        let again = TxtRecord::parse(&printed).expect("Display output must parse");
        assert_eq!(&again, record, "round trip of {text:?} via {printed:?}");
        assert_eq!(select_txt([text, "v=spf1 -all"]).as_ref(), Ok(record));
    }
    // Split into an RRset on newlines: selection never panics.
    let _ = select_txt(text.split('\n'));
});
