//! The subset of Livepeer's contract ABI that byoc reads and calls (the published interfaces; the
//! function and event signatures, hence the selectors, are Livepeer's).

#![allow(missing_docs)]

use alloy::sol;

sol! {
    /// Resolves every other contract's address: `getContract(keccak256(name))`.
    #[sol(rpc)]
    interface IController {
        function getContract(bytes32 id) external view returns (address);
    }

    /// Rounds: the round a ticket is created in and the block hash that pins it.
    #[sol(rpc)]
    interface IRoundsManager {
        event NewRound(uint256 indexed round, bytes32 blockHash);
        function lastInitializedRound() external view returns (uint256);
        function blockHashForRound(uint256 round) external view returns (bytes32);
        function currentRoundStartBlock() external view returns (uint256);
        function currentRound() external view returns (uint256);
        function roundLength() external view returns (uint256);
    }

    /// A probabilistic micropayment ticket as the broker hashes and redeems it.
    struct Ticket {
        address recipient;
        address sender;
        uint256 faceValue;
        uint256 winProb;
        uint256 senderNonce;
        bytes32 recipientRandHash;
        bytes auxData;
    }

    /// A sender's deposit and the round its unlock ends (0: not unlocking).
    struct Sender {
        uint256 deposit;
        uint256 withdrawRound;
    }

    /// A sender's reserve: what is left and what was claimed from it this round.
    struct ReserveInfo {
        uint256 fundsRemaining;
        uint256 claimedInCurrentRound;
    }

    /// Deposits, reserves and ticket redemption.
    #[sol(rpc)]
    interface ITicketBroker {
        event DepositFunded(address indexed sender, uint256 amount);
        event ReserveFunded(address indexed reserveHolder, uint256 amount);
        event WinningTicketTransfer(address indexed sender, address indexed recipient, uint256 amount);
        event Unlock(address indexed sender, uint256 startRound, uint256 endRound);
        event UnlockCancelled(address indexed sender);
        event Withdrawal(address indexed sender, uint256 deposit, uint256 reserve);

        function fundDeposit() external payable;
        function fundReserve() external payable;
        function fundDepositAndReserve(uint256 depositAmount, uint256 reserveAmount) external payable;
        function unlock() external;
        function cancelUnlock() external;
        function withdraw() external;
        function redeemWinningTicket(Ticket ticket, bytes sig, uint256 recipientRand) external;
        function getSenderInfo(address sender) external view returns (Sender sender, ReserveInfo reserve);
        function claimedReserve(address reserveHolder, address claimant) external view returns (uint256);
        function usedTickets(bytes32 ticketHash) external view returns (bool);
        function unlockPeriod() external view returns (uint256);
        function ticketValidityPeriod() external view returns (uint256);
    }

    /// The transcoder pool, walked for discovery; its size splits a sender's reserve.
    #[sol(rpc)]
    interface IBondingManager {
        event TranscoderActivated(address indexed transcoder, uint256 activationRound);
        event TranscoderDeactivated(address indexed transcoder, uint256 deactivationRound);
        function getTranscoderPoolSize() external view returns (uint256);
        function getFirstTranscoderInPool() external view returns (address);
        function getNextTranscoderInPool(address transcoder) external view returns (address);
        function isActiveTranscoder(address transcoder) external view returns (bool);
        function transcoderTotalStake(address transcoder) external view returns (uint256);
    }

    /// Where each orchestrator says it can be reached.
    #[sol(rpc)]
    interface IServiceRegistry {
        event ServiceURIUpdate(address indexed addr, string serviceURI);
        function setServiceURI(string serviceURI) external;
        function getServiceURI(address addr) external view returns (string);
    }
}

#[cfg(test)]
mod tests {
    use alloy::sol_types::SolCall;

    use super::*;

    #[test]
    fn selectors_are_livepeers() {
        assert_eq!(ITicketBroker::redeemWinningTicketCall::SELECTOR, [0xec, 0x8b, 0x3c, 0xb6]);
    }
}
