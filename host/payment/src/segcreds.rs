//! Orchestrator session tokens and segment credentials (`Livepeer-Segment`), as go-livepeer makes and
//! checks them.
//!
//! - An orchestrator hands out an [`AuthToken`] in its `OrchestratorInfo`: HMAC-SHA256 under its own
//!   secret over the session id followed by the expiration (Unix seconds) as minimal big-endian bytes.
//!   It recognises its tokens without remembering them ([`auth_token`] recomputes one).
//! - A sender (or a remote signer on its behalf) proves a segment is its own with a `SegData`: the
//!   manifest id, the sequence number, keccak256 of the data and the profiles, signed as go-livepeer's
//!   `SegTranscodingMetadata.Flatten` (manifest id bytes, the sequence number as a 32-byte big-endian
//!   word, the 32-byte hash, the profiles text), carrying the orchestrator's token. [`seg_creds`] makes
//!   the header value, [`verify_seg_creds`] checks one.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use prost::Message as _;
use sha2::Sha256;

use crate::address::Address;
use crate::hash::keccak256;
use crate::key::{SecretKey, Signature, SignatureError};
use crate::proto::{AuthToken, SegData};

/// The largest `Livepeer-Segment` header accepted, in characters of base64.
pub const MAX_SEG_CREDS_HEADER: usize = 16 * 1024;

/// Why segment credentials were refused. Each is the sender's fault: answer 4xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's #[error] message is its documentation")]
pub enum SegCredsError {
    #[error("segment credentials are {0} bytes, more than the {MAX_SEG_CREDS_HEADER} allowed")]
    TooLarge(usize),
    #[error("segment credentials are not standard base64")]
    Base64,
    #[error("segment credentials are not a protobuf SegData: {0}")]
    Protobuf(String),
    #[error("segment credentials' signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("segment credentials carry no auth token")]
    MissingToken,
    #[error("segment credentials' auth token was not issued by this orchestrator")]
    UnknownToken,
    #[error("segment credentials' auth token expired at {expiration} (now {now})")]
    Expired { expiration: i64, now: i64 },
}

/// The session token for `session_id` valid until `expiration` (Unix seconds) under `secret`.
pub fn auth_token(secret: &[u8], session_id: &str, expiration: i64) -> AuthToken {
    AuthToken { token: token_mac(secret, session_id, expiration), session_id: session_id.to_owned(), expiration }
}

fn token_mac(secret: &[u8], session_id: &str, expiration: i64) -> Vec<u8> {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        // HMAC takes a key of any length; this arm is never taken.
        Err(_) => return Vec::new(),
    };
    mac.update(session_id.as_bytes());
    mac.update(&minimal_be(expiration.unsigned_abs()));
    mac.finalize().into_bytes().to_vec()
}

/// A number as minimal big-endian bytes (Go's `big.Int.Bytes`: none for zero).
fn minimal_be(v: u64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default().to_vec()
}

/// The bytes a sender signs for `seg`.
pub fn flatten(seg: &SegData) -> Vec<u8> {
    let mut out = Vec::with_capacity(seg.manifest_id.len() + 64 + seg.profiles.len());
    out.extend_from_slice(&seg.manifest_id);
    let seq = minimal_be(seg.seq.unsigned_abs());
    out.extend(std::iter::repeat_n(0u8, 32usize.saturating_sub(seq.len())));
    out.extend_from_slice(&seq);
    // A 32-byte hash: shorter values are left-padded, longer ones keep their last 32 bytes (as Go's
    // `BytesToHash`).
    let hash = seg.hash.get(seg.hash.len().saturating_sub(32)..).unwrap_or_default();
    out.extend(std::iter::repeat_n(0u8, 32 - hash.len()));
    out.extend_from_slice(hash);
    out.extend_from_slice(&seg.profiles);
    out
}

/// Signed segment credentials for segment `seq` of `manifest_id` holding `data`, carrying the
/// orchestrator's `token`: the `Livepeer-Segment` header value.
pub fn seg_creds(
    key: &SecretKey,
    manifest_id: &str,
    seq: i64,
    data: &[u8],
    token: Option<AuthToken>,
) -> Result<String, SignatureError> {
    let mut seg = SegData {
        manifest_id: manifest_id.as_bytes().to_vec(),
        seq,
        hash: keccak256(data).to_vec(),
        auth_token: token,
        ..Default::default()
    };
    seg.sig = key.sign(&flatten(&seg))?.0.to_vec();
    Ok(STANDARD.encode(seg.encode_to_vec()))
}

