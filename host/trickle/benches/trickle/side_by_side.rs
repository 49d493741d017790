//! Our clients against another trickle server and against `byoc trickle`, side by side
//! (`BYOC_BENCH_OTHER_SERVER`), with the servers on CPUs of their own.
//!
//! Where each runs: with two CPUs or more, the servers get the last one and our clients (this
//! process) the others, as a server and its clients on different machines would; otherwise the
//! clients' own work decides both servers' throughput, and how a server's runtime spreads over
//! cores the clients are using weighs as much as the server's own cost. `BYOC_BENCH_SERVER_CPUS`
//! names the servers' CPUs (a kernel CPU list, e.g. `1` or `2-3`), `none` shares every CPU. Ours
//! starts under `taskset -c`, so its runtime sizes itself to those CPUs; the other server must be
//! started the same way (`taskset -c 1 ...`), which the bench checks when it knows its pid.

use super::*;
use crate::bare_relay::bare_relay;

/// Our clients, the same workloads, against another trickle server (`BYOC_BENCH_OTHER_SERVER`, a base
/// URL under which `POST {base}/{channel}` creates a channel, e.g. go-livepeer's trickle server) and
/// against ours, side by side: [`SIDE_BY_SIDE`] interleaved repetitions, medians. The publisher
/// keeps one upload at a time on both servers ([`Load::one_upload`]), so the two serve the same
/// requests.
///
/// Ours runs as `byoc trickle` in its own process (`BYOC_BIN`, set by `cargo xtask bench
/// trickle`), so that besides throughput, which the clients sharing the cores bound as well, each
/// server's own CPU time per byte (or segment) delivered is compared: read from `/proc`, for the
/// other server when `BYOC_BENCH_OTHER_SERVER_PID` names its process.
pub(crate) async fn other_server(in_process: &str, other: &str) -> Vec<Goal> {
    let layout = match Layout::from_env() {
        Ok(l) => l,
        Err(e) => {
            println!();
            println!("side by side skipped: {e}");
            return Vec::new();
        }
    };
    let ours = match std::env::var_os("BYOC_BIN") {
        Some(bin) => match ServerProcess::byoc_trickle(&bin, layout.as_ref()).await {
            Ok(p) => Some(p),
            Err(e) => {
                println!("(could not start {}: {e}; ours runs in this process)", bin.to_string_lossy());
                None
            }
        },
        None => None,
    };
    let ours_pid = ours.as_ref().map(|p| p.pid);
    let ours_base = ours.as_ref().map_or(in_process, |p| p.base.as_str());
    let other_pid = std::env::var("BYOC_BENCH_OTHER_SERVER_PID").ok().and_then(|p| p.trim().parse::<u32>().ok());
    println!();
    let what = if ours.is_some() { "`byoc trickle`" } else { "ours in this process" };
    println!("our clients, {what} vs {other}, {SIDE_BY_SIDE} interleaved runs each, medians:");
    // Pinned for the side by side only; the earlier workloads ran on every CPU, and so do the later.
    let _pinned = match &layout {
        Some(l) => {
            l.describe(ours.is_some(), other_pid);
            match l.pin_this_process() {
                Ok(p) => Some(p),
                Err(e) => {
                    println!("(could not pin our clients: {e}; they share every CPU)");
                    None
                }
            }
        }
        None => {
            println!("(servers and clients share every CPU: BYOC_BENCH_SERVER_CPUS=none, or a single CPU)");
            None
        }
    };
    row("workload", "ours / that server", "ours / that server");
    let mut loads: Vec<(String, Load)> = FAN_OUT
        .iter()
        .map(|&(subs, segments)| {
            let s = if subs == 1 { "" } else { "s" };
            (format!("1 MiB segments, {subs} subscriber{s}"), Load::mib(subs, segments).one_upload())
        })
        .collect();
    loads.push(("4 KiB segments, 1 subscriber".into(), Load::SMALL.one_upload()));
    let mut goals = Vec::new();
    for (k, (name, load)) in loads.iter().enumerate() {
        let mut goal = Goal { what: format!("{name}: ours >= 2x that server's throughput"), outcome: None };
        let large = load.size >= MIB;
        // Per subscriber: MiB/s for 1 MiB segments, segments/s for small ones.
        let figure = |t: &Throughput| if large { t.mib_s() } else { t.segments as f64 / t.secs };
        // Server CPU for what it delivered: ms per GiB, or us per segment.
        let cost = |t: &Throughput, cpu: f64| {
            let delivered = (t.segments * load.subs as u64) as f64;
            if large { cpu * 1e3 / (delivered * t.size as f64 / (1u64 << 30) as f64) } else { cpu * 1e6 / delivered }
        };
        let (mut speed, mut cpu) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
        let mut errors = Vec::new();
        let mut relays = Vec::new();
        for rep in 0..SIDE_BY_SIDE {
            // A repetition counts only if both servers completed it, so that runs compare in pairs.
            let mut pair = Vec::new();
            for (base, pid) in [(ours_base, ours_pid), (other, other_pid)] {
                let before = pid.and_then(cpu_secs);
                let ch = format!("side-{k}-{rep}");
                match bounded(Duration::from_secs(40), channel_throughput(base, &ch, *load)).await {
                    Ok(t) => {
                        let used = before.zip(pid.and_then(cpu_secs)).map(|(b, a)| cost(&t, a - b));
                        pair.push((figure(&t), used));
                    }
                    Err(e) => errors.push(format!("{base}: {e}")),
                }
            }
            if large {
                let cpus = layout.as_ref().map(|l| l.servers.clone());
                match bounded(Duration::from_secs(40), bare_relay(cpus, load.subs, load.segments as usize)).await {
                    Ok(r) => relays.push(r),
                    Err(e) => errors.push(format!("the bare relay: {e}")),
                }
            }
            if let [(s0, c0), (s1, c1)] = pair[..] {
                speed[0].push(s0);
                speed[1].push(s1);
                if let (Some(c0), Some(c1)) = (c0, c1) {
                    cpu[0].push(c0);
                    cpu[1].push(c1);
                }
            }
        }
        if let Some(e) = errors.first() {
            failed(name, &format!("{} failed runs: {e}", errors.len()));
        }
        let [a, b] = &speed;
        if a.is_empty() || b.is_empty() {
            goals.push(goal);
            continue;
        }
        let unit = if large { "MiB/s each" } else { "segments/s" };
        let (ma, mb) = (median(a), median(b));
        let each = a.iter().zip(b).map(|(x, y)| format!("{:.2}", x / y)).collect::<Vec<_>>().join(", ");
        row(name, &format!("{ma:.0} / {mb:.0} {unit}"), &format!("{:.2}x as fast (runs {each})", ma / mb));
        let mut figure = format!("{:.2}x", ma / mb);
        let met = ma >= 2.0 * mb;
        let [a, b] = &cpu;
        if !a.is_empty() && !b.is_empty() {
            let unit = if large { "ms CPU per GiB" } else { "us CPU per segment" };
            let (ca, cb) = (median(a), median(b));
            let each = a.iter().zip(b).map(|(x, y)| format!("{:.2}", y / x)).collect::<Vec<_>>().join(", ");
            // How much of its CPU each server kept busy: what it delivered per second times what
            // each unit cost it. Well under 100 %, the clients set the pace, not the server.
            let busy = |rate: f64, cost: f64| {
                if large { rate * load.subs as f64 / 1024.0 * cost / 1e3 } else { rate * cost / 1e6 }
            };
            let (busy_a, busy_b) = (busy(ma, ca), busy(mb, cb));
            row(
                "  server CPU per delivered",
                &format!("{ca:.1} / {cb:.1} {unit}"),
                &format!(
                    "{:.2}x less CPU (runs {each}); CPU busy {:.0} % / {:.0} %",
                    cb / ca,
                    busy_a * 100.0,
                    busy_b * 100.0
                ),
            );
            figure.push_str(&format!(" (server CPU per delivered: {:.2}x less)", cb / ca));
            if busy_a < CLIENT_BOUND {
                figure.push_str(&format!("; ours {:.0} % busy: the clients set the pace", busy_a * 100.0));
            }
            // With both servers' CPUs full (clients with cores to spare), each delivers one CPU's
            // worth, so the throughput ratio is the CPU per unit ratio: below 2x, 2x needs a
            // cheaper server, not a bigger machine (unless a server's CPU per unit falls as it
            // fills; batching can do that to one that is idle now).
            if cb / ca < 2.0 {
                figure.push_str(&format!("; with both servers' CPUs full, about {:.2}x", cb / ca));
            }
        }
        if !relays.is_empty() {
            let relay = median(&relays.iter().map(|r| r.mib_s).collect::<Vec<_>>());
            let busy = median(&relays.iter().map(|r| r.busy).collect::<Vec<_>>());
            let label = match layout {
                Some(_) => "  a bare relay on the servers' CPU (no HTTP)",
                None => "  a bare relay, sharing every CPU (no HTTP)",
            };
            row(
                label,
                &format!("{relay:.0} MiB/s each, its CPU {:.0} % busy", busy * 100.0),
                &format!("{:.2}x that server; ours {:.2}x the relay", relay / mb, ma / relay),
            );
            // A relay that copies and nothing else, left idle, was waiting on the clients: their
            // CPU, not the server's, sets the pace of this workload.
            if busy < CLIENT_BOUND && relay < 2.0 * mb {
                figure.push_str(&format!(
                    "; the clients' CPU bounds this workload: a bare relay, its CPU {:.0} % busy, reaches {:.2}x that server",
                    busy * 100.0,
                    relay / mb
                ));
            }
        }
        goal.outcome = Some((met, figure));
        goals.push(goal);
    }
    if other_pid.is_none() {
        println!("(set BYOC_BENCH_OTHER_SERVER_PID to that server's process id to compare CPU per byte)");
    }
    goals
}

