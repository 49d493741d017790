//! The guest of either `byoc:capability` version behind one [`Guest`]: every call returns the
//! runtime's types. A 0.1.0 plugin is served exactly as before: its session calls are the same,
//! it cannot ask for ticks, and it has no frame session.

use wasmtime::component::{InstancePre, Resource, ResourceAny};
use wasmtime::{Engine, Store};

use crate::bindings::{v1, v2};
use crate::state::HostState;
use crate::types;

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

    /// The `byoc:capability` version the component was built against, as `0.<minor>`.
    pub(crate) fn wit_version(&self) -> &'static str {
        match self {
            Self::V1(_) => "0.1",
            Self::V2(_) => "0.2",
        }
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
