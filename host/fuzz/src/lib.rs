//! Helpers the fuzz targets share: cutting an input into chunks the way a socket delivers bytes, and a
//! runtime whose clock moves only when every task waits.
//!
//! Targets that read a byte format (TS, FLV, RTMP, SDP, JSON, TOML) take the raw bytes, behind a byte
//! or two of settings at most, so that seeds are real files and libFuzzer's mutations work on the
//! format itself.

/// Splits `data` into chunks of 1 to 1024 bytes, sizes drawn from `seed`. The same bytes in any chunking
/// must give the same result: that is what the chunked targets check.
pub fn chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        // xorshift32
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = match state % 4 {
            0 => 1 + state as usize % 8,
            1 => 188,
            _ => 1 + state as usize % 1024,
        };
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        out.push(chunk);
        rest = tail;
    }
    out
}

/// A current-thread tokio runtime with paused time: a timer fires as soon as every task waits, so a
/// deadline of minutes costs nothing and a run does not depend on how fast the machine is.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().expect("tokio runtime")
}

/// Whether the packet walker never loses sync in `data` (no garbage between packets). After garbage,
/// where the reader picks up again depends on where a chunk ends (a sync byte near the end of a chunk
/// cannot be confirmed by the next one), so the chunked targets compare chunkings only for such streams.
pub fn in_sync(data: &[u8]) -> bool {
    byoc_ts::packets(data).all(|p| !matches!(p, Err(byoc_ts::TsError::LostSync { .. })))
}

/// Lets a panic raised inside one of `crates` (a function of it on the panicking stack, e.g.
/// `"rml_rtmp"`) unwind to the `catch_unwind` our code puts around that crate, printing each new place
/// once; any other panic aborts as libFuzzer's hook does. libFuzzer's hook aborts on every panic, caught
/// or not, so without this a panic the server contains would count as a crash. Call once per process.
pub fn contain_panics_in(crates: &'static [&'static str]) {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let abort_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        if crates.iter().any(|c| trace.contains(&format!("{c}::")) || trace.contains(&format!("/{c}-"))) {
            let place = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
            if seen.get_or_insert_with(HashSet::new).insert(place) {
                eprintln!("contained panic (caught by our code): {info}");
            }
            return;
        }
        abort_hook(info);
    }));
}
