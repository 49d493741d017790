//! byoc-chain against a real EVM: anvil with the test chain's contracts (`byoc_e2e::chain`). The
//! watcher's readings, the sender checks and the redeemer's queue, with tickets byoc-payment makes.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::U256;
use byoc_chain::redeemer::{Pass, pass};
use byoc_chain::watcher::read_state;
use byoc_chain::{Chain, RedeemConfig, SenderRefusal, Senders};
use byoc_e2e::chain::{ChainOptions, TestChain, address_of, dev_key, tools_available};
use byoc_payment::{
    BlockClock, Price, RecipientConfig, RedemptionState, SecretKey, TicketStore, Wei, WinProb, create_payment,
};

const ETH: u128 = 1_000_000_000_000_000_000;
/// A face value that covers a redemption at anvil's gas prices (≈ 200,000 gas × ≤ 2 gwei).
const FACE: u128 = 1_000_000_000_000_000;

async fn chain(test: &str) -> Option<TestChain> {
    if !tools_available(test).unwrap() {
        return None;
    }
    // Long rounds: a ticket made now stays valid while the test mines past its params' expiry.
    Some(TestChain::start_with(ChainOptions { round_length: 200, ..ChainOptions::default() }).await.unwrap())
}

fn w(v: u128) -> U256 {
    U256::from(v)
}

fn quick() -> RedeemConfig {
    RedeemConfig {
        retry_after: Duration::ZERO,
        receipt_timeout: Duration::from_secs(20),
        every: Duration::from_millis(100),
        ..RedeemConfig::default()
    }
}

/// `n` winning tickets from `sender` to `recipient`, made on the chain's current round, stored.
async fn winners(c: &Chain, recipient: &SecretKey, sender: &SecretKey, n: u32, store: &TicketStore) {
    let state = read_state(c).await.unwrap();
    let config = RecipientConfig { face_value: Wei::from_u128(FACE), win_prob: WinProb::max(), ..Default::default() };
    let r = byoc_payment::Recipient::new(recipient.address(), config, BlockClock::chain(state.point));
    let price = Price::wei_per_second(1000).unwrap();
    let params = r.ticket_params(&sender.address(), &price).unwrap();
    let receipt = r.receive_payment(&create_payment(sender, &params, &price, n).unwrap(), &sender.address()).unwrap();
    assert_eq!(store.insert(&receipt.winning).unwrap(), n as usize);
}

async fn run_pass(c: &Chain, store: &Arc<TicketStore>, config: &RedeemConfig) -> Pass {
    let state = read_state(c).await.unwrap();
    pass(c, store, &state, config, &|_| {}).await.unwrap()
}

#[tokio::test]
async fn the_watcher_reads_rounds_and_the_controller_resolves_every_contract() {
    let Some(tc) = chain("the_watcher_reads_rounds_and_the_controller_resolves_every_contract").await else { return };
    let controller = byoc_payment::Address(tc.controller.into_array());
    let c = Chain::connect(&tc.url, controller, None).await.unwrap();
    assert_eq!(c.contracts().ticket_broker.0, tc.ticket_broker.into_array());
    let s = read_state(&c).await.unwrap();
    assert_eq!(s.point.round, 1);
    assert_eq!(s.point.round_block_hash, tc.block_hash_for_round(1).await.unwrap());
    assert_eq!(s.point.block, tc.block_number().await.unwrap());
    tc.initialize_round().await.unwrap();
    let s2 = read_state(&c).await.unwrap();
    assert_eq!((s2.point.round, s2.current_round), (2, 2));
    assert_ne!(s2.point.round_block_hash, s.point.round_block_hash);
    assert_eq!(c.ticket_validity_period().await.unwrap(), 2);

    // A Controller that is not one, and a URL that is not http, are clear errors.
    let nowhere = byoc_payment::Address([0x42; 20]);
    let e = Chain::connect(&tc.url, nowhere, None).await.unwrap_err();
    assert!(e.to_string().contains("no contract at --eth-controller"), "{e}");
    let e = Chain::connect("ws://127.0.0.1:1", controller, None).await.unwrap_err();
    assert!(e.to_string().contains("only http and https"), "{e}");
}

