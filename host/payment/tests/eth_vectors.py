"""Independent reference for byoc-payment's signing: eth-account (the Ethereum Python library).

Reads one JSON command from stdin, prints one JSON result.
  {"op": "sign", "key": hex, "messages": [hex...]}  -> {"address", "signatures": [0x..]}
      signs keccak256(message) with EIP-191 personal_sign, as go-livepeer does
  {"op": "recover", "items": [{"message": hex, "signature": 0x..}]} -> {"addresses": [...]}
  {"op": "checksum", "addresses": [hex...]} -> {"addresses": [...]}
  {"op": "encrypt", "key": hex, "password": str} -> {"keystore": {...}}
  {"op": "decrypt", "keystore": {...}, "password": str} -> {"key": hex}
"""
import json
import sys

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak, to_checksum_address


def main():
    cmd = json.load(sys.stdin)
    op = cmd["op"]
    if op == "sign":
        acct = Account.from_key(bytes.fromhex(cmd["key"]))
        sigs = []
        for m in cmd["messages"]:
            digest = keccak(bytes.fromhex(m))
            signed = acct.sign_message(encode_defunct(primitive=digest))
            sigs.append("0x" + bytes(signed.signature).hex())
        out = {"address": acct.address, "signatures": sigs}
    elif op == "recover":
        out = {"addresses": [
            Account.recover_message(encode_defunct(primitive=keccak(bytes.fromhex(i["message"]))),
                                    signature=bytes.fromhex(i["signature"][2:]))
            for i in cmd["items"]]}
    elif op == "checksum":
        out = {"addresses": [to_checksum_address("0x" + a) for a in cmd["addresses"]]}
    elif op == "encrypt":
        ks = Account.encrypt(bytes.fromhex(cmd["key"]), cmd["password"], kdf="scrypt", iterations=4096)
        out = {"keystore": ks}
    elif op == "decrypt":
        out = {"key": bytes(Account.decrypt(cmd["keystore"], cmd["password"])).hex()}
    else:
        raise SystemExit(f"unknown op {op}")
    json.dump(out, sys.stdout)


main()
