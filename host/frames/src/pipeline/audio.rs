//! Audio for plugins that asked for it: AAC (in ADTS) → interleaved f32 at the asked rate and channels
//! (swresample), and the plugin's samples → AAC again (FFmpeg's native encoder).

use byoc_ts::AacConfig;
use ffmpeg_next::codec;
use ffmpeg_next::format::Sample;
use ffmpeg_next::format::sample::Type as SampleType;
use ffmpeg_next::frame;
use ffmpeg_next::software::resampling;
use ffmpeg_next::{ChannelLayout, Rational};
use tokio::sync::mpsc::error::TrySendError;

use super::clock::{ns_to_ticks, ticks_to_ns};
use super::{Decoded, DecoderParts, PipelineError, Stats};
use crate::{AudioFrame, AudioNeeds, MAX_AUDIO_CHANNELS};

/// Sampling frequencies an ADTS header can name, by index.
const SAMPLING_FREQUENCIES: [u32; 13] =
    [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
/// Samples per channel in an AAC frame.
const AAC_FRAME: usize = 1024;
/// Encoded bitrate per channel.
const AAC_BITRATE_PER_CHANNEL: usize = 64_000;

/// Fails when this FFmpeg lacks the AAC decoder or encoder.
pub(crate) fn check_codecs() -> Result<(), PipelineError> {
    codec::decoder::find(codec::Id::AAC).ok_or_else(|| PipelineError::Codec("no AAC decoder".to_owned()))?;
    codec::encoder::find(codec::Id::AAC).ok_or_else(|| PipelineError::Codec("no AAC encoder".to_owned()))?;
    Ok(())
}

/// The ADTS frames in `data`, each with its sampling rate; stops at the first thing that is not one.
fn adts_frames(mut data: &[u8]) -> impl Iterator<Item = (&[u8], u32)> {
    std::iter::from_fn(move || {
        let &[0xff, b1, b2, b3, b4, b5, ..] = data else { return None };
        if b1 & 0xf0 != 0xf0 {
            return None;
        }
        let rate = *SAMPLING_FREQUENCIES.get(usize::from((b2 >> 2) & 0x0f))?;
        let len = usize::from(b3 & 0x03) << 11 | usize::from(b4) << 3 | usize::from(b5 >> 5);
        if len < 7 {
            return None;
        }
        let frame = data.get(..len)?;
        data = data.get(len..).unwrap_or_default();
        Some((frame, rate))
    })
}

/// AAC → f32 frames for the plugin.
pub(crate) struct AudioDecoder {
    needs: AudioNeeds,
    decoder: Option<codec::decoder::Audio>,
    resampler: Option<((Sample, u64, u32), resampling::Context)>,
}

impl AudioDecoder {
    pub(crate) fn new(needs: AudioNeeds) -> Self {
        Self { needs, decoder: None, resampler: None }
    }

    fn open() -> Result<codec::decoder::Audio, PipelineError> {
        let codec =
            codec::decoder::find(codec::Id::AAC).ok_or_else(|| PipelineError::Codec("no AAC decoder".into()))?;
        let mut context = codec::context::Context::new_with_codec(codec);
        context.set_time_base(Rational::new(1, 90_000));
        context.decoder().audio().map_err(|e| PipelineError::Codec(format!("open the AAC decoder: {e}")))
    }

    /// Decodes one PES payload of ADTS frames starting at `pts` (unwrapped 90 kHz ticks).
    pub(crate) fn decode(&mut self, parts: &DecoderParts, pts: i64, data: &[u8]) -> Result<(), PipelineError> {
        if self.decoder.is_none() {
            match Self::open() {
                Ok(decoder) => self.decoder = Some(decoder),
                Err(e) => {
                    Stats::bump(&parts.stats.decode_errors);
                    tracing::warn!(error = %e, "cannot open the AAC decoder");
                    return Ok(());
                }
            }
        }
        let mut offset = 0i64;
        for (adts, rate) in adts_frames(data) {
            let mut packet = ffmpeg_next::Packet::copy(adts);
            packet.set_pts(Some(pts + offset * 90_000 / i64::from(rate)));
            offset += AAC_FRAME as i64;
            if let Some(decoder) = &mut self.decoder
                && let Err(e) = decoder.send_packet(&packet)
            {
                Stats::bump(&parts.stats.decode_errors);
                tracing::debug!(error = %e, "AAC decoder refused a frame");
            }
            self.receive(parts)?;
        }
        Ok(())
    }

    /// Takes what the decoder holds; it starts afresh after.
    pub(crate) fn drain(&mut self, parts: &DecoderParts) -> Result<(), PipelineError> {
        if let Some(decoder) = &mut self.decoder
            && decoder.send_eof().is_ok()
        {
            self.receive(parts)?;
        }
        if let Some(decoder) = &mut self.decoder {
            decoder.flush();
        }
        Ok(())
    }

    fn receive(&mut self, parts: &DecoderParts) -> Result<(), PipelineError> {
        let mut decoded = frame::Audio::empty();
        while let Some(decoder) = &mut self.decoder
            && decoder.receive_frame(&mut decoded).is_ok()
        {
            Stats::bump(&parts.stats.decoded_audio);
            let frame = match self.convert(&decoded) {
                Ok(Some(frame)) => frame,
                Ok(None) => continue,
                Err(e) => {
                    Stats::bump(&parts.stats.decode_errors);
                    tracing::debug!(error = %e, "cannot convert decoded audio");
                    continue;
                }
            };
            match parts.frames.try_send(Decoded::Audio(frame)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => Stats::bump(&parts.stats.dropped_audio),
                Err(TrySendError::Closed(_)) => return Err(PipelineError::Closed),
            }
        }
        Ok(())
    }

    /// A decoded frame as interleaved f32 at the asked rate and channels.
    fn convert(&mut self, decoded: &frame::Audio) -> Result<Option<AudioFrame>, PipelineError> {
        let in_channels = decoded.channels().clamp(1, u16::from(MAX_AUDIO_CHANNELS));
        let mut in_layout = decoded.channel_layout();
        if in_layout.channels() != i32::from(in_channels) {
            in_layout = ChannelLayout::default(i32::from(in_channels));
        }
        let in_rate = decoded.rate();
        let out_rate = if self.needs.sample_rate == 0 { in_rate } else { self.needs.sample_rate };
        let out_channels = if self.needs.channels == 0 { in_channels } else { u16::from(self.needs.channels) };
        let out_channels = out_channels.clamp(1, u16::from(MAX_AUDIO_CHANNELS));
        let out_layout = ChannelLayout::default(i32::from(out_channels));
        let out_format = Sample::F32(SampleType::Packed);
        let key = (decoded.format(), in_layout.bits(), in_rate);
        if !matches!(&self.resampler, Some((k, _)) if *k == key) {
            let context =
                resampling::Context::get(decoded.format(), in_layout, in_rate, out_format, out_layout, out_rate)
                    .map_err(|e| PipelineError::Codec(format!("swresample: {e}")))?;
            self.resampler = Some((key, context));
        }
        let Some((_, resampler)) = &mut self.resampler else { return Ok(None) };
        let room = decoded.samples() * out_rate as usize / in_rate.max(1) as usize + 256;
        let mut out = frame::Audio::new(out_format, room, out_layout);
        out.set_channels(out_channels);
        resampler.run(decoded, &mut out).map_err(|e| PipelineError::Codec(format!("swresample: {e}")))?;
        let count = out.samples() * usize::from(out_channels);
        if count == 0 || out.planes() == 0 {
            return Ok(None);
        }
        let bytes = out.data(0).get(..count * 4).unwrap_or_default();
        let samples: Vec<f32> =
            bytes.chunks_exact(4).filter_map(|b| b.try_into().ok().map(f32::from_ne_bytes)).collect();
        let pts = decoded.timestamp().or(decoded.pts()).unwrap_or(0);
        let channels = u8::try_from(out_channels).unwrap_or(MAX_AUDIO_CHANNELS);
        Ok(Some(AudioFrame::new(out_rate, channels, ticks_to_ns(pts), samples)?))
    }
}

/// One encoded AAC frame.
pub(crate) struct AacPacket {
    /// Unwrapped 90 kHz ticks.
    pub(crate) pts: i64,
    pub(crate) config: AacConfig,
    pub(crate) data: Vec<u8>,
}

/// The plugin's samples → AAC, in 1024-sample frames.
#[derive(Default)]
pub(crate) struct AudioEncoder {
    open: Option<OpenEncoder>,
}

struct OpenEncoder {
    encoder: codec::encoder::audio::Encoder,
    rate: u32,
    channels: u8,
    config: AacConfig,
    /// Interleaved samples not yet encoded.
    fifo: Vec<f32>,
    /// Time of the first sample in `fifo`, in samples (1/rate s).
    fifo_pts: i64,
}

impl OpenEncoder {
    fn open(rate: u32, channels: u8) -> Result<Self, PipelineError> {
        let index = SAMPLING_FREQUENCIES
            .iter()
            .position(|&r| r == rate)
            .and_then(|i| u8::try_from(i).ok())
            .ok_or_else(|| PipelineError::Codec(format!("AAC in TS cannot carry {rate} Hz")))?;
        let codec =
            codec::encoder::find(codec::Id::AAC).ok_or_else(|| PipelineError::Codec("no AAC encoder".into()))?;
        let mut encoder = codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(|e| PipelineError::Codec(format!("AAC encoder: {e}")))?;
        encoder.set_rate(i32::try_from(rate).unwrap_or(48_000));
        encoder.set_channel_layout(ChannelLayout::default(i32::from(channels)));
        encoder.set_channels(i32::from(channels));
        encoder.set_format(Sample::F32(SampleType::Planar));
        encoder.set_bit_rate(AAC_BITRATE_PER_CHANNEL * usize::from(channels));
        encoder.set_time_base(Rational::new(1, i32::try_from(rate).unwrap_or(48_000)));
        let encoder =
            encoder.open().map_err(|e| PipelineError::Codec(format!("open AAC {rate} Hz ×{channels}: {e}")))?;
        let config = AacConfig { object_type: 2, sampling_index: index, channels, frame_samples: AAC_FRAME as u16 };
        Ok(Self { encoder, rate, channels, config, fifo: Vec::new(), fifo_pts: 0 })
    }

    /// Encodes the whole frames in the FIFO (and, with `pad`, the rest filled with silence).
    fn encode_fifo(&mut self, pad: bool) -> Result<Vec<AacPacket>, PipelineError> {
        let channels = usize::from(self.channels);
        let frame_len = AAC_FRAME * channels;
        if pad && !self.fifo.is_empty() {
            let padded = self.fifo.len().div_ceil(frame_len) * frame_len;
            self.fifo.resize(padded, 0.0);
        }
        let mut packets = Vec::new();
        while self.fifo.len() >= frame_len {
            let mut frame = frame::Audio::new(
                Sample::F32(SampleType::Planar),
                AAC_FRAME,
                ChannelLayout::default(i32::from(self.channels)),
            );
            frame.set_channels(u16::from(self.channels));
            frame.set_rate(self.rate);
            for c in 0..channels.min(frame.planes()) {
                let plane = frame.plane_mut::<f32>(c);
                for (i, sample) in plane.iter_mut().enumerate().take(AAC_FRAME) {
                    *sample = self.fifo.get(i * channels + c).copied().unwrap_or(0.0);
                }
            }
            frame.set_pts(Some(self.fifo_pts));
            self.fifo.drain(..frame_len);
            self.fifo_pts += AAC_FRAME as i64;
            self.encoder.send_frame(&frame).map_err(|e| PipelineError::Codec(format!("AAC: {e}")))?;
            self.receive(&mut packets);
        }
        Ok(packets)
    }

    fn receive(&mut self, packets: &mut Vec<AacPacket>) {
        let mut packet = ffmpeg_next::Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            let pts = packet.pts().unwrap_or(self.fifo_pts);
            packets.push(AacPacket {
                pts: pts * 90_000 / i64::from(self.rate),
                config: self.config,
                data: packet.data().unwrap_or_default().to_vec(),
            });
        }
    }
}

