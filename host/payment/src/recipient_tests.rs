use super::*;
use crate::key::SecretKey;
use crate::ticket::{create_payment, tickets_for_cost};

struct Setup {
    recipient: Recipient,
    clock: BlockClock,
    gateway: SecretKey,
    price: Price,
}

fn setup_with(config: RecipientConfig) -> Setup {
    let clock = BlockClock::manual(1000);
    let recipient = Recipient::new(SecretKey::generate().address(), config, clock.clone());
    Setup { recipient, clock, gateway: SecretKey::generate(), price: Price::wei_per_second(1_000_000).unwrap() }
}

fn setup() -> Setup {
    // EV 1e6 wei, face value 1e9 wei: win probability 1/1000.
    setup_with(RecipientConfig::for_ev(Wei::from_u128(1_000_000_000), &Wei::from_u128(1_000_000)))
}

impl Setup {
    fn params(&self) -> TicketParams {
        self.recipient.ticket_params(&self.gateway.address(), &self.price).unwrap()
    }

    fn pay(&self, n: u32) -> Payment {
        create_payment(&self.gateway, &self.params(), &self.price, n).unwrap()
    }

    fn receive(&self, p: &Payment) -> Result<Receipt, PaymentError> {
        self.recipient.receive_payment(p, &self.gateway.address())
    }
}

#[test]
fn a_valid_payment_credits_every_tickets_ev() {
    let s = setup();
    let params = s.params();
    assert_eq!(params.recipient, s.recipient.address());
    assert_eq!(params.expiration_block, 1040);
    assert!(params.expiration_params.creation_round > 0);
    assert_ne!(params.expiration_params.creation_round_block_hash, [0; 32]);
    let ev = params.ev();
    assert!(ev >= Balance::from_i128(1_000_000) && ev < Balance::from_i128(1_000_001));
    let n = tickets_for_cost(&s.price.cost(70).unwrap(), &ev);
    assert_eq!(n, 70);
    let receipt = s.receive(&create_payment(&s.gateway, &params, &s.price, n).unwrap()).unwrap();
    assert_eq!(receipt.tickets, 70);
    assert_eq!(receipt.ev, ev.times(70));
    assert_eq!(receipt.sender, s.gateway.address());
    assert_eq!(receipt.price, s.price);
    assert_eq!(s.recipient.tracked_params(), 1);
}

#[test]
fn winning_tickets_carry_the_preimage_of_their_hash() {
    let s = setup_with(RecipientConfig { win_prob: WinProb::max(), ..RecipientConfig::default() });
    let receipt = s.receive(&s.pay(5)).unwrap();
    assert_eq!(receipt.winning.len(), 5, "win probability 1 always wins");
    for w in &receipt.winning {
        assert_eq!(keccak256(&w.recipient_rand), w.ticket.recipient_rand_hash);
        assert!(w.ticket.is_winning(&w.sig, &w.recipient_rand));
        w.ticket.verify(&w.sig).unwrap();
    }
    let s = setup();
    let few = s.receive(&s.pay(10)).unwrap().winning.len();
    assert!(few <= 10);
}

#[test]
fn nonces_are_never_reused_for_one_set_of_params() {
    let s = setup();
    let params = s.params();
    let first = create_payment(&s.gateway, &params, &s.price, 3).unwrap();
    s.receive(&first).unwrap();
    // The same payment again: every nonce replayed; nothing is credited.
    assert_eq!(s.receive(&first).unwrap_err(), PaymentError::ReplayedNonce { nonce: 1 });
    // A new payment overlapping on nonce 3.
    let mut overlap = create_payment(&s.gateway, &params, &s.price, 5).unwrap();
    overlap.ticket_sender_params.drain(..2);
    assert_eq!(s.receive(&overlap).unwrap_err(), PaymentError::ReplayedNonce { nonce: 3 });
    // Only the new nonces 4 and 5: accepted.
    overlap.ticket_sender_params.remove(0);
    assert_eq!(s.receive(&overlap).unwrap().tickets, 2);
    // A duplicate inside one payment.
    let mut dup = create_payment(&s.gateway, &s.params(), &s.price, 2).unwrap();
    dup.ticket_sender_params[1] = dup.ticket_sender_params[0].clone();
    assert_eq!(s.receive(&dup).unwrap_err(), PaymentError::ReplayedNonce { nonce: 1 });
    // The refused payment recorded nothing: its first ticket is still good alone.
    dup.ticket_sender_params.pop();
    assert_eq!(s.receive(&dup).unwrap().tickets, 1);
}

