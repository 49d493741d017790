//! [`FrameHarness`]: runs a frame plugin natively on frames the test makes.

use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Duration;

use super::{Env, Outputs, TestHost};
use crate::frames::{
    AudioFrame, Color, FrameNeeds, FrameProcessor, FrameSession, PixelFormat, Rect, StreamInfo, VideoFrame, fill_rect,
};
use crate::{CapabilityInfo, Context, Describe, Error, HttpError, HttpRequest, HttpResponse, Legs};

/// Runs frame plugin `P` natively: opens sessions and hands them frames as the host would,
/// with a [`Context`] that records output (data lines, events, logs) and enforces the host's
/// rules (declared legs; no video segments from a frame session).
///
/// It also checks what the host guarantees to the plugin: a video frame handed to
/// [`FrameHarnessSession::video`] must have the declared pixel format and fit the declared
/// maximum size, and audio frames are refused unless audio was declared. Such misuse by the
/// test returns [`Error::Internal`] with a message starting with `harness:`.
///
/// ```
/// use byoc_sdk::frames::*;
/// use byoc_sdk::testing::{color_bars, FrameHarness};
/// use byoc_sdk::{CapabilityInfo, Context, Describe, Error, Legs};
///
/// /// Counts frames; publishes the count as a data line on each tick.
/// pub struct Counter { frames: u64 }
/// impl Describe for Counter {
///     fn describe() -> CapabilityInfo {
///         CapabilityInfo::new("counter", "0.1.0", "")
///             .legs(Legs::VIDEO_IN | Legs::VIDEO_OUT | Legs::DATA)
///             .frames(FrameNeeds::video(VideoNeeds::new(PixelFormat::Rgb24)))
///     }
/// }
/// impl FrameProcessor for Counter {
///     type Params = serde_json::Value;
///     fn on_start(ctx: &Context<'_>, _: serde_json::Value, _: StreamInfo) -> Result<Self, Error> {
///         ctx.set_tick(std::time::Duration::from_secs(1));
///         Ok(Counter { frames: 0 })
///     }
///     fn process_video(&mut self, _: &Context<'_>, frame: VideoFrame) -> Result<Option<VideoFrame>, Error> {
///         self.frames += 1;
///         Ok(Some(frame))
///     }
///     fn on_tick(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
///         ctx.publish_data_json(&serde_json::json!({"frames": self.frames}))
///     }
/// }
///
/// let harness = FrameHarness::<Counter>::new();
/// let mut session = harness.open("{}").unwrap();
/// assert_eq!(session.tick_interval(), Some(std::time::Duration::from_secs(1)));
/// let frame = color_bars(64, 32, PixelFormat::Rgb24);
/// assert_eq!(session.video(frame.clone()).unwrap(), Some(frame));
/// session.tick().unwrap();
/// assert_eq!(session.outputs().data, [r#"{"frames":1}"#]);
/// assert!(session.video(color_bars(64, 32, PixelFormat::I420)).is_err(), "not the declared format");
/// ```
pub struct FrameHarness<P> {
    env: Rc<Env>,
    grants: TestHost,
    info: StreamInfo,
    _plugin: PhantomData<fn() -> P>,
}

impl<P: Describe + FrameProcessor> Default for FrameHarness<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Describe + FrameProcessor> FrameHarness<P> {
    /// A harness with nothing granted and a stream of unknown size (every
    /// [`StreamInfo`] field 0, as when the host opens a session before any input).
    pub fn new() -> Self {
        let env = Rc::new(Env::default());
        Self {
            grants: TestHost::with_env(Rc::clone(&env), Legs::NONE, false),
            env,
            info: StreamInfo::default(),
            _plugin: PhantomData,
        }
    }

    /// The [`StreamInfo`] sessions open with.
    pub fn with_stream_info(mut self, info: StreamInfo) -> Self {
        self.info = info;
        self
    }

    /// Grants a config key and sets its value.
    pub fn with_config(self, key: &str, value: &str) -> Self {
        self.grants.grant_config(key, Some(value));
        self
    }

    /// Grants a secret and sets its value.
    pub fn with_secret(self, key: &str, value: &str) -> Self {
        self.grants.grant_secret(key, Some(value));
        self
    }

    /// Grants outbound HTTP to `authority` (`host:port`).
    pub fn with_outbound_host(self, authority: &str) -> Self {
        self.grants.grant_outbound_host(authority);
        self
    }

    /// Answers outbound HTTP requests (to granted hosts) with `responder`.
    pub fn with_http(self, responder: impl FnMut(&HttpRequest) -> Result<HttpResponse, HttpError> + 'static) -> Self {
        self.grants.set_responder(responder);
        self
    }

    /// Moves the monotonic clock forward (shared by all sessions of this harness).
    pub fn advance(&self, by: Duration) {
        self.grants.advance(by);
    }

    /// Calls `describe` and checks it as the host does on load, including that `frames` is
    /// declared.
    pub fn describe(&self) -> Result<CapabilityInfo, Error> {
        let info = P::describe();
        info.validate()?;
        if info.frames.is_none() {
            return Err(Error::internal("a frame plugin must declare `frames` in describe()"));
        }
        Ok(info)
    }

