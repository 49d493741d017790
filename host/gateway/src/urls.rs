//! The URLs `start` hands out, the client's RTMP destinations, and the RTMP stream keys the gateway's
//! URLs carry: pure functions of what the gateway serves and the stream's id and secret.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::Gateway;
use byoc_protocol::JobParameters;

/// Most `rtmp_output` destinations one stream may push to.
pub(crate) const MAX_RTMP_OUTPUTS: usize = 8;

/// The application part of RTMP URLs (`rtmp://HOST:PORT/live/{stream_id}-{secret}`).
pub(crate) const APP: &str = "live";
/// The suffix of the stream key that plays a stream's output (`…/live/{stream_id}-{secret}-out`).
pub(crate) const PLAY_SUFFIX: &str = "-out";

/// What the gateway serves, as its URLs name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Served<'a> {
    /// The base URL clients reach the gateway at.
    pub(crate) public_url: &'a str,
    /// `host:port` of its RTMP server, if it serves RTMP.
    pub(crate) rtmp: Option<&'a str>,
    /// Whether it serves WebRTC (WHIP, WHEP and the player page).
    pub(crate) webrtc: bool,
}

impl Served<'_> {
    /// What `gw` serves now.
    pub(crate) fn by(gw: &Gateway) -> Served<'_> {
        Served {
            public_url: &gw.config.public_url,
            rtmp: gw.rtmp_public.get().map(String::as_str),
            webrtc: gw.webrtc.get().is_some(),
        }
    }
}

/// The client's `rtmp_output`: one `rtmp://` or `rtmps://` URL, or several separated by commas.
pub(crate) fn rtmp_destinations(rtmp_output: &str) -> Result<Vec<String>, ApiError> {
    let out: Vec<String> = rtmp_output.split(',').map(str::trim).filter(|d| !d.is_empty()).map(String::from).collect();
    if out.iter().any(|d| !(d.starts_with("rtmp://") || d.starts_with("rtmps://"))) {
        return Err(ApiError::bad_request("rtmp_output must be rtmp:// or rtmps:// URLs (comma-separated)"));
    }
    if out.len() > MAX_RTMP_OUTPUTS {
        return Err(ApiError::bad_request(format!("at most {MAX_RTMP_OUTPUTS} rtmp_output destinations")));
    }
    Ok(out)
}

/// The `rtmp_url` of a stream (a publish there feeds it), when the gateway serves RTMP.
pub(crate) fn rtmp_ingest_url(served: &Served, stream_id: &str, secret: &str) -> Option<String> {
    served.rtmp.map(|hostport| format!("rtmp://{hostport}/{APP}/{stream_id}-{secret}"))
}

/// The RTMP URL that plays a stream's output, when the gateway serves RTMP.
pub(crate) fn rtmp_play_url(served: &Served, stream_id: &str, secret: &str) -> Option<String> {
    rtmp_ingest_url(served, stream_id, secret).map(|u| u + PLAY_SUFFIX)
}

/// The stream id and secret an RTMP `app`/`key` names (`live`, `{stream_id}-{secret}`), if any.
pub(crate) fn rtmp_stream_key<'k>(app: &str, key: &'k str) -> Option<(&'k str, &'k str)> {
    (app == APP).then(|| key.rsplit_once('-')).flatten()
}

/// A stream as its URLs name it: its id, control secret and viewer token.
pub(crate) struct Named<'a> {
    pub(crate) id: &'a str,
    pub(crate) secret: &'a str,
    pub(crate) viewer: &'a str,
}

impl<'a> From<&'a crate::model::GwStream> for Named<'a> {
    fn from(s: &'a crate::model::GwStream) -> Named<'a> {
        Named { id: &s.id, secret: &s.secret, viewer: &s.viewer }
    }
}

