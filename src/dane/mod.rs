//! DANE for SMTP without the network (RFC 7672, with RFC 6698 and
//! RFC 7671): TLSA records and verifying a server's certificate chain
//! against them.
//!
//! The DNS side — DNSSEC-validated TLSA lookups at `_25._tcp.<host>` and
//! the TLSA base domain of RFC 7672 §2.2 — is the `dns` layer's; this
//! module takes the records it found and the chain the server sent.
//!
//! ```
//! use rustls_pki_types::{CertificateDer, UnixTime};
//! use smtp_tls_policy::dane::{TlsaRecord, verify_chain};
//!
//! # use rcgen::PublicKeyData;
//! # let key = rcgen::KeyPair::generate().unwrap();
//! # let cert = rcgen::CertificateParams::new(vec!["mx.example.net".into()]).unwrap().self_signed(&key).unwrap();
//! # let leaf: CertificateDer<'static> = cert.der().clone();
//! # let sha256 = ring::digest::digest(&ring::digest::SHA256, &key.subject_public_key_info());
//! // `3 1 1`: the SHA-256 of the server's public key (DANE-EE).
//! let record = TlsaRecord::new(3, 1, 1, sha256.as_ref().to_vec());
//! let outcome = verify_chain(&[leaf], &[record], &["mx.example.net"], UnixTime::now());
//! assert!(outcome.is_authenticated());
//! assert_eq!(outcome.matched().unwrap().depth, 0);
//! ```

mod record;
mod verify;
pub(crate) mod x509;

pub use record::{CertUsage, MatchingType, Selector, TlsaRecord, Unusable};
pub use verify::{DaneFailure, DaneMatch, DaneOutcome, PathProblem, verify_chain};
