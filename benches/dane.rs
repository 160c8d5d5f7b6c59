//! DANE chain verification benchmarks: DANE-EE (a digest of the leaf) and
//! DANE-TA (path validation to an anchor the server sent, and the name).
//!
//! Run: `cargo bench --bench dane`

use std::time::Duration;

use divan::{Bencher, black_box};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PublicKeyData};
use ring::digest::{SHA256, SHA512, digest};
use rustls_pki_types::{CertificateDer, UnixTime};
use smtp_tls_policy::dane::{TlsaRecord, verify_chain};

fn main() {
    divan::main();
}

struct World {
    chain: Vec<CertificateDer<'static>>,
    ee: TlsaRecord,
    ee512: TlsaRecord,
    ta: TlsaRecord,
}

/// A root, an intermediate and a leaf for mx.example.net (ECDSA P-256).
fn world() -> World {
    let ca = |cn: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p
    };
    let (root_params, root_key) = (ca("Bench Root"), KeyPair::generate().unwrap());
    let root = root_params.self_signed(&root_key).unwrap();
    let (int_params, int_key) = (ca("Bench Intermediate"), KeyPair::generate().unwrap());
    let int = int_params.signed_by(&int_key, &Issuer::from_params(&root_params, &root_key)).unwrap();
    let leaf_params = CertificateParams::new(vec!["mx.example.net".to_owned()]).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &Issuer::from_params(&int_params, &int_key)).unwrap();
    let spki = leaf_key.subject_public_key_info();
    World {
        chain: vec![leaf.der().clone(), int.der().clone(), root.der().clone()],
        ee: TlsaRecord::new(3, 1, 1, digest(&SHA256, &spki).as_ref().to_vec()),
        ee512: TlsaRecord::new(3, 1, 2, digest(&SHA512, &spki).as_ref().to_vec()),
        ta: TlsaRecord::new(2, 1, 1, digest(&SHA256, &root_key.subject_public_key_info()).as_ref().to_vec()),
    }
}

fn now() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000))
}

/// Benches `verify_chain` of the world's chain against `records`.
fn bench_records(bencher: Bencher, records: impl FnOnce(World) -> (Vec<CertificateDer<'static>>, Vec<TlsaRecord>)) {
    let (chain, records) = records(world());
    bencher.bench(|| verify_chain(black_box(&chain), black_box(&records), &["mx.example.net"], now()));
}

#[divan::bench]
fn ee_sha256(bencher: Bencher) {
    bench_records(bencher, |w| (w.chain, vec![w.ee]));
}

#[divan::bench]
fn ee_sha512(bencher: Bencher) {
    bench_records(bencher, |w| (w.chain, vec![w.ee512]));
}

/// DANE-TA at the root the server sends: two signature checks and the name.
#[divan::bench]
fn ta_root_in_chain(bencher: Bencher) {
    bench_records(bencher, |w| (w.chain, vec![w.ta]));
}

/// A typical published set: a next and a current DANE-EE key plus a
/// DANE-TA record; the current key matches.
#[divan::bench]
fn rollover_set(bencher: Bencher) {
    bench_records(bencher, |w| (w.chain, vec![TlsaRecord::new(3, 1, 1, vec![0xab; 32]), w.ee, w.ta]));
}

#[divan::bench]
fn tlsa_parse() -> TlsaRecord {
    TlsaRecord::parse(black_box("3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6")).unwrap()
}
