//! A live stream forwarded to a worker session: open, whole segments, control, close.

use byoc_sdk::buffered::SegmentHandler;
use byoc_sdk::{Context, Error, HttpResponse, Method};
use serde::Deserialize;

use crate::worker::{Worker, WorkerOutput};

/// Longest session id accepted from a worker; ids go into URL paths.
const MAX_SESSION_ID: usize = 128;

/// The worker's answer to `POST /session`.
#[derive(Debug, Deserialize)]
struct Opened {
    id: String,
}

/// The worker-side session behind one stream.
pub struct WorkerSession {
    worker: Worker,
    id: String,
}

impl WorkerSession {
    /// Opens a session on the worker with the stream's params.
    pub fn open(ctx: &Context<'_>, params: &str) -> Result<Self, Error> {
        let worker = Worker::from_config(ctx)?;
        let params = if params.trim().is_empty() { "{}" } else { params };
        let request = worker
            .request(Method::Post, "/session")
            .header("content-type", "application/json")
            .body(params.as_bytes().to_vec());
        let response = worker.call(ctx, &request, Error::InvalidParams)?;
        let Opened { id } = response.json()?;
        // The id is interpolated into paths: accept only what cannot change their meaning.
        let valid = !id.is_empty()
            && id.len() <= MAX_SESSION_ID
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && id != "."
            && id != "..";
        if !valid {
            return Err(Error::upstream(format!("worker returned an unusable session id {id:?}")));
        }
        ctx.info(&format!("worker session {id} opened"));
        Ok(Self { worker, id })
    }

    /// The worker's session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn path(&self, action: &str) -> String {
        format!("/session/{}/{action}", self.id)
    }

    /// Publishes what a worker answered: a video segment, or JSON data lines and events.
    fn publish(ctx: &Context<'_>, response: &HttpResponse) -> Result<(), Error> {
        let is_json = response.content_type().is_some_and(|ct| ct.starts_with("application/json"));
        if is_json {
            WorkerOutput::from_response(response)?.publish(ctx)
        } else if response.status == 204 || response.body.is_empty() {
            Ok(())
        } else {
            ctx.publish_segment(&response.body)?;
            Ok(())
        }
    }
}

impl SegmentHandler for WorkerSession {
    /// `POST /session/{id}/segment?seq={seq}` with the segment as `video/mp2t`.
    fn on_segment(&mut self, ctx: &Context<'_>, seq: u64, bytes: &[u8]) -> Result<(), Error> {
        let request = self
            .worker
            .request(Method::Post, &format!("{}?seq={seq}", self.path("segment")))
            .header("content-type", "video/mp2t")
            .body(bytes.to_vec());
        let response = self.worker.call(ctx, &request, Error::InvalidInput)?;
        Self::publish(ctx, &response)
    }

    /// `POST /session/{id}/control` with the message as JSON.
    fn on_control(&mut self, ctx: &Context<'_>, message: &str) -> Result<(), Error> {
        let request = self
            .worker
            .request(Method::Post, &self.path("control"))
            .header("content-type", "application/json")
            .body(message.as_bytes().to_vec());
        let response = self.worker.call(ctx, &request, Error::InvalidParams)?;
        Self::publish(ctx, &response)
    }

    /// `POST /session/{id}/close`; the worker may answer final data lines and events.
    fn close(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        let request = self.worker.request(Method::Post, &self.path("close"));
        let response = self.worker.call(ctx, &request, Error::InvalidInput)?;
        Self::publish(ctx, &response)
    }
}
