//! The local test chain's contracts accept what byoc-payment makes, byte for byte, and behave as
//! byoc's on-chain mode expects: redemption (and every refusal), reserve claims capped at the
//! recipient's share, unlock and withdrawal, rounds, the pool and service URIs, and the gas price.
//! Each test starts its own anvil (`byoc_e2e::chain`); without anvil and solc-js they are skipped
//! (or fail under `BYOC_REQUIRE_PEERS=1`).

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, TransactionReceipt};
use alloy::sol_types::SolEvent;
use anyhow::{Context, Result, ensure};
use byoc_chain::contracts as lp;
use byoc_e2e::chain::{
    ChainOptions, Issued, TestChain, address_of, compiled, dev_key, payment_tickets, random32, sol_ticket,
    tools_available,
};
use byoc_payment::{ExpirationParams, Price, SecretKey, Signature, Ticket, Wei, WinProb, create_payment, keccak256};

const ETH: u128 = 1_000_000_000_000_000_000;

async fn issue(chain: &TestChain, recipient: &SecretKey, face_value: u128, win_prob: WinProb) -> Result<Issued> {
    chain.issue(recipient.address(), Wei::from_u128(face_value), win_prob).await
}

async fn issue_with(
    chain: &TestChain,
    recipient: &SecretKey,
    face_value: u128,
    win_prob: WinProb,
    expiration: ExpirationParams,
) -> Result<Issued> {
    chain.issue_with(recipient.address(), Wei::from_u128(face_value), win_prob, expiration).await
}

/// `n` tickets of a `create_payment` payment, rebuilt from its wire form as a recipient does.
fn pay(sender: &SecretKey, issued: &Issued, n: u32) -> Result<Vec<(Ticket, Signature)>> {
    let price = Price::wei_per_second(1_000_000).context("price")?;
    payment_tickets(&create_payment(sender, &issued.params, &price, n).context("create_payment")?)
}

/// One ticket of a fresh payment.
fn one(sender: &SecretKey, issued: &Issued) -> Result<(Ticket, Signature)> {
    pay(sender, issued, 1)?.pop().context("a payment without tickets")
}

/// A single ticket from `sender` on freshly issued params (a new recipient random number).
async fn fresh(
    chain: &TestChain,
    sender: &SecretKey,
    recipient: &SecretKey,
    face_value: u128,
) -> Result<(Ticket, Signature, [u8; 32])> {
    let issued = issue(chain, recipient, face_value, WinProb::max()).await?;
    let (t, sig) = one(sender, &issued)?;
    Ok((t, sig, issued.rand))
}

fn gas_cost(r: &TransactionReceipt) -> U256 {
    U256::from(r.gas_used) * U256::from(r.effective_gas_price)
}

fn transfers(r: &TransactionReceipt) -> Vec<lp::ITicketBroker::WinningTicketTransfer> {
    r.logs()
        .iter()
        .filter_map(|l| lp::ITicketBroker::WinningTicketTransfer::decode_log(&l.inner).ok())
        .map(|l| l.data)
        .collect()
}

/// Asserts that `result` failed and its error carries `reason` (a revert reason string).
fn assert_reverts<T: std::fmt::Debug>(result: Result<T>, reason: &str) -> Result<()> {
    match result {
        Ok(v) => anyhow::bail!("expected a revert with {reason:?}, got {v:?}"),
        Err(e) => {
            let msg = format!("{e:#}");
            ensure!(msg.contains(reason), "expected a revert with {reason:?}, got: {msg}");
            Ok(())
        }
    }
}

