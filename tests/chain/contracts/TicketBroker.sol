// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import "./Interfaces.sol";

/// @title Senders' deposits and reserves, and the redemption of winning tickets.
/// @notice Part of byoc's local test chain (tests/chain). It checks a ticket exactly as byoc-payment
/// makes it (host/payment/src/ticket.rs): the hash of the tightly packed fields, the sender's
/// EIP-191 signature of that hash, the recipient's revealed random number and the win check.
///
/// Payment differs from a production broker on purpose: the face value is transferred in ETH
/// directly to the recipient (a production broker credits it as fees to the recipient's pool in
/// its bonding manager, from which the orchestrator later withdraws). The pool size that splits
/// a sender's reserve is the pool's size now, not a snapshot taken when the round began.
contract TicketBroker {
    struct Ticket {
        address recipient;
        address sender;
        uint256 faceValue;
        uint256 winProb;
        uint256 senderNonce;
        bytes32 recipientRandHash;
        bytes auxData;
    }

    struct Sender {
        uint256 deposit;
        uint256 withdrawRound;
    }

    struct ReserveInfo {
        uint256 fundsRemaining;
        uint256 claimedInCurrentRound;
    }

    /// The largest `s` of a low-s secp256k1 signature: half the curve order.
    uint256 private constant HALF_CURVE_ORDER =
        0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    IControllerView public immutable controller;
    uint256 public immutable unlockPeriod;
    uint256 public immutable ticketValidityPeriod;

    mapping(bytes32 => bool) public usedTickets;

    mapping(address => Sender) private senders;
    mapping(address => uint256) private reserves;
    /// reserve holder => round => claimed from the reserve in that round, by all claimants.
    mapping(address => mapping(uint256 => uint256)) private claimedInRound;
    /// reserve holder => round => claimant => claimed by that claimant in that round.
    mapping(address => mapping(uint256 => mapping(address => uint256))) private claimedByInRound;

    event DepositFunded(address indexed sender, uint256 amount);
    event ReserveFunded(address indexed reserveHolder, uint256 amount);
    event ReserveClaimed(address indexed reserveHolder, address claimant, uint256 amount);
    event WinningTicketTransfer(address indexed sender, address indexed recipient, uint256 amount);
    event Unlock(address indexed sender, uint256 startRound, uint256 endRound);
    event UnlockCancelled(address indexed sender);
    event Withdrawal(address indexed sender, uint256 deposit, uint256 reserve);

    constructor(address controller_, uint256 unlockPeriod_, uint256 ticketValidityPeriod_) {
        require(controller_ != address(0), "TicketBroker: controller is the zero address");
        require(ticketValidityPeriod_ > 0, "TicketBroker: ticket validity period must be positive");
        controller = IControllerView(controller_);
        unlockPeriod = unlockPeriod_;
        ticketValidityPeriod = ticketValidityPeriod_;
    }

    /// @notice Adds the value sent to the caller's deposit.
    function fundDeposit() external payable {
        addDeposit(msg.value);
    }

    /// @notice Adds the value sent to the caller's reserve.
    function fundReserve() external payable {
        addReserve(msg.value);
    }

    /// @notice Splits the value sent between the caller's deposit and reserve.
    function fundDepositAndReserve(uint256 depositAmount, uint256 reserveAmount) external payable {
        require(
            msg.value == depositAmount + reserveAmount,
            "TicketBroker: msg.value does not equal the deposit plus the reserve"
        );
        addDeposit(depositAmount);
        addReserve(reserveAmount);
    }

    /// @notice Starts the caller's unlock period; its funds can be withdrawn `unlockPeriod` rounds on.
    function unlock() external {
        Sender storage s = senders[msg.sender];
        require(s.deposit > 0 || reserves[msg.sender] > 0, "TicketBroker: sender has no deposit or reserve");
        require(s.withdrawRound == 0, "TicketBroker: unlock already in progress");
        uint256 round = rounds().currentRound();
        s.withdrawRound = round + unlockPeriod;
        emit Unlock(msg.sender, round, s.withdrawRound);
    }

    /// @notice Stops the caller's unlock period.
    function cancelUnlock() external {
        Sender storage s = senders[msg.sender];
        require(s.withdrawRound != 0, "TicketBroker: no unlock in progress");
        s.withdrawRound = 0;
        emit UnlockCancelled(msg.sender);
    }

    /// @notice Pays the caller its deposit and what is left of its reserve, once its unlock ended.
    function withdraw() external {
        Sender storage s = senders[msg.sender];
        require(s.withdrawRound != 0, "TicketBroker: no unlock in progress");
        require(s.withdrawRound <= rounds().currentRound(), "TicketBroker: unlock period has not ended");
        uint256 deposit = s.deposit;
        uint256 reserve = reserves[msg.sender];
        s.deposit = 0;
        s.withdrawRound = 0;
        reserves[msg.sender] = 0;
        emit Withdrawal(msg.sender, deposit, reserve);
        pay(msg.sender, deposit + reserve);
    }

    /// @notice Redeems a winning ticket: checks it, marks it used and pays its face value to the
    /// recipient, from the sender's deposit first and then, for an active transcoder, from its share
    /// of the sender's reserve.
    function redeemWinningTicket(Ticket calldata ticket, bytes calldata sig, uint256 recipientRand) external {
        require(ticket.recipient != address(0), "TicketBroker: ticket recipient is the zero address");
        require(ticket.sender != address(0), "TicketBroker: ticket sender is the zero address");
        require(
            keccak256(abi.encodePacked(recipientRand)) == ticket.recipientRandHash,
            "TicketBroker: recipientRand does not hash to recipientRandHash"
        );
        bytes32 ticketHash = keccak256(
            abi.encodePacked(
                ticket.recipient,
                ticket.sender,
                ticket.faceValue,
                ticket.winProb,
                ticket.senderNonce,
                ticket.recipientRandHash,
                ticket.auxData
            )
        );
        require(!usedTickets[ticketHash], "TicketBroker: ticket is used");
        usedTickets[ticketHash] = true;
        checkCreationRound(ticket.auxData);
        require(recoverSigner(ticketHash, sig) == ticket.sender, "TicketBroker: invalid signature over ticket hash");
        require(
            uint256(keccak256(abi.encodePacked(sig, recipientRand))) < ticket.winProb,
            "TicketBroker: ticket did not win"
        );
        Sender storage s = senders[ticket.sender];
        require(
            s.deposit > 0 || reserves[ticket.sender] > 0,
            "TicketBroker: sender has no deposit or reserve"
        );

        uint256 amount = ticket.faceValue;
        if (amount > s.deposit) {
            uint256 fromDeposit = s.deposit;
            s.deposit = 0;
            amount = fromDeposit + claimFromReserve(ticket.sender, ticket.recipient, amount - fromDeposit);
        } else {
            s.deposit -= amount;
        }
        // Nothing to pay (an empty deposit and no claim on the reserve): the ticket is used all
        // the same, and no transfer is reported.
        if (amount > 0) {
            emit WinningTicketTransfer(ticket.sender, ticket.recipient, amount);
            // The test chain pays the recipient directly, in ETH (see the contract's notice).
            pay(ticket.recipient, amount);
        }
    }

    /// @notice A sender's deposit and unlock round, and its reserve and what was claimed from it
    /// in the current round.
    function getSenderInfo(address sender) external view returns (Sender memory sender_, ReserveInfo memory reserve) {
        sender_ = senders[sender];
        reserve = ReserveInfo(reserves[sender], claimedInRound[sender][rounds().currentRound()]);
    }

    /// @notice What `claimant` claimed from `reserveHolder`'s reserve in the current round.
    function claimedReserve(address reserveHolder, address claimant) external view returns (uint256) {
        return claimedByInRound[reserveHolder][rounds().currentRound()][claimant];
    }

    function addDeposit(uint256 amount) private {
        senders[msg.sender].deposit += amount;
        emit DepositFunded(msg.sender, amount);
    }

    function addReserve(uint256 amount) private {
        reserves[msg.sender] += amount;
        emit ReserveFunded(msg.sender, amount);
    }

    /// Claims up to `wanted` from `holder`'s reserve for `claimant`: nothing unless the claimant is
    /// an active transcoder, and at most its share of the reserve this round,
    /// `(fundsRemaining + claimedInCurrentRound) / poolSize - claimedReserve(holder, claimant)`.
    /// Bookkeeping is per round, so a new round starts with nothing claimed.
    function claimFromReserve(address holder, address claimant, uint256 wanted) private returns (uint256) {
        IPoolView pool = IPoolView(contractNamed("BondingManager"));
        if (wanted == 0 || !pool.isActiveTranscoder(claimant)) {
            return 0;
        }
        uint256 poolSize = pool.getTranscoderPoolSize();
        if (poolSize == 0) {
            return 0;
        }
        uint256 round = rounds().currentRound();
        uint256 share = (reserves[holder] + claimedInRound[holder][round]) / poolSize;
        uint256 claimed = claimedByInRound[holder][round][claimant];
        uint256 left = share > claimed ? share - claimed : 0;
        uint256 amount = wanted < left ? wanted : left;
        if (amount == 0) {
            return 0;
        }
        reserves[holder] -= amount;
        claimedInRound[holder][round] += amount;
        claimedByInRound[holder][round][claimant] += amount;
        emit ReserveClaimed(holder, claimant, amount);
        return amount;
    }

    /// auxData is `creationRound (uint256) ‖ creationRoundBlockHash (bytes32)`: the round must have
    /// that block hash on chain and be no more than `ticketValidityPeriod - 1` rounds old.
    function checkCreationRound(bytes calldata auxData) private view {
        require(
            auxData.length == 64,
            "TicketBroker: auxData must be 64 bytes (creation round and its block hash)"
        );
        (uint256 creationRound, bytes32 blockHash) = abi.decode(auxData, (uint256, bytes32));
        require(blockHash != bytes32(0), "TicketBroker: creation round block hash is zero");
        IRoundsView r = rounds();
        require(
            r.blockHashForRound(creationRound) == blockHash,
            "TicketBroker: creation round block hash does not match the round's"
        );
        require(creationRound + ticketValidityPeriod > r.currentRound(), "TicketBroker: ticket is expired");
    }

    /// The signer of the EIP-191 personal message `hash` (32 bytes): `sig` is `r ‖ s ‖ v`, 65 bytes,
    /// v 27 or 28, s in the lower half of the curve order.
    function recoverSigner(bytes32 hash, bytes calldata sig) private pure returns (address) {
        require(sig.length == 65, "TicketBroker: signature must be 65 bytes");
        bytes32 r = bytes32(sig[0:32]);
        bytes32 s = bytes32(sig[32:64]);
        uint8 v = uint8(sig[64]);
        require(v == 27 || v == 28, "TicketBroker: signature v must be 27 or 28");
        require(uint256(s) <= HALF_CURVE_ORDER, "TicketBroker: signature s is not low");
        bytes32 digest = keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", hash));
        address signer = ecrecover(digest, v, r, s);
        require(signer != address(0), "TicketBroker: invalid signature over ticket hash");
        return signer;
    }

    function pay(address to, uint256 amount) private {
        if (amount == 0) {
            return;
        }
        (bool ok,) = payable(to).call{value: amount}("");
        require(ok, "TicketBroker: ETH transfer failed");
    }

    function rounds() private view returns (IRoundsView) {
        return IRoundsView(contractNamed("RoundsManager"));
    }

    function contractNamed(string memory name) private view returns (address) {
        address a = controller.getContract(keccak256(bytes(name)));
        require(a != address(0), string.concat("TicketBroker: no ", name, " in the controller"));
        return a;
    }
}
