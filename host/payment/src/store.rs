//! Durable storage: winning tickets (the redemption queue) and balances, in one SQLite file.
//!
//! The database runs with `journal_mode=WAL` and `synchronous=FULL`: every commit fsyncs the write-ahead
//! log before returning, so a ticket [`TicketStore::insert`] returned for survives a `kill -9` or a power
//! loss, and the orchestrator acknowledges a payment only after that. (WAL rather than DELETE so that
//! `byoc tickets list` can read while the orchestrator writes.)
//!
//! The store is also the redemption queue (on-chain mode redeems from it, `byoc-chain`): every ticket
//! has a [`RedemptionState`]. [`TicketStore::pending`] lists the tickets still to redeem (pending, or
//! submitted and not yet confirmed); a transaction's hash is recorded *before* its receipt is awaited
//! ([`TicketStore::mark_submitted`]), so a crash between the two never leads to a second redemption:
//! after a restart the ticket is found used on chain and its recorded transaction is kept.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use crate::address::Address;
use crate::key::Signature;
use crate::ledger::BalanceKey;
use crate::recipient::WinningTicket;
use crate::ticket::{ExpirationParams, Ticket, WinProb};
use crate::wei::{Balance, Wei};

/// Why the store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's #[error] message is its documentation")]
pub enum StoreError {
    #[error("ticket store database error: {0}")]
    Db(String),
    #[error("ticket store holds an unreadable row: {0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(e.to_string())
    }
}

/// A winning ticket as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTicket {
    /// The row id.
    pub id: i64,
    /// The ticket, its signature and the recipient's secret.
    pub winning: WinningTicket,
    /// Unix seconds.
    pub received_at: i64,
    /// The redemption transaction, once redeemed.
    pub redeemed_tx: Option<String>,
    /// Where the ticket is in the redemption queue.
    pub state: RedemptionState,
    /// A transaction sent for it whose receipt was not yet seen.
    pub submitted_tx: Option<String>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed, or why the ticket was given up.
    pub last_error: Option<String>,
    /// Unix seconds before which it is not tried again.
    pub next_attempt_at: i64,
}

/// A winning ticket's redemption state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RedemptionState {
    /// Waiting: its params have not expired yet, or an attempt failed and it will be tried again.
    Pending,
    /// A transaction was sent; its receipt is awaited.
    Submitted,
    /// Redeemed by our transaction (`redeemed_tx`).
    Redeemed,
    /// Found already used on chain before we redeemed it (not ours to redeem).
    Used,
    /// Given up: too many failed attempts, or it can no longer be redeemed (`last_error` says why).
    Failed,
}

