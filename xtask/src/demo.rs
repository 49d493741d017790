//! `cargo xtask demo`: builds the host, starts a trickle server and moves a real stream through
//! it — ffmpeg-generated H.264/AAC MPEG-TS segments published and subscribed over HTTP — then
//! checks every byte and prints the URLs to look at.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{cargo, env, exec};

const SEGMENTS: usize = 6;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(root: &Path) -> Result<()> {
    env::ensure_rust_target("wasm32-wasip2")?;
    env::ensure_debian_packages(&[("ffmpeg", "ffmpeg"), ("ffprobe", "ffmpeg")])?;
    exec(cargo(root).args(["build", "--release", "-p", "byoc-cli"]))?;
    let byoc = root.join("target/release/byoc");
    let work = root.join("target/demo");
    let (input, output) = (work.join("in"), work.join("out"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&input)?;

    eprintln!("xtask: generating {SEGMENTS} one-second H.264 + AAC MPEG-TS segments with ffmpeg");
    exec(
        Command::new("ffmpeg")
            .args(["-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", &SEGMENTS.to_string()])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac"])
            .args(["-f", "segment", "-segment_time", "1", "-segment_format", "mpegts"])
            .arg(input.join("%03d.ts")),
    )?;
    let mut files: Vec<_> = std::fs::read_dir(&input)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();

    eprintln!("xtask: starting the trickle server");
    let mut server = KillOnDrop(
        Command::new(&byoc)
            .args(["trickle", "--listen", "127.0.0.1:0", "--base", "/ai/trickle", "--autocreate"])
            .stdout(Stdio::piped())
            .spawn()
            .context("starting byoc trickle")?,
    );
    let stdout = server.0.stdout.take().context("no server stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let base = line.trim().rsplit(' ').next().unwrap_or_default().trim_end_matches('/').to_string();
    if !base.starts_with("http://") {
        bail!("unexpected server banner {line:?}");
    }
    let channel = format!("{base}/demo-stream");
    exec(Command::new("curl").args(["-sf", "-X", "POST", "-H", "Expect-Content: video/mp2t", &channel]))?;

    let subscriber = KillOnDrop(
        Command::new(&byoc)
            .args(["trickle", "subscribe", &channel, "--start", "0", "--count", &files.len().to_string()])
            .arg("--out")
            .arg(&output)
            .spawn()
            .context("starting the subscriber")?,
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    eprintln!("xtask: publishing at real time (one segment per second)");
    exec(Command::new(&byoc).args(["trickle", "publish", &channel, "--interval-ms", "1000"]).args(&files))?;
    let mut subscriber = subscriber;
    let status = subscriber.0.wait()?;
    if !status.success() {
        bail!("subscriber failed: {status}");
    }

    for (i, f) in files.iter().enumerate() {
        let got = std::fs::read(output.join(format!("{i}.ts"))).with_context(|| format!("segment {i} missing"))?;
        if got != std::fs::read(f)? {
            bail!("segment {i} differs from what was published");
        }
    }
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "compact"])
        .arg(output.join("0.ts"))
        .output()?;
    println!();
    println!("demo: {} segments published and received byte for byte", files.len());
    println!("demo: ffprobe of the first received segment:\n{}", String::from_utf8_lossy(&probe.stdout).trim());
    println!();
    println!("  trickle server      {base}/");
    println!("  channel             {channel}");
    println!("  live edge           curl -i {channel}/next");
    println!("  latest segment      curl -s {channel}/-2 | ffprobe -");
    println!("  received segments   {}", output.display());
    println!();
    println!("The stream goes on from its live edge for 20 s so you can try the URLs above (Ctrl-C to stop).");
    for _ in 0..3 {
        exec(
            Command::new(&byoc)
                .args(["trickle", "publish", &channel, "--live-edge", "--interval-ms", "1000"])
                .args(&files),
        )?;
    }
    drop(server);
    println!("demo: done");
    Ok(())
}
