"""Independent reference for byoc-payment's tickets: Python with livepeer-gateway's generated lp_rpc_pb2
and eth-account, following go-livepeer pm/ (ticket.go, sender.go, validator.go) from its documentation.

Reads one JSON command from stdin, prints one JSON result.
  {"op": "pay", "key": hex, "ticket_params": {go JSON}, "price": {"pricePerUnit", "pixelsPerUnit"},
   "n": int}
      -> {"header": base64 Payment, "sender": 0x.., "ev_total": "N/D"}
  {"op": "decode", "header": base64}
      -> {"sender", "recipient", "face_value", "win_prob", "recipient_rand_hash", "seed", "expiration_block",
          "creation_round", "creation_round_block_hash", "price": [per_unit, pixels_per_unit],
          "tickets": [{"nonce", "signer"}]}
"""
import base64
import json
import sys
from fractions import Fraction

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak, to_checksum_address
from google.protobuf import json_format
from livepeer_gateway import lp_rpc_pb2 as pb

MAX_WIN_PROB = 2**256 - 1


def u256(b: bytes) -> bytes:
    """A big-endian integer's bytes left-padded to 32 (Solidity uint256)."""
    return int.from_bytes(b, "big").to_bytes(32, "big")


def ticket_hash(recipient, sender, face_value, win_prob, nonce, rand_hash, round_, round_hash):
    packed = recipient + sender + u256(face_value) + u256(win_prob) + nonce.to_bytes(32, "big") + rand_hash
    if round_ != 0 or any(round_hash):
        packed += abs(round_).to_bytes(32, "big") + round_hash
    return keccak(packed)


def hash_of(payment: pb.Payment, nonce: int) -> bytes:
    tp = payment.ticket_params
    ep = payment.expiration_params
    return ticket_hash(tp.recipient, payment.sender, tp.face_value, tp.win_prob, nonce, tp.recipient_rand_hash,
                       ep.creation_round, ep.creation_round_block_hash.rjust(32, b"\0"))


def pay(cmd):
    acct = Account.from_key(bytes.fromhex(cmd["key"]))
    params = json_format.ParseDict(cmd["ticket_params"], pb.TicketParams())
    payment = pb.Payment()
    payment.ticket_params.CopyFrom(params)
    payment.sender = bytes.fromhex(acct.address[2:])
    payment.expiration_params.CopyFrom(params.expiration_params)
    payment.expected_price.pricePerUnit = cmd["price"].get("pricePerUnit", 0)
    payment.expected_price.pixelsPerUnit = cmd["price"].get("pixelsPerUnit", 0)
    for nonce in range(1, cmd["n"] + 1):
        signed = acct.sign_message(encode_defunct(primitive=hash_of(payment, nonce)))
        payment.ticket_sender_params.add(sender_nonce=nonce, sig=bytes(signed.signature))
    ev = Fraction(int.from_bytes(params.face_value, "big") * int.from_bytes(params.win_prob, "big"), MAX_WIN_PROB)
    total = ev * cmd["n"]
    return {
        "header": base64.b64encode(payment.SerializeToString()).decode(),
        "sender": acct.address,
        "ev_total": f"{total.numerator}/{total.denominator}",
    }


def decode(cmd):
    payment = pb.Payment()
    payment.ParseFromString(base64.b64decode(cmd["header"], validate=True))
    tp = payment.ticket_params
    tickets = []
    for tsp in payment.ticket_sender_params:
        signer = Account.recover_message(encode_defunct(primitive=hash_of(payment, tsp.sender_nonce)),
                                         signature=tsp.sig)
        tickets.append({"nonce": tsp.sender_nonce, "signer": signer})
    return {
        "sender": to_checksum_address(payment.sender),
        "recipient": to_checksum_address(tp.recipient),
        "face_value": str(int.from_bytes(tp.face_value, "big")),
        "win_prob": str(int.from_bytes(tp.win_prob, "big")),
        "recipient_rand_hash": tp.recipient_rand_hash.hex(),
        "seed": tp.seed.hex(),
        "expiration_block": int.from_bytes(tp.expiration_block, "big"),
        "creation_round": payment.expiration_params.creation_round,
        "creation_round_block_hash": payment.expiration_params.creation_round_block_hash.hex(),
        "price": [payment.expected_price.pricePerUnit, payment.expected_price.pixelsPerUnit],
        "tickets": tickets,
    }


def main():
    cmd = json.load(sys.stdin)
    out = {"pay": pay, "decode": decode}[cmd["op"]](cmd)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
