//! Layer 2: gossip membership, ownership by the pure plan, and the raw
//! socket responder, on a thread of their own.
//!
//! Failover in well under a second depends on probes, acks and answers
//! never waiting behind a reload or a `/status` render, so all of layer 2
//! runs on one dedicated thread with its own single-threaded runtime; the
//! raw-socket driver has its own thread too. The rest of the process hands
//! it the observed world ([`Layer2::set_world`]) and reads what it shows
//! ([`Layer2::shared`]).
//!
//! The loop: datagrams into [`Membership`] (all waiting ones before a
//! timer, so an ack already received is never a missed ack), timers,
//! world and interface changes; after each, [`plan_l2`] with the live
//! members and their claims decides what this node owns, the driver is
//! told, and the membership gossips it. No rule lives here: who owns an
//! IP, when gossip runs and when a stopping node may let go are
//! `lb_core::l2`'s; probes, suspicion and reports are `lb_arp::membership`'s.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use lb_arp::membership::{GossipKey, Membership, MembershipConfig, MembershipEvent, Timing};
use lb_core::Node;
use lb_core::l2::{Claims, HANDOVER_WAIT, Interfaces, announce_failures, may_answer, plan_l2, still_to_hand_over};
use lb_core::plan::{Observed, ServiceAssignment, assigned_services};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use crate::drivers::l2::{self as driver, L2Config, L2Event, L2Handle, Ownership};
use crate::view::{L2IpStatus, L2Shared, L2Status, error_chain};
use lb_arp::interfaces::Exclusions;
use lb_arp::wire::MacAddr;

/// How to run layer 2.
#[derive(Debug, Clone)]
pub struct Layer2Options {
    pub node: String,
    /// UDP port of the gossip (MetalLB's memberlist: 7946).
    pub port: u16,
    /// The shared gossip key; without it gossip is unauthenticated.
    pub key: Option<Vec<u8>>,
    /// Interface name prefixes never answered on unless an advertisement
    /// names the interface (`None`: MetalLB's list).
    pub exclusions: Option<Vec<String>>,
}

/// The world layer 2 plans from.
#[derive(Debug)]
pub struct L2World {
    pub observed: Observed,
    pub assignments: Vec<ServiceAssignment>,
    /// Where the other members' gossip is reached (the speaker Pods' IPs);
    /// `None`: every node's InternalIP (standalone's `--nodes`).
    pub seeds: Option<Vec<IpAddr>>,
}

/// What this node does on layer 2 now, for the speaker's status objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct L2Local {
    /// The IPs answered for: the Service and the interfaces.
    pub owned: BTreeMap<IpAddr, (String, BTreeSet<String>)>,
    /// The interfaces this node can answer on.
    pub interfaces: Interfaces,
    /// Those an IP whose advertisement names no interface is answered on.
    pub default_interfaces: BTreeSet<String>,
    /// IPs this node should answer for but cannot: the interfaces its
    /// advertisements name are missing here (`announceFailed`).
    pub failed: BTreeSet<(lb_core::ServiceKey, IpAddr)>,
}

/// The layer 2 thread, from the outside.
#[derive(Debug)]
pub struct Layer2 {
    world: watch::Sender<Option<Arc<L2World>>>,
    shared: Arc<L2Shared>,
    local: watch::Receiver<Arc<L2Local>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Layer2 {
    /// Starts the thread; it does nothing until a world is set.
    pub fn spawn(options: Layer2Options) -> std::io::Result<Self> {
        let (world, world_rx) = watch::channel(None);
        let shared = Arc::new(L2Shared::default());
        let (stop, stop_rx) = oneshot::channel();
        let (local_tx, local) = watch::channel(Arc::new(L2Local::default()));
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new().name("lb-layer2".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    warn!(event = "layer2Failed", error = %e, "no layer 2: cannot start its runtime");
                    return;
                }
            };
            runtime.block_on(run(options, world_rx, thread_shared, local_tx, stop_rx));
        })?;
        Ok(Self { world, shared, local, stop: Some(stop), thread: Some(thread) })
    }

    /// A new observed world (after every applied reload).
    pub fn set_world(&self, world: Arc<L2World>) {
        self.world.send_replace(Some(world));
    }

    /// What `/status` and `/metrics` show of layer 2.
    pub fn shared(&self) -> Arc<L2Shared> {
        self.shared.clone()
    }

    /// What this node answers for and where it can, as it changes.
    pub fn local(&self) -> watch::Receiver<Arc<L2Local>> {
        self.local.clone()
    }

    /// Hands this node's IPs over (the next owner announces before this
    /// one stops answering), leaves the gossip, and stops the thread.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// The gossip, once this node has something it could answer.
