//! The client side of a gateway, for a person at a terminal:
//!
//! - `byoc capabilities`: what the gateway's orchestrators offer.
//! - `byoc stream start CAP [--params JSON] [--rtmp-output URL] [--name NAME]`: starts a stream and prints
//!   its URLs and secrets (`--json`: the gateway's answer as is). The answer is kept in a stream record
//!   (`$BYOC_STATE_DIR`, else `$XDG_STATE_HOME/byoc`, else `~/.local/state/byoc`: `streams/<id>.json`,
//!   readable by its owner only) so the other commands need only the stream's id.
//! - `byoc stream update ID PARAMS`, `stop ID`, `status ID`.
//! - `byoc stream watch ID`: the stream's events and data lines as they come, until it ends.
//! - `byoc stream push ID FILE`: publishes a media file in real time (ffmpeg) to the stream's RTMP URL.
//!
//! The gateway is `--gateway` (or `BYOC_GATEWAY`), else the one the record names, else `byoc dev`'s
//! (`http://127.0.0.1:8937`); the stream's secret is `--token` (or `BYOC_STREAM_TOKEN`), else the record's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// The gateway `byoc dev` and `byoc gateway` listen on by default.
const DEFAULT_GATEWAY: &str = "http://127.0.0.1:8937";

/// Where the gateway is, and the API key it wants (if any).
#[derive(clap::Args, Clone)]
pub struct GatewayFlags {
    /// The gateway's URL [default: the stream record's, else http://127.0.0.1:8937].
    #[arg(long, env = "BYOC_GATEWAY", global = true)]
    gateway: Option<String>,
    /// The gateway's API key, if it has one (sent as `Authorization: Bearer`).
    #[arg(long, env = "BYOC_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
    /// Print what the gateway answered as JSON, as is.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(clap::Args)]
pub struct CapabilitiesArgs {
    #[command(flatten)]
    gateway: GatewayFlags,
}

#[derive(clap::Args)]
pub struct StreamArgs {
    #[command(subcommand)]
    command: StreamCommand,
    #[command(flatten)]
    gateway: GatewayFlags,
    /// The stream's secret (the control secret, or the viewer token to watch) [default: the record's].
    #[arg(long, env = "BYOC_STREAM_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
}

#[derive(clap::Subcommand)]
enum StreamCommand {
    /// Start a stream of a capability; prints its URLs and secrets.
    Start {
        /// The capability (`byoc capabilities` lists them).
        capability: String,
        /// The plugin's params (a JSON object).
        #[arg(long, default_value = "{}")]
        params: String,
        /// Also push the output to these RTMP URLs (comma-separated).
        #[arg(long)]
        rtmp_output: Option<String>,
        /// A name for the stream (its id becomes `NAME-<random>`).
        #[arg(long)]
        name: Option<String>,
        /// The stream's id (default: random).
        #[arg(long)]
        id: Option<String>,
        /// The job's `parameters` (a JSON object: legs, orchestrator choice); legs it does not name are
        /// the capability's own.
        #[arg(long, default_value = "{}")]
        parameters: String,
        /// The job's timeout in seconds (how long the orchestrator keeps the stream without news).
        #[arg(long, default_value_t = 30)]
        timeout: i64,
    },
    /// Change a running stream's params (the JSON object goes to its plugin).
    Update { id: String, params: String },
    /// Stop a stream.
    Stop { id: String },
    /// Where a stream runs and how it is.
    Status { id: String },
    /// Print a stream's events and data lines as they come, until it ends.
    Watch {
        id: String,
        /// Stop after this many messages.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Publish a media file to a stream in real time (ffmpeg, over the stream's RTMP URL). H.264 and AAC
    /// are sent as they are; anything else is encoded to them first.
    Push {
        id: String,
        file: PathBuf,
        /// Play the file again and again until interrupted.
        #[arg(long = "loop")]
        repeat: bool,
        /// Publish to this RTMP URL (the stream's `rtmp_url`) instead of the one in the stream's record:
        /// for a stream started elsewhere.
        #[arg(long)]
        rtmp_url: Option<String>,
    },
}

pub async fn capabilities(args: CapabilitiesArgs) -> anyhow::Result<()> {
    let g = &args.gateway;
    let base = g.gateway.clone().unwrap_or_else(|| DEFAULT_GATEWAY.to_string());
    let v = answer(authed(client()?.get(format!("{}/capabilities", trim(&base))), g.api_key.as_deref())).await?;
    if g.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let list = v["capabilities"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no capability offered (orchestrators answered: {})", v["orchestrators_answered"]);
    }
    for c in list {
        println!(
            "{:<20} {:<28} {:>10} {:>5} free  {:>2} orch.  {}",
            c["name"].as_str().unwrap_or_default(),
            legs_text(&c["legs"]),
            price_text(&c["price"]),
            c["available_capacity"],
            c["orchestrators"],
            c["description"].as_str().unwrap_or_default(),
        );
    }
    for why in v["unanswered"].as_array().into_iter().flatten() {
        eprintln!("not listed: {}", why.as_str().unwrap_or_default());
    }
    Ok(())
}

fn legs_text(legs: &Value) -> String {
    if legs.is_null() {
        return "legs unknown".into();
    }
    let names = [("video_in", "video in"), ("video_out", "video out"), ("data", "data"), ("events", "events")];
    let on: Vec<&str> = names.iter().filter(|(k, _)| legs[*k] == true).map(|(_, n)| *n).collect();
    if on.is_empty() { "batch only".into() } else { on.join(", ") }
}

fn price_text(price: &Value) -> String {
    let per = price["price_per_unit"].as_u64().unwrap_or(0);
    let unit = price["pixels_per_unit"].as_u64().unwrap_or(1).max(1);
    match (per, unit) {
        (0, _) => "free".into(),
        (p, 1) => format!("{p} wei/s"),
        (p, u) => format!("{p}/{u} wei/s"),
    }
}

pub async fn run(args: StreamArgs) -> anyhow::Result<()> {
    let http = client()?;
    let g = &args.gateway;
    match args.command {
        StreamCommand::Start { capability, params, rtmp_output, name, id, parameters, timeout } => {
            let params: Value = serde_json::from_str(&params).context("--params must be a JSON object")?;
            let parameters: Value = serde_json::from_str(&parameters).context("--parameters must be a JSON object")?;
            if !params.is_object() || !parameters.is_object() {
                bail!("--params and --parameters must be JSON objects");
            }
            let base = g.gateway.clone().unwrap_or_else(|| DEFAULT_GATEWAY.to_string());
            let header = byoc_payment::job::JobRequest {
                request: "{}".into(),
                parameters: parameters.to_string(),
                capability: capability.clone(),
                timeout_seconds: timeout,
                ..Default::default()
            }
            .to_header();
            let mut body = json!({"params": params});
            if let Some(o) = rtmp_output {
                body["rtmp_output"] = o.into();
            }
            if let Some(n) = name {
                body["stream_name"] = n.into();
            }
            if let Some(id) = id {
                body["stream_id"] = id.into();
            }
            let req = http.post(format!("{}/process/stream/start", trim(&base))).header("Livepeer", header).json(&body);
            let v = answer(authed(req, g.api_key.as_deref())).await?;
            let id = v["stream_id"].as_str().context("the gateway's answer has no stream_id")?.to_string();
            let record = Record { gateway: trim(&base).to_string(), capability, answer: v.clone() };
            let kept = record.save(&id);
            if g.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_started(&id, &record, kept.as_ref().ok());
            }
            if let Err(e) = kept {
                eprintln!("warning: the stream record was not kept ({e:#}); pass --token to the other commands");
            }
            Ok(())
        }
        StreamCommand::Update { id, params } => {
            let params: Value = serde_json::from_str(&params).context("PARAMS must be a JSON object")?;
            let t = Target::of(&id, g, args.token.as_deref())?;
            let v = answer(http.post(t.url("update")).bearer_auth(&t.token).json(&params)).await?;
            println!("{}", if g.json { v.to_string() } else { format!("updated {id}: {v}") });
            Ok(())
        }
        StreamCommand::Stop { id } => {
            let t = Target::of(&id, g, args.token.as_deref())?;
            let r = http.post(t.url("stop")).bearer_auth(&t.token).send().await.context("asking the gateway")?;
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            // Stopped now, or already gone: the record has served either way.
            if status.is_success() || status == reqwest::StatusCode::GONE || status == reqwest::StatusCode::NOT_FOUND {
                Record::forget(&id);
            }
            if !status.is_success() {
                bail!("{status}: {}", error_text(&text));
            }
            println!("stopped {id}");
            Ok(())
        }
        StreamCommand::Status { id } => {
            let t = Target::of(&id, g, args.token.as_deref())?;
            let v = answer(http.get(t.url("status")).bearer_auth(&t.token)).await?;
            if g.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_status(&v);
            }
            Ok(())
        }
        StreamCommand::Watch { id, count } => {
            watch(&http, &Target::of(&id, g, args.token.as_deref())?, g.json, count).await
        }
        StreamCommand::Push { id, file, repeat, rtmp_url } => {
            // A push uses no token: the RTMP URL (from the record, or --rtmp-url) carries the stream's key.
            push(&Target::of(&id, g, Some(args.token.as_deref().unwrap_or_default()))?, &file, repeat, rtmp_url).await
        }
    }
}

