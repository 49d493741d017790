#!/usr/bin/env python3
"""Third-party trickle clients as test peers for byoc's trickle server and clients.

--client pytrickle : pytrickle.publisher.TricklePublisher / pytrickle.subscriber.TrickleSubscriber
--client lpgw      : livepeer_gateway.trickle_publisher / trickle_subscriber

modes:
  bench  one publisher + S subscribers in one process, publisher at most W
         segments ahead of the slowest subscriber; verifies every byte
  pub    publish segments to URL (then optionally DELETE the channel)
  sub    read segments from URL starting at --start, verify them, exit 0 iff all good

Payloads: without --files, segment i = 8-byte big-endian i followed by bytes (i % 251),
SIZE bytes in all. With --files DIR, the regular files of DIR in name order are segments
0, 1, 2, ...: `pub` publishes each file as one segment (from file --from), `sub` checks that
segment seq is byte-equal to file number seq.

Output: `READY` (sub: imports done, before the first GET), `FIRST seq=N` (sub: first segment
verified), then one result line starting with PUB/SUB/BENCH (key=value pairs). Exit status 0
only if every segment verified, with no gap, and the stream ended the expected way.
"""
import argparse
import asyncio
import importlib.util
import logging
import os
import struct
import sys
import time
import types

import aiohttp


def load_pytrickle():
    """Import pytrickle's publisher/subscriber. pytrickle/__init__ imports torch,
    av, numpy, cv2; when they are missing, load only the two modules (plus base)
    from the installed package without running __init__."""
    try:
        from pytrickle.publisher import TricklePublisher
        from pytrickle.subscriber import TrickleSubscriber
        return TricklePublisher, TrickleSubscriber
    except ImportError:
        for k in [k for k in sys.modules if k == "pytrickle" or k.startswith("pytrickle.")]:
            del sys.modules[k]
        spec = importlib.util.find_spec("pytrickle")
        pkg = types.ModuleType("pytrickle")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["pytrickle"] = pkg
        from pytrickle.publisher import TricklePublisher
        from pytrickle.subscriber import TrickleSubscriber
        return TricklePublisher, TrickleSubscriber


def payload(i, size):
    b = bytearray([i % 251]) * size
    if size >= 8:
        b[:8] = struct.pack(">Q", i)
    return bytes(b)


class Segments:
    """What segment `seq` must hold: the payload convention, or the files of a directory."""

    def __init__(self, size, files_dir=None):
        self.size = size
        self.files = []
        if files_dir:
            names = sorted(n for n in os.listdir(files_dir) if os.path.isfile(os.path.join(files_dir, n)))
            if not names:
                raise SystemExit(f"no files in {files_dir}")
            self.files = [os.path.join(files_dir, n) for n in names]

    def count(self):
        return len(self.files) if self.files else None

    def get(self, seq):
        if not self.files:
            return payload(seq, self.size)
        if 0 <= seq < len(self.files):
            with open(self.files[seq], "rb") as f:
                return f.read()
        return None

    def ext(self, seq):
        if self.files and 0 <= seq < len(self.files):
            return os.path.splitext(self.files[seq])[1] or ".bin"
        return ".bin"


