//! The destination-controls file: any text parses to a valid
//! configuration or to line-numbered problems, never a panic; a parsed
//! configuration validates without errors and plans without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_tls_policy::engine::{DestinationControls, DnssecStatus, DomainFacts, MxFacts, TlsaFacts};
use smtp_tls_policy::name::DomainName;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match DestinationControls::parse(text) {
        Ok(loaded) => {
            assert!(loaded.controls.validate().errors.is_empty());
            let Ok(domain) = DomainName::parse("example.com") else { return };
            let Ok(mx) = DomainName::parse("mx.example.com") else { return };
            let facts = DomainFacts::new(domain, vec![MxFacts::new(mx, TlsaFacts::SecureNone)], DnssecStatus::Secure);
            let _ = loaded.controls.plan(&facts);
        }
        Err(errors) => assert!(!errors.0.is_empty() && errors.0.iter().all(|p| p.line.is_some())),
    }
});
