// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title Rounds of a fixed number of blocks; each is initialized once, which pins a block hash.
/// @notice Part of byoc's local test chain (tests/chain). Round `r` spans blocks
/// `[r * roundLength, (r + 1) * roundLength)`. Anyone may initialize the current round.
contract RoundsManager {
    uint256 public immutable roundLength;
    uint256 public lastInitializedRound;

    mapping(uint256 => bytes32) private roundBlockHashes;
    mapping(uint256 => bool) private initialized;

    event NewRound(uint256 indexed round, bytes32 blockHash);

    constructor(uint256 roundLength_) {
        require(roundLength_ > 0, "RoundsManager: round length must be positive");
        roundLength = roundLength_;
    }

    /// @notice The round the current block is in.
    function currentRound() public view returns (uint256) {
        return block.number / roundLength;
    }

    /// @notice The first block of the current round.
    function currentRoundStartBlock() external view returns (uint256) {
        return currentRound() * roundLength;
    }

    /// @notice Whether the current round has been initialized.
    function currentRoundInitialized() external view returns (bool) {
        return initialized[currentRound()];
    }

    /// @notice Initializes the current round: records the previous block's hash as the round's.
    function initializeRound() external {
        uint256 round = currentRound();
        require(!initialized[round], "RoundsManager: current round is already initialized");
        require(block.number > 0, "RoundsManager: no previous block to take a hash from");
        bytes32 hash = blockhash(block.number - 1);
        initialized[round] = true;
        roundBlockHashes[round] = hash;
        lastInitializedRound = round;
        emit NewRound(round, hash);
    }

    /// @notice The block hash recorded when `round` was initialized, zero if it never was.
    function blockHashForRound(uint256 round) external view returns (bytes32) {
        return roundBlockHashes[round];
    }
}
