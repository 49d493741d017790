//! `byoc plugin`: inspect and run capability plugins locally, without a node.
//!
//! - `byoc plugin inspect [FILE_OR_DIR]` prints `describe()` and the manifest as JSON: one
//!   object for a plugin (its directory or its `.wasm`), a list for a directory of plugins.
//!   Without a path: `target/plugins` (what `cargo xtask plugins` lays out).
//! - `byoc plugin run PLUGIN --input SEG.ts... --output DIR [--params JSON]` runs one stream
//!   session: each input file is one segment (fed in chunks); output segments are written as
//!   `DIR/<seq>.ts`, data lines to `DIR/data.jsonl`, events to `DIR/events.jsonl`. A frame
//!   plugin gets the segments decoded into frames, as on a node, and its frames are encoded into
//!   the output segments (H.264, cut where the input segments were); here no frame is dropped.
//! - `byoc plugin reload NAME` is for a running node; none exists yet, so it only says so.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use byoc_runtime::{CacheDir, Output, Plugin, Runtime, RuntimeConfig};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// Default plugin directory, as laid out by `cargo xtask plugins`.
const DEFAULT_PLUGINS: &str = "target/plugins";

#[derive(clap::Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    command: PluginCommand,
    /// Directory of the compiled-component cache (default: $XDG_CACHE_HOME/byoc).
    #[arg(long, global = true, env = "BYOC_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum PluginCommand {
    /// Print describe() and the manifest of a plugin, or of every plugin in a directory, as JSON.
    Inspect {
        /// A plugin directory, a `.wasm` with `manifest.toml` beside it, or a directory of plugins.
        path: Option<PathBuf>,
    },
    /// Run one stream session locally over segment files.
    Run {
        /// The plugin: its directory or its `.wasm`.
        plugin: PathBuf,
        /// Input segments, in order (one file = one segment).
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<PathBuf>,
        /// Output directory (created if missing).
        #[arg(long)]
        output: PathBuf,
        /// Session params (JSON object).
        #[arg(long, default_value = "{}")]
        params: String,
        /// Control messages (JSON) sent after the segments, in order.
        #[arg(long)]
        control: Vec<String>,
        /// Bytes per `on-chunk` call.
        #[arg(long, default_value_t = 64 * 1024)]
        chunk_size: usize,
    },
    /// Ask a running node to reload a plugin's files (all plugins when no name is given): new
    /// streams get the new code, running ones finish on the old.
    Reload {
        /// Plugin name.
        name: Option<String>,
        /// The node (orchestrator or `byoc dev`'s orchestrator) URL.
        #[arg(long, default_value = "http://127.0.0.1:8935")]
        node: String,
        /// The node's secret (as for worker registration).
        #[arg(long, env = "BYOC_ORCH_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
}

pub async fn run(args: PluginArgs) -> anyhow::Result<()> {
    let config = RuntimeConfig {
        cache_dir: args.cache_dir.map_or(CacheDir::Default, CacheDir::At),
        max_instances: 16,
        ..RuntimeConfig::default()
    };
    match args.command {
        PluginCommand::Inspect { path } => inspect(config, path.as_deref().unwrap_or(Path::new(DEFAULT_PLUGINS))).await,
        PluginCommand::Run { plugin, input, output, params, control, chunk_size } => {
            run_session(config, &plugin, &input, &output, &params, &control, chunk_size.max(1)).await
        }
        PluginCommand::Reload { name, node, secret } => reload(&node, name.as_deref(), secret.as_deref()).await,
    }
}

/// Whether `path` is a directory of plugins rather than one plugin.
fn is_plugin_collection(path: &Path) -> bool {
    path.is_dir() && !path.join("manifest.toml").is_file()
}

