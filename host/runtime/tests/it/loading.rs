//! Loading: validation errors, the AOT cache, hot reload.

use crate::common::*;
use byoc_runtime::{CacheDir, CacheStatus, LoadError, Runtime, RuntimeConfig};

#[tokio::test]
async fn second_load_hits_the_aot_cache() -> TestResult {
    let cache = scratch("aot-cache");
    let cached = RuntimeConfig { cache_dir: CacheDir::At(cache.clone()), ..config() };
    let path = plugins_dir().join("passthrough");
    let first = Runtime::new(cached.clone())?.load_plugin(&path).await?;
    assert_eq!(first.cache_status(), CacheStatus::Miss);
    let second = Runtime::new(cached)?.load_plugin(&path).await?;
    assert_eq!(second.cache_status(), CacheStatus::Hit);
    assert_eq!(first.sha256(), second.sha256());
    // The cached component works.
    let (mut session, mut outputs) = second.open_session("{}").await?;
    session.on_segment(0, &[0x47; 188]).await?;
    assert_eq!(segments(&drain(&mut outputs))[0].1, vec![0x47; 188]);
    let disabled = RuntimeConfig { cache_dir: CacheDir::Disabled, ..config() };
    assert_eq!(Runtime::new(disabled)?.load_plugin(&path).await?.cache_status(), CacheStatus::Disabled);
    Ok(())
}

#[tokio::test]
async fn hot_reload_serves_new_sessions_new_code_and_keeps_running_ones_on_the_old() -> TestResult {
    let dir = scratch("reload").join("hostile");
    copy_plugin(&hostile_dir().join("hostile"), &dir);
    let runtime = Runtime::new(config())?;
    runtime.load_plugin(&dir).await?;
    let (mut old, mut old_out) = runtime.plugin("hostile").unwrap().open_session("").await?;

    // Replace the component as `cargo xtask plugins` does: write aside, then rename.
    std::fs::copy(hostile_dir().join("hostile-v2.wasm"), dir.join("hostile.wasm.tmp"))?;
    std::fs::rename(dir.join("hostile.wasm.tmp"), dir.join("hostile.wasm"))?;
    let reloaded = runtime.reload("hostile").await?;
    assert_eq!(reloaded.describe().version, "0.2.0");
    assert_eq!(runtime.plugin("hostile").unwrap().describe().version, "0.2.0");

    let (mut new, mut new_out) = runtime.plugin("hostile").unwrap().open_session("").await?;
    old.on_control("echo a").await?;
    new.on_control("echo b").await?;
    assert_eq!(data_lines(&drain(&mut old_out)), ["0.1.0:a"], "the running session keeps the old code");
    assert_eq!(data_lines(&drain(&mut new_out)), ["0.2.0:b"], "a new session gets the new code");
    old.close().await?;
    new.close().await?;

    // A broken replacement leaves the working code in service.
    std::fs::write(dir.join("hostile.wasm"), b"not wasm")?;
    assert!(matches!(runtime.reload("hostile").await, Err(LoadError::InvalidComponent { .. })));
    assert_eq!(runtime.plugin("hostile").unwrap().describe().version, "0.2.0");
    Ok(())
}