/// A trickle server in a process of its own: where it serves, and its pid for [`cpu_secs`].
struct ServerProcess {
    base: String,
    pid: u32,
    _child: tokio::process::Child,
}

impl ServerProcess {
    /// `byoc trickle --listen 127.0.0.1:0 --autocreate` (under `taskset -c` on the layout's server
    /// CPUs), once it says where it listens.
    async fn byoc_trickle(bin: &std::ffi::OsStr, layout: Option<&Layout>) -> R<ServerProcess> {
        let mut command = match layout {
            Some(l) => {
                let mut c = tokio::process::Command::new("taskset");
                c.args(["-c", &l.servers.to_string()]).arg(bin);
                c
            }
            None => tokio::process::Command::new(bin),
        };
        let mut child = command
            .args(["trickle", "--listen", "127.0.0.1:0", "--autocreate"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| e.to_string())?;
        let pid = child.id().ok_or("no pid")?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(out).lines();
        let base = bounded(Duration::from_secs(10), async {
            while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
                if let Some(url) = line.strip_prefix("trickle server listening on ") {
                    return Ok(url.trim_end_matches('/').to_string());
                }
            }
            Err("exited before it listened".to_string())
        })
        .await?;
        // Whatever it prints later is read and dropped: a closed pipe would fail its writes.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ServerProcess { base, pid, _child: child })
    }
}

