//! The one task that owns the UDP socket and every session's `Rtc`, with work per event that does not
//! grow with the number of sessions:
//!
//! - **Demultiplexing in O(1).** A datagram goes to the session that last accepted its source address
//!   (a hash lookup). A datagram from an address not seen yet is taken only if it is a STUN binding
//!   request whose `USERNAME` names a session's local ICE ufrag (a second lookup) and that session
//!   accepts it (str0m checks the message integrity with the session's password); the address is then
//!   learnt. Anything else is dropped without touching a session, so a flood of datagrams from spoofed
//!   addresses costs a hash lookup each, not a scan of every session. ICE sends a STUN check from every
//!   address before media flows from it, so a peer's addresses are always learnt in time.
//! - **Timers in a heap.** Each session is polled when it has input, when a command or a paced frame
//!   is for it, or when its own deadline (str0m's next timeout, its next keyframe request, its connect
//!   deadline) comes; deadlines wait in a binary heap (stale entries are skipped when popped).
//!   Sessions with nothing to do cost nothing.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output, Reason, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::egress::Paced;
use super::{Command, Leg, Role, SessionId, SessionOwner, WebRtcConfig};

/// The most source addresses remembered for one session (a peer uses one or two; ICE may try a few).
const MAX_ADDRS_PER_SESSION: usize = 8;

pub(super) struct Session {
    pub(super) id: SessionId,
    pub(super) rtc: Rtc,
    pub(super) role: Role,
    pub(super) owner: SessionOwner,
    pub(super) created: Instant,
    pub(super) connected: bool,
    pub(super) next_pli: Instant,
    /// The local ICE ufrag: a STUN check from a new address names the session by it.
    pub(super) ufrag: String,
    /// The source addresses learnt for this session (at most [`MAX_ADDRS_PER_SESSION`]).
    addrs: Vec<SocketAddr>,
    /// When the session next needs to be polled (its entry in the heap).
    deadline: Instant,
}

impl Session {
    /// A new session, due at once.
    pub(super) fn new(id: SessionId, mut rtc: Rtc, role: Role, owner: SessionOwner, now: Instant) -> Session {
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        Session {
            id,
            rtc,
            role,
            owner,
            created: now,
            connected: false,
            next_pli: now,
            ufrag,
            addrs: Vec::new(),
            deadline: now,
        }
    }

    fn leg(&self) -> Leg {
        match self.role {
            Role::Ingest(_) => Leg::Whip,
            Role::Egress(_) => Leg::Whep,
        }
    }
}

/// Every session, and the indexes that find one without a scan.
#[derive(Default)]
struct Table {
    sessions: HashMap<SessionId, Session>,
    by_addr: HashMap<SocketAddr, SessionId>,
    by_ufrag: HashMap<String, SessionId>,
    timers: BinaryHeap<Reverse<(Instant, SessionId)>>,
}

impl Table {
    fn insert(&mut self, s: Session) {
        self.by_ufrag.insert(s.ufrag.clone(), s.id);
        self.timers.push(Reverse((s.deadline, s.id)));
        self.sessions.insert(s.id, s);
    }

    /// The session a datagram from `source` holding `data` belongs to, if any (without asking it).
    fn route(&self, source: SocketAddr, data: &[u8]) -> Option<SessionId> {
        if let Some(id) = self.by_addr.get(&source) {
            return Some(*id);
        }
        let ufrag = stun_local_ufrag(data)?;
        self.by_ufrag.get(ufrag).copied()
    }

    /// Remembers that `id` accepted a datagram from `source`.
    fn learn(&mut self, id: SessionId, source: SocketAddr) {
        let Some(s) = self.sessions.get_mut(&id) else { return };
        if s.addrs.contains(&source) || s.addrs.len() >= MAX_ADDRS_PER_SESSION {
            return;
        }
        s.addrs.push(source);
        // An address moves to the session that last proved it owns it.
        if let Some(old) = self.by_addr.insert(source, id)
            && old != id
            && let Some(o) = self.sessions.get_mut(&old)
        {
            o.addrs.retain(|a| *a != source);
        }
    }

    /// Polls session `id` at `now`: sends what it wants sent, handles its events, then either removes
    /// it (ended, or not connected in time) or schedules its next deadline.
    fn service(
        &mut self,
        id: SessionId,
        now: Instant,
        socket: &UdpSocket,
        config: &WebRtcConfig,
        viewer_asks: &broadcast::Sender<SessionId>,
    ) {
        let Some(s) = self.sessions.get_mut(&id) else { return };
        let next = s.poll(socket, now, config, viewer_asks);
        let connect_by = s.created + config.connect_timeout;
        let alive = s.rtc.is_alive() && (s.connected || now < connect_by);
        if !alive {
            self.remove(id);
            return;
        }
        let mut deadline = next.unwrap_or(now + Duration::from_millis(100));
        if !s.connected {
            deadline = deadline.min(connect_by);
        }
        // Never due in the past: a session asking for `now` again is served on the next turn.
        let deadline = deadline.max(now + MIN_WAIT);
        if deadline != s.deadline {
            s.deadline = deadline;
            self.timers.push(Reverse((deadline, id)));
        }
    }