#[tokio::test]
async fn senders_are_refused_unfunded_or_unlocking_and_their_float_is_their_reserve_share() {
    let Some(tc) = chain("senders_are_refused_unfunded_or_unlocking_and_their_float_is_their_reserve_share").await
    else {
        return;
    };
    let (orch, other, gw) = (dev_key(1).unwrap(), dev_key(3).unwrap(), dev_key(2).unwrap());
    tc.add_orchestrator(&orch, w(100), "http://127.0.0.1:1").await.unwrap();
    tc.add_orchestrator(&other, w(50), "http://127.0.0.1:2").await.unwrap();
    let controller = byoc_payment::Address(tc.controller.into_array());
    let c = Arc::new(Chain::connect(&tc.url, controller, None).await.unwrap());
    let senders = Senders::new(c.clone(), orch.address(), Duration::ZERO);
    let state = read_state(&c).await.unwrap();
    let e = senders.max_float(gw.address(), &state, &Wei::zero()).await.unwrap_err();
    assert!(matches!(e, SenderRefusal::Unfunded { .. }), "{e}");

    tc.fund_sender(&gw, w(ETH), w(4 * FACE)).await.unwrap();
    // The reserve is split over the pool of two: 2 × FACE each.
    let float = senders.max_float(gw.address(), &state, &Wei::zero()).await.unwrap();
    assert_eq!(float, Wei::from_u128(2 * FACE));
    // Unredeemed tickets the deposit covers three times over do not count; more than that come off
    // the float, here all of it: refused, naming the reserve.
    let float = senders.max_float(gw.address(), &state, &Wei::from_u128(FACE)).await.unwrap();
    assert_eq!(float, Wei::from_u128(2 * FACE));
    let e = senders.max_float(gw.address(), &state, &Wei::from_u128(ETH / 2)).await.unwrap_err();
    assert!(matches!(e, SenderRefusal::NoFloat { .. }) && e.to_string().contains("add reserve"), "{e}");

    tc.unlock(&gw).await.unwrap();
    let e = senders.max_float(gw.address(), &state, &Wei::zero()).await.unwrap_err();
    assert!(matches!(e, SenderRefusal::Unlocking { .. }) && e.to_string().contains("unlocking"), "{e}");
}

