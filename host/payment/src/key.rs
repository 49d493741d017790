//! secp256k1 keys and go-livepeer's signature scheme.

use std::fmt;

use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, SigningKey, VerifyingKey};
use sha3::{Digest, Keccak256};

use crate::address::Address;
use crate::hash::keccak256;

/// The digest go-livepeer signs for a message: EIP-191 `personal_sign` of `keccak256(msg)`,
/// i.e. `keccak256("\x19Ethereum Signed Message:\n32" || keccak256(msg))`.
fn signing_digest(msg: &[u8]) -> [u8; 32] {
    let inner = keccak256(msg);
    let mut h = Keccak256::new();
    h.update(b"\x19Ethereum Signed Message:\n32");
    h.update(inner);
    h.finalize().into()
}

/// A secp256k1 private key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.address())
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's #[error] message is its documentation")]
pub enum SignatureError {
    #[error("signature must be 65 bytes (0x + 130 hex digits)")]
    Length,
    #[error("signature is not hex")]
    Hex,
    #[error("signature v must be 27 or 28")]
    RecoveryId,
    #[error("signature s is in the upper half of the curve order (not low-s)")]
    HighS,
    #[error("signature does not recover to a public key")]
    Invalid,
    #[error("signature is by {recovered}, not {expected}")]
    WrongSigner { expected: Address, recovered: Address },
    #[error("secret key must be 32 bytes of hex, a valid scalar")]
    BadKey,
}

/// `bytes` random bytes from the operating system's generator, as lowercase hex (for secrets and
/// unguessable names).
pub fn random_hex(bytes: usize) -> String {
    use rand_core::RngCore;
    let mut buf = vec![0u8; bytes];
    rand_core::OsRng.fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl SecretKey {
    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Self {
        SecretKey(SigningKey::random(&mut rand_core::OsRng))
    }

    /// From 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignatureError> {
        SigningKey::from_slice(bytes).map(SecretKey).map_err(|_| SignatureError::BadKey)
    }

    /// From 64 hex digits, with or without `0x`, surrounding whitespace ignored.
    pub fn from_hex(s: &str) -> Result<Self, SignatureError> {
        let s = s.trim();
        let digits = s.strip_prefix("0x").unwrap_or(s);
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(digits, bytes.as_mut()).map_err(|_| SignatureError::BadKey)?;
        Self::from_bytes(bytes.as_ref())
    }

    /// The 32 raw bytes (handle with care).
    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_bytes().into())
    }

    /// The account address: the last 20 bytes of keccak256 of the uncompressed public key.
    pub fn address(&self) -> Address {
        address_of(self.0.verifying_key())
    }

    /// Signs `msg` the way go-livepeer does (`personal_sign` of `keccak256(msg)`). Always low-s.
    pub fn sign(&self, msg: &[u8]) -> Result<Signature, SignatureError> {
        let digest = signing_digest(msg);
        // k256 only fails for prehashes shorter than the field size; ours is 32 bytes.
        let (sig, recid) = self.0.sign_prehash_recoverable(&digest).map_err(|_| SignatureError::Invalid)?;
        let (sig, recid) = match sig.normalize_s() {
            Some(low) => (low, RecoveryId::new(!recid.is_y_odd(), recid.is_x_reduced())),
            None => (sig, recid),
        };
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = 27 + recid.to_byte();
        Ok(Signature(out))
    }
}

fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    let hash = keccak256(point.as_bytes().get(1..).unwrap_or_default());
    let mut a = [0u8; 20];
    a.copy_from_slice(&hash[12..]);
    Address(a)
}

/// A 65-byte `r || s || v` signature, v in {27, 28}.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 65]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

