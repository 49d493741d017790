//! Video and audio frames, what a plugin asks for, and the limits on both.

use std::sync::Arc;

/// Largest width or height of a video frame, in pixels.
pub const MAX_VIDEO_SIDE: u32 = 8192;
/// Largest video frame, in bytes of all its planes.
pub const MAX_VIDEO_BYTES: usize = 64 * 1024 * 1024;
/// Most channels an audio frame may have.
pub const MAX_AUDIO_CHANNELS: u8 = 8;
/// Most samples per channel in one audio frame: one second at 192 kHz.
pub const MAX_AUDIO_SAMPLES_PER_CHANNEL: usize = 192_000;

/// Why a frame could not be made or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// An argument does not fit the frame (a plane index, a length).
    #[error("{0}")]
    Invalid(String),
    /// The frame would exceed a limit.
    #[error("{0}")]
    TooLarge(String),
}

/// The memory layout of a [`VideoFrame`]; every sample is one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// Planar YUV 4:2:0: Y (width × height), then U and V (each ⌈w/2⌉ × ⌈h/2⌉).
    I420,
    /// Packed R, G, B.
    Rgb24,
    /// Packed R, G, B, A.
    Rgba,
}

impl PixelFormat {
    /// The number of planes.
    pub fn planes(self) -> usize {
        match self {
            Self::I420 => 3,
            Self::Rgb24 | Self::Rgba => 1,
        }
    }

    /// (bytes per row, rows) of plane `plane` of a `width` × `height` frame, or `None` if the
    /// layout has no such plane. Rows are tightly packed: the stride is the row's width.
    pub fn plane_size(self, width: u32, height: u32, plane: usize) -> Option<(usize, usize)> {
        let (w, h) = (width as usize, height as usize);
        match (self, plane) {
            (Self::I420, 0) => Some((w, h)),
            (Self::I420, 1 | 2) => Some((w.div_ceil(2), h.div_ceil(2))),
            (Self::Rgb24, 0) => Some((w.saturating_mul(3), h)),
            (Self::Rgba, 0) => Some((w.saturating_mul(4), h)),
            _ => None,
        }
    }

    /// Total bytes of a `width` × `height` frame (`usize::MAX` if that does not fit: any size a
    /// plugin asks for must come out as a refusal, never an overflow).
    pub fn frame_bytes(self, width: u32, height: u32) -> usize {
        (0..self.planes())
            .filter_map(|p| self.plane_size(width, height, p))
            .fold(0usize, |sum, (s, r)| sum.saturating_add(s.saturating_mul(r)))
    }
}

/// One picture: each plane in its own buffer, tightly packed (the stride is the row width).
///
/// Planes are separate so that a plugin's `set-plane` moves the bytes it wrote into place, and
/// shared (`Arc`) so that `plane` lowers a plane into the plugin's memory straight from the
/// frame: each crossing is one copy. Writing a plane copies it first only while a reader still
/// holds it, which the runtime never does past a call.
#[derive(Clone, PartialEq, Eq)]
pub struct VideoFrame {
    width: u32,
    height: u32,
    format: PixelFormat,
    /// Presentation time in nanoseconds on the stream's clock.
    pub pts_ns: i64,
    /// Whether the decoder marked it a keyframe.
    pub keyframe: bool,
    /// One buffer per plane of `format`, each exactly its plane's size.
    planes: Vec<Arc<Vec<u8>>>,
}

impl std::fmt::Debug for VideoFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoFrame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("format", &self.format)
            .field("pts_ns", &self.pts_ns)
            .field("keyframe", &self.keyframe)
            .finish()
    }
}

/// Checks a frame size against the limits.
fn check_size(width: u32, height: u32, format: PixelFormat) -> Result<usize, FrameError> {
    if width == 0 || height == 0 {
        return Err(FrameError::Invalid(format!("a frame must have pixels, not {width}x{height}")));
    }
    if width > MAX_VIDEO_SIDE || height > MAX_VIDEO_SIDE {
        return Err(FrameError::TooLarge(format!("{width}x{height} is over {MAX_VIDEO_SIDE} pixels a side")));
    }
    let bytes = format.frame_bytes(width, height);
    if bytes > MAX_VIDEO_BYTES {
        return Err(FrameError::TooLarge(format!("{width}x{height} {format:?} is over {MAX_VIDEO_BYTES} bytes")));
    }
    Ok(bytes)
}

