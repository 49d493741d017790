//! The gateway console as a person uses it: headless Chromium, driven over the DevTools Protocol,
//! opens the gateway's root page, starts a `passthrough` stream from the form, publishes its fake
//! camera, watches the output decode, sees the stream's events, shares the viewer link (a second
//! page that can watch but not control), updates the params and stops; then starts a `ts-analyzer`
//! stream, which shows data lines and no video box; on a gateway with an API key, it asks for the key
//! and lists and starts with it. A screenshot of each step is kept in
//! `target/console-screenshots/` and checked not to be blank.
//!
//! Runs in a network namespace of its own, as the `browser` test does (and is skipped as it is).

use std::path::Path;

use serde_json::Value;

use crate::browser::{MEDIA_ADDR, chromium, in_network_namespace};
use crate::cdp::{Browser, Page, not_blank, screenshot_dir};
use crate::common;

#[test]
fn the_console_starts_publishes_watches_updates_and_stops_streams() {
    in_network_namespace("console::the_console_starts_publishes_watches_updates_and_stops_streams", 240, run);
}

/// Takes the screenshot `name` and checks that it shows something.
async fn shot(page: &Page<'_>, dir: &Path, name: &str) {
    let path = dir.join(format!("{name}.png"));
    let png = page.screenshot(&path).await;
    assert!(not_blank(&png, &path), "the screenshot {} is blank", path.display());
}

/// Whether the element `id` is shown.
fn shown(id: &str) -> String {
    format!("(() => {{ const e = document.getElementById('{id}'); return !!e && e.offsetParent !== null; }})()")
}

/// Clicks the element `id`.
fn click(id: &str) -> String {
    format!("document.getElementById('{id}').click()")
}

/// The text of the element `id`.
fn text(id: &str) -> String {
    format!("document.getElementById('{id}').textContent")
}

