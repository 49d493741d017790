//! Containment: a hostile plugin (tests/hostile) traps, spins, hoards memory, floods output
//! and calls forbidden hosts. Each breach fails only its own session, with the expected typed
//! error, and the runtime goes on serving other sessions.

use std::time::Duration;

use crate::common::*;
use byoc_runtime::{CallError, CapabilityError, Plugin, Request, Runtime};

async fn hostile() -> (Runtime, Plugin) {
    let runtime = Runtime::load(hostile_dir(), config()).await.unwrap();
    let plugin = runtime.plugin("hostile").unwrap();
    (runtime, plugin)
}

/// A fresh session on the current code still works: the runtime was not harmed.
async fn still_serves(runtime: &Runtime) {
    let plugin = runtime.plugin("hostile").unwrap();
    let (mut session, mut outputs) = plugin.open_session("").await.unwrap();
    session.on_control("echo ok").await.unwrap();
    assert_eq!(data_lines(&drain(&mut outputs)), ["0.1.0:ok"]);
    session.close().await.unwrap();
}

/// Runs `command` on a new session next to a healthy one, and checks that only the hostile
/// one failed, that it stays failed, and that the healthy one goes on.
async fn contained(command: &str) -> CallError {
    let (runtime, plugin) = hostile().await;
    let (mut bystander, mut bystander_out) = plugin.open_session("").await.unwrap();
    let (mut session, _outputs) = plugin.open_session("").await.unwrap();

    let error = session.on_control(command).await.unwrap_err();
    assert!(error.is_failure(), "{error:?}");
    let again = session.on_control("echo after").await.unwrap_err();
    assert!(matches!(again, CallError::SessionFailed(_)), "{again:?}");
    assert_eq!(session.failure(), Some(&error));

    bystander.on_control("echo bystander").await.unwrap();
    assert_eq!(data_lines(&drain(&mut bystander_out)), ["0.1.0:bystander"]);
    still_serves(&runtime).await;
    error
}

#[tokio::test]
async fn a_trap_fails_only_its_session() {
    let error = contained("trap").await;
    assert!(matches!(error, CallError::Trap(_)), "{error:?}");
}

#[tokio::test]
async fn an_infinite_loop_hits_the_call_deadline() {
    let error = contained("loop").await;
    assert_eq!(error, CallError::Timeout(Duration::from_millis(500)));
}

/// With no call for a second the epoch ticker sleeps (an idle node should not wake 100 times a
/// second); the next call must wake it, or a spinning guest would never be stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_after_an_idle_spell_still_hits_the_call_deadline() {
    let (runtime, plugin) = hostile().await;
    let (mut session, _outputs) = plugin.open_session("").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // On a task of its own: if the guest were never stopped, this task's thread would spin for
    // ever, and the test still ends (failing) on the other one.
    let call = tokio::spawn(async move { session.on_control("loop").await });
    let error = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the spinning guest was never stopped")
        .unwrap()
        .unwrap_err();
    assert_eq!(error, CallError::Timeout(Duration::from_millis(500)));
    still_serves(&runtime).await;
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_cap() {
    let error = contained("memory").await;
    assert_eq!(error, CallError::MemoryLimit { limit_bytes: 16 * 1024 * 1024 });
}

#[tokio::test]
async fn an_output_flood_hits_the_output_cap_and_is_cut() {
    let (runtime, plugin) = hostile().await;
    let (mut session, mut outputs) = plugin.open_session("").await.unwrap();
    let reader = tokio::spawn(async move {
        let mut bytes = 0;
        while let Some(output) = outputs.recv().await {
            if let byoc_runtime::Output::Event(e) = output {
                bytes += e.len();
            }
        }
        bytes
    });
    let error = session.on_control("flood").await.unwrap_err();
    assert_eq!(error, CallError::OutputLimit { limit_bytes: 65536 });
    drop(session);
    let delivered = reader.await.unwrap();
    assert!(delivered <= 65536, "output is cut at the cap: {delivered} bytes delivered");
    assert!(delivered > 60_000, "output up to the cap is delivered: {delivered}");
    still_serves(&runtime).await;
}

#[tokio::test]
async fn a_forbidden_host_is_denied_without_failing_the_session() {
    let (runtime, plugin) = hostile().await;
    let (mut session, mut outputs) = plugin.open_session("").await.unwrap();
    // A live server the plugin is not granted: the request must not reach it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let denied = session.on_control(&format!("http http://127.0.0.1:{port}/")).await;
    assert!(matches!(denied, Err(CallError::Plugin(CapabilityError::Denied(_)))), "{denied:?}");
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "the host made no connection");
    // Other schemes, hosts and ports are refused the same way.
    for url in ["https://example.com/", "http://127.0.0.1:2/", "http://localhost:1/"] {
        let denied = session.on_control(&format!("http {url}")).await;
        assert!(matches!(denied, Err(CallError::Plugin(CapabilityError::Denied(_)))), "{url}: {denied:?}");
    }
    // A denied request is the plugin's error, not a failure: the session goes on.
    session.on_control("echo still here").await.unwrap();
    assert_eq!(data_lines(&drain(&mut outputs)), ["0.1.0:still here"]);
    session.close().await.unwrap();
    still_serves(&runtime).await;
}

