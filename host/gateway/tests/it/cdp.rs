//! Headless Chromium driven over the Chrome DevTools Protocol, through a pipe
//! (`--remote-debugging-pipe`: Chromium reads commands on its fd 3 and writes answers and events on
//! its fd 4, each message JSON ended by a NUL byte), so no WebSocket client is needed. A shell puts
//! the test's pipes on those descriptors.
//!
//! What the tests use: open a page, evaluate script in it (awaiting promises), wait for a condition,
//! take a screenshot and check that it is not blank. The page's console and uncaught errors are kept
//! for failure messages.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::oneshot;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A running Chromium.
pub struct Browser {
    child: Child,
    input: tokio::sync::Mutex<ChildStdin>,
    pending: Pending,
    next: AtomicU64,
    /// What the pages logged (console messages and uncaught errors), in order.
    log: Arc<Mutex<Vec<String>>>,
    _profile: tempfile::TempDir,
}

/// One page (a target attached in flat mode: commands carry its session id).
pub struct Page<'b> {
    browser: &'b Browser,
    session: String,
}

impl Browser {
    /// Starts `chromium` headless with a fake camera and microphone and a fresh profile.
    pub async fn launch(chromium: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$@" 3<&0 4>&1 </dev/null >/dev/null"#)
            .arg("sh")
            .arg(chromium)
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .args(["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
            .args(["--autoplay-policy=no-user-gesture-required", "--window-size=1280,1700", "--hide-scrollbars"])
            .arg("--remote-debugging-pipe")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium");
        let input = child.stdin.take().unwrap();
        let output = child.stdout.take().unwrap();
        let pending: Pending = Arc::default();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (p, l) = (pending.clone(), log.clone());
        tokio::spawn(async move {
            let mut output = BufReader::new(output);
            let mut msg = Vec::new();
            while output.read_until(0, &mut msg).await.is_ok_and(|n| n > 0) {
                if msg.last() == Some(&0) {
                    msg.pop();
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&msg) {
                    dispatch(&p, &l, v);
                }
                msg.clear();
            }
        });
        Browser {
            child,
            input: tokio::sync::Mutex::new(input),
            pending,
            next: AtomicU64::new(1),
            log,
            _profile: profile,
        }
    }

    /// Sends a command (to a page's session, if given) and waits for its result.
    pub async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        {
            let mut input = self.input.lock().await;
            input.write_all(&bytes).await.expect("writing to chromium");
            input.flush().await.unwrap();
        }
        let answer = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .unwrap_or_else(|_| panic!("chromium did not answer {method}"))
            .unwrap_or_else(|_| panic!("chromium went away during {method}"));
        assert!(answer.get("error").is_none(), "{method} failed: {answer}");
        answer["result"].clone()
    }

    /// Opens `url` in a new page.
    pub async fn open(&self, url: &str) -> Page<'_> {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"})).await;
        let attached =
            self.call(None, "Target.attachToTarget", json!({"targetId": target["targetId"], "flatten": true})).await;
        let page = Page { browser: self, session: attached["sessionId"].as_str().unwrap().to_string() };
        page.call("Runtime.enable", json!({})).await;
        page.call("Page.enable", json!({})).await;
        page.call("Page.navigate", json!({"url": url})).await;
        // Navigation answers before the document is there: wait for it to load.
        let loaded = "location.href !== 'about:blank' && document.readyState === 'complete'";
        for _ in 0..120 {
            if page.eval(loaded).await == json!(true) {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("{url} did not load; page log: {:#?}", self.log());
    }

    /// What the pages logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Ends Chromium.
    pub async fn close(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// An answer goes to its caller; console messages and uncaught errors to the log; other events are
/// not used.
fn dispatch(pending: &Pending, log: &Mutex<Vec<String>>, v: Value) {
    if let Some(id) = v.get("id").and_then(Value::as_u64) {
        if let Some(tx) = pending.lock().unwrap().remove(&id) {
            let _ = tx.send(v);
        }
        return;
    }
    let p = &v["params"];
    let line = match v["method"].as_str() {
        Some("Runtime.consoleAPICalled") => {
            let args: Vec<String> = p["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| a.get("value").map_or_else(|| a["description"].to_string(), |v| v.to_string()))
                .collect();
            format!("console.{}: {}", p["type"].as_str().unwrap_or("log"), args.join(" "))
        }
        Some("Runtime.exceptionThrown") => {
            let d = &p["exceptionDetails"];
            format!("uncaught: {} {}", d["text"], d["exception"]["description"])
        }
        _ => return,
    };
    log.lock().unwrap().push(line);
}

impl Page<'_> {
    async fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params).await
    }

    /// The value of `expression` in the page (a promise is awaited); a thrown error fails the test.
    pub async fn eval(&self, expression: &str) -> Value {
        let r = self
            .call("Runtime.evaluate", json!({"expression": expression, "awaitPromise": true, "returnByValue": true}))
            .await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!("`{expression}` threw: {e}\npage log: {:#?}", self.browser.log());
        }
        r["result"]["value"].clone()
    }

    /// Waits up to `secs` for `expression` to be truthy; `what` names the wait in the failure, which
    /// also saves a screenshot (`{shots}/failed.png`) and shows the page's log.
    pub async fn wait_for(&self, what: &str, expression: &str, secs: u64, shots: &Path) {
        let truthy = |v: &Value| !matches!(v, Value::Null | Value::Bool(false)) && v != &json!(0) && v != &json!("");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if truthy(&self.eval(expression).await) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let _ = self.screenshot(&shots.join("failed.png")).await;
                let text = self.eval("document.body.innerText").await;
                panic!(
                    "timed out waiting for {what} (`{expression}`)\npage text: {text}\npage log: {:#?}",
                    self.browser.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Saves a PNG screenshot of the page's viewport at `path`; returns its bytes.
    pub async fn screenshot(&self, path: &Path) -> Vec<u8> {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"})).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        std::fs::write(path, &png).unwrap();
        png
    }
}

/// Where the screenshots of `test` go: `console-screenshots/{test}` under the target directory
/// this test binary was built in (kept as CI artifacts).
pub fn screenshot_dir(test: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // {target}/{profile}/deps/{binary}
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let dir = target.join("console-screenshots").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether a PNG shows something: decoded by ffmpeg to a small grey image, no single shade covers
/// (almost) all of it. Without ffmpeg, a single-colour page compresses to a few kB, a page with text
/// and video to much more.
pub fn not_blank(png: &[u8], path: &Path) -> bool {
    let gray = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vf", "scale=160:-1", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .stderr(Stdio::null())
        .output();
    match gray {
        Ok(out) if out.status.success() && !out.stdout.is_empty() => {
            let mut counts = [0usize; 256];
            for &b in &out.stdout {
                counts[usize::from(b)] += 1;
            }
            let most = counts.iter().max().copied().unwrap_or(0);
            most * 100 < out.stdout.len() * 97
        }
        _ => png.len() > 30_000,
    }
}
