//! One BGP peer: a tokio task that drives an [`lb_bgp::session::Session`]
//! over TCP.
//!
//! The task owns the connection and the session's timer; it does nothing the
//! session does not ask for. What the outside may do is send it a
//! [`Command`] (new routes, a connection accepted for it, stop), and read
//! its [`PeerStatus`] and counters.
//!
//! Reading and writing run concurrently in one `select!` loop: a peer slow
//! to read never stops us reading its KEEPALIVEs, and while the socket is
//! slow the session's Adj-RIB-Out coalesces changes instead of queueing
//! UPDATEs (output is pulled from the session only while less than
//! [`WRITE_BATCH`] is waiting).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use lb_bgp::adj_rib_out::RouteAttributes;
use lb_bgp::session::{DownReason, Session, SessionConfig, SessionEvent, State, keeps_connection};
use lb_bgp::wire::notification::{code, subcode};
use lb_bgp::wire::{Notification, Prefix};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::nexthop;
use super::socket::{self, ConnectOptions, SocketError};
pub use crate::view::{PeerCounters, PeerShared, PeerStatus};

/// The routes a peer should have.
pub type Routes = BTreeMap<Prefix, RouteAttributes>;

/// Output is pulled from the session while less than this waits to be written.
pub const WRITE_BATCH: usize = 256 * 1024;

/// How long a closing connection may take to write its last NOTIFICATION.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Everything that defines a session with one peer: a change to any of it
/// means a new session (the old one is closed with a Cease first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// The BGPPeer's name, for logs and status.
    pub name: String,
    pub remote: SocketAddr,
    /// Connect from this address.
    pub source: Option<IpAddr>,
    /// Connect through this interface (`SO_BINDTODEVICE`).
    pub interface: Option<String>,
    /// TCP MD5 signature key (RFC 2385).
    pub md5_key: Option<Vec<u8>>,
    /// IP TTL / hop limit of our packets.
    pub ttl: u8,
    pub connect_timeout: Duration,
    pub session: SessionConfig,
}

/// What a peer task is told.
#[derive(Debug)]
pub enum Command {
    /// The routes the peer should now have.
    Routes(Arc<Routes>),
    /// A connection from the peer, accepted by a listener (passive sessions).
    Accepted(TcpStream),
    /// Send the Cease this says (if a session is up), then end the task.
    Stop(StopReason),
}

/// Why a peer task stops: which Cease its peer gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Administrative Shutdown (RFC 4486), with a message for the peer's
    /// operator (RFC 9003): the speaker is shutting down.
    Shutdown(Option<String>),
    /// Peer De-configured (RFC 4486): removed from the configuration.
    Deconfigured,
    /// Other Configuration Change (RFC 4486): its session parameters
    /// changed; a new session follows.
    ConfigurationChanged,
}

impl StopReason {
    fn notification(&self) -> Notification {
        match self {
            StopReason::Shutdown(message) => Notification::shutdown(message.as_deref().unwrap_or("")),
            StopReason::Deconfigured => Notification::new(code::CEASE, subcode::PEER_DECONFIGURED),
            StopReason::ConfigurationChanged => Notification::new(code::CEASE, subcode::OTHER_CONFIGURATION_CHANGE),
        }
    }
}

/// A running peer task.
#[derive(Debug)]
pub struct PeerHandle {
    spec: PeerSpec,
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<PeerShared>,
    task: tokio::task::JoinHandle<()>,
}