/// User plus system CPU time a process has used, all its threads (ended ones included), from
/// `/proc/{pid}/stat` (in the kernel's 1/100 s ticks).
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces) start with the state (field 3);
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Below this share of its CPU, a server (or the bare relay) spent its time waiting on the clients.
const CLIENT_BOUND: f64 = 0.9;

/// Interleaved repetitions of each workload in the side-by-side against another server.
const SIDE_BY_SIDE: usize = 5;

/// A set of CPU numbers, read from and shown as a kernel CPU list (`0-2,5`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cpus(std::collections::BTreeSet<u32>);

impl Cpus {
    fn parse(list: &str) -> R<Cpus> {
        let mut set = std::collections::BTreeSet::new();
        for part in list.trim().split(',').filter(|p| !p.is_empty()) {
            let bad = || format!("{list:?} is not a CPU list (e.g. `1` or `2-3`)");
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let (a, b) = (a.trim().parse::<u32>().map_err(|_| bad())?, b.trim().parse::<u32>().map_err(|_| bad())?);
            if a > b || b - a > 4096 {
                return Err(bad());
            }
            set.extend(a..=b);
        }
        if set.is_empty() {
            return Err(format!("{list:?} names no CPU"));
        }
        Ok(Cpus(set))
    }

    /// The CPUs process `pid` (`self` for this one) may run on.
    fn of(pid: &str) -> R<Cpus> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .ok_or("no Cpus_allowed_list in /proc/PID/status")?;
        Cpus::parse(list)
    }
}

