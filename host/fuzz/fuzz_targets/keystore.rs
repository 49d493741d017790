//! Key files as the nodes load them: JSON keystores (version 3, scrypt + AES-128-CTR) and hex keys. A
//! keystore whose scrypt cost is beyond a tiny bound is skipped here (the parsing before the key
//! derivation is what is fuzzed; the bound on the cost is a unit test of its own), so that one run
//! stays fast.
#![no_main]

use byoc_payment::SecretKey;
use byoc_payment::keyfile::decrypt_keystore;
use libfuzzer_sys::fuzz_target;

/// The largest scrypt cost (N · r · p) run here.
const MAX_COST: u64 = 1 << 12;

/// The passphrase of the seed keystores.
const PASSPHRASE: &str = "byoc-fuzz";

fuzz_target!(|text: &str| {
    let passphrase = PASSPHRASE;
    let _ = SecretKey::from_hex(text);
    let cheap = serde_json::from_str::<serde_json::Value>(text).ok().is_some_and(|v| {
        let p = &v["crypto"]["kdfparams"];
        let field = |k: &str| p[k].as_u64().unwrap_or(0);
        field("n").saturating_mul(field("r")).saturating_mul(field("p")) <= MAX_COST
    });
    if cheap {
        let _ = decrypt_keystore(text, passphrase);
    }
});
