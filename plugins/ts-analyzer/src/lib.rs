//! `ts-analyzer`: a monitoring capability for MPEG-TS video.
//!
//! For every input segment it publishes one JSON data line (a [`SegmentReport`]: PIDs,
//! codecs, keyframes, PTS range, duration, bitrate, byte count, error counts), and events
//! when something deserves attention:
//!
//! - `ts-analyzer.streams` when the announced streams are first seen or change;
//! - `ts-analyzer.errors` for a segment with continuity, sync, PES or table errors;
//! - `ts-analyzer.warning` for a segment whose video does not start with a keyframe (a
//!   player joining there shows nothing until the next one);
//! - `ts-analyzer.summary` when the stream closes.
//!
//! It works chunk by chunk (no segment buffering), so its memory use does not depend on
//! segment size. As a batch capability it analyses a posted `.ts` file and answers the
//! report as JSON: on its default route (`POST /process/request/ts-analyzer`, what the
//! Livepeer SDK's `submit_byoc_job` calls; `/` works too) or on `/analyze`. The body is the
//! transport stream itself (`video/mp2t`) or, from a client that sends only JSON, the JSON
//! object `{"ts_base64": "<the transport stream, base64>"}`.

mod analysis;

use base64::Engine as _;
use byoc_sdk::{
    Batch, CapabilityInfo, Context, Describe, Error, Legs, Price, Request, Response, Stream, StreamSession, params,
};
use serde::{Deserialize, Serialize};

pub use analysis::{Analyzer, ErrorCounts, PidReport, PtsRange, SegmentReport, StreamInfo};

/// Upper bound on error samples per segment, whatever the params say: samples are text and
/// a broken stream could otherwise make every data line huge.
const MAX_ERROR_SAMPLES: usize = 50;

/// Params, at open and in control messages (merge patches).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Publish a data line per segment.
    pub data: bool,
    /// Publish events.
    pub events: bool,
    /// Warn when a video segment does not start with a keyframe.
    pub expect_keyframe_at_start: bool,
    /// Error descriptions kept per segment (at most 50).
    pub max_error_samples: usize,
}

impl Default for Params {
    fn default() -> Self {
        Self { data: true, events: true, expect_keyframe_at_start: true, max_error_samples: 5 }
    }
}

impl Params {
    fn validate(self) -> Result<Self, Error> {
        if self.max_error_samples > MAX_ERROR_SAMPLES {
            return Err(Error::invalid_params(format!("max_error_samples must be at most {MAX_ERROR_SAMPLES}")));
        }
        Ok(self)
    }
}

const PARAMS_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "data": {"type": "boolean", "default": true, "description": "Publish a data line per segment"},
    "events": {"type": "boolean", "default": true, "description": "Publish events"},
    "expect_keyframe_at_start": {"type": "boolean", "default": true, "description": "Warn when a video segment does not start with a keyframe"},
    "max_error_samples": {"type": "integer", "minimum": 0, "maximum": 50, "default": 5, "description": "Error descriptions kept per segment"}
  }
}"#;

/// The capability.
pub struct TsAnalyzer;

impl Describe for TsAnalyzer {
    fn describe() -> CapabilityInfo {
        CapabilityInfo::new(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "Monitors MPEG-TS video: streams, codecs, keyframes, timestamps, bitrate, errors",
        )
        .price(Price::wei_per_second(100))
        .capacity(64)
        .legs(Legs::VIDEO_IN | Legs::DATA | Legs::EVENTS)
        .params_schema(PARAMS_SCHEMA)
    }
}

/// The capability's name; a batch path that is just this name is the default route.
pub const NAME: &str = "ts-analyzer";

/// A JSON batch body: the transport stream in base64.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonBody<'a> {
    #[serde(borrow)]
    ts_base64: std::borrow::Cow<'a, str>,
}

/// The transport stream of a batch request: the body itself, or decoded from a JSON body.
fn posted_stream(request: &Request) -> Result<std::borrow::Cow<'_, [u8]>, Error> {
    if !request.content_type.starts_with("application/json") {
        return Ok(std::borrow::Cow::Borrowed(&request.body));
    }
    let body: JsonBody<'_> = serde_json::from_slice(&request.body).map_err(|e| {
        Error::invalid_input(format!(
            "a JSON body must be {{\"ts_base64\": \"<MPEG-TS, base64>\"}} ({e}); or POST the .ts itself as video/mp2t"
        ))
    })?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body.ts_base64.trim())
        .map_err(|e| Error::invalid_input(format!("`ts_base64` is not base64: {e}")))?;
    Ok(std::borrow::Cow::Owned(bytes))
}

