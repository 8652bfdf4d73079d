//! The driver's loop: one `select!` over shutdown, rtnetlink, the desired
//! ownership, the peers' MACs, every interface's socket and the
//! responder's timer. After each wake-up the responder's frames go out and
//! its events are forwarded; the status is republished when something
//! other than a counter changed, and at most every [`COUNTERS_EVERY`] for
//! counters.

use std::collections::{BTreeMap, BTreeSet};
use std::future::poll_fn;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use lb_arp::interfaces::{Exclusions, Link, answering_interfaces, answers_ndp, selectable, selectable_named};
use lb_arp::wire::{MacAddr, solicited_node_mac};
use lb_arp::{Responder, ResponderEvent};
use tokio::sync::{mpsc, watch};

use super::links::LinkWatch;
use super::socket::PacketSocket;
use super::{InterfaceStatus, IpStatus, L2Config, L2Event, L2Status, Ownership};

/// Counters alone are republished at most this often.
pub const COUNTERS_EVERY: Duration = Duration::from_millis(100);

/// Receive buffer: any Ethernet frame.
const FRAME_BUF: usize = 2048;

/// What woke the loop.
enum Wake {
    Shutdown,
    Links(io::Result<bool>),
    Desired,
    Peers,
    Frame { interface: String, result: io::Result<Option<usize>> },
    Timer,
}

/// An open socket and the interface it serves.
#[derive(Debug)]
struct Port {
    socket: PacketSocket,
    mac: MacAddr,
}

struct Driver {
    exclusions: Exclusions,
    responder: Responder,
    links: LinkWatch,
    ports: BTreeMap<String, Port>,
    desired: watch::Receiver<Arc<Ownership>>,
    peer_macs: watch::Receiver<Arc<BTreeSet<MacAddr>>>,
    peers_open: bool,
    shutdown: watch::Receiver<bool>,
    /// Each desired IP with the interfaces it is answered on (before stand-downs).
    answering: BTreeMap<IpAddr, BTreeSet<String>>,
    status_tx: watch::Sender<Arc<L2Status>>,
    events_tx: mpsc::Sender<L2Event>,
    events_dropped: u64,
    /// The interfaces last published.
    interfaces: BTreeMap<String, InterfaceStatus>,
    /// Counters may have changed since the last publication: publish by then.
    publish_at: Option<Instant>,
    buf: Vec<u8>,
    /// The socket polled first next time, so a flooded one cannot starve the rest.
    next_port: usize,
}

/// Runs the driver until shutdown.
/// Frames taken from one socket per wake-up, at most.
const BATCH: usize = 64;

pub(super) async fn run(
    config: L2Config,
    netlink: netlink_sys::Socket,
    status_tx: watch::Sender<Arc<L2Status>>,
    events_tx: mpsc::Sender<L2Event>,
) {
    let links = match LinkWatch::new(netlink) {
        Ok(links) => links,
        Err(e) => {
            let _ = events_tx.try_send(L2Event::NetlinkError { error: e.to_string() });
            return;
        }
    };
    let mut peer_macs = config.peer_macs;
    let mut responder = Responder::new(config.responder);
    responder.set_peer_macs(peer_macs.borrow_and_update().iter().copied().collect());
    let mut driver = Driver {
        exclusions: config.exclusions,
        responder,
        links,
        ports: BTreeMap::new(),
        desired: config.desired,
        peer_macs,
        peers_open: true,
        shutdown: config.shutdown,
        answering: BTreeMap::new(),
        status_tx,
        events_tx,
        events_dropped: 0,
        interfaces: BTreeMap::new(),
        publish_at: None,
        buf: vec![0; FRAME_BUF],
        next_port: 0,
    };
    driver.run().await;
}