    fn remove(&mut self, id: SessionId) {
        let Some(mut s) = self.sessions.remove(&id) else { return };
        tracing::info!(session = %s.id, "webrtc session ended");
        if let Role::Ingest(ingest) = &mut s.role {
            ingest.finish();
        }
        for a in &s.addrs {
            if self.by_addr.get(a) == Some(&id) {
                self.by_addr.remove(a);
            }
        }
        if self.by_ufrag.get(&s.ufrag) == Some(&id) {
            self.by_ufrag.remove(&s.ufrag);
        }
    }

    /// Puts in `due` the ids of the sessions due at `now` (each once; stale heap entries are dropped).
    fn due(&mut self, now: Instant, due: &mut Vec<SessionId>) {
        due.clear();
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.sessions.get(&id).is_some_and(|s| s.deadline == at) {
                due.push(id);
            }
        }
    }

    /// When the next session is due (stale entries at the top are dropped first).
    fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if self.sessions.get(&id).is_some_and(|s| s.deadline == at) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }
}

/// The local ufrag a STUN binding request names (`USERNAME` is `local:remote` from the receiver's side),
/// or `None` when `data` is not one.
pub(super) fn stun_local_ufrag(data: &[u8]) -> Option<&str> {
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    const USERNAME: u16 = 0x0006;
    let header = data.get(..20)?;
    // The two top bits of a STUN message are zero; the cookie follows the type and the length.
    if header.first()? & 0xc0 != 0 || header.get(4..8)? != MAGIC {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*header.get(2)?, *header.get(3)?]));
    let mut attrs = data.get(20..20 + len)?;
    while attrs.len() >= 4 {
        let kind = u16::from_be_bytes([*attrs.first()?, *attrs.get(1)?]);
        let alen = usize::from(u16::from_be_bytes([*attrs.get(2)?, *attrs.get(3)?]));
        let value = attrs.get(4..4 + alen)?;
        if kind == USERNAME {
            let text = std::str::from_utf8(value).ok()?;
            return text.split(':').next().filter(|u| !u.is_empty());
        }
        let padded = 4 + alen.div_ceil(4) * 4;
        attrs = attrs.get(padded..).unwrap_or_default();
    }
    None
}

/// The cap a new session of `owner` would exceed, as a message naming it; `None` when it fits. Sessions
/// already ended (awaiting removal) do not count; a session is pending until it is connected. Runs once
/// per offer, not per datagram.
fn over_cap<'a>(
    sessions: impl Iterator<Item = &'a Session>,
    owner: &SessionOwner,
    config: &WebRtcConfig,
) -> Option<String> {
    let client = owner.client.map(crate::address::client_key);
    let (mut total, mut stream, mut stream_pending, mut ip, mut ip_pending) = (0, 0, 0, 0, 0);
    for s in sessions.filter(|s| s.rtc.is_alive()) {
        total += 1;
        if s.owner.stream == owner.stream {
            stream += 1;
            stream_pending += usize::from(!s.connected);
        }
        if client.is_some() && s.owner.client.map(crate::address::client_key) == client {
            ip += 1;
            ip_pending += usize::from(!s.connected);
        }
    }
    [
        (total, config.max_sessions, "max_sessions", "WebRTC sessions on this server"),
        (
            stream_pending,
            config.max_pending_per_stream,
            "max_pending_per_stream",
            "unconnected WebRTC sessions of this stream",
        ),
        (stream, config.max_sessions_per_stream, "max_sessions_per_stream", "WebRTC sessions of this stream"),
        (ip_pending, config.max_pending_per_ip, "max_pending_per_ip", "unconnected WebRTC sessions from this address"),
        (ip, config.max_sessions_per_ip, "max_sessions_per_ip", "WebRTC sessions from this address"),
    ]
    .into_iter()
    .find(|(count, cap, ..)| count >= &(*cap).max(1))
    .map(|(_, cap, name, what)| format!("too many {what} ({name} = {cap})"))
}

