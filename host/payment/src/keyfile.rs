//! Key files: Ethereum JSON keystores (version 3: scrypt + AES-128-CTR, as go-ethereum writes
//! them) and plain hex key files for development. Both are written with mode 0600.

use std::path::Path;

use aes::cipher::{KeyIvInit, StreamCipher};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::hash::keccak256;
use crate::key::SecretKey;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// Errors reading or writing key files.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's #[error] message is its documentation")]
pub enum KeyFileError {
    #[error("key file I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("key file is not a valid keystore: {0}")]
    Format(String),
    #[error("unsupported keystore: {0}")]
    Unsupported(String),
    #[error("wrong passphrase (keystore MAC mismatch)")]
    WrongPassphrase,
    #[error("this keystore needs a passphrase")]
    PassphraseNeeded,
    #[error("key file holds an invalid key")]
    BadKey,
}

/// Largest scrypt N·r of a keystore loaded: 128·N·r bytes of memory, 1 GiB (go-ethereum's standard
/// cost takes 256 MiB).
const MAX_SCRYPT_N_R: u64 = 1 << 23;
/// Largest scrypt N·r·p of a keystore loaded: 8 times go-ethereum's standard cost, some seconds.
const MAX_SCRYPT_WORK: u64 = 1 << 24;

/// Scrypt cost of new keystores.
#[derive(Debug, Clone, Copy)]
pub struct ScryptCost {
    /// log2 of scrypt's N (CPU/memory cost).
    pub log_n: u8,
    /// scrypt's block size r.
    pub r: u32,
    /// scrypt's parallelism p.
    pub p: u32,
}

impl ScryptCost {
    /// go-ethereum's standard cost (N = 2^18, r = 8, p = 1): about a second and 256 MiB.
    pub const STANDARD: ScryptCost = ScryptCost { log_n: 18, r: 8, p: 1 };
    /// go-ethereum's light cost (N = 2^12, r = 8, p = 6), for tests and constrained machines.
    pub const LIGHT: ScryptCost = ScryptCost { log_n: 12, r: 8, p: 6 };
}

#[derive(Serialize, Deserialize)]
struct Keystore {
    address: String,
    crypto: Crypto,
    id: String,
    version: u32,
}

#[derive(Serialize, Deserialize)]
struct Crypto {
    cipher: String,
    ciphertext: String,
    cipherparams: CipherParams,
    kdf: String,
    kdfparams: KdfParams,
    mac: String,
}

#[derive(Serialize, Deserialize)]
struct CipherParams {
    iv: String,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    dklen: u32,
    n: u64,
    p: u32,
    r: u32,
    salt: String,
}

fn random<const N: usize>() -> [u8; N] {
    use rand_core::RngCore;
    let mut b = [0u8; N];
    rand_core::OsRng.fill_bytes(&mut b);
    b
}

fn derive(pass: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
    let params = scrypt::Params::new(log_n, r, p, 32).map_err(|e| KeyFileError::Unsupported(e.to_string()))?;
    let mut dk = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(pass, salt, &params, dk.as_mut()).map_err(|e| KeyFileError::Unsupported(e.to_string()))?;
    Ok(dk)
}

fn mac(dk: &[u8; 32], ciphertext: &[u8]) -> [u8; 32] {
    let mut m = Vec::with_capacity(16 + ciphertext.len());
    m.extend_from_slice(&dk[16..]);
    m.extend_from_slice(ciphertext);
    keccak256(&m)
}

/// Encrypts a key as a version-3 JSON keystore.
pub fn encrypt_keystore(key: &SecretKey, passphrase: &str, cost: ScryptCost) -> Result<String, KeyFileError> {
    let salt: [u8; 32] = random();
    let iv: [u8; 16] = random();
    let dk = derive(passphrase.as_bytes(), &salt, cost.log_n, cost.r, cost.p)?;
    let mut ciphertext = key.to_bytes().to_vec();
    Aes128Ctr::new(dk[..16].into(), &iv.into()).apply_keystream(&mut ciphertext);
    let id: [u8; 16] = random();
    let mut uuid = id;
    uuid[6] = (uuid[6] & 0x0f) | 0x40; // version 4
    uuid[8] = (uuid[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h = hex::encode(uuid);
    let ks = Keystore {
        address: hex::encode(key.address().0),
        crypto: Crypto {
            cipher: "aes-128-ctr".into(),
            ciphertext: hex::encode(&ciphertext),
            cipherparams: CipherParams { iv: hex::encode(iv) },
            kdf: "scrypt".into(),
            kdfparams: KdfParams { dklen: 32, n: 1u64 << cost.log_n, p: cost.p, r: cost.r, salt: hex::encode(salt) },
            mac: hex::encode(mac(&dk, &ciphertext)),
        },
        id: format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]),
        version: 3,
    };
    serde_json::to_string_pretty(&ks).map_err(|e| KeyFileError::Format(e.to_string()))
}

fn unhex(field: &str, s: &str) -> Result<Vec<u8>, KeyFileError> {
    hex::decode(s).map_err(|_| KeyFileError::Format(format!("{field} is not hex")))
}

