"""Batch jobs submitted with the official Livepeer Python SDK (livepeer-gateway 1.0.0), the way
an application calls it: `submit_byoc_job(ByocJobRequest(capability, payload), orch_url=...)`, no
signer (an orchestrator in free mode). Used by tests/tests/python_sdk.rs.

usage: sdk_batch.py ORCH_URL < jobs
  jobs: one JSON object a line, {"capability": "...", "payload": {...}}
  out:  one JSON line a job, {"capability", "status", "data", "balance"}, or {"capability", "error"}
        when the SDK raised (a 4xx answer, no orchestrator...); then `DONE`."""
import json
import sys

from livepeer_gateway.byoc import ByocJobRequest, submit_byoc_job
from livepeer_gateway.errors import LivepeerGatewayError

orch = sys.argv[1]
for line in sys.stdin:
    if not line.strip():
        continue
    job = json.loads(line)
    cap = job["capability"]
    try:
        resp = submit_byoc_job(ByocJobRequest(capability=cap, payload=job["payload"], timeout_seconds=30), orch_url=orch)
        data = resp.data.decode("utf-8", "replace") if isinstance(resp.data, bytes) else resp.data
        out = {"capability": cap, "status": resp.status_code, "data": data, "balance": resp.balance}
    except LivepeerGatewayError as e:
        out = {"capability": cap, "error": str(e)}
    print(json.dumps(out), flush=True)
print("DONE", flush=True)
