//! The frame half of the component glue: converting between the host's frame resources and
//! the SDK's owned frames (one copy each way), the `frame-session` export for frame plugins,
//! and the refusing exports for the kind of session a plugin does not implement.

use std::cell::RefCell;
use std::marker::PhantomData;

use super::bindings::byoc::capability::frames as wit_frames;
use super::bindings::byoc::capability::types as wit;
use super::bindings::exports::byoc::capability::adapter::{
    FrameSession, Guest, GuestFrameSession, GuestSession, Session,
};
use super::{WitHost, capability_error, capability_info};
use crate::frames::FrameSession as Running;
use crate::frames::{AudioFrame, FrameNeeds, FrameProcessor, PixelFormat, StreamInfo, VideoFrame};
use crate::{Context, Describe, Error};

/// The host's video frame resource.
pub(crate) type HostVideoFrame = wit_frames::VideoFrame;
/// The host's audio frame resource.
pub(crate) type HostAudioFrame = wit_frames::AudioFrame;

fn pixel_format_in(format: wit::PixelFormat) -> PixelFormat {
    match format {
        wit::PixelFormat::I420 => PixelFormat::I420,
        wit::PixelFormat::Rgb24 => PixelFormat::Rgb24,
        wit::PixelFormat::Rgba => PixelFormat::Rgba,
    }
}

fn pixel_format_out(format: PixelFormat) -> wit::PixelFormat {
    match format {
        PixelFormat::I420 => wit::PixelFormat::I420,
        PixelFormat::Rgb24 => wit::PixelFormat::Rgb24,
        PixelFormat::Rgba => wit::PixelFormat::Rgba,
    }
}

pub(crate) fn frame_needs(needs: FrameNeeds) -> wit::FrameNeeds {
    wit::FrameNeeds {
        video: needs.video.map(|v| wit::VideoNeeds {
            pixel_format: pixel_format_out(v.pixel_format),
            max_width: v.max_width,
            max_height: v.max_height,
            max_fps: v.max_fps,
        }),
        audio: needs.audio.map(|a| wit::AudioNeeds { sample_rate: a.sample_rate, channels: a.channels }),
    }
}

fn stream_info(info: wit::StreamInfo) -> StreamInfo {
    StreamInfo {
        width: info.width,
        height: info.height,
        fps_num: info.fps_num,
        fps_den: info.fps_den,
        sample_rate: info.sample_rate,
        channels: info.channels,
    }
}

/// A failed frame operation is the plugin's bug (a wrong size) or a host limit.
fn frame_error(e: wit_frames::FrameError) -> wit::CapabilityError {
    match e {
        wit_frames::FrameError::Invalid(m) => wit::CapabilityError::Internal(format!("frame: {m}")),
        wit_frames::FrameError::TooLarge(m) => wit::CapabilityError::LimitExceeded(format!("frame: {m}")),
    }
}

/// Copies a host frame's planes into one buffer: the first plane's list becomes the buffer,
/// so the largest plane is not copied a second time inside the plugin.
fn read_video(host: HostVideoFrame) -> Result<VideoFrame, wit::CapabilityError> {
    let (width, height) = (host.width(), host.height());
    let format = pixel_format_in(host.format());
    let expected = format.frame_bytes(width, height);
    let mut data = host.plane(0).map_err(frame_error)?;
    data.reserve_exact(expected.saturating_sub(data.len()));
    for plane in 1..format.plane_count() {
        let bytes = host.plane(plane as u32).map_err(frame_error)?;
        data.extend_from_slice(&bytes);
    }
    if data.len() != expected {
        return Err(wit::CapabilityError::Internal(format!(
            "the host's {width}x{height} {format:?} frame has {} bytes, not {expected}",
            data.len()
        )));
    }
    Ok(VideoFrame::from_host(width, height, format, host.pts(), host.keyframe(), data, host))
}

/// Hands a frame back: into the frame it came from (only the planes borrowed mutably), or
/// into a new host frame. A frame keeps its size and layout for life, so one with an origin
/// always fits it.
fn write_video(mut frame: VideoFrame) -> Result<HostVideoFrame, wit::CapabilityError> {
    let (host, dirty) = match frame.origin.take() {
        Some(origin) => (origin, frame.dirty_planes()),
        None => {
            let created = HostVideoFrame::create(frame.width(), frame.height(), pixel_format_out(frame.format()))
                .map_err(frame_error)?;
            (created, u8::MAX)
        }
    };
    for plane in 0..frame.plane_count() {
        if dirty & (1 << plane) != 0 {
            host.set_plane(plane as u32, frame.plane(plane)).map_err(frame_error)?;
        }
    }
    host.set_pts(frame.pts());
    Ok(host)
}

fn read_audio(host: HostAudioFrame) -> AudioFrame {
    AudioFrame::from_host(host.sample_rate(), host.channels(), host.pts(), host.samples(), host)
}

