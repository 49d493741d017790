//! A local test chain for on-chain mode: anvil (from npm) with the project's own contracts
//! (`tests/chain/contracts/`, compiled with solc-js), which implement the subset of Livepeer's
//! protocol ABI byoc calls.
//!
//! - Tools: `BYOC_ANVIL` and `BYOC_SOLCJS` (set by `cargo xtask test`), else the `target/npm`
//!   install `cargo xtask install` makes. [`tools_available`] says whether a test can run: a missing
//!   tool is a skip with a message, or an error when `BYOC_REQUIRE_PEERS=1`.
//! - [`TestChain::start`] runs anvil on 127.0.0.1 (a free port, `--silent`), deploys the contracts
//!   from anvil's first dev account, registers them in the Controller under `keccak256(name)` and
//!   initializes round 1. The contracts are compiled once per process and cached by source hash in
//!   `target/tmp/chain-contracts/`.
//! - Gas price: anvil runs with EIP-1559 and `--disable-min-priority-fee`, so `eth_gasPrice` is the
//!   next block's base fee. [`TestChain::set_gas_price`] sets that base fee
//!   (`anvil_setNextBlockBaseFeePerGas`; `anvil_setMinGasPrice` is refused while EIP-1559 is
//!   active): the next block's transactions must offer at least that much per gas and pay it. Each
//!   mined block then moves the base fee by the EIP-1559 rule (an empty block lowers it by 1/8), so
//!   the harness's own mining ([`TestChain::mine`], [`TestChain::initialize_round`]) sets it again.
//!
//! The anvil child is killed when the [`TestChain`] is dropped.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, FixedBytes, U64, U256, keccak256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol;
use alloy::sol_types::SolValue;
use anyhow::{Context, Result, anyhow, bail, ensure};
use byoc_payment::{
    ExpirationParams, Payment, SecretKey, Signature, Ticket, TicketParams, Wei, WinProb, WinningTicket, random_hex,
};
use tokio::process::{Child, Command};

use crate::nodes::root;
use crate::peers_required;

sol! {
    /// The test chain's contracts as the harness drives them: byoc's ABI subset plus the test-only
    /// administration (registration, round initialization, pool membership).
    #[sol(rpc)]
    interface Controller {
        function owner() external view returns (address);
        function setContractInfo(bytes32 id, address contractAddress, bytes20 gitCommitHash) external;
        function getContract(bytes32 id) external view returns (address);
    }

    #[sol(rpc)]
    interface RoundsManager {
        event NewRound(uint256 indexed round, bytes32 blockHash);
        function roundLength() external view returns (uint256);
        function currentRound() external view returns (uint256);
        function currentRoundStartBlock() external view returns (uint256);
        function lastInitializedRound() external view returns (uint256);
        function currentRoundInitialized() external view returns (bool);
        function initializeRound() external;
        function blockHashForRound(uint256 round) external view returns (bytes32);
    }

    struct SolTicket {
        address recipient;
        address sender;
        uint256 faceValue;
        uint256 winProb;
        uint256 senderNonce;
        bytes32 recipientRandHash;
        bytes auxData;
    }

    struct SolSender {
        uint256 deposit;
        uint256 withdrawRound;
    }

    struct SolReserveInfo {
        uint256 fundsRemaining;
        uint256 claimedInCurrentRound;
    }

    #[sol(rpc)]
    interface TicketBroker {
        event WinningTicketTransfer(address indexed sender, address indexed recipient, uint256 amount);
        function fundDeposit() external payable;
        function fundReserve() external payable;
        function fundDepositAndReserve(uint256 depositAmount, uint256 reserveAmount) external payable;
        function unlock() external;
        function cancelUnlock() external;
        function withdraw() external;
        function redeemWinningTicket(SolTicket ticket, bytes sig, uint256 recipientRand) external;
        function getSenderInfo(address sender) external view returns (SolSender sender, SolReserveInfo reserve);
        function claimedReserve(address reserveHolder, address claimant) external view returns (uint256);
        function usedTickets(bytes32 ticketHash) external view returns (bool);
    }

    #[sol(rpc)]
    interface BondingManager {
        function addTranscoder(address transcoder, uint256 stake) external;
        function removeTranscoder(address transcoder) external;
        function getTranscoderPoolSize() external view returns (uint256);
        function getFirstTranscoderInPool() external view returns (address);
        function getNextTranscoderInPool(address transcoder) external view returns (address);
        function isActiveTranscoder(address transcoder) external view returns (bool);
    }

    #[sol(rpc)]
    interface ServiceRegistry {
        function setServiceURI(string serviceURI) external;
        function getServiceURI(address addr) external view returns (string);
    }
}

