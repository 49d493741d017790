//! [`FrameProcessor`]: the trait a frame plugin implements, and the session driver that the
//! wasm glue and the test harness share.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::frames::{AudioFrame, StreamInfo, VideoFrame};
use crate::{Context, Error, params};

/// One live stream of a frame plugin: the host decodes the input, calls
/// [`process_video`](Self::process_video) (and [`process_audio`](Self::process_audio) when
/// asked for) with each frame in presentation order, and encodes what comes back.
///
/// The implementing type is the per-stream state, created by [`on_start`](Self::on_start).
/// Together with [`Describe`](crate::Describe) (whose [`CapabilityInfo`](crate::CapabilityInfo)
/// must declare [`frames`](crate::CapabilityInfo::frames)) it is exported with
/// `byoc_sdk::export!(frames MyPlugin)`.
///
/// Params are typed: the stream's params are parsed into [`Params`](Self::Params) with
/// `serde` (a parse error refuses the stream as `invalid-params`). A stream update (a control
/// message) is applied to the params the stream has so far as a JSON merge patch (RFC 7396,
/// see [`params::merge_patch`]), so `{"strength": 0.2}` changes only the strength; the result
/// is parsed again and handed to [`update_params`](Self::update_params). A malformed update
/// is refused and leaves the session as it was.
///
/// Errors returned by any method are reported to the client on the events leg and the stream
/// goes on (the frame is then dropped); only a panic ends the session, so return errors.
///
/// ```
/// use byoc_sdk::frames::{FrameNeeds, FrameProcessor, PixelFormat, StreamInfo, VideoFrame, VideoNeeds};
/// use byoc_sdk::{CapabilityInfo, Context, Describe, Error, Legs};
///
/// /// Darkens the picture by a factor taken from the params.
/// pub struct Dim { factor: f32 }
///
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// pub struct Params { #[serde(default = "half")] factor: f32 }
/// fn half() -> f32 { 0.5 }
///
/// impl Describe for Dim {
///     fn describe() -> CapabilityInfo {
///         CapabilityInfo::new("dim", "0.1.0", "Darkens video")
///             .legs(Legs::VIDEO_IN | Legs::VIDEO_OUT)
///             .frames(FrameNeeds::video(VideoNeeds::new(PixelFormat::I420)))
///     }
/// }
///
/// impl FrameProcessor for Dim {
///     type Params = Params;
///     fn on_start(_ctx: &Context<'_>, params: Params, _info: StreamInfo) -> Result<Self, Error> {
///         Ok(Dim { factor: params.factor.clamp(0.0, 1.0) })
///     }
///     fn process_video(&mut self, _ctx: &Context<'_>, mut frame: VideoFrame) -> Result<Option<VideoFrame>, Error> {
///         for y in frame.plane_mut(0) {
///             *y = 16 + ((f32::from(*y) - 16.0).max(0.0) * self.factor) as u8;
///         }
///         Ok(Some(frame))
///     }
/// }
///
/// byoc_sdk::export!(frames Dim);
///
/// let harness = byoc_sdk::testing::FrameHarness::<Dim>::new();
/// let mut session = harness.open(r#"{"factor": 0.5}"#).unwrap();
/// let mut input = VideoFrame::new(2, 2, PixelFormat::I420).unwrap();
/// input.plane_mut(0).fill(216);
/// let output = session.video(input).unwrap().unwrap();
/// assert_eq!(output.plane(0), &[116; 4]);
/// ```
pub trait FrameProcessor: Sized + 'static {
    /// The stream's params, parsed from JSON with `serde` (`{}` when the client gave none).
    type Params: DeserializeOwned;

    /// The stream starts: build its state from the params and what the host knows of the
    /// stream (fields may be 0 when not known yet; frames carry their own size). May publish
    /// and call [`Context::set_tick`]. An error refuses the stream.
    fn on_start(ctx: &Context<'_>, params: Self::Params, info: StreamInfo) -> Result<Self, Error>;

    /// One video frame: return it (changed or not), a new frame of any size (the host
    /// scales it to the output size), or `None` to drop it.
    fn process_video(&mut self, ctx: &Context<'_>, frame: VideoFrame) -> Result<Option<VideoFrame>, Error>;

    /// One audio frame (only when the plugin asked for audio). The default passes it through
    /// unchanged, which costs no copy back.
    fn process_audio(&mut self, ctx: &Context<'_>, frame: AudioFrame) -> Result<Option<AudioFrame>, Error> {
        let _ = ctx;
        Ok(Some(frame))
    }

    /// A stream update changed the params (already merged and parsed). The default replaces
    /// the whole state: it calls [`on_start`](Self::on_start) again with the new params and
    /// the stream's `info`, as if the stream had just started.
    fn update_params(&mut self, ctx: &Context<'_>, params: Self::Params, info: &StreamInfo) -> Result<(), Error> {
        *self = Self::on_start(ctx, params, *info)?;
        Ok(())
    }

    /// A timer tick asked for with [`Context::set_tick`]. The default does nothing.
    fn on_tick(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }

    /// The stream is stopping; data and events may still be published. The default does
    /// nothing.
    fn on_stop(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        let _ = ctx;
        Ok(())
    }
}

/// A running frame session: the plugin's state plus the params and stream info the SDK
/// keeps for updates. Driven by the wasm glue and by [`FrameHarness`](crate::testing::FrameHarness).
pub(crate) struct FrameSession<P> {
    pub(crate) processor: P,
    params: Value,
    info: StreamInfo,
}

impl<P: FrameProcessor> FrameSession<P> {
    pub(crate) fn open(ctx: &Context<'_>, params_text: &str, info: StreamInfo) -> Result<Self, Error> {
        let params: Value = params::parse(params_text)?;
        if !params.is_object() {
            return Err(Error::invalid_params("params must be a JSON object"));
        }
        let typed = serde_json::from_value(params.clone()).map_err(|e| Error::invalid_params(e.to_string()))?;
        let processor = P::on_start(ctx, typed, info)?;
        Ok(Self { processor, params, info })
    }

    pub(crate) fn video(&mut self, ctx: &Context<'_>, frame: VideoFrame) -> Result<Option<VideoFrame>, Error> {
        self.processor.process_video(ctx, frame)
    }

    pub(crate) fn audio(&mut self, ctx: &Context<'_>, frame: AudioFrame) -> Result<Option<AudioFrame>, Error> {
        self.processor.process_audio(ctx, frame)
    }

    pub(crate) fn control(&mut self, ctx: &Context<'_>, message: &str) -> Result<(), Error> {
        let patch: Value = params::parse(message)?;
        if !patch.is_object() {
            return Err(Error::invalid_params("a params update must be a JSON object"));
        }
        let mut merged = self.params.clone();
        params::merge_patch(&mut merged, patch);
        let typed = serde_json::from_value(merged.clone()).map_err(|e| Error::invalid_params(e.to_string()))?;
        self.processor.update_params(ctx, typed, &self.info)?;
        self.params = merged;
        Ok(())
    }

    pub(crate) fn tick(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        self.processor.on_tick(ctx)
    }

    pub(crate) fn close(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        self.processor.on_stop(ctx)
    }
}
