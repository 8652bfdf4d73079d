//! One BGP peer: a tokio task that drives an [`lb_bgp::peer::Peer`] over
//! TCP.
//!
//! The task owns the connections (one, or two during a collision) and the
//! peer's timer, and does nothing the pure `Peer` does not ask for: it
//! connects on [`PeerEvent::Connect`], closes on [`PeerEvent::Close`],
//! moves bytes, and reports. Which connection survives a collision, when
//! to retry, what to send: all of it is decided in `lb-bgp`. What the
//! outside may do is send it a [`Command`] (new routes, a connection
//! accepted for it, stop), and read its [`PeerStatus`].
//!
//! Reading and writing run concurrently over every connection in one
//! `select!` loop: a peer slow to read never stops us reading its
//! KEEPALIVEs, and while the socket is slow the session's Adj-RIB-Out
//! coalesces changes instead of queueing UPDATEs (output is pulled only
//! while less than [`WRITE_BATCH`] is waiting).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use lb_bgp::adj_rib_out::RouteAttributes;
use lb_bgp::peer::{ConnectionId, Peer, PeerEvent};
use lb_bgp::session::{DownReason, SessionConfig, SessionEvent, State};
use lb_bgp::wire::header::message_end;
use lb_bgp::wire::{CeaseSubcode, Notification, Prefix};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::nexthop;
use super::socket::{self, ConnectOptions, SocketError};
use crate::view::error_chain;
pub use crate::view::{PeerShared, PeerStatus};

/// The routes a peer should have.
pub type Routes = BTreeMap<Prefix, RouteAttributes>;

/// Output is pulled from the session while less than this waits to be written.
pub const WRITE_BATCH: usize = 256 * 1024;

/// A peer that stays unreachable for the same reason is logged at most
/// this often.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

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
            StopReason::Deconfigured => Notification::cease(CeaseSubcode::PeerDeconfigured),
            StopReason::ConfigurationChanged => Notification::cease(CeaseSubcode::OtherConfigurationChange),
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
        let shared = Arc::new(PeerShared::new(PeerStatus::new(&spec.name, spec.remote, routes.len())));
        let task = tokio::spawn(Driver::new(spec.clone(), &routes, shared.clone()).run(rx));
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

/// One TCP connection of the peer.
struct Connection {
    id: ConnectionId,
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    /// Bytes to write; `out[written..]` is still pending.
    out: Vec<u8>,
    written: usize,
}

/// What happened on one of the connections.
enum Io {
    Read(std::io::Result<usize>),
    Wrote(std::io::Result<usize>),
}

