//! The decode → frames → encode pipeline around a frame plugin, one per stream.
//!
//! Input TS bytes go to a decoder thread (demuxed by `byoc-ts`, decoded by libavcodec), which hands
//! frames in the plugin's declared format to the caller ([`FrameSource`]); the caller runs the plugin
//! and sends what it returns ([`FrameSink`]) to an encoder thread (libx264, FFmpeg's AAC), which muxes
//! MPEG-TS again and yields it segment by segment ([`EncodedOutput`]). Both threads are plain OS
//! threads; every queue between them is bounded. A plugin slower than the input makes the decoder drop
//! video frames (counted in [`Stats::dropped_video`]), never block the input or grow memory.
//!
//! Streams the plugin did not ask for pass through untouched: with `needs.audio == None` the input's
//! AAC goes to the muxer as it came (same bytes, same PTS), with `needs.video == None` so does the H.264.

mod audio;
mod clock;
mod convert;
mod decode;
mod encode;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

pub use crate::encoder::EncodeSettings;
use crate::{AudioFrame, FrameError, FrameNeeds, VideoFrame};

/// What [`start`] builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineConfig {
    /// What the plugin declared.
    pub needs: FrameNeeds,
    /// How to encode its output.
    pub encode: EncodeSettings,
    /// Most video frames waiting for the plugin; the decoder drops frames beyond it. At least 1.
    pub queue_frames: usize,
    /// Most bytes of video frames waiting for the plugin, whatever their count; the decoder drops
    /// frames beyond it (one frame is always let through). Bounds a stream's memory when frames
    /// are large, while small frames can ride out a burst (a whole segment posted at once).
    pub queue_bytes: usize,
    /// Never drop: when the queue is full the decoder waits for the plugin (and so slows the
    /// input down). For input that is not live, e.g. files run through `byoc plugin run`.
    pub lossless: bool,
}

/// Why the pipeline could not start or take more input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// The pipeline's threads have ended (it was stopped, or the other side is gone).
    #[error("the frame pipeline has stopped")]
    Closed,
    /// The codec library could not do what was asked (no libx264, a codec that failed to open).
    #[error("codec: {0}")]
    Codec(String),
    /// The configuration cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A frame could not be made.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// What the decoder hands the plugin, in stream order.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A video frame in the declared format and size.
    Video(VideoFrame),
    /// Audio samples at the declared rate and channels.
    Audio(AudioFrame),
    /// The input segment `input_seq` ended here: send [`Processed::SegmentEnd`] back in turn.
    SegmentEnd {
        /// The sequence number given to [`Feeder::segment_start`].
        input_seq: u64,
    },
}

/// What the plugin returns, in order: the frame(s) it kept for each [`Decoded`] frame (none for a
/// dropped one) and every [`Decoded::SegmentEnd`] it received.
#[derive(Debug, Clone, PartialEq)]
pub enum Processed {
    /// A video frame of any size and format; the encoder scales and converts it to the output's.
    Video(VideoFrame),
    /// Audio samples to encode.
    Audio(AudioFrame),
    /// The next input segment's end: the output segment ends here too.
    SegmentEnd,
}

/// The encoded output, in order: each segment is a start, chunks of whole TS packets (the first
/// carries the PAT and PMT; the first video frame is a keyframe), and an end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoded {
    /// A new output segment starts.
    SegmentStart,
    /// Transport stream bytes of the current segment.
    Chunk(Bytes),
    /// The current segment is complete.
    SegmentEnd,
}

/// Counters of one pipeline; read them any time.
#[derive(Debug, Default)]
pub struct Stats {
    /// Video frames out of the decoder.
    pub decoded_video: AtomicU64,
    /// Video frames dropped because the plugin's queue was full.
    pub dropped_video: AtomicU64,
    /// Video frames left out to keep to the plugin's `max_fps`.
    pub skipped_fps: AtomicU64,
    /// Video frames encoded.
    pub encoded_video: AtomicU64,
    /// Audio frames out of the decoder (only when the plugin asked for audio).
    pub decoded_audio: AtomicU64,
    /// Audio frames dropped because the plugin's queue was full.
    pub dropped_audio: AtomicU64,
    /// Audio frames encoded.
    pub encoded_audio: AtomicU64,
    /// Input the decoders refused (broken or unsupported data); decoding carries on.
    pub decode_errors: AtomicU64,
    /// Frames the encoder could not take.
    pub encode_errors: AtomicU64,
    /// The pipeline's threads still running (0 once it has stopped).
    pub threads: AtomicU64,
}

impl Stats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A running pipeline: its four ends, and its counters. Dropping all four ends stops its threads.
#[derive(Debug)]
pub struct Pipeline {
    /// Where input TS goes.
    pub input: Feeder,
    /// Decoded frames for the plugin.
    pub frames: FrameSource,
    /// Where the plugin's frames go.
    pub processed: FrameSink,
    /// The encoded TS.
    pub output: EncodedOutput,
    /// Counters.
    pub stats: Arc<Stats>,
}