impl PeerHandle {
    /// Starts a task for `spec` announcing `routes`.
    pub fn spawn(spec: PeerSpec, routes: Arc<Routes>) -> Self {
        let (commands, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(PeerShared {
            status: Mutex::new(PeerStatus {
                name: spec.name.clone(),
                remote: spec.remote,
                state: State::Idle,
                established_at: None,
                local: None,
                peer_asn: None,
                routes: routes.len(),
                last_error: None,
            }),
            counters: PeerCounters::default(),
        });
        let task = tokio::spawn(Driver::new(spec.clone(), routes, shared.clone()).run(rx));
        Self { spec, commands, shared, task }
    }

    pub fn spec(&self) -> &PeerSpec {
        &self.spec
    }

    pub fn shared(&self) -> &Arc<PeerShared> {
        &self.shared
    }

    pub fn set_routes(&self, routes: Arc<Routes>) {
        // A send fails only once the task has ended, when routes no longer matter.
        let _ = self.commands.send(Command::Routes(routes));
    }

    /// Hands an accepted connection to the task.
    pub fn accepted(&self, stream: TcpStream) {
        let _ = self.commands.send(Command::Accepted(stream));
    }

    /// Sends the Cease `reason` calls for (if a session is up) and waits for
    /// the task to end.
    pub async fn stop(self, reason: StopReason) {
        let _ = self.commands.send(Command::Stop(reason));
        if let Err(e) = self.task.await {
            warn!(peer = %self.spec.name, error = %e, "peer task failed");
        }
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<TcpStream, SocketError>> + Send>>;

/// The state of one peer task.
struct Driver {
    spec: PeerSpec,
    session: Session,
    shared: Arc<PeerShared>,
    reader: Option<OwnedReadHalf>,
    writer: Option<OwnedWriteHalf>,
    connecting: Option<Connecting>,
    /// Bytes to write; `out[written..]` is still pending.
    out: Vec<u8>,
    written: usize,
    stopping: bool,
    /// A failed attempt was logged at warning level since the last session;
    /// later ones go to debug, so a peer that is down does not flood the log.
    warned: bool,
    /// Whether the main connection is the one we opened (RFC 4271 §6.8).
    initiated_locally: bool,
    /// A second connection, accepted while the main one was opening.
    rival: Option<Rival>,
    /// The routes, for a rival session's Adj-RIB-Out.
    routes: Arc<Routes>,
}

/// The second connection of a collision (RFC 4271 §6.8): both speakers
/// connected at once. It runs its own session until the peer's BGP
/// identifier is known from either OPEN; then [`keeps_connection`] picks
/// the survivor and the other gets Cease / Connection Collision Resolution.
struct Rival {
    session: Session,
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    out: Vec<u8>,
    written: usize,
    local: SocketAddr,
    /// Events it produced, replayed if it becomes the main session.
    events: Vec<SessionEvent>,
    initiated_locally: bool,
    /// Its connection ended (before the session said so, in DelayOpen).
    closed: bool,
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl Driver {
    fn new(spec: PeerSpec, routes: Arc<Routes>, shared: Arc<PeerShared>) -> Self {
        let mut session = Session::new(spec.session.clone());
        session.set_routes(&routes);
        Self {
            spec,
            session,
            shared,
            reader: None,
            writer: None,
            connecting: None,
            out: Vec::new(),
            written: 0,
            stopping: false,
            warned: false,
            initiated_locally: true,
            rival: None,
            routes,
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        self.session.start(now());
        let mut buf = vec![0u8; 64 * 1024];
        let mut rival_buf = vec![0u8; 4096];
        loop {
            self.handle_events().await;
            self.drive_rival().await;
            if self.stopping && self.writer.is_none() && self.connecting.is_none() && self.rival.is_none() {
                break;
            }
            if self.writer.is_some() && self.out.len() - self.written < WRITE_BATCH {
                let before = self.out.len();
                self.session.poll_transmit(&mut self.out);
                self.shared.counters.count_sent(&self.out[before..]);
            }
            if let Some(rival) = &mut self.rival {
                let before = rival.out.len();
                rival.session.poll_transmit(&mut rival.out);
                self.shared.counters.count_sent(&rival.out[before..]);
            }
            let deadline = [self.session.poll_timeout(), self.rival.as_ref().and_then(|r| r.session.poll_timeout())]
                .into_iter()
                .flatten()
                .min()
                .map(Instant::from_std);
            let pending_write = self.written < self.out.len();
            let has_rival = self.rival.is_some();
            let rival_pending = self.rival.as_ref().is_some_and(|r| r.written < r.out.len());
            let rival_read_buf = &mut rival_buf;
            let (rival_reader, rival_writer) = match self.rival.as_mut() {
                Some(r) => (Some(&mut r.reader), Some((&mut r.writer, &r.out[r.written..]))),
                None => (None, None),
            };
            tokio::select! {
                result = async { self.connecting.as_mut().expect("guarded").await }, if self.connecting.is_some() => {
                    self.connecting = None;
                    match result {
                        Ok(stream) if self.writer.is_some() => self.collide(stream, true),
                        Ok(stream) => {
                            self.initiated_locally = true;
                            self.connected(stream);
                        }
                        Err(e) => {
                            if std::mem::replace(&mut self.warned, true) {
                                debug!(peer = %self.spec.name, error = %e, "connect failed");
                            } else {
                                warn!(event = "connectFailed", peer = %self.spec.name, remote = %self.spec.remote, error = %e, "cannot connect to the BGP peer; retrying");
                            }
                            self.shared.update(|s| s.last_error = Some(e.to_string()));
                            self.session.handle_closed(now());
                        }
                    }
                }
                result = async { self.reader.as_mut().expect("guarded").read(&mut buf).await }, if self.reader.is_some() => {
                    match result {
                        Ok(0) => self.lost("connection closed by peer".into()),
                        Ok(n) => {
                            self.shared.counters.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                            self.session.handle_bytes(now(), &buf[..n]);
                        }
                        Err(e) => self.lost(format!("read: {e}")),
                    }
                }
                result = async { self.writer.as_mut().expect("guarded").write(&self.out[self.written..]).await }, if self.writer.is_some() && pending_write => {
                    match result {
                        Ok(n) => {
                            self.written += n;
                            if self.written == self.out.len() {
                                self.out.clear();
                                self.written = 0;
                            }
                        }
                        Err(e) => self.lost(format!("write: {e}")),
                    }
                }
                result = async move { rival_reader.expect("guarded").read(rival_read_buf).await }, if has_rival => {
                    if let Some(rival) = &mut self.rival {
                        match result {
                            Ok(n) if n > 0 => {
                                self.shared.counters.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                                rival.session.handle_bytes(now(), &rival_buf[..n]);
                            }
                            _ => {
                                rival.closed = true;
                                rival.session.handle_closed(now());
                            }
                        }
                    }
                }
                result = async move {
                    let (writer, pending) = rival_writer.expect("guarded");
                    writer.write(pending).await
                }, if rival_pending => {
                    if let Some(rival) = &mut self.rival {
                        match result {
                            Ok(n) => {
                                rival.written += n;
                                if rival.written == rival.out.len() {
                                    rival.out.clear();
                                    rival.written = 0;
                                }
                            }
                            Err(_) => {
                                rival.closed = true;
                                rival.session.handle_closed(now());
                            }
                        }
                    }
                }
                () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    self.session.handle_timeout(now());
                    if let Some(rival) = &mut self.rival {
                        rival.session.handle_timeout(now());
                    }
                }
                command = commands.recv(), if !self.stopping => match command {
                    Some(Command::Routes(routes)) => {
                        self.shared.update(|s| s.routes = routes.len());
                        self.session.set_routes(&routes);
                        if let Some(rival) = &mut self.rival {
                            rival.session.set_routes(&routes);
                        }
                        self.routes = routes;
                    }
                    Some(Command::Accepted(stream)) => self.accepted(stream),
                    Some(Command::Stop(reason)) => self.stop(&reason),
                    None => self.stop(&StopReason::Shutdown(None)),
                },
            }
        }
        self.shared.update(|s| {
            s.state = State::Idle;
            s.established_at = None;
            s.local = None;
        });
    }

    fn stop(&mut self, reason: &StopReason) {
        self.stopping = true;
        self.connecting = None;
        self.session.stop_with(now(), reason.notification());
        if let Some(rival) = &mut self.rival {
            rival.session.stop_with(now(), reason.notification());
        }
    }

    fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            remote: self.spec.remote,
            source: self.spec.source,
            bind_device: self.spec.interface.clone(),
            md5_key: self.spec.md5_key.clone(),
            ttl: self.spec.ttl,
            timeout: self.spec.connect_timeout,
        }
    }

    fn connected(&mut self, stream: TcpStream) {
        let Some((local, remote)) = attach(&mut self.session, &stream) else {
            return self.session.handle_closed(now());
        };
        self.shared.counters.connects.fetch_add(1, Ordering::Relaxed);
        let (reader, writer) = stream.into_split();
        self.reader = Some(reader);
        self.writer = Some(writer);
        self.out.clear();
        self.written = 0;
        self.shared.update(|s| s.local = Some(local));
        debug!(peer = %self.spec.name, %local, %remote, "connected");
        self.session.handle_connected(now(), local);
    }

    /// A connection from the peer. Taken as the main one while we have none
    /// (a passive session waiting, or an active one between attempts, or
    /// with an attempt in flight, which then becomes the rival when it
    /// completes); while ours is opening, it becomes the rival of a
    /// collision (§6.8).
    fn accepted(&mut self, stream: TcpStream) {
        if let Err(e) = socket::set_ttl(&stream, self.spec.ttl) {
            warn!(peer = %self.spec.name, error = %e, "cannot set the TTL of an accepted connection");
        }
        if let Err(e) = socket::set_nodelay(&stream) {
            warn!(peer = %self.spec.name, error = %e, "cannot set TCP_NODELAY");
        }
        if self.stopping {
            return;
        }
        if self.writer.is_some() {
            return self.collide(stream, false);
        }
        if matches!(self.session.state(), State::Idle) {
            // Between attempts: the session must be expecting a connection.
            self.session.start(now());
        }
        self.initiated_locally = false;
        self.connected(stream);
    }

    /// A second connection while the main one is up: the rival of a
    /// collision while the main session is opening; refused once it is
    /// established (§6.8) or while another collision is being resolved.
    fn collide(&mut self, stream: TcpStream, initiated_locally: bool) {
        let opening = matches!(self.session.state(), State::OpenSent | State::OpenConfirm);
        if self.stopping || !opening || self.rival.is_some() {
            debug!(peer = %self.spec.name, state = ?self.session.state(), "refusing a second connection");
            return;
        }
        self.start_rival(stream, initiated_locally);
    }

    fn start_rival(&mut self, stream: TcpStream, initiated_locally: bool) {
        let mut session = Session::new(self.spec.session.clone());
        session.set_routes(&self.routes);
        let Some((local, remote)) = attach(&mut session, &stream) else { return };
        // A session that answers this connection, not one that dials.
        session.start(now());
        session.handle_connected(now(), local);
        let events = std::iter::from_fn(|| session.poll_event())
            .filter(|e| !matches!(e, SessionEvent::Connect | SessionEvent::Disconnect))
            .collect();
        let (reader, writer) = stream.into_split();
        self.shared.counters.connects.fetch_add(1, Ordering::Relaxed);
        debug!(peer = %self.spec.name, %local, %remote, "connection collision: running both until the peer's OPEN");
        self.rival = Some(Rival {
            session,
            reader,
            writer,
            out: Vec::new(),
            written: 0,
            local,
            events,
            initiated_locally,
            closed: false,
        });
    }

    /// Resolves a collision once the peer's BGP identifier is known, and
    /// drops a rival whose connection failed.
    async fn drive_rival(&mut self) {
        let Some(rival) = &mut self.rival else { return };
        let mut failed = false;
        while let Some(event) = rival.session.poll_event() {
            match event {
                SessionEvent::Disconnect | SessionEvent::Down(_) => failed = true,
                SessionEvent::Connect => {}
                other => rival.events.push(other),
            }
        }
        let main_open = self.writer.is_some() && self.session.state() != State::Idle;
        let peer = rival.session.negotiated().or(self.session.negotiated()).map(|n| (n.peer_id, n.peer_asn));
        let failed = failed || rival.closed;
        let keep_main = if failed {
            true
        } else if !main_open {
            // Ours is gone meanwhile: the peer's connection carries the session.
            false
        } else if self.session.state() == State::Established {
            // §6.8: a collision with an established session closes the new one.
            true
        } else if rival.initiated_locally == self.initiated_locally {
            // Both opened by the same side, which §6.8 cannot tell apart. Ours
            // are one at a time; a peer that connects again has given up on
            // its first connection (it rebooted, say): keep the newer.
            self.initiated_locally
        } else if let Some(peer) = peer {
            let local = (self.spec.session.router_id, self.spec.session.local_asn);
            keeps_connection(local, peer, self.initiated_locally)
        } else {
            return;
        };
        let Some(mut rival) = self.rival.take() else { return };
        if keep_main {
            if !failed {
                debug!(peer = %self.spec.name, "collision: keeping the first connection");
                close_loser(&mut rival.session, &mut rival.out, rival.written, &self.shared);
            }
            flush(&mut rival.session, rival.writer, rival.out, rival.written, &self.shared);
            return;
        }
        debug!(peer = %self.spec.name, "collision: keeping the other connection");
        if let Some(writer) = self.writer.take() {
            close_loser(&mut self.session, &mut self.out, self.written, &self.shared);
            flush(&mut self.session, writer, std::mem::take(&mut self.out), self.written, &self.shared);
        }
        self.reader = Some(rival.reader);
        self.writer = Some(rival.writer);
        self.session = rival.session;
        self.out = rival.out;
        self.written = rival.written;
        self.initiated_locally = rival.initiated_locally;
        self.shared.update(|s| {
            s.local = Some(rival.local);
            s.state = self.session.state();
        });
        for event in rival.events {
            self.handle_event(event).await;
        }
    }

    fn lost(&mut self, why: String) {
        debug!(peer = %self.spec.name, reason = %why, "connection lost");
        self.reader = None;
        self.writer = None;
        self.out.clear();
        self.written = 0;
        self.shared.update(|s| s.last_error = Some(why));
        self.session.handle_closed(now());
    }

    /// Acts on everything the session asked for since the last call.
    async fn handle_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            self.handle_event(event).await;
        }
    }

