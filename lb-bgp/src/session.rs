//! The BGP session state machine (RFC 4271 §8), without I/O.
//!
//! A [`Session`] is one speaker's side of one BGP session over one
//! connection at a time. It is deterministic: it never reads a clock, opens
//! a socket or spawns a task. See [`Session`] for the call contract.
//!
//! Guarantees: no UPDATE is sent before Established; a silent peer is
//! declared down when the hold time expires; every error that ends the
//! session sends its NOTIFICATION first; restarts after repeated failures
//! back off exponentially (§8.1.1 "DampPeerOscillations"), including
//! sessions that reach Established and fail within [`STABLE_AFTER`], and
//! [`Session::failures`] says why and how often.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::adj_rib_out::{AdjRibOut, PeerContext, RouteAttributes};
use crate::stats::SessionStats;
use crate::wire::header;
use crate::wire::open::{Capability, RestartFamily};
use crate::wire::{
    Afi, CeaseSubcode, Context, Framer, FsmSubcode, Message, Notification, NotificationError, Open, OpenSubcode,
    Prefix, RouteRefresh, RouteRefreshSubtype, Safi,
};

/// UPDATEs are produced only while less than this is waiting to be
/// written: beyond it, changes coalesce in the Adj-RIB-Out instead.
const TRANSMIT_HIGH_WATER: usize = 64 * 1024;

/// Which AS the peer must be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoteAs {
    Fixed(u32),
    /// iBGP with whatever the peer says, as long as it is ours.
    Internal,
    /// eBGP with whatever the peer says, as long as it is not ours.
    External,
}

/// How a session behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub local_asn: u32,
    pub remote_as: RemoteAs,
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds (0: no keepalives, no hold timer).
    pub hold_time: u16,
    /// Keepalive interval; `None` means a third of the negotiated hold time.
    pub keepalive: Option<Duration>,
    pub connect_retry: Duration,
    /// Wait for the peer to connect instead of connecting.
    pub passive: bool,
    /// Families to announce (IPv4 and/or IPv6 unicast).
    pub ipv4: bool,
    pub ipv6: bool,
    /// Announce graceful restart (RFC 4724) with this restart time.
    pub graceful_restart: Option<u16>,
    /// The longest the back-off between failed attempts may grow to.
    pub max_backoff: Duration,
    /// RFC 4271 DelayOpen: after connecting, wait this long for the peer's
    /// OPEN before sending ours (answering at once if it comes).
    pub delay_open: Option<Duration>,
    /// IPv6 next hop (global, link-local) when the connection is over IPv4,
    /// or to override the connection's address.
    pub next_hop_v6: Option<(Ipv6Addr, Option<Ipv6Addr>)>,
    /// IPv4 next hop when the connection is over IPv6 (IPv4 routes over an
    /// IPv6 session), or to override the connection's address.
    pub next_hop_v4: Option<Ipv4Addr>,
}

impl SessionConfig {
    pub fn new(local_asn: u32, remote_as: RemoteAs, router_id: Ipv4Addr) -> Self {
        Self {
            local_asn,
            remote_as,
            router_id,
            hold_time: 90,
            keepalive: None,
            connect_retry: Duration::from_secs(5),
            passive: false,
            ipv4: true,
            ipv6: false,
            graceful_restart: None,
            max_backoff: Duration::from_secs(120),
            next_hop_v6: None,
            next_hop_v4: None,
            delay_open: None,
        }
    }
}

/// RFC 4271 §8.2.2 states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// What both sides agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_asn: u32,
    pub peer_id: Ipv4Addr,
    pub hold_time: u16,
    pub keepalive: Duration,
    pub context: Context,
    pub ipv4: bool,
    pub ipv6: bool,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    pub peer_graceful_restart: bool,
}

