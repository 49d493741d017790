//! Our tickets against an independent implementation, both ways: Python with livepeer-gateway's generated
//! `lp_rpc_pb2` and eth-account, following go-livepeer's rules (`tests/tickets_peer.py`). Needs the peers
//! venv (`cargo xtask test` provides it).

use crate::common;

use byoc_payment::{
    Balance, BlockClock, Payment, PaymentError, Price, Recipient, RecipientConfig, SecretKey, Wei, WinProb,
    create_payment,
};
use serde_json::{Value, json};

fn python() -> Option<String> {
    common::python("ticket vectors")
}

fn peer(py: &str, cmd: Value) -> Value {
    common::run_peer(py, "tickets_peer.py", &cmd)
}

fn recipient(win_prob: Option<WinProb>) -> Recipient {
    let mut config = RecipientConfig::for_ev(Wei::from_u128(1_000_000_000_000_000), &Wei::from_u128(1_000_000_000_000));
    if let Some(w) = win_prob {
        config.win_prob = w;
    }
    Recipient::new(SecretKey::generate().address(), config, BlockClock::system(std::time::Duration::from_secs(12)))
}

#[test]
fn python_payments_are_accepted_and_credit_their_ev() {
    let Some(py) = python() else { return };
    for (win_prob, n, price) in
        [(None, 70u32, Price::new(1_000_000_000, 1)), (Some(WinProb::max()), 3, Price::new(7, 3))]
    {
        let price = price.unwrap();
        let r = recipient(win_prob.clone());
        let gateway = SecretKey::generate();
        let params = r.ticket_params(&gateway.address(), &price).unwrap();
        let out = peer(
            &py,
            json!({"op": "pay", "key": hex::encode(gateway.to_bytes().as_ref()), "ticket_params": params,
                   "price": price, "n": n}),
        );
        assert_eq!(out["sender"], gateway.address().to_checksum());
        let payment = Payment::from_header(out["header"].as_str().unwrap()).unwrap();
        let receipt = r.receive_payment(&payment, &gateway.address()).unwrap();
        assert_eq!(receipt.tickets, n as usize);
        assert_eq!(receipt.ev, params.ev().times(n.into()));
        assert_eq!(receipt.ev, Balance::from_exact(out["ev_total"].as_str().unwrap()).unwrap(), "Python's EV");
        if win_prob.is_some() {
            assert_eq!(receipt.winning.len(), n as usize, "certain wins are detected");
        }
        // The same tickets again are replays.
        assert_eq!(
            r.receive_payment(&payment, &gateway.address()).unwrap_err(),
            PaymentError::ReplayedNonce { nonce: 1 }
        );
    }
}

#[test]
fn python_payments_with_other_params_or_signer_are_refused() {
    let Some(py) = python() else { return };
    let r = recipient(None);
    let gateway = SecretKey::generate();
    let price = Price::wei_per_second(5).unwrap();
    let mut params = r.ticket_params(&gateway.address(), &price).unwrap();
    params.face_value = Wei::from_u128(2_000_000_000_000_000);
    let out = peer(
        &py,
        json!({"op": "pay", "key": hex::encode(gateway.to_bytes().as_ref()), "ticket_params": params, "price": price, "n": 1}),
    );
    let payment = Payment::from_header(out["header"].as_str().unwrap()).unwrap();
    assert_eq!(r.receive_payment(&payment, &gateway.address()).unwrap_err(), PaymentError::UnknownParams);
    // Signed by another key, sent under this job's sender.
    let params = r.ticket_params(&gateway.address(), &price).unwrap();
    let thief = SecretKey::generate();
    let out = peer(
        &py,
        json!({"op": "pay", "key": hex::encode(thief.to_bytes().as_ref()), "ticket_params": params, "price": price, "n": 1}),
    );
    let mut payment = Payment::from_header(out["header"].as_str().unwrap()).unwrap();
    payment.sender = gateway.address().0.to_vec();
    assert!(matches!(
        r.receive_payment(&payment, &gateway.address()),
        Err(PaymentError::BadSignature { nonce: 1, .. })
    ));
}

#[test]
fn our_payments_decode_in_python_and_recover_to_our_address() {
    let Some(py) = python() else { return };
    let r = recipient(None);
    let gateway = SecretKey::generate();
    let price = Price::new(10, 3).unwrap();
    let params = r.ticket_params(&gateway.address(), &price).unwrap();
    let payment = create_payment(&gateway, &params, &price, 4).unwrap();
    let out = peer(&py, json!({"op": "decode", "header": payment.to_header()}));
    assert_eq!(out["sender"], gateway.address().to_checksum());
    assert_eq!(out["recipient"], r.address().to_checksum());
    assert_eq!(out["face_value"], params.face_value.to_string());
    assert_eq!(out["win_prob"], num(&params.win_prob.to_be_bytes()));
    assert_eq!(out["recipient_rand_hash"], hex::encode(params.recipient_rand_hash));
    assert_eq!(out["seed"], hex::encode(params.seed).trim_start_matches("00"));
    assert_eq!(out["expiration_block"], params.expiration_block);
    assert_eq!(out["creation_round"], params.expiration_params.creation_round);
    assert_eq!(out["creation_round_block_hash"], hex::encode(params.expiration_params.creation_round_block_hash));
    assert_eq!(out["price"], json!([10, 3]));
    let tickets = out["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 4);
    for (i, t) in tickets.iter().enumerate() {
        assert_eq!(t["nonce"], i + 1);
        assert_eq!(t["signer"], gateway.address().to_checksum(), "Python recovers our signature to our address");
    }
}

/// A big-endian number as decimal text (for values beyond u128).
fn num(be: &[u8]) -> String {
    let mut digits = vec![0u8]; // little-endian base-10 digits
    for &byte in be {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            let v = u32::from(*d) * 256 + carry;
            *d = (v % 10) as u8;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}
