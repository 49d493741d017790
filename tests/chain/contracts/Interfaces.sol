// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @notice What the test chain's contracts read from one another.
interface IControllerView {
    function getContract(bytes32 id) external view returns (address);
}

interface IRoundsView {
    function currentRound() external view returns (uint256);
    function blockHashForRound(uint256 round) external view returns (bytes32);
}

interface IPoolView {
    function isActiveTranscoder(address transcoder) external view returns (bool);
    function getTranscoderPoolSize() external view returns (uint256);
}