#[test]
fn at_most_600_nonces_per_set_of_params() {
    let s = setup();
    let params = s.params();
    let mut p = create_payment(&s.gateway, &params, &s.price, 600).unwrap();
    let tail = p.ticket_sender_params.split_off(400);
    s.receive(&p).unwrap();
    p.ticket_sender_params = tail;
    s.receive(&p).unwrap();
    let extra = Ticket::new(&params, params.expiration_params, s.gateway.address(), 601).sign(&s.gateway).unwrap();
    p.ticket_sender_params = vec![crate::proto::TicketSenderParams { sender_nonce: 601, sig: extra.0.to_vec() }];
    assert_eq!(s.receive(&p).unwrap_err(), PaymentError::TooManyNonces { max: 600 });
    let mut big = s.pay(1);
    big.ticket_sender_params = vec![big.ticket_sender_params[0].clone(); 601];
    assert_eq!(s.receive(&big).unwrap_err(), PaymentError::TooManyTickets { count: 601, max: 600 });
}

#[test]
fn expired_params_are_refused_and_forgotten() {
    let s = setup();
    let p = s.pay(1);
    s.receive(&s.pay(1)).unwrap();
    assert_eq!(s.recipient.tracked_params(), 1);
    s.clock.advance(40);
    assert_eq!(s.receive(&p).unwrap_err(), PaymentError::Expired { expiration_block: 1040, current_block: 1040 });
    s.receive(&s.pay(1)).unwrap();
    assert_eq!(s.recipient.tracked_params(), 1, "the expired entry was pruned");
}

#[test]
fn altered_params_or_price_are_refused() {
    let s = setup();
    let params = s.params();
    let alter = |f: &dyn Fn(&mut TicketParams)| {
        let mut q = params.clone();
        f(&mut q);
        s.receive(&create_payment(&s.gateway, &q, &s.price, 1).unwrap()).unwrap_err()
    };
    assert_eq!(alter(&|q| q.face_value = Wei::from_u128(2_000_000_000)), PaymentError::UnknownParams);
    assert_eq!(alter(&|q| q.win_prob = WinProb::max()), PaymentError::UnknownParams);
    assert_eq!(alter(&|q| q.expiration_block += 100), PaymentError::UnknownParams);
    assert_eq!(alter(&|q| q.seed[0] ^= 1), PaymentError::UnknownParams);
    assert_eq!(alter(&|q| q.expiration_params.creation_round += 1), PaymentError::UnknownParams);
    assert_eq!(alter(&|q| q.recipient_rand_hash[0] ^= 1), PaymentError::UnknownParams);
    let cheaper = Price::wei_per_second(1).unwrap();
    let p = create_payment(&s.gateway, &params, &cheaper, 1).unwrap();
    assert_eq!(s.receive(&p).unwrap_err(), PaymentError::UnknownParams);
    // Params issued to another sender, used by this one.
    let other = s.recipient.ticket_params(&SecretKey::generate().address(), &s.price).unwrap();
    let p = create_payment(&s.gateway, &other, &s.price, 1).unwrap();
    assert_eq!(s.receive(&p).unwrap_err(), PaymentError::UnknownParams);
    // Params of another recipient at the same address (another secret, e.g. before a restart).
    let restarted = Recipient::new(s.recipient.address(), s.recipient.config().clone(), s.clock.clone());
    assert_eq!(restarted.receive_payment(&s.pay(1), &s.gateway.address()).unwrap_err(), PaymentError::UnknownParams);
}