/// Why a session went down.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DownReason {
    /// We sent this NOTIFICATION.
    Sent(Notification),
    /// The peer sent this NOTIFICATION.
    Received(Notification),
    /// The connection closed or failed without a NOTIFICATION.
    ConnectionLost,
    /// [`Session::stop`].
    Stopped,
}

/// How an attempt or a session failed, in a form that compares equal when
/// it fails the same way again (the NOTIFICATION's code and subcode, not
/// its data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Failure {
    /// We sent a NOTIFICATION with this error.
    Sent(NotificationError),
    /// The peer sent a NOTIFICATION with this error.
    Received(NotificationError),
    /// The connection closed or failed without a NOTIFICATION.
    ConnectionLost,
    /// The connection could not be made.
    ConnectFailed,
}

/// The failures since the session last ran stably, for the back-off and
/// for a driver to log and show why a peer keeps going down.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FailureHistory {
    /// The last failure, if any.
    pub last: Option<Failure>,
    /// How many failures in a row were this same `last` one.
    pub repeats: u32,
    /// Failed attempts and sessions in a row, whatever the reason: the
    /// exponent of the back-off.
    pub consecutive: u32,
}

/// A session must stay Established this long before its next failure
/// starts the back-off afresh: one that fails right after opening (its
/// peer rejects our first UPDATE, say) is failing, not flapping now and then,
/// and must not retry every few seconds forever.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);

/// What the driver must do or may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// Open a connection to the peer.
    Connect,
    /// Close the connection (after writing what `poll_transmit` returns).
    Disconnect,
    StateChanged {
        from: State,
        to: State,
    },
    Established(Negotiated),
    Down(DownReason),
    /// The peer asked for the table again (RFC 2918).
    RouteRefreshRequested {
        afi: Afi,
        safi: Safi,
    },
    /// A received UPDATE that RFC 7606 says to ignore: logged, not fatal.
    UpdateIgnored(String),
}

/// RFC 4271 §6.8: when both speakers connect at once, the connection
/// opened by the speaker with the higher BGP identifier survives; with equal
/// identifiers (eBGP allows them), the one opened by the speaker with the
/// larger AS number (RFC 6286 §2.3).
///
/// [`crate::peer::Peer`] runs one [`Session`] per connection and applies
/// this once the peer's OPEN has arrived on either.
pub fn keeps_connection(
    (local_id, local_asn): (Ipv4Addr, u32),
    (peer_id, peer_asn): (Ipv4Addr, u32),
    initiated_locally: bool,
) -> bool {
    let local_wins = match u32::from(local_id).cmp(&u32::from(peer_id)) {
        std::cmp::Ordering::Equal => local_asn > peer_asn,
        order => order == std::cmp::Ordering::Greater,
    };
    local_wins == initiated_locally
}