fn print_started(id: &str, r: &Record, kept: Option<&PathBuf>) {
    let a = &r.answer;
    let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
    println!("stream {id} ({}) started on {}", r.capability, r.gateway);
    println!("  stream secret  {}   controls it: update, stop, publish (keep it private)", s("stream_secret"));
    println!("  viewer token   {}   watches only: the watch links below carry it (share those)", s("viewer_token"));
    let rows = [
        ("publish", "RTMP", "rtmp_url"),
        ("", "WHIP", "whip_url"),
        ("watch", "page", "player_url"),
        ("", "WHEP", "whep_url"),
        ("", "RTMP", "rtmp_output_url"),
        ("", "events", "events_url"),
        ("", "data", "data_url"),
        ("", "status", "status_url"),
    ];
    for (group, what, key) in rows {
        let url = s(key);
        if !url.is_empty() {
            println!("  {group:<8} {what:<6} {url}");
        }
    }
    if kept.is_some() {
        println!("next: byoc stream push {id} FILE | byoc stream watch {id} | byoc stream stop {id}");
    }
}

fn print_status(v: &Value) {
    let s = |k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    println!("stream {} ({}): {}", s("stream_id"), s("capability"), s("state"));
    if !v["reconnect_reason"].is_null() {
        println!("  moving because: {}", s("reconnect_reason"));
    }
    println!("  orchestrator  {}", s("orchestrator"));
    println!("  balance       {}", s("balance"));
    println!("  params        {}", s("params"));
    println!("  your access   {}", s("access"));
    if !v["last_status"].is_null() {
        println!("  last status   {}", s("last_status"));
    }
}

