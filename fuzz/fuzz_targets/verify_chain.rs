//! RFC 7672 §3.1: `verify_chain` over arbitrary DER and arbitrary records
//! returns an outcome, never a panic, and an authenticated outcome names a
//! usable record of the right usage.
//!
//! Input layout: a count of records and of certificates, then each record
//! as `usage selector matching len data`, then each certificate as a
//! big-endian u16 length and its DER.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rustls_pki_types::{CertificateDer, UnixTime};
use smtp_tls_policy::dane::{CertUsage, TlsaRecord, verify_chain};

fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if input.len() < n {
        return None;
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Some(head)
}

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    let Some(&[records, certs]) = take(&mut input, 2) else { return };
    let mut tlsa = Vec::new();
    for _ in 0..records % 8 {
        let Some(&[u, s, m, len]) = take(&mut input, 4) else { return };
        let Some(bytes) = take(&mut input, usize::from(len)) else { return };
        tlsa.push(TlsaRecord::new(u, s, m, bytes.to_vec()));
    }
    let mut chain = Vec::new();
    for _ in 0..certs % 8 {
        let Some(&[hi, lo]) = take(&mut input, 2) else { break };
        let Some(der) = take(&mut input, usize::from(u16::from_be_bytes([hi, lo]))) else { break };
        chain.push(CertificateDer::from(der));
    }
    let now = UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000));
    let outcome = verify_chain(&chain, &tlsa, &["mx.example.net"], now);
    if let Some(m) = outcome.matched() {
        let record = &tlsa[m.record_index];
        assert!(record.is_usable_for_smtp());
        assert_eq!(record, &m.record);
        match record.usage() {
            CertUsage::DaneEe => assert_eq!((m.depth, m.chain_index), (0, Some(0))),
            _ => assert!(m.depth >= 1 && m.chain_index != Some(0)),
        }
    }
    if let Some(f) = outcome.failure() {
        let _ = (f.to_string(), f.result_type());
    }
});
