//! Differential: the crate's former hand-written DER reader and
//! `x509-parser` must agree on every certificate (SPKI, version, validity,
//! self-issued, basicConstraints, CN, DNS SAN) and every SPKI either
//! accepts. Run before the hand-written reader is removed (issue
//! `libraries:`), over the `verify_chain` corpus and test certificates.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(disagreement) = smtp_tls_policy::dane::__x509_disagreement(data) {
        panic!("the readers disagree on {} bytes {:02x?}:\n{disagreement}", data.len(), data);
    }
});
