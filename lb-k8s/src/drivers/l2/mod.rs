//! The layer 2 driver: answers ARP and NDP for the IPs this node owns, over
//! `AF_PACKET` raw sockets, by driving an [`lb_arp::Responder`].
//!
//! It holds no rule of its own: which interfaces an IP is answered on is
//! [`lb_arp::interfaces::answering_interfaces`], what to answer, announce,
//! and what is a conflict is the `Responder`'s. The driver feeds them what
//! the kernel says and carries their decisions out:
//!
//! - [`links`]: the host's links from rtnetlink, dumped once and then kept
//!   current by notifications (a lost carrier is known at once);
//! - [`socket`]: one raw socket per answering interface, with a BPF filter
//!   that lets only ARP and Neighbor Solicitations / Advertisements up, and
//!   the solicited-node multicast groups of the owned IPv6 addresses;
//! - the task: a dedicated OS thread running a current-thread tokio
//!   runtime, so answers never wait behind the main runtime's work.
//!
//! # Expected flow
//!
//! ```ignore
//! let (desired_tx, desired) = watch::channel(Arc::new(Ownership::new()));
//! let (peers_tx, peer_macs) = watch::channel(Arc::new(BTreeSet::new()));
//! let (stop, shutdown) = watch::channel(false);
//! let mut l2 = l2::spawn(L2Config::new(desired, peer_macs, shutdown))?;
//! let events = l2.take_events();        // log them
//! desired_tx.send_replace(Arc::new(plan));  // each new plan
//! l2.status();                          // for /status, /metrics, gossip
//! stop.send_replace(true);
//! l2.join();
//! ```
//!
//! # Guarantees
//!
//! - The thread stops when `shutdown` says `true` or when the `desired` or
//!   `shutdown` sender is dropped.
//! - An IP whose advertisement names no interface is answered on every
//!   selectable link not excluded by name; one that names interfaces, on
//!   those of them that exist and are usable, whatever their names. An IP
//!   with no usable interface is answered nowhere (and owned anew, with
//!   fresh announcements and conflict detection, when one comes back).
//! - A link that goes down, loses carrier, is enslaved or deleted stops
//!   being answered on as soon as rtnetlink says so; when it is usable
//!   again its socket is reopened and its IPs are announced at once, and
//!   so are they when the interface changes MAC or is recreated.
//! - A failure on one interface (open, send, receive, multicast) is an
//!   [`L2Event::SocketError`]; the others go on. A malformed frame is
//!   dropped.
//! - The thread never waits for a reader: events beyond the channel's
//!   capacity are dropped and counted in [`L2Status::events_dropped`];
//!   a frame the socket cannot take at once is dropped and reported.
//! - Everything happens in the network namespace of the thread that calls
//!   [`spawn`] (the driver's thread inherits it).

pub mod links;
pub mod socket;
mod task;

pub use task::COUNTERS_EVERY;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use lb_arp::interfaces::{Exclusions, Unselectable};
use lb_arp::wire::MacAddr;
use lb_arp::{Counters, ResponderConfig};
use tokio::sync::{mpsc, watch};

/// The IPs this node owns, each with the interfaces its L2Advertisement
/// names (empty: every selectable interface).
pub type Ownership = BTreeMap<IpAddr, BTreeSet<String>>;

/// What the driver is given.
#[derive(Debug)]
pub struct L2Config {
    /// The IPs to answer for, from the planner.
    pub desired: watch::Receiver<Arc<Ownership>>,
    /// The MACs of the other load-balancer nodes (from gossip): never a conflict.
    pub peer_macs: watch::Receiver<Arc<BTreeSet<MacAddr>>>,
    /// `true`: stop.
    pub shutdown: watch::Receiver<bool>,
    /// Interface names not answered on unless named (default: MetalLB's).
    pub exclusions: Exclusions,
    /// When to announce.
    pub responder: ResponderConfig,
    /// Events held for the reader before new ones are dropped.
    pub event_capacity: usize,
}

impl L2Config {
    /// The default exclusions, announcement schedule and a 1,024-event channel.
    pub fn new(
        desired: watch::Receiver<Arc<Ownership>>,
        peer_macs: watch::Receiver<Arc<BTreeSet<MacAddr>>>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            desired,
            peer_macs,
            shutdown,
            exclusions: Exclusions::default(),
            responder: ResponderConfig::default(),
            event_capacity: 1024,
        }
    }
}

