//! A bare relay on the servers' CPU, for the side by side: what that CPU moves with nothing but the
//! copies.
//!
//! Any trickle server receives each byte from the publisher and writes it to every subscriber; on
//! loopback the kernel's share of that (copies, TCP, waking the reader) dwarfs what a server adds.
//! The relay does only that: one thread, blocking sockets, reads of up to 1 MiB written whole to
//! each subscriber in turn, no HTTP, no runtime, no store, fed and drained by raw TCP clients on the
//! clients' CPUs. How busy it keeps its CPU says what bounds a workload: left idle, it was waiting
//! on the clients, and no server goes faster than the clients let it. It is not a ceiling with
//! fan-out: there a full subscriber socket costs it a sleep and a wake-up, which a server that
//! writes to whichever subscriber is ready does not pay (ours delivers more than it there).

use super::*;
use crate::side_by_side::{Cpus, pin_this_thread};

/// A bare relay run: MiB/s each subscriber read, and how busy the relay kept its CPU.
pub(crate) struct Relayed {
    pub(crate) mib_s: f64,
    /// The relay thread's CPU time over the run's wall time (1.0: a whole CPU).
    pub(crate) busy: f64,
}

/// `mib` MiB written in 64 KiB writes (as our publisher writes its chunks) through a bare relay
/// pinned to `cpus` (when given) to `subs` readers. The clients run on this runtime.
pub(crate) async fn bare_relay(cpus: Option<Cpus>, subs: usize, mib: usize) -> R<Relayed> {
    let err = |e: std::io::Error| e.to_string();
    let front = std::net::TcpListener::bind("127.0.0.1:0").map_err(err)?;
    let back = std::net::TcpListener::bind("127.0.0.1:0").map_err(err)?;
    let (front_addr, back_addr) = (front.local_addr().map_err(err)?, back.local_addr().map_err(err)?);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bare-relay".into())
        .spawn(move || {
            let _ = done_tx.send(relay(cpus.as_ref(), front, back, subs));
        })
        .map_err(err)?;
    // The readers connect first, so the relay has them all before the writer's first byte.
    let mut readers = Vec::new();
    for _ in 0..subs {
        let s = tokio::net::TcpStream::connect(back_addr).await.map_err(err)?;
        readers.push(tokio::spawn(async move {
            let mut s = s;
            let mut buf = vec![0u8; MIB];
            let mut total = 0usize;
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break total,
                    Ok(n) => total += n,
                }
            }
        }));
    }
    let mut w = tokio::net::TcpStream::connect(front_addr).await.map_err(err)?;
    let _ = w.set_nodelay(true);
    let block = vec![7u8; 64 << 10];
    let t0 = Instant::now();
    for _ in 0..mib * 16 {
        w.write_all(&block).await.map_err(err)?;
    }
    drop(w);
    let mut least = usize::MAX;
    for r in readers {
        least = least.min(r.await.map_err(|e| e.to_string())?);
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = done_rx.await.map_err(|_| "the relay thread ended without a word".to_string())??;
    if least < mib * MIB {
        return Err(format!("a reader got {least} of {} bytes", mib * MIB));
    }
    Ok(Relayed { mib_s: mib as f64 / secs, busy: cpu / secs })
}

/// The relay thread: pins itself, takes the readers and then the writer, relays until the writer
/// closes, and says how much CPU it used while relaying (seconds).
fn relay(cpus: Option<&Cpus>, front: std::net::TcpListener, back: std::net::TcpListener, subs: usize) -> R<f64> {
    use std::io::{Read, Write};
    let err = |e: std::io::Error| e.to_string();
    if let Some(cpus) = cpus {
        pin_this_thread(cpus)?;
    }
    let limit = Some(Duration::from_secs(30));
    let mut to = Vec::new();
    for _ in 0..subs {
        let (s, _) = back.accept().map_err(err)?;
        s.set_nodelay(true).map_err(err)?;
        s.set_write_timeout(limit).map_err(err)?;
        to.push(s);
    }
    let (mut from, _) = front.accept().map_err(err)?;
    from.set_read_timeout(limit).map_err(err)?;
    let before = thread_cpu_secs().ok_or("no CPU time for this thread")?;
    let mut buf = vec![0u8; MIB];
    loop {
        let n = from.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        for s in &mut to {
            s.write_all(&buf[..n]).map_err(err)?;
        }
    }
    let used = thread_cpu_secs().ok_or("no CPU time for this thread")? - before;
    Ok(used)
}

/// The time the calling thread has spent on a CPU, in seconds, from `/proc/thread-self/schedstat`
/// (nanoseconds, finer than `stat`'s 1/100 s ticks over a run of half a second).
fn thread_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(stat.split_whitespace().next()?.parse::<u64>().ok()? as f64 / 1e9)
}
