"""Orchestrator info over gRPC with the official Livepeer Python SDK (livepeer-gateway 1.0.0): its own
trust-on-first-use TLS channel (`create_orchestrator_stub`) and `call_get_orchestrator`, the way
`submit_byoc_job` fetches ticket params before paying. The request is signed here with eth_account as a
remote signer's `/sign-orchestrator-info` signs it: personal_sign of keccak256 of the sender's checksummed
address. Used by host/orchestrator/tests/it/grpc.rs.

usage: sdk_orch_info.py GRPC_URL [SENDER_KEY_HEX [SIGNING_KEY_HEX]] [--method /pkg.Service/Method]
  no key: an unsigned request (free mode). SIGNING_KEY_HEX: sign the sender's address with another key
  (a forgery). --method: call that method instead, with an empty request.
  out: one JSON line: {"ok": true, "info": base64 OrchestratorInfo, "face_value": hex, "price": [n, d],
       "address": hex, "byoc": {name: [n, d]}, "token": {"session", "expiration", "len"}, "transcoder"}
       or {"ok": false, "code": "UNAUTHENTICATED", "error": "..."}."""
import base64
import json
import sys

import grpc
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak

from livepeer_gateway import lp_rpc_pb2
from livepeer_gateway.orch_info import OrchestratorRpcError, call_get_orchestrator, create_orchestrator_stub

args = sys.argv[1:]
method = None
if "--method" in args:
    i = args.index("--method")
    method = args[i + 1]
    del args[i : i + 2]
url = args[0]
keys = args[1:]

channel, stub = create_orchestrator_stub(url)
if method:
    call = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        call(b"", timeout=5.0)
        print(json.dumps({"ok": True}))
    except grpc.RpcError as e:
        print(json.dumps({"ok": False, "code": e.code().name, "error": e.details() or ""}))
    sys.exit(0)

request = lp_rpc_pb2.OrchestratorRequest(ignoreCapacityCheck=True)
if keys:
    sender = Account.from_key(keys[0])
    signer = Account.from_key(keys[1] if len(keys) > 1 else keys[0])
    digest = keccak(text=sender.address)  # the checksummed address, as text
    sig = signer.sign_message(encode_defunct(primitive=digest)).signature
    request.address = bytes.fromhex(sender.address[2:])
    request.sig = bytes(sig)

try:
    info = call_get_orchestrator(stub, request, url)
except OrchestratorRpcError as e:
    code = e.cause.code().name if isinstance(e.cause, grpc.RpcError) else "UNKNOWN"
    print(json.dumps({"ok": False, "code": code, "error": str(e)}))
    sys.exit(0)

print(
    json.dumps(
        {
            "ok": True,
            "info": base64.b64encode(info.SerializeToString()).decode(),
            "face_value": info.ticket_params.face_value.hex(),
            "price": [info.price_info.pricePerUnit, info.price_info.pixelsPerUnit],
            "address": info.address.hex(),
            "byoc": {p.constraint: [p.pricePerUnit, p.pixelsPerUnit] for p in info.capabilities_prices if p.capability == 37},
            "token": {
                "session": info.auth_token.session_id,
                "expiration": info.auth_token.expiration,
                "len": len(info.auth_token.token),
            },
            "transcoder": info.transcoder,
        }
    )
)