impl Driver {
    async fn run(&mut self) {
        loop {
            if *self.shutdown.borrow_and_update() {
                return;
            }
            let wake = self.wait().await;
            match wake {
                Wake::Shutdown => return,
                Wake::Links(Ok(changed)) => {
                    if changed && self.links.ready() {
                        self.reconcile();
                    }
                }
                Wake::Links(Err(e)) => {
                    self.emit(L2Event::NetlinkError { error: e.to_string() });
                    // Do not spin on a broken socket.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Wake::Desired => {
                    if self.links.ready() {
                        self.reconcile();
                    }
                }
                Wake::Peers => {
                    let peers = self.peer_macs.borrow_and_update().iter().copied().collect();
                    self.responder.set_peer_macs(peers);
                }
                Wake::Frame { interface, result } => {
                    self.frame(&interface, result);
                    self.drain(&interface);
                }
                Wake::Timer => {
                    let now = Instant::now();
                    if self.responder.poll_timeout().is_some_and(|t| t <= now) {
                        self.responder.handle_timeout(now);
                        self.counters_changed(now);
                    }
                }
            }
            self.flush();
            if self.publish_at.is_some_and(|t| t <= Instant::now()) {
                self.publish();
            }
        }
    }

    /// Waits for the next thing to do; shutdown and interface changes first.
    async fn wait(&mut self) -> Wake {
        let deadline = [self.responder.poll_timeout(), self.publish_at].into_iter().flatten().min();
        let timer = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let ports: Vec<(&String, &Port)> = self.ports.iter().collect();
        let start = self.next_port;
        let buf = &mut self.buf;
        let frames = poll_fn(|cx| {
            for i in 0..ports.len() {
                let (name, port) = ports[(start + i) % ports.len()];
                if let Poll::Ready(result) = port.socket.poll_recv(cx, buf) {
                    return Poll::Ready(((start + i + 1) % ports.len(), name.clone(), result));
                }
            }
            Poll::Pending
        });
        let peers_open = self.peers_open;
        // The branches only borrow; what they found is acted on below.
        enum Woke {
            Shutdown(bool),
            Links(io::Result<bool>),
            Desired(bool),
            Peers(bool),
            Frame(usize, String, io::Result<Option<usize>>),
            Timer,
        }
        let woke = tokio::select! {
            biased;
            r = self.shutdown.changed() => Woke::Shutdown(r.is_ok()),
            r = self.links.changed() => Woke::Links(r),
            r = self.desired.changed() => Woke::Desired(r.is_ok()),
            r = self.peer_macs.changed(), if peers_open => Woke::Peers(r.is_ok()),
            (next, interface, result) = frames => Woke::Frame(next, interface, result),
            () = timer => Woke::Timer,
        };
        match woke {
            // A dropped sender stops the driver; `false` is no news.
            Woke::Shutdown(open) => {
                if open && !*self.shutdown.borrow_and_update() {
                    Wake::Desired
                } else {
                    Wake::Shutdown
                }
            }
            Woke::Links(r) => Wake::Links(r),
            Woke::Desired(open) => {
                if open {
                    Wake::Desired
                } else {
                    Wake::Shutdown
                }
            }
            // Without gossip the last peers stay in force.
            Woke::Peers(open) => {
                self.peers_open = open;
                Wake::Peers
            }
            Woke::Frame(next, interface, result) => {
                self.next_port = next;
                Wake::Frame { interface, result }
            }
            Woke::Timer => Wake::Timer,
        }
    }

    /// Under a flood, the frames already queued on `interface` are taken
    /// in one go (up to [`BATCH`]) and answered with one flush, rather
    /// than one trip through the `select!` each.
    fn drain(&mut self, interface: &str) {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        for _ in 0..BATCH {
            let Some(port) = self.ports.get(interface) else { return };
            match port.socket.poll_recv(&mut cx, &mut self.buf) {
                Poll::Ready(result) => self.frame(interface, result),
                Poll::Pending => return,
            }
        }
    }

