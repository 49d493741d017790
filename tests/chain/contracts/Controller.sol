// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title The test chain's registry: every other contract's address by `keccak256(name)`.
/// @notice Part of byoc's local test chain (tests/chain). The owner (the deployer) registers the
/// contracts; anyone reads them.
contract Controller {
    address public owner;

    struct ContractInfo {
        address contractAddress;
        bytes20 gitCommitHash;
    }

    mapping(bytes32 => ContractInfo) private registry;

    event SetContractInfo(bytes32 id, address contractAddress, bytes20 gitCommitHash);

    constructor() {
        owner = msg.sender;
    }

    /// @notice Registers `contractAddress` under `id` (owner only).
    function setContractInfo(bytes32 id, address contractAddress, bytes20 gitCommitHash) external {
        require(msg.sender == owner, "Controller: caller is not the owner");
        registry[id] = ContractInfo(contractAddress, gitCommitHash);
        emit SetContractInfo(id, contractAddress, gitCommitHash);
    }

    /// @notice The address registered under `id`, zero if none.
    function getContract(bytes32 id) external view returns (address) {
        return registry[id].contractAddress;
    }

    /// @notice The address and commit hash registered under `id`.
    function getContractInfo(bytes32 id) external view returns (address, bytes20) {
        ContractInfo storage info = registry[id];
        return (info.contractAddress, info.gitCommitHash);
    }
}
