//! The gateway console: one browser page (`console.html`: HTML, CSS and script, no build step,
//! nothing fetched from elsewhere). At `GET /` it lists the capabilities, starts a stream and runs
//! it (camera, output, events, data, stats, update, stop); at `GET /process/stream/{id}/player` it
//! shows that one stream with what the request's token allows.
//!
//! The page holds no secret: the start form's answer, or the `token` of its own URL, stays in the
//! page's memory. It is served with a Content-Security-Policy that lets it talk to this gateway only,
//! no referrer (its URL may carry a stream's secret) and no caching.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;

use crate::auth::authorized;
use crate::error::ApiError;
use crate::model::Access;
use crate::state::Gateway;
use crate::urls::{Served, rtmp_ingest_url, rtmp_play_url};

/// The page.
const PAGE: &str = include_str!("console.html");

/// The tag the one-stream view fills with the stream's legs (a space-separated list).
const LEGS_TAG: &str = r#"<meta name="byoc-stream" content="">"#;

/// Inline script and style only; requests to this gateway only; media from the page's own streams.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; \
                   media-src 'self' blob: mediastream:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn page(html: String) -> Response {
    (
        [
            (http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (http::header::CONTENT_SECURITY_POLICY, CSP),
            // The URL may carry a stream's secret: never hand it to another origin.
            (http::header::REFERRER_POLICY, "no-referrer"),
            (http::header::CACHE_CONTROL, "no-store"),
            (http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        html,
    )
        .into_response()
}

/// `GET /`: the console.
pub(crate) async fn console() -> Response {
    page(PAGE.to_string())
}

/// `GET /process/stream/{id}/player`: the console for this stream only. It needs one of the stream's
/// secrets like every per-stream route; the page learns from the stream's status what that secret
/// allows (the viewer token: no publishing, update or stop). The page is told the stream's legs, the
/// RTMP URL that plays its output (it carries the viewer token) and, when the request holds the control
/// secret, the viewer token to share and the RTMP URL to publish to.
pub(crate) async fn player(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    let (stream, access) = authorized(&gw, &id, &h, q.as_deref())?;
    let legs = [
        ("video_in", stream.input_url().is_some()),
        ("video_out", stream.output_url().is_some()),
        ("data", stream.att().urls.data.is_some()),
        ("webrtc", gw.webrtc.get().is_some()),
    ];
    let mut said: Vec<String> = legs.into_iter().filter(|(_, on)| *on).map(|(name, _)| name.to_string()).collect();
    if stream.output_url().is_some()
        && let Some(play) = rtmp_play_url(&Served::by(&gw), &stream.id, &stream.viewer)
    {
        said.push(format!("play={play}"));
    }
    if access == Access::Control {
        // Secrets are hex and URLs have no spaces: the list stays a list of words.
        said.push(format!("viewer={}", stream.viewer));
        if stream.input_url().is_some()
            && let Some(rtmp) = rtmp_ingest_url(&Served::by(&gw), &stream.id, &stream.secret)
        {
            said.push(format!("rtmp={rtmp}"));
        }
    }
    let filled = format!(r#"<meta name="byoc-stream" content="{}">"#, html_attr(&said.join(" ")));
    Ok(page(PAGE.replacen(LEGS_TAG, &filled, 1)))
}

/// `text` made safe inside a double-quoted HTML attribute.
fn html_attr(text: &str) -> String {
    text.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http::{Request, StatusCode};
    use tower::ServiceExt;

    use crate::{Gateway, GatewayConfig, router};

    #[tokio::test]
    async fn the_console_is_one_self_contained_page_with_a_strict_policy() {
        let gw = Gateway::new(GatewayConfig::default()).unwrap();
        let req = Request::builder().uri("/").body(Body::empty()).unwrap();
        let resp = router(gw).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cache-control"], "no-store");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none';") && csp.contains("connect-src 'self'"), "{csp}");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        let page = String::from_utf8(body.to_vec()).unwrap();
        // Nothing is loaded from elsewhere, and no secret is ever stored by the page.
        for absent in ["src=\"http", "href=\"http", "<link", "localStorage", "sessionStorage", "document.cookie"] {
            assert!(!page.contains(absent), "the page has {absent}");
        }
        assert!(page.contains(super::LEGS_TAG));
    }
}
