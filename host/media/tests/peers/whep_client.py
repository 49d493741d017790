"""A WHEP viewer for tests: aiortc receives video and audio and counts decoded frames.

Signalling over stdio: prints {"offer": sdp}, reads {"answer": sdp}, watches for SECS seconds, prints
{"state", "video_frames", "width", "height", "audio_frames"}, closes after one more stdin line.
"""
import asyncio
import json
import sys

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription

aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


async def main(secs: float) -> None:
    pc = RTCPeerConnection()
    stats = {"video_frames": 0, "width": 0, "height": 0, "audio_frames": 0}

    @pc.on("track")
    def on_track(track):
        async def pump():
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                if track.kind == "video":
                    stats["video_frames"] += 1
                    stats["width"], stats["height"] = frame.width, frame.height
                else:
                    stats["audio_frames"] += 1

        asyncio.ensure_future(pump())

    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    print(json.dumps({"offer": pc.localDescription.sdp}), flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=json.loads(line)["answer"], type="answer"))
    await asyncio.sleep(secs)
    print(json.dumps({"state": pc.connectionState, **stats}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await pc.close()


asyncio.run(main(float(sys.argv[1])))