#[tokio::test]
async fn bad_plugins_are_rejected_with_typed_errors() -> TestResult {
    let base = scratch("bad-plugins");
    let runtime = Runtime::new(config())?;

    let bad_manifest = base.join("bad-manifest");
    copy_plugin(&plugins_dir().join("passthrough"), &bad_manifest);
    std::fs::write(bad_manifest.join("manifest.toml"), "name = \"passthrough\"\n[limits]\nmemory_mib = \"lots\"\n")?;
    assert!(matches!(runtime.load_plugin(&bad_manifest).await, Err(LoadError::Manifest { .. })));

    let garbage = base.join("garbage");
    copy_plugin(&plugins_dir().join("passthrough"), &garbage);
    std::fs::write(garbage.join("passthrough.wasm"), b"\0asm\x01\0\0\0garbage")?;
    assert!(matches!(runtime.load_plugin(&garbage).await, Err(LoadError::InvalidComponent { .. })));

    let misnamed = base.join("misnamed");
    copy_plugin(&plugins_dir().join("passthrough"), &misnamed);
    let manifest = std::fs::read_to_string(misnamed.join("manifest.toml"))?;
    // A legacy `name` field that disagrees with describe() is refused.
    std::fs::write(misnamed.join("manifest.toml"), format!("name = \"other\"\n{manifest}"))?;
    assert!(matches!(runtime.load_plugin(&misnamed).await, Err(LoadError::Describe { .. })));

    let empty = base.join("empty");
    std::fs::create_dir_all(&empty)?;
    assert!(matches!(runtime.load_plugin(&empty).await, Err(LoadError::NoComponent { found: 0, .. })));

    let greedy = base.join("greedy");
    copy_plugin(&plugins_dir().join("passthrough"), &greedy);
    let manifest = std::fs::read_to_string(greedy.join("manifest.toml"))?;
    std::fs::write(greedy.join("manifest.toml"), manifest.replace("memory_mib = 16", "memory_mib = 100000"))?;
    assert!(matches!(runtime.load_plugin(&greedy).await, Err(LoadError::Limits { .. })));

    // Components that are not capability adapters, or not for this WIT version, are told
    // apart before linking.
    for (file, expect_wrong_world) in [("wrong-world.wasm", true), ("future-wit.wasm", false)] {
        let dir = base.join(file.trim_end_matches(".wasm"));
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(hostile_dir().join(file), dir.join(file))?;
        std::fs::copy(hostile_dir().join("hostile/manifest.toml"), dir.join("manifest.toml"))?;
        match runtime.load_plugin(&dir).await {
            Err(LoadError::WrongWorld { reason, .. }) if expect_wrong_world => assert!(reason.contains("adapter")),
            Err(LoadError::IncompatibleVersion { found, .. }) if !expect_wrong_world => {
                assert_eq!(found, "byoc:capability/adapter@0.3.0")
            }
            other => panic!("{file}: unexpected {other:?}"),
        }
    }

    assert!(runtime.plugins().is_empty(), "nothing half-loaded");
    assert!(matches!(runtime.reload("passthrough").await, Err(LoadError::UnknownPlugin(_))));
    Ok(())
}

#[tokio::test]
async fn replacing_plugin_files_is_picked_up_by_reload_changed_and_watch() -> TestResult {
    let base = scratch("reload-changed");
    copy_plugin(&hostile_dir().join("hostile"), &base.join("hostile"));
    let runtime = Runtime::load(&base, config()).await?;
    assert!(runtime.reload_changed().await.is_empty(), "nothing changed yet");

    std::fs::copy(hostile_dir().join("hostile-v2.wasm"), base.join("hostile/hostile.wasm.tmp"))?;
    std::fs::rename(base.join("hostile/hostile.wasm.tmp"), base.join("hostile/hostile.wasm"))?;
    let reloaded = runtime.reload_changed().await;
    assert_eq!(reloaded.len(), 1);
    assert_eq!(reloaded[0].1.as_ref().map(|p| p.describe().version.clone()).ok(), Some("0.2.0".into()));
    assert!(runtime.reload_changed().await.is_empty(), "reloaded once");

    // A plugin directory that appears is loaded by the watcher.
    let watcher = runtime.watch(std::time::Duration::from_millis(20));
    copy_plugin(&plugins_dir().join("passthrough"), &base.join("passthrough"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while runtime.plugin("passthrough").is_none() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(watcher);
    assert!(runtime.plugin("passthrough").is_some());

    // A hidden directory (an installer's staging) is never loaded; once renamed into place, a
    // reload by name loads the new plugin.
    copy_plugin(&plugins_dir().join("text-transform"), &base.join(".text-transform.staging-1"));
    assert!(runtime.reload_changed().await.is_empty(), "hidden directories are skipped");
    std::fs::rename(base.join(".text-transform.staging-1"), base.join("text-transform"))?;
    assert_eq!(runtime.reload("text-transform").await?.name(), "text-transform");
    assert!(matches!(runtime.reload("../passthrough").await, Err(LoadError::UnknownPlugin(_))));
    Ok(())
}