/// The contracts, in deployment order: (name, source file).
pub const CONTRACTS: [(&str, &str); 5] = [
    ("Controller", "Controller.sol"),
    ("RoundsManager", "RoundsManager.sol"),
    ("BondingManager", "BondingManager.sol"),
    ("ServiceRegistry", "ServiceRegistry.sol"),
    ("TicketBroker", "TicketBroker.sol"),
];

/// Sources that hold no deployed contract (shared interfaces); they are part of the source hash.
const SUPPORT_SOURCES: [&str; 1] = ["Interfaces.sol"];

/// Anvil's ten dev accounts' private keys (from its default mnemonic
/// `test test test test test test test test test test test junk`), each funded with 10,000 ETH.
pub const DEV_KEYS: [&str; 10] = [
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
];

/// Anvil's dev account `i` (0..10). Account 0 deploys and owns the contracts.
pub fn dev_key(i: usize) -> Result<SecretKey> {
    let hex = DEV_KEYS.get(i).with_context(|| format!("anvil has {} dev accounts, not {}", DEV_KEYS.len(), i + 1))?;
    SecretKey::from_hex(hex).with_context(|| format!("dev key {i}"))
}

/// The alloy address of a byoc key.
pub fn address_of(key: &SecretKey) -> Address {
    Address::from(key.address().0)
}

/// A byoc key as an alloy signer.
pub fn signer(key: &SecretKey) -> Result<PrivateKeySigner> {
    PrivateKeySigner::from_slice(key.to_bytes().as_ref()).context("converting a byoc key to an alloy signer")
}

/// `keccak256(name)`, the Controller's id for a contract.
pub fn contract_id(name: &str) -> B256 {
    keccak256(name.as_bytes())
}

/// The anvil binary: `BYOC_ANVIL`, else `target/npm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil`.
pub fn anvil_path() -> PathBuf {
    std::env::var_os("BYOC_ANVIL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/npm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"))
}

/// solc-js's command: `BYOC_SOLCJS`, else `target/npm/node_modules/.bin/solcjs`.
pub fn solcjs_path() -> PathBuf {
    std::env::var_os("BYOC_SOLCJS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/npm/node_modules/.bin/solcjs"))
}

/// Whether anvil and solc-js are installed. A missing one makes this `Ok(false)` after printing
/// that `test` is skipped, or an error when the run requires every tool (`BYOC_REQUIRE_PEERS=1`).
pub fn tools_available(test: &str) -> Result<bool> {
    let missing: Vec<String> = [("anvil", anvil_path()), ("solc-js", solcjs_path())]
        .into_iter()
        .filter(|(_, p)| !p.is_file())
        .map(|(what, p)| format!("{what} ({})", p.display()))
        .collect();
    if missing.is_empty() {
        return Ok(true);
    }
    let why = format!("{} not found", missing.join(" and "));
    if peers_required() {
        bail!("{test}: the test chain's tools are required (BYOC_REQUIRE_PEERS=1) but {why}");
    }
    eprintln!("{test}: skipped: {why}; run `cargo xtask install` (or `cargo xtask test`), which installs them");
    Ok(false)
}

/// The compiled contracts: creation bytecode and ABI (JSON) by contract name.
#[derive(Debug)]
pub struct Compiled {
    bins: HashMap<String, Vec<u8>>,
    abis: HashMap<String, serde_json::Value>,
}

impl Compiled {
    /// The creation bytecode of `name`.
    pub fn bytecode(&self, name: &str) -> Result<&[u8]> {
        self.bins.get(name).map(Vec::as_slice).with_context(|| format!("no compiled contract {name}"))
    }

    /// The ABI of `name`, as solc wrote it.
    pub fn abi(&self, name: &str) -> Result<&serde_json::Value> {
        self.abis.get(name).with_context(|| format!("no ABI for contract {name}"))
    }
}

/// `tests/chain/contracts`.
pub fn contracts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("chain").join("contracts")
}

/// The contracts compiled with solc-js (once per process; cached across processes by source hash).
pub async fn compiled() -> Result<&'static Compiled> {
    static COMPILED: tokio::sync::OnceCell<Compiled> = tokio::sync::OnceCell::const_new();
    COMPILED.get_or_try_init(compile).await
}

