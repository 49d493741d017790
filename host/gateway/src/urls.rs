//! The URLs `start` hands out, and the client's RTMP destinations.

use http::StatusCode;
use serde_json::{Value, json};

use super::model::GwStream;
use super::{Gateway, Refusal, refuse};
use byoc_protocol::JobParameters;

/// Most `rtmp_output` destinations one stream may push to.
pub(crate) const MAX_RTMP_OUTPUTS: usize = 8;

/// The client's `rtmp_output`: one `rtmp://` or `rtmps://` URL, or several separated by commas.
pub(crate) fn rtmp_destinations(rtmp_output: &str) -> Result<Vec<String>, Refusal> {
    let out: Vec<String> = rtmp_output.split(',').map(str::trim).filter(|d| !d.is_empty()).map(String::from).collect();
    if out.iter().any(|d| !(d.starts_with("rtmp://") || d.starts_with("rtmps://"))) {
        return Err(refuse(StatusCode::BAD_REQUEST, "rtmp_output must be rtmp:// or rtmps:// URLs (comma-separated)"));
    }
    if out.len() > MAX_RTMP_OUTPUTS {
        return Err(refuse(StatusCode::BAD_REQUEST, format!("at most {MAX_RTMP_OUTPUTS} rtmp_output destinations")));
    }
    Ok(out)
}

/// What start answers. `rtmp_output_url` lists, comma-separated as go-livepeer does, where the output
/// goes over RTMP: the client's own `rtmp_output` destinations (pushed to) and the gateway's play URL.
pub(crate) fn stream_urls(gw: &Gateway, s: &GwStream, jp: &JobParameters, rtmp_outputs: &[String]) -> Value {
    let base = format!("{}/process/stream/{}", gw.config.public_url.trim_end_matches('/'), s.id);
    let url = |route: &str| format!("{base}/{route}?token={}", s.secret);
    let when = |on: bool, u: String| if on { u } else { String::new() };
    json!({
        "stream_id": s.id,
        "stream_secret": s.secret,
        "whip_url": when(jp.enable_video_ingress, super::webrtc::url(gw, &base, "whip", &s.secret).unwrap_or_default()),
        "whep_url": when(jp.enable_video_egress, super::webrtc::url(gw, &base, "whep", &s.secret).unwrap_or_default()),
        "rtmp_url": if jp.enable_video_ingress { super::rtmp::ingest_url(gw, &s.id, &s.secret).unwrap_or_default() } else { String::new() },
        "rtmp_output_url": if jp.enable_video_egress {
            rtmp_outputs.iter().cloned().chain(super::rtmp::play_url(gw, &s.id, &s.secret)).collect::<Vec<_>>().join(",")
        } else {
            String::new()
        },
        "player_url": when(
            jp.enable_video_ingress || jp.enable_video_egress,
            super::webrtc::player_url(gw, &base, &s.secret).unwrap_or_default()
        ),
        "update_url": url("update"),
        "status_url": url("status"),
        "stop_url": url("stop"),
        "data_url": when(jp.enable_data_output, url("data")),
        "events_url": url("events"),
        "ingest_url": when(jp.enable_video_ingress, format!("{base}/ingest")),
        "egress_url": when(jp.enable_video_egress, format!("{base}/egress")),
    })
}
