//! RFC 8460 §3: any string parses to a TLS-RPT record or a typed error,
//! never a panic; a record prints to text that parses back equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_tls_policy::report::{TlsRptRecord, select_tlsrpt};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(record) = TlsRptRecord::parse(text) {
        let printed = record.to_string();
        assert_eq!(TlsRptRecord::parse(&printed).as_ref(), Ok(&record), "round trip via {printed:?}");
    }
    let _ = select_tlsrpt(text.split('\n'));
});