    /// Opens a frame session like a stream start does, with `params` as JSON text.
    pub fn open(&self, params: &str) -> Result<FrameHarnessSession<P>, Error> {
        let info = self.describe()?;
        let host = TestHost::for_frames(Rc::clone(&self.env), info.legs);
        host.begin_call();
        let session = FrameSession::open(&Context::new(&host), params, self.info)?;
        Ok(FrameHarnessSession { session, host, needs: info.frames.unwrap_or_default(), closed: false })
    }
}

/// A session opened by [`FrameHarness::open`]: hand it frames, control messages and ticks,
/// then read what it returned and output.
pub struct FrameHarnessSession<P> {
    session: FrameSession<P>,
    host: TestHost,
    needs: FrameNeeds,
    closed: bool,
}

impl<P: FrameProcessor> FrameHarnessSession<P> {
    fn misuse(what: String) -> Error {
        Error::internal(format!("harness: {what}"))
    }

    fn ensure_open(&self) -> Result<(), Error> {
        if self.closed { Err(Self::misuse("the session is closed".to_owned())) } else { Ok(()) }
    }

    /// Calls `process_video` with `frame` and returns the plugin's answer (`None`: dropped).
    pub fn video(&mut self, frame: VideoFrame) -> Result<Option<VideoFrame>, Error> {
        self.ensure_open()?;
        let Some(needs) = self.needs.video else {
            return Err(Self::misuse("the plugin asked for no video frames".to_owned()));
        };
        if frame.format() != needs.pixel_format {
            return Err(Self::misuse(format!(
                "the plugin asked for {:?} frames, not {:?}",
                needs.pixel_format,
                frame.format()
            )));
        }
        let over = |size: u32, max: u32| max > 0 && size > max;
        if over(frame.width(), needs.max_width) || over(frame.height(), needs.max_height) {
            return Err(Self::misuse(format!(
                "a {}x{} frame is larger than the declared {}x{}",
                frame.width(),
                frame.height(),
                needs.max_width,
                needs.max_height
            )));
        }
        self.host.begin_call();
        self.session.video(&Context::new(&self.host), frame)
    }

    /// Calls `process_audio` with `frame` (only if the plugin asked for audio).
    pub fn audio(&mut self, frame: AudioFrame) -> Result<Option<AudioFrame>, Error> {
        self.ensure_open()?;
        if self.needs.audio.is_none() {
            return Err(Self::misuse("the plugin asked for no audio frames".to_owned()));
        }
        self.host.begin_call();
        self.session.audio(&Context::new(&self.host), frame)
    }

    /// Delivers a stream update (JSON text), merged into the params as the host's plugin
    /// glue does, then `update_params`.
    pub fn control(&mut self, message: &str) -> Result<(), Error> {
        self.ensure_open()?;
        self.host.begin_call();
        self.session.control(&Context::new(&self.host), message)
    }

    /// Calls `on_tick` (whether or not the plugin asked for ticks).
    pub fn tick(&mut self) -> Result<(), Error> {
        self.ensure_open()?;
        self.host.begin_call();
        self.session.tick(&Context::new(&self.host))
    }

    /// Calls `on_stop`; the session accepts no further calls.
    pub fn close(&mut self) -> Result<(), Error> {
        self.ensure_open()?;
        self.closed = true;
        self.host.begin_call();
        self.session.close(&Context::new(&self.host))
    }

    /// The tick interval the plugin asked for, or `None` when ticks are off.
    pub fn tick_interval(&self) -> Option<Duration> {
        self.host.tick_interval()
    }

    /// Moves the monotonic clock forward.
    pub fn advance(&self, by: Duration) {
        self.host.advance(by);
    }

    /// A copy of everything the session output so far.
    pub fn outputs(&self) -> Outputs {
        self.host.outputs()
    }

    /// Takes everything the session output so far.
    pub fn take_outputs(&self) -> Outputs {
        self.host.take_outputs()
    }

    /// The plugin's state, to inspect it.
    pub fn processor(&self) -> &P {
        &self.session.processor
    }
}

/// Eight vertical colour bars (white, yellow, cyan, green, magenta, red, blue, black), a
/// synthetic frame for tests, with pts 0.
///
/// ```
/// use byoc_sdk::frames::PixelFormat;
/// let bars = byoc_sdk::testing::color_bars(16, 2, PixelFormat::Rgb24);
/// assert_eq!(bars.pixel_rgb(0, 0), Some([255, 255, 255]));
/// assert_eq!(bars.pixel_rgb(15, 1), Some([0, 0, 0]));
/// ```
pub fn color_bars(width: u32, height: u32, format: PixelFormat) -> VideoFrame {
    const BARS: [Color; 8] = [
        Color::WHITE,
        Color::YELLOW,
        Color::rgb(0, 255, 255),
        Color::GREEN,
        Color::rgb(255, 0, 255),
        Color::RED,
        Color::BLUE,
        Color::BLACK,
    ];
    let (width, height) = (width.clamp(1, crate::frames::MAX_SIDE), height.clamp(1, crate::frames::MAX_SIDE));
    let Ok(mut frame) = VideoFrame::new(width, height, format) else {
        // Only an RGBA frame near the size limit can fail; a test asking for one gets a
        // minimal frame rather than a panic in library code.
        return VideoFrame::from_parts(1, 1, PixelFormat::Rgb24, vec![0; 3]);
    };
    for (i, color) in (0u32..).zip(BARS) {
        let (x0, x1) = (i * width / 8, (i + 1) * width / 8);
        fill_rect(&mut frame, Rect::new(x0, 0, x1 - x0, height), color);
    }
    frame
}