#[tokio::test]
async fn a_granted_host_that_never_answers_hits_the_wall_clock_deadline() -> TestResult {
    // Accepts connections and never answers: the guest is parked in a host call, where epochs
    // cannot interrupt it; the outer timeout must.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let dir = scratch("hostile-silent");
    copy_plugin(&hostile_dir().join("hostile"), &dir);
    grant_hosts(&dir, &[format!("127.0.0.1:{}", addr.port())]);
    let runtime = Runtime::new(config())?;
    let plugin = runtime.load_plugin(&dir).await?;
    let (mut session, _outputs) = plugin.open_session("").await?;
    let started = std::time::Instant::now();
    let error = session.on_control(&format!("http http://{addr}/")).await.unwrap_err();
    assert_eq!(error, CallError::Timeout(Duration::from_millis(500)));
    assert!(started.elapsed() < Duration::from_secs(10));
    silent.abort();
    Ok(())
}

#[tokio::test]
async fn restart_session_reopens_with_backoff_up_to_max_restarts() {
    let (_runtime, plugin) = hostile().await;
    let (mut session, mut outputs) = plugin.open_session("").await.unwrap();
    // The manifest allows 2 restarts.
    for round in 0..2 {
        session.on_segment_start(round).await.unwrap();
        session.on_chunk(b"partial").await.unwrap();
        assert!(matches!(session.on_control("trap").await, Err(CallError::Trap(_))));
        assert!(session.restart_delay().is_some());
        session.restart().await.unwrap();
        assert_eq!(session.restarts(), round as u32 + 1);
        session.on_control("echo back").await.unwrap();
    }
    let out = drain(&mut outputs);
    let segs = segments(&out);
    assert_eq!(segs.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1], "output seqs continue across restarts");
    assert!(segs.iter().all(|s| s.2), "a segment cut by a failure is ended by the host");
    assert_eq!(data_lines(&out), ["0.1.0:back", "0.1.0:back"]);

    assert!(matches!(session.on_control("trap").await, Err(CallError::Trap(_))));
    assert_eq!(session.restart_delay(), None);
    assert!(matches!(session.restart().await, Err(CallError::RestartRefused(_))));
}

#[tokio::test]
async fn batch_calls_are_contained_too() {
    let (runtime, plugin) = hostile().await;
    let spun = plugin.process(&Request::new("/loop", "", Vec::new())).await;
    assert_eq!(spun, Err(CallError::Timeout(Duration::from_millis(500))));
    let trapped = plugin.process(&Request::new("/trap", "", Vec::new())).await;
    assert!(matches!(trapped, Err(CallError::Trap(_))), "{trapped:?}");
    let echoed = plugin.process(&Request::new("/", "", &b"fine"[..])).await.unwrap();
    assert_eq!(echoed.body, byoc_runtime::ResponseBody::Bytes("fine".into()));
    still_serves(&runtime).await;
}

#[tokio::test]
async fn a_trap_while_opening_is_reported_and_contained() {
    let (runtime, plugin) = hostile().await;
    let opened = plugin.open_session("trap-on-open").await;
    assert!(matches!(opened, Err(CallError::Trap(_))), "{:?}", opened.err());
    still_serves(&runtime).await;
}

#[tokio::test]
async fn closing_a_session_ends_its_outputs_and_frees_its_slot() {
    let (runtime, plugin) = hostile().await;
    // More sessions in sequence than the pool has slots: each close must free its slot.
    for i in 0..40 {
        let (mut session, mut outputs) = plugin.open_session("").await.unwrap();
        session.on_control(&format!("echo {i}")).await.unwrap();
        session.close().await.unwrap();
        assert_eq!(outputs.recv().await, Some(byoc_runtime::Output::Data(format!("0.1.0:{i}"))));
        assert_eq!(outputs.recv().await, None, "the output stream ends with the session");
    }
    still_serves(&runtime).await;
}

#[tokio::test]
async fn the_file_system_is_only_the_granted_directories_read_only() -> TestResult {
    let dir = scratch("hostile-fs");
    copy_plugin(&hostile_dir().join("hostile"), &dir);
    std::fs::create_dir_all(dir.join("data"))?;
    std::fs::write(dir.join("data/hello.txt"), "hello from the host")?;
    let manifest = std::fs::read_to_string(dir.join("manifest.toml"))?;
    std::fs::write(dir.join("manifest.toml"), manifest.replace("read_only_dirs = []", "read_only_dirs = [\"data\"]"))?;

    let runtime = Runtime::new(config())?;
    let plugin = runtime.load_plugin(&dir).await?;
    let (mut session, mut outputs) = plugin.open_session("").await?;
    session.on_control("read data/hello.txt").await?;
    session.on_control("env").await?;
    assert_eq!(data_lines(&drain(&mut outputs)), ["hello from the host", "0"]);
    for command in ["write data/new.txt", "read manifest.toml", "read /etc/hostname", "read ../manifest.toml"] {
        let refused = session.on_control(command).await;
        assert!(matches!(refused, Err(CallError::Plugin(CapabilityError::Denied(_)))), "{command}: {refused:?}");
    }
    assert!(!dir.join("data/new.txt").exists());

    // Without the grant, nothing is visible.
    let (mut bare, _outputs) = hostile().await.1.open_session("").await?;
    let refused = bare.on_control("read data/hello.txt").await;
    assert!(matches!(refused, Err(CallError::Plugin(CapabilityError::Denied(_)))), "{refused:?}");
    Ok(())
}
