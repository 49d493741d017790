//! Audio re-encoded to Opus for WebRTC viewers: WHEP carries H.264 and Opus, but an RTMP publisher
//! (through a plugin that passes audio on) sends AAC. An `ffmpeg` child takes the pieces, copies the
//! video, encodes the audio to Opus (48 kHz stereo), and its MPEG-TS is cut into pieces again at the
//! same keyframes.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::ffmpeg::Ffmpeg;
use byoc_ts::{PACKET_SIZE, Packet};

use crate::ts::{is_opus, is_video, pat_pmt_pids, pmt_streams};
use crate::{MediaError, Piece, SegmenterConfig, StartGate, TsSegmenter};

/// Whether the audio announced at the start of a segment (its PAT and PMT) is something WebRTC
/// viewers cannot be sent as is: `Some(true)` for audio other than Opus, `Some(false)` for Opus or no
/// audio, `None` when the bytes hold no PMT.
pub fn audio_needs_opus(segment_start: &[u8]) -> Option<bool> {
    let mut pmt_pids = Vec::new();
    for pkt in segment_start.chunks_exact(PACKET_SIZE) {
        let Ok(packet) = Packet::parse(pkt) else { continue };
        let (true, Some(payload)) = (packet.payload_unit_start, packet.payload) else { continue };
        let pid = packet.pid.value();
        if pid == 0 {
            if let Some(pids) = pat_pmt_pids(payload) {
                pmt_pids = pids;
            }
        } else if pmt_pids.contains(&pid)
            && let Some(streams) = pmt_streams(payload)
        {
            return Some(streams.iter().any(|s| !is_video(s) && !is_opus(s)));
        }
    }
    None
}

/// A running audio transcode (see the module). Dropping it kills ffmpeg.
pub struct OpusTranscode {
    task: JoinHandle<()>,
}

impl Drop for OpusTranscode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl OpusTranscode {
    /// Starts `ffmpeg`: pieces from `input` (from its first segment start on) go in; pieces with the
    /// same video and Opus audio come out on `output`. Ends when `input` closes (after ffmpeg flushed)
    /// or `output` does.
    pub fn spawn(
        ffmpeg: PathBuf,
        mut input: mpsc::Receiver<Piece>,
        output: mpsc::Sender<Piece>,
    ) -> Result<OpusTranscode, MediaError> {
        let args = [
            "-fflags",
            "nobuffer",
            "-analyzeduration",
            "500000",
            "-f",
            "mpegts",
            "-i",
            "pipe:0",
            "-map",
            "0:v?",
            "-map",
            "0:a?",
            "-c:v",
            "copy",
            "-c:a",
            "libopus",
            "-ar",
            "48000",
            "-ac",
            "2",
            "-b:a",
            "96k",
            "-flush_packets",
            "1",
            "-muxdelay",
            "0",
            "-f",
            "mpegts",
            "pipe:1",
        ];
        let mut ff = Ffmpeg::spawn(&ffmpeg, &args, true, "opus-transcode")?;
        let mut stdin = ff.stdin.take().ok_or_else(|| MediaError::Ffmpeg("no stdin".into()))?;
        let mut stdout = ff.stdout.take().ok_or_else(|| MediaError::Ffmpeg("no stdout".into()))?;
        let task = tokio::spawn(async move {
            let writer = tokio::spawn(async move {
                let mut gate = StartGate::default();
                while let Some(piece) = input.recv().await {
                    if gate.pass(&piece) && stdin.write_all(piece.bytes()).await.is_err() {
                        return;
                    }
                }
                // Dropping stdin lets ffmpeg flush and exit.
            });
            // Every keyframe starts a segment: the cuts stay where the input's were.
            let mut segmenter =
                TsSegmenter::new(SegmenterConfig { min_duration: Duration::ZERO, ..Default::default() });
            let mut buf = vec![0u8; 64 << 10];
            let mut delivered = true;
            while let Ok(n) = stdout.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                for piece in segmenter.push_pieces(buf.get(..n).unwrap_or_default()) {
                    delivered &= output.send(piece).await.is_ok();
                }
                if !delivered {
                    break;
                }
            }
            if delivered {
                for piece in segmenter.finish_pieces() {
                    let _ = output.send(piece).await;
                }
            }
            writer.abort();
            let (status, tail) = ff.stop(Duration::from_secs(2)).await;
            tracing::debug!(status = status.map(tracing::field::display), %tail, "opus transcode ended");
        });
        Ok(OpusTranscode { task })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::{TsAudio, TsMuxer};

    #[test]
    fn tells_opus_from_other_audio() {
        let start = |mut mux: TsMuxer| {
            let mut out = Vec::new();
            mux.psi(&mut out);
            mux.video(90_000, 90_000, true, &[0, 0, 0, 1, 0x65, 0x88], &mut out);
            out
        };
        assert_eq!(audio_needs_opus(&start(TsMuxer::new(Some(2)))), Some(false));
        assert_eq!(audio_needs_opus(&start(TsMuxer::with_streams(true, Some(TsAudio::Aac)))), Some(true));
        assert_eq!(audio_needs_opus(&start(TsMuxer::new(None))), Some(false));
        assert_eq!(audio_needs_opus(&[0x47; 10]), None);
        assert_eq!(audio_needs_opus(&[]), None);
    }
}
