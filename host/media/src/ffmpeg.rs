//! `ffmpeg` child processes: async pipes, stderr into `tracing`, graceful end of input, killed on drop.

use std::collections::VecDeque;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::MediaError;

/// How many of ffmpeg's last stderr lines are kept to explain a failure.
const STDERR_TAIL: usize = 8;
/// Longest stderr line kept (ffmpeg's are short; this bounds memory against anything else).
const STDERR_LINE_MAX: usize = 512;

/// A running ffmpeg. Dropping it kills the process.
pub(crate) struct Ffmpeg {
    child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    stderr: Option<JoinHandle<VecDeque<String>>>,
}

impl Ffmpeg {
    /// Starts `bin` with `args` (after `-hide_banner -nostats -loglevel warning`), stdin piped, stdout piped
    /// when `stdout` is set, stderr logged at debug under `label`.
    pub fn spawn(bin: &Path, args: &[&str], stdout: bool, label: &'static str) -> Result<Ffmpeg, MediaError> {
        let mut child = Command::new(bin)
            .args(["-hide_banner", "-nostats", "-loglevel", "warning"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(if stdout { Stdio::piped() } else { Stdio::null() })
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| MediaError::Ffmpeg(format!("cannot start {}: {e}", bin.display())))?;
        let stderr = child.stderr.take().map(|mut err| {
            tokio::spawn(async move {
                let mut tail = VecDeque::with_capacity(STDERR_TAIL);
                let mut buf = vec![0u8; 4096];
                let mut line = Vec::new();
                while let Ok(n) = err.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    for &b in buf.get(..n).unwrap_or_default() {
                        if b == b'\n' || b == b'\r' {
                            if !line.is_empty() {
                                let text = String::from_utf8_lossy(&line).into_owned();
                                tracing::debug!(target: "byoc_media::ffmpeg", ffmpeg = label, "{text}");
                                if tail.len() == STDERR_TAIL {
                                    tail.pop_front();
                                }
                                tail.push_back(text);
                                line.clear();
                            }
                        } else if line.len() < STDERR_LINE_MAX {
                            line.push(b);
                        }
                    }
                }
                tail
            })
        });
        Ok(Ffmpeg { stdin: child.stdin.take(), stdout: child.stdout.take(), child, stderr })
    }

    /// Waits for the process to exit on its own.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Ends the input (EOF on stdin) so that ffmpeg flushes and exits; kills it after `grace`. Returns the
    /// exit status (if it exited by itself) and the last stderr lines.
    pub async fn stop(mut self, grace: Duration) -> (Option<ExitStatus>, String) {
        drop(self.stdin.take());
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = self.child.kill().await;
                None
            }
        };
        (status, self.stderr_tail().await)
    }

    /// Kills the process now and returns its last stderr lines.
    pub async fn kill(mut self) -> String {
        let _ = self.child.kill().await;
        self.stderr_tail().await
    }

    async fn stderr_tail(&mut self) -> String {
        let Some(task) = self.stderr.take() else { return String::new() };
        match tokio::time::timeout(Duration::from_secs(1), task).await {
            Ok(Ok(tail)) => Vec::from(tail).join(" | "),
            _ => String::new(),
        }
    }
}

impl Drop for Ffmpeg {
    fn drop(&mut self) {
        if let Some(task) = self.stderr.take() {
            task.abort();
        }
    }
}

/// The arguments of an ffmpeg that reads MPEG-TS on stdin and writes FLV to `output` (a URL, or
/// `pipe:1`): video copied, audio by `audio` (e.g. `["-c:a", "aac"]`: legacy FLV cannot carry Opus),
/// probing the input for `analyze_micros`. `extra` goes just before the output format.
pub(crate) fn ts_to_flv_args<'a>(
    analyze_micros: &'a str,
    audio: &[&'a str],
    extra: &[&'a str],
    output: &'a str,
) -> Vec<&'a str> {
    let mut args = vec!["-analyzeduration", analyze_micros, "-f", "mpegts", "-i", "pipe:0"];
    args.extend_from_slice(&["-map", "0:v?", "-map", "0:a?", "-c:v", "copy"]);
    args.extend_from_slice(audio);
    args.extend_from_slice(&["-flvflags", "no_duration_filesize"]);
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-f", "flv", output]);
    args
}