impl Batch for TsAnalyzer {
    /// Analyses the request body as one segment and answers the report, plus the streams.
    fn process(_ctx: &Context<'_>, request: Request) -> Result<Response, Error> {
        let route = request.route_below(NAME).trim_start_matches('/');
        if !matches!(route, "" | "analyze") {
            return Err(Error::not_found(format!(
                "no route {}; POST a transport stream to /{NAME} or /analyze",
                request.route()
            )));
        }
        let stream = posted_stream(&request)?;
        if stream.is_empty() {
            return Err(Error::invalid_input("the body must be an MPEG-TS file"));
        }
        let mut analyzer = Analyzer::new(Params::default().max_error_samples);
        analyzer.begin_segment(0);
        analyzer.push(&stream);
        let report = analyzer.end_segment();
        if report.packets == 0 {
            return Err(Error::invalid_input("no MPEG-TS packet found in the body"));
        }
        Response::json(&serde_json::json!({
            "report": report,
            "streams": analyzer.streams(),
        }))
    }
}

impl Stream for TsAnalyzer {
    type Session = AnalyzerSession;

    fn open(ctx: &Context<'_>, params: &str) -> Result<AnalyzerSession, Error> {
        let params = params::parse::<Params>(params)?.validate()?;
        ctx.debug(&format!("ts-analyzer session opened with {params:?}"));
        Ok(AnalyzerSession { analyzer: Analyzer::new(params.max_error_samples), params, totals: Totals::default() })
    }
}

/// Whole-stream counts for the closing summary.
#[derive(Debug, Default, Serialize)]
struct Totals {
    segments: u64,
    bytes: u64,
    duration_ms: f64,
    keyframes: u64,
    errors: u64,
    segments_with_errors: u64,
}

/// One monitored stream.
pub struct AnalyzerSession {
    analyzer: Analyzer,
    params: Params,
    totals: Totals,
}

impl AnalyzerSession {
    /// The current params (after control messages).
    pub fn params(&self) -> &Params {
        &self.params
    }

    fn event(&self, ctx: &Context<'_>, value: &serde_json::Value) -> Result<(), Error> {
        if self.params.events {
            ctx.publish_event(value)?;
        }
        Ok(())
    }
}

impl StreamSession for AnalyzerSession {
    fn on_segment_start(&mut self, _ctx: &Context<'_>, seq: u64) -> Result<(), Error> {
        self.analyzer.begin_segment(seq);
        Ok(())
    }

    fn on_chunk(&mut self, _ctx: &Context<'_>, bytes: &[u8]) -> Result<(), Error> {
        self.analyzer.push(bytes);
        Ok(())
    }

    fn on_segment_end(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        let report = self.analyzer.end_segment();
        let totals = &mut self.totals;
        totals.segments += 1;
        totals.bytes += report.bytes;
        totals.duration_ms += report.duration_ms;
        totals.keyframes += report.keyframes;
        totals.errors += report.errors.total();
        totals.segments_with_errors += u64::from(report.errors.total() > 0);

        if self.analyzer.take_streams_changed() {
            let streams = self.analyzer.streams();
            self.event(
                ctx,
                &serde_json::json!({"type": "ts-analyzer.streams", "seq": report.seq, "streams": streams}),
            )?;
        }
        if report.errors.total() > 0 {
            self.event(
                ctx,
                &serde_json::json!({
                    "type": "ts-analyzer.errors",
                    "seq": report.seq,
                    "errors": report.errors,
                    "samples": report.error_samples,
                }),
            )?;
        }
        if self.params.expect_keyframe_at_start && report.starts_with_keyframe == Some(false) {
            self.event(
                ctx,
                &serde_json::json!({
                    "type": "ts-analyzer.warning",
                    "seq": report.seq,
                    "reason": "segment does not start with a keyframe",
                }),
            )?;
        }
        if self.params.data {
            ctx.publish_data_json(&report)?;
        }
        Ok(())
    }

    /// Applies a params update (a JSON merge patch); the new params take effect at once.
    fn on_control(&mut self, ctx: &Context<'_>, message: &str) -> Result<(), Error> {
        let params = params::merge(&self.params, message)?.validate()?;
        self.analyzer.set_max_error_samples(params.max_error_samples);
        self.params = params;
        self.event(ctx, &serde_json::json!({"type": "ts-analyzer.params", "params": self.params}))
    }

    fn close(&mut self, ctx: &Context<'_>) -> Result<(), Error> {
        self.event(ctx, &serde_json::json!({"type": "ts-analyzer.summary", "totals": self.totals}))
    }
}

byoc_sdk::export!(TsAnalyzer);
