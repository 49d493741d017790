//! Paying orchestrators (priced mode, gateway side): the gateway keeps its view of its balance
//! with each (orchestrator, capability), synced to what the orchestrator reports ("the
//! orchestrator's number wins", which also covers an orchestrator restart), and pays with
//! probabilistic tickets when it runs low: at start, and for a running stream on a timer.

use byoc_payment::{Address, Balance, BalanceKey, Ledger, tickets_for_cost};

use crate::discovery::Token;
use crate::error::PAYMENT_REFUSED;
use crate::state::Gateway;

/// The gateway's balance with (orchestrator recipient, capability).
pub(crate) fn balance(ledger: &Ledger, recipient: &Address, capability: &str) -> Balance {
    ledger.balance(&BalanceKey::shared(*recipient, capability))
}

/// The orchestrator's reported balance replaces ours.
pub(crate) fn sync(ledger: &Ledger, recipient: &Address, capability: &str, reported: i64) {
    ledger.sync_to_reported(&BalanceKey::shared(*recipient, capability), &Balance::from_i128(i128::from(reported)));
}

/// A `Livepeer-Payment` header when the balance with this orchestrator is below
/// `min_balance_secs` of its price (none for a free capability): tickets for `seconds` of
/// compute, and at least enough to bring the balance back to the minimum. The token must be
/// fresh: its ticket params are good for one payment. `own_balance`: a stream paying from a
/// balance of its own on the orchestrator, as last reported (the gateway's shared view is left alone).
pub(crate) async fn payment_for(
    gw: &Gateway,
    token: &Token,
    capability: &str,
    seconds: u64,
    own_balance: Option<i64>,
) -> Result<Option<String>, String> {
    let Some(params) = token.ticket_params.as_ref().filter(|_| !token.price.is_free()) else { return Ok(None) };
    // On chain, never a ticket the gateway's deposit and reserve cannot back.
    match gw.backing() {
        Some(Err(why)) => return Err(format!("this gateway refuses to pay ({PAYMENT_REFUSED}): {why}")),
        Some(Ok(max)) if params.face_value > max => {
            return Err(format!(
                "this gateway refuses to pay ({PAYMENT_REFUSED}): the orchestrator asks for tickets of {} wei, the \
                 gateway's deposit and reserve back {max} wei",
                params.face_value
            ));
        }
        _ => {}
    }
    let price = &token.price;
    let ledger = &gw.ledger;
    let have = match own_balance {
        // A stream paying from a balance of its own: that balance, as last reported.
        Some(own) => Balance::from_i128(i128::from(own)),
        None => {
            sync(ledger, &params.recipient, capability, token.balance);
            balance(ledger, &params.recipient, capability)
        }
    };
    let min = price.cost(gw.config.min_balance_secs).map_err(|e| e.to_string())?;
    if have >= min {
        return Ok(None);
    }
    // Enough for `seconds`, and at least back up to the minimum: go-livepeer pays only for the
    // job's timeout, which is refused when that is below the orchestrator's 60 s minimum.
    let seconds = seconds.max(gw.config.min_balance_secs).max(1);
    let target = price.cost(seconds).map_err(|e| e.to_string())?;
    let short = &target - &have;
    let n = tickets_for_cost(&short, &params.ev());
    if n == 0 {
        return Ok(None);
    }
    // A remote signer is asked for the seconds the balance is short of (it picks the tickets).
    let per_second = price.per_second().map_err(|e| e.to_string())?;
    let short_secs = seconds_covering(&short, &per_second).min(seconds);
    let payment = gw.client.signing().pay(params, price, capability, n, short_secs).await?;
    let n = u32::try_from(payment.ticket_sender_params.len()).unwrap_or(u32::MAX);
    if own_balance.is_none() {
        let _ = ledger.credit(&BalanceKey::shared(params.recipient, capability), &params.ev().times(u64::from(n)));
    }
    metrics::counter!("byoc_gateway_tickets_sent_total").increment(u64::from(n));
    tracing::debug!(recipient = %params.recipient, capability, tickets = n, "paying");
    Ok(Some(payment.to_header()))
}

/// The whole seconds at `per_second` that cover `amount` (at least 1; `u64::MAX` for a price that
/// is not positive, which the caller's cap then bounds).
fn seconds_covering(amount: &Balance, per_second: &Balance) -> u64 {
    amount.units_covering(per_second).map_or(u64::MAX, |n| n.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_covering_rounds_up() {
        let p = Balance::from_i128(10);
        assert_eq!(seconds_covering(&Balance::from_i128(0), &p), 1);
        assert_eq!(seconds_covering(&Balance::from_i128(10), &p), 1);
        assert_eq!(seconds_covering(&Balance::from_i128(11), &p), 2);
        assert_eq!(seconds_covering(&Balance::from_i128(600), &p), 60);
        assert_eq!(seconds_covering(&Balance::from_i128(601), &p), 61);
    }
}