async fn run() {
    let nodes = common::media_nodes(format!("{MEDIA_ADDR}:0").parse().unwrap()).await;
    let dir = screenshot_dir("console");
    let browser = Browser::launch(chromium().unwrap()).await;
    let page = browser.open(&format!("{}/", nodes.url)).await;

    // The capability list, with what each offers.
    let passthrough = "document.querySelector('input[name=cap][value=passthrough]')";
    page.wait_for("the capability list", passthrough, 30, &dir).await;
    let card = page.eval("document.querySelector('.cap[data-cap=passthrough]').innerText").await;
    let card = card.as_str().unwrap();
    assert!(card.contains("video in") && card.contains("video out") && card.contains("free"), "{card}");
    shot(&page, &dir, "01-capabilities").await;

    // Start a passthrough stream from the form.
    page.eval(&format!("{passthrough}.click()")).await;
    page.wait_for("the start button", "!document.getElementById('start').disabled", 10, &dir).await;
    page.eval(&click("start")).await;
    page.wait_for("the stream to run", &format!("{} === 'running'", text("state")), 30, &dir).await;
    assert!(page.eval(&shown("output-pane")).await.as_bool().unwrap(), "passthrough has video out");
    assert!(page.eval(&shown("whip-box")).await.as_bool().unwrap(), "passthrough has video in");
    let orchestrator = page.eval(&text("orchestrator")).await;
    assert!(orchestrator.as_str().unwrap().starts_with("http://127.0.0.1:"), "{orchestrator}");
    shot(&page, &dir, "02-started").await;

    // Publish the camera; the output (watched from the start) decodes frames.
    page.eval(&click("publish")).await;
    let decoded = "window.byocConsole.stats().then((s) => s.whep && s.whep.frames_decoded > 30)";
    page.wait_for("decoded output frames", decoded, 60, &dir).await;
    page.wait_for("the output video to play", "document.getElementById('remote').currentTime > 1", 20, &dir).await;
    // The stats are readable values, not a dump.
    let stats = "document.getElementById('play-stats').innerText";
    page.wait_for("the output's stats", &format!("/\\d+ fps/.test({stats}) && /bit\\/s/.test({stats})"), 10, &dir)
        .await;
    let pub_stats = page.eval("document.getElementById('pub-stats').innerText").await;
    assert!(pub_stats.as_str().unwrap().contains("frames sent"), "{pub_stats}");
    shot(&page, &dir, "03-publishing-and-watching").await;

    // The stream's events arrive in the events pane.
    let started = format!("{}.includes('stream_started')", text("events"));
    page.wait_for("the stream_started event", &started, 20, &dir).await;
    shot(&page, &dir, "04-events").await;

    // The secrets and what each does; the viewer link opens a view that watches but cannot control.
    let urls = page.eval("window.byocConsole.stream().urls").await;
    let viewer = urls["viewer_token"].as_str().unwrap_or_default().to_string();
    assert!(!viewer.is_empty(), "start hands out a viewer token: {urls}");
    assert_eq!(page.eval(&text("viewer-token")).await, viewer.as_str());
    assert_eq!(page.eval(&text("stream-secret")).await, urls["stream_secret"]);
    let link = page.eval(&text("viewer-link")).await.as_str().unwrap().to_string();
    assert!(link.ends_with(&format!("/player?token={viewer}")), "{link}");
    let view = browser.open(&link).await;
    view.wait_for("the viewer's page", &format!("{} === 'running'", text("state")), 30, &dir).await;
    let access = view.eval(&text("access")).await;
    assert!(access.as_str().unwrap().contains("viewer token"), "{access}");
    for control in ["stop", "publish", "update-pane", "secret-control-row"] {
        assert!(!view.eval(&shown(control)).await.as_bool().unwrap(), "the viewer sees #{control}");
    }
    let decoded = "window.byocConsole.stats().then((s) => s.whep && s.whep.frames_decoded > 10)";
    view.wait_for("the viewer's decoded frames", decoded, 40, &dir).await;
    shot(&view, &dir, "05-viewer").await;

    // The control link (the one-stream page with the control secret) shows both secrets and the RTMP
    // URL to publish to.
    let control = format!("{}?token={}", link.split('?').next().unwrap(), urls["stream_secret"].as_str().unwrap());
    let ctl = browser.open(&format!("{control}&play=0")).await;
    ctl.wait_for("the control page", &format!("{} === 'running'", text("state")), 30, &dir).await;
    assert_eq!(ctl.eval(&text("viewer-token")).await, viewer.as_str());
    assert!(ctl.eval(&shown("stop")).await.as_bool().unwrap());
    let rtmp = ctl.eval(&text("rtmp-url")).await;
    assert_eq!(rtmp, urls["rtmp_url"], "the RTMP URL to publish to");
    let watching = ctl.eval("document.getElementById('remote').srcObject !== null").await;
    assert_eq!(watching, false, "play=0: the page does not watch");

    // Update the params live.
    page.eval(&click("update")).await;
    page.wait_for("the update's answer", &format!("{}.startsWith('updated')", text("update-result")), 20, &dir).await;
    shot(&page, &dir, "06-updated").await;

    // Stop: the page shows the end, the viewer's page too, and the stream's routes say it ended.
    page.eval(&click("stop")).await;
    page.wait_for("the end", &format!("{} === 'ended'", text("state")), 20, &dir).await;
    view.wait_for("the end in the viewer's page", &format!("{} === 'ended'", text("state")), 20, &dir).await;
    let status = common::http().get(urls["status_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(status.status(), 410);
    shot(&page, &dir, "07-stopped").await;

    // A ts-analyzer stream: params from its schema, data lines, no video box.
    let analyzer = "document.querySelector('input[name=cap][value=\"ts-analyzer\"]')";
    page.eval(&format!("{analyzer}.click()")).await;
    let field = "document.getElementById('params-field-max_error_samples')";
    page.wait_for("the params form", &format!("{field} && {field}.value === '5'"), 10, &dir).await;
    page.eval(&format!("{field}.value = '3'")).await;
    page.wait_for("the start button", "!document.getElementById('start').disabled", 10, &dir).await;
    page.eval(&click("start")).await;
    page.wait_for("the analyzer to run", &format!("{} === 'running'", text("state")), 30, &dir).await;
    assert!(!page.eval(&shown("output-pane")).await.as_bool().unwrap(), "ts-analyzer has no video out");
    let videos = "[...document.querySelectorAll('video')].filter((v) => v.offsetParent !== null).length";
    assert_eq!(page.eval(videos).await, 1, "the camera only");
    assert!(page.eval(&shown("data-pane")).await.as_bool().unwrap());
    page.eval(&click("publish")).await;
    let lines = format!("{}.includes('keyframes')", text("data"));
    page.wait_for("data lines", &lines, 60, &dir).await;
    let status: Value = page.eval("fetch(window.byocConsole.stream().urls.status_url).then((r) => r.json())").await;
    assert_eq!(status["params"]["max_error_samples"], 3, "{status}");
    shot(&page, &dir, "08-ts-analyzer").await;
    page.eval(&click("stop")).await;
    page.wait_for("the analyzer's end", &format!("{} === 'ended'", text("state")), 20, &dir).await;
    shot(&page, &dir, "09-ts-analyzer-stopped").await;

    // A gateway with an API key: the console asks for it, lists with it and starts with it.
    let keyed = common::media_nodes_with(format!("{MEDIA_ADDR}:0").parse().unwrap(), |c| {
        c.api_key = Some("console-key".into())
    })
    .await;
    let page = browser.open(&format!("{}/", keyed.url)).await;
    page.wait_for("the API key field", &shown("api-key-row"), 30, &dir).await;
    page.eval("document.getElementById('api-key').value = 'wrong'").await;
    page.eval(&click("api-key-use")).await;
    page.wait_for("the refusal", &format!("{}.includes('refused')", text("capabilities")), 20, &dir).await;
    shot(&page, &dir, "10-api-key").await;
    page.eval("document.getElementById('api-key').value = 'console-key'").await;
    page.eval(&click("api-key-use")).await;
    page.wait_for("the list, with the key", passthrough, 20, &dir).await;
    assert!(!page.eval(&shown("api-key-row")).await.as_bool().unwrap());
    page.eval(&format!("{passthrough}.click()")).await;
    page.wait_for("the start button", "!document.getElementById('start').disabled", 10, &dir).await;
    page.eval(&click("start")).await;
    page.wait_for("the keyed stream to run", &format!("{} === 'running'", text("state")), 30, &dir).await;
    page.eval(&click("stop")).await;
    page.wait_for("the keyed stream's end", &format!("{} === 'ended'", text("state")), 20, &dir).await;

    let errors: Vec<String> = browser.log().into_iter().filter(|l| l.starts_with("uncaught")).collect();
    assert!(errors.is_empty(), "the page threw: {errors:#?}");
    browser.close().await;
}