/// Input to the decoder thread.
#[derive(Debug)]
pub(crate) enum Input {
    SegmentStart(u64),
    Chunk(Bytes),
    SegmentEnd,
}

/// Feeds input TS to the pipeline (from an async task; each call waits while the decoder is behind).
///
/// When the input ends after a whole segment ([`Feeder::last_segment_end`], or dropping the feeder
/// between segments), the output's last segment takes what the encoders still hold (the AAC
/// encoder keeps its last frames until it is drained) instead of ending them in a small segment
/// of their own.
#[derive(Debug)]
pub struct Feeder {
    tx: mpsc::Sender<Input>,
    /// Segment ends sent.
    ends: AtomicU64,
    /// A segment has started and not ended.
    open: AtomicBool,
    /// Shared with the encoder thread.
    segments: Arc<InputSegments>,
}

impl Feeder {
    /// An input segment starts; `seq` comes back in [`Decoded::SegmentEnd`].
    pub async fn segment_start(&self, seq: u64) -> Result<(), PipelineError> {
        self.open.store(true, Ordering::Relaxed);
        self.send(Input::SegmentStart(seq)).await
    }

    /// Bytes of the current segment, in any chunking.
    pub async fn chunk(&self, bytes: Bytes) -> Result<(), PipelineError> {
        self.send(Input::Chunk(bytes)).await
    }

    /// The current input segment is complete: its last frames are decoded, then a
    /// [`Decoded::SegmentEnd`] follows them.
    pub async fn segment_end(&self) -> Result<(), PipelineError> {
        self.open.store(false, Ordering::Relaxed);
        self.ends.fetch_add(1, Ordering::Relaxed);
        self.send(Input::SegmentEnd).await
    }

    /// The current input segment is complete and the input ends with it: [`Feeder::segment_end`]
    /// then [`Feeder::finish`], with the output's last segment sure to hold the encoders' last
    /// frames (after `finish` alone, only if the encoder had not ended that segment yet).
    pub async fn last_segment_end(self) -> Result<(), PipelineError> {
        self.segments.set(self.ends.load(Ordering::Relaxed) + 1);
        self.segment_end().await
    }

    /// The end of input: the decoders are drained, and the [`FrameSource`] ends after the last frame.
    pub async fn finish(self) {
        drop(self);
    }

    async fn send(&self, input: Input) -> Result<(), PipelineError> {
        self.tx.send(input).await.map_err(|_| PipelineError::Closed)
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        // Between segments the input is whole; a segment cut short gets an output segment of its own.
        if !self.open.load(Ordering::Relaxed) {
            self.segments.set(self.ends.load(Ordering::Relaxed));
        }
    }
}

/// How many segments the whole input has, once the [`Feeder`] knows: the encoder thread leaves
/// the output segment of the last one open until it has drained.
#[derive(Debug)]
pub(crate) struct InputSegments(AtomicU64);

impl InputSegments {
    /// Not known yet.
    const OPEN: u64 = u64::MAX;

    fn set(&self, count: u64) {
        // The first count given stands (`last_segment_end`, then the drop).
        let _ = self.0.compare_exchange(Self::OPEN, count, Ordering::Release, Ordering::Relaxed);
    }

    /// Whether the input's segment `count` (counted from 1) is its last.
    pub(crate) fn is_last(&self, count: u64) -> bool {
        self.0.load(Ordering::Acquire) == count
    }
}

/// Decoded frames for the plugin.
#[derive(Debug)]
pub struct FrameSource {
    rx: mpsc::Receiver<Decoded>,
    queued_video: Arc<AtomicUsize>,
    queued_bytes: Arc<AtomicUsize>,
}

impl FrameSource {
    /// The next frame or segment end; `None` once the input has ended and everything was handed out.
    pub async fn recv(&mut self) -> Option<Decoded> {
        let item = self.rx.recv().await;
        if let Some(Decoded::Video(frame)) = &item {
            self.queued_video.fetch_sub(1, Ordering::Relaxed);
            self.queued_bytes.fetch_sub(frame.byte_len(), Ordering::Relaxed);
        }
        item
    }
}

/// What the encoder thread receives: the plugin's output, and from the decoder what passes the plugin by.
#[derive(Debug)]
pub(crate) enum ToEncoder {
    Processed(Processed),
    /// Which streams the input has (sent before anything of a new stream).
    Streams {
        video: bool,
        audio: Option<byoc_ts::TsAudio>,
    },
    /// The input's frame rate, when the decoder learns it.
    FrameRate(i32, i32),
    /// An access unit that passes untouched, tagged with the input segment (count of segment ends
    /// before it) it belongs to.
    Passthrough {
        segment: u64,
        unit: decode::Unit,
    },
}

/// Takes the plugin's output (from an async task; `send` waits while the encoder is behind).
#[derive(Debug)]
pub struct FrameSink {
    tx: mpsc::Sender<ToEncoder>,
}