async fn compile() -> Result<Compiled> {
    let dir = contracts_dir();
    let files: Vec<&str> = CONTRACTS.iter().map(|(_, f)| *f).chain(SUPPORT_SOURCES).collect();
    let mut hashed = Vec::new();
    for f in &files {
        let src = std::fs::read(dir.join(f)).with_context(|| format!("reading {}", dir.join(f).display()))?;
        hashed.extend_from_slice(f.as_bytes());
        hashed.extend_from_slice(&keccak256(&src).0);
    }
    // The compiler: its path and when its script was installed (a reinstall, e.g. another
    // version, compiles afresh).
    let solcjs = solcjs_path();
    hashed.extend_from_slice(solcjs.to_string_lossy().as_bytes());
    let installed = std::fs::metadata(&solcjs).and_then(|m| m.modified()).ok();
    hashed.extend_from_slice(format!("{installed:?}").as_bytes());
    let key = keccak256(&hashed);
    let cache_root = root().join("target/tmp/chain-contracts");
    let cached = cache_root.join(alloy::hex::encode(&key.0[..8]));
    if !cached.join(".complete").is_file() {
        std::fs::create_dir_all(&cache_root).with_context(|| format!("creating {}", cache_root.display()))?;
        let out = tempfile::tempdir_in(&cache_root).context("creating a temporary directory for solc-js")?;
        let result = Command::new(&solcjs)
            .current_dir(&dir)
            .args(["--bin", "--abi", "--optimize", "--base-path", "."])
            .arg("-o")
            .arg(out.path())
            .args(&files)
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("running {}", solcjs.display()))?;
        if !result.status.success() {
            bail!(
                "solc-js failed ({}) compiling {}:\n{}{}",
                result.status,
                dir.display(),
                String::from_utf8_lossy(&result.stdout),
                String::from_utf8_lossy(&result.stderr)
            );
        }
        std::fs::write(out.path().join(".complete"), b"").context("marking the compiled contracts complete")?;
        let tmp = out.keep();
        // Another process may have compiled the same sources meanwhile: then theirs is kept.
        if std::fs::rename(&tmp, &cached).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
            ensure!(
                cached.join(".complete").is_file(),
                "could not place the compiled contracts in {}",
                cached.display()
            );
        }
    }
    let mut compiled = Compiled { bins: HashMap::new(), abis: HashMap::new() };
    for (name, file) in CONTRACTS {
        let stem = format!("{}_sol_{name}", file.trim_end_matches(".sol"));
        let bin_path = cached.join(format!("{stem}.bin"));
        let bin = std::fs::read_to_string(&bin_path).with_context(|| format!("reading {}", bin_path.display()))?;
        let bin = alloy::hex::decode(bin.trim()).with_context(|| format!("{} is not hex", bin_path.display()))?;
        ensure!(!bin.is_empty(), "{} is empty (an abstract contract?)", bin_path.display());
        let abi_path = cached.join(format!("{stem}.abi"));
        let abi = std::fs::read(&abi_path).with_context(|| format!("reading {}", abi_path.display()))?;
        let abi = serde_json::from_slice(&abi).with_context(|| format!("{} is not JSON", abi_path.display()))?;
        compiled.bins.insert(name.to_string(), bin);
        compiled.abis.insert(name.to_string(), abi);
    }
    Ok(compiled)
}

/// The chain's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainOptions {
    /// Blocks per round.
    pub round_length: u64,
    /// Rounds from `unlock()` until `withdraw()` is allowed.
    pub unlock_period: u64,
    /// Rounds a ticket stays redeemable: `creationRound + ticketValidityPeriod > currentRound`.
    pub ticket_validity_period: u64,
}

impl Default for ChainOptions {
    fn default() -> Self {
        ChainOptions { round_length: 20, unlock_period: 2, ticket_validity_period: 2 }
    }
}

/// A sender's funds as the TicketBroker reports them (`getSenderInfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderInfo {
    /// The deposit, in wei.
    pub deposit: U256,
    /// The round from which `withdraw()` is allowed; 0 when not unlocking.
    pub withdraw_round: U256,
    /// What is left of the reserve, in wei.
    pub funds_remaining: U256,
    /// What was claimed from the reserve in the current round.
    pub claimed_in_round: U256,
}

