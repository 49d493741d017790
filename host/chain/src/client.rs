//! One connection to the chain: the contracts' addresses (from the Controller) and typed calls.

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address as EthAddress, B256, Bytes, FixedBytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use byoc_payment::{Address, ChainPoint, SecretKey, StoredTicket, Wei};

use crate::contracts::{
    IBondingManager, IController, IRoundsManager, IServiceRegistry, ITicketBroker, Ticket as AbiTicket,
};
use crate::error::ChainError;

/// The contracts byoc uses, as the Controller names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contracts {
    /// `RoundsManager`.
    pub rounds_manager: Address,
    /// `TicketBroker`.
    pub ticket_broker: Address,
    /// `BondingManager`.
    pub bonding_manager: Address,
    /// `ServiceRegistry`.
    pub service_registry: Address,
}

/// A sender's funds as the TicketBroker reports them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// The deposit.
    pub deposit: Wei,
    /// The round its unlock ends; zero when not unlocking.
    pub withdraw_round: u64,
    /// What is left of the reserve.
    pub reserve: Wei,
    /// What recipients claimed from the reserve in the current round.
    pub claimed_in_round: Wei,
}

impl SenderInfo {
    /// Whether the sender asked to withdraw (its funds will soon be gone).
    pub fn unlocking(&self) -> bool {
        self.withdraw_round != 0
    }
}

/// A connection to an Ethereum JSON-RPC endpoint with Livepeer's contracts resolved.
#[derive(Clone, Debug)]
pub struct Chain {
    provider: DynProvider,
    contracts: Contracts,
    rounds: IRoundsManager::IRoundsManagerInstance<DynProvider>,
    broker: ITicketBroker::ITicketBrokerInstance<DynProvider>,
    bonding: IBondingManager::IBondingManagerInstance<DynProvider>,
    registry: IServiceRegistry::IServiceRegistryInstance<DynProvider>,
    /// The account transactions are sent from (the node's key), if any.
    from: Option<Address>,
}

/// How long one RPC request may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(20);

/// The byoc form of an Ethereum address.
pub(crate) fn to_byoc(a: EthAddress) -> Address {
    Address(a.into_array())
}

/// The alloy form of a byoc address.
pub(crate) fn to_eth(a: Address) -> EthAddress {
    EthAddress::from(a.0)
}

/// Wei as a `uint256`.
pub(crate) fn to_u256(w: &Wei) -> U256 {
    U256::from_be_bytes(w.to_be_bytes32())
}

/// A `uint256` as wei.
pub(crate) fn to_wei(v: U256) -> Wei {
    Wei::from_be_bytes(&v.to_be_bytes::<32>()).unwrap_or_default()
}

/// A `uint256` round or block number (saturating at `u64::MAX`).
fn to_u64(v: U256) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Runs one RPC future under [`RPC_TIMEOUT`], naming `what` in the error.
async fn rpc<T, E: std::fmt::Display>(
    what: &str,
    fut: impl IntoFuture<Output = Result<T, E>>,
) -> Result<T, ChainError> {
    match tokio::time::timeout(RPC_TIMEOUT, fut.into_future()).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ChainError::Rpc(format!("{what}: {e}"))),
        Err(_) => Err(ChainError::Rpc(format!("{what}: no answer in {}s", RPC_TIMEOUT.as_secs()))),
    }
}

