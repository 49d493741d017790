//! [`AudioFrame`]: a run of decoded audio samples owned by the plugin.

use std::fmt;

use crate::Error;

/// Most channels an audio frame may have.
pub const MAX_CHANNELS: u8 = 8;
/// Most samples per channel in one audio frame (one second at 192 kHz).
pub const MAX_SAMPLES_PER_CHANNEL: usize = 192_000;

/// Audio samples in plugin memory: interleaved 32-bit float, nominally in `-1.0..=1.0`.
///
/// As for [`VideoFrame`](crate::frames::VideoFrame), a frame that came from the host is
/// copied back into the same host frame when returned, and only if its samples were borrowed
/// mutably; one with another rate or channel count becomes a new host frame.
///
/// ```
/// use byoc_sdk::frames::AudioFrame;
///
/// let mut frame = AudioFrame::new(48_000, 2, vec![0.5, -0.5, 0.25, -0.25]).unwrap();
/// assert_eq!(frame.samples_per_channel(), 2);
/// frame.samples_mut().iter_mut().for_each(|s| *s *= 2.0);
/// assert_eq!(frame.samples(), &[1.0, -1.0, 0.5, -0.5]);
/// ```
pub struct AudioFrame {
    sample_rate: u32,
    channels: u8,
    pts: i64,
    samples: Vec<f32>,
    dirty: bool,
    #[cfg(target_arch = "wasm32")]
    pub(crate) origin: Option<crate::wasm::frames::HostAudioFrame>,
}

impl AudioFrame {
    /// A frame of interleaved `samples`; pts 0. Fails unless `channels` is 1 to
    /// [`MAX_CHANNELS`], the length is a multiple of `channels` and at most one second.
    ///
    /// ```
    /// use byoc_sdk::frames::AudioFrame;
    /// assert!(AudioFrame::new(48_000, 2, vec![0.0; 3]).is_err());
    /// assert!(AudioFrame::new(48_000, 0, vec![]).is_err());
    /// ```
    pub fn new(sample_rate: u32, channels: u8, samples: Vec<f32>) -> Result<Self, Error> {
        Self::check(sample_rate, channels, samples.len())?;
        Ok(Self {
            sample_rate,
            channels,
            pts: 0,
            samples,
            dirty: true,
            #[cfg(target_arch = "wasm32")]
            origin: None,
        })
    }

    fn check(sample_rate: u32, channels: u8, len: usize) -> Result<(), Error> {
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(Error::invalid_input(format!("{channels} channels (1 to {MAX_CHANNELS})")));
        }
        if sample_rate == 0 {
            return Err(Error::invalid_input("a sample rate of 0"));
        }
        if !len.is_multiple_of(usize::from(channels)) {
            return Err(Error::invalid_input(format!("{len} samples is not a multiple of {channels} channels")));
        }
        let per_channel = len / usize::from(channels);
        if per_channel > sample_rate as usize || per_channel > MAX_SAMPLES_PER_CHANNEL {
            return Err(Error::limit_exceeded(format!("{per_channel} samples per channel is over one second")));
        }
        Ok(())
    }

    /// Sets the presentation time (builder form).
    pub fn with_pts(mut self, pts: i64) -> Self {
        self.pts = pts;
        self
    }

    /// Samples per second per channel.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Channel count.
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// Presentation time of the first sample, in nanoseconds on the stream's clock.
    pub fn pts(&self) -> i64 {
        self.pts
    }

    /// Sets the presentation time.
    pub fn set_pts(&mut self, pts: i64) {
        self.pts = pts;
    }

    /// The samples, interleaved.
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    /// The samples, interleaved, to change in place.
    pub fn samples_mut(&mut self) -> &mut [f32] {
        self.dirty = true;
        &mut self.samples
    }

    /// Replaces the samples (same checks as [`new`](Self::new)).
    pub fn set_samples(&mut self, samples: Vec<f32>) -> Result<(), Error> {
        Self::check(self.sample_rate, self.channels, samples.len())?;
        self.samples = samples;
        self.dirty = true;
        Ok(())
    }

    /// Samples per channel.
    pub fn samples_per_channel(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// Takes the samples.
    pub fn into_samples(self) -> Vec<f32> {
        self.samples
    }

    /// Whether the samples may have changed since the frame came from the host.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// A frame read from the host: nothing changed yet.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn from_host(
        sample_rate: u32,
        channels: u8,
        pts: i64,
        samples: Vec<f32>,
        origin: crate::wasm::frames::HostAudioFrame,
    ) -> Self {
        Self { sample_rate, channels, pts, samples, dirty: false, origin: Some(origin) }
    }
}

impl Clone for AudioFrame {
    /// A copy in plugin memory, not tied to the host's frame.
    fn clone(&self) -> Self {
        Self {
            sample_rate: self.sample_rate,
            channels: self.channels,
            pts: self.pts,
            samples: self.samples.clone(),
            dirty: true,
            #[cfg(target_arch = "wasm32")]
            origin: None,
        }
    }
}

impl PartialEq for AudioFrame {
    fn eq(&self, other: &Self) -> bool {
        (self.sample_rate, self.channels, self.pts) == (other.sample_rate, other.channels, other.pts)
            && self.samples == other.samples
    }
}

impl fmt::Debug for AudioFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AudioFrame")
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels)
            .field("pts", &self.pts)
            .field("samples", &self.samples.len())
            .finish()
    }
}