    async fn handle_event(&mut self, event: SessionEvent) {
        {
            match event {
                SessionEvent::Connect => {
                    // The retry timer can fire while an attempt is still in
                    // flight: let that attempt run to its own timeout.
                    if self.writer.is_none() && self.connecting.is_none() {
                        let opts = self.connect_options();
                        self.initiated_locally = true;
                        self.connecting = Some(Box::pin(async move { socket::connect(&opts).await }));
                    }
                }
                SessionEvent::Disconnect => self.close().await,
                SessionEvent::StateChanged { to, .. } => {
                    self.shared.update(|s| s.state = to);
                }
                SessionEvent::Established(n) => {
                    self.warned = false;
                    self.shared.counters.sessions_established.fetch_add(1, Ordering::Relaxed);
                    self.shared.update(|s| {
                        s.established_at = Some(SystemTime::now());
                        s.peer_asn = Some(n.peer_asn);
                        s.last_error = None;
                    });
                    info!(
                        event = "sessionUp",
                        peer = %self.spec.name,
                        remote = %self.spec.remote,
                        peer_asn = n.peer_asn,
                        peer_id = %n.peer_id,
                        hold_time = n.hold_time,
                        ipv4 = n.ipv4,
                        ipv6 = n.ipv6,
                        "BGP session established"
                    );
                }
                SessionEvent::Down(reason) => {
                    let was_up = self.shared.status().established_at.is_some();
                    let why = match &reason {
                        DownReason::Sent(n) => format!("sent NOTIFICATION {n}"),
                        DownReason::Received(n) => format!("received NOTIFICATION {n}"),
                        DownReason::ConnectionLost => "connection lost".to_string(),
                        DownReason::Stopped => "stopped".to_string(),
                        other => format!("{other:?}"),
                    };
                    self.shared.update(|s| {
                        s.established_at = None;
                        s.peer_asn = None;
                        s.last_error = Some(why.clone());
                    });
                    // The session is done with this connection, whether or not it
                    // asked to close it (a received NOTIFICATION ends it too).
                    self.close().await;
                    if was_up {
                        warn!(event = "sessionDown", peer = %self.spec.name, remote = %self.spec.remote, reason = %why, "BGP session down");
                    } else {
                        debug!(peer = %self.spec.name, reason = %why, "session attempt failed");
                    }
                }
                SessionEvent::RouteRefreshRequested { afi, safi } => {
                    debug!(peer = %self.spec.name, afi, safi, "route refresh requested");
                }
                SessionEvent::UpdateIgnored(why) => {
                    warn!(peer = %self.spec.name, reason = %why, "ignored a malformed UPDATE (RFC 7606)");
                }
                other => debug!(peer = %self.spec.name, event = ?other, "session event"),
            }
        }
    }

