//! The third-party Python peers: finding their interpreter, running `trickle_peer.py` as a child
//! process with bounded waits, and reading its result lines.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::peers_required;

/// The Python of the peers venv, from `BYOC_PEERS_PYTHON` (set by `cargo xtask test`).
///
/// `None` means "skip this test": a line saying so is printed. When the run requires the peers
/// (`BYOC_REQUIRE_PEERS=1`) a missing interpreter panics instead, so CI cannot go green without
/// running them.
pub fn python(test: &str) -> Option<PathBuf> {
    match std::env::var_os("BYOC_PEERS_PYTHON").map(PathBuf::from) {
        Some(py) if py.is_file() => Some(py),
        found => {
            let why = match found {
                Some(py) => format!("BYOC_PEERS_PYTHON={} does not exist", py.display()),
                None => "BYOC_PEERS_PYTHON is not set".to_string(),
            };
            if peers_required() {
                panic!("{test}: the third-party peers are required (BYOC_REQUIRE_PEERS=1) but {why}");
            }
            eprintln!("{test}: skipped: {why}; run through `cargo xtask test`, which installs the peers");
            None
        }
    }
}

/// `tests/peers/trickle_peer.py`.
pub fn trickle_peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers").join("trickle_peer.py")
}

/// Output lines collected from a child's pipe, with a change signal.
#[derive(Clone, Default)]
struct Lines {
    lines: Arc<Mutex<Vec<String>>>,
    changed: Arc<watch::Sender<u64>>,
}

impl Lines {
    fn all(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn collect(&self, pipe: impl AsyncRead + Unpin + Send + 'static) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut rd = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = rd.next_line().await {
                this.lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                this.changed.send_modify(|v| *v += 1);
            }
            // EOF: wake waiters so they can see the child is done.
            this.changed.send_modify(|v| *v += 1);
        })
    }
}

/// A running `trickle_peer.py`. Killed if dropped before [`Peer::finish`].
pub struct Peer {
    /// A short name for messages (`sub-lpgw`...).
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines,
    stderr: Lines,
    readers: Vec<JoinHandle<()>>,
}

/// A finished peer: exit status and everything it printed.
#[derive(Debug)]
pub struct PeerOutput {
    /// The peer script's name.
    pub name: String,
    /// How it exited.
    pub status: ExitStatus,
    /// Its stdout, line by line.
    pub stdout: Vec<String>,
    /// Its stderr, line by line.
    pub stderr: Vec<String>,
    /// When the process was seen to exit.
    pub exited_at: Instant,
}

impl Peer {
    /// Starts `python trickle_peer.py ARGS...` with piped stdio and `kill_on_drop`.
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(python: &std::path::Path, name: &str, args: &[S]) -> Result<Peer> {
        let mut child = Command::new(python)
            .arg("-u")
            .arg(trickle_peer_script())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting peer {name} with {}", python.display()))?;
        let (stdout, stderr) = (Lines::default(), Lines::default());
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(stdout.collect(out));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(stderr.collect(err));
        }
        let stdin = child.stdin.take();
        Ok(Peer { name: name.to_string(), child, stdin, stdout, stderr, readers })
    }

    /// Waits until a stdout line starts with `prefix` and returns it. Fails on timeout or if the
    /// peer exits first.
    pub async fn wait_line(&mut self, prefix: &str, timeout: Duration) -> Result<String> {
        let mut rx = self.stdout.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            if let Some(l) = self.stdout.all().into_iter().find(|l| l.starts_with(prefix)) {
                return Ok(l);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the pipe readers drain before reporting.
                tokio::time::sleep(Duration::from_millis(50)).await;
                if let Some(l) = self.stdout.all().into_iter().find(|l| l.starts_with(prefix)) {
                    return Ok(l);
                }
                bail!("peer {} exited ({status}) before printing {prefix:?}\n{}", self.name, self.dump());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("peer {} printed no {prefix:?} line within {timeout:?}\n{}", self.name, self.dump());
            }
            // Also poll now and then: an exit does not always close the pipes at once.
            let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
        }
    }

    /// Closes the peer's stdin (a `pub --wait-stdin` then closes its publisher).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the peer to exit (killing it after `timeout`) and returns its output.
    pub async fn finish(mut self, timeout: Duration) -> Result<PeerOutput> {
        self.stdin = None;
        let status = match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.with_context(|| format!("waiting for peer {}", self.name))?,
            Err(_) => {
                let _ = self.child.kill().await;
                bail!("peer {} still running after {timeout:?}; killed\n{}", self.name, self.dump());
            }
        };
        let exited_at = Instant::now();
        for r in std::mem::take(&mut self.readers) {
            let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
        }
        Ok(PeerOutput {
            name: self.name.clone(),
            status,
            stdout: self.stdout.all(),
            stderr: self.stderr.all(),
            exited_at,
        })
    }

    fn dump(&self) -> String {
        format!("--- stdout:\n{}\n--- stderr:\n{}", self.stdout.all().join("\n"), tail(&self.stderr.all(), 40))
    }
}

fn tail(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl PeerOutput {
    /// The first stdout line starting with `prefix` (e.g. `"SUB "`).
    pub fn line(&self, prefix: &str) -> Option<&str> {
        self.stdout.iter().find(|l| l.starts_with(prefix)).map(String::as_str)
    }

    /// The value of `key=value` on the result line starting with `prefix`.
    pub fn field(&self, prefix: &str, key: &str) -> Option<String> {
        let line = self.line(prefix)?;
        let want = format!("{key}=");
        line.split_whitespace().find_map(|w| w.strip_prefix(want.as_str())).map(str::to_string)
    }

    /// [`field`](Self::field) parsed as an integer, or an error naming what is missing.
    pub fn num(&self, prefix: &str, key: &str) -> Result<i64> {
        let v = self
            .field(prefix, key)
            .ok_or_else(|| anyhow!("{}: no {key}= on its {prefix:?} line\n{self}", self.name))?;
        v.parse().map_err(|_| anyhow!("{}: {key}={v} is not a number\n{self}", self.name))
    }

    /// Fails (with everything the peer printed) unless it exited 0.
    pub fn ensure_success(&self) -> Result<()> {
        if self.status.success() { Ok(()) } else { bail!("peer {} failed ({})\n{self}", self.name, self.status) }
    }
}

impl std::fmt::Display for PeerOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--- {} stdout:\n{}\n--- stderr:\n{}", self.name, self.stdout.join("\n"), tail(&self.stderr, 40))
    }
}
