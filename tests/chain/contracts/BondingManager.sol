// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import "./Interfaces.sol";

/// @title The transcoder pool: active orchestrators, sorted by stake (highest first).
/// @notice Part of byoc's local test chain (tests/chain). There is no bonding, no token and no
/// delegation here: the owner (the deployer) adds and removes pool members with a stake directly,
/// and a member is active from the moment it is added until it is removed.
contract BondingManager {
    address public owner;
    IControllerView public immutable controller;

    mapping(address => address) private nextInPool;
    mapping(address => uint256) private stakes;
    mapping(address => bool) private inPool;
    address private first;
    uint256 private poolSize;

    event TranscoderActivated(address indexed transcoder, uint256 activationRound);
    event TranscoderDeactivated(address indexed transcoder, uint256 deactivationRound);

    constructor(address controller_) {
        require(controller_ != address(0), "BondingManager: controller is the zero address");
        owner = msg.sender;
        controller = IControllerView(controller_);
    }

    modifier onlyOwner() {
        require(msg.sender == owner, "BondingManager: caller is not the owner");
        _;
    }

    /// @notice Adds `transcoder` to the pool with `stake` (owner only; a test helper).
    function addTranscoder(address transcoder, uint256 stake) external onlyOwner {
        require(transcoder != address(0), "BondingManager: transcoder is the zero address");
        require(!inPool[transcoder], "BondingManager: transcoder is already in the pool");
        inPool[transcoder] = true;
        stakes[transcoder] = stake;
        poolSize += 1;
        if (first == address(0) || stakes[first] < stake) {
            nextInPool[transcoder] = first;
            first = transcoder;
        } else {
            address prev = first;
            while (nextInPool[prev] != address(0) && stakes[nextInPool[prev]] >= stake) {
                prev = nextInPool[prev];
            }
            nextInPool[transcoder] = nextInPool[prev];
            nextInPool[prev] = transcoder;
        }
        emit TranscoderActivated(transcoder, round());
    }

    /// @notice Removes `transcoder` from the pool (owner only; a test helper).
    function removeTranscoder(address transcoder) external onlyOwner {
        require(inPool[transcoder], "BondingManager: transcoder is not in the pool");
        if (first == transcoder) {
            first = nextInPool[transcoder];
        } else {
            address prev = first;
            while (nextInPool[prev] != transcoder) {
                prev = nextInPool[prev];
            }
            nextInPool[prev] = nextInPool[transcoder];
        }
        delete nextInPool[transcoder];
        delete stakes[transcoder];
        inPool[transcoder] = false;
        poolSize -= 1;
        emit TranscoderDeactivated(transcoder, round());
    }

    /// @notice How many transcoders are in the pool.
    function getTranscoderPoolSize() external view returns (uint256) {
        return poolSize;
    }

    /// @notice The transcoder with the highest stake, zero if the pool is empty.
    function getFirstTranscoderInPool() external view returns (address) {
        return first;
    }

    /// @notice The transcoder after `transcoder` in the pool, zero at the end (or if it is not in it).
    function getNextTranscoderInPool(address transcoder) external view returns (address) {
        return nextInPool[transcoder];
    }

    /// @notice Whether `transcoder` is in the pool.
    function isActiveTranscoder(address transcoder) external view returns (bool) {
        return inPool[transcoder];
    }

    /// @notice The stake `transcoder` was added with, zero if it is not in the pool.
    function transcoderTotalStake(address transcoder) external view returns (uint256) {
        return stakes[transcoder];
    }

    function round() private view returns (uint256) {
        address rounds = controller.getContract(keccak256("RoundsManager"));
        return rounds == address(0) ? 0 : IRoundsView(rounds).currentRound();
    }
}
