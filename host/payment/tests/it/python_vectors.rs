//! Our signatures, addresses and keystores checked against eth-account, an independent
//! implementation, in both directions. Needs the peers venv (`cargo xtask test` provides it).

use crate::common;

use byoc_payment::keyfile::{ScryptCost, decrypt_keystore, encrypt_keystore};
use byoc_payment::{Address, SecretKey, Signature};
use serde_json::{Value, json};

fn python() -> Option<String> {
    common::python("eth-account vectors")
}

fn eth(py: &str, cmd: Value) -> Value {
    common::run_peer(py, "eth_vectors.py", &cmd)
}

fn messages() -> Vec<Vec<u8>> {
    vec![
        b"".to_vec(),
        b"0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A".to_vec(),
        br#"{"stream_id":"abc-123"}{"enable_video_ingress":true}"#.to_vec(),
        (0..=255u8).collect(),
        vec![0xff; 4096],
    ]
}

#[test]
fn eth_account_verifies_our_signatures() {
    let Some(py) = python() else { return };
    for _ in 0..3 {
        let key = SecretKey::generate();
        let items: Vec<Value> = messages()
            .iter()
            .map(|m| json!({"message": hex::encode(m), "signature": key.sign(m).unwrap().to_hex()}))
            .collect();
        let out = eth(&py, json!({"op": "recover", "items": items}));
        for a in out["addresses"].as_array().unwrap() {
            assert_eq!(a.as_str().unwrap(), key.address().to_checksum());
        }
    }
}

#[test]
fn we_verify_eth_account_signatures_byte_for_byte() {
    let Some(py) = python() else { return };
    let key = SecretKey::generate();
    let msgs = messages();
    let out = eth(
        &py,
        json!({"op": "sign", "key": hex::encode(key.to_bytes().as_ref()), "messages": msgs.iter().map(hex::encode).collect::<Vec<_>>()}),
    );
    assert_eq!(out["address"].as_str().unwrap(), key.address().to_checksum());
    for (m, s) in msgs.iter().zip(out["signatures"].as_array().unwrap()) {
        let theirs = Signature::from_hex(s.as_str().unwrap()).unwrap();
        assert_eq!(theirs.recover(m).unwrap(), key.address());
        // RFC 6979 deterministic nonces and low-s on both sides: identical signatures.
        assert_eq!(theirs, key.sign(m).unwrap());
    }
}

#[test]
fn checksummed_addresses_match() {
    let Some(py) = python() else { return };
    let addrs: Vec<Address> = (0..20).map(|_| SecretKey::generate().address()).collect();
    let out =
        eth(&py, json!({"op": "checksum", "addresses": addrs.iter().map(|a| hex::encode(a.0)).collect::<Vec<_>>()}));
    for (a, theirs) in addrs.iter().zip(out["addresses"].as_array().unwrap()) {
        assert_eq!(a.to_checksum(), theirs.as_str().unwrap());
    }
}

#[test]
fn keystores_open_both_ways() {
    let Some(py) = python() else { return };
    let key = SecretKey::generate();
    let ours = encrypt_keystore(&key, "correct horse", ScryptCost::LIGHT).unwrap();
    let ks: Value = serde_json::from_str(&ours).unwrap();
    let out = eth(&py, json!({"op": "decrypt", "keystore": ks, "password": "correct horse"}));
    assert_eq!(out["key"].as_str().unwrap(), hex::encode(key.to_bytes().as_ref()));
    let theirs = eth(&py, json!({"op": "encrypt", "key": hex::encode(key.to_bytes().as_ref()), "password": "pw"}));
    let back = decrypt_keystore(&theirs["keystore"].to_string(), "pw").unwrap();
    assert_eq!(back.address(), key.address());
}
