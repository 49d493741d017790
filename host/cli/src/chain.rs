//! On-chain mode's flags (`--eth-url`, `--eth-controller`), the connection they make, and
//! `byoc sender status|fund|unlock|cancel-unlock|withdraw`: a gateway key's deposit and reserve on the
//! TicketBroker.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use byoc_chain::Chain;
use byoc_payment::{Address, SecretKey, Wei};

/// Where the chain is. Both flags (or neither: off-chain mode) are needed.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ChainArgs {
    /// Ethereum JSON-RPC URL (http or https; on Livepeer: an Arbitrum One endpoint). Turns on on-chain mode.
    #[arg(long, env = "BYOC_ETH_URL", global = true)]
    pub eth_url: Option<String>,
    /// Address of Livepeer's Controller contract; every other contract's address is read from it.
    #[arg(long, env = "BYOC_ETH_CONTROLLER", global = true)]
    pub eth_controller: Option<String>,
    /// How often the chain is read for new blocks and rounds, in milliseconds [default: 5000].
    #[arg(long, global = true)]
    pub chain_poll_ms: Option<u64>,
}

impl ChainArgs {
    /// The flags merged with a config file's `eth_url`/`eth_controller`; `None` off chain.
    pub fn resolved(
        &self,
        url: Option<&String>,
        controller: Option<&String>,
    ) -> anyhow::Result<Option<(String, Address)>> {
        let url = self.eth_url.clone().or_else(|| url.cloned()).filter(|u| !u.is_empty());
        let controller = self.eth_controller.clone().or_else(|| controller.cloned()).filter(|c| !c.is_empty());
        match (url, controller) {
            (None, None) => Ok(None),
            (Some(u), Some(c)) => {
                let addr = c.parse::<Address>().map_err(|e| anyhow::anyhow!("--eth-controller {c:?}: {e}"))?;
                Ok(Some((u, addr)))
            }
            (Some(_), None) => bail!("--eth-url needs --eth-controller (the Controller contract's address)"),
            (None, Some(_)) => bail!("--eth-controller needs --eth-url (an Ethereum JSON-RPC endpoint)"),
        }
    }

    /// The poll interval.
    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.chain_poll_ms.unwrap_or(5000).max(50))
    }
}

/// Connects to the chain and resolves the contracts, or says clearly why not.
pub async fn connect(url: &str, controller: Address, key: Option<&SecretKey>) -> anyhow::Result<Arc<Chain>> {
    let chain = Chain::connect(url, controller, key)
        .await
        .with_context(|| format!("connecting to the chain at {url} (Controller {})", controller.to_checksum()))?;
    let c = chain.contracts();
    tracing::info!(
        rounds_manager = %c.rounds_manager,
        ticket_broker = %c.ticket_broker,
        bonding_manager = %c.bonding_manager,
        service_registry = %c.service_registry,
        "contracts resolved from the Controller"
    );
    Ok(Arc::new(chain))
}

/// An amount of wei: an integer (`1000000`), or a decimal with a unit (`0.5eth`, `20gwei`).
pub fn parse_wei(s: &str) -> Result<Wei, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, decimals) = if let Some(n) = t.strip_suffix("eth") {
        (n.trim(), 18u32)
    } else if let Some(n) = t.strip_suffix("gwei") {
        (n.trim(), 9)
    } else if let Some(n) = t.strip_suffix("wei") {
        (n.trim(), 0)
    } else {
        (t.as_str(), 0)
    };
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
        || frac.len() > decimals as usize
    {
        return Err(format!("{s:?} is not an amount of wei (e.g. 1000000, 20gwei, 0.5eth)"));
    }
    let digits = format!("{whole}{frac:0<width$}", width = decimals as usize);
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(Wei::zero());
    }
    digits.parse::<Wei>().map_err(|e| format!("{s:?}: {e}"))
}

/// What the sender's funds back, per ticket to one orchestrator: the deposit plus that orchestrator's share
/// of the reserve; `Err` (why) when it cannot pay at all (no funds, unlocking).
pub async fn backing(chain: &Chain, sender: Address) -> anyhow::Result<Result<Wei, String>> {
    let info = chain.sender_info(sender).await?;
    let pool = chain.pool_size().await?;
    let who = sender.to_checksum();
    if info.unlocking() {
        return Ok(Err(format!(
            "the gateway's key {who} is unlocking its deposit and reserve (withdraw round {}): orchestrators refuse \
             its tickets; `byoc sender cancel-unlock` to keep paying",
            info.withdraw_round
        )));
    }
    if info.deposit.is_zero() && info.reserve.is_zero() {
        return Ok(Err(format!(
            "the gateway's key {who} has no deposit and no reserve on the TicketBroker: fund it first \
             (byoc sender fund --key FILE --deposit 0.1eth --reserve 0.1eth)"
        )));
    }
    Ok(Ok(info.deposit.saturating_add(&info.reserve.div_floor(pool.max(1)))))
}