impl RedemptionState {
    /// The lowercase name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RedemptionState::Pending => "pending",
            RedemptionState::Submitted => "submitted",
            RedemptionState::Redeemed => "redeemed",
            RedemptionState::Used => "used",
            RedemptionState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<RedemptionState> {
        [
            RedemptionState::Pending,
            RedemptionState::Submitted,
            RedemptionState::Redeemed,
            RedemptionState::Used,
            RedemptionState::Failed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Whether the queue still works on it.
    pub fn is_open(self) -> bool {
        matches!(self, RedemptionState::Pending | RedemptionState::Submitted)
    }
}

impl std::fmt::Display for RedemptionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StoredTicket {
    /// One JSON object, byte fields as `0x` hex and amounts as decimal strings.
    pub fn to_json(&self) -> serde_json::Value {
        let t = &self.winning.ticket;
        serde_json::json!({
            "id": self.id,
            "recipient": t.recipient.to_checksum(),
            "sender": t.sender.to_checksum(),
            "face_value": t.face_value.to_string(),
            "win_prob": format!("0x{}", hex::encode(t.win_prob.to_be_bytes())),
            "ev": t.ev().to_string(),
            "sender_nonce": t.sender_nonce,
            "recipient_rand_hash": format!("0x{}", hex::encode(t.recipient_rand_hash)),
            "creation_round": t.expiration.creation_round,
            "creation_round_block_hash": format!("0x{}", hex::encode(t.expiration.creation_round_block_hash)),
            "params_expiration_block": t.params_expiration_block,
            "sig": self.winning.sig.to_hex(),
            "recipient_rand": format!("0x{}", hex::encode(self.winning.recipient_rand)),
            "received_at": self.received_at,
            "redeemed_tx": self.redeemed_tx,
            "state": self.state.as_str(),
            "submitted_tx": self.submitted_tx,
            "attempts": self.attempts,
            "last_error": self.last_error,
        })
    }
}

/// The SQLite store.
pub struct TicketStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for TicketStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketStore")
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS winning_tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient TEXT NOT NULL,
    sender TEXT NOT NULL,
    face_value TEXT NOT NULL,
    win_prob TEXT NOT NULL,
    sender_nonce INTEGER NOT NULL,
    recipient_rand_hash TEXT NOT NULL,
    creation_round INTEGER NOT NULL,
    creation_round_block_hash TEXT NOT NULL,
    params_expiration_block TEXT NOT NULL,
    sig TEXT NOT NULL,
    recipient_rand TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    redeemed_tx TEXT,
    state TEXT NOT NULL DEFAULT 'pending',
    submitted_tx TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    UNIQUE (recipient_rand_hash, sender_nonce)
);
CREATE TABLE IF NOT EXISTS balances (
    party TEXT NOT NULL,
    capability TEXT NOT NULL,
    stream TEXT NOT NULL DEFAULT '',
    exact TEXT NOT NULL,
    PRIMARY KEY (party, capability, stream)
);
";

const COLUMNS: &str = "id, recipient, sender, face_value, win_prob, sender_nonce, recipient_rand_hash, creation_round, \
     creation_round_block_hash, params_expiration_block, sig, recipient_rand, received_at, redeemed_tx, state, \
     submitted_tx, attempts, last_error, next_attempt_at";

/// Columns added after the first release, with their definitions: an older store gains them on open.
const ADDED_COLUMNS: [(&str, &str); 5] = [
    ("state", "TEXT NOT NULL DEFAULT 'pending'"),
    ("submitted_tx", "TEXT"),
    ("attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("last_error", "TEXT"),
    ("next_attempt_at", "INTEGER NOT NULL DEFAULT 0"),
];

impl TicketStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<TicketStore, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Db(format!("journal_mode is {mode}, WAL is needed")));
        }
        conn.execute_batch("PRAGMA synchronous=FULL;")?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
        Ok(TicketStore { conn: Mutex::new(conn) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores winning tickets in one transaction, returning only after it is committed and synced.
    /// A ticket already stored (same recipient_rand_hash and nonce) is skipped; returns how many are new.
    pub fn insert(&self, tickets: &[WinningTicket]) -> Result<usize, StoreError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut added = 0;
        {
            let mut stmt = tx.prepare(
                "INSERT OR IGNORE INTO winning_tickets (recipient, sender, face_value, win_prob, sender_nonce, \
                 recipient_rand_hash, creation_round, creation_round_block_hash, params_expiration_block, sig, \
                 recipient_rand, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for w in tickets {
                let t = &w.ticket;
                added += stmt.execute(params![
                    t.recipient.to_checksum(),
                    t.sender.to_checksum(),
                    t.face_value.to_string(),
                    hex::encode(t.win_prob.to_be_bytes()),
                    t.sender_nonce,
                    hex::encode(t.recipient_rand_hash),
                    t.expiration.creation_round,
                    hex::encode(t.expiration.creation_round_block_hash),
                    t.params_expiration_block.to_string(),
                    hex::encode(w.sig.0),
                    hex::encode(w.recipient_rand),
                    now,
                ])?;
            }
        }
        tx.commit()?;
        Ok(added)
    }

    /// Every stored ticket, oldest first.
    pub fn list(&self) -> Result<Vec<StoredTicket>, StoreError> {
        self.query(&format!("SELECT {COLUMNS} FROM winning_tickets ORDER BY id"))
    }

    /// Tickets the queue still works on (pending or submitted), oldest first.
    pub fn pending(&self) -> Result<Vec<StoredTicket>, StoreError> {
        self.query(&format!(
            "SELECT {COLUMNS} FROM winning_tickets WHERE state IN ('pending', 'submitted') ORDER BY id"
        ))
    }

    /// The face values of `sender`'s tickets still in the queue, summed (what it may still owe us).
    pub fn pending_face_value(&self, sender: &Address) -> Result<Wei, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT face_value FROM winning_tickets WHERE sender = ?1 AND state IN ('pending', 'submitted')",
        )?;
        let rows = stmt.query_map([sender.to_checksum()], |r| r.get::<_, String>(0))?;
        let mut sum = Wei::zero();
        for fv in rows {
            let fv = fv?;
            sum = sum.saturating_add(&fv.parse::<Wei>().map_err(|_| StoreError::Corrupt(format!("face value {fv}")))?);
        }
        Ok(sum)
    }

    /// Every ticket as JSON lines: one object per ticket (see [`StoredTicket::to_json`]).
    pub fn export_json(&self) -> Result<String, StoreError> {
        Ok(self.list()?.iter().map(|t| format!("{}\n", t.to_json())).collect())
    }

    /// Records that ticket `id` was redeemed in transaction `tx`.
    pub fn mark_redeemed(&self, id: i64, tx: &str) -> Result<(), StoreError> {
        self.update(
            id,
            "UPDATE winning_tickets SET redeemed_tx = ?1, state = 'redeemed', submitted_tx = NULL, last_error = NULL \
             WHERE id = ?2",
            params![tx, id],
        )
    }

    /// Records that transaction `tx` was sent for ticket `id` (synced before its receipt is awaited).
    pub fn mark_submitted(&self, id: i64, tx: &str) -> Result<(), StoreError> {
        self.update(
            id,
            "UPDATE winning_tickets SET submitted_tx = ?1, state = 'submitted' WHERE id = ?2",
            params![tx, id],
        )
    }

    /// Closes ticket `id` without a redemption of ours: `Used` (someone redeemed it) or `Failed`.
    pub fn mark_closed(&self, id: i64, state: RedemptionState, reason: &str) -> Result<(), StoreError> {
        self.update(
            id,
            "UPDATE winning_tickets SET state = ?1, last_error = ?2 WHERE id = ?3",
            params![state.as_str(), reason, id],
        )
    }

    /// Records a failed attempt on ticket `id`: it goes back to pending, not tried before `retry_at`
    /// (Unix seconds). Returns the attempts so far.
    pub fn record_failure(&self, id: i64, error: &str, retry_at: i64) -> Result<u32, StoreError> {
        self.update(
            id,
            "UPDATE winning_tickets SET state = 'pending', submitted_tx = NULL, attempts = attempts + 1, \
             last_error = ?1, next_attempt_at = ?2 WHERE id = ?3",
            params![error, retry_at, id],
        )?;
        let attempts: u32 =
            self.lock().query_row("SELECT attempts FROM winning_tickets WHERE id = ?1", [id], |r| r.get(0))?;
        Ok(attempts)
    }

    /// Notes why ticket `id` waits (e.g. the gas price is over the limit) without counting an attempt.
    pub fn note_waiting(&self, id: i64, reason: &str) -> Result<(), StoreError> {
        self.update(id, "UPDATE winning_tickets SET last_error = ?1 WHERE id = ?2", params![reason, id])
    }

    fn update(&self, id: i64, sql: &str, args: impl rusqlite::Params) -> Result<(), StoreError> {
        let n = self.lock().execute(sql, args)?;
        if n == 0 {
            return Err(StoreError::Db(format!("no ticket with id {id}")));
        }
        Ok(())
    }

    /// Saves one balance (committed and synced on return).
    pub fn save_balance(&self, key: &BalanceKey, balance: &Balance) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT INTO balances (party, capability, stream, exact) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (party, capability, stream) DO UPDATE SET exact = excluded.exact",
            params![key.party.to_checksum(), key.capability, key.stream.as_deref().unwrap_or(""), balance.exact()],
        )?;
        Ok(())
    }

    /// Replaces every saved balance with `balances` in one transaction (e.g. a ledger snapshot).
    pub fn save_balances(&self, balances: &[(BalanceKey, Balance)]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM balances", [])?;
        {
            let mut stmt =
                tx.prepare("INSERT INTO balances (party, capability, stream, exact) VALUES (?1, ?2, ?3, ?4)")?;
            for (k, b) in balances {
                stmt.execute(params![
                    k.party.to_checksum(),
                    k.capability,
                    k.stream.as_deref().unwrap_or(""),
                    b.exact()
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every saved balance.
    pub fn load_balances(&self) -> Result<Vec<(BalanceKey, Balance)>, StoreError> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare("SELECT party, capability, stream, exact FROM balances ORDER BY party, capability, stream")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (party, capability, stream, exact) = row?;
            let party: Address = party.parse().map_err(|e| StoreError::Corrupt(format!("balance party: {e}")))?;
            let balance = Balance::from_exact(&exact).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let stream = (!stream.is_empty()).then_some(stream);
            out.push((BalanceKey { party, capability, stream }, balance));
        }
        Ok(out)
    }

    /// One ticket by id.
    pub fn get(&self, id: i64) -> Result<Option<StoredTicket>, StoreError> {
        let conn = self.lock();
        let row = conn
            .query_row(&format!("SELECT {COLUMNS} FROM winning_tickets WHERE id = ?1"), [id], raw_row)
            .optional()?;
        row.map(parse_row).transpose()
    }

    fn query(&self, sql: &str) -> Result<Vec<StoredTicket>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], raw_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(parse_row(row?)?);
        }
        Ok(out)
    }
}