/// A stream the command acts on: where its routes are and the secret to show them.
struct Target {
    base: String,
    id: String,
    token: String,
    record: Option<Record>,
}

impl Target {
    fn of(id: &str, g: &GatewayFlags, token: Option<&str>) -> anyhow::Result<Target> {
        if !byoc_protocol::valid_stream_id(id) {
            bail!("{id:?} is not a stream id (letters, digits, '-', '_' and '.')");
        }
        let record = Record::load(id);
        let base = g
            .gateway
            .clone()
            .or_else(|| record.as_ref().map(|r| r.gateway.clone()))
            .unwrap_or_else(|| DEFAULT_GATEWAY.to_string());
        let token = match (token, &record) {
            (Some(t), _) => t.to_string(),
            (None, Some(r)) => r.answer["stream_secret"].as_str().unwrap_or_default().to_string(),
            (None, None) => bail!(
                "no record of stream {id} here (it was not started with `byoc stream start` as this user): pass --token"
            ),
        };
        Ok(Target { base: trim(&base).to_string(), id: id.to_string(), token, record })
    }

    fn url(&self, route: &str) -> String {
        format!("{}/process/stream/{}/{route}", self.base, self.id)
    }
}

/// What `start` answered, kept so the other commands need only the id.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    gateway: String,
    capability: String,
    answer: Value,
}

impl Record {
    fn dir() -> Option<PathBuf> {
        let base = std::env::var_os("BYOC_STATE_DIR").map(PathBuf::from).or_else(|| {
            std::env::var_os("XDG_STATE_HOME")
                .map(|d| PathBuf::from(d).join("byoc"))
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/byoc")))
        })?;
        Some(base.join("streams"))
    }

