"""The official Livepeer Python SDK (livepeer-gateway 1.0.0) paying through a remote signer
(`byoc signer`), the way an application calls it. Used by tests/tests/signer.rs.

usage: sdk_paid.py jobs ORCH_URL SIGNER_URL API_KEY
         two `submit_byoc_job` calls on text-transform with orch_url and signer_url, then
         `discover_orchestrators(signer_url=...)`; out: one JSON line each
         ({"status", "data", "balance"} or {"error"}; {"discovered": [...]}) and `DONE`.
       sdk_paid.py info GRPC_URL SIGNER_URL API_KEY
         `get_orch_info` (its request signed by the signer); out: {"info": base64 OrchestratorInfo}."""
import base64
import json
import sys

from livepeer_gateway.byoc import ByocJobRequest, submit_byoc_job
from livepeer_gateway.discovery import discover_orchestrators
from livepeer_gateway.errors import LivepeerGatewayError
from livepeer_gateway.orch_info import get_orch_info

mode, url, signer, key = sys.argv[1:5]
headers = {"Authorization": f"Bearer {key}"}

if mode == "info":
    info = get_orch_info(url, signer_url=signer, signer_headers=headers)
    print(json.dumps({"info": base64.b64encode(info.SerializeToString()).decode()}), flush=True)
    sys.exit(0)

for _ in range(2):
    try:
        resp = submit_byoc_job(
            ByocJobRequest(capability="text-transform", payload={"text": "hello byoc", "mode": "upper"}),
            orch_url=url,
            signer_url=signer,
            signer_headers=headers,
        )
        out = {"status": resp.status_code, "data": resp.data, "balance": resp.balance}
    except LivepeerGatewayError as e:
        out = {"error": str(e)}
    print(json.dumps(out), flush=True)
try:
    print(json.dumps({"discovered": discover_orchestrators(signer_url=signer, signer_headers=headers)}), flush=True)
except LivepeerGatewayError as e:
    print(json.dumps({"error": str(e)}), flush=True)
print("DONE", flush=True)
