//! One peer over up to two connections: connection collisions (RFC 4271
//! §6.8) decided without I/O.
//!
//! When both speakers connect at once, each ends up with two connections,
//! one it opened and one the peer opened, and must keep the same one as the
//! peer. A [`Peer`] owns the [`Session`] of each connection, keyed by an
//! id the driver chooses ([`ConnectionId`]), and tells the driver which to
//! close; the driver only moves bytes.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use bytes::BytesMut;

use crate::adj_rib_out::RouteAttributes;
use crate::session::{FailureHistory, Negotiated, Session, SessionConfig, SessionEvent, State, keeps_connection};
use crate::stats::SessionStats;
use crate::wire::{CeaseSubcode, Context, Message, Notification, Prefix};

/// A connection, as the driver names it: any value unique among the
/// connections of one peer (a counter will do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// What the driver must do or may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerEvent {
    /// Open a connection to the peer, then call [`Peer::handle_connected`]
    /// with `initiated_locally` set (or [`Peer::handle_connect_failed`]).
    Connect,
    /// Write what [`Peer::poll_transmit`] gives for this connection, then
    /// close it; nothing more will be read from it.
    Close(ConnectionId),
    /// A collision was resolved (§6.8): `kept` carries the session,
    /// `closed` was sent Cease / Connection Collision Resolution.
    CollisionResolved { kept: ConnectionId, closed: ConnectionId },
    /// An event of the session, from the connection that carries it: state
    /// changes, Established, Down, route refresh, ignored UPDATEs. Never
    /// [`SessionEvent::Connect`] or [`SessionEvent::Disconnect`], which
    /// come as [`PeerEvent::Connect`] and [`PeerEvent::Close`].
    Session(SessionEvent),
}

/// A connection with its session.
#[derive(Debug)]
struct Connection {
    id: ConnectionId,
    initiated_locally: bool,
    session: Session,
}

/// The BGP session with one peer, over one connection or, during a
/// collision, two.
///
/// # Methods by kind
///
/// - **Inputs**: [`Self::handle_connected`], [`Self::handle_connect_failed`],
///   [`Self::handle_bytes`], [`Self::handle_closed`], [`Self::handle_timeout`].
/// - **Outputs**: [`Self::poll_transmit`] (per connection),
///   [`Self::poll_event`], [`Self::poll_timeout`].
/// - **Commands**: [`Self::start`], [`Self::stop_with`], [`Self::set_routes`],
///   [`Self::set_next_hops`], [`Self::take_back_unsent`].
/// - **Queries**: [`Self::state`], [`Self::negotiated`], [`Self::stats`],
///   [`Self::session`], [`Self::carrier`].
///
/// # Expected flow
///
/// After every input and command: call [`Self::poll_transmit`] for every
/// open connection until it returns 0, then [`Self::poll_event`] until
/// `None` (on [`PeerEvent::Close`], take that connection's last bytes with
/// `poll_transmit`, write them, close it), then re-arm the one timer from
/// [`Self::poll_timeout`]. Time never goes backwards: every `now` passed
/// must be greater than or equal to the previous one.
///
/// # Collisions
///
/// A connection that arrives while none carries the session becomes the
/// session's. One that arrives while the session is opening (OpenSent,
/// OpenConfirm) starts a rival session on it; once the peer's BGP
/// identifier is known (its OPEN on either connection), the connection
/// opened by the speaker with the higher identifier is kept (equal
/// identifiers: the higher AS, RFC 6286 §2.3), as [`keeps_connection`]
/// decides, and the other is sent Cease / Connection Collision Resolution.
/// The loser's output not yet taken by the driver (the KEEPALIVE answering
/// the peer's OPEN, say) is dropped first, so the peer never sees that
/// session Established. One that arrives while the session is Established
/// is refused with the same Cease; a third one, while a collision is being
/// resolved, with Cease / Connection Rejected.
///
/// Beyond the RFC: §6.8 compares who opened each connection, so it cannot
/// choose between two connections opened by the same side. A peer that
/// connects again has given up on its first connection (it restarted,
/// say, and its first connection is a half-open leftover), so the newer
/// one from the peer replaces the older. Ours are opened one at a time
/// ([`PeerEvent::Connect`] is not asked again while one is up), so two of
/// ours mean a late attempt; the older one, already opening, is kept.
#[derive(Debug)]
pub struct Peer {
    config: SessionConfig,
    routes: BTreeMap<Prefix, RouteAttributes>,
    started: bool,
    /// The session; `main` is its connection, if it has one.
    session: Session,
    main: Option<(ConnectionId, bool)>,
    /// The second connection of a collision, with its own session.
    rival: Option<Connection>,
    /// Last bytes of connections being closed, until the driver takes them.
    closing: Vec<(ConnectionId, BytesMut)>,
    events: VecDeque<PeerEvent>,
    /// What sessions no longer held here sent and received.
    retired: SessionStats,
}