/// Adds the columns an older store lacks; a store that recorded `redeemed_tx` before states existed
/// gets `redeemed` for those tickets.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('winning_tickets')")?;
    let have: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    for (name, def) in ADDED_COLUMNS {
        if !have.iter().any(|h| h == name) {
            conn.execute_batch(&format!("ALTER TABLE winning_tickets ADD COLUMN {name} {def};"))?;
            if name == "state" {
                conn.execute_batch("UPDATE winning_tickets SET state = 'redeemed' WHERE redeemed_tx IS NOT NULL;")?;
            }
        }
    }
    Ok(())
}

/// A row's columns as SQLite returns them: the ticket's, then the queue's.
type RawRow = (TicketColumns, QueueColumns);
type TicketColumns =
    (i64, String, String, String, String, u32, String, i64, String, String, String, String, i64, Option<String>);
type QueueColumns = (String, Option<String>, u32, Option<String>, i64);

fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((ticket_columns(r)?, (r.get(14)?, r.get(15)?, r.get(16)?, r.get(17)?, r.get(18)?)))
}

fn ticket_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<TicketColumns> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
    ))
}

fn parse_row((ticket, queue): RawRow) -> Result<StoredTicket, StoreError> {
    let (id, recipient, sender, fv, wp, nonce, rrh, round, block_hash, exp_block, sig, rand, received_at, redeemed_tx) =
        ticket;
    let (state, submitted_tx, attempts, last_error, next_attempt_at) = queue;
    let bad = |what: &str| StoreError::Corrupt(format!("ticket {id}: {what}"));
    let addr = |s: &str| s.parse::<Address>().map_err(|_| bad("address"));
    let h32 = |s: &str| -> Result<[u8; 32], StoreError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| bad("32-byte hex"))?;
        Ok(out)
    };
    let ticket = Ticket {
        recipient: addr(&recipient)?,
        sender: addr(&sender)?,
        face_value: fv.parse::<Wei>().map_err(|_| bad("face_value"))?,
        win_prob: WinProb::from_be_bytes(&hex::decode(&wp).map_err(|_| bad("win_prob"))?)
            .map_err(|_| bad("win_prob"))?,
        sender_nonce: nonce,
        recipient_rand_hash: h32(&rrh)?,
        expiration: ExpirationParams { creation_round: round, creation_round_block_hash: h32(&block_hash)? },
        params_expiration_block: exp_block.parse().map_err(|_| bad("params_expiration_block"))?,
    };
    let mut sig_bytes = [0u8; 65];
    hex::decode_to_slice(&sig, &mut sig_bytes).map_err(|_| bad("sig"))?;
    Ok(StoredTicket {
        id,
        winning: WinningTicket { ticket, sig: Signature(sig_bytes), recipient_rand: h32(&rand)? },
        received_at,
        redeemed_tx,
        state: RedemptionState::parse(&state).ok_or_else(|| bad("state"))?,
        submitted_tx,
        attempts,
        last_error,
        next_attempt_at,
    })
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