#[tokio::test]
async fn redeems_a_winning_ticket_byoc_payment_made() -> Result<()> {
    if !tools_available("redeems_a_winning_ticket_byoc_payment_made")? {
        return Ok(());
    }
    let chain = TestChain::start().await?;
    let (gateway, orch) = (dev_key(1)?, dev_key(2)?);
    let (sender, recipient) = (address_of(&gateway), address_of(&orch));
    chain.fund_sender(&gateway, U256::from(ETH), U256::from(ETH / 2)).await?;

    let face = ETH / 1000;
    let issued = issue(&chain, &orch, face, WinProb::max()).await?;
    let tickets = pay(&gateway, &issued, 3)?;
    for (t, sig) in &tickets {
        assert!(t.is_winning(sig, &issued.rand), "win probability max always wins");
    }
    let (ticket, sig) = &tickets[1];

    // Redeemed through byoc's own ABI (host/chain's contracts), sent and paid for by the recipient.
    let p = chain.provider_for(&orch)?;
    let broker = lp::ITicketBroker::new(chain.ticket_broker, &p);
    let t = sol_ticket(ticket)?;
    let lp_ticket = lp::Ticket {
        recipient: t.recipient,
        sender: t.sender,
        faceValue: t.faceValue,
        winProb: t.winProb,
        senderNonce: t.senderNonce,
        recipientRandHash: t.recipientRandHash,
        auxData: t.auxData.clone(),
    };
    assert_eq!(lp_ticket.auxData.len(), 64, "aux data is the creation round and its block hash");
    assert!(!chain.used_ticket(ticket.hash()).await?);
    let before = chain.balance(recipient).await?;
    let rand = U256::from_be_bytes(issued.rand);
    let tx = broker.redeemWinningTicket(lp_ticket.clone(), Bytes::copy_from_slice(&sig.0), rand);
    let receipt = chain.transact(&p, tx.into_transaction_request(), "redeemWinningTicket").await?;
    // go-livepeer budgets 350,000 gas for a redemption on L1 (and measured ~221,000 with
    // Livepeer's contracts); ours stays below that budget.
    assert!(receipt.gas_used < 350_000, "a redemption used {} gas", receipt.gas_used);
    eprintln!("redeemWinningTicket used {} gas", receipt.gas_used);
    let after = chain.balance(recipient).await?;
    assert_eq!(after + gas_cost(&receipt), before + U256::from(face), "the recipient got the face value in ETH");
    let events = transfers(&receipt);
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].sender, events[0].recipient, events[0].amount), (sender, recipient, U256::from(face)));
    let info = chain.sender_info(sender).await?;
    assert_eq!(info.deposit, U256::from(ETH - face));
    assert_eq!(info.funds_remaining, U256::from(ETH / 2), "the deposit covered it: the reserve is untouched");
    assert!(chain.used_ticket(ticket.hash()).await?, "the contract's ticket hash is byoc's");
    // byoc's view of getSenderInfo decodes the same.
    let lp_info = lp::ITicketBroker::new(chain.ticket_broker, chain.provider()).getSenderInfo(sender).call().await?;
    assert_eq!(lp_info.sender.deposit, info.deposit);
    assert_eq!(lp_info.reserve.fundsRemaining, info.funds_remaining);

    // The same ticket again: used.
    let again = broker.redeemWinningTicket(lp_ticket, Bytes::copy_from_slice(&sig.0), rand).send().await;
    assert_reverts(again.map(|_| ()).map_err(anyhow::Error::from), "TicketBroker: ticket is used")?;

    // The other nonces are tickets of their own; anyone may send the redemption (the gateway here),
    // the recipient is paid all the same.
    let before = chain.balance(recipient).await?;
    for (t, sig) in [&tickets[0], &tickets[2]] {
        chain.redeem(&gateway, t, sig, &issued.rand).await?;
    }
    assert_eq!(chain.balance(recipient).await?, before + U256::from(2 * face));
    assert_eq!(chain.sender_info(sender).await?.deposit, U256::from(ETH - 3 * face));
    Ok(())
}