/// A running anvil with the contracts deployed. Dropping it kills anvil.
pub struct TestChain {
    /// The JSON-RPC endpoint, `http://127.0.0.1:PORT`.
    pub url: String,
    /// The Controller (every other address is registered in it).
    pub controller: Address,
    /// The RoundsManager.
    pub rounds_manager: Address,
    /// The TicketBroker.
    pub ticket_broker: Address,
    /// The BondingManager (the transcoder pool).
    pub bonding_manager: Address,
    /// The ServiceRegistry.
    pub service_registry: Address,
    /// The settings it was started with.
    pub options: ChainOptions,
    /// Anvil's dev account 0: deployed and owns the contracts.
    pub owner: Address,
    provider: DynProvider,
    admin: DynProvider,
    gas_price: Mutex<Option<u128>>,
    anvil: Child,
}

impl std::fmt::Debug for TestChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestChain").field("url", &self.url).field("options", &self.options).finish_non_exhaustive()
    }
}

impl Drop for TestChain {
    fn drop(&mut self) {
        let _ = self.anvil.start_kill();
    }
}

impl TestChain {
    /// A chain with the default [`ChainOptions`].
    pub async fn start() -> Result<TestChain> {
        TestChain::start_with(ChainOptions::default()).await
    }

    /// Starts anvil, deploys and registers the contracts and initializes round 1.
    pub async fn start_with(options: ChainOptions) -> Result<TestChain> {
        ensure!(options.round_length > 0, "the round length must be positive");
        ensure!(options.ticket_validity_period > 0, "the ticket validity period must be positive");
        let compiled = compiled().await?;
        let (anvil, url) = spawn_anvil().await?;
        let provider = ProviderBuilder::new().connect_http(url.parse().context("anvil's URL")?).erased();
        let owner_key = dev_key(0)?;
        let admin = wallet_provider(&url, &owner_key)?;
        let mut chain = TestChain {
            url,
            controller: Address::ZERO,
            rounds_manager: Address::ZERO,
            ticket_broker: Address::ZERO,
            bonding_manager: Address::ZERO,
            service_registry: Address::ZERO,
            options,
            owner: address_of(&owner_key),
            provider,
            admin,
            gas_price: Mutex::new(None),
            anvil,
        };
        chain.deploy(compiled).await.context("deploying the test chain's contracts")?;
        chain.initialize_round().await.context("initializing round 1")?;
        Ok(chain)
    }

    async fn deploy(&mut self, compiled: &Compiled) -> Result<()> {
        self.controller = self.deploy_one(compiled, "Controller", Vec::new()).await?;
        self.rounds_manager =
            self.deploy_one(compiled, "RoundsManager", U256::from(self.options.round_length).abi_encode()).await?;
        self.bonding_manager = self.deploy_one(compiled, "BondingManager", self.controller.abi_encode()).await?;
        self.service_registry = self.deploy_one(compiled, "ServiceRegistry", Vec::new()).await?;
        let broker_args =
            (self.controller, U256::from(self.options.unlock_period), U256::from(self.options.ticket_validity_period))
                .abi_encode_params();
        self.ticket_broker = self.deploy_one(compiled, "TicketBroker", broker_args).await?;
        let controller = Controller::new(self.controller, &self.admin);
        for (name, address) in [
            ("RoundsManager", self.rounds_manager),
            ("BondingManager", self.bonding_manager),
            ("ServiceRegistry", self.service_registry),
            ("TicketBroker", self.ticket_broker),
        ] {
            let tx =
                controller.setContractInfo(contract_id(name), address, FixedBytes::ZERO).into_transaction_request();
            self.transact(&self.admin, tx, &format!("registering {name} in the Controller")).await?;
        }
        Ok(())
    }

    async fn deploy_one(&self, compiled: &Compiled, name: &str, args: Vec<u8>) -> Result<Address> {
        let mut code = compiled.bytecode(name)?.to_vec();
        code.extend_from_slice(&args);
        let tx = TransactionRequest::default().with_deploy_code(Bytes::from(code));
        let receipt = self.transact(&self.admin, tx, &format!("deploying {name}")).await?;
        receipt.contract_address.with_context(|| format!("deploying {name}: the receipt names no contract"))
    }

