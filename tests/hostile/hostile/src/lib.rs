//! `hostile`: a plugin that misbehaves when told to, so the host's containment can be tested.
//!
//! A session's control message (plain text, not JSON) picks the misbehaviour:
//!
//! | message | what the plugin does | what the host must report |
//! | --- | --- | --- |
//! | `trap` | panics (a trap under `panic = "abort"`) | `CallError::Trap` |
//! | `loop` | spins forever | `CallError::Timeout` |
//! | `memory` | allocates until memory runs out | `CallError::MemoryLimit` |
//! | `flood` | publishes events until refused | `CallError::OutputLimit` |
//! | `http <url>` | GETs the URL, publishing the status as data | a `denied` plugin error for a non-granted host; a timeout for a granted host that never answers |
//! | `read <path>` | reads a file, publishing its text as data | only granted read-only directories are visible |
//! | `write <path>` | tries to create a file | always refused: preopens are read-only |
//! | `env` | publishes the number of environment variables | 0: no environment |
//! | `echo <text>` | publishes `<version>:<text>` as data | (a health check) |
//! | `frames` | creates 1080p video frames, keeping them all, until the host refuses one; publishes how many it got | refused (`too-large`) within the instance's memory limit, the session alive |
//! | `tick <ms>` | asks for a tick every `<ms>` (0 stops); each tick publishes `<version>:tick` | ticks at that interval |
//!
//! Batch calls: path `/loop` spins, `/trap` panics, anything else echoes the body.
//! Built twice: the `v2` feature changes the version (and so the echo prefix), for the
//! hot-reload test.

use byoc_sdk::{
    Batch, CapabilityInfo, Context, Describe, Error, HttpError, HttpRequest, Legs, Method, Request, Response, Stream,
    StreamSession,
};

#[cfg(not(feature = "v2"))]
const VERSION: &str = "0.1.0";
#[cfg(feature = "v2")]
const VERSION: &str = "0.2.0";

/// The capability.
pub struct Hostile;

impl Describe for Hostile {
    fn describe() -> CapabilityInfo {
        CapabilityInfo::new("hostile", VERSION, "Misbehaves on request (tests only)")
            .legs(Legs::VIDEO_IN | Legs::VIDEO_OUT | Legs::DATA | Legs::EVENTS)
    }
}

fn spin() -> ! {
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

fn bomb() -> Result<(), Error> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch every block so nothing is optimised away.
        let block = vec![0xA5u8; 1024 * 1024];
        hoard.push(std::hint::black_box(block));
    }
}

impl Batch for Hostile {
    fn process(_ctx: &Context<'_>, request: Request) -> Result<Response, Error> {
        match request.path.as_str() {
            "/loop" => spin(),
            "/trap" => panic!("hostile batch trap"),
            _ => Ok(Response::bytes("application/octet-stream", request.body)),
        }
    }
}

impl Stream for Hostile {
    type Session = HostileSession;

    fn open(_ctx: &Context<'_>, params: &str) -> Result<HostileSession, Error> {
        match params.trim() {
            "trap-on-open" => panic!("hostile open trap"),
            _ => Ok(HostileSession),
        }
    }
}

/// One stream.
pub struct HostileSession;

impl StreamSession for HostileSession {
    fn on_segment_start(&mut self, ctx: &Context<'_>, _seq: u64) -> Result<(), Error> {
        ctx.segment_start()?;
        Ok(())
    }

    fn on_chunk(&mut self, ctx: &Context<'_>, bytes: &[u8]) -> Result<(), Error> {
        Ok(ctx.segment_chunk(bytes)?)
    }

    fn on_segment_end(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        Ok(ctx.segment_end()?)
    }

    fn on_tick(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        Ok(ctx.publish_data(&format!("{VERSION}:tick"))?)
    }

    fn on_control(&mut self, ctx: &Context<'_>, message: &str) -> Result<(), Error> {
        let (command, arg) = message.split_once(' ').unwrap_or((message, ""));
        match command {
            "trap" => panic!("hostile trap"),
            "loop" => spin(),
            "memory" => bomb(),
            "flood" => {
                let pad = "x".repeat(1024);
                let mut refused = 0;
                // Keep going a while after the first refusal, as a careless plugin would.
                for i in 0..1_000_000u32 {
                    let event = format!(r#"{{"type":"flood","i":{i},"pad":"{pad}"}}"#);
                    if ctx.host().publish_event(&event).is_err() {
                        refused += 1;
                        if refused > 100 {
                            break;
                        }
                    }
                }
                Ok(())
            }
            "http" => match ctx.http(&HttpRequest::new(Method::Get, arg)) {
                Ok(response) => Ok(ctx.publish_data(&format!("status {}", response.status))?),
                Err(HttpError::Denied(m)) => Err(Error::denied(m)),
                Err(other) => Err(Error::upstream(other.to_string())),
            },
            "read" => match std::fs::read_to_string(arg) {
                Ok(text) => Ok(ctx.publish_data(text.trim())?),
                Err(e) => Err(Error::denied(format!("read {arg}: {e}"))),
            },
            "write" => match std::fs::write(arg, b"pwned") {
                Ok(()) => Ok(ctx.publish_data("written")?),
                Err(e) => Err(Error::denied(format!("write {arg}: {e}"))),
            },
            "env" => Ok(ctx.publish_data(&std::env::vars().count().to_string())?),
            "echo" => Ok(ctx.publish_data(&format!("{VERSION}:{arg}"))?),
            "frames" => Ok(ctx.publish_data(&hoard_frames())?),
            "tick" => {
                let ms = arg.parse().map_err(|_| Error::invalid_params(format!("tick {arg:?}: not a number")))?;
                ctx.set_tick(std::time::Duration::from_millis(ms));
                Ok(())
            }
            other => Err(Error::unsupported(format!("unknown command {other:?}"))),
        }
    }
}

/// Creates host-owned 1080p frames until the host refuses one (at most 1000 tries); reports
/// how many it held and the refusal.
#[cfg(target_arch = "wasm32")]
fn hoard_frames() -> String {
    use byoc_sdk::__private::bindings::byoc::capability::{frames, types};
    let mut held = Vec::new();
    for _ in 0..1000 {
        match frames::VideoFrame::create(1920, 1080, types::PixelFormat::I420) {
            Ok(frame) => held.push(frame),
            Err(e) => return format!("held {} then {e:?}", held.len()),
        }
    }
    format!("held {} and never refused", held.len())
}

#[cfg(not(target_arch = "wasm32"))]
fn hoard_frames() -> String {
    "frames are a wasm host's".into()
}

byoc_sdk::export!(Hostile);