    fn frame(&mut self, interface: &str, result: io::Result<Option<usize>>) {
        match result {
            Ok(Some(len)) => {
                let now = Instant::now();
                self.responder.handle_frame(now, interface, &self.buf[..len]);
                self.counters_changed(now);
            }
            Ok(None) => {}
            // Down or gone: rtnetlink says so too, and the port is closed then.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENETDOWN | libc::ENXIO | libc::ENODEV)) => {}
            Err(e) => {
                self.emit(L2Event::SocketError {
                    interface: interface.to_string(),
                    operation: "receive",
                    error: e.to_string(),
                });
            }
        }
    }

    /// Sends the responder's frames, forwards its events.
    fn flush(&mut self) {
        while let Some(t) = self.responder.poll_transmit() {
            let Some(port) = self.ports.get(&t.interface) else { continue };
            if let Err(e) = port.socket.send(&t.frame) {
                let event = L2Event::SocketError { interface: t.interface, operation: "send", error: e.to_string() };
                self.emit(event);
            }
        }
        let mut stood_down = false;
        while let Some(event) = self.responder.poll_event() {
            if let ResponderEvent::Conflict { ip, interface, mac } = event {
                stood_down = true;
                self.emit(L2Event::Conflict { ip, interface, mac });
            }
        }
        if stood_down {
            self.publish();
        }
    }