    /// Sends `tx` through `provider` (which signs it), waits for its receipt and fails unless it
    /// succeeded. A transaction that would revert fails at gas estimation, with the revert reason.
    pub async fn transact(
        &self,
        provider: &DynProvider,
        tx: TransactionRequest,
        what: &str,
    ) -> Result<TransactionReceipt> {
        let pending =
            provider.send_transaction(tx).await.with_context(|| format!("{what}: sending the transaction"))?;
        let hash = *pending.tx_hash();
        let receipt = self.receipt(hash).await.with_context(|| format!("{what}: waiting for the receipt"))?;
        ensure!(receipt.status(), "{what}: transaction {hash} reverted");
        self.reapply_gas_price().await?;
        Ok(receipt)
    }

    /// The receipt of transaction `hash`, polled for up to 30 s (anvil mines each transaction as
    /// it arrives, so it is there at once unless the transaction is stuck).
    pub async fn receipt(&self, hash: B256) -> Result<TransactionReceipt> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(r) = self.provider.get_transaction_receipt(hash).await.context("eth_getTransactionReceipt")? {
                return Ok(r);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("transaction {hash} has no receipt after 30 s (not mined: a nonce gap or too low a fee?)");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A provider that signs with `key` (any account; fund it first unless it is a dev account).
    pub fn provider_for(&self, key: &SecretKey) -> Result<DynProvider> {
        wallet_provider(&self.url, key)
    }

    /// A provider without a wallet, for reads and raw RPC calls.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// Mines `blocks` empty blocks (`anvil_mine`).
    pub async fn mine(&self, blocks: u64) -> Result<()> {
        if blocks == 0 {
            return Ok(());
        }
        let _: serde_json::Value = self
            .provider
            .raw_request("anvil_mine".into(), (U64::from(blocks),))
            .await
            .with_context(|| format!("anvil_mine {blocks}"))?;
        self.reapply_gas_price().await
    }

    /// The latest block's number.
    pub async fn block_number(&self) -> Result<u64> {
        self.provider.get_block_number().await.context("eth_blockNumber")
    }

    /// The round the latest block is in (`RoundsManager.currentRound()`).
    pub async fn current_round(&self) -> Result<u64> {
        let r = RoundsManager::new(self.rounds_manager, &self.provider).currentRound().call().await;
        to_u64(r.context("RoundsManager.currentRound")?, "current round")
    }

    /// `RoundsManager.lastInitializedRound()`.
    pub async fn last_initialized_round(&self) -> Result<u64> {
        let r = RoundsManager::new(self.rounds_manager, &self.provider).lastInitializedRound().call().await;
        to_u64(r.context("RoundsManager.lastInitializedRound")?, "last initialized round")
    }

    /// `RoundsManager.blockHashForRound(round)`: zero for a round never initialized.
    pub async fn block_hash_for_round(&self, round: u64) -> Result<[u8; 32]> {
        let h =
            RoundsManager::new(self.rounds_manager, &self.provider).blockHashForRound(U256::from(round)).call().await;
        Ok(h.context("RoundsManager.blockHashForRound")?.0)
    }

    /// The expiration params an orchestrator puts in its tickets now: the last initialized round
    /// and its block hash.
    pub async fn expiration_params(&self) -> Result<ExpirationParams> {
        let round = self.last_initialized_round().await?;
        Ok(ExpirationParams {
            creation_round: i64::try_from(round).context("round does not fit in i64")?,
            creation_round_block_hash: self.block_hash_for_round(round).await?,
        })
    }

    /// Initializes the next round that is not yet initialized: if the current round already is,
    /// mines up to the next round's first block first. Returns the round initialized.
    pub async fn initialize_round(&self) -> Result<u64> {
        let rounds = RoundsManager::new(self.rounds_manager, &self.admin);
        let length = self.options.round_length;
        // The transaction lands in the block after the latest.
        let next_block = self.block_number().await? + 1;
        let mut round = next_block / length;
        let initialized = rounds.lastInitializedRound().call().await.context("RoundsManager.lastInitializedRound")?;
        if round == 0 || initialized == U256::from(round) {
            round += 1;
            self.mine(round * length - next_block).await?;
        }
        let tx = rounds.initializeRound().into_transaction_request();
        self.transact(&self.admin, tx, &format!("initializing round {round}")).await?;
        Ok(round)
    }

    /// Makes `wei` the gas price: what `eth_gasPrice` returns and what the next block's
    /// transactions pay per gas (its base fee; see the module docs). Held across the harness's
    /// own blocks; a block mined by someone else's transaction lowers the following one's by the
    /// EIP-1559 rule until the harness mines or transacts again.
    pub async fn set_gas_price(&self, wei: u128) -> Result<()> {
        *self.gas_price.lock().unwrap_or_else(|e| e.into_inner()) = Some(wei);
        self.reapply_gas_price().await
    }

    async fn reapply_gas_price(&self) -> Result<()> {
        let price = *self.gas_price.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(wei) = price {
            let _: serde_json::Value = self
                .provider
                .raw_request("anvil_setNextBlockBaseFeePerGas".into(), (U256::from(wei),))
                .await
                .context("anvil_setNextBlockBaseFeePerGas")?;
        }
        Ok(())
    }

    /// `eth_gasPrice`.
    pub async fn gas_price(&self) -> Result<u128> {
        self.provider.get_gas_price().await.context("eth_gasPrice")
    }

    /// The balance of `addr`, in wei.
    pub async fn balance(&self, addr: Address) -> Result<U256> {
        self.provider.get_balance(addr).await.with_context(|| format!("eth_getBalance {addr}"))
    }

    /// Sets the balance of `addr` (`anvil_setBalance`).
    pub async fn set_balance(&self, addr: Address, wei: U256) -> Result<()> {
        let _: serde_json::Value = self
            .provider
            .raw_request("anvil_setBalance".into(), (addr, wei))
            .await
            .with_context(|| format!("anvil_setBalance {addr}"))?;
        Ok(())
    }

    /// Funds `key`'s deposit and reserve (`fundDepositAndReserve`).
    pub async fn fund_sender(&self, key: &SecretKey, deposit: U256, reserve: U256) -> Result<TransactionReceipt> {
        let p = self.provider_for(key)?;
        let tx = TicketBroker::new(self.ticket_broker, &p)
            .fundDepositAndReserve(deposit, reserve)
            .value(deposit + reserve)
            .into_transaction_request();
        self.transact(&p, tx, "funding a sender's deposit and reserve").await
    }

    /// `getSenderInfo(addr)`.
    pub async fn sender_info(&self, addr: Address) -> Result<SenderInfo> {
        let info = TicketBroker::new(self.ticket_broker, &self.provider)
            .getSenderInfo(addr)
            .call()
            .await
            .context("TicketBroker.getSenderInfo")?;
        Ok(SenderInfo {
            deposit: info.sender.deposit,
            withdraw_round: info.sender.withdrawRound,
            funds_remaining: info.reserve.fundsRemaining,
            claimed_in_round: info.reserve.claimedInCurrentRound,
        })
    }

    /// `claimedReserve(holder, claimant)`: what `claimant` claimed from `holder`'s reserve this round.
    pub async fn claimed_reserve(&self, holder: Address, claimant: Address) -> Result<U256> {
        TicketBroker::new(self.ticket_broker, &self.provider)
            .claimedReserve(holder, claimant)
            .call()
            .await
            .context("TicketBroker.claimedReserve")
    }

    /// `key` starts its unlock period.
    pub async fn unlock(&self, key: &SecretKey) -> Result<TransactionReceipt> {
        let p = self.provider_for(key)?;
        let tx = TicketBroker::new(self.ticket_broker, &p).unlock().into_transaction_request();
        self.transact(&p, tx, "unlock").await
    }

    /// `key` cancels its unlock period.
    pub async fn cancel_unlock(&self, key: &SecretKey) -> Result<TransactionReceipt> {
        let p = self.provider_for(key)?;
        let tx = TicketBroker::new(self.ticket_broker, &p).cancelUnlock().into_transaction_request();
        self.transact(&p, tx, "cancelUnlock").await
    }

    /// `key` withdraws its deposit and reserve (after its unlock period).
    pub async fn withdraw(&self, key: &SecretKey) -> Result<TransactionReceipt> {
        let p = self.provider_for(key)?;
        let tx = TicketBroker::new(self.ticket_broker, &p).withdraw().into_transaction_request();
        self.transact(&p, tx, "withdraw").await
    }

    /// Adds `key`'s account to the transcoder pool with `stake` (by the owner) and sets its service
    /// URI (by the account itself).
    pub async fn add_orchestrator(&self, key: &SecretKey, stake: U256, service_uri: &str) -> Result<()> {
        let tx = BondingManager::new(self.bonding_manager, &self.admin)
            .addTranscoder(address_of(key), stake)
            .into_transaction_request();
        self.transact(&self.admin, tx, "adding an orchestrator to the pool").await?;
        let p = self.provider_for(key)?;
        let tx = ServiceRegistry::new(self.service_registry, &p)
            .setServiceURI(service_uri.to_string())
            .into_transaction_request();
        self.transact(&p, tx, "setting an orchestrator's service URI").await?;
        Ok(())
    }

    /// Removes `addr` from the transcoder pool (by the owner).
    pub async fn remove_orchestrator(&self, addr: Address) -> Result<()> {
        let tx =
            BondingManager::new(self.bonding_manager, &self.admin).removeTranscoder(addr).into_transaction_request();
        self.transact(&self.admin, tx, "removing an orchestrator from the pool").await?;
        Ok(())
    }

    /// The pool, walked from `getFirstTranscoderInPool` with `getNextTranscoderInPool`.
    pub async fn pool(&self) -> Result<Vec<Address>> {
        let bm = BondingManager::new(self.bonding_manager, &self.provider);
        let size = bm.getTranscoderPoolSize().call().await.context("BondingManager.getTranscoderPoolSize")?;
        let mut out = Vec::new();
        let mut next = bm.getFirstTranscoderInPool().call().await.context("BondingManager.getFirstTranscoderInPool")?;
        while !next.is_zero() {
            ensure!(U256::from(out.len()) < size, "the pool's list is longer than its size {size}");
            out.push(next);
            next = bm.getNextTranscoderInPool(next).call().await.context("BondingManager.getNextTranscoderInPool")?;
        }
        Ok(out)
    }

    /// `ServiceRegistry.getServiceURI(addr)`.
    pub async fn service_uri(&self, addr: Address) -> Result<String> {
        ServiceRegistry::new(self.service_registry, &self.provider)
            .getServiceURI(addr)
            .call()
            .await
            .context("ServiceRegistry.getServiceURI")
    }

    /// `TicketBroker.usedTickets(hash)`.
    pub async fn used_ticket(&self, hash: [u8; 32]) -> Result<bool> {
        TicketBroker::new(self.ticket_broker, &self.provider)
            .usedTickets(B256::from(hash))
            .call()
            .await
            .context("TicketBroker.usedTickets")
    }

    /// Redeems `ticket` with `sig` and the recipient's `rand`, sent (and paid for) by `key`.
    pub async fn redeem(
        &self,
        key: &SecretKey,
        ticket: &Ticket,
        sig: &Signature,
        rand: &[u8; 32],
    ) -> Result<TransactionReceipt> {
        let p = self.provider_for(key)?;
        let tx = TicketBroker::new(self.ticket_broker, &p)
            .redeemWinningTicket(sol_ticket(ticket)?, Bytes::copy_from_slice(&sig.0), U256::from_be_bytes(*rand))
            .into_transaction_request();
        self.transact(&p, tx, &format!("redeeming ticket nonce {}", ticket.sender_nonce)).await
    }

    /// Fresh ticket params for `recipient` with the chain's current expiration params (the last
    /// initialized round and its block hash), a new random number and seed, expiring 40 blocks on.
    pub async fn issue(&self, recipient: byoc_payment::Address, face_value: Wei, win_prob: WinProb) -> Result<Issued> {
        let expiration = self.expiration_params().await?;
        self.issue_with(recipient, face_value, win_prob, expiration).await
    }

    /// [`issue`](Self::issue) with the given expiration params (e.g. a wrong block hash).
    pub async fn issue_with(
        &self,
        recipient: byoc_payment::Address,
        face_value: Wei,
        win_prob: WinProb,
        expiration: ExpirationParams,
    ) -> Result<Issued> {
        let rand = random32()?;
        let params = TicketParams {
            recipient,
            face_value,
            win_prob,
            recipient_rand_hash: keccak256(rand).0,
            seed: random32()?,
            expiration_block: self.block_number().await? + 40,
            expiration_params: expiration,
        };
        Ok(Issued { rand, params })
    }

    /// [`redeem`](Self::redeem) of a recipient's [`WinningTicket`].
    pub async fn redeem_winning(&self, key: &SecretKey, winning: &WinningTicket) -> Result<TransactionReceipt> {
        self.redeem(key, &winning.ticket, &winning.sig, &winning.recipient_rand).await
    }
}

/// A recipient's side of one set of ticket params: its secret random number and the params it
/// issues, with the chain's creation round and block hash (what an orchestrator in on-chain mode
/// puts in its tickets).
#[derive(Clone, Debug)]
pub struct Issued {
    /// The recipient's random number (revealed to redeem a winning ticket).
    pub rand: [u8; 32],
    /// The params a sender makes tickets from.
    pub params: TicketParams,
}

/// 32 random bytes.
pub fn random32() -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    alloy::hex::decode_to_slice(random_hex(32), &mut out).context("random bytes")?;
    Ok(out)
}

