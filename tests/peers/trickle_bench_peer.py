#!/usr/bin/env python3
"""Third-party trickle clients as one side of `cargo xtask bench trickle`
(host/trickle/benches/trickle.rs), which serves the trickle server in process and runs this
script as a child with the channel URL.

--client pytrickle | lpgw, with the same client wrappers as trickle_peer.py (pytrickle's
TricklePublisher/TrickleSubscriber; livepeer_gateway's trickle_publisher/trickle_subscriber).
Segment i is trickle_peer.py's payload: 8-byte big-endian i, then bytes (i % 251), SIZE in all.

modes:
  check  import the client; print `OK` (exit 1 with the reason if it cannot be imported)
  pub    publish N segments to URL (which exists). Prints `READY` once the publisher is started;
         starts publishing when stdin gives a line (`GO`). Each later stdin line is a number:
         how many segments every subscriber of the bench has read; segment i is started only
         once that number is >= i - WINDOW. After the last segment's POST has ended it prints
         `PUB client=.. segments=N failed=F secs=S`, then closes the publisher when stdin gives
         another line or ends.
  sub    SUBS subscribers in this process read segments 0..N-1 from URL and check every byte.
         Prints `READY` once they exist, then `DONE m` each time the number of segments that
         every subscriber has read grows to m, and at the end
         `SUB client=.. subs=S got=G bad=B gaps=P secs=T` (exit 0 iff all good).

Every wait is bounded by --timeout (seconds, whole run).
"""
import argparse
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    from trickle_peer import Client, payload, publish  # noqa: E402
except ImportError as e:  # aiohttp missing: the bench prints this as the reason it skipped
    print(f"import failed: {e}", flush=True)
    sys.exit(1)


async def stdin_reader():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def pub_mode(a):
    cl = Client(a.client)
    data = [payload(i, a.size) for i in range(a.n)]
    pub = cl.publisher(a.url, "application/octet-stream")
    await cl.start(pub)
    stdin = await stdin_reader()
    print("READY", flush=True)
    await stdin.readline()  # GO
    state = {"done": 0}
    progressed = asyncio.Event()

    async def acks():
        while True:
            line = await stdin.readline()
            if not line:
                break
            state["done"] = max(state["done"], int(line))
            progressed.set()
        progressed.set()

    acker = asyncio.create_task(acks())
    t0 = time.perf_counter()
    for i in range(a.n):
        while state["done"] < i - a.window and not acker.done():
            progressed.clear()
            await progressed.wait()
        await publish(cl, pub, i, data[i])
    # Wait until every segment's POST has ended (pytrickle's close() cancels those in flight).
    if cl.kind == "pytrickle":
        while pub.posts_done < a.n:
            await asyncio.sleep(0.001)
    else:
        while pub.get_stats().segments_completed + pub.get_stats().segments_failed < a.n:
            await asyncio.sleep(0.001)
    el = time.perf_counter() - t0
    failed = cl.pub_failures(pub)
    print(f"PUB client={a.client} segments={a.n} failed={failed} secs={el:.3f}"
          + "".join(f" error:{e}" for e in cl.errors), flush=True)
    await acker  # the bench ends stdin once its subscribers are done
    await pub.close()
    return 0 if failed == 0 else 1


async def sub_mode(a):
    cl = Client(a.client)
    want = [payload(i, a.size) for i in range(a.n)]
    subs = [cl.subscriber(a.url, 0) for _ in range(a.subs)]
    for s in subs:
        await cl.start(s)
    got = [0] * a.subs
    res = {"bad": 0, "gaps": 0, "reported": 0, "detail": ""}

    async def one(k):
        sub = subs[k]
        try:
            for i in range(a.n):
                seg = await sub.next()
                if seg is None:
                    res["detail"] += f" sub{k}:end:{cl.end_reason(sub)}"
                    return
                seq = seg.seq()
                body, _ = await cl.read_segment(seg)
                if seq != i:
                    res["gaps"] += 1
                    res["detail"] += f" sub{k}:gap:{i}->{seq}"
                    return
                if body != want[i]:
                    res["bad"] += 1
                    res["detail"] += f" sub{k}:bad:{seq}:{len(body)}"
                    return
                got[k] += 1
                m = min(got)
                if m > res["reported"]:
                    res["reported"] = m
                    print(f"DONE {m}", flush=True)
        finally:
            await sub.close()

    print("READY", flush=True)
    t0 = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(a.subs)))
    el = time.perf_counter() - t0
    ok = all(g == a.n for g in got) and res["bad"] == 0 and res["gaps"] == 0
    print(f"SUB client={a.client} subs={a.subs} got={min(got)} bad={res['bad']} gaps={res['gaps']} secs={el:.3f}"
          + res["detail"] + "".join(f" error:{e}" for e in cl.errors), flush=True)
    return 0 if ok else 1


async def check_mode(a):
    Client(a.client)
    print("OK", flush=True)
    return 0


async def bounded(a):
    fn = {"check": check_mode, "pub": pub_mode, "sub": sub_mode}[a.mode]
    try:
        return await asyncio.wait_for(fn(a), a.timeout)
    except asyncio.TimeoutError:
        print(f"TIMEOUT after {a.timeout}s", flush=True)
        return 2


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["check", "pub", "sub"])
    p.add_argument("--client", choices=["pytrickle", "lpgw"], required=True)
    p.add_argument("--url", default="")
    p.add_argument("-n", type=int, default=20)
    p.add_argument("--size", type=int, default=1 << 20)
    p.add_argument("--subs", type=int, default=1)
    p.add_argument("--window", type=int, default=2)
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args()
    try:
        rc = asyncio.run(bounded(a))
    except ImportError as e:
        print(f"import failed: {e}", flush=True)
        rc = 1
    sys.exit(rc)


if __name__ == "__main__":
    main()