/// Decodes `value` and checks that `sender` signed it and that it carries an unexpired token this
/// orchestrator (`secret`) issued. `now` is Unix seconds.
pub fn verify_seg_creds(value: &str, sender: &Address, secret: &[u8], now: i64) -> Result<SegData, SegCredsError> {
    let value = value.trim();
    if value.len() > MAX_SEG_CREDS_HEADER {
        return Err(SegCredsError::TooLarge(value.len()));
    }
    let raw = STANDARD.decode(value).map_err(|_| SegCredsError::Base64)?;
    let seg = SegData::decode(raw.as_slice()).map_err(|e| SegCredsError::Protobuf(e.to_string()))?;
    let sig: [u8; 65] = seg.sig.as_slice().try_into().map_err(|_| SignatureError::Length)?;
    Signature(sig).verify(&flatten(&seg), sender)?;
    let token = seg.auth_token.as_ref().ok_or(SegCredsError::MissingToken)?;
    let expected = token_mac(secret, &token.session_id, token.expiration);
    if !constant_time_eq(&expected, &token.token) {
        return Err(SegCredsError::UnknownToken);
    }
    if now > token.expiration {
        return Err(SegCredsError::Expired { expiration: token.expiration, now });
    }
    Ok(seg)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"orchestrator secret";

    #[test]
    fn credentials_round_trip_and_name_their_sender() {
        let key = SecretKey::generate();
        let token = auth_token(SECRET, "session-1", 2_000);
        let value = seg_creds(&key, "manifest", 7, b"", Some(token.clone())).unwrap();
        let seg = verify_seg_creds(&value, &key.address(), SECRET, 1_000).unwrap();
        assert_eq!((seg.seq, seg.manifest_id.as_slice(), seg.auth_token), (7, &b"manifest"[..], Some(token)));
        assert_eq!(seg.hash, keccak256(b"").to_vec());
    }

    #[test]
    fn forged_or_stale_credentials_are_refused() {
        let key = SecretKey::generate();
        let other = SecretKey::generate();
        let good = seg_creds(&key, "m", 1, b"x", Some(auth_token(SECRET, "s", 100))).unwrap();
        // Another sender.
        assert!(matches!(
            verify_seg_creds(&good, &other.address(), SECRET, 50),
            Err(SegCredsError::Signature(SignatureError::WrongSigner { .. }))
        ));
        // Another orchestrator's token.
        assert_eq!(verify_seg_creds(&good, &key.address(), b"other", 50), Err(SegCredsError::UnknownToken));
        // Expired.
        assert_eq!(
            verify_seg_creds(&good, &key.address(), SECRET, 101),
            Err(SegCredsError::Expired { expiration: 100, now: 101 })
        );
        // A token whose expiry was moved (signed by the sender, but not by the orchestrator).
        let mut moved = auth_token(SECRET, "s", 100);
        moved.expiration = 10_000;
        let forged = seg_creds(&key, "m", 1, b"x", Some(moved)).unwrap();
        assert_eq!(verify_seg_creds(&forged, &key.address(), SECRET, 200), Err(SegCredsError::UnknownToken));
        // No token, garbage, too large.
        let none = seg_creds(&key, "m", 1, b"x", None).unwrap();
        assert_eq!(verify_seg_creds(&none, &key.address(), SECRET, 0), Err(SegCredsError::MissingToken));
        assert_eq!(verify_seg_creds("!!", &key.address(), SECRET, 0), Err(SegCredsError::Base64));
        assert!(matches!(verify_seg_creds("CgE=", &key.address(), SECRET, 0), Err(SegCredsError::Protobuf(_))));
        let huge = "A".repeat(MAX_SEG_CREDS_HEADER + 1);
        assert_eq!(verify_seg_creds(&huge, &key.address(), SECRET, 0), Err(SegCredsError::TooLarge(huge.len())));
    }

    #[test]
    fn flatten_is_go_livepeers_layout() {
        let seg = SegData { manifest_id: b"ab".to_vec(), seq: 0x0102, hash: vec![0xff], ..Default::default() };
        let flat = flatten(&seg);
        assert_eq!(flat.len(), 2 + 32 + 32);
        assert_eq!(&flat[..2], b"ab");
        assert_eq!(&flat[32..34], &[1, 2]);
        assert!(flat[2..32].iter().all(|b| *b == 0));
        assert_eq!(flat[65], 0xff);
        // The token's expiration enters the MAC as minimal big-endian bytes.
        assert_eq!(minimal_be(0), Vec::<u8>::new());
        assert_eq!(minimal_be(0x01_00), vec![1, 0]);
    }
}
