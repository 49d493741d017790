//! Why a chain operation failed.

/// Why a chain operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs, reason = "each variant's #[error] message is its documentation")]
pub enum ChainError {
    /// A flag or a contract address is wrong: fix the configuration.
    #[error("{0}")]
    Config(String),
    /// The node did not answer, or answered an error: worth retrying.
    #[error("JSON-RPC: {0}")]
    Rpc(String),
    /// The contract refused the call (the revert reason when the node gives one).
    #[error("the contract refused: {0}")]
    Reverted(String),
}
