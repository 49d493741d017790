"""Glass-to-glass peers for `cargo xtask bench media` (host/gateway/benches/media.rs).

A synthetic video track (H.264, 30 fps) whose frames carry their index as a barcode: 16 bits and their
complement in 32 black/white blocks, read back by the average luminance of each block's middle, which
survives H.264. Its send time is the moment the frame is handed to the encoder; a viewer in the same
process reads the index from each decoded frame, so latency = receive time - send time on one clock.
Audio is aiortc's silence track (Opus), as the pipeline carries audio too.

Modes (one JSON line on stdout at the end, {"error": ...} on failure; problems on stderr):
  latency WHIP_URL WHEP_URL  publish to the gateway, watch its WHEP output
  direct                     the same publisher and viewer connected to each other (the baseline)
  publish WHIP_URL           only publish (the CPU runs): prints {"connected": true} once connected, then
                             publishes until stdin closes (at most --seconds)
Options: --seconds S (measured time), --warmup S, --size WxH.
"""
import argparse
import asyncio
import fractions
import json
import random
import statistics
import sys
import threading
import time
import urllib.parse

import aiohttp
import aioice.ice
import av
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack

# aioice leaves out 127.0.0.1; the bench stays on loopback.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

FPS = 30
BITS = 16
COLS, ROWS = 16, 2  # 32 blocks: the index, then its complement
BLACK, WHITE = 16, 235
CONNECT_TIMEOUT = 20.0


def log(msg):
    print(f"g2g: {msg}", file=sys.stderr, flush=True)


class Layout:
    """Where the barcode blocks are in a WxH picture."""

    def __init__(self, width, height):
        self.width, self.height = width, height
        self.bw, self.bh = width // 20, height // 8
        self.x0, self.y0 = 2 * self.bw, self.bh

    def blocks(self):
        """The top-left corner of each block, in bit order."""
        for k in range(COLS * ROWS):
            row, col = divmod(k, COLS)
            yield self.x0 + col * self.bw, self.y0 + row * self.bh


def code(index):
    """The 32 block values of a frame index: its 16 bits, then their complement."""
    bits = [(index >> (BITS - 1 - i)) & 1 for i in range(BITS)]
    return bits + [1 - b for b in bits]


def plane_bytes(plane, rows, width, data):
    """`data` (rows of `width` bytes) laid out with the plane's line size."""
    if plane.line_size == width:
        return bytes(data)
    pad = b"\0" * (plane.line_size - width)
    return b"".join(bytes(data[r * width : (r + 1) * width]) + pad for r in range(rows))


class BarcodeTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, width, height):
        super().__init__()
        self.layout = Layout(width, height)
        self.index = 0
        self.start = None
        self.sent = {}  # index -> send time
        # Behind the barcode, a texture of 4x4 random cells scrolling sideways, so that the encoder has
        # a camera's kind of work to do (motion, detail), and a moving bar.
        w, h = width, height
        rng = random.Random(7)
        self.texture = []
        for _ in range((h + 3) // 4):
            cells = bytes(rng.randrange(40, 216) for _ in range(w // 2))
            row = bytes(b for c in cells for b in (c, c, c, c))
            self.texture.append(row + row)
        self.chroma = bytes([128]) * ((w // 2) * (h // 2))

    async def recv(self):
        if self.start is None:
            self.start = time.monotonic()
        i = self.index
        self.index += 1
        due = self.start + i / FPS
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        lay = self.layout
        w, h = lay.width, lay.height
        shift = (i * 2) % (2 * w)
        y = bytearray(b"".join(self.texture[r // 4][shift : shift + w] for r in range(h)))
        bar_x = (i * 8) % (w - 16)
        bar = bytes([WHITE]) * 16
        for row in range(3 * lay.bh, h):
            o = row * w + bar_x
            y[o : o + 16] = bar
        bits = code(i)
        for r in range(ROWS):
            line = b"".join(bytes([WHITE if bits[r * COLS + c] else BLACK]) * lay.bw for c in range(COLS))
            top = lay.y0 + r * lay.bh
            for row in range(top, top + lay.bh):
                o = row * w + lay.x0
                y[o : o + len(line)] = line
        frame = av.VideoFrame(w, h, "yuv420p")
        planes = ((h, w, y), (h // 2, w // 2, self.chroma), (h // 2, w // 2, self.chroma))
        for plane, (rows, pw, data) in zip(frame.planes, planes):
            plane.update(plane_bytes(plane, rows, pw, data))
        frame.pts = i * (90000 // FPS)
        frame.time_base = fractions.Fraction(1, 90000)
        self.sent[i] = time.monotonic()
        return frame


def read_index(frame, layout_cache):
    """The frame's index, or None when the barcode does not check out."""
    w, h = frame.width, frame.height
    lay = layout_cache.get((w, h))
    if lay is None:
        lay = layout_cache[(w, h)] = Layout(w, h)
    plane = frame.planes[0]
    data = bytes(plane)
    stride = plane.line_size
    bits = []
    for x, y in lay.blocks():
        # A 4x4 grid of samples over the middle half of the block.
        total = 0
        for sy in range(4):
            row = (y + lay.bh // 4 + (sy * lay.bh) // 8) * stride
            for sx in range(4):
                total += data[row + x + lay.bw // 4 + (sx * lay.bw) // 8]
        bits.append(1 if total / 16 > (BLACK + WHITE) / 2 else 0)
    value = 0
    for b in bits[:BITS]:
        value = (value << 1) | b
    if any(a == b for a, b in zip(bits[:BITS], bits[BITS:])):
        return None
    return value


class Viewer:
    """Decodes frames of the tracks it is given; keeps (index, receive time, keyframe)."""

    def __init__(self):
        self.frames = []
        self.unreadable = 0
        self.first = asyncio.get_running_loop().create_future()
        self.size = (0, 0)
        self.tasks = []

    def on_track(self, track):
        self.tasks.append(asyncio.ensure_future(self.pump(track)))

    async def pump(self, track):
        cache = {}
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            if track.kind != "video":
                continue
            now = time.monotonic()
            self.size = (frame.width, frame.height)
            index = read_index(frame, cache)
            if index is None:
                self.unreadable += 1
                continue
            self.frames.append((index, now, bool(frame.key_frame)))
            if not self.first.done():
                self.first.set_result(now)


def publisher_pc(width, height):
    pc = RTCPeerConnection()
    track = BarcodeTrack(width, height)
    t = pc.addTransceiver(track, direction="sendonly")
    t.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"])
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    return pc, track


class Http:
    """WHIP/WHEP signalling: POST an offer, DELETE the session at the end."""

    def __init__(self, session):
        self.session = session
        self.locations = []

    async def offer(self, pc, url):
        await pc.setLocalDescription(await pc.createOffer())
        headers = {"Content-Type": "application/sdp"}
        async with self.session.post(url, data=pc.localDescription.sdp, headers=headers) as r:
            body = await r.text()
            if r.status != 201:
                raise RuntimeError(f"POST {url}: {r.status} {body}")
            u = urllib.parse.urlsplit(url)
            token = urllib.parse.parse_qs(u.query).get("token", [""])[0]
            self.locations.append(f"{u.scheme}://{u.netloc}{r.headers['Location']}?token={token}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))

    async def close(self):
        for loc in self.locations:
            try:
                async with self.session.delete(loc) as r:
                    await r.read()
            except aiohttp.ClientError as e:
                log(f"DELETE failed: {e}")


async def wait_connected(pc):
    deadline = time.monotonic() + CONNECT_TIMEOUT
    while pc.connectionState != "connected":
        if time.monotonic() > deadline or pc.connectionState in ("failed", "closed"):
            raise RuntimeError(f"not connected: {pc.connectionState}")
        await asyncio.sleep(0.05)


def summary(viewer, track, start, end):
    lat = sorted(t - track.sent[i] for i, t, _ in viewer.frames if start <= t < end and i in track.sent)
    keys = sorted({i for i, _, k in viewer.frames if k})
    gaps = [(b - a) / FPS for a, b in zip(keys, keys[1:])]

    def pct(p):
        return lat[min(len(lat) - 1, round((len(lat) - 1) * p))] * 1000 if lat else None

    return {
        "frames": len(lat),
        "expected": round((end - start) * FPS),
        "unreadable": viewer.unreadable,
        "p50_ms": pct(0.5),
        "p95_ms": pct(0.95),
        "max_ms": lat[-1] * 1000 if lat else None,
        "mean_ms": statistics.fmean(lat) * 1000 if lat else None,
        "keyframe_gaps_s": gaps,
        "width": viewer.size[0],
        "height": viewer.size[1],
    }


async def measure(viewer, track, warmup, seconds):
    await asyncio.wait_for(viewer.first, CONNECT_TIMEOUT)
    await asyncio.sleep(warmup)
    start = time.monotonic()
    await asyncio.sleep(seconds)
    end = time.monotonic()
    await asyncio.sleep(0.2)
    return summary(viewer, track, start, end)


async def latency(args):
    width, height = args.size
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        http = Http(session)
        pub, track = publisher_pc(width, height)
        view = RTCPeerConnection()
        viewer = Viewer()
        view.on("track", viewer.on_track)
        try:
            await http.offer(pub, args.whip)
            await wait_connected(pub)
            # Let the ingest cut its first segments before the viewer joins.
            await asyncio.sleep(args.warmup)
            view.addTransceiver("video", direction="recvonly")
            view.addTransceiver("audio", direction="recvonly")
            await http.offer(view, args.whep)
            result = await measure(viewer, track, args.warmup, args.seconds)
        finally:
            await http.close()
            await view.close()
            await pub.close()
    return result


async def direct(args):
    width, height = args.size
    pub, track = publisher_pc(width, height)
    view = RTCPeerConnection()
    viewer = Viewer()
    view.on("track", viewer.on_track)
    try:
        await pub.setLocalDescription(await pub.createOffer())
        await view.setRemoteDescription(pub.localDescription)
        await view.setLocalDescription(await view.createAnswer())
        await pub.setRemoteDescription(view.localDescription)
        result = await measure(viewer, track, args.warmup, args.seconds)
    finally:
        await view.close()
        await pub.close()
    return result


async def publish(args):
    width, height = args.size
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        http = Http(session)
        pub, track = publisher_pc(width, height)
        try:
            await http.offer(pub, args.whip)
            await wait_connected(pub)
            print(json.dumps({"connected": True}), flush=True)
            # Until the bench closes our stdin, at most --seconds.
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()

            def wait_stdin():
                sys.stdin.read()
                loop.call_soon_threadsafe(stop.set)

            threading.Thread(target=wait_stdin, daemon=True).start()
            try:
                await asyncio.wait_for(stop.wait(), args.seconds)
            except asyncio.TimeoutError:
                pass
        finally:
            await http.close()
            await pub.close()
    return {"frames": track.index, "state": pub.connectionState}


def size(s):
    w, h = s.lower().split("x")
    return int(w), int(h)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["latency", "direct", "publish"])
    p.add_argument("urls", nargs="*")
    p.add_argument("--seconds", type=float, default=12.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--size", type=size, default=(640, 360))
    args = p.parse_args()
    if args.mode == "latency":
        args.whip, args.whep = args.urls
        run = latency
    elif args.mode == "publish":
        (args.whip,) = args.urls
        run = publish
    else:
        run = direct
    try:
        result = asyncio.run(run(args))
    except Exception as e:  # reported to the bench, which prints it
        result = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(result), flush=True)


main()