impl AudioEncoder {
    /// Takes the plugin's samples; returns the AAC frames completed.
    pub(crate) fn encode(&mut self, frame: &AudioFrame) -> Result<Vec<AacPacket>, PipelineError> {
        let (rate, channels) = (frame.sample_rate(), frame.channels());
        if self.open.is_none() {
            self.open = Some(OpenEncoder::open(rate, channels)?);
        }
        let Some(open) = &mut self.open else { return Ok(Vec::new()) };
        if (open.rate, open.channels) != (rate, channels) {
            return Err(PipelineError::Codec(format!(
                "audio changed from {} Hz ×{} to {rate} Hz ×{channels} mid-stream",
                open.rate, open.channels
            )));
        }
        let start = ns_to_ticks(frame.pts_ns) * i64::from(rate) / 90_000;
        let expected = open.fifo_pts + (open.fifo.len() / usize::from(channels)) as i64;
        // Follow the plugin's clock when it jumps (a gap, or the first frame); else keep counting.
        if open.fifo.is_empty() || (start - expected).abs() > i64::from(rate) / 10 {
            open.fifo_pts = start - (open.fifo.len() / usize::from(channels)) as i64;
        }
        open.fifo.extend_from_slice(frame.samples());
        open.encode_fifo(false)
    }

