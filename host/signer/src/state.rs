//! The payment session state a client carries between `/generate-live-payment` calls (go-livepeer's
//! `RemotePaymentState` fields), signed by the signer's own key so that only states it issued come
//! back; and the bounded maps that keep what a client must not be trusted with: the last sequence
//! number issued per state (replays) and the next ticket nonce per recipient random hash.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use byoc_payment::{Address, SecretKey, Signature};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Most bytes of a state's JSON (and of its base64 form, with room) the signer reads.
pub const MAX_STATE_BYTES: usize = 4096;

/// One payment session's state, as go-livepeer names the fields. `LastUpdate` is RFC 3339 (UTC,
/// milliseconds), `Balance` an exact fraction (`num/den`) of wei the orchestrator should hold for
/// this session by the signer's count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentState {
    /// This session's id (random, chosen by the signer).
    #[serde(rename = "StateID")]
    pub state_id: String,
    /// The manifest (session) id the segment credentials carry.
    #[serde(rename = "PMSessionID", default)]
    pub pm_session_id: String,
    /// When the last payment was made.
    #[serde(rename = "LastUpdate")]
    pub last_update: String,
    /// The orchestrator paid, checksummed.
    #[serde(rename = "OrchestratorAddress")]
    pub orchestrator_address: String,
    /// The app the client named, if any.
    #[serde(rename = "App", default)]
    pub app: String,
    /// Unix seconds until which the auth webhook's yes is reused (0: ask every time).
    #[serde(rename = "AuthExpiry", default)]
    pub auth_expiry: i64,
    /// The last ticket nonce used.
    #[serde(rename = "SenderNonce", default)]
    pub sender_nonce: u32,
    /// Credit minus spending, exact wei.
    #[serde(rename = "Balance", default)]
    pub balance: String,
    /// The first payment's price (a ceiling for the rest of the session).
    #[serde(rename = "InitialPricePerUnit", default)]
    pub initial_price_per_unit: i64,
    /// The first payment's price unit.
    #[serde(rename = "InitialPixelsPerUnit", default)]
    pub initial_pixels_per_unit: i64,
    /// The payment type the client named (`lv2v`, `live`, …).
    #[serde(rename = "Type", default)]
    pub kind: String,
    /// How many payments this state has seen; each response carries one more.
    #[serde(rename = "SequenceNumber")]
    pub sequence_number: u64,
    /// The auth webhook's (or the `Signer-Auth-Id` header's) id for this session, once set.
    #[serde(rename = "AuthID", default)]
    pub auth_id: String,
}

/// The wire form: `State` the JSON above and `Sig` the signer's signature of it, both base64 (as Go
/// encodes `[]byte`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedState {
    /// base64 of the state's JSON.
    #[serde(rename = "State")]
    pub state: String,
    /// base64 of the 65-byte signature.
    #[serde(rename = "Sig")]
    pub sig: String,
}

impl SignedState {
    /// Signs `state` with `key`.
    pub fn seal(state: &PaymentState, key: &SecretKey) -> Result<SignedState, ApiError> {
        let json = serde_json::to_vec(state).map_err(|e| internal(&e))?;
        let sig = key.sign(&json).map_err(|e| internal(&e))?;
        Ok(SignedState { state: B64.encode(&json), sig: B64.encode(sig.0) })
    }

    /// The state, if `signer` signed it.
    pub fn open(&self, signer: &Address) -> Result<PaymentState, ApiError> {
        if self.state.len() > MAX_STATE_BYTES * 2 || self.sig.len() > 200 {
            return Err(ApiError::state("invalid state: too large"));
        }
        let json = B64.decode(self.state.trim()).map_err(|_| ApiError::state("invalid state: State is not base64"))?;
        let sig = B64.decode(self.sig.trim()).map_err(|_| ApiError::state("invalid state: Sig is not base64"))?;
        let sig: [u8; 65] = sig.try_into().map_err(|_| ApiError::state("invalid sig: not 65 bytes"))?;
        Signature(sig)
            .verify(&json, signer)
            .map_err(|_| ApiError::state("invalid sig: the state was not issued by this signer"))?;
        serde_json::from_slice(&json).map_err(|e| ApiError::state(format!("invalid state: {e}")))
    }
}