struct Gossip {
    membership: Membership,
    socket: UdpSocket,
}

/// The node's InternalIP, where the others reach its gossip.
fn gossip_address(node: &Node, port: u16) -> Option<SocketAddr> {
    node.addresses
        .iter()
        .find(|a| a.kind == "InternalIP")
        .or_else(|| node.addresses.first())
        .map(|a| SocketAddr::new(a.address, port))
}

fn unix_micros() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(1)
}

/// The raw-socket driver and what it is told.
struct Driver {
    handle: L2Handle,
    desired: watch::Sender<Arc<Ownership>>,
    peer_macs: watch::Sender<Arc<BTreeSet<MacAddr>>>,
    shutdown: watch::Sender<bool>,
}

/// This node's interfaces as the driver sees them.
struct Usable {
    interfaces: Interfaces,
    /// Those an IP whose advertisement names none is answered on.
    default: BTreeSet<String>,
    macs: BTreeSet<[u8; 6]>,
}

impl Driver {
    fn start(options: &Layer2Options) -> Result<Self, driver::L2Error> {
        let (desired, desired_rx) = watch::channel(Arc::new(Ownership::new()));
        let (peer_macs, peer_rx) = watch::channel(Arc::new(BTreeSet::new()));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let exclusions = options.exclusions.clone().map(Exclusions::new).unwrap_or_default();
        let mut config = L2Config::new(desired_rx, peer_rx, shutdown_rx);
        config.exclusions = exclusions;
        let handle = driver::spawn(config)?;
        Ok(Self { handle, desired, peer_macs, shutdown })
    }

    fn usable(&self) -> Usable {
        let status = self.handle.status();
        let usable: BTreeSet<String> = status.interfaces.keys().cloned().collect();
        let default: BTreeSet<String> =
            status.interfaces.iter().filter(|(_, i)| !i.excluded).map(|(name, _)| name.clone()).collect();
        let macs = status.interfaces.values().map(|i| i.mac.0).collect();
        Usable { interfaces: Interfaces { usable, default_usable: !default.is_empty() }, default, macs }
    }

    fn set_owned(&self, owned: Arc<Ownership>) {
        self.desired.send_replace(owned);
    }

    fn set_peer_macs(&self, macs: BTreeSet<[u8; 6]>) {
        let macs: BTreeSet<MacAddr> = macs.into_iter().map(MacAddr).collect();
        if **self.peer_macs.borrow() != macs {
            self.peer_macs.send_replace(Arc::new(macs));
        }
    }

    fn counters(&self) -> BTreeMap<IpAddr, lb_arp::Counters> {
        self.handle.status().ips.iter().map(|(ip, s)| (*ip, s.counters)).collect()
    }

    async fn shutdown(self) {
        self.shutdown.send_replace(true);
        let handle = self.handle;
        let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    }
}

struct Loop {
    options: Layer2Options,
    driver: Driver,
    key: Option<GossipKey>,
    shared: Arc<L2Shared>,
    local: watch::Sender<Arc<L2Local>>,
    world: Option<Arc<L2World>>,
    gossip: Option<Gossip>,
    /// What we answer for now, by IP: the Service and interfaces.
    owned: BTreeMap<IpAddr, (String, BTreeSet<String>)>,
    /// Conflicts between members already logged.
    conflicts: BTreeMap<IpAddr, BTreeSet<String>>,
    stopping: Option<Instant>,
    /// Something the plan depends on may have changed since it was last
    /// made (world, membership, interfaces, stopping); otherwise only the
    /// counters are refreshed, which change with every answer.
    dirty: bool,
    /// Gossip was started, or could not be.
    gossip_tried: bool,
    /// The interfaces the last plan was made with.
    planned_with: Option<(Interfaces, BTreeSet<[u8; 6]>)>,
    /// What was last published, for counter refreshes.
    published: Option<L2Status>,
}