impl Chain {
    /// Connects to `url`, reads the contracts' addresses from the Controller at `controller` and checks
    /// that each is deployed. With `key`, transactions are signed with it.
    pub async fn connect(url: &str, controller: Address, key: Option<&SecretKey>) -> Result<Chain, ChainError> {
        let parsed: reqwest::Url =
            url.parse().map_err(|e| ChainError::Config(format!("--eth-url {url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ChainError::Config(format!("--eth-url {url:?}: only http and https JSON-RPC are supported")));
        }
        // The nonce is read from the node for every transaction: a cached nonce is reserved before the
        // transaction is sent, and one that is never sent (a refusal, an RPC error) would leave a gap
        // every later transaction waits behind.
        let builder = || {
            ProviderBuilder::new()
                .disable_recommended_fillers()
                .with_gas_estimation()
                .with_simple_nonce_management()
                .fetch_chain_id()
        };
        let provider = match key {
            Some(k) => {
                let signer = PrivateKeySigner::from_bytes(&B256::from(*k.to_bytes()))
                    .map_err(|e| ChainError::Config(format!("key: {e}")))?;
                builder().wallet(EthereumWallet::from(signer)).connect_http(parsed).erased()
            }
            None => builder().connect_http(parsed).erased(),
        };
        let controller_eth = to_eth(controller);
        let code = rpc("eth_getCode(controller)", provider.get_code_at(controller_eth)).await?;
        if code.is_empty() {
            return Err(ChainError::Config(format!(
                "no contract at --eth-controller {} on {url}",
                controller.to_checksum()
            )));
        }
        let ctl = IController::new(controller_eth, provider.clone());
        let mut resolved = [Address([0; 20]); 4];
        for (slot, name) in
            resolved.iter_mut().zip(["RoundsManager", "TicketBroker", "BondingManager", "ServiceRegistry"])
        {
            let id = alloy::primitives::keccak256(name.as_bytes());
            let addr = rpc(&format!("Controller.getContract({name})"), ctl.getContract(id).call()).await?;
            if addr.is_zero() {
                return Err(ChainError::Config(format!("the Controller has no {name}")));
            }
            *slot = to_byoc(addr);
        }
        let [rounds_manager, ticket_broker, bonding_manager, service_registry] = resolved;
        Ok(Chain {
            rounds: IRoundsManager::new(to_eth(rounds_manager), provider.clone()),
            broker: ITicketBroker::new(to_eth(ticket_broker), provider.clone()),
            bonding: IBondingManager::new(to_eth(bonding_manager), provider.clone()),
            registry: IServiceRegistry::new(to_eth(service_registry), provider.clone()),
            provider,
            contracts: Contracts { rounds_manager, ticket_broker, bonding_manager, service_registry },
            from: key.map(SecretKey::address),
        })
    }

    /// The resolved contract addresses.
    pub fn contracts(&self) -> Contracts {
        self.contracts
    }

    fn sender(&self) -> Result<EthAddress, ChainError> {
        self.from.map(to_eth).ok_or_else(|| ChainError::Config("a key is needed to send transactions".into()))
    }

    /// The latest block's number: on Arbitrum the L1 block number the header reports (`l1BlockNumber`),
    /// elsewhere the block's own number.
    pub async fn block_number(&self) -> Result<u64, ChainError> {
        let block: serde_json::Value = rpc(
            "eth_getBlockByNumber",
            self.provider.raw_request::<_, serde_json::Value>("eth_getBlockByNumber".into(), ("latest", false)),
        )
        .await?;
        let field = block.get("l1BlockNumber").or_else(|| block.get("number")).and_then(|v| v.as_str());
        let hex = field.ok_or_else(|| ChainError::Rpc("eth_getBlockByNumber: no block number".into()))?;
        u64::from_str_radix(hex.trim_start_matches("0x"), 16)
            .map_err(|e| ChainError::Rpc(format!("eth_getBlockByNumber: block number {hex:?}: {e}")))
    }

    /// Where the chain is: the latest (L1) block, the last initialized round and that round's hash.
    pub async fn point(&self) -> Result<ChainPoint, ChainError> {
        let block = self.block_number().await?;
        let round = to_u64(rpc("RoundsManager.lastInitializedRound", self.rounds.lastInitializedRound().call()).await?);
        let hash =
            rpc("RoundsManager.blockHashForRound", self.rounds.blockHashForRound(U256::from(round)).call()).await?;
        Ok(ChainPoint { block, round, round_block_hash: hash.0 })
    }

    /// `RoundsManager.currentRound()` (it may be ahead of the last initialized round).
    pub async fn current_round(&self) -> Result<u64, ChainError> {
        Ok(to_u64(rpc("RoundsManager.currentRound", self.rounds.currentRound().call()).await?))
    }

    /// `TicketBroker.ticketValidityPeriod()`: rounds a ticket stays redeemable after its creation round.
    pub async fn ticket_validity_period(&self) -> Result<u64, ChainError> {
        Ok(to_u64(rpc("TicketBroker.ticketValidityPeriod", self.broker.ticketValidityPeriod().call()).await?))
    }

    /// The number of orchestrators in the pool (a sender's reserve is split among them).
    pub async fn pool_size(&self) -> Result<u64, ChainError> {
        Ok(to_u64(rpc("BondingManager.getTranscoderPoolSize", self.bonding.getTranscoderPoolSize().call()).await?))
    }

    /// A sender's deposit, unlock and reserve.
    pub async fn sender_info(&self, sender: Address) -> Result<SenderInfo, ChainError> {
        let r = rpc("TicketBroker.getSenderInfo", self.broker.getSenderInfo(to_eth(sender)).call()).await?;
        Ok(SenderInfo {
            deposit: to_wei(r.sender.deposit),
            withdraw_round: to_u64(r.sender.withdrawRound),
            reserve: to_wei(r.reserve.fundsRemaining),
            claimed_in_round: to_wei(r.reserve.claimedInCurrentRound),
        })
    }

    /// What `claimant` claimed from `holder`'s reserve in the current round.
    pub async fn claimed_reserve(&self, holder: Address, claimant: Address) -> Result<Wei, ChainError> {
        let call = self.broker.claimedReserve(to_eth(holder), to_eth(claimant));
        Ok(to_wei(rpc("TicketBroker.claimedReserve", call.call()).await?))
    }

    /// Whether a ticket with this hash was already redeemed.
    pub async fn used_ticket(&self, hash: [u8; 32]) -> Result<bool, ChainError> {
        rpc("TicketBroker.usedTickets", self.broker.usedTickets(FixedBytes(hash)).call()).await
    }

    /// The node's gas price now, in wei.
    pub async fn gas_price(&self) -> Result<u128, ChainError> {
        rpc("eth_gasPrice", self.provider.get_gas_price()).await
    }

    /// An account's ETH balance.
    pub async fn balance(&self, who: Address) -> Result<Wei, ChainError> {
        Ok(to_wei(rpc("eth_getBalance", self.provider.get_balance(to_eth(who))).await?))
    }

    fn redeem_call(
        &self,
        t: &StoredTicket,
    ) -> Result<alloy::contract::SolCallBuilder<&DynProvider, ITicketBroker::redeemWinningTicketCall>, ChainError> {
        let w = &t.winning.ticket;
        let mut aux = Vec::with_capacity(64);
        aux.extend_from_slice(&U256::from(w.expiration.creation_round.unsigned_abs()).to_be_bytes::<32>());
        aux.extend_from_slice(&w.expiration.creation_round_block_hash);
        let ticket = AbiTicket {
            recipient: to_eth(w.recipient),
            sender: to_eth(w.sender),
            faceValue: to_u256(&w.face_value),
            winProb: U256::from_be_slice(&w.win_prob.to_be_bytes()),
            senderNonce: U256::from(w.sender_nonce),
            recipientRandHash: FixedBytes(w.recipient_rand_hash),
            auxData: Bytes::from(aux),
        };
        let sig = Bytes::copy_from_slice(&t.winning.sig.0);
        let rand = U256::from_be_bytes(t.winning.recipient_rand);
        let from = self.sender()?;
        Ok(self.broker.redeemWinningTicket(ticket, sig, rand).from(from))
    }

    /// The gas redeeming `t` takes, or the contract's reason for refusing it.
    pub async fn estimate_redeem(&self, t: &StoredTicket) -> Result<u64, ChainError> {
        let call = self.redeem_call(t)?;
        rpc("estimate redeemWinningTicket", call.estimate_gas()).await.map_err(|e| ChainError::Reverted(e.to_string()))
    }

    /// Sends the redemption of `t` with `gas` and at most `max_fee` wei per gas; returns the transaction hash
    /// as soon as the node accepted it.
    pub async fn send_redeem(&self, t: &StoredTicket, gas: u64, max_fee: u128) -> Result<[u8; 32], ChainError> {
        let call = self.redeem_call(t)?.gas(gas).max_fee_per_gas(max_fee).max_priority_fee_per_gas(0);
        let pending = rpc("send redeemWinningTicket", call.send()).await?;
        Ok(pending.tx_hash().0)
    }

    /// The outcome of transaction `hash`: `Some(true)` succeeded, `Some(false)` reverted, `None` not mined
    /// (yet, or dropped: see [`Chain::transaction_known`]).
    pub async fn receipt_status(&self, hash: [u8; 32]) -> Result<Option<bool>, ChainError> {
        let r = rpc("eth_getTransactionReceipt", self.provider.get_transaction_receipt(B256::from(hash))).await?;
        Ok(r.map(|r| r.status()))
    }

    /// Whether the node still knows transaction `hash` (pending or mined).
    pub async fn transaction_known(&self, hash: [u8; 32]) -> Result<bool, ChainError> {
        let t = rpc("eth_getTransactionByHash", self.provider.get_transaction_by_hash(B256::from(hash))).await?;
        Ok(t.is_some())
    }

    /// Every orchestrator in the pool with its service URI, in pool order (at most `limit`).
    pub async fn pool(&self, limit: usize) -> Result<Vec<(Address, String)>, ChainError> {
        let bonding = &self.bonding;
        let mut out = Vec::new();
        let mut next =
            rpc("BondingManager.getFirstTranscoderInPool", bonding.getFirstTranscoderInPool().call()).await?;
        while !next.is_zero() && out.len() < limit {
            let uri = rpc("ServiceRegistry.getServiceURI", self.registry.getServiceURI(next).call()).await?;
            out.push((to_byoc(next), uri));
            next = rpc("BondingManager.getNextTranscoderInPool", bonding.getNextTranscoderInPool(next).call()).await?;
        }
        Ok(out)
    }

    /// Sends a call from the node's key and waits for its receipt; the contract's reason on a revert.
    async fn transact<C: alloy::sol_types::SolCall + Send + Sync>(
        &self,
        what: &str,
        call: alloy::contract::SolCallBuilder<&DynProvider, C>,
    ) -> Result<[u8; 32], ChainError> {
        // Fees from the node's own gas price (room for it to double), not from fee history: a price that
        // just moved (or one a test chain sets) is what the next block charges.
        let gas_price = self.gas_price().await?;
        let call =
            call.from(self.sender()?).max_fee_per_gas(gas_price.saturating_mul(2).max(1)).max_priority_fee_per_gas(0);
        rpc(what, call.estimate_gas()).await.map_err(|e| ChainError::Reverted(e.to_string()))?;
        let pending = rpc(what, call.send()).await?;
        let receipt = rpc(what, pending.with_timeout(Some(Duration::from_secs(120))).get_receipt()).await?;
        if !receipt.status() {
            return Err(ChainError::Reverted(format!("{what}: transaction {} reverted", receipt.transaction_hash)));
        }
        Ok(receipt.transaction_hash.0)
    }

    /// `TicketBroker.fundDepositAndReserve` (or `fundDeposit`/`fundReserve` when one is zero), paying
    /// their sum from the node's key.
    pub async fn fund(&self, deposit: &Wei, reserve: &Wei) -> Result<[u8; 32], ChainError> {
        let (d, r) = (to_u256(deposit), to_u256(reserve));
        let value = d.saturating_add(r);
        match (d.is_zero(), r.is_zero()) {
            (true, true) => Err(ChainError::Config("nothing to fund: deposit and reserve are both zero".into())),
            (false, true) => self.transact("fundDeposit", self.broker.fundDeposit().value(value)).await,
            (true, false) => self.transact("fundReserve", self.broker.fundReserve().value(value)).await,
            (false, false) => {
                self.transact("fundDepositAndReserve", self.broker.fundDepositAndReserve(d, r).value(value)).await
            }
        }
    }

    /// `TicketBroker.unlock()`: starts the unlock period of the node key's deposit and reserve.
    pub async fn unlock(&self) -> Result<[u8; 32], ChainError> {
        self.transact("unlock", self.broker.unlock()).await
    }

    /// `TicketBroker.cancelUnlock()`.
    pub async fn cancel_unlock(&self) -> Result<[u8; 32], ChainError> {
        self.transact("cancelUnlock", self.broker.cancelUnlock()).await
    }

    /// `TicketBroker.withdraw()`: after the unlock period, the deposit and reserve back to the key.
    pub async fn withdraw(&self) -> Result<[u8; 32], ChainError> {
        self.transact("withdraw", self.broker.withdraw()).await
    }
}