/// Keeps the gateway's view of what its funds back up to date (every `poll`; a failed read keeps the last).
pub fn watch_backing(gw: Arc<byoc_gateway::Gateway>, chain: Arc<Chain>, poll: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(poll).await;
            match backing(&chain, gw.address()).await {
                Ok(b) => {
                    if let Err(why) = &b {
                        tracing::warn!(reason = %why, "the gateway cannot pay");
                    }
                    gw.set_backing(Some(b));
                }
                Err(e) => tracing::warn!(error = %e, "the gateway's funds could not be read; the last reading stays"),
            }
        }
    })
}

/// On-chain discovery: the BondingManager's pool with each orchestrator's service URI, walked again when
/// the round or the pool's size changes (checked at most every `poll`) and at least every ten minutes.
pub struct PoolSource {
    chain: Arc<Chain>,
    poll: Duration,
    last: tokio::sync::Mutex<Option<PoolReading>>,
}

/// The pool as last walked.
struct PoolReading {
    /// When it was last checked.
    checked: std::time::Instant,
    /// When it was walked.
    walked: std::time::Instant,
    /// (round, pool size) it was walked at.
    at: (u64, u64),
    urls: Vec<String>,
}

/// The longest a walked pool is used without walking it again.
const POOL_MAX_AGE: Duration = Duration::from_secs(600);

/// Most orchestrators read from the pool (Livepeer's active set is 100).
const MAX_POOL: usize = 1000;

impl PoolSource {
    /// The pool of `chain`.
    pub fn new(chain: Arc<Chain>, poll: Duration) -> PoolSource {
        PoolSource { chain, poll, last: tokio::sync::Mutex::new(None) }
    }

    async fn walk(&self) -> Result<Vec<String>, byoc_chain::ChainError> {
        let pool = self.chain.pool(MAX_POOL).await?;
        Ok(pool
            .into_iter()
            .filter_map(|(addr, uri)| {
                let uri = uri.trim().trim_end_matches('/').to_string();
                if uri.starts_with("http://") || uri.starts_with("https://") {
                    Some(uri)
                } else {
                    tracing::debug!(orchestrator = %addr, uri, "pool entry without an http(s) service URI skipped");
                    None
                }
            })
            .collect())
    }
}

impl byoc_gateway::OrchestratorSource for PoolSource {
    fn name(&self) -> String {
        "on-chain pool".into()
    }

    fn urls(&self) -> futures_util::future::BoxFuture<'_, Result<Vec<String>, String>> {
        Box::pin(async move {
            let mut last = self.last.lock().await;
            if let Some(r) = last.as_ref()
                && r.checked.elapsed() < self.poll
            {
                return Ok(r.urls.clone());
            }
            let now = match byoc_chain::watcher::read_state(&self.chain).await {
                Ok(st) => (st.point.round, st.pool_size),
                Err(e) => match last.as_ref() {
                    Some(r) => {
                        tracing::warn!(error = %e, "chain unreadable; the last pool kept");
                        return Ok(r.urls.clone());
                    }
                    None => return Err(e.to_string()),
                },
            };
            if let Some(r) = last.as_mut()
                && r.at == now
                && r.walked.elapsed() < POOL_MAX_AGE
            {
                r.checked = std::time::Instant::now();
                return Ok(r.urls.clone());
            }
            let urls = self.walk().await.map_err(|e| e.to_string())?;
            tracing::info!(round = now.0, orchestrators = urls.len(), "on-chain pool read");
            let t = std::time::Instant::now();
            *last = Some(PoolReading { checked: t, walked: t, at: now, urls: urls.clone() });
            Ok(urls)
        })
    }
}

#[derive(clap::Args)]
pub struct SenderArgs {
    #[command(subcommand)]
    command: SenderCommand,
    /// The sender's key file (the gateway's `--key`).
    #[arg(long, global = true)]
    key: Option<PathBuf>,
    /// Environment variable holding the keystore passphrase.
    #[arg(long, default_value = "BYOC_KEY_PASSPHRASE", global = true)]
    passphrase_env: String,
    #[command(flatten)]
    chain: ChainArgs,
}

