"""A WHEP viewer for tests: aiortc receives video and audio and counts decoded frames.

Signalling over stdio: prints {"offer": sdp}, reads {"answer": sdp}, watches for SECS seconds, prints
{"state", "video_frames", "width", "height", "audio_frames", "chroma_max", "gray_frames"}, closes after
one more stdin line. chroma_max: the largest |U - 128| or |V - 128| of any decoded video frame (in
yuv420p); gray_frames: the frames whose chroma is all within 3 of 128.
"""
import asyncio
import json
import sys

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription

aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def chroma_offset(frame) -> int:
    """The largest distance from 128 of the frame's U and V samples (row by row: planes are padded)."""
    yuv = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
    worst = 0
    for plane in yuv.planes[1:]:
        data, width, stride = bytes(plane), plane.width, plane.line_size
        for row in range(plane.height):
            line = data[row * stride : row * stride + width]
            worst = max(worst, max(line) - 128, 128 - min(line))
    return worst


async def main(secs: float) -> None:
    pc = RTCPeerConnection()
    stats = {"video_frames": 0, "width": 0, "height": 0, "audio_frames": 0, "chroma_max": 0, "gray_frames": 0}

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
                    offset = chroma_offset(frame)
                    stats["chroma_max"] = max(stats["chroma_max"], offset)
                    stats["gray_frames"] += offset <= 3
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