/// What start answers. The URLs that control the stream (publish, update, stop) carry its control secret;
/// those that only watch carry its viewer token, so they can be shared. `rtmp_output_url` lists,
/// comma-separated as go-livepeer does, where the output goes over RTMP: the client's own `rtmp_output`
/// destinations (pushed to) and the gateway's play URL.
pub(crate) fn stream_urls<'a>(
    served: &Served,
    stream: impl Into<Named<'a>>,
    jp: &JobParameters,
    rtmp_outputs: &[String],
) -> Value {
    let Named { id, secret, viewer } = stream.into();
    let base = format!("{}/process/stream/{id}", served.public_url.trim_end_matches('/'));
    let control = |route: &str| format!("{base}/{route}?token={secret}");
    let watch = |route: &str| format!("{base}/{route}?token={viewer}");
    let when = |on: bool, u: String| if on { u } else { String::new() };
    let webrtc = |u: String| if served.webrtc { u } else { String::new() };
    json!({
        "stream_id": id,
        "stream_secret": secret,
        "viewer_token": viewer,
        "whip_url": when(jp.enable_video_ingress, webrtc(control("whip"))),
        "whep_url": when(jp.enable_video_egress, webrtc(watch("whep"))),
        "rtmp_url": when(jp.enable_video_ingress, rtmp_ingest_url(served, id, secret).unwrap_or_default()),
        "rtmp_output_url": when(
            jp.enable_video_egress,
            rtmp_outputs.iter().cloned().chain(rtmp_play_url(served, id, viewer)).collect::<Vec<_>>().join(","),
        ),
        "player_url": when(jp.enable_video_ingress || jp.enable_video_egress, webrtc(watch("player"))),
        "update_url": control("update"),
        "status_url": watch("status"),
        "stop_url": control("stop"),
        "data_url": when(jp.enable_data_output, watch("data")),
        "events_url": watch("events"),
        "ingest_url": when(jp.enable_video_ingress, format!("{base}/ingest")),
        "egress_url": when(jp.enable_video_egress, format!("{base}/egress")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legs(ingress: bool, egress: bool, data: bool) -> JobParameters {
        JobParameters {
            enable_video_ingress: ingress,
            enable_video_egress: egress,
            enable_data_output: data,
            ..JobParameters::default()
        }
    }

    const ALL: Served = Served { public_url: "http://gw:8937/", rtmp: Some("gw:1935"), webrtc: true };
    const HTTP_ONLY: Served = Served { public_url: "http://gw:8937", rtmp: None, webrtc: false };

    const S1: Named = Named { id: "s1", secret: "sec", viewer: "view" };

    #[test]
    fn every_url_names_the_stream_controls_carry_its_secret_and_watches_its_viewer_token() {
        let urls = stream_urls(&ALL, S1, &legs(true, true, true), &[]);
        let base = "http://gw:8937/process/stream/s1";
        assert_eq!(urls["stream_id"], "s1");
        assert_eq!(urls["stream_secret"], "sec");
        assert_eq!(urls["viewer_token"], "view");
        for route in ["update", "stop", "whip"] {
            assert_eq!(urls[format!("{route}_url")], format!("{base}/{route}?token=sec"), "{route}");
        }
        for route in ["status", "events", "data", "whep", "player"] {
            assert_eq!(urls[format!("{route}_url")], format!("{base}/{route}?token=view"), "{route}");
        }
        assert_eq!(urls["ingest_url"], format!("{base}/ingest"));
        assert_eq!(urls["egress_url"], format!("{base}/egress"));
        assert_eq!(urls["rtmp_url"], "rtmp://gw:1935/live/s1-sec");
        assert_eq!(urls["rtmp_output_url"], "rtmp://gw:1935/live/s1-view-out");
    }

    #[test]
    fn a_leg_not_enabled_or_not_served_has_an_empty_url() {
        let none = stream_urls(&ALL, S1, &legs(false, false, false), &[]);
        for key in ["whip_url", "whep_url", "rtmp_url", "rtmp_output_url", "player_url", "data_url", "ingest_url"] {
            assert_eq!(none[key], "", "{key}");
        }
        assert_eq!(none["egress_url"], "");
        assert_ne!(none["events_url"], "");
        let unserved = stream_urls(&HTTP_ONLY, S1, &legs(true, true, true), &[]);
        for key in ["whip_url", "whep_url", "rtmp_url", "rtmp_output_url", "player_url"] {
            assert_eq!(unserved[key], "", "{key}");
        }
        assert_eq!(unserved["ingest_url"], "http://gw:8937/process/stream/s1/ingest");
    }

    #[test]
    fn rtmp_output_url_lists_the_clients_destinations_then_the_play_url() {
        let dests = vec!["rtmp://a/x".to_string(), "rtmps://b/y".to_string()];
        let urls = stream_urls(&ALL, S1, &legs(false, true, false), &dests);
        assert_eq!(urls["rtmp_output_url"], "rtmp://a/x,rtmps://b/y,rtmp://gw:1935/live/s1-view-out");
        let urls = stream_urls(&HTTP_ONLY, S1, &legs(false, true, false), &dests);
        assert_eq!(urls["rtmp_output_url"], "rtmp://a/x,rtmps://b/y");
    }

    #[test]
    fn rtmp_destinations_are_rtmp_urls_separated_by_commas() {
        assert_eq!(rtmp_destinations("").unwrap(), Vec::<String>::new());
        assert_eq!(rtmp_destinations(" rtmp://a/x , ,rtmps://b/y ").unwrap(), ["rtmp://a/x", "rtmps://b/y"]);
        for bad in ["http://a/x", "rtmp://a/x,file:///etc/passwd", "a"] {
            assert_eq!(rtmp_destinations(bad).unwrap_err().status(), http::StatusCode::BAD_REQUEST, "{bad}");
        }
        let many = ["rtmp://a/x"; MAX_RTMP_OUTPUTS + 1].join(",");
        assert_eq!(rtmp_destinations(&many).unwrap_err().status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(rtmp_destinations(&many[..many.len() - ",rtmp://a/x".len()]).unwrap().len(), MAX_RTMP_OUTPUTS);
    }

    #[test]
    fn an_rtmp_stream_key_is_the_id_then_the_secret_under_live() {
        assert_eq!(rtmp_stream_key("live", "my-stream-sec"), Some(("my-stream", "sec")));
        assert_eq!(rtmp_stream_key("other", "s1-sec"), None);
        assert_eq!(rtmp_stream_key("live", "nosecret"), None);
        let served = ALL;
        let ingest = rtmp_ingest_url(&served, "s1", "sec").unwrap();
        let key = ingest.rsplit('/').next().unwrap();
        assert_eq!(rtmp_stream_key(APP, key), Some(("s1", "sec")));
        let play = rtmp_play_url(&served, "s1", "sec").unwrap();
        assert_eq!(play.strip_suffix(PLAY_SUFFIX), Some(ingest.as_str()));
    }
}
