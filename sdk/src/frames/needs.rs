//! What a frame plugin asks of the host ([`FrameNeeds`]) and what it learns of the stream
//! at its start ([`StreamInfo`]).

use crate::frames::PixelFormat;

/// What a frame plugin wants of the decoded video (`video-needs` in the WIT).
///
/// ```
/// use byoc_sdk::frames::{PixelFormat, VideoNeeds};
/// let needs = VideoNeeds::new(PixelFormat::I420).max_size(1280, 720).max_fps(15);
/// assert_eq!((needs.max_width, needs.max_height, needs.max_fps), (1280, 720, 15));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoNeeds {
    /// The layout of the frames the plugin receives.
    pub pixel_format: PixelFormat,
    /// Largest width accepted; the host scales larger input down keeping the aspect ratio.
    /// 0: no limit.
    pub max_width: u32,
    /// Largest height accepted; 0: no limit.
    pub max_height: u32,
    /// Highest frame rate accepted; above it the host drops frames evenly. 0: no limit.
    pub max_fps: u32,
}

impl VideoNeeds {
    /// Frames in `pixel_format`, of any size and rate.
    pub fn new(pixel_format: PixelFormat) -> Self {
        Self { pixel_format, max_width: 0, max_height: 0, max_fps: 0 }
    }

    /// Caps the frame size (0: no limit on that side).
    pub fn max_size(mut self, width: u32, height: u32) -> Self {
        self.max_width = width;
        self.max_height = height;
        self
    }

    /// Caps the frame rate (0: no limit).
    pub fn max_fps(mut self, fps: u32) -> Self {
        self.max_fps = fps;
        self
    }
}

/// What a frame plugin wants of the decoded audio (`audio-needs` in the WIT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AudioNeeds {
    /// Sample rate accepted; 0 keeps the input's.
    pub sample_rate: u32,
    /// Channel count accepted; 0 keeps the input's.
    pub channels: u8,
}

/// The frame-level processing a plugin asks for (`frame-needs` in the WIT), declared with
/// [`CapabilityInfo::frames`](crate::CapabilityInfo::frames).
///
/// ```
/// use byoc_sdk::frames::{AudioNeeds, FrameNeeds, PixelFormat, VideoNeeds};
/// let video_only = FrameNeeds::video(VideoNeeds::new(PixelFormat::Rgb24));
/// assert!(video_only.audio.is_none());
/// let both = video_only.with_audio(AudioNeeds { sample_rate: 48_000, channels: 1 });
/// assert!(both.audio.is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameNeeds {
    /// Video frames as described, or `None` (the input's video goes out untouched).
    pub video: Option<VideoNeeds>,
    /// Audio frames as described, or `None` (the input's audio goes out untouched).
    pub audio: Option<AudioNeeds>,
}

impl FrameNeeds {
    /// Video frames only.
    pub fn video(video: VideoNeeds) -> Self {
        Self { video: Some(video), audio: None }
    }

    /// Also asks for audio frames.
    pub fn with_audio(mut self, audio: AudioNeeds) -> Self {
        self.audio = Some(audio);
        self
    }
}

/// The stream a frame session opens on, as far as the host knows it (`stream-info` in the
/// WIT). A field is 0 when not known yet; every frame carries its own size.
///
/// ```
/// let info = byoc_sdk::frames::StreamInfo { fps_num: 30_000, fps_den: 1001, ..Default::default() };
/// assert!((info.fps().unwrap() - 29.97).abs() < 0.01);
/// assert_eq!(byoc_sdk::frames::StreamInfo::default().fps(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamInfo {
    /// Width of the video frames the plugin will receive, or 0.
    pub width: u32,
    /// Height of the video frames, or 0.
    pub height: u32,
    /// Frame rate numerator; 0 when unknown.
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
    /// Sample rate of the audio frames, or 0.
    pub sample_rate: u32,
    /// Channels of the audio frames, or 0.
    pub channels: u8,
}

impl StreamInfo {
    /// The frame rate, when known.
    pub fn fps(&self) -> Option<f64> {
        (self.fps_num > 0 && self.fps_den > 0).then(|| f64::from(self.fps_num) / f64::from(self.fps_den))
    }
}
