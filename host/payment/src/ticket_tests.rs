use super::*;

fn zero_ticket() -> Ticket {
    Ticket {
        recipient: Address([0; 20]),
        sender: Address([0; 20]),
        face_value: Wei::zero(),
        win_prob: WinProb::zero(),
        sender_nonce: 0,
        recipient_rand_hash: [0; 32],
        expiration: ExpirationParams::default(),
        params_expiration_block: 0,
    }
}

fn h(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// Hashes of go-livepeer's `pm.TestHash` (independently computed by its Go implementation).
#[test]
fn ticket_hash_matches_go_livepeer_vectors() {
    let mut t = zero_ticket();
    t.sender_nonce = u32::MAX;
    assert_eq!(t.hash(), h("e1393fc7f6de093780674022f96cb8e3872235167d037c04d554e58c0e63d280"));
    t.sender_nonce = 1;
    assert_eq!(t.hash(), h("ce0918ba94518293e9712effbe5fca4f1f431089833a5b8c257cb1e024595f68"));
    let mut t = zero_ticket();
    t.face_value = Wei::from_u128(1);
    t.win_prob = WinProb(500u32.into());
    assert_eq!(t.hash(), h("87ef13f2d37e4d5352a01d3c77b8179d80e0887f1953bfabfd0bfd7b0f689ddd"));
    let mut t = zero_ticket();
    t.face_value = Wei::from_u128(500);
    t.win_prob = WinProb(1u32.into());
    assert_eq!(t.hash(), h("aa4b35071043587992ac8b9dd1b2cf1d8311130e6458cf0b2342484e21af5f5b"));
    let mut t = zero_ticket();
    t.recipient = "0x73AEd7b5dEb30222fa896f399d46cC99c7BEe57F".parse().unwrap();
    assert_eq!(t.hash(), h("81e353ae39046e2b77b9f996abbaeed527fda559b61ef90f299c4499dd508ccc"));
    let rrh = h("41b1a0649752af1b28b3dc29a1556eee781e4a4c3a1f7f53f90fa834de098c4d");
    let mut t = zero_ticket();
    t.recipient_rand_hash = rrh;
    assert_eq!(t.hash(), h("be5eaf9a49a39540b9bb02f1a21904f61324a29819e2c032824bfaa10c100b17"));
    let mut t = zero_ticket();
    t.expiration = ExpirationParams { creation_round: 10, creation_round_block_hash: rrh };
    assert_eq!(t.hash(), h("e502907c16036ab3d11b78c5a2e93c20f3d6415c67f91de4ed01348182b3b2e2"));
    assert_eq!(t.flatten().len(), 20 + 20 + 32 * 4 + 64);
    assert_eq!(zero_ticket().flatten().len(), 20 + 20 + 32 * 4);
}

#[test]
fn tickets_for_cost_table() {
    let r = |n: i128, d: u128| Balance::from_ratio(n, d).unwrap();
    // (name, cost, ev, expected): go-livepeer's TestTicketCountForCost cases, plus exact-arithmetic ones.
    let cases = [
        ("ev zero", r(100, 1), r(0, 1), 0),
        ("cost zero", r(0, 1), r(10, 1), 0),
        ("exact division", r(100, 1), r(25, 1), 4),
        ("ceiling", r(101, 1), r(25, 1), 5),
        ("ev greater than cost", r(50, 1), r(100, 1), 1),
        ("ev much greater than cost", r(10, 1), r(1000, 1), 1),
        ("ev slightly greater than cost", r(99, 1), r(100, 1), 1),
        ("large exact division", r(1_000_000, 1), r(10_000, 1), 100),
        ("tiny ev", r(100, 1), r(1, 100), 600),
        ("capped at 600", r(1_000_000, 1), r(1, 1), 600),
        ("exactly 600", r(12_000, 1), r(20, 1), 600),
        ("601 capped", r(601, 1), r(1, 1), 600),
        ("fractional ceiling", r(125, 1), r(20, 1), 7),
        ("negative cost", r(-100, 1), r(10, 1), 0),
        ("negative ev", r(100, 1), r(-10, 1), 0),
        ("cost equal to ev", r(7, 3), r(7, 3), 1),
        ("7/3 rounds up", r(7, 1), r(3, 1), 3),
        ("fractional both", r(1, 3), r(1, 7), 3),
        ("cost beyond i64", Balance::from_i128(i128::MAX), r(1, 1), 600),
        ("one wei over a multiple", r(100_000_000_000_001, 1), r(1_000_000_000_000, 1), 101),
    ];
    for (name, cost, ev, want) in cases {
        assert_eq!(tickets_for_cost(&cost, &ev), want, "{name}");
    }
    // A real ticket: face value 1e15 wei at win probability 1/1000 of max is worth 1e12 wei.
    let fv = Wei::from_u128(1_000_000_000_000_000);
    let wp = WinProb::for_ev(&Wei::from_u128(1_000_000_000_000), &fv);
    let ev = ticket_ev(&fv, &wp);
    assert_eq!(ev.to_string(), "1000000000000");
    assert_eq!(tickets_for_cost(&Price::wei_per_second(1_000_000_000).unwrap().cost(70_000).unwrap(), &ev), 70);
}

#[test]
fn ev_and_win_probability_follow_go_livepeer() {
    assert_eq!(ticket_ev(&Wei::from_u128(1000), &WinProb::max()), Balance::from_i128(1000));
    assert_eq!(ticket_ev(&Wei::from_u128(1000), &WinProb::zero()), Balance::zero());
    assert_eq!(WinProb::for_ev(&Wei::from_u128(5), &Wei::zero()), WinProb::zero());
    assert_eq!(WinProb::for_ev(&Wei::from_u128(5), &Wei::from_u128(5)), WinProb::max());
    // EV of the advertised probability is at least the asked EV and less than one wei more.
    let fv = Wei::from_u128(3_000_000_007);
    let wp = WinProb::for_ev(&Wei::from_u128(1_000_003), &fv);
    let ev = ticket_ev(&fv, &wp);
    assert!(ev >= Balance::from_i128(1_000_003) && ev < Balance::from_i128(1_000_004), "{ev:?}");
    assert_eq!(WinProb::from_be_bytes(&[0xff; 32]).unwrap(), WinProb::max());
    assert!(matches!(WinProb::from_be_bytes(&[1; 33]), Err(PaymentError::BadField { field: "win_prob", .. })));
}

fn params() -> TicketParams {
    TicketParams {
        recipient: SecretKey::generate().address(),
        face_value: Wei::from_u128(1_000_000),
        win_prob: WinProb::max(),
        recipient_rand_hash: [9; 32],
        seed: [0; 32],
        expiration_block: 1234,
        expiration_params: ExpirationParams { creation_round: 3, creation_round_block_hash: [8; 32] },
    }
}

#[test]
fn signed_tickets_verify_and_win_as_their_probability_says() {
    let key = SecretKey::generate();
    let p = params();
    let t = Ticket::new(&p, p.expiration_params, key.address(), 1);
    let sig = t.sign(&key).unwrap();
    t.verify(&sig).unwrap();
    assert_eq!(sig.recover(&t.flatten()).unwrap(), key.address());
    let mut other = t.clone();
    other.sender_nonce = 2;
    assert!(matches!(other.verify(&sig), Err(PaymentError::BadSignature { nonce: 2, .. })));
    assert!(t.is_winning(&sig, &[1; 32]));
    let mut never = t.clone();
    never.win_prob = WinProb::zero();
    assert!(!never.is_winning(&sig, &[1; 32]));
}

#[test]
fn payments_carry_the_params_and_sequential_nonces() {
    let key = SecretKey::generate();
    let p = params();
    let price = Price::new(7, 2).unwrap();
    let pay = create_payment(&key, &p, &price, 3).unwrap();
    let decoded = proto::Payment::from_header(&pay.to_header()).unwrap();
    assert_eq!(decoded, pay);
    assert_eq!(decoded.sender, key.address().0.to_vec());
    assert_eq!(TicketParams::from_proto(decoded.ticket_params.as_ref().unwrap()).unwrap(), p);
    let nonces: Vec<u32> = decoded.ticket_sender_params.iter().map(|t| t.sender_nonce).collect();
    assert_eq!(nonces, [1, 2, 3]);
    let price_info = decoded.expected_price.unwrap();
    assert_eq!((price_info.price_per_unit, price_info.pixels_per_unit), (7, 2));
    assert_eq!(create_payment(&key, &p, &price, 0), Err(PaymentError::NoTickets));
    assert_eq!(create_payment(&key, &p, &price, 601), Err(PaymentError::TooManyTickets { count: 601, max: 600 }));
    let bad = Price { price_per_unit: 1, pixels_per_unit: 0 };
    assert!(matches!(create_payment(&key, &p, &bad, 1), Err(PaymentError::BadPrice(_))));
}

#[test]
fn ticket_params_json_round_trips_in_go_livepeers_form() {
    let mut p = params();
    p.seed[31] = 5;
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["seed"], "BQ==", "seed is minimal big-endian bytes, like big.Int.Bytes()");
    assert_eq!(v["expiration_block"], "BNI=");
    assert_eq!(v["win_prob"].as_str().unwrap().len(), 44);
    assert_eq!(v["expiration_params"]["creation_round"], 3);
    assert_eq!(serde_json::from_value::<TicketParams>(v).unwrap(), p);
}