/// Why the driver could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum L2Error {
    /// The rtnetlink socket could not be opened.
    #[error("opening the rtnetlink socket")]
    Netlink(#[source] io::Error),
    /// The driver's runtime could not be built.
    #[error("building the layer 2 runtime")]
    Runtime(#[source] io::Error),
    /// The driver's thread could not be started.
    #[error("starting the layer 2 thread")]
    Thread(#[source] io::Error),
}

/// One of this node's interfaces that can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceStatus {
    pub index: u32,
    pub mac: MacAddr,
    /// It has an IPv6 link-local address: it can answer NDP.
    pub ndp: bool,
    /// A socket is open on it: some owned IP is answered there.
    pub answering: bool,
    /// Excluded by name: answered only for advertisements that name it.
    pub excluded: bool,
}

/// One owned IP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpStatus {
    /// The interfaces it is answered on now.
    pub interfaces: BTreeSet<String>,
    /// The interfaces where another host uses it: not answered there.
    pub stood_down: BTreeSet<String>,
    pub counters: Counters,
}

/// What the driver shows, republished whole on every change (counters at
/// most every [`COUNTERS_EVERY`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct L2Status {
    /// The first interface listing is complete.
    pub ready: bool,
    /// This node's usable interfaces (up, carrier, broadcast, Ethernet,
    /// not a port), excluded names included (see
    /// [`InterfaceStatus::excluded`]), with their MACs: what the gossip
    /// layer publishes.
    pub interfaces: BTreeMap<String, InterfaceStatus>,
    /// Every desired IP.
    pub ips: BTreeMap<IpAddr, IpStatus>,
    /// Events dropped because the reader was behind.
    pub events_dropped: u64,
}

/// Something that happened, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum L2Event {
    /// Another host (`mac`) uses `ip` on `interface`: not answered there
    /// until the IP is owned anew.
    Conflict { ip: IpAddr, interface: String, mac: MacAddr },
    /// An interface became usable.
    InterfaceUp { interface: String, mac: MacAddr },
    /// An interface stopped being usable: why, `None` when it is gone.
    InterfaceDown { interface: String, reason: Option<Unselectable> },
    /// `ip` is now answered on `interfaces` (empty: nowhere, its named
    /// interfaces are missing or unusable).
    Announced { ip: IpAddr, interfaces: BTreeSet<String> },
    /// `ip` is no longer owned.
    Withdrawn { ip: IpAddr },
    /// An operation on `interface`'s socket failed (`operation`: `open`,
    /// `send`, `receive`, `multicast`).
    SocketError { interface: String, operation: &'static str, error: String },
    /// Reading rtnetlink failed; interface changes may be missed until the
    /// next successful read.
    NetlinkError { error: String },
}

/// The running driver.
#[derive(Debug)]
pub struct L2Handle {
    status: watch::Receiver<Arc<L2Status>>,
    events: Option<mpsc::Receiver<L2Event>>,
    thread: JoinHandle<()>,
}

impl L2Handle {
    /// The latest status.
    pub fn status(&self) -> Arc<L2Status> {
        self.status.borrow().clone()
    }

    /// A receiver of every new status.
    pub fn subscribe(&self) -> watch::Receiver<Arc<L2Status>> {
        self.status.clone()
    }

    /// The event channel; `None` once taken.
    pub fn take_events(&mut self) -> Option<mpsc::Receiver<L2Event>> {
        self.events.take()
    }

    /// Waits for the thread to end (after a shutdown).
    ///
    /// # Errors
    ///
    /// The thread's panic.
    pub fn join(self) -> std::thread::Result<()> {
        self.thread.join()
    }
}

/// Starts the driver on its own thread, in the calling thread's network
/// namespace.
///
/// # Errors
///
/// The rtnetlink socket, the runtime or the thread could not be created.
pub fn spawn(config: L2Config) -> Result<L2Handle, L2Error> {
    let netlink = links::open_socket().map_err(L2Error::Netlink)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(L2Error::Runtime)?;
    let (status_tx, status) = watch::channel(Arc::new(L2Status::default()));
    let (events_tx, events) = mpsc::channel(config.event_capacity.max(1));
    let thread = std::thread::Builder::new()
        .name("lb-l2".to_string())
        .spawn(move || runtime.block_on(task::run(config, netlink, status_tx, events_tx)))
        .map_err(L2Error::Thread)?;
    Ok(L2Handle { status, events: Some(events), thread })
}