impl Peer {
    pub fn new(config: SessionConfig) -> Self {
        Self {
            session: Session::new(config.clone()),
            config,
            routes: BTreeMap::new(),
            started: false,
            main: None,
            rival: None,
            closing: Vec::new(),
            events: VecDeque::new(),
            retired: SessionStats::default(),
        }
    }

    /// ManualStart: connect (or wait for the peer to).
    pub fn start(&mut self, now: Instant) {
        self.started = true;
        self.session.start(now);
        self.pump(now);
    }

    /// ManualStop with `notification` (a Cease) on every connection.
    pub fn stop_with(&mut self, now: Instant, notification: Notification) {
        self.started = false;
        self.session.stop_with(now, notification.clone());
        if let Some(mut rival) = self.rival.take() {
            rival.session.stop_with(now, notification);
            self.retire(rival);
        }
        self.pump(now);
    }

    /// The routes the peer should have.
    pub fn set_routes(&mut self, routes: &BTreeMap<Prefix, RouteAttributes>) {
        self.routes.clone_from(routes);
        self.session.set_routes(routes);
        if let Some(rival) = &mut self.rival {
            rival.session.set_routes(routes);
        }
    }

    /// The next hops of connection `id`, which depend on the interface it
    /// leaves by (see [`Session::set_next_hop_v4`]); call right after
    /// [`Self::handle_connected`], before the session is Established.
    pub fn set_next_hops(&mut self, id: ConnectionId, v4: Option<Ipv4Addr>, v6: Option<(Ipv6Addr, Option<Ipv6Addr>)>) {
        if let Some(session) = self.session_of(id) {
            session.set_next_hop_v4(v4);
            session.set_next_hop_v6(v6);
        }
    }

    /// A connection is up: one we opened after [`PeerEvent::Connect`]
    /// (`initiated_locally`), or one the peer opened and the driver accepted.
    pub fn handle_connected(
        &mut self,
        now: Instant,
        id: ConnectionId,
        local: SocketAddr,
        _remote: SocketAddr,
        initiated_locally: bool,
    ) {
        if !self.started {
            self.refuse(id, CeaseSubcode::ConnectionRejected);
        } else if self.main.is_none() {
            if self.session.state() == State::Idle {
                // Between attempts: the session must expect a connection.
                self.session.start(now);
            }
            self.main = Some((id, initiated_locally));
            self.session.handle_connected(now, local);
        } else if self.session.state() == State::Established {
            self.refuse(id, CeaseSubcode::ConnectionCollisionResolution);
        } else if self.rival.is_some() {
            self.refuse(id, CeaseSubcode::ConnectionRejected);
        } else {
            let mut session = Session::new(self.config.clone());
            session.set_routes(&self.routes);
            session.start(now);
            session.handle_connected(now, local);
            self.rival = Some(Connection { id, initiated_locally, session });
        }
        self.pump(now);
    }

    /// The connection asked for by [`PeerEvent::Connect`] could not be made.
    pub fn handle_connect_failed(&mut self, now: Instant) {
        if self.main.is_none() {
            self.session.handle_closed(now);
        }
        self.pump(now);
    }