fn write_audio(mut frame: AudioFrame) -> Result<HostAudioFrame, wit::CapabilityError> {
    match frame.origin.take() {
        Some(host) => {
            if frame.is_dirty() {
                host.set_samples(frame.samples()).map_err(frame_error)?;
            }
            host.set_pts(frame.pts());
            Ok(host)
        }
        None => HostAudioFrame::create(frame.sample_rate(), frame.channels(), frame.samples(), frame.pts())
            .map_err(frame_error),
    }
}

/// Implements the `adapter` exports for frame plugin `P`: `describe`, the `frame-session`
/// resource, and `unsupported` for batch calls and byte-level sessions.
pub struct FrameAdapter<P>(PhantomData<P>);

impl<P: Describe + FrameProcessor> Guest for FrameAdapter<P> {
    type Session = RefusedSession;
    type FrameSession = FrameSessionAdapter<P>;

    fn describe() -> wit::CapabilityInfo {
        capability_info(P::describe())
    }

    fn process(_request: wit::Request) -> Result<wit::Response, wit::CapabilityError> {
        Err(wit::CapabilityError::Unsupported("a frame plugin takes no batch requests".to_owned()))
    }
}

/// One `frame-session` resource: the running session behind a `RefCell`, as generated
/// resource methods take `&self`.
pub struct FrameSessionAdapter<P> {
    session: RefCell<Running<P>>,
}

impl<P: FrameProcessor> FrameSessionAdapter<P> {
    /// Runs `f` on the session; a re-entered call fails instead of trapping.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Running<P>, &Context<'_>) -> Result<T, Error>,
    ) -> Result<T, wit::CapabilityError> {
        let mut session = self
            .session
            .try_borrow_mut()
            .map_err(|_| wit::CapabilityError::Internal("session re-entered during a call".to_owned()))?;
        f(&mut session, &Context::new(&WitHost)).map_err(capability_error)
    }
}

impl<P: Describe + FrameProcessor> GuestFrameSession for FrameSessionAdapter<P> {
    fn open(params: String, info: wit::StreamInfo) -> Result<FrameSession, wit::CapabilityError> {
        let session =
            Running::<P>::open(&Context::new(&WitHost), &params, stream_info(info)).map_err(capability_error)?;
        Ok(FrameSession::new(Self { session: RefCell::new(session) }))
    }

    fn on_video_frame(&self, frame: HostVideoFrame) -> Result<Option<HostVideoFrame>, wit::CapabilityError> {
        let frame = read_video(frame)?;
        self.with(|s, ctx| s.video(ctx, frame))?.map(write_video).transpose()
    }

    fn on_audio_frame(&self, frame: HostAudioFrame) -> Result<Option<HostAudioFrame>, wit::CapabilityError> {
        let frame = read_audio(frame);
        self.with(|s, ctx| s.audio(ctx, frame))?.map(write_audio).transpose()
    }

    fn on_control(&self, message: String) -> Result<(), wit::CapabilityError> {
        self.with(|s, ctx| s.control(ctx, &message))
    }

    fn on_tick(&self) -> Result<(), wit::CapabilityError> {
        self.with(|s, ctx| s.tick(ctx))
    }

    fn close(&self) -> Result<(), wit::CapabilityError> {
        self.with(|s, ctx| s.close(ctx))
    }
}

/// The `frame-session` of a byte-level plugin: `open` refuses, so no value ever exists.
pub enum RefusedFrameSession {}

impl GuestFrameSession for RefusedFrameSession {
    fn open(_params: String, _info: wit::StreamInfo) -> Result<FrameSession, wit::CapabilityError> {
        Err(wit::CapabilityError::Unsupported("this capability is not a frame plugin".to_owned()))
    }

    fn on_video_frame(&self, _frame: HostVideoFrame) -> Result<Option<HostVideoFrame>, wit::CapabilityError> {
        match *self {}
    }

    fn on_audio_frame(&self, _frame: HostAudioFrame) -> Result<Option<HostAudioFrame>, wit::CapabilityError> {
        match *self {}
    }

    fn on_control(&self, _message: String) -> Result<(), wit::CapabilityError> {
        match *self {}
    }

    fn on_tick(&self) -> Result<(), wit::CapabilityError> {
        match *self {}
    }

    fn close(&self) -> Result<(), wit::CapabilityError> {
        match *self {}
    }
}

/// The byte-level `session` of a frame plugin: `open` refuses, so no value ever exists.
pub enum RefusedSession {}

impl GuestSession for RefusedSession {
    fn open(_params: String) -> Result<Session, wit::CapabilityError> {
        Err(wit::CapabilityError::Unsupported("this capability is a frame plugin: use a frame session".to_owned()))
    }

    fn on_segment_start(&self, _seq: u64) -> Result<(), wit::CapabilityError> {
        match *self {}
    }

    fn on_chunk(&self, _bytes: Vec<u8>) -> Result<(), wit::CapabilityError> {
        match *self {}
    }

    fn on_segment_end(&self) -> Result<(), wit::CapabilityError> {
        match *self {}
    }

    fn on_control(&self, _message: String) -> Result<(), wit::CapabilityError> {
        match *self {}
    }

    fn on_tick(&self) -> Result<(), wit::CapabilityError> {
        match *self {}
    }

    fn close(&self) -> Result<(), wit::CapabilityError> {
        match *self {}
    }
}
