//! The job's `parameters`: a JSON object encoded as a string in the `Livepeer` header.

use serde::Deserialize;

/// `parameters.orchestrators` of a job: which orchestrators the gateway may use.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct OrchestratorFilter {
    /// Orchestrator addresses or URLs to prefer; empty for any.
    #[serde(default)]
    pub include: Vec<String>,
    /// Orchestrator addresses or URLs never to use.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// The parts of a job's `parameters` the gateway and the orchestrator read.
#[derive(Debug, Default, Deserialize)]
pub struct JobParameters {
    /// Gateway: which orchestrators to use.
    #[serde(default)]
    pub orchestrators: OrchestratorFilter,
    /// The stream takes video in (WHIP or RTMP at the gateway).
    #[serde(default)]
    pub enable_video_ingress: bool,
    /// The stream sends video out (WHEP or RTMP at the gateway).
    #[serde(default)]
    pub enable_video_egress: bool,
    /// The stream sends data lines out (SSE at the gateway).
    #[serde(default)]
    pub enable_data_output: bool,
    /// Priced: the stream is paid from a balance of its own on the orchestrator, not the sender's
    /// shared one.
    #[serde(default)]
    pub per_stream_balance: bool,
}

impl JobParameters {
    /// Parses `parameters`; an empty one is the defaults. The error is the 400's message.
    pub fn parse(parameters: &str) -> Result<JobParameters, String> {
        if parameters.trim().is_empty() {
            return Ok(JobParameters::default());
        }
        serde_json::from_str(parameters).map_err(|e| format!("invalid job parameters: {e}"))
    }
}