#[test]
fn every_malformed_payment_has_its_error() {
    let s = setup();
    let me = s.gateway.address();
    let good = s.pay(2);
    let check = |f: &dyn Fn(&mut Payment), want: &dyn Fn(&PaymentError) -> bool| {
        let mut p = good.clone();
        f(&mut p);
        let err = s.recipient.receive_payment(&p, &me).unwrap_err();
        assert!(want(&err), "unexpected {err:?}");
        assert!(!err.to_string().is_empty());
    };
    check(&|p| p.sender = vec![1; 3], &|e| matches!(e, PaymentError::BadField { field: "sender", .. }));
    check(&|p| p.sender = vec![1; 20], &|e| matches!(e, PaymentError::SenderMismatch { .. }));
    check(&|p| p.ticket_params = None, &|e| *e == PaymentError::MissingTicketParams);
    check(&|p| p.expiration_params = None, &|e| *e == PaymentError::MissingExpirationParams);
    check(&|p| p.expected_price = None, &|e| *e == PaymentError::MissingPrice);
    check(&|p| p.expected_price.as_mut().unwrap().pixels_per_unit = 0, &|e| matches!(e, PaymentError::BadPrice(_)));
    check(&|p| p.ticket_sender_params.clear(), &|e| *e == PaymentError::NoTickets);
    check(&|p| p.ticket_params.as_mut().unwrap().recipient = vec![7; 20], &|e| {
        matches!(e, PaymentError::WrongRecipient { .. })
    });
    check(&|p| p.ticket_params.as_mut().unwrap().win_prob.clear(), &|e| *e == PaymentError::ZeroEv);
    check(&|p| p.ticket_params.as_mut().unwrap().face_value = vec![1; 40], &|e| {
        matches!(e, PaymentError::BadField { field: "face_value", .. })
    });
    check(
        &|p| p.ticket_sender_params[1].sig.truncate(64),
        &|e| matches!(e, PaymentError::BadSignature { nonce: 2, reason } if reason.contains("not 65")),
    );
    check(&|p| p.ticket_sender_params[1].sig[10] ^= 1, &|e| matches!(e, PaymentError::BadSignature { nonce: 2, .. }));
    check(&|p| p.ticket_sender_params[0].sig[64] = 29, &|e| matches!(e, PaymentError::BadSignature { nonce: 1, .. }));
    check(&|p| p.ticket_sender_params[0].sender_nonce = 9, &|e| {
        matches!(e, PaymentError::BadSignature { nonce: 9, .. })
    });
    // Tickets signed by someone else, claiming our sender.
    let thief = SecretKey::generate();
    let forged = create_payment(&thief, &s.params(), &s.price, 1).unwrap();
    check(&|p| p.ticket_sender_params = forged.ticket_sender_params.clone(), &|e| {
        matches!(e, PaymentError::BadSignature { nonce: 1, .. })
    });
    // Nothing above was recorded: the good payment still goes through.
    assert_eq!(s.receive(&good).unwrap().tickets, 2);
}

#[test]
fn free_params_carry_no_value_and_are_refused_as_payment() {
    let s = setup();
    let free = Price::new(0, 1).unwrap();
    let params = s.recipient.ticket_params(&s.gateway.address(), &free).unwrap();
    assert!(params.face_value.is_zero() && params.win_prob.is_zero());
    assert_eq!(params.ev(), Balance::zero());
    let p = create_payment(&s.gateway, &params, &free, 1).unwrap();
    assert_eq!(s.receive(&p).unwrap_err(), PaymentError::ZeroEv);
    assert!(s.recipient.ticket_params(&s.gateway.address(), &Price { price_per_unit: 1, pixels_per_unit: 0 }).is_err());
}

