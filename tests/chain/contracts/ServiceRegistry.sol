// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title Where each orchestrator says it can be reached.
/// @notice Part of byoc's local test chain (tests/chain). Every account sets its own URI.
contract ServiceRegistry {
    mapping(address => string) private serviceURIs;

    event ServiceURIUpdate(address indexed addr, string serviceURI);

    /// @notice Sets the caller's service URI.
    function setServiceURI(string calldata serviceURI) external {
        serviceURIs[msg.sender] = serviceURI;
        emit ServiceURIUpdate(msg.sender, serviceURI);
    }

    /// @notice The service URI `addr` set, empty if none.
    function getServiceURI(address addr) external view returns (string memory) {
        return serviceURIs[addr];
    }
}
