//! `Livepeer-Payment`: the header's base64 and protobuf decoding and the orchestrator's whole ticket
//! validation ([`Recipient::receive_payment`]). Two kinds of input:
//!
//! - any header value: it decodes or not, and a payment made up without the recipient's secret is
//!   never accepted;
//! - a real payment (tickets signed by a sender for params the recipient issued) with edits: any field
//!   replaced, tickets dropped, repeated or re-signed, bytes of its protobuf flipped, the clock moved.
//!   If the recipient accepts it, it credits exactly what the sender signed (the same params, price,
//!   sender and signatures; nothing else) and never accepts the same tickets twice.
#![no_main]

use std::collections::HashMap;

use arbitrary::Arbitrary;
use byoc_payment::proto::{self, Payment};
use byoc_payment::{Address, BlockClock, Price, Recipient, RecipientConfig, SecretKey, TicketParams, create_payment};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

#[derive(Arbitrary, Debug)]
enum Edit {
    Sender(Vec<u8>),
    Recipient(Vec<u8>),
    FaceValue(Vec<u8>),
    WinProb(Vec<u8>),
    RandHash(Vec<u8>),
    Seed(Vec<u8>),
    ExpirationBlock(Vec<u8>),
    ParamsExpiration(Option<(i64, Vec<u8>)>),
    Expiration(Option<(i64, Vec<u8>)>),
    Price(Option<(i64, i64)>),
    NoTicketParams,
    Nonce(u8, u32),
    Sig(u8, Vec<u8>),
    FlipSigBit(u8, u16),
    DropTicket(u8),
    RepeatTicket(u8),
    /// XORs a byte of the encoded protobuf.
    FlipByte(u16, u8),
    AdvanceClock(u8),
    /// The job names another signer than the payment.
    JobSender([u8; 20]),
}

#[derive(Arbitrary, Debug)]
enum Input {
    Header(String),
    Edited { tickets: u8, price: u8, edits: Vec<Edit> },
}

fuzz_target!(|input: Input| match input {
    Input::Header(value) => {
        let Ok(payment) = Payment::from_header(&value) else { return };
        let recipient = recipient(BlockClock::manual(1000));
        let sender = Address(payment.sender.get(..20).and_then(|s| s.try_into().ok()).unwrap_or([0; 20]));
        assert!(recipient.receive_payment(&payment, &sender).is_err(), "a made-up payment was accepted");
        assert_eq!(Payment::from_header(&payment.to_header()).as_ref(), Ok(&payment));
    }
    Input::Edited { tickets, price, edits } => edited(tickets, price, edits),
});

fn recipient(clock: BlockClock) -> Recipient {
    Recipient::new(Address([0x0a; 20]), RecipientConfig::default(), clock)
}

fn edited(tickets: u8, price: u8, edits: Vec<Edit>) {
    let key = SecretKey::from_bytes(&[0x11; 32]).expect("a valid key");
    let sender = key.address();
    let clock = BlockClock::manual(1000);
    let recipient = recipient(clock.clone());
    let (per_unit, units) = [(1, 1), (10, 3), (1_000_000, 1_000)][usize::from(price) % 3];
    let price = Price::new(per_unit, units).expect("a valid price");
    let params = recipient.ticket_params(&sender, &price).expect("params");
    let n = u32::from(tickets % 4) + 1;
    let original = create_payment(&key, &params, &price, n).expect("payment");
    let signed: HashMap<u32, Vec<u8>> =
        original.ticket_sender_params.iter().map(|t| (t.sender_nonce, t.sig.clone())).collect();

    let mut payment = original.clone();
    let mut job_sender = sender;
    for edit in edits.into_iter().take(8) {
        apply(&mut payment, &mut job_sender, &clock, edit);
    }
    let Ok(receipt) = recipient.receive_payment(&payment, &job_sender) else {
        assert!(
            payment != original || job_sender != sender || clock.current_block() >= params.expiration_block,
            "an unedited payment was refused"
        );
        return;
    };
    // Accepted: it must be exactly what the sender signed.
    assert_eq!(payment.sender, sender.0.to_vec(), "credited to another sender");
    assert_eq!(job_sender, sender);
    let got = TicketParams::from_proto(payment.ticket_params.as_ref().expect("params")).expect("valid params");
    assert_eq!(got.recipient, params.recipient);
    assert_eq!(got.face_value, params.face_value, "face value changed");
    assert_eq!(got.win_prob, params.win_prob, "win probability changed");
    assert_eq!(
        (got.recipient_rand_hash, got.seed, got.expiration_block),
        (params.recipient_rand_hash, params.seed, params.expiration_block)
    );
    let expiration = payment.expiration_params.as_ref().expect("expiration params");
    assert_eq!(expiration.creation_round, params.expiration_params.creation_round);
    let p = payment.expected_price.as_ref().expect("price");
    assert_eq!(
        i128::from(p.price_per_unit) * i128::from(price.pixels_per_unit),
        i128::from(price.price_per_unit) * i128::from(p.pixels_per_unit),
        "credited at another price"
    );
    for t in &payment.ticket_sender_params {
        assert_eq!(signed.get(&t.sender_nonce), Some(&t.sig), "a ticket the sender did not sign was accepted");
    }
    assert_eq!(receipt.tickets, payment.ticket_sender_params.len());
    assert_eq!(receipt.ev, params.ev().times(receipt.tickets as u64), "credit is not the tickets' value");
    assert!(recipient.receive_payment(&payment, &job_sender).is_err(), "the same tickets were accepted twice");
}