#[test]
fn malformed_ticket_params_are_refused() {
    let good = params().to_proto();
    let mut bad = good.clone();
    bad.recipient = vec![1; 19];
    assert!(matches!(
        TicketParams::from_proto(&bad),
        Err(PaymentError::BadField { field: "ticket_params.recipient", .. })
    ));
    let mut bad = good.clone();
    bad.face_value = vec![1; 33];
    assert!(matches!(TicketParams::from_proto(&bad), Err(PaymentError::BadField { field: "face_value", .. })));
    let mut bad = good.clone();
    bad.recipient_rand_hash = vec![1; 31];
    assert!(matches!(TicketParams::from_proto(&bad), Err(PaymentError::BadField { field: "recipient_rand_hash", .. })));
    let mut bad = good.clone();
    bad.expiration_block = vec![1; 9];
    assert!(matches!(TicketParams::from_proto(&bad), Err(PaymentError::BadField { field: "expiration_block", .. })));
    let mut bad = good.clone();
    bad.seed = vec![1; 33];
    assert!(matches!(TicketParams::from_proto(&bad), Err(PaymentError::BadField { field: "seed", .. })));
    let mut bad = good;
    bad.expiration_params =
        Some(proto::TicketExpirationParams { creation_round: 1, creation_round_block_hash: vec![1; 3] });
    assert!(matches!(
        TicketParams::from_proto(&bad),
        Err(PaymentError::BadField { field: "creation_round_block_hash", .. })
    ));
}
