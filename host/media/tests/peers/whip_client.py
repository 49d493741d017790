"""A WHIP publisher for tests: aiortc sends a 640x360 H.264 test pattern and Opus audio.

Signalling goes over stdio so that the test needs no HTTP server: prints {"offer": sdp}, reads
{"answer": sdp}, publishes for SECS seconds, prints {"state": connectionState}, closes after one more stdin line.
"""
import asyncio
import json
import sys

import aioice.ice
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

# aioice leaves out 127.0.0.1; tests stay on loopback.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


async def main(secs: float) -> None:
    pc = RTCPeerConnection()
    video = MediaPlayer("testsrc=size=640x360:rate=30", format="lavfi")
    audio = MediaPlayer("sine=frequency=440:sample_rate=48000", format="lavfi")
    t = pc.addTransceiver(video.video, direction="sendonly")
    t.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"])
    pc.addTransceiver(audio.audio, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    print(json.dumps({"offer": pc.localDescription.sdp}), flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=json.loads(line)["answer"], type="answer"))
    await asyncio.sleep(secs)
    print(json.dumps({"state": pc.connectionState}), flush=True)
    # The test ends the session with DELETE first, then lets us go.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await pc.close()


asyncio.run(main(float(sys.argv[1])))