fn apply(payment: &mut Payment, job_sender: &mut Address, clock: &BlockClock, edit: Edit) {
    let params = payment.ticket_params.get_or_insert_with(Default::default);
    let ticket = |payment: &mut Payment, i: u8| {
        let len = payment.ticket_sender_params.len();
        (len > 0).then(|| usize::from(i) % len)
    };
    match edit {
        Edit::Sender(b) => payment.sender = b,
        Edit::Recipient(b) => params.recipient = b,
        Edit::FaceValue(b) => params.face_value = b,
        Edit::WinProb(b) => params.win_prob = b,
        Edit::RandHash(b) => params.recipient_rand_hash = b,
        Edit::Seed(b) => params.seed = b,
        Edit::ExpirationBlock(b) => params.expiration_block = b,
        Edit::ParamsExpiration(e) => {
            params.expiration_params = e.map(|(creation_round, creation_round_block_hash)| {
                proto::TicketExpirationParams { creation_round, creation_round_block_hash }
            })
        }
        Edit::Expiration(e) => {
            payment.expiration_params = e.map(|(creation_round, creation_round_block_hash)| {
                proto::TicketExpirationParams { creation_round, creation_round_block_hash }
            })
        }
        Edit::Price(p) => {
            payment.expected_price = p.map(|(price_per_unit, pixels_per_unit)| proto::PriceInfo {
                price_per_unit,
                pixels_per_unit,
                ..Default::default()
            })
        }
        Edit::NoTicketParams => payment.ticket_params = None,
        Edit::Nonce(i, nonce) => {
            if let Some(i) = ticket(payment, i) {
                payment.ticket_sender_params[i].sender_nonce = nonce;
            }
        }
        Edit::Sig(i, sig) => {
            if let Some(i) = ticket(payment, i) {
                payment.ticket_sender_params[i].sig = sig;
            }
        }
        Edit::FlipSigBit(i, bit) => {
            if let Some(i) = ticket(payment, i) {
                let sig = &mut payment.ticket_sender_params[i].sig;
                let len = sig.len();
                if len > 0 {
                    sig[usize::from(bit / 8) % len] ^= 1 << (bit % 8);
                }
            }
        }
        Edit::DropTicket(i) => {
            if let Some(i) = ticket(payment, i) {
                payment.ticket_sender_params.remove(i);
            }
        }
        Edit::RepeatTicket(i) => {
            if let Some(i) = ticket(payment, i) {
                let t = payment.ticket_sender_params[i].clone();
                payment.ticket_sender_params.push(t);
            }
        }
        Edit::FlipByte(at, x) => {
            let mut bytes = payment.encode_to_vec();
            let len = bytes.len();
            if len > 0 {
                bytes[usize::from(at) % len] ^= x;
            }
            if let Ok(p) = Payment::decode(bytes.as_slice()) {
                *payment = p;
            }
        }
        Edit::AdvanceClock(blocks) => clock.advance(u64::from(blocks)),
        Edit::JobSender(a) => *job_sender = Address(a),
    }
}