/// The one task that owns the socket and every `Rtc`: reads datagrams, routes them, writes what the
/// sessions want sent, and fires their timers.
pub(super) async fn drive(
    socket: UdpSocket,
    advertised: SocketAddr,
    config: WebRtcConfig,
    mut commands: mpsc::Receiver<Command>,
    mut paced: mpsc::Receiver<Paced>,
    viewer_asks: broadcast::Sender<SessionId>,
    cancel: CancellationToken,
) {
    let mut table = Table::default();
    let mut buf = vec![0u8; 2000];
    // Reused across turns: the sessions due, and those a batch of datagrams touched.
    let mut due = Vec::new();
    let mut batch: Vec<SessionId> = Vec::with_capacity(RECEIVE_BATCH);
    // One timer for the driver, moved when the next deadline moves (a new one per turn cost a
    // timer-wheel insert and removal for every datagram).
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    let mut armed: Option<Instant> = None;
    loop {
        let now = Instant::now();
        table.due(now, &mut due);
        for &id in &due {
            if let Some(s) = table.sessions.get_mut(&id)
                && s.rtc.is_alive()
                && s.rtc.handle_input(Input::Timeout(now)).is_err()
            {
                s.rtc.disconnect();
            }
            table.service(id, now, &socket, &config, &viewer_asks);
        }
        let wake = table.next_deadline().unwrap_or(now + Duration::from_millis(100)).max(now + MIN_WAIT);
        if armed != Some(wake) {
            sleep.as_mut().reset(tokio::time::Instant::from_std(wake));
            armed = Some(wake);
        }
        // The session this turn's event was for, serviced after it.
        let touched: Option<SessionId> = tokio::select! {
            _ = cancel.cancelled() => break,
            cmd = commands.recv() => match cmd {
                None => break,
                Some(Command::Admit(owner, reply)) => {
                    let refused = over_cap(table.sessions.values(), &owner, &config);
                    if let Some(cap) = &refused {
                        let client = owner.client.map(tracing::field::display);
                        tracing::info!(stream = %owner.stream, client, %cap, "webrtc offer refused");
                    }
                    let _ = reply.send(refused);
                    None
                }
                Some(Command::Add(session, reply)) => match over_cap(table.sessions.values(), &session.owner, &config) {
                    None => {
                        let id = session.id;
                        table.insert(*session);
                        let _ = reply.send(Ok(()));
                        Some(id)
                    }
                    Some(cap) => {
                        let client = session.owner.client.map(tracing::field::display);
                        tracing::info!(stream = %session.owner.stream, client, %cap, "webrtc offer refused");
                        let _ = reply.send(Err(cap));
                        None
                    }
                },
                Some(Command::Close(id, stream, leg, reply)) => {
                    // Only through its own stream and leg: another stream's secret closes nothing.
                    let session = table.sessions.get_mut(&id).filter(|s| s.owner.stream == stream && s.leg() == leg);
                    let found = session.map(|s| s.rtc.disconnect()).is_some();
                    let _ = reply.send(found);
                    found.then_some(id)
                }
                Some(Command::Keyframe(id, reply)) => {
                    let found = match table.sessions.get_mut(&id) {
                        Some(Session { rtc, role: Role::Ingest(ingest), connected: true, .. }) if rtc.is_alive() => {
                            ingest.keyframe_for_viewer(rtc);
                            true
                        }
                        _ => false,
                    };
                    let _ = reply.send(found);
                    found.then_some(id)
                }
                Some(Command::Count(reply)) => {
                    let _ = reply.send(table.sessions.len());
                    None
                }
            },
            received = socket.recv_from(&mut buf) => {
                let Ok((n, source)) = received else { continue };
                // Then whatever else is waiting (a frame arrives as a burst of packets), up to a
                // batch, each session serviced once after it: one wake-up for the burst.
                batch.clear();
                let mut next = Some((n, source));
                while let Some((n, source)) = next.take() {
                    if let Some(id) = receive(&mut table, advertised, source, buf.get(..n).unwrap_or_default())
                        && !batch.contains(&id)
                    {
                        batch.push(id);
                    }
                    if batch.len() < RECEIVE_BATCH {
                        next = socket.try_recv_from(&mut buf).ok();
                    }
                }
                let now = Instant::now();
                for &id in &batch {
                    table.service(id, now, &socket, &config, &viewer_asks);
                }
                None
            }
            Some(msg) = paced.recv() => match msg {
                Paced::Frame { session, video, pts, data } => {
                    if let Some(s) = table.sessions.get_mut(&session)
                        && let Role::Egress(egress) = &s.role
                    {
                        egress.write(&mut s.rtc, video, pts, data);
                    }
                    Some(session)
                }
                Paced::End(session) => {
                    if let Some(s) = table.sessions.get_mut(&session) {
                        s.rtc.disconnect();
                    }
                    Some(session)
                }
            },
            () = &mut sleep => {
                armed = None;
                None
            }
        };
        if let Some(id) = touched {
            table.service(id, Instant::now(), &socket, &config, &viewer_asks);
        }
    }
    for (_, mut s) in table.sessions.drain() {
        s.rtc.disconnect();
        if let Role::Ingest(ingest) = &mut s.role {
            ingest.finish();
        }
    }
}