/// Decrypts a version-3 JSON keystore (scrypt, AES-128-CTR).
pub fn decrypt_keystore(json: &str, passphrase: &str) -> Result<SecretKey, KeyFileError> {
    let ks: Keystore = serde_json::from_str(json).map_err(|e| KeyFileError::Format(e.to_string()))?;
    if ks.version != 3 {
        return Err(KeyFileError::Unsupported(format!("version {}", ks.version)));
    }
    let c = &ks.crypto;
    if c.cipher != "aes-128-ctr" || c.kdf != "scrypt" {
        return Err(KeyFileError::Unsupported(format!("{} with {}", c.cipher, c.kdf)));
    }
    let kp = &c.kdfparams;
    if kp.dklen != 32 || !kp.n.is_power_of_two() || kp.n < 2 || kp.n > 1 << 20 {
        return Err(KeyFileError::Unsupported(format!("scrypt n={} dklen={}", kp.n, kp.dklen)));
    }
    // scrypt takes 128·r·N bytes and N·r·p rounds: a file asking for more than these bounds would abort
    // the process (the allocation fails) or hold it for days.
    let (r, p) = (u64::from(kp.r), u64::from(kp.p));
    if kp.n * r > MAX_SCRYPT_N_R || kp.n * r * p > MAX_SCRYPT_WORK {
        return Err(KeyFileError::Unsupported(format!(
            "scrypt n={} r={} p={}: beyond what is loaded",
            kp.n, kp.r, kp.p
        )));
    }
    let log_n = u8::try_from(kp.n.trailing_zeros()).map_err(|_| KeyFileError::Unsupported("scrypt n".into()))?;
    let salt = unhex("salt", &kp.salt)?;
    let iv: [u8; 16] =
        unhex("iv", &c.cipherparams.iv)?.try_into().map_err(|_| KeyFileError::Format("iv must be 16 bytes".into()))?;
    let ciphertext = unhex("ciphertext", &c.ciphertext)?;
    let dk = derive(passphrase.as_bytes(), &salt, log_n, kp.r, kp.p)?;
    let expected = unhex("mac", &c.mac)?;
    // Constant-time comparison is not needed here: the MAC is not a secret and the attacker
    // already holds the file.
    if mac(&dk, &ciphertext).as_slice() != expected.as_slice() {
        return Err(KeyFileError::WrongPassphrase);
    }
    let mut plain = Zeroizing::new(ciphertext);
    Aes128Ctr::new(dk[..16].into(), &iv.into()).apply_keystream(&mut plain);
    SecretKey::from_bytes(&plain).map_err(|_| KeyFileError::BadKey)
}

/// Writes `contents` to a new file readable only by its owner. Refuses to overwrite.
pub fn write_private(path: &Path, contents: &str) -> Result<(), KeyFileError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// Loads a key file: a JSON keystore (needs `passphrase`) or a hex key.
pub fn load(path: &Path, passphrase: Option<&str>) -> Result<SecretKey, KeyFileError> {
    let text = Zeroizing::new(std::fs::read_to_string(path)?);
    if text.trim_start().starts_with('{') {
        decrypt_keystore(&text, passphrase.ok_or(KeyFileError::PassphraseNeeded)?)
    } else {
        SecretKey::from_hex(&text).map_err(|_| KeyFileError::BadKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystore_round_trip_and_wrong_passphrase() {
        let key = SecretKey::generate();
        let json = encrypt_keystore(&key, "pw", ScryptCost::LIGHT).unwrap();
        assert_eq!(decrypt_keystore(&json, "pw").unwrap().address(), key.address());
        assert!(matches!(decrypt_keystore(&json, "nope"), Err(KeyFileError::WrongPassphrase)));
        assert!(matches!(decrypt_keystore("{}", "pw"), Err(KeyFileError::Format(_))));
    }

    #[test]
    fn a_keystore_asking_for_too_much_scrypt_is_refused_before_deriving() {
        let key = SecretKey::from_bytes(&[3; 32]).unwrap();
        let json = encrypt_keystore(&key, "pw", ScryptCost { log_n: 1, r: 1, p: 1 }).unwrap();
        let with = |n: u64, r: u64, p: u64| {
            let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
            v["crypto"]["kdfparams"] = serde_json::json!({"dklen": 32, "n": n, "r": r, "p": p, "salt": "00"});
            decrypt_keystore(&v.to_string(), "pw")
        };
        // 128 · r · N bytes of memory: a terabyte here, the allocation would abort the process.
        assert!(matches!(with(1 << 20, 1 << 23, 1), Err(KeyFileError::Unsupported(_))));
        // N · r · p rounds: days of CPU.
        assert!(matches!(with(1 << 20, 8, 1 << 20), Err(KeyFileError::Unsupported(_))));
        // What go-ethereum writes still loads (here with a wrong MAC, after deriving).
        assert!(matches!(with(1 << 12, 8, 6), Err(KeyFileError::WrongPassphrase)));
    }

    #[test]
    fn files_are_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let key = SecretKey::generate();
        write_private(&path, &hex::encode(key.to_bytes().as_ref())).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(write_private(&path, "x").is_err());
        assert_eq!(load(&path, None).unwrap().address(), key.address());
    }
}