#[derive(clap::Subcommand)]
enum SenderCommand {
    /// Deposit, reserve and unlock state of the key's address (or `--address`).
    Status {
        /// Another sender's address (read only; no key needed).
        #[arg(long)]
        address: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add to the deposit and/or the reserve, paid from the key's ETH.
    Fund {
        /// Added to the deposit (pays winning tickets first): wei, or e.g. `0.1eth`.
        #[arg(long, value_parser = parse_wei)]
        deposit: Option<Wei>,
        /// Added to the reserve (guarantees tickets beyond the deposit; split over the pool).
        #[arg(long, value_parser = parse_wei)]
        reserve: Option<Wei>,
    },
    /// Start the unlock period; orchestrators refuse an unlocking sender's tickets.
    Unlock,
    /// Stop an unlock in progress.
    CancelUnlock,
    /// After the unlock period: the deposit and the reserve back to the key.
    Withdraw,
}

pub async fn run(args: SenderArgs) -> anyhow::Result<()> {
    let Some((url, controller)) = args.chain.resolved(None, None)? else {
        bail!("byoc sender needs --eth-url and --eth-controller (or BYOC_ETH_URL and BYOC_ETH_CONTROLLER)");
    };
    let key = crate::keygen::load_key(args.key.as_deref(), &args.passphrase_env)?;
    let needs_key = !matches!(args.command, SenderCommand::Status { address: Some(_), .. });
    if needs_key && key.is_none() {
        bail!("give the sender's key (--key FILE)");
    }
    let chain = connect(&url, controller, key.as_ref()).await?;
    let me = key.as_ref().map(SecretKey::address);
    let tx = |h: [u8; 32]| format!("0x{}", hex_string(&h));
    match args.command {
        SenderCommand::Status { address, json } => {
            let who = match address {
                Some(a) => a.parse::<Address>().map_err(|e| anyhow::anyhow!("--address {a:?}: {e}"))?,
                None => me.context("give --address or --key")?,
            };
            let info = chain.sender_info(who).await?;
            let state = byoc_chain::watcher::read_state(&chain).await?;
            let balance = chain.balance(who).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "address": who.to_checksum(),
                        "deposit": info.deposit.to_string(),
                        "reserve": info.reserve.to_string(),
                        "claimed_in_round": info.claimed_in_round.to_string(),
                        "withdraw_round": info.withdraw_round,
                        "unlocking": info.unlocking(),
                        "round": state.current_round,
                        "pool_size": state.pool_size,
                        "eth_balance": balance.to_string(),
                    })
                );
            } else {
                println!("sender       {}", who.to_checksum());
                println!("deposit      {} wei", info.deposit);
                println!("reserve      {} wei ({} claimed this round)", info.reserve, info.claimed_in_round);
                println!(
                    "pool         {} orchestrators (each may claim 1/{} of the reserve)",
                    state.pool_size,
                    state.pool_size.max(1)
                );
                match info.withdraw_round {
                    0 => println!("unlock       not unlocking"),
                    r if r <= state.current_round => {
                        println!("unlock       ended in round {r}: `byoc sender withdraw` now")
                    }
                    r => println!("unlock       in progress, withdraw from round {r} (now {})", state.current_round),
                }
                println!("ETH balance  {balance} wei");
            }
        }
        SenderCommand::Fund { deposit, reserve } => {
            let (d, r) = (deposit.unwrap_or_default(), reserve.unwrap_or_default());
            let h = chain.fund(&d, &r).await?;
            println!("funded: deposit +{d} wei, reserve +{r} wei (transaction {})", tx(h));
        }
        SenderCommand::Unlock => {
            let h = chain.unlock().await?;
            let info = chain.sender_info(me.context("a key is needed")?).await?;
            println!("unlocking: withdraw from round {} (transaction {})", info.withdraw_round, tx(h));
        }
        SenderCommand::CancelUnlock => println!("unlock cancelled (transaction {})", tx(chain.cancel_unlock().await?)),
        SenderCommand::Withdraw => println!("withdrawn (transaction {})", tx(chain.withdraw().await?)),
    }
    Ok(())
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_wei("1000").unwrap(), Wei::from_u128(1000));
        assert_eq!(parse_wei("20gwei").unwrap(), Wei::from_u128(20_000_000_000));
        assert_eq!(parse_wei("0.5eth").unwrap(), Wei::from_u128(500_000_000_000_000_000));
        assert_eq!(parse_wei("1.25 ETH").unwrap(), Wei::from_u128(1_250_000_000_000_000_000));
        assert_eq!(parse_wei("0").unwrap(), Wei::zero());
        for bad in ["", "eth", "1.5", "-1", "0x10", "1e18", "0.0000000001gwei"] {
            assert!(parse_wei(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn both_chain_flags_or_neither() {
        let none = ChainArgs::default();
        assert!(none.resolved(None, None).unwrap().is_none());
        let url_only = ChainArgs { eth_url: Some("http://127.0.0.1:8545".into()), ..ChainArgs::default() };
        assert!(url_only.resolved(None, None).unwrap_err().to_string().contains("--eth-controller"));
        let c = "0x00000000000000000000000000000000000000aa".to_string();
        let (u, a) = url_only.resolved(None, Some(&c)).unwrap().unwrap();
        assert_eq!(
            (u.as_str(), a),
            (
                "http://127.0.0.1:8545",
                Address({
                    let mut b = [0; 20];
                    b[19] = 0xaa;
                    b
                })
            )
        );
    }
}