impl VideoFrame {
    /// A black frame (Y 16, U/V 128 for I420; zeros for RGB), pts 0, not a keyframe.
    pub fn black(width: u32, height: u32, format: PixelFormat) -> Result<Self, FrameError> {
        check_size(width, height, format)?;
        let planes = (0..format.planes())
            .map(|p| {
                let (stride, rows) = format.plane_size(width, height, p).unwrap_or((0, 0));
                let fill = match (format, p) {
                    (PixelFormat::I420, 0) => 16,
                    (PixelFormat::I420, _) => 128,
                    _ => 0,
                };
                vec![fill; stride * rows]
            })
            .collect();
        Self::from_planes(width, height, format, 0, planes)
    }

    /// A frame over its planes, in order; each must be exactly its plane's size.
    pub fn from_planes(
        width: u32,
        height: u32,
        format: PixelFormat,
        pts_ns: i64,
        planes: Vec<Vec<u8>>,
    ) -> Result<Self, FrameError> {
        check_size(width, height, format)?;
        if planes.len() != format.planes() {
            return Err(FrameError::Invalid(format!(
                "a {format:?} frame has {} planes, not {}",
                format.planes(),
                planes.len()
            )));
        }
        for (p, bytes) in planes.iter().enumerate() {
            let (stride, rows) = format.plane_size(width, height, p).unwrap_or((0, 0));
            if bytes.len() != stride * rows {
                return Err(FrameError::Invalid(format!(
                    "plane {p} of a {width}x{height} {format:?} frame has {} bytes, not {}",
                    stride * rows,
                    bytes.len()
                )));
            }
        }
        let planes = planes.into_iter().map(Arc::new).collect();
        Ok(Self { width, height, format, pts_ns, keyframe: false, planes })
    }

    /// A frame over `data` (all planes, packed, in order); its length must be exactly the
    /// layout's size. The first plane keeps `data`'s buffer; the others are copied out of it.
    pub fn from_data(
        width: u32,
        height: u32,
        format: PixelFormat,
        pts_ns: i64,
        mut data: Vec<u8>,
    ) -> Result<Self, FrameError> {
        let bytes = check_size(width, height, format)?;
        if data.len() != bytes {
            return Err(FrameError::Invalid(format!(
                "a {width}x{height} {format:?} frame has {bytes} bytes, not {}",
                data.len()
            )));
        }
        let mut planes = Vec::with_capacity(format.planes());
        for p in (1..format.planes()).rev() {
            let (stride, rows) = format.plane_size(width, height, p).unwrap_or((0, 0));
            planes.push(data.split_off(data.len() - stride * rows));
        }
        planes.push(data);
        planes.reverse();
        Self::from_planes(width, height, format, pts_ns, planes)
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The layout.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// Bytes of all planes.
    pub fn byte_len(&self) -> usize {
        self.planes.iter().map(|p| p.len()).sum()
    }

    /// The planes, in order.
    pub fn planes(&self) -> impl Iterator<Item = &[u8]> {
        self.planes.iter().map(|p| p.as_slice())
    }

    fn no_plane(&self, plane: usize) -> FrameError {
        FrameError::Invalid(format!("plane {plane} of a {:?} frame with {} planes", self.format, self.format.planes()))
    }

    /// Bytes per row of a plane.
    pub fn stride(&self, plane: usize) -> Result<usize, FrameError> {
        self.format
            .plane_size(self.width, self.height, plane)
            .map(|(stride, _)| stride)
            .ok_or_else(|| self.no_plane(plane))
    }

    /// A plane's bytes.
    pub fn plane(&self, plane: usize) -> Result<&[u8], FrameError> {
        self.planes.get(plane).map(|p| p.as_slice()).ok_or_else(|| self.no_plane(plane))
    }

    /// A plane's buffer, shared: what the runtime hands to a plugin without copying it first.
    pub fn plane_shared(&self, plane: usize) -> Result<Arc<Vec<u8>>, FrameError> {
        self.planes.get(plane).cloned().ok_or_else(|| self.no_plane(plane))
    }

    /// A plane's bytes, mutable (copied first only if the plane is shared at the moment).
    pub fn plane_mut(&mut self, plane: usize) -> Result<&mut [u8], FrameError> {
        if plane >= self.planes.len() {
            return Err(self.no_plane(plane));
        }
        Ok(self.planes.get_mut(plane).map(|p| Arc::make_mut(p).as_mut_slice()).unwrap_or_default())
    }

    /// Replaces a plane with `bytes`, moved into place; it must be exactly the plane's size.
    pub fn set_plane(&mut self, plane: usize, bytes: Vec<u8>) -> Result<(), FrameError> {
        let size = self.plane(plane)?.len();
        if size != bytes.len() {
            return Err(FrameError::Invalid(format!("plane {plane} has {size} bytes, not {}", bytes.len())));
        }
        if let Some(target) = self.planes.get_mut(plane) {
            *target = Arc::new(bytes);
        }
        Ok(())
    }
}

/// A run of interleaved f32 samples.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioFrame {
    sample_rate: u32,
    channels: u8,
    /// Presentation time of the first sample, in nanoseconds on the stream's clock.
    pub pts_ns: i64,
    /// Shared, so the wasm host can lower them into a plugin's memory without copying them first.
    samples: Arc<Vec<f32>>,
}