/// The tickets and signatures a payment carries, rebuilt from its wire form as a recipient does,
/// each signature checked.
pub fn payment_tickets(payment: &Payment) -> Result<Vec<(Ticket, Signature)>> {
    let params = TicketParams::from_proto(payment.ticket_params.as_ref().context("no ticket params")?)?;
    let exp = payment.expiration_params.as_ref().context("no expiration params")?;
    let expiration = ExpirationParams {
        creation_round: exp.creation_round,
        creation_round_block_hash: exp
            .creation_round_block_hash
            .as_slice()
            .try_into()
            .context("the creation round's block hash is not 32 bytes")?,
    };
    let sender = byoc_payment::Address(payment.sender.as_slice().try_into().context("the sender is not 20 bytes")?);
    payment
        .ticket_sender_params
        .iter()
        .map(|t| {
            let sig = Signature(t.sig.as_slice().try_into().context("a signature is not 65 bytes")?);
            let ticket = Ticket::new(&params, expiration, sender, t.sender_nonce);
            ticket.verify(&sig)?;
            Ok((ticket, sig))
        })
        .collect()
}

/// A byoc ticket in the contract's form. The aux data is what byoc hashes after the fixed fields
/// (the creation round and its block hash, or nothing).
pub fn sol_ticket(ticket: &Ticket) -> Result<SolTicket> {
    const FIXED: usize = 20 + 20 + 32 * 4;
    let flat = ticket.flatten();
    let aux = flat.get(FIXED..).context("a flattened ticket is shorter than its fixed fields")?;
    Ok(SolTicket {
        recipient: Address::from(ticket.recipient.0),
        sender: Address::from(ticket.sender.0),
        faceValue: U256::from_be_bytes(ticket.face_value.to_be_bytes32()),
        winProb: U256::from_be_slice(&ticket.win_prob.to_be_bytes()),
        senderNonce: U256::from(ticket.sender_nonce),
        recipientRandHash: B256::from(ticket.recipient_rand_hash),
        auxData: Bytes::copy_from_slice(aux),
    })
}

