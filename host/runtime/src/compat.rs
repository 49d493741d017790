//! Plugins built against `byoc:capability@0.1.0` import its `host` and `output` interfaces; they
//! are served by the 0.2.0 implementations (the same functions, the older types).

use crate::bindings::v1::byoc::capability::{host, output, types as old};
use crate::bindings::v2::byoc::capability::{host as new_host, output as new_output};
use crate::bindings::{AccessError, PublishError, WitLogLevel};
use crate::state::HostState;

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
