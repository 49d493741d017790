//! The project's own trickle clients (`byoc_trickle::HttpPublisher` / `HttpSubscriber`) driven
//! with the same segment contents and checks as `trickle_peer.py`, plus plain HTTP calls.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use byoc_trickle::{HttpPublisher, HttpSubscriber, Seq, SeqRequest, SubscriberOptions};
use bytes::Bytes;

/// Segment `seq` of the payload convention shared with `trickle_peer.py`: the 8-byte big-endian
/// seq, then bytes `seq % 251`, `size` bytes in all.
pub fn payload(seq: u64, size: usize) -> Bytes {
    let mut b = vec![(seq % 251) as u8; size];
    if size >= 8 {
        b[..8].copy_from_slice(&seq.to_be_bytes());
    }
    Bytes::from(b)
}

/// What each segment of a test stream must hold.
#[derive(Clone, Debug)]
pub enum Segments {
    /// [`payload`] of this size.
    Payload {
        /// Bytes per segment.
        size: usize,
    },
    /// Segment `i` is the `i`-th file (as `trickle_peer.py --files` sees a directory).
    Files(Arc<Vec<Bytes>>),
}

impl Segments {
    /// The regular files of `dir` in name order, as segments 0, 1, 2...
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .collect();
        names.sort();
        if names.is_empty() {
            bail!("no files in {}", dir.display());
        }
        let files = names.iter().map(|p| std::fs::read(p).map(Bytes::from)).collect::<std::io::Result<Vec<_>>>()?;
        Ok(Segments::Files(Arc::new(files)))
    }

    /// The bytes segment `seq` must hold (`None` past the last file).
    pub fn get(&self, seq: u64) -> Option<Bytes> {
        match self {
            Segments::Payload { size } => Some(payload(seq, *size)),
            Segments::Files(files) => usize::try_from(seq).ok().and_then(|i| files.get(i)).cloned(),
        }
    }

    /// Number of files (`None` for the endless payload stream).
    pub fn file_count(&self) -> Option<usize> {
        match self {
            Segments::Payload { .. } => None,
            Segments::Files(files) => Some(files.len()),
        }
    }
}

/// Publishes `data` as consecutive segments with our `HttpPublisher`, each written in 64 KiB
/// chunks and finished (its `POST` answered) before the next, `interval` apart.
/// Returns the seqs the server reported.
pub async fn publish_all(
    publisher: &mut HttpPublisher,
    data: impl IntoIterator<Item = Bytes>,
    interval: Duration,
) -> Result<Vec<Seq>> {
    let mut seqs = Vec::new();
    for bytes in data {
        if !seqs.is_empty() && !interval.is_zero() {
            tokio::time::sleep(interval).await;
        }
        let mut seg = publisher.next_segment();
        let mut off = 0;
        while off < bytes.len() {
            let end = (off + 65536).min(bytes.len());
            seg.write(bytes.slice(off..end))?;
            off = end;
        }
        let seq = tokio::time::timeout(Duration::from_secs(20), seg.finish())
            .await
            .map_err(|_| anyhow!("POST of segment {} not answered within 20 s", seqs.len()))??;
        seqs.push(seq);
    }
    Ok(seqs)
}

/// When a Rust subscriber stops reading.
#[derive(Clone, Copy, Debug)]
pub enum Until {
    /// After this many segments.
    Count(usize),
    /// After the segment with this seq.
    Seq(u64),
    /// At the end of the stream.
    Eos,
}

/// What a Rust subscriber read.
#[derive(Debug, Default)]
pub struct SubReport {
    /// Segments read.
    pub got: usize,
    /// Segments whose bytes differed from the expected ones (`seq: got/expected bytes`).
    pub bad: Vec<String>,
    /// Places where a seq was not the previous one + 1 (`a->b`).
    pub gaps: Vec<String>,
    /// The first sequence number received, if any.
    pub first: Option<u64>,
    /// The last sequence number received, if any.
    pub last: Option<u64>,
    /// The stream ended (channel closed or gone) before `Until` was reached, or at `Until::Eos`.
    pub ended: bool,
    /// Segments the subscriber reported skipping after a 470.
    pub skipped: u64,
    /// Every segment read, in order.
    pub received: Vec<(u64, Bytes)>,
}