class Client:
    def __init__(self, kind, sync_post=True):
        self.kind = kind
        self.sync_post = sync_post
        self.errors = []  # pytrickle reports failures only through its error callback
        if kind == "pytrickle":
            pub, sub = load_pytrickle()

            # pytrickle gives no way to know when a segment's POST has finished, and its close()
            # cancels POSTs still in flight: count finished POSTs so `pub` can wait for them.
            class CountingPublisher(pub):
                posts_done = 0

                async def _run_post(self, url, queue):
                    try:
                        await super()._run_post(url, queue)
                    finally:
                        self.posts_done += 1

            self.Pub, self.Sub = CountingPublisher, sub
        else:
            from livepeer_gateway.trickle_publisher import TricklePublisher
            from livepeer_gateway.trickle_subscriber import TrickleSubscriber
            self.Pub, self.Sub = TricklePublisher, TrickleSubscriber

    async def on_error(self, kind, exc):
        self.errors.append(f"{kind}: {exc}")

    def publisher(self, url, mime, start=0):
        if self.kind == "pytrickle":
            return self.Pub(url, mime, error_callback=self.on_error)  # always starts at seq 0
        # lpgw default start_seq=-1: GET {url}/next, use Lp-Trickle-Latest, and
        # send Lp-Trickle-Reset: 1 on that first POST
        return self.Pub(url, mime, start_seq=start)

    def subscriber(self, url, start):
        if self.kind == "pytrickle":
            return self.Sub(url, start_seq=start, error_callback=self.on_error)
        return self.Sub(url, start_seq=start)

    async def start(self, obj):
        if self.kind == "pytrickle":
            await obj.start()

    async def read_segment(self, seg):
        """The segment's bytes, and how many read() calls returned data."""
        chunks = []
        # pytrickle Segment.read(n) -> b"" at end; livepeer_gateway SegmentReader
        # needs make_reader(), whose read(chunk_size=) -> None at end
        rd = seg if self.kind == "pytrickle" else seg.make_reader()
        try:
            while True:
                c = await rd.read(256 * 1024)
                if not c:
                    break
                chunks.append(c)
        finally:
            await seg.close()
        return b"".join(chunks), len(chunks)

    async def first_read(self, seg):
        """One read() with the library's default chunk size (what the pytrickle worker does with
        a control message), then the rest. Returns (first read, whole segment)."""
        rd = seg if self.kind == "pytrickle" else seg.make_reader()
        try:
            first = await rd.read() or b""
            rest = [first]
            while True:
                c = await rd.read()
                if not c:
                    break
                rest.append(c)
        finally:
            await seg.close()
        return first, b"".join(rest)

    def end_reason(self, sub):
        """Why a subscriber's next() returned None: eos (Lp-Trickle-Closed), 404 or error."""
        if self.kind == "pytrickle":
            err = sub.last_error or ""
            return "eos" if not err else ("404" if err.startswith("stream_not_found") else "error")
        st = sub.get_stats()
        if st.get_404_eos:
            return "404"
        return "error" if sub._errored else "eos"

    def pub_failures(self, pub):
        if self.kind == "pytrickle":
            return len(self.errors)
        return pub.get_stats().segments_failed


async def http(method, url, **kw):
    async with aiohttp.ClientSession() as s:
        async with s.request(method, url, **kw) as r:
            await r.read()
            return r.status


async def wait_channel(url, secs=10.0):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            if await http("GET", url + "/next") == 200:
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.02)
    raise SystemExit(f"channel {url} never appeared")


async def run_sub(cl, url, segs, n, start, done=None, res=None, one_read=False, out=None, until_eos=False,
                  first_cb=None):
    """Reads segments until n were read (n None: until the last file, or until_eos: until the
    stream ends). Counts bad (bytes differ), gaps (seq not previous+1) and split (one_read: the
    first read() did not return the whole segment)."""
    res = res if res is not None else {}
    res.update(got=0, bad=0, gaps=0, split=0, bytes=0, first=None, last=None, end="count", detail="")
    sub = cl.subscriber(url, start)
    await cl.start(sub)
    expect = start
    last_file = segs.count() - 1 if segs.count() else None
    try:
        while until_eos or (n is not None and res["got"] < n) or (n is None and res["last"] != last_file):
            seg = await sub.next()
            if seg is None:
                res["end"] = cl.end_reason(sub)
                break
            seq = seg.seq()
            if expect >= 0 and seq != expect:
                res["gaps"] += 1
                res["detail"] += f" gap:{expect}->{seq}"
            expect = seq + 1
            try:
                if one_read:
                    first, body = await cl.first_read(seg)
                    if first != body:
                        res["split"] += 1
                        res["detail"] += f" split:{seq}:{len(first)}/{len(body)}"
                else:
                    body, _ = await cl.read_segment(seg)
            except Exception as e:  # a segment cut short (aborted by its publisher)
                res["bad"] += 1
                res["detail"] += f" error:{seq}:{type(e).__name__}"
                res["end"] = "error"
                break
            want = segs.get(seq)
            if body != want:
                res["bad"] += 1
                res["detail"] += f" bad:{seq}:{len(body)}/{None if want is None else len(want)}"
            if out:
                with open(os.path.join(out, f"{seq:06d}{segs.ext(seq)}"), "wb") as f:
                    f.write(body)
            res["bytes"] += len(body)
            res["got"] += 1
            res["last"] = seq
            if res["first"] is None:
                res["first"] = seq
                if first_cb:
                    first_cb(seq)
            if done is not None:
                done.put_nowait(seq)
    finally:
        await sub.close()
    return res


