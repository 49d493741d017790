"""A real pytrickle BYOC worker (passthrough video, echoes params as data), registered with an
orchestrator through pytrickle's own RegisterCapability. Needs the full pytrickle install
(`target/worker-venv`, see xtask/src/env.rs). Used by host/orchestrator/tests/pytrickle_worker.rs.

env: ORCH_URL, ORCH_SECRET (registration is skipped if either is empty), CAPABILITY_NAME,
CAPABILITY_URL (what the orchestrator will call), CAPABILITY_CAPACITY, WORKER_PORT (default 8000).
The process exits by itself if its parent goes away (so a killed test leaves nothing behind)."""
import asyncio, json, logging, os
from pytrickle import StreamProcessor, RegisterCapability
from pytrickle.decorators import video_handler, param_updater, on_stream_start, on_stream_stop

logging.basicConfig(level=os.environ.get("LOGLEVEL", "INFO"))
log = logging.getLogger("peer_worker")


class Handlers:
    processor = None

    @on_stream_start
    async def start(self, params):
        log.info("on_stream_start %s", params)

    @video_handler
    async def video(self, frame):
        return frame

    @param_updater
    async def update(self, params):
        log.info("params %s", params)
        if self.processor:  # goes out on the data channel (application/jsonl)
            await self.processor.send_data(json.dumps({"params": params}))

    @on_stream_stop
    async def stop(self):
        log.info("on_stream_stop")


async def orphan_watch():
    parent = os.getppid()
    while True:
        await asyncio.sleep(1)
        if os.getppid() != parent:
            log.info("parent gone, exiting")
            os._exit(0)


async def main():
    h = Handlers()
    proc = StreamProcessor.from_handlers(
        h, name=os.environ.get("CAPABILITY_NAME", "peer-worker"), port=int(os.environ.get("WORKER_PORT", "8000"))
    )
    h.processor = proc

    async def register():
        await asyncio.sleep(1)
        log.info("register -> %s", await RegisterCapability.register(logger=log))

    await asyncio.gather(proc.run_forever(), register(), orphan_watch())


asyncio.run(main())
