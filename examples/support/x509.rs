//! Certificates rcgen does not make.
#![allow(dead_code)]

use rcgen::{KeyPair, PublicKeyData, SigningKey};

/// An X.509 v1 certificate (no extensions; RFC 5280 §4.1) for `cn`,
/// self-signed with `key` (ECDSA P-256), valid 2020–2040.
pub fn v1_certificate(key: &KeyPair, cn: &str) -> Vec<u8> {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n @ 0..=0x7f => out.push(n as u8),
            n @ 0x80..=0xff => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(content);
        out
    }
    let ecdsa_sha256 = tlv(0x30, &tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]));
    let cn = tlv(0x0c, cn.as_bytes());
    let name = tlv(0x30, &tlv(0x31, &tlv(0x30, &[tlv(0x06, &[0x55, 0x04, 0x03]), cn].concat())));
    let validity = tlv(0x30, &[tlv(0x17, b"200101000000Z"), tlv(0x17, b"400101000000Z")].concat());
    let tbs = tlv(
        0x30,
        &[tlv(0x02, &[0x01]), ecdsa_sha256.clone(), name.clone(), validity, name, key.subject_public_key_info()]
            .concat(),
    );
    let signature = key.sign(&tbs).unwrap();
    let bits = tlv(0x03, &[&[0u8][..], &signature].concat());
    tlv(0x30, &[tbs, ecdsa_sha256, bits].concat())
}