async fn inspect(config: RuntimeConfig, path: &Path) -> anyhow::Result<()> {
    let runtime = Runtime::new(config)?;
    if !is_plugin_collection(path) {
        let plugin = runtime.load_plugin(path).await.with_context(|| format!("loading {}", path.display()))?;
        println!("{}", serde_json::to_string_pretty(&describe(&plugin))?);
        return Ok(());
    }
    let mut list = Vec::new();
    let mut failed = 0;
    for dir in byoc_runtime::plugin_dirs(path)? {
        match runtime.load_plugin(&dir).await {
            Ok(plugin) => list.push(describe(&plugin)),
            Err(e) => {
                failed += 1;
                let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                list.push(json!({"name": name, "path": dir, "error": e.to_string()}));
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&list)?);
    if failed > 0 {
        bail!("{failed} plugin(s) failed to load");
    }
    Ok(())
}

fn describe(plugin: &Plugin) -> Value {
    json!({
        "name": plugin.name(),
        "path": plugin.dir(),
        "wasm": plugin.wasm_path(),
        "sha256": plugin.sha256(),
        "cache": plugin.cache_status(),
        "describe": plugin.describe(),
        "manifest": plugin.manifest(),
        "grants_in_force": plugin.grants(),
    })
}

async fn run_session(
    config: RuntimeConfig,
    path: &Path,
    inputs: &[PathBuf],
    out_dir: &Path,
    params: &str,
    controls: &[String],
    chunk_size: usize,
) -> anyhow::Result<()> {
    let runtime = Runtime::new(config)?;
    let plugin = runtime.load_plugin(path).await.with_context(|| format!("loading {}", path.display()))?;
    tokio::fs::create_dir_all(out_dir).await.with_context(|| format!("creating {}", out_dir.display()))?;
    let (mut session, outputs) = plugin.open_session(params).await.context("opening the session")?;
    let writer = tokio::spawn(write_outputs(outputs, out_dir.to_owned()));
    if let Some(needs) = plugin.describe().frames {
        let result = run_frames(&mut session, needs, inputs, out_dir, controls, chunk_size).await;
        if let Err(e) = session.close().await {
            eprintln!("close: {} error: {e}", e.kind());
        }
        let summary = writer.await.context("output writer")??;
        eprintln!("wrote {} data line(s), {} event(s) to {}", summary.data, summary.events, out_dir.display());
        return result;
    }

    let mut result = Ok(());
    'feed: for (seq, input) in inputs.iter().enumerate() {
        let bytes = tokio::fs::read(input).await.with_context(|| format!("reading {}", input.display()))?;
        let steps = std::iter::once(Step::Start(seq as u64))
            .chain(bytes.chunks(chunk_size).map(Step::Chunk))
            .chain(std::iter::once(Step::End));
        for step in steps {
            let call = match step {
                Step::Start(seq) => session.on_segment_start(seq).await,
                Step::Chunk(chunk) => session.on_chunk(chunk).await,
                Step::End => session.on_segment_end().await,
            };
            if let Err(e) = call {
                eprintln!("segment {} ({}): {} error: {e}", seq, input.display(), e.kind());
                if e.is_failure() {
                    result = Err(anyhow::anyhow!("the session failed: {e}"));
                    break 'feed;
                }
            }
        }
    }
    if result.is_ok() {
        for message in controls {
            if let Err(e) = session.on_control(message).await {
                eprintln!("control {message}: {} error: {e}", e.kind());
            }
        }
    }
    if let Err(e) = session.close().await {
        eprintln!("close: {} error: {e}", e.kind());
    }
    let summary = writer.await.context("output writer")??;
    eprintln!(
        "wrote {} segment(s), {} data line(s), {} event(s) to {}",
        summary.segments,
        summary.data,
        summary.events,
        out_dir.display()
    );
    result
}

