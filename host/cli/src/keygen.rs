//! `byoc keygen`: create a node key.

use std::path::PathBuf;

use anyhow::{Context, bail};
use byoc_payment::SecretKey;
use byoc_payment::keyfile::{self, ScryptCost};

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// File to write (created with mode 0600; never overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Encrypt as an Ethereum JSON keystore with the passphrase in this environment variable.
    #[arg(long, conflicts_with = "passphrase_file")]
    passphrase_env: Option<String>,
    /// Encrypt as an Ethereum JSON keystore with the passphrase in this file (first line).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    /// Use go-ethereum's light scrypt cost instead of the standard one (faster, weaker).
    #[arg(long)]
    light: bool,
}

pub fn run(args: KeygenArgs) -> anyhow::Result<()> {
    let passphrase = match (&args.passphrase_env, &args.passphrase_file) {
        (Some(var), _) => Some(std::env::var(var).with_context(|| format!("environment variable {var} is not set"))?),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Some(text.lines().next().unwrap_or_default().to_string())
        }
        (None, None) => None,
    };
    if passphrase.as_deref() == Some("") {
        bail!("the passphrase is empty");
    }
    if args.out.exists() {
        bail!("{} already exists; refusing to overwrite a key", args.out.display());
    }
    let key = SecretKey::generate();
    let contents = match &passphrase {
        Some(p) => {
            keyfile::encrypt_keystore(&key, p, if args.light { ScryptCost::LIGHT } else { ScryptCost::STANDARD })?
        }
        None => {
            eprintln!(
                "warning: writing an unencrypted hex key (development only); use --passphrase-env for a keystore"
            );
            format!("{}\n", hex_key(&key))
        }
    };
    keyfile::write_private(&args.out, &contents).with_context(|| format!("writing {}", args.out.display()))?;
    println!("{}", key.address());
    Ok(())
}

fn hex_key(key: &SecretKey) -> String {
    key.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Loads a node key file (JSON keystore with the passphrase in the environment variable
/// `passphrase_env`, or a hex key), if a path is given.
pub fn load_key(path: Option<&std::path::Path>, passphrase_env: &str) -> anyhow::Result<Option<SecretKey>> {
    let Some(path) = path else { return Ok(None) };
    let pass = std::env::var(passphrase_env).ok();
    let key = keyfile::load(path, pass.as_deref()).with_context(|| format!("loading {}", path.display()))?;
    Ok(Some(key))
}