fn internal(e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "signing the payment state failed");
    ApiError::new(http::StatusCode::INTERNAL_SERVER_ERROR, "internal", "could not sign the payment state")
}

/// A map of at most `cap` entries, each forgotten `ttl` after its last write. At the cap, expired
/// entries go first, then the one written longest ago.
#[derive(Debug)]
pub struct Bounded<K, V> {
    map: HashMap<K, (V, Instant)>,
    cap: usize,
    ttl: Duration,
}

impl<K: Hash + Eq + Clone, V: Clone> Bounded<K, V> {
    /// An empty map.
    pub fn new(cap: usize, ttl: Duration) -> Self {
        Bounded { map: HashMap::new(), cap: cap.max(1), ttl }
    }

    /// The live value under `k`.
    pub fn get(&self, k: &K, now: Instant) -> Option<V> {
        self.map.get(k).filter(|(_, at)| now.saturating_duration_since(*at) < self.ttl).map(|(v, _)| v.clone())
    }

    /// Sets `k` to `v`, making room if needed.
    pub fn put(&mut self, k: K, v: V, now: Instant) {
        if !self.map.contains_key(&k) && self.map.len() >= self.cap {
            let ttl = self.ttl;
            self.map.retain(|_, (_, at)| now.saturating_duration_since(*at) < ttl);
            if self.map.len() >= self.cap
                && let Some(oldest) = self.map.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| k.clone())
            {
                self.map.remove(&oldest);
            }
        }
        self.map.insert(k, (v, now));
    }

    /// How many entries are held (live or not yet swept).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `ms` since the Unix epoch as RFC 3339 UTC with milliseconds (`2026-04-07T20:00:00.000Z`).
pub fn rfc3339(ms: i64) -> String {
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The inverse of [`rfc3339`] (only that exact form; a state is only ever read back by its signer).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24 || b.get(4) != Some(&b'-') || b.get(10) != Some(&b'T') || b.get(23) != Some(&b'Z') {
        return None;
    }
    let num = |from: usize, to: usize| s.get(from..to).and_then(|v| v.parse::<i64>().ok());
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec, milli) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1000) + milli)
}

/// Howard Hinnant's days-from-civil (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_match_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_775_592_000_123), "2026-04-07T20:00:00.123Z");
        for ms in [0, 951_782_400_000, 1_775_592_000_123, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        }
        assert_eq!(parse_rfc3339("2026-04-07T20:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-13-07T20:00:00.000Z"), None);
    }

    #[test]
    fn a_state_opens_only_under_its_signer() {
        let (k, other) = (SecretKey::generate(), SecretKey::generate());
        let st = PaymentState { state_id: "s".into(), sequence_number: 3, ..Default::default() };
        let sealed = SignedState::seal(&st, &k).unwrap();
        assert_eq!(sealed.open(&k.address()).unwrap(), st);
        assert!(sealed.open(&other.address()).unwrap_err().message.contains("invalid sig"));
        let mut forged = sealed.clone();
        forged.state = B64.encode(br#"{"StateID":"s","LastUpdate":"","OrchestratorAddress":"","SequenceNumber":9}"#);
        assert!(forged.open(&k.address()).unwrap_err().message.contains("invalid sig"));
    }

    #[test]
    fn the_bounded_map_never_grows_past_its_cap() {
        let mut m = Bounded::new(3, Duration::from_secs(60));
        let t = Instant::now();
        for i in 0..10u32 {
            m.put(i, i, t + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(m.len(), 3);
        assert_eq!(m.get(&9, t), Some(9));
        assert_eq!(m.get(&0, t), None);
        assert_eq!(m.get(&9, t + Duration::from_secs(120)), None, "expired");
    }
}
