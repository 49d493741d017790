//! A WebRTC peer made of str0m, as a browser would be: it makes an offer, takes the server's answer,
//! runs ICE (controlling) and DTLS over its own loopback UDP socket, and can then send H.264 media.
//! Used by `byoc-media`'s WebRTC tests and by `cargo xtask bench webrtc`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::PayloadParams;
use str0m::media::{Direction, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;

/// A peer before and after it connected.
pub struct Peer {
    /// Its `Rtc`.
    pub rtc: Rtc,
    /// Its socket on 127.0.0.1.
    pub socket: UdpSocket,
    local: SocketAddr,
    pending: Option<SdpPendingOffer>,
    /// The video section.
    pub video: Option<Mid>,
    /// Whether ICE and DTLS completed.
    pub connected: bool,
    /// Datagrams sent so far.
    pub sent: u64,
}

impl Peer {
    /// A peer with an offer of one video section in `direction` (`SendOnly` for WHIP, `RecvOnly` for
    /// WHEP); returns it and the offer's SDP.
    pub async fn offer(direction: Direction) -> std::io::Result<(Peer, String)> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let local = socket.local_addr()?;
        let mut rtc = Rtc::builder().clear_codecs().enable_h264(true).build(Instant::now());
        let candidate = Candidate::host(local, "udp").map_err(std::io::Error::other)?;
        rtc.add_local_candidate(candidate);
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Video, direction, None, None, None);
        let (offer, pending) = change.apply().ok_or_else(|| std::io::Error::other("no offer"))?;
        let peer = Peer { rtc, socket, local, pending: Some(pending), video: Some(mid), connected: false, sent: 0 };
        Ok((peer, offer.to_sdp_string()))
    }

    /// Takes the server's answer.
    pub fn answer(&mut self, sdp: &str) -> std::io::Result<()> {
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(std::io::Error::other)?;
        let pending = self.pending.take().ok_or_else(|| std::io::Error::other("answered twice"))?;
        self.rtc.sdp_api().accept_answer(pending, answer).map_err(std::io::Error::other)
    }

    /// Sends what the peer wants sent and handles its events; returns its next timeout.
    fn flush(&mut self) -> Instant {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    if self.socket.try_send_to(&t.contents, t.destination).is_ok() {
                        self.sent += 1;
                    }
                }
                Ok(Output::Timeout(t)) => return t,
                Ok(Output::Event(Event::Connected)) => self.connected = true,
                Ok(Output::Event(_)) => {}
                Err(_) => return Instant::now() + Duration::from_secs(3600),
            }
        }
    }

    /// Drives the peer until `until` (a deadline): datagrams in, timeouts fired, output sent.
    pub async fn run_until(&mut self, until: Instant) {
        let mut buf = vec![0u8; 2000];
        loop {
            let next = self.flush().min(until);
            let now = Instant::now();
            if now >= until {
                return;
            }
            let wait = next.saturating_duration_since(now);
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let Ok((n, source)) = r else { continue };
                    let Some(data) = buf.get(..n) else { continue };
                    let Ok(contents) = data.try_into() else { continue };
                    let input = Input::Receive(Instant::now(), Receive {
                        proto: Protocol::Udp, source, destination: self.local, contents,
                    });
                    let _ = self.rtc.handle_input(input);
                }
                _ = tokio::time::sleep(wait) => {
                    let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
                }
            }
        }
    }

    /// Drives the peer until it is connected or `within` has passed; whether it connected.
    pub async fn connect(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while !self.connected && Instant::now() < deadline {
            self.run_until((Instant::now() + Duration::from_millis(5)).min(deadline)).await;
        }
        self.connected
    }

    /// Writes one H.264 access unit (a keyframe when `key`) of `bytes` bytes at `pts` (90 kHz).
    pub fn write_frame(&mut self, pts: u64, key: bool, bytes: usize) -> bool {
        let Some(mid) = self.video else { return false };
        let Some(writer) = self.rtc.writer(mid) else { return false };
        let Some(pt) = writer.payload_params().next().map(PayloadParams::pt) else { return false };
        // Annex B: an IDR slice (type 5) for a keyframe, else a non-IDR slice (type 1), then filler.
        let mut au = vec![0, 0, 0, 1, if key { 0x65 } else { 0x41 }];
        au.resize(bytes.max(6), 0xaa);
        writer.write(pt, Instant::now(), MediaTime::from_90khz(pts), au).is_ok()
    }
}