    fn path(id: &str) -> Option<PathBuf> {
        byoc_protocol::valid_stream_id(id).then(|| Self::dir().map(|d| d.join(format!("{id}.json")))).flatten()
    }

    fn save(&self, id: &str) -> anyhow::Result<PathBuf> {
        let path = Self::path(id).context("no state directory (set BYOC_STATE_DIR or HOME)")?;
        let dir = path.parent().context("state directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        write_private(&path, &serde_json::to_vec_pretty(self)?)?;
        Ok(path)
    }

    fn load(id: &str) -> Option<Record> {
        let text = std::fs::read(Self::path(id)?).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn forget(id: &str) {
        if let Some(p) = Self::path(id) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Writes `bytes` to `path`, readable and writable by the owner only (it holds a stream's secret).
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes).with_context(|| format!("writing {}", path.display()))
}

/// One message of a server-sent event stream.
#[derive(Debug, Default, PartialEq)]
struct SseMessage {
    event: String,
    data: String,
}

/// Splits server-sent events out of `buf` as they complete (what is left stays for the next bytes).
fn take_messages(buf: &mut String) -> Vec<SseMessage> {
    let mut out = Vec::new();
    while let Some(end) = buf.find("\n\n") {
        let block: String = buf.drain(..end + 2).collect();
        let mut m = SseMessage::default();
        for line in block.lines() {
            if let Some(d) = line.strip_prefix("data:") {
                if !m.data.is_empty() {
                    m.data.push('\n');
                }
                m.data.push_str(d.strip_prefix(' ').unwrap_or(d));
            } else if let Some(e) = line.strip_prefix("event:") {
                m.event = e.trim().to_string();
            }
        }
        if !m.data.is_empty() || !m.event.is_empty() {
            out.push(m);
        }
    }
    out
}

/// `byoc stream watch`: the events and the data of a stream, merged as they come.
async fn watch(http: &reqwest::Client, t: &Target, json: bool, count: Option<u64>) -> anyhow::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(&'static str, SseMessage)>(64);
    let mut feeds = 0;
    for channel in ["events", "data"] {
        let r = http.get(t.url(channel)).bearer_auth(&t.token).send().await.context("asking the gateway")?;
        let status = r.status();
        if channel == "data" && status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            continue; // No data leg on this stream.
        }
        if !status.is_success() {
            bail!("{channel}: {status}: {}", error_text(&r.text().await.unwrap_or_default()));
        }
        feeds += 1;
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut body = r.bytes_stream();
            let mut buf = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                buf.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
                for m in take_messages(&mut buf) {
                    if tx.send((channel, m)).await.is_err() {
                        return;
                    }
                }
                // A line longer than this is not a message a person reads: drop what is pending.
                if buf.len() > 1 << 20 {
                    buf.clear();
                }
            }
        });
    }
    drop(tx);
    let (mut seen, mut ended) = (0u64, 0);
    while let Some((channel, m)) = rx.recv().await {
        if m.event == "end" {
            ended += 1;
            if ended == feeds {
                eprintln!("stream {} ended", t.id);
                break;
            }
            continue;
        }
        if json {
            let message = serde_json::from_str::<Value>(&m.data).unwrap_or(Value::String(m.data));
            println!("{}", json!({"channel": channel, "message": message}));
        } else {
            println!("{channel:<6} {}", m.data);
        }
        seen += 1;
        if count.is_some_and(|c| seen >= c) {
            break;
        }
    }
    Ok(())
}

