//! The fan-out of one play pipeline: what it keeps for viewers joining late (metadata, sequence headers,
//! the current GOP) and each viewer's bounded queue, skipped forward to the next keyframe on overflow.

use tokio::sync::mpsc;

use crate::flv::{Tag, TagKind};

/// A viewer's place in the fan-out.
struct Slot {
    id: u64,
    tx: mpsc::Sender<Tag>,
    /// Media is skipped until the next keyframe (the viewer joined without a GOP, or its queue overflowed).
    waiting_for_keyframe: bool,
}

/// What a pipeline keeps for late joiners, and its viewers' queues.
pub(crate) struct Fanout {
    /// No viewer may join: the last one left, or the stream's input ended (ffmpeg is flushing).
    ended: bool,
    metadata: Option<Tag>,
    video_config: Option<Tag>,
    audio_config: Option<Tag>,
    /// Media since the last keyframe; empty when there was none yet or it outgrew `gop_limit`.
    gop: Vec<Tag>,
    gop_bytes: usize,
    gop_limit: usize,
    slots: Vec<Slot>,
}

impl Fanout {
    pub fn new(gop_limit: usize) -> Fanout {
        Fanout {
            ended: false,
            metadata: None,
            video_config: None,
            audio_config: None,
            gop: Vec::new(),
            gop_bytes: 0,
            gop_limit,
            slots: Vec::new(),
        }
    }

    /// Registers a viewer; returns what it must be sent first, or `None` when the pipeline has ended.
    pub fn add(&mut self, id: u64, tx: mpsc::Sender<Tag>) -> Option<Vec<Tag>> {
        if self.ended {
            return None;
        }
        let mut backlog: Vec<Tag> =
            [&self.metadata, &self.video_config, &self.audio_config].into_iter().flatten().cloned().collect();
        backlog.extend(self.gop.iter().cloned());
        self.slots.push(Slot { id, tx, waiting_for_keyframe: self.gop.is_empty() });
        Some(backlog)
    }

    /// Unregisters a viewer; `true` when it was the last one (the pipeline is then over).
    pub fn remove(&mut self, id: u64) -> bool {
        self.slots.retain(|s| s.id != id);
        if self.slots.is_empty() {
            self.ended = true;
        }
        self.slots.is_empty()
    }

    /// The input ended: the pipeline only flushes now; a new viewer starts a new one.
    pub fn stop_accepting(&mut self) {
        self.ended = true;
    }

    /// The stream is over: viewers get what is queued, then their queue closes.
    pub fn end(&mut self) {
        self.ended = true;
        self.slots.clear();
    }