#[tokio::test]
async fn winning_tickets_are_redeemed_once_after_their_params_expire() {
    let Some(tc) = chain("winning_tickets_are_redeemed_once_after_their_params_expire").await else { return };
    let (orch, gw) = (dev_key(1).unwrap(), dev_key(2).unwrap());
    tc.add_orchestrator(&orch, w(100), "http://127.0.0.1:1").await.unwrap();
    tc.fund_sender(&gw, w(ETH), w(ETH)).await.unwrap();
    let controller = byoc_payment::Address(tc.controller.into_array());
    let c = Chain::connect(&tc.url, controller, Some(&orch)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(TicketStore::open(&dir.path().join("t.db")).unwrap());
    winners(&c, &orch, &gw, 3, &store).await;
    let config = quick();

    // Not before the params expire (40 blocks): the recipient's random number stays secret.
    assert_eq!(run_pass(&c, &store, &config).await, Pass::default());
    assert_eq!(store.pending().unwrap().len(), 3);
    tc.mine(41).await.unwrap();

    // One of them redeemed by someone else first: closed as used, never sent.
    let all = store.list().unwrap();
    tc.redeem_winning(&orch, &all[0].winning).await.unwrap();
    let before = tc.balance(address_of(&orch)).await.unwrap();
    let deposit = tc.sender_info(address_of(&gw)).await.unwrap().deposit;
    let p = run_pass(&c, &store, &config).await;
    assert_eq!((p.redeemed, p.used, p.failed), (2, 1, 0), "{p:?}");
    let all = store.list().unwrap();
    assert_eq!(all[0].state, RedemptionState::Used);
    let mut gas_paid = U256::ZERO;
    for t in &all[1..] {
        assert_eq!(t.state, RedemptionState::Redeemed);
        assert!(tc.used_ticket(t.winning.ticket.hash()).await.unwrap());
        let hash: alloy::primitives::B256 = t.redeemed_tx.as_deref().unwrap().parse().unwrap();
        let receipt = alloy::providers::Provider::get_transaction_receipt(tc.provider(), hash).await.unwrap().unwrap();
        gas_paid += U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
    }
    // The orchestrator got both face values, less exactly the gas it paid; the deposit paid them.
    let after = tc.balance(address_of(&orch)).await.unwrap();
    assert_eq!(after + gas_paid, before + w(2 * FACE));
    assert_eq!(tc.sender_info(address_of(&gw)).await.unwrap().deposit, deposit - w(2 * FACE));
    // Nothing is left to do, and nothing is sent again.
    assert_eq!(run_pass(&c, &store, &config).await, Pass::default());
}

#[tokio::test]
async fn a_gas_price_over_the_limit_delays_redemption_and_a_refused_ticket_is_given_up() {
    let Some(tc) = chain("a_gas_price_over_the_limit_delays_redemption_and_a_refused_ticket_is_given_up").await else {
        return;
    };
    let (orch, gw) = (dev_key(1).unwrap(), dev_key(2).unwrap());
    tc.add_orchestrator(&orch, w(100), "http://127.0.0.1:1").await.unwrap();
    tc.fund_sender(&gw, w(ETH), w(ETH)).await.unwrap();
    let controller = byoc_payment::Address(tc.controller.into_array());
    let c = Chain::connect(&tc.url, controller, Some(&orch)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(TicketStore::open(&dir.path().join("t.db")).unwrap());
    winners(&c, &orch, &gw, 1, &store).await;
    tc.mine(41).await.unwrap();

    let config = RedeemConfig { max_gas_price: Some(3_000_000_000), max_attempts: 2, ..quick() };
    tc.set_gas_price(50_000_000_000).await.unwrap();
    let p = run_pass(&c, &store, &config).await;
    assert!(p.gas_too_high && p.redeemed == 0, "{p:?}");
    let t = &store.list().unwrap()[0];
    assert_eq!((t.state, t.attempts), (RedemptionState::Pending, 0), "waiting is not a failed attempt");
    assert!(t.last_error.as_deref().unwrap_or("").contains("gas price"), "{t:?}");
    tc.set_gas_price(1_000_000_000).await.unwrap();
    let p = run_pass(&c, &store, &config).await;
    assert_eq!(p.redeemed, 1, "{p:?}");

    // A ticket the broker refuses (its signature does not match): two failed attempts, then given up.
    winners(&c, &orch, &gw, 1, &store).await;
    let mut bad = store.pending().unwrap()[0].winning.clone();
    bad.ticket.sender_nonce = 99;
    store.insert(&[bad]).unwrap();
    let good_id = store.pending().unwrap()[0].id;
    tc.mine(41).await.unwrap();
    let p = run_pass(&c, &store, &config).await;
    assert_eq!((p.redeemed, p.retried), (1, 1), "{p:?}");
    let p = run_pass(&c, &store, &config).await;
    assert_eq!(p.failed, 1, "{p:?}");
    let given_up = store.list().unwrap().into_iter().find(|t| t.winning.ticket.sender_nonce == 99).unwrap();
    assert_eq!((given_up.state, given_up.attempts), (RedemptionState::Failed, 2));
    assert!(given_up.last_error.unwrap().contains("given up after 2 attempts"));
    assert_eq!(store.get(good_id).unwrap().unwrap().state, RedemptionState::Redeemed);
    assert_eq!(run_pass(&c, &store, &config).await, Pass::default(), "a given-up ticket is not tried again");
}