impl std::fmt::Display for Cpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&list.join(","))
    }
}

/// The servers' CPUs and the clients'.
struct Layout {
    servers: Cpus,
    clients: Cpus,
    /// What this process ran on before, restored after the side by side.
    all: Cpus,
}

impl Layout {
    /// From `BYOC_BENCH_SERVER_CPUS`, else the last CPU for the servers when there are two or more;
    /// `None` when every CPU is shared.
    fn from_env() -> R<Option<Layout>> {
        let all = Cpus::of("self")?;
        let servers = match std::env::var("BYOC_BENCH_SERVER_CPUS") {
            Ok(v) if v.trim() == "none" => return Ok(None),
            Ok(v) => Cpus::parse(&v).map_err(|e| format!("BYOC_BENCH_SERVER_CPUS: {e}"))?,
            Err(_) if all.0.len() < 2 => return Ok(None),
            Err(_) => Cpus(all.0.last().copied().into_iter().collect()),
        };
        if !servers.0.is_subset(&all.0) {
            return Err(format!("BYOC_BENCH_SERVER_CPUS={servers} is not within this process's CPUs ({all})"));
        }
        let clients = Cpus(all.0.difference(&servers.0).copied().collect());
        if clients.0.is_empty() {
            return Err(format!("BYOC_BENCH_SERVER_CPUS={servers} leaves no CPU for the clients"));
        }
        Ok(Some(Layout { servers, clients, all }))
    }

    /// Says where everything runs, and whether the other server is where it should be.
    fn describe(&self, ours_apart: bool, other_pid: Option<u32>) {
        let ours = if ours_apart { "ours under `taskset -c`" } else { "ours runs in this process, with the clients" };
        println!("(servers on CPU {} ({ours}), our clients on CPU {})", self.servers, self.clients);
        match other_pid.map(|p| Cpus::of(&p.to_string())) {
            Some(Ok(cpus)) if cpus == self.servers => {}
            Some(Ok(cpus)) => println!(
                "(that server may run on CPU {cpus}, not {}: start it under `taskset -c {}` for a like-for-like run)",
                self.servers, self.servers
            ),
            Some(Err(e)) => println!("(could not read that server's CPUs: {e})"),
            None => println!("(start that server under `taskset -c {}` for a like-for-like run)", self.servers),
        }
    }

    /// Moves every thread of this process to the clients' CPUs until the guard is dropped.
    fn pin_this_process(&self) -> R<Pinned> {
        taskset_all(&self.clients)?;
        Ok(Pinned { all: self.all.clone() })
    }
}

/// Puts this process's threads back on every CPU they had.
struct Pinned {
    all: Cpus,
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Err(e) = taskset_all(&self.all) {
            println!("(could not unpin our clients: {e})");
        }
    }
}

/// `taskset -a -p -c CPUS {this pid}`: every thread of this process (threads started later inherit
/// it from the thread that starts them).
fn taskset_all(cpus: &Cpus) -> R<()> {
    taskset(&["-a", "-p", "-c", &cpus.to_string(), &std::process::id().to_string()])
}

/// Moves the calling thread (only) to `cpus`: `taskset -p -c CPUS {its thread id}`.
pub(crate) fn pin_this_thread(cpus: &Cpus) -> R<()> {
    // `/proc/thread-self` links to `PID/task/TID`.
    let link = std::fs::read_link("/proc/thread-self").map_err(|e| e.to_string())?;
    let tid = link.file_name().and_then(|t| t.to_str()).ok_or("no thread id in /proc/thread-self")?;
    taskset(&["-p", "-c", &cpus.to_string(), tid])
}

/// `taskset ARGS`, its refusal as the error.
fn taskset(args: &[&str]) -> R<()> {
    let out = std::process::Command::new("taskset")
        .args(args)
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("taskset: {e}"))?;
    if out.status.success() { Ok(()) } else { Err(format!("taskset: {}", String::from_utf8_lossy(&out.stderr).trim())) }
}