/// `byoc stream push`: ffmpeg reads the file at its own pace (`-re`) and publishes it over RTMP.
async fn push(t: &Target, file: &Path, repeat: bool, rtmp_url: Option<String>) -> anyhow::Result<()> {
    if !file.is_file() {
        bail!("{}: no such file", file.display());
    }
    let recorded = t.record.as_ref().and_then(|r| r.answer["rtmp_url"].as_str()).filter(|u| !u.is_empty());
    let url = rtmp_url.or_else(|| recorded.map(str::to_string)).with_context(|| {
        let id = &t.id;
        format!(
            "stream {id} has no rtmp_url here (no video in, no RTMP at the gateway, or not started here): \
             pass --rtmp-url"
        )
    })?;
    if !(url.starts_with("rtmp://") || url.starts_with("rtmps://")) {
        bail!("--rtmp-url must be an rtmp:// or rtmps:// URL");
    }
    let video = probe(file, "v").await?;
    let audio = probe(file, "a").await?;
    let mut cmd = tokio::process::Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-re"]);
    if repeat {
        cmd.args(["-stream_loop", "-1"]);
    }
    cmd.arg("-i").arg(file);
    match video.as_deref() {
        Some("h264") => cmd.args(["-c:v", "copy"]),
        Some(_) => cmd.args(["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "60"]),
        None => bail!("{}: no video stream (ffprobe found none)", file.display()),
    };
    match audio.as_deref() {
        Some("aac") => cmd.args(["-c:a", "copy"]),
        Some(_) => cmd.args(["-c:a", "aac", "-b:a", "128k"]),
        None => cmd.arg("-an"),
    };
    cmd.args(["-f", "flv"]).arg(&url).kill_on_drop(true);
    eprintln!("pushing {} to stream {} in real time{}", file.display(), t.id, if repeat { ", looped" } else { "" });
    let mut child = cmd.spawn().context("starting ffmpeg (`byoc stream push` needs ffmpeg and ffprobe on PATH)")?;
    let status = tokio::select! {
        s = child.wait() => s?,
        _ = tokio::signal::ctrl_c() => {
            let _ = child.start_kill();
            child.wait().await?
        }
    };
    if !status.success() {
        bail!("ffmpeg ended with {status}");
    }
    Ok(())
}

/// The codec of the first stream of `kind` (`v` or `a`) in `file`, by ffprobe.
/// The codec of the file's first `kind` (`v`, `a`) stream, if it has one; an error when ffprobe
/// cannot be run.
async fn probe(file: &Path, kind: &str) -> anyhow::Result<Option<String>> {
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", &format!("{kind}:0"), "-show_entries", "stream=codec_name"])
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .await
        .context("running ffprobe (`byoc stream push` needs ffmpeg and ffprobe on PATH)")?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok((out.status.success() && !name.is_empty()).then_some(name))
}

fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build().context("HTTP client")
}

fn authed(req: reqwest::RequestBuilder, api_key: Option<&str>) -> reqwest::RequestBuilder {
    match api_key {
        Some(k) => req.bearer_auth(k),
        None => req,
    }
}

fn trim(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// The JSON the gateway answered, or an error with its message and reasons.
async fn answer(req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let r = req.timeout(Duration::from_secs(120)).send().await.context("asking the gateway")?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{status}: {}", error_text(&text));
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The gateway's `{"error", "reasons"}` as lines, or the text as is.
fn error_text(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(v) if v["error"].is_string() => {
            let mut s = v["error"].as_str().unwrap_or_default().to_string();
            for r in v["reasons"].as_array().into_iter().flatten() {
                s.push_str(&format!("\n  - {}", r.as_str().map_or_else(|| r.to_string(), str::to_string)));
            }
            s
        }
        _ => text.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_sent_events_are_split_as_they_complete() {
        let mut buf = String::from("data: {\"a\":1}\n\nevent: end\ndata: x\n\ndata: par");
        let got = take_messages(&mut buf);
        assert_eq!(got[0], SseMessage { event: String::new(), data: "{\"a\":1}".into() });
        assert_eq!(got[1], SseMessage { event: "end".into(), data: "x".into() });
        assert_eq!(buf, "data: par");
        buf.push_str("tial\n\n: keepalive\n\n");
        assert_eq!(take_messages(&mut buf), [SseMessage { event: String::new(), data: "partial".into() }]);
        assert!(buf.is_empty());
    }

    #[test]
    fn legs_and_prices_read_as_words() {
        assert_eq!(legs_text(&json!({"video_in": true, "data": true})), "video in, data");
        assert_eq!(legs_text(&json!({})), "batch only");
        assert_eq!(legs_text(&Value::Null), "legs unknown");
        assert_eq!(price_text(&json!({"price_per_unit": 0})), "free");
        assert_eq!(price_text(&json!({"price_per_unit": 5, "pixels_per_unit": 2})), "5/2 wei/s");
    }
}