/// Most datagrams read in one wake-up before the sessions they touched are serviced.
const RECEIVE_BATCH: usize = 32;

/// The shortest the driver sleeps, and the soonest a session is due again after a turn (a deadline
/// already past is served on the next turn).
const MIN_WAIT: Duration = Duration::from_micros(100);

/// How late a session's housekeeping timer may fire ([`may_wait`]). str0m checks for lost packets to
/// NACK every ~33 ms and sends TWCC feedback on a similar beat, which woke the driver ~40 times a
/// second per receiving session whatever its media rate; most of those now ride on the next datagram.
const HOUSEKEEPING_SLACK: Duration = Duration::from_millis(10);

/// Whether a timeout for this reason may fire [`HOUSEKEEPING_SLACK`] late: RTCP reports, NACKs,
/// TWCC feedback, stats and the paused-stream check, whose timing is not media timing. Handshakes
/// (ICE, DTLS, SCTP), pacing and sending, and frames waiting on reordering keep their deadlines.
pub(super) fn may_wait(reason: Reason) -> bool {
    matches!(reason, Reason::Feedback | Reason::Nack | Reason::Twcc | Reason::Stats | Reason::PauseCheck)
}

/// Hands one datagram to the session it is for; returns that session if it took it.
fn receive(table: &mut Table, advertised: SocketAddr, source: SocketAddr, data: &[u8]) -> Option<SessionId> {
    let id = table.route(source, data)?;
    let contents = data.try_into().ok()?;
    let input =
        Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination: advertised, contents });
    let s = table.sessions.get_mut(&id)?;
    if !s.rtc.accepts(&input) {
        return None;
    }
    if let Err(e) = s.rtc.handle_input(input) {
        tracing::info!(session = %s.id, error = %e, "webrtc input failed");
        s.rtc.disconnect();
    }
    table.learn(id, source);
    Some(id)
}

impl Session {
    /// Drains the session's output: datagrams out, events handled. Returns when it next needs a timeout.
    fn poll(
        &mut self,
        socket: &UdpSocket,
        now: Instant,
        config: &WebRtcConfig,
        viewer_asks: &broadcast::Sender<SessionId>,
    ) -> Option<Instant> {
        if self.connected
            && now >= self.next_pli
            && let Role::Ingest(ingest) = &mut self.role
        {
            ingest.request_keyframe(&mut self.rtc);
            self.next_pli = now + config.pli_interval;
        }
        // Bounded: a session cannot starve the others.
        for _ in 0..10_000 {
            if !self.rtc.is_alive() {
                return None;
            }
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    // UDP: a full socket buffer drops the datagram, as the network would.
                    let _ = socket.try_send_to(&t.contents, t.destination);
                }
                Ok(Output::Timeout(t)) => {
                    // Housekeeping may wait a little: a datagram for the session in the meantime
                    // serves it (str0m runs its due timers on every input), so the wake-up is saved.
                    let t = if may_wait(self.rtc.last_timeout_reason()) { t + HOUSEKEEPING_SLACK } else { t };
                    let pli =
                        if self.connected && matches!(self.role, Role::Ingest(_)) { Some(self.next_pli) } else { None };
                    return Some(pli.map_or(t, |p| t.min(p)));
                }
                Ok(Output::Event(event)) => match event {
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => self.rtc.disconnect(),
                    Event::Connected => {
                        tracing::info!(session = %self.id, "webrtc session connected");
                        self.connected = true;
                        if let Role::Egress(egress) = &mut self.role {
                            egress.connected();
                        }
                    }
                    Event::MediaAdded(added) => match &mut self.role {
                        Role::Ingest(ingest) => ingest.media_added(added.mid, added.kind),
                        Role::Egress(egress) => egress.media_added(added.mid, added.kind),
                    },
                    Event::KeyframeRequest(_) if matches!(self.role, Role::Egress(_)) => {
                        let _ = viewer_asks.send(self.id);
                    }
                    Event::MediaData(data) => {
                        if let Role::Ingest(ingest) = &mut self.role
                            && !ingest.media(&data, &mut self.rtc)
                        {
                            self.rtc.disconnect();
                        }
                    }
                    _ => {}
                },
                Err(e) => {
                    tracing::info!(session = %self.id, error = %e, "webrtc session failed");
                    self.rtc.disconnect();
                    return None;
                }
            }
        }
        Some(now)
    }
}