    /// Caches and forwards one tag from ffmpeg.
    pub fn tag(&mut self, tag: Tag) {
        let config = tag.is_metadata() || tag.is_video_config() || tag.is_audio_config();
        if tag.kind == TagKind::Script && !config {
            return;
        }
        if tag.is_metadata() {
            self.metadata = Some(tag.clone());
        } else if tag.is_video_config() {
            self.video_config = Some(tag.clone());
        } else if tag.is_audio_config() {
            self.audio_config = Some(tag.clone());
        } else if tag.is_keyframe() {
            self.gop.clear();
            self.gop_bytes = tag.body.len();
            self.gop.push(tag.clone());
        } else if !self.gop.is_empty() {
            self.gop_bytes += tag.body.len();
            self.gop.push(tag.clone());
            if self.gop_bytes > self.gop_limit {
                // Late joiners then wait for the next keyframe.
                self.gop = Vec::new();
                self.gop_bytes = 0;
            }
        }
        let keyframe = tag.is_keyframe();
        for slot in &mut self.slots {
            if slot.waiting_for_keyframe && !keyframe && !config {
                continue;
            }
            match slot.tx.try_send(tag.clone()) {
                Ok(()) => slot.waiting_for_keyframe &= !keyframe,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    if !slot.waiting_for_keyframe {
                        tracing::info!(viewer = slot.id, "rtmp viewer too slow: skipping to the next keyframe");
                    }
                    slot.waiting_for_keyframe = true;
                }
                // The viewer is leaving; its `Drop` unregisters it.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn tag(kind: TagKind, timestamp: u32, body: &'static [u8]) -> Tag {
        Tag { kind, timestamp, body: Bytes::from_static(body) }
    }

    fn drain(rx: &mut mpsc::Receiver<Tag>) -> Vec<u32> {
        let mut out = Vec::new();
        while let Ok(t) = rx.try_recv() {
            out.push(t.timestamp);
        }
        out
    }

    #[test]
    fn late_joiner_gets_headers_and_gop_and_slow_viewer_skips_to_keyframe() {
        let mut fanout = Fanout::new(1 << 20);
        let (tx_a, mut rx_a) = mpsc::channel(3);
        assert_eq!(fanout.add(1, tx_a), Some(Vec::new()));
        fanout.tag(tag(TagKind::Script, 0, b"\x02\x00\x0aonMetaData\x08"));
        fanout.tag(tag(TagKind::Script, 0, b"\x02\x00\x0aonTextData"));
        fanout.tag(tag(TagKind::Video, 0, &[0x17, 0, 0, 0, 0]));
        // Not forwarded: no keyframe yet for a viewer that joined without a GOP.
        fanout.tag(tag(TagKind::Video, 1, &[0x27, 1, 0, 0, 0]));
        assert_eq!(drain(&mut rx_a), [0, 0]);
        fanout.tag(tag(TagKind::Video, 10, &[0x17, 1, 0, 0, 0]));
        fanout.tag(tag(TagKind::Audio, 11, &[0xaf, 1]));
        fanout.tag(tag(TagKind::Video, 12, &[0x27, 1, 0, 0, 0]));

        let (tx_b, _rx_b) = mpsc::channel(8);
        let backlog = fanout.add(2, tx_b).expect("running");
        let stamps: Vec<u32> = backlog.iter().map(|t| t.timestamp).collect();
        assert_eq!(stamps, [0, 0, 10, 11, 12], "metadata, video config, then the GOP");

        // A's queue (3) is full now: it skips the rest of this GOP and resumes at the next keyframe.
        fanout.tag(tag(TagKind::Video, 13, &[0x27, 1, 0, 0, 0]));
        assert_eq!(drain(&mut rx_a), [10, 11, 12]);
        fanout.tag(tag(TagKind::Audio, 14, &[0xaf, 1]));
        fanout.tag(tag(TagKind::Video, 20, &[0x17, 1, 0, 0, 0]));
        fanout.tag(tag(TagKind::Audio, 21, &[0xaf, 1]));
        assert_eq!(drain(&mut rx_a), [20, 21]);

        assert!(!fanout.remove(1));
        assert!(fanout.remove(2), "the last viewer ends the pipeline");
        let (tx_c, _rx_c) = mpsc::channel(1);
        assert!(fanout.add(3, tx_c).is_none(), "an ended pipeline takes no viewer");
    }

    #[test]
    fn gop_cache_is_bounded() {
        let mut fanout = Fanout::new(8);
        fanout.tag(tag(TagKind::Video, 0, &[0x17, 1, 0, 0, 0]));
        fanout.tag(tag(TagKind::Video, 1, &[0x27, 1, 0, 0, 0]));
        assert!(fanout.gop.is_empty(), "an oversized GOP is dropped");
        fanout.tag(tag(TagKind::Video, 2, &[0x27, 1, 0, 0, 0]));
        assert!(fanout.gop.is_empty(), "and caching waits for the next keyframe");
        let (tx, _rx) = mpsc::channel(1);
        assert_eq!(fanout.add(1, tx).map(|b| b.len()), Some(0));
        assert!(fanout.slots[0].waiting_for_keyframe);
    }
}