    /// Bytes read from connection `id`.
    pub fn handle_bytes(&mut self, now: Instant, id: ConnectionId, bytes: &[u8]) {
        if let Some(session) = self.session_of(id) {
            session.handle_bytes(now, bytes);
        }
        self.pump(now);
    }

    /// Connection `id` closed (by the peer, or after [`PeerEvent::Close`]).
    pub fn handle_closed(&mut self, now: Instant, id: ConnectionId) {
        self.closing.retain(|(c, _)| *c != id);
        if self.main.is_some_and(|(m, _)| m == id) {
            self.main = None;
            self.session.handle_closed(now);
        } else if self.rival.as_ref().is_some_and(|r| r.id == id)
            && let Some(mut rival) = self.rival.take()
        {
            rival.session.handle_closed(now);
            self.retired = self.retired + *rival.session.stats();
        }
        self.pump(now);
    }

    /// Call when `now` has reached [`Self::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.session.handle_timeout(now);
        if let Some(rival) = &mut self.rival {
            rival.session.handle_timeout(now);
        }
        self.pump(now);
    }

    /// Moves what connection `id` has to write into `out`; returns how many bytes.
    #[must_use]
    pub fn poll_transmit(&mut self, id: ConnectionId, out: &mut Vec<u8>) -> usize {
        if let Some(i) = self.closing.iter().position(|(c, _)| *c == id) {
            let (_, bytes) = self.closing.swap_remove(i);
            out.extend_from_slice(&bytes);
            return bytes.len();
        }
        match self.session_of(id) {
            Some(session) => session.poll_transmit(out),
            None => 0,
        }
    }

    /// The next instant [`Self::handle_timeout`] must be called at.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.session.poll_timeout(), self.rival.as_ref().and_then(|r| r.session.poll_timeout())]
            .into_iter()
            .flatten()
            .min()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front()
    }

    /// Takes back out of [`Self::stats`] whole messages taken from
    /// `poll_transmit(id)` but never written (see [`Session::take_back_unsent`]).
    pub fn take_back_unsent(&mut self, id: ConnectionId, unsent: &[u8]) {
        match self.session_of(id) {
            Some(session) => session.take_back_unsent(unsent),
            None => self.retired.take_back_unsent(unsent),
        }
    }

    /// The state of the session (of the connection that carries it).
    #[must_use]
    pub fn state(&self) -> State {
        self.session.state()
    }

    #[must_use]
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.session.negotiated()
    }

    /// The failures of the session (see [`Session::failures`]).
    #[must_use]
    pub fn failures(&self) -> FailureHistory {
        self.session.failures()
    }

    /// The session that carries the peer.
    #[must_use]
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The connection that carries the session, if any.
    #[must_use]
    pub fn carrier(&self) -> Option<ConnectionId> {
        self.main.map(|(id, _)| id)
    }

    /// What all connections to this peer sent and received.
    #[must_use]
    pub fn stats(&self) -> SessionStats {
        let rival = self.rival.as_ref().map(|r| *r.session.stats()).unwrap_or_default();
        self.retired + *self.session.stats() + rival
    }

    fn session_of(&mut self, id: ConnectionId) -> Option<&mut Session> {
        if self.main.is_some_and(|(m, _)| m == id) {
            Some(&mut self.session)
        } else {
            self.rival.as_mut().filter(|r| r.id == id).map(|r| &mut r.session)
        }
    }

    /// Closes a connection no session will run on, with a Cease.
    fn refuse(&mut self, id: ConnectionId, subcode: CeaseSubcode) {
        let msg = Message::Notification(Notification::cease(subcode));
        let mut out = BytesMut::new();
        msg.encode(&Context::default(), &mut out);
        self.retired.sent.add(msg.kind());
        self.retired.bytes_sent += out.len() as u64;
        self.closing.push((id, out));
        self.events.push_back(PeerEvent::Close(id));
    }

    /// Ends a connection whose session is done: its last bytes wait for
    /// the driver, and the driver is told to close it.
    fn retire(&mut self, mut conn: Connection) {
        while conn.session.poll_event().is_some() {}
        let mut last = Vec::new();
        let _ = conn.session.poll_transmit(&mut last);
        self.retired = self.retired + *conn.session.stats();
        self.closing.push((conn.id, BytesMut::from(&last[..])));
        self.events.push_back(PeerEvent::Close(conn.id));
    }

    /// Resolves a collision, then turns session events into peer events.
    fn pump(&mut self, now: Instant) {
        self.resolve(now);
        if let Some(rival) = &mut self.rival {
            let mut failed = false;
            while let Some(event) = rival.session.poll_event() {
                failed |= matches!(event, SessionEvent::Disconnect | SessionEvent::Down(_));
            }
            if failed && let Some(rival) = self.rival.take() {
                self.retire(rival);
            }
        }
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Connect => {
                    if self.main.is_none() && self.rival.is_none() {
                        self.events.push_back(PeerEvent::Connect);
                    }
                }
                SessionEvent::Disconnect => self.detach_main(),
                SessionEvent::Down(reason) => {
                    // A received NOTIFICATION ends the connection too.
                    self.detach_main();
                    self.events.push_back(PeerEvent::Session(SessionEvent::Down(reason)));
                }
                other => self.events.push_back(PeerEvent::Session(other)),
            }
        }
        // Ours is gone while the peer's is opening: the peer's carries the session.
        if self.main.is_none() && self.started && self.rival.is_some() {
            self.promote_rival();
        }
    }

    /// The session's connection is over: its last bytes go out, then it closes.
    fn detach_main(&mut self) {
        if let Some((id, _)) = self.main.take() {
            let mut last = Vec::new();
            let _ = self.session.poll_transmit(&mut last);
            self.closing.push((id, BytesMut::from(&last[..])));
            self.events.push_back(PeerEvent::Close(id));
        }
    }

    /// Makes the rival's connection and session the peer's.
    fn promote_rival(&mut self) -> Option<Connection> {
        let rival = self.rival.take()?;
        let from = self.session.state();
        let mut old = std::mem::replace(&mut self.session, rival.session);
        self.session.inherit_failures(&old);
        let old_main = self.main.replace((rival.id, rival.initiated_locally));
        let to = self.session.state();
        if from != to {
            self.events.push_back(PeerEvent::Session(SessionEvent::StateChanged { from, to }));
        }
        match old_main {
            Some((id, initiated_locally)) => {
                old.discard_transmit();
                Some(Connection { id, initiated_locally, session: old })
            }
            None => {
                while old.poll_event().is_some() {}
                self.retired = self.retired + *old.stats();
                None
            }
        }
    }

    /// §6.8: once the peer's identifier is known, keeps one connection and
    /// closes the other with Cease / Connection Collision Resolution.
    fn resolve(&mut self, now: Instant) {
        let (Some(rival), Some((main_id, main_local))) = (&self.rival, self.main) else { return };
        let keep_main = if self.session.state() == State::Established {
            true
        } else if rival.initiated_locally == main_local {
            // Same side: ours are kept in order, the peer's newest wins.
            main_local
        } else if let Some(n) = rival.session.negotiated().or(self.session.negotiated()) {
            keeps_connection((self.config.router_id, self.config.local_asn), (n.peer_id, n.peer_asn), main_local)
        } else {
            return;
        };
        let rival_id = rival.id;
        let mut loser = if keep_main {
            let Some(mut rival) = self.rival.take() else { return };
            rival.session.discard_transmit();
            rival
        } else {
            // Drain the old session's events first: they are the peer's so far.
            self.drain_main_events();
            let Some(old) = self.promote_rival() else { return };
            old
        };
        loser.session.close_collision(now);
        let (kept, closed) = if keep_main { (main_id, rival_id) } else { (rival_id, main_id) };
        self.retire(loser);
        self.events.push_back(PeerEvent::CollisionResolved { kept, closed });
    }

    /// Forwards the events the session queued before it is replaced.
    fn drain_main_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Connect | SessionEvent::Disconnect | SessionEvent::Down(_) => {}
                other => self.events.push_back(PeerEvent::Session(other)),
            }
        }
    }
}
