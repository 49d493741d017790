//! Waiting for a condition instead of sleeping: every wait is bounded and names what it waited for
//! when it times out.

use std::time::{Duration, Instant};

/// How often a condition is asked.
const POLL: Duration = Duration::from_millis(25);

/// Waits until `f` yields a value (asked every 25 ms, at most `limit`) and returns it; panics
/// naming `what` after `limit`.
pub async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, limit: Duration, mut f: impl FnMut() -> F) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(t.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `f` holds, at most `limit`.
pub async fn wait_until_within(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    eventually(what, limit, || std::future::ready(f().then_some(()))).await
}

/// Waits (bounded, 5 s) until `f` holds.
pub async fn wait_until(what: &str, f: impl FnMut() -> bool) {
    wait_until_within(what, Duration::from_secs(5), f).await
}