    /// Writes what is pending (a NOTIFICATION, usually), then closes.
    /// UPDATEs not yet begun are dropped (the session is over), so that a
    /// slow peer still gets the NOTIFICATION within the grace time.
    async fn close(&mut self) {
        let end = message_end(&self.out, self.written);
        self.shared.counters.uncount(&self.out[end..]);
        self.out.truncate(end);
        let before = self.out.len();
        self.session.poll_transmit(&mut self.out);
        self.shared.counters.count_sent(&self.out[before..]);
        self.reader = None;
        if let Some(writer) = self.writer.take()
            && !write_last(writer, &self.out[self.written..]).await
        {
            debug!(peer = %self.spec.name, "connection closed before the last bytes were written");
        }
        self.out.clear();
        self.written = 0;
        self.shared.update(|s| s.local = None);
    }
}

/// Ends the losing connection of a collision: what it has not begun to
/// write (the KEEPALIVE answering the peer's OPEN, say) is dropped, so the
/// peer never sees that session established, and Cease / Connection
/// Collision Resolution follows.
fn close_loser(session: &mut Session, out: &mut Vec<u8>, written: usize, shared: &PeerShared) {
    let end = message_end(out, written);
    shared.counters.uncount(&out[end..]);
    out.truncate(end);
    let mut unsent = Vec::new();
    session.poll_transmit(&mut unsent);
    session.close_collision(now());
}

