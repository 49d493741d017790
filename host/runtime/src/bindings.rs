//! The `byoc:capability` bindings: 0.2.0 (`wit/`, frame plugins and timers) and 0.1.0
//! (`wit/compat/0.1.0`, plugins built before frames), and conversions between the generated types
//! and the runtime's plain types. `guest` calls either version's exports; `compat` serves 0.1.0's
//! imports.

#![allow(missing_docs, clippy::all)]

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

/// The conversions both versions share: their types are the same but for the version, and but
/// for `capability-info.frames`, which 0.2 added (`$frames` reads it from a `capability-info`).
macro_rules! conversions {
    ($wit:path, frames: $frames:expr) => {
        use $wit as wit;

        impl From<wit::CapabilityInfo> for types::CapabilityInfo {
            fn from(info: wit::CapabilityInfo) -> Self {
                let frames = $frames(&info);
                Self {
                    name: info.name,
                    version: info.version,
                    description: info.description,
                    price: types::Price { per_unit: info.price.per_unit, scaling: info.price.scaling },
                    capacity: info.capacity,
                    legs: info.legs.into(),
                    params_schema: info.params_schema,
                    frames,
                }
            }
        }

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
    conversions!(crate::bindings::v1::byoc::capability::types, frames: |_: &wit::CapabilityInfo| None);
}

mod v2_conversions {
    use super::*;
    conversions!(crate::bindings::v2::byoc::capability::types, frames: |info: &wit::CapabilityInfo| {
        info.frames.as_ref().map(|f| byoc_frames::FrameNeeds {
            video: f.video.as_ref().map(|v| byoc_frames::VideoNeeds {
                format: v.pixel_format.into(),
                max_width: v.max_width,
                max_height: v.max_height,
                max_fps: v.max_fps,
            }),
            audio: f.audio.as_ref().map(|a| byoc_frames::AudioNeeds { sample_rate: a.sample_rate, channels: a.channels }),
        })
    });
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