impl SubReport {
    /// Fails unless every segment was right, there was no gap, and nothing was skipped.
    pub fn ensure_clean(&self, who: &str) -> Result<()> {
        if !self.bad.is_empty() || !self.gaps.is_empty() || self.skipped != 0 || self.got == 0 {
            bail!(
                "{who}: got={} bad={:?} gaps={:?} skipped={} first={:?} last={:?}",
                self.got,
                self.bad,
                self.gaps,
                self.skipped,
                self.first,
                self.last
            );
        }
        Ok(())
    }
}

/// Reads a channel with our `HttpSubscriber` from `start` until `until`, checking each segment
/// against `segs`. Fails if `timeout` passes first or the client reports an error.
pub async fn subscribe(
    url: &str,
    start: SeqRequest,
    segs: &Segments,
    until: Until,
    timeout: Duration,
) -> Result<SubReport> {
    let mut sub = HttpSubscriber::new(url, SubscriberOptions { start, ..SubscriberOptions::default() })?;
    let mut r = SubReport::default();
    let read = async {
        loop {
            let done = match until {
                Until::Count(n) => r.got >= n,
                Until::Seq(s) => r.last == Some(s),
                Until::Eos => false,
            };
            if done {
                return Ok::<_, anyhow::Error>(());
            }
            let Some(seg) = sub.next_segment().await? else {
                r.ended = true;
                return Ok(());
            };
            let seq = seg.seq().0;
            match (r.last, start) {
                (Some(last), _) if seq != last + 1 => r.gaps.push(format!("{last}->{seq}")),
                (None, SeqRequest::At(Seq(s))) if seq != s => r.gaps.push(format!("start {s}->{seq}")),
                _ => {}
            }
            let body = seg.read_all().await?;
            match segs.get(seq) {
                Some(want) if want == body => {}
                want => r.bad.push(format!("{seq}: {}/{:?} bytes", body.len(), want.map(|w| w.len()))),
            }
            r.first.get_or_insert(seq);
            r.last = Some(seq);
            r.got += 1;
            r.received.push((seq, body));
        }
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(res) => {
            res.with_context(|| format!("rust subscriber on {url} (so far: got={} last={:?})", r.got, r.last))?
        }
        Err(_) => bail!(
            "rust subscriber on {url}: {until:?} not reached within {timeout:?} (got={} last={:?})",
            r.got,
            r.last
        ),
    }
    r.skipped = sub.skipped();
    Ok(r)
}

fn http() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            // reqwest is built without a default TLS provider in this workspace.
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default()
        })
        .clone()
}

/// `POST {url}` with `Expect-Content: mime`: creates a channel on a server with autocreate.
/// Returns the status.
pub async fn create_channel(url: &str, mime: &str) -> Result<u16> {
    let resp = http().post(url).header(byoc_trickle::headers::EXPECT_CONTENT, mime).send().await?;
    Ok(resp.status().as_u16())
}

/// `DELETE {url}`: closes a channel. Returns the status.
pub async fn delete_channel(url: &str) -> Result<u16> {
    Ok(http().delete(url).send().await?.status().as_u16())
}

/// Reads an SSE response until `needle` shows, at most `limit`; returns what was read. Panics
/// (showing what was read) if the stream ends or the time runs out first.
pub async fn sse_until(resp: &mut reqwest::Response, needle: &str, limit: Duration) -> String {
    let mut got = String::new();
    let _ = tokio::time::timeout(limit, async {
        while !got.contains(needle) {
            match resp.chunk().await {
                Ok(Some(c)) => got.push_str(&String::from_utf8_lossy(&c)),
                _ => break,
            }
        }
    })
    .await;
    assert!(got.contains(needle), "no {needle:?} in the SSE stream within {limit:?}: {got}");
    got
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_matches_the_python_peers_convention() {
        // trickle_peer.py: struct.pack(">Q", i) then bytes (i % 251).
        let p = payload(300, 12);
        assert_eq!(&p[..8], &[0, 0, 0, 0, 0, 0, 1, 44]);
        assert_eq!(&p[8..], &[49, 49, 49, 49]);
        assert_eq!(payload(3, 4).as_ref(), &[3, 3, 3, 3]);
    }
}