async def publish(cl, pub, i, data):
    seg = await pub.next()
    # write in 64 KiB chunks like a real encoder would
    for off in range(0, len(data), 65536):
        await seg.write(data[off:off + 65536])
    await seg.close()
    if cl.kind == "pytrickle":
        # pytrickle race: next() only advances its seq in a background task; a
        # second next() before that task ran would POST the same seq again.
        # A real encoder yields between segments; here we wait for the task.
        for _ in range(10000):
            if pub.idx > i:
                break
            await asyncio.sleep(0)
    elif cl.sync_post:
        # livepeer_gateway returns from close() before its POST is done. With
        # segments produced back to back, the POST for seq i+1 can reach the
        # server before the POST for seq i. Like the Go publisher, wait for the
        # POST response unless --no-sync-post.
        while pub.get_stats().segments_completed + pub.get_stats().segments_failed <= i:
            await asyncio.sleep(0.0005)
    return seg


async def bench(a):
    cl = Client(a.client, not a.no_sync_post)
    segs = Segments(a.size)
    url = f"{a.url}-{time.time_ns()}"
    st = await http("POST", url, headers={"Expect-Content": "application/octet-stream"})
    if st != 200:
        raise SystemExit(f"create {url}: {st}")
    queues = [asyncio.Queue() for _ in range(a.subs)]
    results = [dict() for _ in range(a.subs)]
    tasks = [asyncio.create_task(run_sub(cl, url, segs, a.n, 0, queues[s], results[s])) for s in range(a.subs)]
    await asyncio.sleep(0.05)
    pub = cl.publisher(url, "application/octet-stream")
    await cl.start(pub)
    done = [0] * a.subs
    t0 = time.perf_counter()
    for i in range(a.n):
        for s in range(a.subs):
            while done[s] < i - a.window and not tasks[s].done():
                await queues[s].get()
                done[s] += 1
        await publish(cl, pub, i, segs.get(i))
    t_pub = time.perf_counter() - t0
    _, pending = await asyncio.wait(tasks, timeout=a.drain)
    el = time.perf_counter() - t0
    if pending:  # lost segments: close the channel so the subscribers see EOS/404
        print(f"WARN {len(pending)} subscriber(s) still waiting {a.drain}s after the last segment; deleting channel")
    await http("DELETE", url)
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=30)
    await pub.close()
    total = a.n * a.size
    ok = True
    for s, r in enumerate(results):
        print(f"SUB{s} got={r['got']} missing={a.n - r['got']} bad={r['bad']} gaps={r['gaps']} bytes={r['bytes']}"
              f"{r['detail']}")
        ok &= r["got"] == a.n and r["bad"] == 0 and r["gaps"] == 0
    print(f"BENCH {a.client} segments={a.n} size={a.size} subs={a.subs} pub_secs={t_pub:.3f} "
          f"e2e_secs={el:.3f} MiB/s={total / el / 1048576:.1f} (per subscriber) seg/s={a.n / el:.1f}")
    return 0 if ok else 1


async def pub_mode(a):
    cl = Client(a.client, not a.no_sync_post)
    segs = Segments(a.size, a.files)
    if a.create:
        st = await http("POST", a.url, headers={"Expect-Content": a.mime})
        if st != 200:
            raise SystemExit(f"create {a.url}: {st}")
    if segs.count():  # files SKIP.. (at most N of them)
        idx = list(range(a.skip, segs.count() if a.n is None else min(segs.count(), a.skip + a.n)))
    else:  # synthetic segments SKIP..SKIP+N (payload i for the i-th)
        idx = list(range(a.skip, a.skip + a.n))
    pub = cl.publisher(a.url, a.mime, a.pub_start)
    await cl.start(pub)
    first_seq = None
    t0 = time.perf_counter()
    for k, i in enumerate(idx):
        seg = await publish(cl, pub, k, segs.get(i))
        if first_seq is None:
            first_seq = seg.seq() if cl.kind == "lpgw" else 0
        if a.interval and k + 1 < len(idx):
            await asyncio.sleep(a.interval)
    el = time.perf_counter() - t0
    if cl.kind == "pytrickle":
        # close() cancels POSTs still in flight: wait until every segment's POST has ended.
        end = time.monotonic() + 10
        while pub.posts_done < len(idx) and time.monotonic() < end:
            await asyncio.sleep(0.005)
    else:
        end = time.monotonic() + 10
        while pub.get_stats().segments_completed + pub.get_stats().segments_failed < len(idx) \
                and time.monotonic() < end:
            await asyncio.sleep(0.005)
    await asyncio.sleep(a.linger)
    failed = cl.pub_failures(pub)
    print(f"PUBLISHED segments={len(idx)} failed={failed}", flush=True)
    if a.wait_stdin:  # the harness says when to close (after its subscribers are done)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await pub.close()  # lpgw: also DELETEs the channel
    if a.delete:
        print("DELETE", await http("DELETE", a.url))
    print(f"PUB {a.client} segments={len(idx)} failed={failed} first_seq={first_seq} secs={el:.3f}"
          + "".join(f" error:{e}" for e in cl.errors))
    return 0 if failed == 0 else 1


