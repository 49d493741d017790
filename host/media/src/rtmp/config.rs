//! The RTMP server's settings: its limits and deadlines.

use std::path::PathBuf;
use std::time::Duration;

use crate::SegmenterConfig;

/// Settings of an [`RtmpServer`](super::RtmpServer).
#[derive(Debug, Clone)]
pub struct RtmpConfig {
    /// The ffmpeg binary used to remux MPEG-TS into FLV for play (ingest remuxes in process).
    pub ffmpeg: PathBuf,
    /// How ingest is cut into segments.
    pub segmenter: SegmenterConfig,
    /// Time allowed for the RTMP handshake.
    pub handshake_timeout: Duration,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Time allowed for the authorizer to decide.
    pub authorize_timeout: Duration,
    /// After the publisher is gone, how long the last segment may take to go into the consumer's channel;
    /// after a played stream ended, how long its ffmpeg may take to flush.
    pub flush_timeout: Duration,
    /// How long a publish waits for room in a full consumer channel (its connection is not read meanwhile,
    /// which slows the publisher down) before the rest of the segment is dropped; while the consumer stays
    /// full, later segments are dropped without waiting.
    pub consumer_wait: Duration,
    /// Time allowed from accepting a connection to its publish or play being accepted (handshake
    /// included): a connection that has not got that far by then is closed, however much it sends.
    pub publish_deadline: Duration,
    /// Average bytes per second a publisher must send over each
    /// [`publish_rate_window`](Self::publish_rate_window) after its publish is accepted; one that sends
    /// less is disconnected (a slot held by a trickle of bytes would reset the idle timer for ever).
    /// 0 turns the check off.
    pub min_publish_rate: u64,
    /// The window over which [`min_publish_rate`](Self::min_publish_rate) is averaged.
    pub publish_rate_window: Duration,
    /// Connections served at once; more are refused.
    pub max_connections: usize,
    /// Connections served at once from one IP address (IPv6: from one /64); more from it are refused.
    pub max_connections_per_ip: usize,
    /// Bytes a connection may send before its publish or play is accepted.
    pub max_bytes_before_publish: usize,
    /// FLV tags queued for one viewer; when its queue is full, the viewer skips to the next keyframe.
    pub play_queue_tags: usize,
    /// Bytes of the current GOP kept for viewers joining late; beyond, they wait for the next keyframe.
    pub play_gop_cache_bytes: usize,
    /// How much of a played stream ffmpeg analyses before its first output (`-analyzeduration`); it
    /// delays the first viewer of a stream by about this much media time.
    pub play_analyze_duration: Duration,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        RtmpConfig {
            ffmpeg: PathBuf::from("ffmpeg"),
            segmenter: SegmenterConfig::default(),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            authorize_timeout: Duration::from_secs(10),
            flush_timeout: Duration::from_secs(10),
            consumer_wait: Duration::from_secs(2),
            publish_deadline: Duration::from_secs(10),
            min_publish_rate: 512,
            publish_rate_window: Duration::from_secs(20),
            max_connections: 256,
            max_connections_per_ip: 16,
            max_bytes_before_publish: 64 << 10,
            play_queue_tags: 512,
            play_gop_cache_bytes: 16 << 20,
            play_analyze_duration: Duration::from_millis(500),
        }
    }
}