/// A frame plugin's run: the input files through the frame pipeline and the plugin, the
/// encoded output to `DIR/<seq>.ts`. The pipeline is lossless (the decoder waits for the plugin),
/// so input is fed from its own task while the plugin takes the frames.
async fn run_frames(
    session: &mut byoc_runtime::Session,
    needs: byoc_frames::FrameNeeds,
    inputs: &[PathBuf],
    out_dir: &Path,
    controls: &[String],
    chunk_size: usize,
) -> anyhow::Result<()> {
    use byoc_frames::{Decoded, Encoded, PipelineConfig, Processed};
    // Not live: the decoder waits for the plugin rather than drop.
    let config =
        PipelineConfig { needs, encode: Default::default(), queue_frames: 16, queue_bytes: 64 << 20, lossless: true };
    let pipeline = byoc_frames::start(config).context("starting the frame pipeline")?;
    let (feeder, mut source, sink, mut encoded, stats) =
        (pipeline.input, pipeline.frames, pipeline.processed, pipeline.output, pipeline.stats);
    let dir = out_dir.to_owned();
    let written = tokio::spawn(async move {
        let (mut seq, mut file, mut segments) = (0u64, None::<tokio::fs::File>, 0usize);
        while let Some(piece) = encoded.recv().await {
            match piece {
                Encoded::SegmentStart => {
                    file = Some(tokio::fs::File::create(dir.join(format!("{seq}.ts"))).await?);
                    seq += 1;
                    segments += 1;
                }
                Encoded::Chunk(bytes) => {
                    if let Some(f) = file.as_mut() {
                        f.write_all(&bytes).await?;
                    }
                }
                Encoded::SegmentEnd => {
                    if let Some(mut f) = file.take() {
                        f.flush().await?;
                    }
                }
            }
        }
        anyhow::Ok(segments)
    });
    let files = inputs.to_vec();
    let feeding = tokio::spawn(async move {
        for (seq, input) in files.iter().enumerate() {
            let bytes = tokio::fs::read(input).await.with_context(|| format!("reading {}", input.display()))?;
            feeder.segment_start(seq as u64).await.context("feeding the decoder")?;
            for chunk in bytes.chunks(chunk_size) {
                feeder.chunk(bytes::Bytes::copy_from_slice(chunk)).await.context("feeding the decoder")?;
            }
            feeder.segment_end().await.context("feeding the decoder")?;
        }
        feeder.finish().await;
        anyhow::Ok(())
    });
    let mut result = Ok(());
    let mut segment = 0;
    while let Some(decoded) = source.recv().await {
        let call = match decoded {
            Decoded::SegmentEnd { input_seq } => {
                segment = input_seq + 1;
                let _ = sink.send(Processed::SegmentEnd).await;
                continue;
            }
            Decoded::Video(frame) => match session.on_video_frame(frame).await {
                Ok(Some(frame)) => sink.send(Processed::Video(frame)).await.map_err(anyhow::Error::from),
                Ok(None) => Ok(()),
                Err(e) => Err(anyhow::Error::from(e)),
            },
            Decoded::Audio(frame) => match session.on_audio_frame(frame).await {
                Ok(Some(frame)) => sink.send(Processed::Audio(frame)).await.map_err(anyhow::Error::from),
                Ok(None) => Ok(()),
                Err(e) => Err(anyhow::Error::from(e)),
            },
        };
        if let Err(e) = call {
            eprintln!("segment {segment}: {e:#}");
            if session.failure().is_some() {
                result = Err(anyhow::anyhow!("the session failed: {e:#}"));
                break;
            }
        }
    }
    drop(source);
    if result.is_ok() {
        for message in controls {
            if let Err(e) = session.on_control(message).await {
                eprintln!("control {message}: {} error: {e}", e.kind());
            }
        }
    }
    sink.finish();
    // Feeding fails only when the pipeline stopped first (the session failed): that is reported.
    let fed = feeding.await.context("feeding")?;
    if result.is_ok() {
        fed?;
    }
    let segments = written.await.context("segment writer")??;
    let decoded = stats.decoded_video.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{decoded} video frame(s) decoded; wrote {segments} segment(s) to {}", out_dir.display());
    result
}

enum Step<'a> {
    Start(u64),
    Chunk(&'a [u8]),
    End,
}

#[derive(Default)]
struct Summary {
    segments: usize,
    data: usize,
    events: usize,
}

/// Writes a session's outputs as they arrive.
async fn write_outputs(mut outputs: byoc_runtime::Outputs, dir: PathBuf) -> anyhow::Result<Summary> {
    let mut data = tokio::fs::File::create(dir.join("data.jsonl")).await?;
    let mut events = tokio::fs::File::create(dir.join("events.jsonl")).await?;
    let mut segment: Option<tokio::fs::File> = None;
    let mut summary = Summary::default();
    while let Some(output) = outputs.recv().await {
        match output {
            Output::SegmentStart { seq } => {
                segment = Some(tokio::fs::File::create(dir.join(format!("{seq}.ts"))).await?);
                summary.segments += 1;
            }
            Output::SegmentChunk(bytes) => {
                if let Some(file) = segment.as_mut() {
                    file.write_all(&bytes).await?;
                }
            }
            Output::SegmentEnd => {
                if let Some(mut file) = segment.take() {
                    file.flush().await?;
                }
            }
            Output::Data(line) => {
                // One JSON document per line: a line that is not JSON is written as a string.
                let line = match serde_json::from_str::<Value>(&line) {
                    Ok(_) => line,
                    Err(_) => Value::String(line).to_string(),
                };
                data.write_all(format!("{line}\n").as_bytes()).await?;
                summary.data += 1;
            }
            Output::Event(json) => {
                events.write_all(format!("{json}\n").as_bytes()).await?;
                summary.events += 1;
            }
            Output::Log { level, msg } => eprintln!("[plugin {level:?}] {msg}"),
        }
    }
    data.flush().await?;
    events.flush().await?;
    Ok(summary)
}

async fn reload(node: &str, name: Option<&str>, secret: Option<&str>) -> anyhow::Result<()> {
    let client = byoc_trickle::http_client()?;
    let mut req = client
        .post(format!("{}/plugins/reload", node.trim_end_matches('/')))
        .body(name.unwrap_or_default().to_string());
    if let Some(s) = secret {
        req = req.header("Authorization", s);
    }
    let resp = req.send().await.with_context(|| format!("reaching {node}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    println!("{}", text.trim());
    if !status.is_success() {
        bail!("the node answered {status}");
    }
    Ok(())
}
