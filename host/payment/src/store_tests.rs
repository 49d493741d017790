use super::*;
use crate::key::SecretKey;
use crate::recipient::{BlockClock, Recipient, RecipientConfig};
use crate::ticket::create_payment;
use crate::wei::Price;

/// Winning tickets from a real recipient (win probability 1).
fn winners(n: u32) -> Vec<WinningTicket> {
    let r = Recipient::new(
        SecretKey::generate().address(),
        RecipientConfig { win_prob: WinProb::max(), ..RecipientConfig::default() },
        BlockClock::manual(10),
    );
    let gw = SecretKey::generate();
    let price = Price::wei_per_second(5).unwrap();
    let params = r.ticket_params(&gw.address(), &price).unwrap();
    let receipt = r.receive_payment(&create_payment(&gw, &params, &price, n).unwrap(), &gw.address()).unwrap();
    assert_eq!(receipt.winning.len(), n as usize);
    receipt.winning
}

#[test]
fn tickets_round_trip_and_survive_an_unclean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tickets.db");
    let store = TicketStore::open(&path).unwrap();
    let w = winners(3);
    assert_eq!(store.insert(&w).unwrap(), 3);
    assert_eq!(store.insert(&w[..1]).unwrap(), 0, "a ticket is stored once");
    // No clean close: a second connection (another process would do the same) sees the commit.
    std::mem::forget(store);
    let again = TicketStore::open(&path).unwrap();
    let listed = again.list().unwrap();
    assert_eq!(listed.iter().map(|t| t.winning.clone()).collect::<Vec<_>>(), w);
    assert!(listed.iter().all(|t| t.redeemed_tx.is_none() && t.received_at > 0));
    assert_eq!(again.get(listed[1].id).unwrap().unwrap(), listed[1]);
    assert_eq!(again.get(9999).unwrap(), None);
}

#[test]
fn the_store_is_the_redemption_queue() {
    let dir = tempfile::tempdir().unwrap();
    let store = TicketStore::open(&dir.path().join("t.db")).unwrap();
    let w = winners(4);
    store.insert(&w).unwrap();
    let ids: Vec<i64> = store.pending().unwrap().iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), 4);
    let sender = w[0].ticket.sender;
    let face = &w[0].ticket.face_value;
    assert_eq!(store.pending_face_value(&sender).unwrap(), face.times(4));

    store.mark_submitted(ids[0], "0xaa").unwrap();
    store.mark_redeemed(ids[0], "0xaa").unwrap();
    assert_eq!(store.record_failure(ids[1], "gas estimate reverted", 1_000).unwrap(), 1);
    assert_eq!(store.record_failure(ids[1], "again", 2_000).unwrap(), 2);
    store.mark_closed(ids[2], RedemptionState::Used, "already used on chain").unwrap();
    store.mark_submitted(ids[3], "0xbb").unwrap();

    let all = store.list().unwrap();
    assert_eq!(all[0].state, RedemptionState::Redeemed);
    assert_eq!(all[0].redeemed_tx.as_deref(), Some("0xaa"));
    assert_eq!(all[0].submitted_tx, None);
    assert_eq!((all[1].state, all[1].attempts, all[1].next_attempt_at), (RedemptionState::Pending, 2, 2_000));
    assert_eq!(all[1].last_error.as_deref(), Some("again"));
    assert_eq!(all[2].state, RedemptionState::Used);
    assert_eq!((all[3].state, all[3].submitted_tx.as_deref()), (RedemptionState::Submitted, Some("0xbb")));
    let open: Vec<i64> = store.pending().unwrap().iter().map(|t| t.id).collect();
    assert_eq!(open, vec![ids[1], ids[3]], "pending and submitted stay in the queue");
    assert_eq!(store.pending_face_value(&sender).unwrap(), face.times(2));
    assert!(store.mark_redeemed(42, "0x").is_err());
}

#[test]
fn a_store_from_before_redemption_states_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = Connection::open(&path).unwrap();
        let old = SCHEMA
            .lines()
            .filter(|l| !ADDED_COLUMNS.iter().any(|(name, _)| l.trim_start().starts_with(&format!("{name} "))))
            .collect::<Vec<_>>()
            .join("\n");
        conn.execute_batch(&old).unwrap();
    }
    let store = TicketStore::open(&path).unwrap();
    store.insert(&winners(2)).unwrap();
    drop(store);
    // What an older byoc wrote: a redemption with no state column.
    Connection::open(&path)
        .unwrap()
        .execute_batch("UPDATE winning_tickets SET redeemed_tx = '0x01' WHERE id = 1")
        .unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("ALTER TABLE winning_tickets DROP COLUMN state").unwrap();
    drop(conn);
    let store = TicketStore::open(&path).unwrap();
    let all = store.list().unwrap();
    assert_eq!(all[0].state, RedemptionState::Redeemed);
    assert_eq!(all[1].state, RedemptionState::Pending);
}

#[test]
fn export_is_one_json_object_per_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let store = TicketStore::open(&dir.path().join("t.db")).unwrap();
    let w = winners(2);
    store.insert(&w).unwrap();
    let text = store.export_json().unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    let t = &w[0].ticket;
    assert_eq!(lines[0]["sender"], t.sender.to_checksum());
    assert_eq!(lines[0]["face_value"], t.face_value.to_string());
    assert_eq!(lines[0]["sender_nonce"], 1);
    assert_eq!(lines[0]["ev"], t.face_value.to_string(), "certain win: EV is the face value");
    assert_eq!(lines[0]["sig"], w[0].sig.to_hex());
    assert_eq!(lines[0]["recipient_rand"], format!("0x{}", hex::encode(w[0].recipient_rand)));
    assert!(lines[0]["redeemed_tx"].is_null());
    assert_eq!(lines[0]["state"], "pending");
    assert_eq!(lines[0]["attempts"], 0);
}

#[test]
fn balances_persist_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = TicketStore::open(&path).unwrap();
    let a = BalanceKey::shared(Address([1; 20]), "echo");
    let s = BalanceKey::stream(Address([1; 20]), "echo", "stream-1");
    store.save_balance(&a, &Balance::from_ratio(10, 3).unwrap()).unwrap();
    store.save_balance(&s, &Balance::from_i128(-4)).unwrap();
    store.save_balance(&a, &Balance::from_ratio(11, 3).unwrap()).unwrap();
    drop(store);
    let store = TicketStore::open(&path).unwrap();
    let loaded = store.load_balances().unwrap();
    assert_eq!(loaded, vec![(a.clone(), Balance::from_ratio(11, 3).unwrap()), (s, Balance::from_i128(-4))]);
    store.save_balances(&[(a.clone(), Balance::from_i128(1))]).unwrap();
    assert_eq!(store.load_balances().unwrap(), vec![(a, Balance::from_i128(1))]);
}