    /// Brings sockets, multicast groups and the responder in line with the
    /// links and the desired ownership.
    fn reconcile(&mut self) {
        let now = Instant::now();
        let links: BTreeMap<String, Link> = self.links.links().into_iter().map(|l| (l.name.clone(), l)).collect();
        let desired = self.desired.borrow_and_update().clone();
        let mut answering: BTreeMap<IpAddr, BTreeSet<String>> = desired
            .iter()
            .map(|(ip, named)| (*ip, answering_interfaces(*ip, named, links.values(), &self.exclusions)))
            .collect();

        // Sockets: close those no longer needed or whose interface changed
        // index or MAC; open the missing ones.
        let needed: BTreeSet<String> = answering.values().flatten().cloned().collect();
        let stale: Vec<String> = self
            .ports
            .iter()
            .filter(|(name, port)| {
                !needed.contains(*name)
                    || links.get(*name).is_none_or(|l| l.index != port.socket.ifindex() || l.mac != Some(port.mac))
            })
            .map(|(name, _)| name.clone())
            .collect();
        let replaced: BTreeSet<&String> = stale.iter().filter(|name| needed.contains(*name)).collect();
        if !replaced.is_empty() {
            // A new MAC or a recreated interface: take the interface away
            // from its IPs first, so that giving it back announces them.
            let without = answering
                .iter()
                .map(|(ip, set)| (*ip, set.iter().filter(|n| !replaced.contains(n)).cloned().collect()))
                .filter(|(_, set): &(IpAddr, BTreeSet<String>)| !set.is_empty())
                .collect();
            self.responder.set_owned(now, without);
        }
        for name in stale {
            self.ports.remove(&name);
            self.responder.remove_interface(&name);
        }
        let mut failed = BTreeSet::new();
        for name in &needed {
            let Some(link) = links.get(name) else { continue };
            let Some(mac) = link.mac else { continue };
            if self.ports.contains_key(name) {
                continue;
            }
            match PacketSocket::open(link.index) {
                Ok(socket) => {
                    self.ports.insert(name.clone(), Port { socket, mac });
                    self.responder.set_interface(name, mac);
                }
                Err(e) => {
                    failed.insert(name.clone());
                    let event =
                        L2Event::SocketError { interface: name.clone(), operation: "open", error: e.to_string() };
                    self.emit(event);
                }
            }
        }
        for set in answering.values_mut() {
            set.retain(|name| !failed.contains(name));
        }

        // The solicited-node groups of the IPv6 addresses answered on each port.
        let mut errors = Vec::new();
        for (name, port) in &mut self.ports {
            let wanted: BTreeSet<MacAddr> = answering
                .iter()
                .filter(|(ip, set)| set.contains(name) && ip.is_ipv6())
                .filter_map(|(ip, _)| match ip {
                    IpAddr::V6(v6) => Some(solicited_node_mac(*v6)),
                    IpAddr::V4(_) => None,
                })
                .collect();
            for (mac, e) in port.socket.set_groups(&wanted) {
                errors.push(L2Event::SocketError {
                    interface: name.clone(),
                    operation: "multicast",
                    error: format!("{mac}: {e}"),
                });
            }
        }
        for event in errors {
            self.emit(event);
        }

        // An IP answered nowhere is not given to the responder at all: an
        // empty set there means "every interface".
        let owned = answering.iter().filter(|(_, set)| !set.is_empty()).map(|(ip, set)| (*ip, set.clone())).collect();
        self.responder.set_owned(now, owned);

        for (ip, set) in &answering {
            if self.answering.get(ip) != Some(set) {
                self.emit(L2Event::Announced { ip: *ip, interfaces: set.clone() });
            }
        }
        let withdrawn: Vec<IpAddr> = self.answering.keys().filter(|ip| !answering.contains_key(ip)).copied().collect();
        for ip in withdrawn {
            self.emit(L2Event::Withdrawn { ip });
        }
        self.answering = answering;

        // Interfaces: what this node can answer on.
        // Every usable link, the excluded names too: an advertisement that
        // names one may be answered there, and the gossip says so before
        // any IP is owned.
        let interfaces: BTreeMap<String, InterfaceStatus> = links
            .values()
            .filter(|l| selectable_named(l).is_ok())
            .filter_map(|l| {
                let status = InterfaceStatus {
                    index: l.index,
                    mac: l.mac?,
                    ndp: answers_ndp(l),
                    answering: self.ports.contains_key(&l.name),
                    excluded: selectable(l, &self.exclusions).is_err(),
                };
                Some((l.name.clone(), status))
            })
            .collect();
        let mut changes = Vec::new();
        for (name, status) in &interfaces {
            if !self.interfaces.contains_key(name) {
                changes.push(L2Event::InterfaceUp { interface: name.clone(), mac: status.mac });
            }
        }
        for name in self.interfaces.keys().filter(|name| !interfaces.contains_key(*name)) {
            let reason = links
                .get(name)
                .map(|l| selectable(l, &self.exclusions).err().unwrap_or(lb_arp::Unselectable::Excluded));
            changes.push(L2Event::InterfaceDown { interface: name.clone(), reason });
        }
        for event in changes {
            self.emit(event);
        }
        self.interfaces = interfaces;
        self.flush();
        self.publish();
    }

    /// Counters changed: publish within [`COUNTERS_EVERY`].
    fn counters_changed(&mut self, now: Instant) {
        if self.publish_at.is_none() {
            self.publish_at = Some(now + COUNTERS_EVERY);
        }
    }

    fn publish(&mut self) {
        self.publish_at = None;
        let ips = self
            .answering
            .iter()
            .map(|(ip, set)| {
                let stood_down: BTreeSet<String> = self.responder.stood_down(*ip).map(ToString::to_string).collect();
                let status = IpStatus {
                    interfaces: set.difference(&stood_down).cloned().collect(),
                    stood_down,
                    counters: self.responder.counters(*ip).unwrap_or_default(),
                };
                (*ip, status)
            })
            .collect();
        let status = L2Status {
            ready: self.links.ready(),
            interfaces: self.interfaces.clone(),
            ips,
            events_dropped: self.events_dropped,
        };
        self.status_tx.send_if_modified(|old| {
            if **old == status {
                false
            } else {
                *old = Arc::new(status);
                true
            }
        });
    }

    /// Hands an event to the reader, never waiting for it.
    fn emit(&mut self, event: L2Event) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.events_tx.try_send(event) {
            self.events_dropped += 1;
        }
    }
}