async fn run(
    options: Layer2Options,
    mut world_rx: watch::Receiver<Option<Arc<L2World>>>,
    shared: Arc<L2Shared>,
    local: watch::Sender<Arc<L2Local>>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut driver = match Driver::start(&options) {
        Ok(d) => d,
        Err(e) => {
            warn!(event = "layer2Failed", error = %error_chain(&e), "no layer 2 answers on this node");
            return;
        }
    };
    let mut links = driver.handle.subscribe();
    let mut driver_events = driver.handle.take_events();
    let key = options.key.as_deref().map(GossipKey::new);
    let mut state = Loop {
        options,
        driver,
        key,
        shared,
        local,
        world: None,
        gossip: None,
        owned: BTreeMap::new(),
        conflicts: BTreeMap::new(),
        stopping: None,
        dirty: true,
        gossip_tried: false,
        planned_with: None,
        published: None,
    };
    let mut buf = vec![0u8; 65_536];
    let mut stop_open = true;
    loop {
        let deadline = state.next_deadline();
        tokio::select! {
            changed = world_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                state.world = world_rx.borrow_and_update().clone();
                state.dirty = true;
            }
            _ = links.changed() => {}
            Some(event) = next_event(driver_events.as_mut()) => log_driver_event(event),
            received = recv(state.gossip.as_ref(), &mut buf) => {
                if let Some((n, from)) = received {
                    state.datagram(from, &buf[..n]);
                }
                state.drain(&mut buf);
            }
            () = sleep_until(deadline) => {
                state.drain(&mut buf);
                if let Some(g) = state.gossip.as_mut() {
                    g.membership.handle_timeout(Instant::now());
                }
            }
            _ = &mut stop, if stop_open => {
                stop_open = false;
                state.stopping = Some(Instant::now());
                state.dirty = true;
                info!(event = "layer2Handover", owned = state.owned.len(), "stopping: handing layer 2 IPs over");
            }
        }
        state.flush();
        state.replan();
        state.flush();
        if let Some(since) = state.stopping
            && (state.owned.is_empty() || since.elapsed() >= HANDOVER_WAIT)
        {
            break;
        }
    }
    if let Some(g) = state.gossip.as_mut() {
        g.membership.leave(Instant::now());
    }
    state.owned.clear();
    state.driver.set_owned(Arc::new(BTreeMap::new()));
    state.flush();
    state.driver.shutdown().await;
}

async fn next_event(events: Option<&mut tokio::sync::mpsc::Receiver<L2Event>>) -> Option<L2Event> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn log_driver_event(event: L2Event) {
    match event {
        L2Event::Conflict { ip, interface, mac } => {
            warn!(event = "ipConflict", ip = %ip, interface = %interface, mac = %mac, "another host answers for this IP: not answering there");
        }
        L2Event::InterfaceUp { interface, mac } => {
            // Every usable interface is "up" at start: detail, not news.
            tracing::debug!(event = "interfaceUp", interface = %interface, mac = %mac, "interface can answer");
        }
        L2Event::InterfaceDown { interface, reason } => {
            let reason = reason.map_or_else(|| "gone".to_string(), |r| r.to_string());
            warn!(event = "interfaceDown", interface = %interface, reason = %reason, "interface cannot answer");
        }
        L2Event::SocketError { interface, operation, error } => {
            warn!(event = "socketError", interface = %interface, operation, error = %error, "raw socket error");
        }
        L2Event::NetlinkError { error } => warn!(event = "netlinkError", error = %error, "rtnetlink read failed"),
        _ => {}
    }
}