/// Moves what `session` still has to say into `out`, then writes
/// `out[written..]` within the grace time and shuts the connection down.
fn flush(session: &mut Session, writer: OwnedWriteHalf, mut out: Vec<u8>, written: usize, shared: &PeerShared) {
    let before = out.len();
    session.poll_transmit(&mut out);
    shared.counters.count_sent(&out[before..]);
    // On its own task: the connection kept goes on meanwhile.
    tokio::spawn(async move { write_last(writer, out.get(written..).unwrap_or_default()).await });
}

/// Writes a connection's last bytes and shuts it down, within the grace
/// time; whether all of it went out.
async fn write_last(mut writer: OwnedWriteHalf, bytes: &[u8]) -> bool {
    let done = tokio::time::timeout(CLOSE_GRACE, async {
        writer.write_all(bytes).await?;
        writer.shutdown().await
    })
    .await;
    matches!(done, Ok(Ok(())))
}

/// Prepares `session` for the connection `stream`: its next hops come from
/// the interface the connection uses. Returns the local and remote
/// addresses, IPv4 peers on a dual-stack listener shown as plain IPv4 (the
/// next hop must be the plain IPv4 address).
fn attach(session: &mut Session, stream: &TcpStream) -> Option<(SocketAddr, SocketAddr)> {
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (local, remote) = (canonical(stream.local_addr().ok()?), canonical(stream.peer_addr().ok()?));
    let addresses = nexthop::interface_addresses();
    session.set_next_hop_v6(nexthop::ipv6_next_hop(&addresses, local.ip(), remote.ip()));
    session.set_next_hop_v4(nexthop::ipv4_next_hop(&addresses, local.ip()));
    Some((local, remote))
}

