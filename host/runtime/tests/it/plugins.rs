//! The real plugins of `plugins/`, run on real wasmtime: describe, sessions and batch calls.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::*;
use byoc_runtime::{CallError, CapabilityError, PluginOperatorConfig, Request, ResponseBody, Runtime, RuntimeConfig};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("plugins/ts-analyzer/tests/fixtures").join(name)).unwrap()
}

#[tokio::test]
async fn describes_every_real_plugin_and_matches_its_manifest() -> TestResult {
    let runtime = Runtime::load(plugins_dir(), config()).await?;
    let names: Vec<String> = runtime.plugins().iter().map(|p| p.name().to_owned()).collect();
    assert_eq!(
        names,
        ["http-adapter", "motion-detector", "passthrough", "text-transform", "ts-analyzer", "video-effects"]
    );
    for plugin in runtime.plugins() {
        let info = plugin.describe();
        assert_eq!(plugin.manifest().name, None, "identity comes from describe() only");
        assert!(!info.description.is_empty());
        assert!(!info.version.is_empty());
    }
    let passthrough = runtime.plugin("passthrough").unwrap();
    let legs = passthrough.describe().legs;
    assert!(legs.video_in && legs.video_out && !legs.data && !legs.events);
    let text = runtime.plugin("text-transform").unwrap();
    assert!(text.describe().legs.data && !text.describe().legs.video_in);
    assert!(text.describe().params_schema.is_some());
    Ok(())
}

#[tokio::test]
async fn passthrough_returns_real_mpeg_ts_byte_exact_chunk_by_chunk() -> TestResult {
    let runtime = Runtime::load(plugins_dir(), config()).await?;
    let plugin = runtime.plugin("passthrough").unwrap();
    let (mut session, outputs) = plugin.open_session("{}").await?;
    let inputs = [fixture("h264-aac-2s.ts"), fixture("hevc-opus-1s.ts")];
    let reader = tokio::spawn(collect(outputs));
    for (i, segment) in inputs.iter().enumerate() {
        session.on_segment_start(100 + i as u64).await?;
        // Odd chunk sizes: boundaries not aligned to 188-byte packets.
        for chunk in segment.chunks(7001) {
            session.on_chunk(chunk).await?;
        }
        session.on_segment_end().await?;
    }
    session.close().await?;
    let outputs = reader.await?;
    let segments = segments(&outputs);
    assert_eq!(segments.len(), 2);
    for (i, (seq, bytes, complete)) in segments.iter().enumerate() {
        assert_eq!(*seq, i as u64, "the host numbers output segments 0, 1, …");
        assert!(complete);
        assert!(bytes == &inputs[i], "segment {i} differs from the input");
    }
    Ok(())
}

#[tokio::test]
async fn ts_analyzer_publishes_a_report_per_segment_and_events() -> TestResult {
    let runtime = Runtime::load(plugins_dir(), config()).await?;
    let plugin = runtime.plugin("ts-analyzer").unwrap();
    let (mut session, outputs) = plugin.open_session("{}").await?;
    let reader = tokio::spawn(collect(outputs));
    session.on_segment(0, &fixture("h264-aac-2s.ts")).await?;
    session.on_segment(1, &fixture("hevc-opus-1s.ts")).await?;
    session.close().await?;
    let outputs = reader.await?;

    let reports: Vec<serde_json::Value> =
        data_lines(&outputs).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(reports.len(), 2, "one data line per segment");
    let text = reports[0].to_string();
    assert!(text.contains("256") && text.contains("257"), "reports name the PIDs: {text}");
    let types: Vec<String> = events(&outputs).iter().map(|e| e["type"].as_str().unwrap_or("").to_owned()).collect();
    assert!(types.contains(&"ts-analyzer.streams".to_owned()), "{types:?}");
    assert!(types.contains(&"ts-analyzer.summary".to_owned()), "{types:?}");
    Ok(())
}