/// One BGP session with one peer, fed events and drained of actions.
///
/// # Methods by kind
///
/// - **Inputs** (`handle_*`): what happened. [`Self::handle_connected`]
///   (a connection is up), [`Self::handle_bytes`] (bytes read from it),
///   [`Self::handle_closed`] (it closed or could not be made),
///   [`Self::handle_timeout`] (the instant [`Self::poll_timeout`] gave has come).
/// - **Outputs** (`poll_*`): what to do. [`Self::poll_transmit`] (bytes to
///   write), [`Self::poll_event`] (connect, disconnect, state changes,
///   Established, Down, ...), [`Self::poll_timeout`] (when to call
///   `handle_timeout` next).
/// - **Commands**: what the owner wants. [`Self::start`], [`Self::stop`],
///   [`Self::stop_with`], [`Self::close_collision`], [`Self::set_routes`],
///   [`Self::set_route`], [`Self::send_message`],
///   [`Self::request_route_refresh`], and the next hops of the next
///   connection ([`Self::set_next_hop_v4`], [`Self::set_next_hop_v6`]).
/// - **Queries**: [`Self::state`], [`Self::negotiated`], [`Self::config`].
///
/// # Expected flow
///
/// 1. [`Self::new`], [`Self::set_routes`] (routes may be set at any time:
///    they go out once Established), [`Self::start`];
/// 2. after every input and every command, drain the outputs in this order:
///    [`Self::poll_transmit`] until it returns 0 (write the bytes, in order,
///    before those of any later call), then [`Self::poll_event`] until
///    `None` (a [`SessionEvent::Disconnect`] means: write what
///    `poll_transmit` gave, then close), then [`Self::poll_timeout`] to
///    re-arm the one timer. Events may queue output (a NOTIFICATION before
///    a disconnect is already in the transmit queue when the event is seen);
/// 3. call [`Self::handle_timeout`] when the timer fires; calling it early
///    does nothing.
///
/// Time never goes backwards: every `now` passed must be greater than or
/// equal to the previous one. Deadlines are absolute [`Instant`]s.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    framer: Framer,
    out: BytesMut,
    events: VecDeque<SessionEvent>,
    negotiated: Option<Negotiated>,
    connect_retry_at: Option<Instant>,
    /// Running DelayOpen timer: connected, our OPEN not sent yet.
    delay_open_at: Option<Instant>,
    hold_at: Option<Instant>,
    keepalive_at: Option<Instant>,
    /// Consecutive failed sessions, for the back-off.
    failures: u32,
    history: FailureHistory,
    /// When the session last reached Established, while it is.
    established_at: Option<Instant>,
    stats: SessionStats,
    started: bool,
    rib: AdjRibOut,
    /// Families owed an End-of-Route-Refresh once the re-sent table is out.
    end_of_refresh: Vec<(Afi, Safi)>,
    /// The local address of the connection: the next hop of announcements.
    local: Option<SocketAddr>,
    peer: Option<PeerContext>,
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        Self {
            config,
            state: State::Idle,
            framer: Framer::new(),
            out: BytesMut::new(),
            events: VecDeque::new(),
            negotiated: None,
            connect_retry_at: None,
            delay_open_at: None,
            hold_at: None,
            keepalive_at: None,
            failures: 0,
            history: FailureHistory::default(),
            established_at: None,
            stats: SessionStats::default(),
            started: false,
            rib: AdjRibOut::new(),
            end_of_refresh: Vec::new(),
            local: None,
            peer: None,
        }
    }

    #[must_use]
    pub fn state(&self) -> State {
        self.state
    }

    #[must_use]
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    #[must_use]
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// ManualStart: begin connecting (or waiting for the peer).
    pub fn start(&mut self, now: Instant) {
        self.started = true;
        if self.state == State::Idle {
            self.begin(now);
        }
    }

    /// ManualStop: Cease / Administrative Shutdown (with `message` for the
    /// peer's operator) if a connection is up, then stay Idle.
    pub fn stop(&mut self, now: Instant, message: Option<&str>) {
        self.stop_with(now, Notification::shutdown(message.unwrap_or("")));
    }

    /// ManualStop with another Cease: RFC 4486's Peer De-configured for a
    /// peer removed from the configuration, Other Configuration Change for
    /// one whose session parameters changed.
    pub fn stop_with(&mut self, now: Instant, notification: Notification) {
        self.started = false;
        if matches!(self.state, State::OpenSent | State::OpenConfirm | State::Established) {
            self.send(&Message::Notification(notification));
        }
        if self.state != State::Idle {
            self.events.push_back(SessionEvent::Disconnect);
            self.down(now, DownReason::Stopped, false);
        }
        self.connect_retry_at = None;
    }

    /// Closes this connection as the loser of a collision (§6.8): Cease /
    /// Connection Collision Resolution, then Idle without retrying, since
    /// the other connection carries the session.
    pub fn close_collision(&mut self, now: Instant) {
        if matches!(self.state, State::OpenSent | State::OpenConfirm | State::Established) {
            let n = Notification::cease(CeaseSubcode::ConnectionCollisionResolution);
            self.send(&Message::Notification(n.clone()));
            self.events.push_back(SessionEvent::Disconnect);
            self.down(now, DownReason::Sent(n), false);
        }
        self.started = false;
        self.connect_retry_at = None;
    }

    /// Sets the IPv6 next hop (global, and link-local for an on-link peer)
    /// for the next connection. Which addresses those are depends on the
    /// interface the connection leaves by, which only the driver can know;
    /// call before [`Self::handle_connected`].
    pub fn set_next_hop_v6(&mut self, next_hop: Option<(Ipv6Addr, Option<Ipv6Addr>)>) {
        self.config.next_hop_v6 = next_hop;
    }

    /// Sets the IPv4 next hop for the next connection, for when it runs
    /// over IPv6 but carries IPv4 routes; call before [`Self::handle_connected`].
    pub fn set_next_hop_v4(&mut self, next_hop: Option<Ipv4Addr>) {
        self.config.next_hop_v4 = next_hop;
    }

    /// The connection is up (we connected, or accepted the peer); `local`
    /// is our end of it, whose address becomes the next hop.
    pub fn handle_connected(&mut self, now: Instant, local: SocketAddr) {
        if !matches!(self.state, State::Connect | State::Active) {
            // Not expecting one (Idle, or already connected): refuse it.
            self.events.push_back(SessionEvent::Disconnect);
            return;
        }
        self.connect_retry_at = None;
        self.framer.clear();
        self.local = Some(local);
        // §8.2.2: a large hold timer (4 minutes) while waiting for the OPEN.
        self.hold_at = Some(now + Duration::from_secs(240));
        match self.config.delay_open {
            Some(delay) => self.delay_open_at = Some(now + delay),
            None => {
                self.send_open();
                self.set_state(State::OpenSent);
            }
        }
    }

    /// The connection closed or could not be made.
    pub fn handle_closed(&mut self, now: Instant) {
        match self.state {
            State::Idle => {}
            State::Connect | State::Active => {
                self.delay_open_at = None;
                self.hold_at = None;
                // A failed attempt counts towards the back-off like a failed session.
                self.record_failure(Failure::ConnectFailed);
                self.connect_retry_at = Some(now + self.retry_delay());
            }
            _ => self.down(now, DownReason::ConnectionLost, true),
        }
    }

    /// Bytes received on the connection.
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) {
        if !self.is_connected() {
            return;
        }
        self.stats.bytes_received += bytes.len() as u64;
        self.framer.push(bytes);
        loop {
            let ctx = self.context();
            let frame = match self.framer.next_frame(&ctx) {
                None => break,
                Some(Ok(frame)) => {
                    if let Some((kind, _)) = header::peek(&frame) {
                        self.stats.received.add(kind);
                    }
                    frame
                }
                Some(Err(e)) => return self.fail(now, e.notification()),
            };
            match Message::decode(&frame, &ctx) {
                Ok(msg) => self.receive(now, msg),
                Err(e) if !e.resets_session() && self.state == State::Established => {
                    self.restart_hold(now);
                    self.events.push_back(SessionEvent::UpdateIgnored(e.to_string()));
                }
                // RFC 6608: an UPDATE, even a void one, before Established.
                Err(e) if !e.resets_session() => {
                    let sub = if self.state == State::OpenConfirm {
                        FsmSubcode::UnexpectedMessageInOpenConfirm
                    } else {
                        FsmSubcode::UnexpectedMessageInOpenSent
                    };
                    return self.fail(now, Notification::fsm(sub));
                }
                Err(e) => return self.fail(now, e.notification()),
            }
            if !self.is_connected() {
                break;
            }
        }
    }

    /// A connection is up: past Active/Connect, or waiting out DelayOpen.
    fn is_connected(&self) -> bool {
        matches!(self.state, State::OpenSent | State::OpenConfirm | State::Established) || self.delay_open_at.is_some()
    }

    /// Call when `now` has reached [`Self::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.delay_open_at.is_some_and(|t| t <= now) {
            self.delay_open_at = None;
            self.send_open();
            self.set_state(State::OpenSent);
        }
        if self.hold_at.is_some_and(|t| t <= now) {
            self.hold_at = None;
            return self.fail(now, Notification::hold_timer_expired());
        }
        if self.keepalive_at.is_some_and(|t| t <= now) {
            self.send(&Message::Keepalive);
            self.keepalive_at = self.negotiated.as_ref().map(|n| now + n.keepalive);
        }
        if self.connect_retry_at.is_some_and(|t| t <= now) {
            self.connect_retry_at = None;
            if self.started {
                self.begin(now);
            }
        }
    }

    /// Sends an UPDATE (or any message) on an Established session; refused otherwise.
    /// Whether it was queued.
    #[must_use]
    pub fn send_message(&mut self, msg: &Message) -> bool {
        if self.state != State::Established {
            return false;
        }
        self.send(msg);
        true
    }

    /// Asks the peer to re-send its table for one family; whether it was
    /// sent (not unless Established and the peer announced route refresh).
    #[must_use]
    pub fn request_route_refresh(&mut self, afi: Afi, safi: Safi) -> bool {
        let supported = self.negotiated.as_ref().is_some_and(|n| n.route_refresh);
        supported
            && self.send_message(&Message::RouteRefresh(RouteRefresh {
                afi,
                safi,
                subtype: RouteRefreshSubtype::Request,
            }))
    }

    /// Sets the routes the peer should have; UPDATEs follow from
    /// [`Self::poll_transmit`] once Established.
    pub fn set_routes(&mut self, routes: &BTreeMap<Prefix, RouteAttributes>) {
        self.rib.set_routes(routes);
    }

    /// Changes one route (`None` withdraws it).
    pub fn set_route(&mut self, prefix: Prefix, attrs: Option<RouteAttributes>) {
        self.rib.set_route(prefix, attrs);
    }

    /// Moves pending output into `out`; returns how many bytes. UPDATEs are
    /// generated here, as the driver is ready to write, so a slow socket
    /// makes changes coalesce instead of queueing.
    #[must_use]
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        if self.state == State::Established
            && let Some(peer) = self.peer
        {
            while self.out.len() < TRANSMIT_HIGH_WATER {
                let Some(update) = self.rib.poll_update(&peer) else { break };
                self.send(&Message::Update(Box::new(update)));
            }
            if !self.rib.has_pending() {
                for (afi, safi) in std::mem::take(&mut self.end_of_refresh) {
                    let eorr = RouteRefresh { afi, safi, subtype: RouteRefreshSubtype::EndOfRouteRefresh };
                    self.send(&Message::RouteRefresh(eorr));
                }
            }
        }
        let n = self.out.len();
        out.extend_from_slice(&self.out);
        self.out.clear();
        n
    }

    /// Takes back out of [`Self::stats`] what the driver took from
    /// [`Self::poll_transmit`] but will never write: `unsent` holds whole
    /// messages (cut with [`header::message_end`]), dropped when their
    /// connection closed.
    pub fn take_back_unsent(&mut self, unsent: &[u8]) {
        self.stats.take_back_unsent(unsent);
    }

    /// Drops output not yet taken by [`Self::poll_transmit`], uncounted:
    /// the loser of a collision must not answer the peer's OPEN with a
    /// KEEPALIVE before its Cease.
    pub(crate) fn discard_transmit(&mut self) {
        let unsent = std::mem::take(&mut self.out);
        self.stats.take_back_unsent(&unsent);
    }

    /// Takes over the failure history of `other`, whose connection this
    /// session replaces (the winner of a collision, or the peer's
    /// connection once ours is gone): the back-off goes on counting.
    pub(crate) fn inherit_failures(&mut self, other: &Session) {
        if other.failures > self.failures {
            self.failures = other.failures;
            self.history = other.history;
        }
    }

    /// Why the session last failed, how often in a row, and how many
    /// failures the back-off counts: a driver logs and shows these.
    #[must_use]
    pub fn failures(&self) -> FailureHistory {
        self.history
    }

    /// What this session sent and received, over all its connections.
    #[must_use]
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// Whether output is waiting, UPDATEs included.
    #[must_use]
    pub fn has_pending_transmit(&self) -> bool {
        !self.out.is_empty() || (self.state == State::Established && self.rib.has_pending())
    }

    /// The next instant `handle_timeout` must be called at.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.hold_at, self.keepalive_at, self.connect_retry_at, self.delay_open_at].into_iter().flatten().min()
    }

    /// The next thing the driver must do or may want to know.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    fn context(&self) -> Context {
        self.negotiated
            .as_ref()
            .map(|n| n.context)
            .unwrap_or(Context { four_octet_asn: true, extended_messages: false })
    }

    fn begin(&mut self, now: Instant) {
        if self.config.passive {
            self.set_state(State::Active);
        } else {
            self.set_state(State::Connect);
            self.events.push_back(SessionEvent::Connect);
        }
        self.connect_retry_at = Some(now + self.config.connect_retry);
    }

    /// Back-off for the next attempt: the retry time, doubled per
    /// consecutive failure, capped.
    fn retry_delay(&self) -> Duration {
        let factor = 1u32 << self.failures.min(10);
        (self.config.connect_retry * factor).min(self.config.max_backoff.max(self.config.connect_retry))
    }

    fn set_state(&mut self, to: State) {
        if self.state != to {
            let from = std::mem::replace(&mut self.state, to);
            self.events.push_back(SessionEvent::StateChanged { from, to });
        }
    }

    /// Queues `msg` and counts it as sent.
    fn send(&mut self, msg: &Message) {
        let before = self.out.len();
        msg.encode(&self.context(), &mut self.out);
        self.stats.sent.add(msg.kind());
        self.stats.bytes_sent += (self.out.len() - before) as u64;
    }

    fn send_open(&mut self) {
        let mut caps = Vec::new();
        if self.config.ipv4 {
            caps.push(Capability::Multiprotocol { afi: Afi::Ipv4, safi: Safi::Unicast });
        }
        if self.config.ipv6 {
            caps.push(Capability::Multiprotocol { afi: Afi::Ipv6, safi: Safi::Unicast });
        }
        caps.push(Capability::RouteRefresh);
        caps.push(Capability::EnhancedRouteRefresh);
        caps.push(Capability::ExtendedMessage);
        if let Some(time) = self.config.graceful_restart {
            // Forwarding state preserved (F): the nodes keep forwarding to
            // the Services while the speaker restarts, so the peer may keep
            // our routes, as stale, until it has the table again (End-of-RIB).
            let family = |afi| RestartFamily { afi, safi: Safi::Unicast, flags: 0x80 };
            let mut families = Vec::new();
            if self.config.ipv4 {
                families.push(family(Afi::Ipv4));
            }
            if self.config.ipv6 {
                families.push(family(Afi::Ipv6));
            }
            caps.push(Capability::GracefulRestart { flags: 0, time: time.min(0x0fff), families });
        }
        let open = Open::new(self.config.local_asn, self.config.hold_time, self.config.router_id, caps);
        self.send(&Message::Open(open));
    }

    fn restart_hold(&mut self, now: Instant) {
        if let Some(n) = &self.negotiated
            && n.hold_time > 0
        {
            self.hold_at = Some(now + Duration::from_secs(u64::from(n.hold_time)));
        }
    }

    fn receive(&mut self, now: Instant, msg: Message) {
        match (self.state, msg) {
            (_, Message::Notification(n)) => self.down(now, DownReason::Received(n), true),
            (State::OpenSent, Message::Open(open)) => self.receive_open(now, &open),
            // The peer's OPEN while DelayOpen runs: answer with ours at once.
            (State::Connect | State::Active, Message::Open(open)) if self.delay_open_at.is_some() => {
                self.delay_open_at = None;
                self.send_open();
                self.receive_open(now, &open);
            }
            (State::OpenConfirm, Message::Keepalive) => {
                self.restart_hold(now);
                self.set_state(State::Established);
                self.stats.times_established += 1;
                // Not yet a success for the back-off: see STABLE_AFTER.
                self.established_at = Some(now);
                if let Some(n) = self.negotiated.clone() {
                    let peer = self.peer_context(&n);
                    self.rib.reset(&peer);
                    self.peer = Some(peer);
                    self.events.push_back(SessionEvent::Established(n));
                }
            }
            (State::Established, Message::Keepalive) => self.restart_hold(now),
            (State::Established, Message::Update(_)) => self.restart_hold(now),
            (State::Established, Message::RouteRefresh(r)) => {
                self.restart_hold(now);
                // RFC 2918 §4: requests for families not negotiated are ignored.
                let negotiated = self.negotiated.as_ref().is_some_and(|n| {
                    r.safi == Safi::Unicast && ((r.afi == Afi::Ipv4 && n.ipv4) || (r.afi == Afi::Ipv6 && n.ipv6))
                });
                if r.subtype == RouteRefreshSubtype::Request
                    && negotiated
                    && !self.end_of_refresh.contains(&(r.afi, r.safi))
                {
                    self.rib.refresh();
                    // RFC 7313: bracket the re-sent table with BoRR and EoRR.
                    if self.negotiated.as_ref().is_some_and(|n| n.enhanced_route_refresh) {
                        self.send(&Message::RouteRefresh(RouteRefresh {
                            subtype: RouteRefreshSubtype::BeginOfRouteRefresh,
                            ..r
                        }));
                        self.end_of_refresh.push((r.afi, r.safi));
                    }
                    self.events.push_back(SessionEvent::RouteRefreshRequested { afi: r.afi, safi: r.safi });
                }
            }
            // RFC 6608: a message that is not expected in this state.
            (state, _) => {
                let sub = match state {
                    State::OpenSent => FsmSubcode::UnexpectedMessageInOpenSent,
                    State::OpenConfirm => FsmSubcode::UnexpectedMessageInOpenConfirm,
                    _ => FsmSubcode::UnexpectedMessageInEstablished,
                };
                self.fail(now, Notification::fsm(sub));
            }
        }
    }

    fn receive_open(&mut self, now: Instant, open: &Open) {
        let peer_asn = open.asn();
        let acceptable = match self.config.remote_as {
            RemoteAs::Fixed(asn) => peer_asn == asn,
            RemoteAs::Internal => peer_asn == self.config.local_asn,
            RemoteAs::External => peer_asn != self.config.local_asn,
        };
        if !acceptable {
            let mut n = Notification::open(OpenSubcode::BadPeerAs);
            n.data = open.my_as.to_be_bytes().to_vec();
            return self.fail(now, n);
        }
        // RFC 6286: within an AS, identifiers must differ.
        if peer_asn == self.config.local_asn && open.bgp_id == self.config.router_id {
            return self.fail(now, Notification::open(OpenSubcode::BadBgpIdentifier));
        }
        let hold_time = self.config.hold_time.min(open.hold_time);
        let keepalive = match (hold_time, self.config.keepalive) {
            (0, _) => Duration::ZERO,
            (h, Some(k)) => k.min(Duration::from_secs(u64::from(h)) / 3).max(Duration::from_secs(1)),
            (h, None) => Duration::from_secs(u64::from(h / 3).max(1)),
        };
        let mp = |a: Afi| open.has(&Capability::Multiprotocol { afi: a, safi: Safi::Unicast });
        // RFC 4760: a peer that announces no multiprotocol capability speaks IPv4 only.
        let any_mp = open.capabilities.iter().any(|c| matches!(c, Capability::Multiprotocol { .. }));
        let negotiated = Negotiated {
            peer_asn,
            peer_id: open.bgp_id,
            hold_time,
            keepalive,
            context: Context {
                four_octet_asn: open.capabilities.iter().any(|c| matches!(c, Capability::FourOctetAsn(_))),
                // RFC 8654: only when both sides announce it.
                extended_messages: open.has(&Capability::ExtendedMessage),
            },
            ipv4: self.config.ipv4 && (mp(Afi::Ipv4) || !any_mp),
            ipv6: self.config.ipv6 && mp(Afi::Ipv6),
            route_refresh: open.has(&Capability::RouteRefresh),
            enhanced_route_refresh: open.has(&Capability::EnhancedRouteRefresh),
            peer_graceful_restart: open.capabilities.iter().any(|c| matches!(c, Capability::GracefulRestart { .. })),
        };
        self.negotiated = Some(negotiated);
        self.send(&Message::Keepalive);
        self.restart_hold(now);
        if hold_time == 0 {
            self.hold_at = None;
        }
        self.keepalive_at = (hold_time > 0).then(|| now + keepalive);
        self.set_state(State::OpenConfirm);
    }

    fn peer_context(&self, n: &Negotiated) -> PeerContext {
        let local = self.local.map(|a| a.ip());
        PeerContext {
            local_asn: self.config.local_asn,
            ibgp: n.peer_asn == self.config.local_asn,
            next_hop_v4: self.config.next_hop_v4.or(match local {
                Some(IpAddr::V4(a)) => Some(a),
                _ => None,
            }),
            next_hop_v6: self.config.next_hop_v6.or(match local {
                Some(IpAddr::V6(a)) => Some((a, None)),
                _ => None,
            }),
            // A family is announced only where there is a next hop for it.
            ipv4: n.ipv4 && (self.config.next_hop_v4.is_some() || matches!(local, Some(IpAddr::V4(_)))),
            ipv6: n.ipv6 && (self.config.next_hop_v6.is_some() || matches!(local, Some(IpAddr::V6(_)))),
            context: n.context,
        }
    }

    fn record_failure(&mut self, failure: Failure) {
        self.failures = self.failures.saturating_add(1);
        let h = &mut self.history;
        h.repeats = if h.last == Some(failure) { h.repeats.saturating_add(1) } else { 1 };
        h.last = Some(failure);
        h.consecutive = self.failures;
    }

    /// Sends `notification`, closes, and goes down.
    fn fail(&mut self, now: Instant, notification: Notification) {
        self.send(&Message::Notification(notification.clone()));
        self.events.push_back(SessionEvent::Disconnect);
        self.down(now, DownReason::Sent(notification), true);
    }

    /// Goes Idle; `retry` (a failure, not a stop or a lost collision)
    /// counts towards the back-off and schedules the next attempt.
    fn down(&mut self, now: Instant, reason: DownReason, retry: bool) {
        if self.established_at.take().is_some_and(|at| now.saturating_duration_since(at) >= STABLE_AFTER) {
            // It ran stably: this failure starts a new series.
            self.failures = 0;
            self.history = FailureHistory::default();
        }
        if retry {
            let failure = match &reason {
                DownReason::Sent(n) => Failure::Sent(n.error),
                DownReason::Received(n) => Failure::Received(n.error),
                _ => Failure::ConnectionLost,
            };
            self.record_failure(failure);
        }
        self.events.push_back(SessionEvent::Down(reason));
        self.negotiated = None;
        self.peer = None;
        self.end_of_refresh.clear();
        self.delay_open_at = None;
        self.hold_at = None;
        self.keepalive_at = None;
        self.framer.clear();
        self.set_state(State::Idle);
        if retry && self.started {
            self.connect_retry_at = Some(now + self.retry_delay());
        }
    }
}