#[tokio::test]
async fn refuses_bad_tickets_with_reasons() -> Result<()> {
    if !tools_available("refuses_bad_tickets_with_reasons")? {
        return Ok(());
    }
    let chain = TestChain::start().await?;
    let (gateway, orch, stranger) = (dev_key(1)?, dev_key(2)?, dev_key(3)?);
    chain.fund_sender(&gateway, U256::from(ETH), U256::ZERO).await?;
    let face = ETH / 1000;
    let issued = issue(&chain, &orch, face, WinProb::max()).await?;

    // A bad signature: one bit of r flipped (recovers to someone else, or to nobody).
    let (t, good) = one(&gateway, &issued)?;
    let mut bad = good;
    bad.0[5] ^= 1;
    assert_reverts(chain.redeem(&orch, &t, &bad, &issued.rand).await, "TicketBroker: invalid signature")?;
    // Signed by another key than the ticket's sender.
    let forged = t.sign(&stranger)?;
    assert_reverts(chain.redeem(&orch, &t, &forged, &issued.rand).await, "TicketBroker: invalid signature")?;
    // v outside 27/28.
    let mut bad_v = good;
    bad_v.0[64] = 1;
    assert_reverts(chain.redeem(&orch, &t, &bad_v, &issued.rand).await, "signature v must be 27 or 28")?;
    // The high-s twin of the good signature (s' = n - s, v flipped) recovers the same key in plain
    // ECDSA; the broker refuses it, as byoc does.
    let n = U256::from_str_radix("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16)?;
    let s_low = U256::from_be_slice(&good.0[32..64]);
    let mut twin = good;
    twin.0[32..64].copy_from_slice(&(n - s_low).to_be_bytes::<32>());
    twin.0[64] = if good.0[64] == 27 { 28 } else { 27 };
    assert_reverts(chain.redeem(&orch, &t, &twin, &issued.rand).await, "signature s is not low")?;

    // A wrong recipientRand.
    let wrong = random32()?;
    assert_reverts(chain.redeem(&orch, &t, &good, &wrong).await, "recipientRand does not hash")?;

    // A losing ticket (win probability 1 in 2^256 - 1).
    let losing = issue(&chain, &orch, face, WinProb::from_be_bytes(&[1])?).await?;
    let (lt, lsig) = one(&gateway, &losing)?;
    assert!(!lt.is_winning(&lsig, &losing.rand));
    assert_reverts(chain.redeem(&orch, &lt, &lsig, &losing.rand).await, "TicketBroker: ticket did not win")?;

    // A block hash that is not the creation round's.
    let mut exp = chain.expiration_params().await?;
    exp.creation_round_block_hash = random32()?;
    let forged_round = issue_with(&chain, &orch, face, WinProb::max(), exp).await?;
    let (ft, fsig) = one(&gateway, &forged_round)?;
    assert_reverts(chain.redeem(&orch, &ft, &fsig, &forged_round.rand).await, "block hash does not match")?;
    // A round never initialized has no block hash on chain.
    let mut exp = chain.expiration_params().await?;
    exp.creation_round += 5;
    let future = issue_with(&chain, &orch, face, WinProb::max(), exp).await?;
    let (ft, fsig) = one(&gateway, &future)?;
    assert_reverts(chain.redeem(&orch, &ft, &fsig, &future.rand).await, "block hash does not match")?;
    // No aux data at all (round 0 and a zero hash hash to nothing in byoc).
    let none = issue_with(&chain, &orch, face, WinProb::max(), ExpirationParams::default()).await?;
    let (nt, nsig) = one(&gateway, &none)?;
    assert_reverts(chain.redeem(&orch, &nt, &nsig, &none.rand).await, "auxData must be 64 bytes")?;

    // A sender with no funds.
    let (pt, psig) = one(&stranger, &issued)?;
    assert_reverts(chain.redeem(&orch, &pt, &psig, &issued.rand).await, "sender has no deposit or reserve")?;

    // Expiry: a ticket of round r is good while currentRound < r + ticketValidityPeriod (2).
    let r = chain.last_initialized_round().await?;
    let expiring = issue(&chain, &orch, face, WinProb::max()).await?;
    let mut two = pay(&gateway, &expiring, 2)?;
    let (et2, esig2) = two.pop().context("two tickets")?;
    let (et, esig) = two.pop().context("two tickets")?;
    chain.initialize_round().await?;
    assert_eq!(chain.current_round().await?, r + 1);
    chain.redeem(&orch, &et, &esig, &expiring.rand).await.context("a ticket one round old is still good")?;
    chain.initialize_round().await?;
    assert_eq!(chain.current_round().await?, r + 2);
    assert_reverts(chain.redeem(&orch, &et2, &esig2, &expiring.rand).await, "TicketBroker: ticket is expired")?;

    // Nothing refused was marked used; a good ticket of the current round redeems.
    assert!(!chain.used_ticket(t.hash()).await?);
    assert!(!chain.used_ticket(et2.hash()).await?);
    let (gt, gsig, rand) = fresh(&chain, &gateway, &orch, face).await?;
    chain.redeem(&orch, &gt, &gsig, &rand).await?;
    Ok(())
}

#[tokio::test]
async fn the_reserve_pays_active_transcoders_up_to_their_share() -> Result<()> {
    if !tools_available("the_reserve_pays_active_transcoders_up_to_their_share")? {
        return Ok(());
    }
    let chain = TestChain::start().await?;
    let gateway = dev_key(1)?;
    let (a, b, outsider) = (dev_key(2)?, dev_key(3)?, dev_key(4)?);
    chain.add_orchestrator(&a, U256::from(100), "https://127.0.0.1:8935").await?;
    chain.add_orchestrator(&b, U256::from(50), "https://127.0.0.1:8936").await?;
    let sender = address_of(&gateway);
    let deposit = ETH / 1000;
    let reserve = ETH;
    chain.fund_sender(&gateway, U256::from(deposit), U256::from(reserve)).await?;

    // Not in the pool: the deposit pays what it can, the reserve nothing.
    let (t, sig, rand) = fresh(&chain, &gateway, &outsider, ETH / 10).await?;
    let r = chain.redeem(&gateway, &t, &sig, &rand).await?;
    assert_eq!(transfers(&r)[0].amount, U256::from(deposit));
    let info = chain.sender_info(sender).await?;
    assert_eq!((info.deposit, info.funds_remaining), (U256::ZERO, U256::from(reserve)));

    // A (active) asks for more than its share: it gets half the reserve (pool of two).
    let share = reserve / 2;
    let (t, sig, rand) = fresh(&chain, &gateway, &a, ETH * 7 / 10).await?;
    let before = chain.balance(address_of(&a)).await?;
    let r = chain.redeem(&gateway, &t, &sig, &rand).await?;
    assert_eq!(transfers(&r)[0].amount, U256::from(share));
    assert_eq!(chain.balance(address_of(&a)).await?, before + U256::from(share));
    assert_eq!(chain.claimed_reserve(sender, address_of(&a)).await?, U256::from(share));
    let info = chain.sender_info(sender).await?;
    assert_eq!((info.funds_remaining, info.claimed_in_round), (U256::from(reserve - share), U256::from(share)));

    // A again, same round: its share is used up.
    let (t, sig, rand) = fresh(&chain, &gateway, &a, ETH / 10).await?;
    let r = chain.redeem(&gateway, &t, &sig, &rand).await?;
    assert!(transfers(&r).is_empty(), "nothing paid, no transfer event");
    assert!(chain.used_ticket(t.hash()).await?, "the ticket is used even so");

    // B claims less than its share, then the rest of it.
    let (t, sig, rand) = fresh(&chain, &gateway, &b, ETH / 10).await?;
    assert_eq!(transfers(&chain.redeem(&gateway, &t, &sig, &rand).await?)[0].amount, U256::from(ETH / 10));
    let (t, sig, rand) = fresh(&chain, &gateway, &b, ETH).await?;
    assert_eq!(transfers(&chain.redeem(&gateway, &t, &sig, &rand).await?)[0].amount, U256::from(share - ETH / 10));
    let info = chain.sender_info(sender).await?;
    assert_eq!((info.funds_remaining, info.claimed_in_round), (U256::ZERO, U256::from(reserve)));

    // Everything is spent: the next ticket finds no funds.
    let (t, sig, rand) = fresh(&chain, &gateway, &a, ETH / 10).await?;
    assert_reverts(chain.redeem(&gateway, &t, &sig, &rand).await, "sender has no deposit or reserve")?;

    // A new round starts with nothing claimed: with a fresh reserve, A's share is whole again.
    chain.fund_sender(&gateway, U256::ZERO, U256::from(reserve)).await?;
    chain.initialize_round().await?;
    assert_eq!(chain.claimed_reserve(sender, address_of(&a)).await?, U256::ZERO);
    assert_eq!(chain.sender_info(sender).await?.claimed_in_round, U256::ZERO);
    let (t, sig, rand) = fresh(&chain, &gateway, &a, ETH).await?;
    assert_eq!(transfers(&chain.redeem(&gateway, &t, &sig, &rand).await?)[0].amount, U256::from(reserve / 2));
    Ok(())
}

#[tokio::test]
async fn unlock_then_withdraw_after_the_unlock_period() -> Result<()> {
    if !tools_available("unlock_then_withdraw_after_the_unlock_period")? {
        return Ok(());
    }
    let chain = TestChain::start().await?;
    let gateway = dev_key(1)?;
    let sender = address_of(&gateway);
    assert_reverts(chain.unlock(&gateway).await, "sender has no deposit or reserve")?;
    let r = chain.fund_sender(&gateway, U256::from(ETH), U256::from(ETH / 4)).await?;
    let deposit = r.decoded_log::<lp::ITicketBroker::DepositFunded>().context("no DepositFunded event")?;
    assert_eq!((deposit.sender, deposit.amount), (sender, U256::from(ETH)));
    let reserve = r.decoded_log::<lp::ITicketBroker::ReserveFunded>().context("no ReserveFunded event")?;
    assert_eq!((reserve.reserveHolder, reserve.amount), (sender, U256::from(ETH / 4)));
    assert_reverts(chain.withdraw(&gateway).await, "no unlock in progress")?;
    assert_reverts(chain.cancel_unlock(&gateway).await, "no unlock in progress")?;

    let round = chain.current_round().await?;
    let r = chain.unlock(&gateway).await?;
    let unlock = r
        .logs()
        .iter()
        .find_map(|l| lp::ITicketBroker::Unlock::decode_log(&l.inner).ok())
        .context("no Unlock event")?;
    assert_eq!((unlock.sender, unlock.startRound, unlock.endRound), (sender, U256::from(round), U256::from(round + 2)));
    let info = chain.sender_info(sender).await?;
    assert_eq!(info.withdraw_round, U256::from(round + 2), "withdrawRound = currentRound + unlockPeriod");
    assert_reverts(chain.unlock(&gateway).await, "unlock already in progress")?;
    assert_reverts(chain.withdraw(&gateway).await, "unlock period has not ended")?;
    let r = chain.cancel_unlock(&gateway).await?;
    ensure!(r.decoded_log::<lp::ITicketBroker::UnlockCancelled>().is_some(), "no UnlockCancelled event");
    assert_eq!(chain.sender_info(sender).await?.withdraw_round, U256::ZERO);

    chain.unlock(&gateway).await?;
    let withdraw_round = round + 2;
    chain.initialize_round().await?;
    assert_reverts(chain.withdraw(&gateway).await, "unlock period has not ended")?;
    assert_eq!(chain.initialize_round().await?, withdraw_round);
    let before = chain.balance(sender).await?;
    let r = chain.withdraw(&gateway).await?;
    assert_eq!(chain.balance(sender).await? + gas_cost(&r), before + U256::from(ETH + ETH / 4));
    let info = chain.sender_info(sender).await?;
    assert_eq!((info.deposit, info.funds_remaining, info.withdraw_round), (U256::ZERO, U256::ZERO, U256::ZERO));
    let withdrawal = r
        .logs()
        .iter()
        .find_map(|l| lp::ITicketBroker::Withdrawal::decode_log(&l.inner).ok())
        .context("no Withdrawal event")?;
    assert_eq!((withdrawal.deposit, withdrawal.reserve), (U256::from(ETH), U256::from(ETH / 4)));
    Ok(())
}

#[tokio::test]
async fn rounds_pin_the_previous_blocks_hash() -> Result<()> {
    if !tools_available("rounds_pin_the_previous_blocks_hash")? {
        return Ok(());
    }
    let opts = ChainOptions { round_length: 7, ..ChainOptions::default() };
    let chain = TestChain::start_with(opts).await?;
    let rounds = lp::IRoundsManager::new(chain.rounds_manager, chain.provider());
    assert_eq!(rounds.roundLength().call().await?, U256::from(7));
    assert_eq!(chain.last_initialized_round().await?, 1, "round 1 is initialized at start");
    let r = chain.initialize_round().await?;
    assert_eq!(r, 2);
    let block = chain.block_number().await?;
    assert_eq!(block, 14, "initialized in the round's first block");
    assert_eq!(rounds.currentRoundStartBlock().call().await?, U256::from(14));
    let prev = chain.provider().get_block_by_number((block - 1).into()).await?.context("block 13")?;
    assert_eq!(B256::from(chain.block_hash_for_round(2).await?), prev.header.hash);
    assert_eq!(chain.expiration_params().await?.creation_round, 2);
    // Twice in one round is refused; rounds are never initialized ahead.
    let p = chain.provider_for(&dev_key(5)?)?;
    let rm = byoc_e2e::chain::RoundsManager::new(chain.rounds_manager, &p);
    let again = chain.transact(&p, rm.initializeRound().into_transaction_request(), "initializeRound").await;
    assert_reverts(again, "current round is already initialized")?;
    assert_eq!(chain.block_hash_for_round(3).await?, [0; 32]);
    // Anyone may initialize; a skipped round keeps a zero hash.
    chain.mine(14).await?;
    assert_eq!(chain.current_round().await?, 4);
    chain.transact(&p, rm.initializeRound().into_transaction_request(), "initializeRound").await?;
    assert_eq!(chain.last_initialized_round().await?, 4);
    assert_eq!(chain.block_hash_for_round(3).await?, [0; 32]);
    Ok(())
}

#[tokio::test]
async fn pool_and_service_uris() -> Result<()> {
    if !tools_available("pool_and_service_uris")? {
        return Ok(());
    }
    let chain = TestChain::start().await?;
    let (a, b, c) = (dev_key(2)?, dev_key(3)?, dev_key(4)?);
    assert!(chain.pool().await?.is_empty());
    chain.add_orchestrator(&a, U256::from(10), "https://a.test:8935").await?;
    chain.add_orchestrator(&b, U256::from(30), "https://b.test:8935").await?;
    chain.add_orchestrator(&c, U256::from(20), "https://c.test:8935").await?;
    let (a, b, c) = (address_of(&a), address_of(&b), address_of(&c));
    assert_eq!(chain.pool().await?, vec![b, c, a], "highest stake first");
    let bm = lp::IBondingManager::new(chain.bonding_manager, chain.provider());
    assert_eq!(bm.getTranscoderPoolSize().call().await?, U256::from(3));
    assert_eq!(bm.transcoderTotalStake(c).call().await?, U256::from(20));
    assert!(bm.isActiveTranscoder(a).call().await?);
    let sr = lp::IServiceRegistry::new(chain.service_registry, chain.provider());
    assert_eq!(sr.getServiceURI(b).call().await?, "https://b.test:8935");
    assert_eq!(chain.service_uri(Address::repeat_byte(7)).await?, "");

    chain.remove_orchestrator(c).await?;
    assert_eq!(chain.pool().await?, vec![b, a]);
    // What discovery refreshes on: the pool's and the registry's events, as byoc decodes them.
    let logs = chain.provider().get_logs(&Filter::new().from_block(0)).await?;
    let activated: Vec<Address> = logs
        .iter()
        .filter_map(|l| lp::IBondingManager::TranscoderActivated::decode_log(&l.inner).ok())
        .map(|e| e.transcoder)
        .collect();
    assert_eq!(activated, vec![a, b, c]);
    let deactivated: Vec<Address> = logs
        .iter()
        .filter_map(|l| lp::IBondingManager::TranscoderDeactivated::decode_log(&l.inner).ok())
        .map(|e| e.transcoder)
        .collect();
    assert_eq!(deactivated, vec![c]);
    let uris: Vec<(Address, String)> = logs
        .iter()
        .filter_map(|l| lp::IServiceRegistry::ServiceURIUpdate::decode_log(&l.inner).ok())
        .map(|e| (e.addr, e.data.serviceURI))
        .collect();
    assert_eq!(uris[1], (b, "https://b.test:8935".to_string()));
    let rounds: Vec<U256> =
        logs.iter().filter_map(|l| lp::IRoundsManager::NewRound::decode_log(&l.inner).ok()).map(|e| e.round).collect();
    assert_eq!(rounds, vec![U256::from(1)], "round 1's initialization at start");
    assert!(!bm.isActiveTranscoder(c).call().await?);
    assert_eq!(bm.transcoderTotalStake(c).call().await?, U256::ZERO);
    chain.remove_orchestrator(b).await?;
    assert_eq!(chain.pool().await?, vec![a]);
    assert_reverts(chain.remove_orchestrator(b).await, "transcoder is not in the pool")?;

    // Only the owner manages the pool.
    let p = chain.provider_for(&dev_key(5)?)?;
    let own = byoc_e2e::chain::BondingManager::new(chain.bonding_manager, &p);
    let tx = own.addTranscoder(b, U256::from(1)).into_transaction_request();
    assert_reverts(chain.transact(&p, tx, "addTranscoder").await, "caller is not the owner")?;
    // Every contract is registered in the Controller under keccak256(name).
    let controller = lp::IController::new(chain.controller, chain.provider());
    for (name, addr) in [
        ("RoundsManager", chain.rounds_manager),
        ("TicketBroker", chain.ticket_broker),
        ("BondingManager", chain.bonding_manager),
        ("ServiceRegistry", chain.service_registry),
    ] {
        assert_eq!(controller.getContract(byoc_e2e::chain::contract_id(name)).call().await?, addr, "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn gas_price_is_what_eth_gas_price_says_and_transactions_pay() -> Result<()> {
    if !tools_available("gas_price_is_what_eth_gas_price_says_and_transactions_pay")? {
        return Ok(());
    }
    let chain = TestChain::start().await?;
    let gwei = 1_000_000_000u128;
    chain.set_gas_price(7 * gwei).await?;
    assert_eq!(chain.gas_price().await?, 7 * gwei);
    chain.mine(5).await?;
    assert_eq!(chain.gas_price().await?, 7 * gwei, "held across the harness's own blocks");
    let gateway = dev_key(1)?;
    let r = chain.fund_sender(&gateway, U256::from(ETH), U256::ZERO).await?;
    // The base fee plus the tip alloy offers (1 wei here: anvil suggests no minimum tip).
    assert!(r.effective_gas_price >= 7 * gwei && r.effective_gas_price < 7 * gwei + gwei, "{}", r.effective_gas_price);
    assert_eq!(chain.gas_price().await?, 7 * gwei);

    // A transaction offering less than the base fee is refused.
    let p = chain.provider_for(&gateway)?;
    let broker = lp::ITicketBroker::new(chain.ticket_broker, &p);
    let cheap =
        broker.fundDeposit().value(U256::from(1)).max_fee_per_gas(gwei).max_priority_fee_per_gas(0).send().await;
    ensure!(cheap.is_err(), "a transaction below the base fee was accepted");

    // Set and balance helpers.
    let who = Address::repeat_byte(0x42);
    chain.set_balance(who, U256::from(12345)).await?;
    assert_eq!(chain.balance(who).await?, U256::from(12345));
    Ok(())
}

/// Every function and event byoc calls or reads (host/chain's `sol!` interfaces) is in the
/// compiled contracts' ABI with the same selector.
#[tokio::test]
async fn compiled_abi_has_every_selector_byoc_uses() -> Result<()> {
    if !tools_available("compiled_abi_has_every_selector_byoc_uses")? {
        return Ok(());
    }
    let compiled = compiled().await?;
    let check = |name: &str, calls: &[[u8; 4]], events: &[[u8; 32]]| -> Result<()> {
        let abi = compiled.abi(name)?;
        let (fns, evs) = selectors(abi)?;
        for c in calls {
            ensure!(fns.contains(c), "{name} has no function with selector 0x{}", alloy::hex::encode(c));
        }
        for e in events {
            ensure!(evs.contains(e), "{name} has no event with topic 0x{}", alloy::hex::encode(e));
        }
        Ok(())
    };
    check("Controller", lp::IController::IControllerCalls::SELECTORS, &[])?;
    check(
        "RoundsManager",
        lp::IRoundsManager::IRoundsManagerCalls::SELECTORS,
        lp::IRoundsManager::IRoundsManagerEvents::SELECTORS,
    )?;
    check(
        "TicketBroker",
        lp::ITicketBroker::ITicketBrokerCalls::SELECTORS,
        lp::ITicketBroker::ITicketBrokerEvents::SELECTORS,
    )?;
    check(
        "BondingManager",
        lp::IBondingManager::IBondingManagerCalls::SELECTORS,
        lp::IBondingManager::IBondingManagerEvents::SELECTORS,
    )?;
    check(
        "ServiceRegistry",
        lp::IServiceRegistry::IServiceRegistryCalls::SELECTORS,
        lp::IServiceRegistry::IServiceRegistryEvents::SELECTORS,
    )?;
    // The one selector byoc's crate pins by value.
    let (fns, _) = selectors(compiled.abi("TicketBroker")?)?;
    assert!(fns.contains(&[0xec, 0x8b, 0x3c, 0xb6]), "redeemWinningTicket");
    Ok(())
}

/// Function selectors and event topics.
type Selectors = (Vec<[u8; 4]>, Vec<[u8; 32]>);

/// The function selectors and event topics of a solc ABI (JSON).
fn selectors(abi: &serde_json::Value) -> Result<Selectors> {
    let mut fns = Vec::new();
    let mut events = Vec::new();
    for item in abi.as_array().context("an ABI is a JSON array")? {
        let kind = item["type"].as_str().unwrap_or_default();
        if kind != "function" && kind != "event" {
            continue;
        }
        let name = item["name"].as_str().context("an ABI entry without a name")?;
        let inputs = item["inputs"].as_array().context("an ABI entry without inputs")?;
        let types: Result<Vec<String>> = inputs.iter().map(canonical_type).collect();
        let hash = keccak256(format!("{name}({})", types?.join(",")).as_bytes());
        if kind == "function" {
            fns.push([hash[0], hash[1], hash[2], hash[3]]);
        } else {
            events.push(hash);
        }
    }
    Ok((fns, events))
}

/// `uint256`, or a tuple's `(t1,t2,...)` with its array suffix.
fn canonical_type(param: &serde_json::Value) -> Result<String> {
    let ty = param["type"].as_str().context("an ABI parameter without a type")?;
    match ty.strip_prefix("tuple") {
        Some(suffix) => {
            let parts: Result<Vec<String>> = param["components"]
                .as_array()
                .context("a tuple without components")?
                .iter()
                .map(canonical_type)
                .collect();
            Ok(format!("({}){suffix}", parts?.join(",")))
        }
        None => Ok(ty.to_string()),
    }
}
