//! Video and audio frames, what a plugin asks for, and the limits on both.

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
            (Self::Rgb24, 0) => Some((w * 3, h)),
            (Self::Rgba, 0) => Some((w * 4, h)),
            _ => None,
        }
    }

    /// Total bytes of a `width` × `height` frame.
    pub fn frame_bytes(self, width: u32, height: u32) -> usize {
        (0..self.planes()).filter_map(|p| self.plane_size(width, height, p)).map(|(s, r)| s * r).sum()
    }
}

/// One picture: all planes in one buffer, in plane order, each tightly packed.
#[derive(Clone, PartialEq, Eq)]
pub struct VideoFrame {
    width: u32,
    height: u32,
    format: PixelFormat,
    /// Presentation time in nanoseconds on the stream's clock.
    pub pts_ns: i64,
    /// Whether the decoder marked it a keyframe.
    pub keyframe: bool,
    data: Vec<u8>,
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
        let bytes = check_size(width, height, format)?;
        let mut data = vec![0u8; bytes];
        if format == PixelFormat::I420 {
            let luma = width as usize * height as usize;
            let (y, chroma) = data.split_at_mut(luma);
            y.fill(16);
            chroma.fill(128);
        }
        Ok(Self { width, height, format, pts_ns: 0, keyframe: false, data })
    }

    /// A frame over `data` (all planes, packed, in order); its length must be exactly the
    /// layout's size.
    pub fn from_data(
        width: u32,
        height: u32,
        format: PixelFormat,
        pts_ns: i64,
        data: Vec<u8>,
    ) -> Result<Self, FrameError> {
        let bytes = check_size(width, height, format)?;
        if data.len() != bytes {
            return Err(FrameError::Invalid(format!(
                "a {width}x{height} {format:?} frame has {bytes} bytes, not {}",
                data.len()
            )));
        }
        Ok(Self { width, height, format, pts_ns, keyframe: false, data })
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

    /// All planes, packed, in order.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// All planes, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Takes the buffer.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// Byte range of plane `plane` within [`VideoFrame::data`], and its stride.
    fn plane_range(&self, plane: usize) -> Result<(std::ops::Range<usize>, usize), FrameError> {
        let planes = self.format.planes();
        let mut start = 0;
        for p in 0..planes {
            let (stride, rows) = self.format.plane_size(self.width, self.height, p).unwrap_or((0, 0));
            if p == plane {
                return Ok((start..start + stride * rows, stride));
            }
            start += stride * rows;
        }
        Err(FrameError::Invalid(format!("plane {plane} of a {:?} frame with {planes} planes", self.format)))
    }

    /// Bytes per row of a plane.
    pub fn stride(&self, plane: usize) -> Result<usize, FrameError> {
        Ok(self.plane_range(plane)?.1)
    }

    /// A plane's bytes.
    pub fn plane(&self, plane: usize) -> Result<&[u8], FrameError> {
        let (range, _) = self.plane_range(plane)?;
        Ok(self.data.get(range).unwrap_or_default())
    }

    /// A plane's bytes, mutable.
    pub fn plane_mut(&mut self, plane: usize) -> Result<&mut [u8], FrameError> {
        let (range, _) = self.plane_range(plane)?;
        Ok(self.data.get_mut(range).unwrap_or_default())
    }

    /// Replaces a plane; `bytes` must be exactly the plane's size.
    pub fn set_plane(&mut self, plane: usize, bytes: &[u8]) -> Result<(), FrameError> {
        let target = self.plane_mut(plane)?;
        if target.len() != bytes.len() {
            return Err(FrameError::Invalid(format!("plane {plane} has {} bytes, not {}", target.len(), bytes.len())));
        }
        target.copy_from_slice(bytes);
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
    samples: Vec<f32>,
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
        let mut frame = Self { sample_rate, channels, pts_ns, samples: Vec::new() };
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

    /// Takes the samples.
    pub fn into_samples(self) -> Vec<f32> {
        self.samples
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
        self.samples = samples;
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