#[test]
fn tracked_params_are_bounded() {
    let s = setup_with(RecipientConfig { max_tracked_params: 2, ..RecipientConfig::default() });
    s.receive(&s.pay(1)).unwrap();
    s.receive(&s.pay(1)).unwrap();
    assert_eq!(s.receive(&s.pay(1)).unwrap_err(), PaymentError::TooManySessions { max: 2 });
    s.clock.advance(41);
    s.receive(&s.pay(1)).unwrap();
    assert_eq!(s.recipient.tracked_params(), 1);
}

#[test]
fn the_system_clock_counts_blocks_of_wall_time() {
    let c = BlockClock::system(Duration::from_secs(12));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() / 12;
    assert!(c.current_block().abs_diff(now) <= 1);
    c.advance(1000);
    assert!(c.current_block().abs_diff(now) <= 1, "advance does not move a system clock");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any corruption of a valid header's bytes is an error or a payment worth no more than the original;
        /// never a panic.
        #[test]
        fn corrupted_headers_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
                                        cut in any::<usize>()) {
            let s = setup();
            let good = s.pay(3);
            let mut bytes = prost::Message::encode_to_vec(&good);
            for (i, x) in flips {
                let len = bytes.len();
                bytes[i % len] ^= x;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            let header = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes);
            if let Ok(receipt) = Payment::from_header(&header).map_err(PaymentError::from).and_then(|p| s.receive(&p)) {
                prop_assert!(receipt.tickets <= 3);
            }
        }

        /// Arbitrary text never panics the header decoder.
        #[test]
        fn arbitrary_headers_never_panic(text in ".{0,200}") {
            let _ = Payment::from_header(&text);
        }
    }
}

#[test]
fn on_chain_params_carry_the_watchers_block_round_and_hash_and_a_capped_face_value() {
    let clock = BlockClock::chain(ChainPoint { block: 100, round: 7, round_block_hash: [9; 32] });
    let config = RecipientConfig::default();
    let r = Recipient::new(SecretKey::generate().address(), config.clone(), clock.clone());
    let gw = SecretKey::generate();
    let price = Price::wei_per_second(5).unwrap();
    let p = r.ticket_params(&gw.address(), &price).unwrap();
    assert_eq!(p.expiration_block, 140);
    assert_eq!(p.expiration_params.creation_round, 7);
    assert_eq!(p.expiration_params.creation_round_block_hash, [9; 32]);
    assert_eq!(p.face_value, config.face_value);

    clock.set_chain_point(ChainPoint { block: 120, round: 8, round_block_hash: [8; 32] });
    let cap = config.face_value.div_floor(4);
    let capped = r.ticket_params_capped(&gw.address(), &price, Some(&cap)).unwrap();
    assert_eq!((capped.expiration_block, capped.expiration_params.creation_round), (160, 8));
    assert_eq!(capped.face_value, cap);
    // The same expected value per ticket: four times the win probability for a quarter of the face value.
    assert_eq!(capped.ev(), p.ev());
    let above = config.face_value.times(2);
    assert_eq!(r.ticket_params_capped(&gw.address(), &price, Some(&above)).unwrap().face_value, config.face_value);
    // A payment on capped params is accepted like any other.
    let receipt = r.receive_payment(&create_payment(&gw, &capped, &price, 3).unwrap(), &gw.address()).unwrap();
    assert_eq!(receipt.tickets, 3);
    // Past the watcher's block + 40 the params are expired.
    clock.set_chain_point(ChainPoint { block: 160, round: 8, round_block_hash: [8; 32] });
    let err = r.receive_payment(&create_payment(&gw, &capped, &price, 1).unwrap(), &gw.address()).unwrap_err();
    assert!(matches!(err, PaymentError::Expired { .. }), "{err}");
}
