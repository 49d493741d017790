//! CPU accounting for the media bench: this process's CPU time to the nanosecond, and that of the
//! child processes the gateway starts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// CPU time of this process, every thread (ended ones too), to the nanosecond:
/// `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)` (what `getrusage(RUSAGE_SELF)` sums, at a finer grain than
/// `/proc/self/stat`'s 10 ms ticks, which matter at a few % of a core).
fn own_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(u64::try_from(t.tv_sec).unwrap_or(0), u32::try_from(t.tv_nsec).unwrap_or(0).min(999_999_999))
}

/// The sum over a process's threads (`proc`: a pid, or `self`) of a number read from each thread's
/// `/proc/{proc}/task/*/{file}` by `read`; `None` if the process is gone.
fn sum_over_threads(proc: &str, file: &str, read: impl Fn(&str) -> Option<u64>) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{proc}/task")).ok()?;
    Some(
        tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join(file)).ok())
            .filter_map(|s| read(&s))
            .sum(),
    )
}

/// CPU time of another process: the sum over its threads of `/proc/{pid}/task/*/schedstat` (ns on CPU).
fn process_cpu(pid: u32) -> Option<Duration> {
    let ns = sum_over_threads(&pid.to_string(), "schedstat", |s| s.split_whitespace().next()?.parse().ok())?;
    Some(Duration::from_nanos(ns))
}

/// Our child processes other than `exclude` (our own peers), with their CPU time: any ffmpeg the
/// gateway started.
fn gateway_children(exclude: &[u32]) -> HashMap<u32, Duration> {
    let me = std::process::id().to_string();
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if exclude.contains(&pid) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // The parent pid is the second field after the command name (in parentheses, may hold spaces).
        let ppid = stat.rfind(')').and_then(|i| stat.get(i + 1..)).and_then(|r| r.split_whitespace().nth(1));
        if ppid == Some(me.as_str())
            && let Some(t) = process_cpu(pid)
        {
            out.insert(pid, t);
        }
    }
    out
}

/// Times this process's threads went to sleep and were woken (voluntary context switches, summed
/// over `/proc/self/task/*/status`; a thread that ended takes its count with it).
fn own_wakeups() -> u64 {
    let switches = |s: &str| s.lines().find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))?.trim().parse().ok();
    sum_over_threads("self", "status", switches).unwrap_or(0)
}

/// CPU used over a window, in % of one core.
#[derive(Clone, Copy)]
pub(crate) struct Usage {
    /// This process's threads woken per second (each costs a context switch and, across cores, an
    /// interrupt): what many small hand-offs between tasks cost beyond their own work.
    pub wakeups: f64,
    /// This process (the gateway, the orchestrator and the plugin).
    pub own: f64,
    /// The gateway's child processes.
    pub children: f64,
    /// How many child processes there were at the end.
    pub processes: usize,
}

/// The CPU this process and its children (not `exclude`) use over `window`.
pub(crate) async fn measure(window: Duration, exclude: &[u32]) -> Usage {
    let (t0, own0, kids0, woken0) = (Instant::now(), own_cpu(), gateway_children(exclude), own_wakeups());
    tokio::time::sleep(window).await;
    let (own1, kids1, woken1) = (own_cpu(), gateway_children(exclude), own_wakeups());
    let secs = t0.elapsed().as_secs_f64();
    // A child that started during the window counts from zero; one that ended during it is lost.
    let kids: Duration =
        kids1.iter().map(|(pid, t)| t.saturating_sub(kids0.get(pid).copied().unwrap_or_default())).sum();
    Usage {
        wakeups: woken1.saturating_sub(woken0) as f64 / secs,
        own: own1.saturating_sub(own0).as_secs_f64() / secs * 100.0,
        children: kids.as_secs_f64() / secs * 100.0,
        processes: kids1.len(),
    }
}