async def sub_mode(a):
    cl = Client(a.client, not a.no_sync_post)
    segs = Segments(a.size, a.files)
    if a.n is None and not segs.count() and not a.until_eos:
        raise SystemExit("sub: give -n, --files or --until-eos")
    if a.out:
        os.makedirs(a.out, exist_ok=True)
    await wait_channel(a.url)
    print("READY", flush=True)  # imports done, channel exists; the first GET follows at once
    t0 = time.perf_counter()
    r = await run_sub(cl, a.url, segs, a.n, a.start, one_read=a.one_read, out=a.out, until_eos=a.until_eos,
                      first_cb=lambda seq: print(f"FIRST seq={seq}", flush=True))
    el = time.perf_counter() - t0
    print(f"SUB {a.client} got={r['got']} bad={r['bad']} gaps={r['gaps']} split={r['split']} first={r['first']} "
          f"last={r['last']} end={r['end']} bytes={r['bytes']} secs={el:.3f}{r['detail']}", flush=True)
    ok = r["bad"] == 0 and r["gaps"] == 0 and r["split"] == 0 and r["got"] > 0
    if a.n is not None:
        ok &= r["got"] == a.n
    elif segs.count():
        ok &= r["last"] == segs.count() - 1
    if a.until_eos:
        ok &= r["end"] == "eos"
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["bench", "pub", "sub"])
    p.add_argument("--client", choices=["pytrickle", "lpgw"], default="pytrickle")
    p.add_argument("--url", default="http://127.0.0.1:3389/pybench")
    p.add_argument("-n", type=int, default=None, help="segments (bench/pub default 200)")
    p.add_argument("--size", type=int, default=1 << 20)
    p.add_argument("--files", help="a directory: its files, in name order, are segments 0, 1, 2...")
    p.add_argument("--skip", type=int, default=0, help="pub: start with segment (or file) number SKIP")
    p.add_argument("--out", help="sub: write each received segment to OUT/{seq:06}{ext}")
    p.add_argument("--one-read", action="store_true",
                   help="sub: the first read() of each segment must return all of it (a control message)")
    p.add_argument("--until-eos", action="store_true",
                   help="sub: read until the stream ends; exit 0 only if it ended with Lp-Trickle-Closed")
    p.add_argument("--subs", type=int, default=1)
    p.add_argument("--window", type=int, default=2)
    p.add_argument("--start", type=int, default=0, help="sub: first seq (-1 next, -2 current)")
    p.add_argument("--pub-start", type=int, default=0,
                   help="pub, lpgw only: first seq; -1 = via GET /next + Lp-Trickle-Reset")
    p.add_argument("--mime", default="video/mp2t")
    p.add_argument("--create", action="store_true", help="POST {url} (Expect-Content) before publishing")
    p.add_argument("--delete", action="store_true", help="DELETE {url} after publishing")
    p.add_argument("--interval", type=float, default=0.0, help="pub: seconds between segments")
    p.add_argument("--linger", type=float, default=0.0, help="pub: wait before closing the publisher")
    p.add_argument("--wait-stdin", action="store_true",
                   help="pub: after publishing, print PUBLISHED and close the publisher only once stdin "
                        "gives a line or ends")
    p.add_argument("--drain", type=float, default=10.0, help="bench: max wait for subscribers after the last segment")
    p.add_argument("--no-sync-post", action="store_true",
                   help="lpgw: do not wait for each POST to finish (stress: lets POSTs reorder)")
    p.add_argument("-v", action="store_true")
    a = p.parse_args()
    if a.n is None and a.mode in ("bench", "pub") and not a.files:
        a.n = 200
    logging.basicConfig(level=logging.INFO if a.v else logging.ERROR)
    try:
        import uvloop  # noqa: F401  (pytrickle depends on it; use it if present)
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    sys.exit(runner({"bench": bench, "pub": pub_mode, "sub": sub_mode}[a.mode](a)))


if __name__ == "__main__":
    main()