/// A provider that signs with `key` and fills gas, nonce and chain id. The nonce is asked of the
/// node for every transaction: alloy's default (cached) nonce manager reserves a nonce before the
/// transaction is sent, so one refused at gas estimation (a revert) leaves a gap that makes every
/// later transaction of that provider wait forever.
fn wallet_provider(url: &str, key: &SecretKey) -> Result<DynProvider> {
    let wallet = EthereumWallet::from(signer(key)?);
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(wallet)
        .connect_http(url.parse().context("anvil's URL")?)
        .erased())
}

fn to_u64(v: U256, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| anyhow!("{what} {v} does not fit in 64 bits"))
}

/// Starts anvil on a free loopback port and waits until it answers. A port taken between choosing
/// it and anvil binding it is retried with another.
async fn spawn_anvil() -> Result<(Child, String)> {
    let anvil = anvil_path();
    let mut last_error = None;
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free loopback port")?
            .port();
        let mut child = Command::new(&anvil)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--silent", "--disable-min-priority-fee"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", anvil.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        match wait_ready(&mut child, &url).await {
            Ok(()) => {
                // Keep draining what anvil writes so that a full pipe can never stall it.
                if let Some(mut err) = child.stderr.take() {
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut err, &mut tokio::io::sink()).await;
                    });
                }
                return Ok((child, url));
            }
            Err(e) => {
                let _ = child.start_kill();
                last_error = Some(e);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow!("anvil did not start")))
}

async fn wait_ready(child: &mut Child, url: &str) -> Result<()> {
    let provider = ProviderBuilder::new().connect_http(url.parse().context("anvil's URL")?);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().context("checking on anvil")? {
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = err.read_to_string(&mut stderr).await;
            }
            bail!("anvil exited ({status}) before answering on {url}: {}", stderr.trim());
        }
        if provider.get_chain_id().await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("anvil did not answer on {url} within 15 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