impl Signature {
    /// `0x` + 130 lowercase hex digits, as go-livepeer puts it in JSON.
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }

    /// Parses `0x`-prefixed or bare hex.
    pub fn from_hex(s: &str) -> Result<Self, SignatureError> {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        if digits.len() != 130 {
            return Err(SignatureError::Length);
        }
        let mut out = [0u8; 65];
        hex::decode_to_slice(digits, &mut out).map_err(|_| SignatureError::Hex)?;
        Ok(Signature(out))
    }

    /// The address that signed `msg`, enforcing v in {27, 28} and low-s.
    pub fn recover(&self, msg: &[u8]) -> Result<Address, SignatureError> {
        let v = self.0[64];
        let recid = match v {
            27 | 28 => RecoveryId::from_byte(v - 27).ok_or(SignatureError::RecoveryId)?,
            _ => return Err(SignatureError::RecoveryId),
        };
        let sig = EcdsaSignature::from_slice(&self.0[..64]).map_err(|_| SignatureError::Invalid)?;
        if sig.normalize_s().is_some() {
            return Err(SignatureError::HighS);
        }
        let key = VerifyingKey::recover_from_prehash(&signing_digest(msg), &sig, recid)
            .map_err(|_| SignatureError::Invalid)?;
        Ok(address_of(&key))
    }

    /// Checks that `expected` signed `msg`.
    pub fn verify(&self, msg: &[u8], expected: &Address) -> Result<(), SignatureError> {
        let recovered = self.recover(msg)?;
        if recovered == *expected {
            Ok(())
        } else {
            Err(SignatureError::WrongSigner { expected: *expected, recovered })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_key_has_known_address() {
        // Private key 0x11…11; its address, as eth-account computes it.
        let k = SecretKey::from_hex(&"11".repeat(32)).unwrap();
        assert_eq!(k.address().to_checksum(), "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A");
        assert!(SecretKey::from_hex(&"00".repeat(32)).is_err(), "zero is not a valid scalar");
        assert!(SecretKey::from_hex("0x1234").is_err());
    }

    #[test]
    fn rejects_bad_signatures() {
        let k = SecretKey::from_hex(&"22".repeat(32)).unwrap();
        let sig = k.sign(b"msg").unwrap();
        assert_eq!(sig.verify(b"msg", &k.address()), Ok(()));
        assert!(matches!(sig.verify(b"other", &k.address()), Err(SignatureError::WrongSigner { .. })));
        let mut bad_v = sig;
        bad_v.0[64] = 1;
        assert_eq!(bad_v.recover(b"msg"), Err(SignatureError::RecoveryId));
        // The high-s twin of a valid signature recovers the same key in plain ECDSA; refuse it.
        let ecdsa = EcdsaSignature::from_slice(&sig.0[..64]).unwrap();
        let (r, s) = ecdsa.split_scalars();
        let high = EcdsaSignature::from_scalars(r, -*s).unwrap();
        let mut twin = [0u8; 65];
        twin[..64].copy_from_slice(&high.to_bytes());
        twin[64] = if sig.0[64] == 27 { 28 } else { 27 };
        assert_eq!(Signature(twin).recover(b"msg"), Err(SignatureError::HighS));
        assert_eq!(Signature::from_hex("0x00"), Err(SignatureError::Length));
        assert_eq!(Signature::from_hex(&format!("0x{}", "zz".repeat(65))), Err(SignatureError::Hex));
    }

    proptest! {
        #[test]
        fn sign_then_recover(seed in proptest::array::uniform32(1u8..), msg in proptest::collection::vec(any::<u8>(), 0..200)) {
            let k = SecretKey::from_bytes(&seed).unwrap();
            let sig = k.sign(&msg).unwrap();
            prop_assert!(sig.0[64] == 27 || sig.0[64] == 28);
            prop_assert_eq!(sig.recover(&msg).unwrap(), k.address());
            prop_assert_eq!(Signature::from_hex(&sig.to_hex()).unwrap(), sig);
        }

        #[test]
        fn garbage_signatures_never_panic(bytes in proptest::collection::vec(any::<u8>(), 65..=65), msg in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut s = [0u8; 65];
            s.copy_from_slice(&bytes);
            let _ = Signature(s).recover(&msg);
        }
    }
}