async fn recv(gossip: Option<&Gossip>, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    match gossip {
        Some(g) => g.socket.recv_from(buf).await.ok(),
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Loop {
    fn next_deadline(&self) -> Option<Instant> {
        let gossip = self.gossip.as_ref().and_then(|g| g.membership.poll_timeout());
        let handover = self.stopping.map(|s| s + HANDOVER_WAIT);
        gossip.into_iter().chain(handover).min()
    }

    fn datagram(&mut self, from: SocketAddr, data: &[u8]) {
        if let Some(g) = self.gossip.as_mut() {
            g.membership.handle_datagram(Instant::now(), from, data);
        }
    }

    /// Every datagram already waiting, before any timer is judged.
    fn drain(&mut self, buf: &mut [u8]) {
        loop {
            let Some(g) = self.gossip.as_mut() else { return };
            match g.socket.try_recv_from(buf) {
                Ok((n, from)) => g.membership.handle_datagram(Instant::now(), from, &buf[..n]),
                Err(_) => return,
            }
        }
    }

    /// Sends what the membership queued and logs its events.
    fn flush(&mut self) {
        let Some(g) = self.gossip.as_mut() else { return };
        while let Some(t) = g.membership.poll_transmit() {
            // Gossip tolerates loss: a full socket buffer drops the datagram.
            let _ = g.socket.try_send_to(&t.data, t.to);
        }
        while let Some(event) = g.membership.poll_event() {
            self.dirty = true;
            match event {
                MembershipEvent::MemberJoined { name, addr } => {
                    info!(event = "memberJoined", member = %name, address = %addr, "layer 2 member joined");
                }
                MembershipEvent::MemberDown { name } => {
                    warn!(event = "memberDown", member = %name, "layer 2 member down");
                }
                MembershipEvent::MemberRestarted { name } => {
                    info!(event = "memberRestarted", member = %name, "layer 2 member restarted");
                }
                MembershipEvent::Ready { waited, heard_everyone } => {
                    info!(
                        event = "layer2Ready",
                        waited_ms = waited.as_millis() as u64,
                        heard_everyone,
                        "claiming layer 2 IPs from now on"
                    );
                }
                MembershipEvent::Rejoined => info!(event = "memberRejoined", "declared down by the others; rejoined"),
                MembershipEvent::KeyMismatch => {
                    warn!(
                        event = "memberlistKeyMismatch",
                        "only unverifiable gossip arrives (another --memberlist-key-file?): claiming nothing"
                    );
                }
                MembershipEvent::ClaimsChanged => {}
            }
        }
    }

    fn me(&self, world: &L2World) -> Node {
        world
            .observed
            .nodes
            .iter()
            .find(|n| n.name == self.options.node)
            .cloned()
            .unwrap_or_else(|| Node::new(&self.options.node))
    }

    /// Decides what this node answers for now and tells the driver and the gossip.
    fn replan(&mut self) {
        let Some(world) = self.world.clone() else { return };
        let links = self.driver.usable();
        let usable = (links.interfaces.clone(), links.macs.clone());
        if !self.dirty && self.planned_with.as_ref() == Some(&usable) {
            self.refresh_counters();
            return;
        }
        self.dirty = false;
        self.planned_with = Some(usable);
        let me = self.me(&world);
        let local = if self.stopping.is_some() { Interfaces::none() } else { links.interfaces.clone() };
        if !self.gossip_tried && self.stopping.is_none() && may_answer(&world.observed.config, &me, &local) {
            // Once: a node without an address to gossip from runs alone
            // (said once in the logs), as with a single node.
            self.gossip_tried = true;
            self.start_gossip(&world, &me);
        }
        let (live, claims, ready) = match &self.gossip {
            Some(g) => (g.membership.live(), g.membership.claims(), g.membership.is_ready()),
            None => {
                let mut claims = Claims::new();
                claims.interfaces.insert(me.name.clone(), local.clone());
                claims.set_answering(&me.name, self.owned.keys().copied());
                (BTreeSet::from([me.name.clone()]), claims, true)
            }
        };
        let assigned = assigned_services(&world.observed.services, &world.assignments);
        let plan = plan_l2(&world.observed.world(&assigned), |n| live.contains(n), &claims);
        let mut wanted: BTreeMap<IpAddr, (String, BTreeSet<String>)> = BTreeMap::new();
        if self.stopping.is_some() {
            for (ip, held) in &self.owned {
                if still_to_hand_over(&claims, &me.name, *ip, &live) {
                    wanted.insert(*ip, held.clone());
                }
            }
        } else if ready {
            for o in plan.owners.values().filter(|o| o.node == me.name) {
                wanted.insert(o.ip, (o.service.to_string(), o.interfaces.iter().cloned().collect()));
            }
        }
        self.log_changes(&wanted);
        if wanted != self.owned {
            self.owned = wanted;
            let owned: BTreeMap<IpAddr, BTreeSet<String>> =
                self.owned.iter().map(|(ip, (_, ifaces))| (*ip, ifaces.clone())).collect();
            self.driver.set_owned(Arc::new(owned));
        }
        if let Some(g) = self.gossip.as_mut() {
            g.membership.set_local(
                Instant::now(),
                self.owned.keys().copied().collect(),
                local.clone(),
                links.macs.clone(),
            );
            self.driver.set_peer_macs(g.membership.peer_macs());
        }
        // Two live members answering for one IP (a healed partition): the
        // plan above already picked one; say so once.
        for (ip, nodes) in &claims.answering {
            let live_claimants: BTreeSet<String> = nodes.iter().filter(|n| live.contains(*n)).cloned().collect();
            if live_claimants.len() > 1 && self.conflicts.get(ip) != Some(&live_claimants) {
                let winner = plan.owners.get(ip).map(|o| o.node.clone()).unwrap_or_default();
                warn!(event = "claimConflict", ip = %ip, claimants = ?live_claimants, winner = %winner, "two nodes answered for one IP; the ranking keeps one");
                self.conflicts.insert(*ip, live_claimants);
            } else if live_claimants.len() <= 1 {
                self.conflicts.remove(ip);
            }
        }
        let failed = if ready && self.stopping.is_none() {
            announce_failures(&world.observed.world(&assigned), |n| live.contains(n), &claims, &me.name)
                .into_iter()
                .collect()
        } else {
            BTreeSet::new()
        };
        let default_interfaces = if local.default_usable { links.default.clone() } else { BTreeSet::new() };
        let now = L2Local { owned: self.owned.clone(), interfaces: local, default_interfaces, failed };
        self.local.send_if_modified(|shown| {
            let changed = **shown != now;
            if changed {
                *shown = Arc::new(now);
            }
            changed
        });
        self.publish(&plan, &claims, &live, &links);
    }

    fn start_gossip(&mut self, world: &L2World, me: &Node) {
        let Some(addr) = gossip_address(me, self.options.port) else {
            warn!(event = "memberlistDisabled", node = %me.name, "this node has no address in the nodes file: layer 2 without gossip, as if alone");
            return;
        };
        let seeds: Vec<SocketAddr> = match &world.seeds {
            Some(ips) => ips.iter().map(|ip| SocketAddr::new(*ip, self.options.port)).collect(),
            None => world.observed.nodes.iter().filter_map(|n| gossip_address(n, self.options.port)).collect(),
        };
        let socket = match std::net::UdpSocket::bind(addr).and_then(|s| {
            s.set_nonblocking(true)?;
            UdpSocket::from_std(s)
        }) {
            Ok(s) => s,
            Err(e) => {
                warn!(event = "memberlistFailed", address = %addr, error = %error_chain(&e), "cannot bind the gossip port: layer 2 without gossip");
                return;
            }
        };
        if self.key.is_none() {
            warn!(event = "memberlistUnauthenticated", "no --memberlist-key-file: gossip is not authenticated");
        }
        let mut membership = Membership::new(MembershipConfig {
            name: me.name.clone(),
            addr,
            seeds,
            key: self.key.clone(),
            timing: Timing::default(),
            started: unix_micros(),
            rng_seed: unix_micros() ^ u64::from(std::process::id()),
        });
        membership.start(Instant::now());
        info!(event = "memberlistStarted", address = %addr, "layer 2 gossip started");
        self.gossip = Some(Gossip { membership, socket });
    }

    fn log_changes(&self, wanted: &BTreeMap<IpAddr, (String, BTreeSet<String>)>) {
        for (ip, (service, ifaces)) in wanted {
            if !self.owned.contains_key(ip) {
                info!(event = "serviceAnnounced", protocol = "layer2", service = %service, ip = %ip, interfaces = ?ifaces, "answering ARP/NDP for the IP");
            }
        }
        for (ip, (service, _)) in &self.owned {
            if !wanted.contains_key(ip) {
                info!(event = "serviceWithdrawn", protocol = "layer2", service = %service, ip = %ip, "no longer answering for the IP");
            }
        }
    }

    /// The driver's counters into what was last published.
    fn refresh_counters(&mut self) {
        let Some(status) = self.published.as_mut() else { return };
        let counters = self.driver.counters();
        for ip in &mut status.ips {
            ip.counters = counters.get(&ip.ip).copied().unwrap_or_default();
        }
        status.ip_conflicts = counters.values().map(|c| c.conflicts).sum();
        if let Some(g) = &self.gossip {
            status.gossip = g.membership.stats();
            status.members = g.membership.members();
        }
        self.shared.set(status.clone());
    }

    fn publish(&mut self, plan: &lb_core::l2::L2Plan, claims: &Claims, live: &BTreeSet<String>, links: &Usable) {
        let counters = self.driver.counters();
        let ips = plan
            .owners
            .values()
            .map(|o| L2IpStatus {
                ip: o.ip,
                service: o.service.to_string(),
                owner: Some(o.node.clone()),
                claimants: claims
                    .answering
                    .get(&o.ip)
                    .map(|c| c.iter().filter(|n| live.contains(*n)).cloned().collect())
                    .unwrap_or_default(),
                interfaces: self.owned.get(&o.ip).map(|(_, i)| i.iter().cloned().collect()).unwrap_or_default(),
                counters: counters.get(&o.ip).copied().unwrap_or_default(),
            })
            .collect();
        let owned_per_node = plan.counts().into_iter().map(|(n, c)| (n.to_string(), c)).collect();
        let status = L2Status {
            gossiping: self.gossip.is_some(),
            ready: self.gossip.as_ref().is_none_or(|g| g.membership.is_ready()),
            ips,
            owned_per_node,
            members: self.gossip.as_ref().map(|g| g.membership.members()).unwrap_or_default(),
            gossip: self.gossip.as_ref().map(|g| g.membership.stats()).unwrap_or_default(),
            interfaces: links.interfaces.usable.iter().cloned().collect(),
            ip_conflicts: counters.values().map(|c| c.conflicts).sum(),
        };
        self.shared.set(status.clone());
        self.published = Some(status);
    }
}