/// The state of one peer task.
struct Driver {
    spec: PeerSpec,
    peer: Peer,
    shared: Arc<PeerShared>,
    connections: Vec<Connection>,
    connecting: Option<Connecting>,
    next_id: u64,
    /// Which connection is polled first, so that none starves the other.
    turn: usize,
    /// Connections writing their last bytes: the task ends after them, so
    /// a stopping speaker's Cease reaches its peers.
    closing: Vec<tokio::task::JoinHandle<()>>,
    stopping: bool,
    /// The last failed attempt that was logged, and when: the first is a
    /// warning, later ones info, at most one a minute for the same reason,
    /// so a peer that is down is neither silent nor flooding the log.
    logged_failure: Option<(String, std::time::Instant)>,
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// The next read or write that completes on any of `connections`.
async fn next_io(connections: &mut [Connection], buf: &mut [u8], turn: usize) -> (usize, Io) {
    std::future::poll_fn(|cx| {
        let n = connections.len();
        for k in 0..n {
            let i = (turn + k) % n;
            let c = &mut connections[i];
            if c.written < c.out.len()
                && let Poll::Ready(result) = Pin::new(&mut c.writer).poll_write(cx, &c.out[c.written..])
            {
                return Poll::Ready((i, Io::Wrote(result)));
            }
            let mut read = ReadBuf::new(buf);
            if let Poll::Ready(result) = Pin::new(&mut c.reader).poll_read(cx, &mut read) {
                return Poll::Ready((i, Io::Read(result.map(|()| read.filled().len()))));
            }
        }
        Poll::Pending
    })
    .await
}

impl Driver {
    fn new(spec: PeerSpec, routes: &Routes, shared: Arc<PeerShared>) -> Self {
        let mut peer = Peer::new(spec.session.clone());
        peer.set_routes(routes);
        Self {
            spec,
            peer,
            shared,
            connections: Vec::new(),
            connecting: None,
            next_id: 0,
            turn: 0,
            closing: Vec::new(),
            stopping: false,
            logged_failure: None,
        }
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        self.peer.start(now());
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            self.drain();
            if self.stopping && self.connections.is_empty() {
                break;
            }
            let deadline = self.peer.poll_timeout().map(Instant::from_std);
            self.turn = self.turn.wrapping_add(1);
            tokio::select! {
                result = async { self.connecting.as_mut().expect("guarded").await }, if self.connecting.is_some() => {
                    self.connecting = None;
                    match result {
                        Ok(stream) => self.attach(stream, true),
                        Err(e) => self.connect_failed(&e),
                    }
                }
                (i, io) = next_io(&mut self.connections, &mut buf, self.turn), if !self.connections.is_empty() => {
                    let id = self.connections[i].id;
                    match io {
                        Io::Read(Ok(0)) => self.lost(i, "connection closed by peer".into()),
                        Io::Read(Ok(n)) => self.peer.handle_bytes(now(), id, &buf[..n]),
                        Io::Read(Err(e)) => self.lost(i, format!("read: {e}")),
                        Io::Wrote(Ok(n)) => {
                            let c = &mut self.connections[i];
                            c.written += n;
                            if c.written == c.out.len() {
                                c.out.clear();
                                c.written = 0;
                            }
                        }
                        Io::Wrote(Err(e)) => self.lost(i, format!("write: {e}")),
                    }
                }
                () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    self.peer.handle_timeout(now());
                }
                command = commands.recv(), if !self.stopping => match command {
                    Some(Command::Routes(routes)) => {
                        self.shared.update(|s| s.routes = routes.len());
                        self.peer.set_routes(&routes);
                    }
                    Some(Command::Accepted(stream)) => self.accepted(stream),
                    Some(Command::Stop(reason)) => self.stop(&reason),
                    None => self.stop(&StopReason::Shutdown(None)),
                },
            }
        }
        for task in std::mem::take(&mut self.closing) {
            let _ = task.await;
        }
        self.shared.update(|s| {
            s.state = State::Idle;
            s.established_at = None;
            s.local = None;
        });
    }

    /// Moves the peer's output to the connections and acts on its events,
    /// until it has nothing more to say.
    ///
    /// Events first: a connection to close takes its last bytes (the
    /// NOTIFICATION) itself, after dropping what it had not begun to write,
    /// rather than have them queued behind that.
    fn drain(&mut self) {
        while let Some(event) = self.peer.poll_event() {
            self.handle_event(event);
        }
        for c in &mut self.connections {
            if c.out.len() - c.written < WRITE_BATCH {
                let _ = self.peer.poll_transmit(c.id, &mut c.out);
            }
        }
        let stats = self.peer.stats();
        if self.shared.status().stats != stats {
            self.shared.update(|s| s.stats = stats);
        }
    }

    /// An outgoing connection could not be made: the session backs off,
    /// and the log says why and when the next attempt comes.
    fn connect_failed(&mut self, error: &SocketError) {
        let why = error_chain(error);
        self.shared.update(|s| s.last_error = Some(why.clone()));
        self.peer.handle_connect_failed(now());
        let retry_in = self.peer.poll_timeout().map(|at| at.saturating_duration_since(now()));
        let retry = retry_in.map_or_else(|| "-".to_string(), |d| format!("{:.1}s", d.as_secs_f64()));
        let since = self.logged_failure.as_ref().map(|(last, at)| (last == &why, at.elapsed()));
        match since {
            None => {
                warn!(event = "connectFailed", peer = %self.spec.name, remote = %self.spec.remote, error = %why, retry_in = %retry, "cannot connect to the BGP peer; retrying");
            }
            Some((same, elapsed)) if !same || elapsed >= FAILURE_LOG_EVERY => {
                info!(event = "connectFailed", peer = %self.spec.name, remote = %self.spec.remote, error = %why, retry_in = %retry, "still cannot connect to the BGP peer; retrying");
            }
            Some(_) => {
                debug!(peer = %self.spec.name, error = %why, retry_in = %retry, "connect failed");
                return;
            }
        }
        self.logged_failure = Some((why, now()));
    }

    fn stop(&mut self, reason: &StopReason) {
        self.stopping = true;
        self.connecting = None;
        self.peer.stop_with(now(), reason.notification());
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

    /// A connection from the peer (passive side). The pure `Peer` decides
    /// what becomes of it: the session's, the rival of a collision, or
    /// refused.
    fn accepted(&mut self, stream: TcpStream) {
        if let Err(e) = socket::set_ttl(&stream, self.spec.ttl) {
            warn!(peer = %self.spec.name, error = %error_chain(&e), "cannot set the TTL of an accepted connection");
        }
        if let Err(e) = socket::set_nodelay(&stream) {
            warn!(peer = %self.spec.name, error = %error_chain(&e), "cannot set TCP_NODELAY");
        }
        if !self.stopping {
            self.attach(stream, false);
        }
    }

    /// Gives `stream` to the peer: its next hops come from the interface the
    /// connection uses.
    fn attach(&mut self, stream: TcpStream, initiated_locally: bool) {
        // IPv4 peers on a dual-stack listener show as plain IPv4: the next
        // hop must be the plain IPv4 address.
        let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
        let (Ok(local), Ok(remote)) = (stream.local_addr(), stream.peer_addr()) else {
            if initiated_locally {
                self.peer.handle_connect_failed(now());
            }
            return;
        };
        let (local, remote) = (canonical(local), canonical(remote));
        let id = ConnectionId(self.next_id);
        self.next_id += 1;
        let (reader, writer) = stream.into_split();
        self.connections.push(Connection { id, reader, writer, out: Vec::new(), written: 0 });
        self.shared.update(|s| s.connects += 1);
        debug!(peer = %self.spec.name, %local, %remote, initiated_locally, "connected");
        self.peer.handle_connected(now(), id, local, remote, initiated_locally);
        // Known to the peer now (unless refused); used once Established.
        let addresses = nexthop::interface_addresses();
        self.peer.set_next_hops(
            id,
            nexthop::ipv4_next_hop(&addresses, local.ip()),
            nexthop::ipv6_next_hop(&addresses, local.ip(), remote.ip()),
        );
        if self.peer.carrier() == Some(id) {
            self.shared.update(|s| s.local = Some(local));
        }
    }

    /// Connection `i` failed or was closed by the peer.
    fn lost(&mut self, i: usize, why: String) {
        let c = self.connections.swap_remove(i);
        debug!(peer = %self.spec.name, reason = %why, "connection lost");
        if self.peer.carrier() == Some(c.id) {
            self.shared.update(|s| {
                s.last_error = Some(why);
                s.local = None;
            });
        }
        self.peer.handle_closed(now(), c.id);
    }

    /// Writes connection `id`'s last bytes and closes it. What it had not
    /// begun to write is dropped (the session is over), so that a slow
    /// peer still gets the NOTIFICATION within the grace time; the peer
    /// takes those messages back out of its counts.
    fn close(&mut self, id: ConnectionId) {
        let Some(i) = self.connections.iter().position(|c| c.id == id) else { return };
        let mut c = self.connections.swap_remove(i);
        let end = message_end(&c.out, c.written);
        self.peer.take_back_unsent(id, &c.out[end..]);
        c.out.truncate(end);
        let _ = self.peer.poll_transmit(id, &mut c.out);
        self.peer.handle_closed(now(), id);
        let name = self.spec.name.clone();
        // On its own task: a kept connection goes on meanwhile.
        self.closing.retain(|task| !task.is_finished());
        self.closing.push(tokio::spawn(async move {
            if !write_last(c.writer, c.out.get(c.written..).unwrap_or_default()).await {
                debug!(peer = %name, "connection closed before the last bytes were written");
            }
        }));
        if self.peer.carrier().is_none() {
            self.shared.update(|s| s.local = None);
        }
    }

    fn handle_event(&mut self, event: PeerEvent) {
        match event {
            PeerEvent::Connect => {
                if self.connecting.is_none() && !self.stopping {
                    let opts = self.connect_options();
                    self.connecting = Some(Box::pin(async move { socket::connect(&opts).await }));
                }
            }
            PeerEvent::Close(id) => self.close(id),
            PeerEvent::CollisionResolved { kept, closed } => {
                debug!(peer = %self.spec.name, kept = kept.0, closed = closed.0, "connection collision resolved (RFC 4271 §6.8)");
            }
            PeerEvent::Session(event) => self.session_event(event),
            other => debug!(peer = %self.spec.name, event = ?other, "peer event"),
        }
    }

    fn session_event(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::StateChanged { to, .. } => self.shared.update(|s| s.state = to),
            SessionEvent::Established(n) => {
                self.logged_failure = None;
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
                let failures = self.peer.failures();
                let why =
                    if failures.repeats > 1 { format!("{why} ({} times in a row)", failures.repeats) } else { why };
                self.shared.update(|s| {
                    s.established_at = None;
                    s.peer_asn = None;
                    s.last_error = Some(why.clone());
                    s.consecutive_failures = failures.consecutive;
                });
                if was_up {
                    warn!(event = "sessionDown", peer = %self.spec.name, remote = %self.spec.remote, reason = %why, consecutive_failures = failures.consecutive, "BGP session down");
                } else if failures.repeats == 3 {
                    // The same failure again and again: say so once, loudly;
                    // the session backs off meanwhile.
                    warn!(event = "sessionFailing", peer = %self.spec.name, remote = %self.spec.remote, reason = %why, "the BGP session keeps failing the same way; backing off");
                } else {
                    debug!(peer = %self.spec.name, reason = %why, "session attempt failed");
                }
            }
            SessionEvent::RouteRefreshRequested { afi, safi } => {
                debug!(peer = %self.spec.name, ?afi, ?safi, "route refresh requested");
            }
            SessionEvent::UpdateIgnored(why) => {
                warn!(peer = %self.spec.name, reason = %why, "ignored a malformed UPDATE (RFC 7606)");
            }
            other => debug!(peer = %self.spec.name, event = ?other, "session event"),
        }
    }
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