impl AudioFrame {
    /// An audio frame; `samples` is interleaved, a multiple of `channels`, at most one second.
    pub fn new(sample_rate: u32, channels: u8, pts_ns: i64, samples: Vec<f32>) -> Result<Self, FrameError> {
        if sample_rate == 0 || channels == 0 {
            return Err(FrameError::Invalid(format!("{sample_rate} Hz, {channels} channels")));
        }
        if channels > MAX_AUDIO_CHANNELS {
            return Err(FrameError::TooLarge(format!("{channels} channels (at most {MAX_AUDIO_CHANNELS})")));
        }
        let mut frame = Self { sample_rate, channels, pts_ns, samples: Arc::default() };
        frame.set_samples(samples)?;
        Ok(frame)
    }

    /// Samples per second per channel.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Channel count.
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// The samples, interleaved.
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    /// The samples, interleaved, as a shared buffer (no copy).
    pub fn samples_shared(&self) -> Arc<Vec<f32>> {
        self.samples.clone()
    }

    /// Takes the samples (copied only if they are shared at the moment).
    pub fn into_samples(self) -> Vec<f32> {
        Arc::unwrap_or_clone(self.samples)
    }

    /// Replaces the samples (interleaved, a multiple of the channel count, at most one
    /// second or [`MAX_AUDIO_SAMPLES_PER_CHANNEL`] per channel).
    pub fn set_samples(&mut self, samples: Vec<f32>) -> Result<(), FrameError> {
        let channels = usize::from(self.channels);
        if !samples.len().is_multiple_of(channels) {
            return Err(FrameError::Invalid(format!(
                "{} samples are not a multiple of {channels} channels",
                samples.len()
            )));
        }
        let per_channel = samples.len() / channels;
        let limit = (self.sample_rate as usize).min(MAX_AUDIO_SAMPLES_PER_CHANNEL);
        if per_channel > limit {
            return Err(FrameError::TooLarge(format!("{per_channel} samples per channel (at most {limit})")));
        }
        self.samples = Arc::new(samples);
        Ok(())
    }
}

/// What a frame plugin wants of the decoded video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VideoNeeds {
    /// The frames' layout.
    pub format: PixelFormat,
    /// Largest width; larger input is scaled down keeping its aspect ratio. 0: no limit.
    pub max_width: u32,
    /// Largest height, as `max_width`.
    pub max_height: u32,
    /// Highest frame rate; above it frames are dropped evenly. 0: no limit.
    pub max_fps: u32,
}

/// What a frame plugin wants of the decoded audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AudioNeeds {
    /// Sample rate; 0 keeps the input's.
    pub sample_rate: u32,
    /// Channels; 0 keeps the input's.
    pub channels: u8,
}

/// The frame-level processing a plugin declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct FrameNeeds {
    /// Video frames, or `None` to pass the input's video through untouched.
    pub video: Option<VideoNeeds>,
    /// Audio frames, or `None` to pass the input's audio through untouched.
    pub audio: Option<AudioNeeds>,
}

/// What is known of a stream when its frame session opens; 0 where unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamInfo {
    /// Width of the frames the plugin gets.
    pub width: u32,
    /// Height of the frames the plugin gets.
    pub height: u32,
    /// Frame rate numerator.
    pub fps_num: u32,
    /// Frame rate denominator (1 when unknown).
    pub fps_den: u32,
    /// Audio sample rate.
    pub sample_rate: u32,
    /// Audio channels.
    pub channels: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `host_calls` fuzz target: `video-frame.create(u32::MAX, u32::MAX, rgba)` from a
    /// plugin overflowed the size computation (a panic in debug builds, a wrapped size in release).
    #[test]
    fn any_size_a_plugin_asks_for_is_a_refusal_not_an_overflow() {
        for format in [PixelFormat::I420, PixelFormat::Rgb24, PixelFormat::Rgba] {
            assert_eq!(format.frame_bytes(u32::MAX, u32::MAX), usize::MAX, "{format:?}");
            assert!(matches!(VideoFrame::black(u32::MAX, u32::MAX, format), Err(FrameError::TooLarge(_))));
            assert!(matches!(VideoFrame::black(u32::MAX, 1, format), Err(FrameError::TooLarge(_))));
        }
        assert_eq!(PixelFormat::I420.frame_bytes(4, 2), 8 + 2 + 2);
    }
}
