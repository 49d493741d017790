//! Keccak-256, the hash every other module of this crate builds on (addresses, signing digests,
//! ticket hashes, key files).

use sha3::{Digest, Keccak256};

/// Keccak-256 (the pre-standard SHA-3 variant Ethereum uses).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}
