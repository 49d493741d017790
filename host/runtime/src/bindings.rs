//! The `byoc:capability@0.1.0` bindings generated from `wit/`, and conversions between the
//! generated types and the runtime's plain types.

#![allow(missing_docs, clippy::all)]

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
    },
});

use byoc::capability::types as wit;

use crate::types;

impl From<wit::CapabilityInfo> for types::CapabilityInfo {
    fn from(info: wit::CapabilityInfo) -> Self {
        Self {
            name: info.name,
            version: info.version,
            description: info.description,
            price: types::Price { per_unit: info.price.per_unit, scaling: info.price.scaling },
            capacity: info.capacity,
            legs: types::Legs {
                video_in: info.legs.contains(wit::Legs::VIDEO_IN),
                video_out: info.legs.contains(wit::Legs::VIDEO_OUT),
                data: info.legs.contains(wit::Legs::DATA),
                events: info.legs.contains(wit::Legs::EVENTS),
            },
            params_schema: info.params_schema,
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
            headers: r.headers.iter().map(|h| wit::Header { name: h.name.clone(), value: h.value.clone() }).collect(),
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
                    events.into_iter().map(|e| types::SseEvent { event: e.event, id: e.id, data: e.data }).collect(),
                ),
            },
        }
    }
}