impl FrameSink {
    /// The next processed frame, or a segment end.
    pub async fn send(&self, processed: Processed) -> Result<(), PipelineError> {
        self.tx.send(ToEncoder::Processed(processed)).await.map_err(|_| PipelineError::Closed)
    }

    /// No more output from the plugin: once the input's untouched streams are in too, the encoder
    /// drains, ends the last segment, and the [`EncodedOutput`] ends.
    pub fn finish(self) {
        drop(self);
    }
}

/// The encoded TS, segment by segment.
#[derive(Debug)]
pub struct EncodedOutput {
    rx: mpsc::Receiver<Encoded>,
}

impl EncodedOutput {
    /// The next piece of output; `None` once the pipeline has ended.
    pub async fn recv(&mut self) -> Option<Encoded> {
        self.rx.recv().await
    }
}

/// Messages buffered between the encoder thread and [`EncodedOutput`].
const OUTPUT_QUEUE: usize = 64;
/// Input messages buffered ahead of the decoder thread.
const INPUT_QUEUE: usize = 16;
/// Messages buffered ahead of the encoder thread.
const ENCODER_QUEUE: usize = 64;
/// Room in the plugin's queue for audio and segment ends beyond `queue_frames` video frames.
const EXTRA_QUEUE: usize = 256;

/// What the decoder thread is built from.
pub(crate) struct DecoderParts {
    pub(crate) needs: FrameNeeds,
    pub(crate) queue_frames: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) lossless: bool,
    pub(crate) input: mpsc::Receiver<Input>,
    pub(crate) frames: mpsc::Sender<Decoded>,
    pub(crate) queued_video: Arc<AtomicUsize>,
    pub(crate) queued_bytes: Arc<AtomicUsize>,
    pub(crate) encoder: mpsc::Sender<ToEncoder>,
    pub(crate) stats: Arc<Stats>,
}

/// Starts a pipeline's decoder and encoder threads.
pub fn start(config: PipelineConfig) -> Result<Pipeline, PipelineError> {
    if config.queue_frames == 0 {
        return Err(PipelineError::Config("queue_frames must be at least 1".to_owned()));
    }
    ffmpeg_next::init().map_err(|e| PipelineError::Codec(format!("init: {e}")))?;
    // Broken input makes libavcodec talk; the pipeline counts those errors itself.
    ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Fatal);
    if config.needs.video.is_some() {
        encode::check_video_encoder()?;
        decode::check_video_decoder()?;
    }
    if config.needs.audio.is_some() {
        audio::check_codecs()?;
    }

    let stats = Arc::new(Stats::default());
    let queued_video = Arc::new(AtomicUsize::new(0));
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
    let (frames_tx, frames_rx) = mpsc::channel(config.queue_frames.saturating_add(EXTRA_QUEUE));
    let (encoder_tx, encoder_rx) = mpsc::channel(ENCODER_QUEUE);
    let (output_tx, output_rx) = mpsc::channel(OUTPUT_QUEUE);

    let parts = DecoderParts {
        needs: config.needs,
        queue_frames: config.queue_frames,
        queue_bytes: config.queue_bytes,
        lossless: config.lossless,
        input: input_rx,
        frames: frames_tx,
        queued_video: queued_video.clone(),
        queued_bytes: queued_bytes.clone(),
        encoder: encoder_tx.clone(),
        stats: stats.clone(),
    };
    // libav's contexts stay on the thread that made them: each thread builds its own state.
    spawn("byoc-frames-decode", &stats, move || decode::DecoderThread::new(parts).run())?;
    let segments = Arc::new(InputSegments(AtomicU64::new(InputSegments::OPEN)));
    let (needs, settings, encoder_stats, input_segments) =
        (config.needs, config.encode, stats.clone(), segments.clone());
    spawn("byoc-frames-encode", &stats, move || {
        encode::EncoderThread::new(needs, settings, encoder_rx, output_tx, encoder_stats, input_segments).run();
    })?;

    Ok(Pipeline {
        input: Feeder { tx: input_tx, ends: AtomicU64::new(0), open: AtomicBool::new(false), segments },
        frames: FrameSource { rx: frames_rx, queued_video, queued_bytes },
        processed: FrameSink { tx: encoder_tx },
        output: EncodedOutput { rx: output_rx },
        stats,
    })
}

/// Counts a thread in [`Stats::threads`] while it runs.
struct ThreadGuard(Arc<Stats>);

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        self.0.threads.fetch_sub(1, Ordering::Relaxed);
    }
}

fn spawn(name: &str, stats: &Arc<Stats>, body: impl FnOnce() + Send + 'static) -> Result<(), PipelineError> {
    stats.threads.fetch_add(1, Ordering::Relaxed);
    let guard = ThreadGuard(stats.clone());
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _guard = guard;
            body();
        })
        .map(drop)
        .map_err(|e| PipelineError::Codec(format!("cannot start a thread: {e}")))
}
