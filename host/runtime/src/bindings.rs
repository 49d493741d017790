//! The `byoc:capability` bindings: 0.2.0 (`wit/`, frame plugins and timers) and 0.1.0
//! (`wit/compat/0.1.0`, plugins built before frames), the guest of either version behind one
//! [`Guest`], and conversions between the generated types and the runtime's plain types.
//!
//! A 0.1.0 plugin is served exactly as before: its session calls are the same, it cannot ask
//! for ticks, and it has no frame session.

#![allow(missing_docs, clippy::all)]

use wasmtime::component::{InstancePre, Resource, ResourceAny};
use wasmtime::{Engine, Store};

use crate::state::HostState;
use crate::types;

/// `byoc:capability@0.2.0`, the version plugins are built against today.
pub(crate) mod v2 {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "byoc:capability/capability-adapter",
        imports: { default: async | trappable },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "byoc:capability/frames.video-frame": byoc_frames::VideoFrame,
            "byoc:capability/frames.audio-frame": byoc_frames::AudioFrame,
        },
    });
}

/// `byoc:capability@0.1.0`, frozen: plugins built against it keep loading.
pub(crate) mod v1 {
    wasmtime::component::bindgen!({
        path: "../../wit/compat/0.1.0",
        world: "byoc:capability/capability-adapter",
        imports: { default: async | trappable },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

pub(crate) use v2::byoc::capability::frames::FrameError as WitFrameError;
pub(crate) use v2::byoc::capability::types::{
    AccessError, LogLevel as WitLogLevel, PixelFormat as WitPixelFormat, PublishError,
};

/// The WIT version a component was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WitVersion {
    /// `0.1.x`: byte-level sessions only.
    V1,
    /// `0.2.x`: byte-level and frame sessions, timers.
    V2,
}

/// A plugin's pre-linked component, of either version.
pub(crate) enum Pre {
    V1(v1::CapabilityAdapterPre<HostState>),
    V2(v2::CapabilityAdapterPre<HostState>),
}

impl Pre {
    pub(crate) fn new(pre: InstancePre<HostState>, version: WitVersion) -> wasmtime::Result<Self> {
        Ok(match version {
            WitVersion::V1 => Self::V1(v1::CapabilityAdapterPre::new(pre)?),
            WitVersion::V2 => Self::V2(v2::CapabilityAdapterPre::new(pre)?),
        })
    }

    pub(crate) fn engine(&self) -> &Engine {
        match self {
            Self::V1(pre) => pre.engine(),
            Self::V2(pre) => pre.engine(),
        }
    }

    pub(crate) async fn instantiate_async(&self, store: &mut Store<HostState>) -> wasmtime::Result<Guest> {
        Ok(match self {
            Self::V1(pre) => Guest::V1(pre.instantiate_async(store).await?),
            Self::V2(pre) => Guest::V2(pre.instantiate_async(store).await?),
        })
    }
}

/// A plugin instance's exports, of either version. Every call returns the runtime's types.
pub(crate) enum Guest {
    V1(v1::CapabilityAdapter),
    V2(v2::CapabilityAdapter),
}

/// What a session call returns once the trap layer is peeled off.
pub(crate) type Returned<T> = wasmtime::Result<Result<T, types::CapabilityError>>;

/// Calls the same byte-level session method on either version's bindings.
macro_rules! session_call {
    ($guest:expr, $store:expr, $method:ident ( $($arg:expr),* )) => {
        match $guest {
            Guest::V1(g) => g.byoc_capability_adapter().session().$method($store, $($arg),*).await.map(|r| r.map_err(Into::into)),
            Guest::V2(g) => g.byoc_capability_adapter().session().$method($store, $($arg),*).await.map(|r| r.map_err(Into::into)),
        }
    };
}

/// The refusal a 0.1.0 plugin gives to what only 0.2.0 has.
fn not_in_v1<T>(what: &str) -> Returned<T> {
    Ok(Err(types::CapabilityError::Unsupported(format!("{what} needs a plugin built against byoc:capability@0.2"))))
}

impl Guest {
    pub(crate) async fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<types::CapabilityInfo> {
        match self {
            Self::V1(g) => g.byoc_capability_adapter().call_describe(store).await.map(Into::into),
            Self::V2(g) => g.byoc_capability_adapter().call_describe(store).await.map(Into::into),
        }
    }

    pub(crate) async fn process(
        &self,
        store: &mut Store<HostState>,
        request: &types::Request,
    ) -> Returned<types::Response> {
        match self {
            Self::V1(g) => {
                let request = v1::byoc::capability::types::Request::from(request);
                let result = g.byoc_capability_adapter().call_process(store, &request).await?;
                Ok(result.map(Into::into).map_err(Into::into))
            }
            Self::V2(g) => {
                let request = v2::byoc::capability::types::Request::from(request);
                let result = g.byoc_capability_adapter().call_process(store, &request).await?;
                Ok(result.map(Into::into).map_err(Into::into))
            }
        }
    }

    pub(crate) async fn open(&self, store: &mut Store<HostState>, params: &str) -> Returned<ResourceAny> {
        session_call!(self, store, call_open(params))
    }

    pub(crate) async fn on_segment_start(
        &self,
        store: &mut Store<HostState>,
        h: ResourceAny,
        seq: u64,
    ) -> Returned<()> {
        session_call!(self, store, call_on_segment_start(h, seq))
    }

    pub(crate) async fn on_chunk(&self, store: &mut Store<HostState>, h: ResourceAny, bytes: &[u8]) -> Returned<()> {
        session_call!(self, store, call_on_chunk(h, bytes))
    }

    pub(crate) async fn on_segment_end(&self, store: &mut Store<HostState>, h: ResourceAny) -> Returned<()> {
        session_call!(self, store, call_on_segment_end(h))
    }

    pub(crate) async fn on_control(&self, store: &mut Store<HostState>, h: ResourceAny, message: &str) -> Returned<()> {
        session_call!(self, store, call_on_control(h, message))
    }

    pub(crate) async fn on_tick(&self, store: &mut Store<HostState>, h: ResourceAny) -> Returned<()> {
        match self {
            // A 0.1.0 plugin cannot ask for ticks; none is ever due.
            Self::V1(_) => Ok(Ok(())),
            Self::V2(g) => {
                g.byoc_capability_adapter().session().call_on_tick(store, h).await.map(|r| r.map_err(Into::into))
            }
        }
    }

    pub(crate) async fn close(&self, store: &mut Store<HostState>, h: ResourceAny) -> Returned<()> {
        session_call!(self, store, call_close(h))
    }

    pub(crate) async fn frame_open(
        &self,
        store: &mut Store<HostState>,
        params: &str,
        info: byoc_frames::StreamInfo,
    ) -> Returned<ResourceAny> {
        let Self::V2(g) = self else { return not_in_v1("a frame session") };
        let info = v2::byoc::capability::types::StreamInfo {
            width: info.width,
            height: info.height,
            fps_num: info.fps_num,
            fps_den: info.fps_den,
            sample_rate: info.sample_rate,
            channels: info.channels,
        };
        g.byoc_capability_adapter().frame_session().call_open(store, params, info).await.map(|r| r.map_err(Into::into))
    }

    pub(crate) async fn frame_video(
        &self,
        store: &mut Store<HostState>,
        h: ResourceAny,
        frame: Resource<byoc_frames::VideoFrame>,
    ) -> Returned<Option<Resource<byoc_frames::VideoFrame>>> {
        let Self::V2(g) = self else { return not_in_v1("a frame session") };
        g.byoc_capability_adapter()
            .frame_session()
            .call_on_video_frame(store, h, frame)
            .await
            .map(|r| r.map_err(Into::into))
    }

    pub(crate) async fn frame_audio(
        &self,
        store: &mut Store<HostState>,
        h: ResourceAny,
        frame: Resource<byoc_frames::AudioFrame>,
    ) -> Returned<Option<Resource<byoc_frames::AudioFrame>>> {
        let Self::V2(g) = self else { return not_in_v1("a frame session") };
        g.byoc_capability_adapter()
            .frame_session()
            .call_on_audio_frame(store, h, frame)
            .await
            .map(|r| r.map_err(Into::into))
    }

    pub(crate) async fn frame_control(
        &self,
        store: &mut Store<HostState>,
        h: ResourceAny,
        message: &str,
    ) -> Returned<()> {
        let Self::V2(g) = self else { return not_in_v1("a frame session") };
        g.byoc_capability_adapter()
            .frame_session()
            .call_on_control(store, h, message)
            .await
            .map(|r| r.map_err(Into::into))
    }

    pub(crate) async fn frame_tick(&self, store: &mut Store<HostState>, h: ResourceAny) -> Returned<()> {
        let Self::V2(g) = self else { return not_in_v1("a frame session") };
        g.byoc_capability_adapter().frame_session().call_on_tick(store, h).await.map(|r| r.map_err(Into::into))
    }

    pub(crate) async fn frame_close(&self, store: &mut Store<HostState>, h: ResourceAny) -> Returned<()> {
        let Self::V2(g) = self else { return not_in_v1("a frame session") };
        g.byoc_capability_adapter().frame_session().call_close(store, h).await.map(|r| r.map_err(Into::into))
    }
}

/// The conversions both versions share: their types are the same but for the version.
macro_rules! conversions {
    ($wit:path) => {
        use $wit as wit;

        impl From<wit::CapabilityError> for types::CapabilityError {
            fn from(e: wit::CapabilityError) -> Self {
                match e {
                    wit::CapabilityError::InvalidParams(m) => Self::InvalidParams(m),
                    wit::CapabilityError::InvalidInput(m) => Self::InvalidInput(m),
                    wit::CapabilityError::NotFound(m) => Self::NotFound(m),
                    wit::CapabilityError::Unsupported(m) => Self::Unsupported(m),
                    wit::CapabilityError::Denied(m) => Self::Denied(m),
                    wit::CapabilityError::Upstream(m) => Self::Upstream(m),
                    wit::CapabilityError::LimitExceeded(m) => Self::LimitExceeded(m),
                    wit::CapabilityError::Internal(m) => Self::Internal(m),
                }
            }
        }

        impl From<&types::Request> for wit::Request {
            fn from(r: &types::Request) -> Self {
                Self {
                    path: r.path.clone(),
                    content_type: r.content_type.clone(),
                    headers: r
                        .headers
                        .iter()
                        .map(|h| wit::Header { name: h.name.clone(), value: h.value.clone() })
                        .collect(),
                    body: r.body.to_vec(),
                }
            }
        }

        impl From<wit::Response> for types::Response {
            fn from(r: wit::Response) -> Self {
                Self {
                    status: r.status,
                    content_type: r.content_type,
                    headers: r.headers.into_iter().map(|h| types::Header { name: h.name, value: h.value }).collect(),
                    body: match r.body {
                        wit::ResponseBody::Bytes(b) => types::ResponseBody::Bytes(b.into()),
                        wit::ResponseBody::Events(events) => types::ResponseBody::Events(
                            events
                                .into_iter()
                                .map(|e| types::SseEvent { event: e.event, id: e.id, data: e.data })
                                .collect(),
                        ),
                    },
                }
            }
        }

        impl From<wit::Legs> for types::Legs {
            fn from(legs: wit::Legs) -> Self {
                Self {
                    video_in: legs.contains(wit::Legs::VIDEO_IN),
                    video_out: legs.contains(wit::Legs::VIDEO_OUT),
                    data: legs.contains(wit::Legs::DATA),
                    events: legs.contains(wit::Legs::EVENTS),
                }
            }
        }
    };
}

mod v1_conversions {
    use super::*;
    conversions!(crate::bindings::v1::byoc::capability::types);

    impl From<wit::CapabilityInfo> for types::CapabilityInfo {
        fn from(info: wit::CapabilityInfo) -> Self {
            Self {
                name: info.name,
                version: info.version,
                description: info.description,
                price: types::Price { per_unit: info.price.per_unit, scaling: info.price.scaling },
                capacity: info.capacity,
                legs: info.legs.into(),
                params_schema: info.params_schema,
                frames: None,
            }
        }
    }
}

mod v2_conversions {
    use super::*;
    conversions!(crate::bindings::v2::byoc::capability::types);

    impl From<wit::CapabilityInfo> for types::CapabilityInfo {
        fn from(info: wit::CapabilityInfo) -> Self {
            Self {
                name: info.name,
                version: info.version,
                description: info.description,
                price: types::Price { per_unit: info.price.per_unit, scaling: info.price.scaling },
                capacity: info.capacity,
                legs: info.legs.into(),
                params_schema: info.params_schema,
                frames: info.frames.map(|f| byoc_frames::FrameNeeds {
                    video: f.video.map(|v| byoc_frames::VideoNeeds {
                        format: v.pixel_format.into(),
                        max_width: v.max_width,
                        max_height: v.max_height,
                        max_fps: v.max_fps,
                    }),
                    audio: f
                        .audio
                        .map(|a| byoc_frames::AudioNeeds { sample_rate: a.sample_rate, channels: a.channels }),
                }),
            }
        }
    }
}

impl From<WitPixelFormat> for byoc_frames::PixelFormat {
    fn from(f: WitPixelFormat) -> Self {
        match f {
            WitPixelFormat::I420 => Self::I420,
            WitPixelFormat::Rgb24 => Self::Rgb24,
            WitPixelFormat::Rgba => Self::Rgba,
        }
    }
}

impl From<byoc_frames::PixelFormat> for WitPixelFormat {
    fn from(f: byoc_frames::PixelFormat) -> Self {
        match f {
            byoc_frames::PixelFormat::I420 => Self::I420,
            byoc_frames::PixelFormat::Rgb24 => Self::Rgb24,
            byoc_frames::PixelFormat::Rgba => Self::Rgba,
        }
    }
}

impl From<byoc_frames::FrameError> for WitFrameError {
    fn from(e: byoc_frames::FrameError) -> Self {
        match e {
            byoc_frames::FrameError::Invalid(m) => Self::Invalid(m),
            byoc_frames::FrameError::TooLarge(m) => Self::TooLarge(m),
        }
    }
}

/// The 0.1.0 host imports, served by the 0.2.0 ones: the same functions, other types.
mod v1_imports {
    use v1::byoc::capability::{host, output, types as old};

    use super::*;
    use crate::bindings::v2::byoc::capability::{host as new_host, output as new_output};

    fn publish(e: PublishError) -> old::PublishError {
        match e {
            PublishError::NotInSession => old::PublishError::NotInSession,
            PublishError::LegNotDeclared => old::PublishError::LegNotDeclared,
            PublishError::OutOfOrder => old::PublishError::OutOfOrder,
            PublishError::Invalid(m) => old::PublishError::Invalid(m),
            PublishError::LimitExceeded(m) => old::PublishError::LimitExceeded(m),
            PublishError::Closed => old::PublishError::Closed,
            PublishError::Unsupported => old::PublishError::Invalid("not available to this session".into()),
        }
    }

    fn access(e: AccessError) -> old::AccessError {
        match e {
            AccessError::NotGranted => old::AccessError::NotGranted,
        }
    }

    impl host::Host for HostState {
        async fn log(&mut self, level: old::LogLevel, message: String) -> wasmtime::Result<()> {
            let level = match level {
                old::LogLevel::Trace => WitLogLevel::Trace,
                old::LogLevel::Debug => WitLogLevel::Debug,
                old::LogLevel::Info => WitLogLevel::Info,
                old::LogLevel::Warn => WitLogLevel::Warn,
                old::LogLevel::Error => WitLogLevel::Error,
            };
            new_host::Host::log(self, level, message).await
        }

        async fn get_config(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, old::AccessError>> {
            Ok(new_host::Host::get_config(self, key).await?.map_err(access))
        }

        async fn get_secret(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, old::AccessError>> {
            Ok(new_host::Host::get_secret(self, key).await?.map_err(access))
        }

        async fn monotonic_now(&mut self) -> wasmtime::Result<u64> {
            new_host::Host::monotonic_now(self).await
        }
    }

    impl output::Host for HostState {
        async fn segment_start(&mut self) -> wasmtime::Result<Result<u64, old::PublishError>> {
            Ok(new_output::Host::segment_start(self).await?.map_err(publish))
        }

        async fn segment_chunk(&mut self, bytes: Vec<u8>) -> wasmtime::Result<Result<(), old::PublishError>> {
            Ok(new_output::Host::segment_chunk(self, bytes).await?.map_err(publish))
        }

        async fn segment_end(&mut self) -> wasmtime::Result<Result<(), old::PublishError>> {
            Ok(new_output::Host::segment_end(self).await?.map_err(publish))
        }

        async fn publish_data(&mut self, line: String) -> wasmtime::Result<Result<(), old::PublishError>> {
            Ok(new_output::Host::publish_data(self, line).await?.map_err(publish))
        }

        async fn publish_event(&mut self, json: String) -> wasmtime::Result<Result<(), old::PublishError>> {
            Ok(new_output::Host::publish_event(self, json).await?.map_err(publish))
        }
    }
}