#[tokio::test]
async fn text_transform_serves_batch_calls_and_live_control() -> TestResult {
    let runtime = Runtime::load(plugins_dir(), config()).await?;
    let plugin = runtime.plugin("text-transform").unwrap();

    let response = plugin.process(&Request::new("/upper", "text/plain", &b"hello wasm"[..])).await?;
    assert_eq!(response.status, 200);
    let ResponseBody::Bytes(body) = &response.body else { panic!("expected a body") };
    assert!(String::from_utf8_lossy(body).contains("HELLO WASM"));
    let missing = plugin.process(&Request::new("/nope", "text/plain", &b"x"[..])).await;
    assert!(matches!(missing, Err(CallError::Plugin(CapabilityError::NotFound(_)))), "{missing:?}");

    let (mut session, outputs) = plugin.open_session(r#"{"mode":"upper"}"#).await?;
    let reader = tokio::spawn(collect(outputs));
    session.on_control(r#"{"mode":"lower","text":"ABC Def"}"#).await?;
    let bad = session.on_control(r#"{"mode":"sideways"}"#).await;
    assert!(matches!(bad, Err(CallError::Plugin(CapabilityError::InvalidParams(_)))), "{bad:?}");
    // A returned error does not end the session.
    session.on_control(r#"{"text":"XYZ"}"#).await?;
    session.close().await?;
    let outputs = reader.await?;
    let lines = data_lines(&outputs).join("\n");
    assert!(lines.contains("abc def") && lines.contains("xyz"), "{lines}");
    assert!(!events(&outputs).is_empty());
    Ok(())
}

/// A minimal worker for `http-adapter` on loopback; counts the requests it receives.
async fn worker(hits: Arc<AtomicUsize>) -> std::net::SocketAddr {
    use axum::routing::post;
    let count = |hits: Arc<AtomicUsize>| {
        move || {
            hits.fetch_add(1, Ordering::SeqCst);
        }
    };
    let h = hits.clone();
    let app = axum::Router::new()
        .route(
            "/echo",
            post(move |body: axum::body::Bytes| {
                count(h.clone())();
                async move { ([("content-type", "text/plain")], format!("worker got {} bytes", body.len())) }
            }),
        )
        .route(
            "/session",
            post({
                let h = hits.clone();
                move || {
                    count(h.clone())();
                    async { ([("content-type", "application/json")], r#"{"id":"s1"}"#) }
                }
            }),
        )
        .route(
            "/session/s1/segment",
            post({
                let h = hits.clone();
                move |body: axum::body::Bytes| {
                    count(h.clone())();
                    async move { ([("content-type", "video/mp2t")], body) }
                }
            }),
        )
        .route(
            "/session/s1/close",
            post({
                let h = hits.clone();
                move || {
                    count(h.clone())();
                    async { ([("content-type", "application/json")], r#"{"events":[{"type":"worker.closed"}]}"#) }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn adapter_runtime_config(worker_url: String) -> RuntimeConfig {
    let mut config = config();
    config.operator.plugins.insert(
        "http-adapter".into(),
        PluginOperatorConfig { config: BTreeMap::from([("worker_url".into(), worker_url)]), ..Default::default() },
    );
    config
}

#[tokio::test]
async fn http_adapter_reaches_a_granted_worker_and_is_denied_elsewhere() -> TestResult {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = worker(hits.clone()).await;
    let dir = scratch("http-adapter");
    copy_plugin(&plugins_dir().join("http-adapter"), &dir);
    grant_hosts(&dir, &[format!("127.0.0.1:{}", addr.port())]);

    // Granted: batch and a stream go through the worker.
    let runtime = Runtime::new(adapter_runtime_config(format!("http://{addr}")))?;
    let plugin = runtime.load_plugin(&dir).await?;
    let response = plugin.process(&Request::new("/echo", "application/octet-stream", vec![1u8; 1000])).await?;
    let ResponseBody::Bytes(body) = &response.body else { panic!("expected a body") };
    assert_eq!(String::from_utf8_lossy(body), "worker got 1000 bytes");

    let (mut session, outputs) = plugin.open_session("{}").await?;
    let reader = tokio::spawn(collect(outputs));
    let segment = fixture("h264-aac-2s.ts");
    session.on_segment(0, &segment).await?;
    session.close().await?;
    let outputs = reader.await?;
    let segments = segments(&outputs);
    assert_eq!(segments.len(), 1);
    assert!(segments[0].1 == segment, "the worker's answer is published as the output segment");
    assert!(events(&outputs).iter().any(|e| e["type"] == "worker.closed"));
    let granted_hits = hits.load(Ordering::SeqCst);
    assert_eq!(granted_hits, 4);

    // Not granted: the same worker under another authority (`localhost`) is refused by the
    // host before any connection.
    let runtime = Runtime::new(adapter_runtime_config(format!("http://localhost:{}", addr.port())))?;
    let plugin = runtime.load_plugin(&dir).await?;
    let denied = plugin.process(&Request::new("/echo", "text/plain", &b"x"[..])).await;
    assert!(matches!(denied, Err(CallError::Plugin(CapabilityError::Denied(_)))), "{denied:?}");
    let refused = plugin.open_session("{}").await;
    assert!(matches!(refused, Err(CallError::Plugin(CapabilityError::Denied(_)))), "{refused:?}");
    assert_eq!(hits.load(Ordering::SeqCst), granted_hits, "no request reached the worker");

    // The operator narrows: the manifest grants the port, the operator's allowlist does not.
    let mut config = adapter_runtime_config(format!("http://{addr}"));
    config.operator.outbound_hosts = Some(vec!["127.0.0.1:1".into()]);
    let plugin = Runtime::new(config)?.load_plugin(&dir).await?;
    assert!(plugin.grants().outbound_hosts.is_empty());
    let denied = plugin.process(&Request::new("/echo", "text/plain", &b"x"[..])).await;
    assert!(matches!(denied, Err(CallError::Plugin(CapabilityError::Denied(_)))), "{denied:?}");
    assert_eq!(hits.load(Ordering::SeqCst), granted_hits);
    Ok(())
}