    /// Encodes what is left and drains the encoder.
    pub(crate) fn flush(&mut self) -> Result<Vec<AacPacket>, PipelineError> {
        let Some(open) = &mut self.open else { return Ok(Vec::new()) };
        let mut packets = open.encode_fifo(true)?;
        if open.encoder.send_eof().is_ok() {
            open.receive(&mut packets);
        }
        Ok(packets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adts_frames_split_and_stop_at_garbage() {
        // Two 9-byte frames at 44.1 kHz (index 4), then junk.
        let header = |len: usize| {
            [0xff, 0xf1, 0x50, 0x80 | (len >> 11) as u8, (len >> 3) as u8, ((len & 7) << 5) as u8 | 0x1f, 0xfc]
        };
        let mut data = Vec::new();
        for _ in 0..2 {
            data.extend_from_slice(&header(9));
            data.extend_from_slice(&[1, 2]);
        }
        data.extend_from_slice(&[0xff, 0x00, 1]);
        let frames: Vec<_> = adts_frames(&data).collect();
        assert_eq!(frames.len(), 2);
        assert!(frames.iter().all(|(f, rate)| f.len() == 9 && *rate == 44_100));
        assert_eq!(adts_frames(&[0xff, 0xf1, 0x50, 0x80, 0, 0]).count(), 0, "a length under the header's");
        assert_eq!(adts_frames(&header(100)).count(), 0, "truncated");
    }
}