/// The end of the message that `out[at..]` begins inside of (`out` holds
/// whole messages): writing stops there without cutting one in half.
fn message_end(out: &[u8], at: usize) -> usize {
    let mut end = 0;
    while end < out.len() && end < at {
        let Some(len) = out.get(end + 16..end + 18).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])).max(19))
        else {
            return out.len();
        };
        end += len;
    }
    end.min(out.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_cuts_at_a_message_boundary() {
        let msg = |len: u16| {
            let mut m = vec![0xff; 16];
            m.extend_from_slice(&len.to_be_bytes());
            m.push(2);
            m.resize(usize::from(len), 0);
            m
        };
        let out: Vec<u8> = [msg(19), msg(30), msg(25)].concat();
        assert_eq!(message_end(&out, 0), 0, "nothing begun: nothing kept");
        assert_eq!(message_end(&out, 5), 19, "the first message is finished");
        assert_eq!(message_end(&out, 19), 19);
        assert_eq!(message_end(&out, 20), 49);
        assert_eq!(message_end(&out, 74), 74);
    }

    #[test]
    fn counts_messages_by_type() {
        let counters = PeerCounters::default();
        let mut bytes = Vec::new();
        for (ty, len) in [(4u8, 19u16), (2, 23), (2, 30), (3, 21)] {
            bytes.extend_from_slice(&[0xff; 16]);
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.push(ty);
            bytes.resize(bytes.len() + usize::from(len) - 19, 0);
        }
        counters.count_sent(&bytes);
        assert_eq!(counters.keepalives_sent.load(Ordering::Relaxed), 1);
        assert_eq!(counters.updates_sent.load(Ordering::Relaxed), 2);
        assert_eq!(counters.notifications_sent.load(Ordering::Relaxed), 1);
        assert_eq!(counters.bytes_sent.load(Ordering::Relaxed), bytes.len() as u64);
        // The last UPDATE and the NOTIFICATION were never written.
        counters.uncount(&bytes[42..]);
        assert_eq!(counters.updates_sent.load(Ordering::Relaxed), 1);
        assert_eq!(counters.notifications_sent.load(Ordering::Relaxed), 0);
        assert_eq!(counters.bytes_sent.load(Ordering::Relaxed), 42);
    }
}
