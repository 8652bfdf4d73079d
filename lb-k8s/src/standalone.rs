//! Standalone mode: the allocator and this node's BGP speaker in one
//! process, with files as the source of truth.
//!
//! Expected flow: [`Standalone::reload`] once at start, then again whenever
//! the [`Watcher`](crate::files::Watcher) or SIGHUP says the files changed,
//! and [`Standalone::shutdown`] at the end. Each reload takes a whole new
//! snapshot; if it is invalid the errors are logged (`configStale`) and
//! everything stays as it was. Otherwise assignments are kept where still
//! allowed (a Service never moves because another one came or went), the
//! planner decides this node's routes, and the speaker applies them to
//! live sessions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use lb_bgp::session::State;
use lb_core::planner::{self, AssignedService, BgpPlan, World};
use lb_core::{Node, Service, ServiceKey};
use lb_ipam::Allocator;
use serde::Serialize;
use tracing::{error, info, warn};

use crate::bgp::peer::PeerShared;
use crate::bgp::speaker::{self, Speaker};
use crate::files::{FileSources, Snapshot};

/// Options of `lb standalone`.
#[derive(Debug, Clone)]
pub struct Options {
    pub sources: FileSources,
    /// This node's name: picks its Node manifest and its endpoints.
    pub node: String,
    /// Also handle Services with this `spec.loadBalancerClass`.
    pub load_balancer_class: Option<String>,
    /// Where assignments are kept across restarts (what `status` is in a
    /// cluster): read at start, rewritten after every change.
    pub state: Option<PathBuf>,
    /// Also accept BGP connections from configured peers here (passive
    /// sessions), besides connecting to them.
    pub bgp_listen: Option<SocketAddr>,
}

/// What `/status` and `/metrics` show; rebuilt on every reload, except the
/// sessions, which are read live.
#[derive(Debug, Default)]
pub struct View {
    pub node: String,
    pub config_loaded: bool,
    pub config_stale: bool,
    pub last_error: Option<String>,
    pub reloads: u64,
    pub reload_errors: u64,
    pub allocations: Vec<AllocationView>,
    pub pools: Vec<lb_ipam::PoolStats>,
    pub plan: Option<BgpPlan>,
    pub peers: Vec<(String, SocketAddr, Arc<PeerShared>)>,
}

/// One Service's allocation.
#[derive(Debug, Clone, Serialize)]
pub struct AllocationView {
    pub service: String,
    pub ips: Vec<IpAddr>,
    pub pool: Option<String>,
    pub error: Option<String>,
}

/// Shared between the run loop and the HTTP server.
pub type SharedView = Arc<Mutex<View>>;

/// The standalone controller and speaker.
#[derive(Debug)]
pub struct Standalone {
    options: Options,
    allocator: Option<Allocator>,
    /// Services of the last good snapshot.
    services: Vec<Service>,
    speaker: Speaker,
    announced: BTreeSet<(ServiceKey, IpAddr)>,
    /// Assignments read from the state file, given back on the first load.
    restored: BTreeMap<String, Vec<IpAddr>>,
    /// Default router IDs, chosen once per peer: a new one would restart
    /// the session.
    router_ids: HashMap<String, std::net::Ipv4Addr>,
    view: SharedView,
}

impl Standalone {
    pub fn new(options: Options) -> Self {
        let view = Arc::new(Mutex::new(View { node: options.node.clone(), ..View::default() }));
        let restored = options.state.as_deref().map(read_state).unwrap_or_default();
        Self {
            restored,
            router_ids: HashMap::new(),
            options,
            allocator: None,
            services: Vec::new(),
            speaker: Speaker::new(),
            announced: BTreeSet::new(),
            view,
        }
    }

    pub fn view(&self) -> SharedView {
        self.view.clone()
    }

    /// The speaker, to hand it accepted connections.
    pub fn speaker(&self) -> &Speaker {
        &self.speaker
    }

    /// Reads the files and applies them; on error logs and keeps the last good state.
    pub async fn reload(&mut self) {
        let snapshot = match self.options.sources.load() {
            Ok(s) => s,
            Err(e) => return self.refuse(e.to_string()),
        };
        self.apply(snapshot).await;
    }

    /// Logs an invalid change and marks the running state stale; nothing else changes.
    fn refuse(&self, error: String) {
        error!(event = "configStale", error = %error, "invalid change ignored; the last good state stays in force");
        let mut view = lock(&self.view);
        view.config_stale = true;
        view.last_error = Some(error);
        view.reload_errors += 1;
    }

    /// Applies a snapshot; refuses it (logged, nothing changed) if a peer of
    /// this node cannot be set up as configured (a missing Secret, say).
    pub async fn apply(&mut self, snapshot: Snapshot) {
        let Snapshot { config, secrets, mut services, nodes, endpoints, namespaces } = snapshot;
        // Every session of this node, before anything changes: a peer
        // whose configuration cannot be honoured makes the whole change
        // invalid, as any other configuration error does.
        let node = nodes
            .iter()
            .find(|n| n.name == self.options.node)
            .cloned()
            .unwrap_or_else(|| Node::new(&self.options.node));
        let node_addresses: Vec<IpAddr> = node.addresses.iter().map(|a| a.address).collect();
        let mut specs = BTreeMap::new();
        let mut invalid = Vec::new();
        for peer in planner::peers_of(&config, &node) {
            let router_id = *self
                .router_ids
                .entry(peer.name.clone())
                .or_insert_with(|| speaker::default_router_id(peer, &self.options.node, &node_addresses));
            match speaker::peer_spec(peer, router_id, &secrets) {
                Ok(spec) => {
                    specs.insert(peer.name.clone(), spec);
                }
                Err(e) if e.is_invalid_config() => invalid.push(e.to_string()),
                Err(e) => warn!(event = "peerUnsupported", peer = %peer.name, error = %e, "peer not started"),
            }
        }
        if !invalid.is_empty() {
            return self.refuse(invalid.join("; "));
        }
        // What a previous run assigned counts as the Service's status, so
        // a restart gives every Service its address back, whatever the
        // order of the files now.
        for service in services.iter_mut().filter(|s| s.ingress_ips.is_empty()) {
            if let Some(ips) = self.restored.get(service.key.as_str()) {
                service.ingress_ips.clone_from(ips);
            }
        }
        self.restored.clear();
        let before: BTreeMap<ServiceKey, Vec<IpAddr>> = self.assignments();

        let allocator = match self.allocator.as_mut() {
            None => self.allocator.insert(
                Allocator::new(config.clone()).with_load_balancer_class(self.options.load_balancer_class.clone()),
            ),
            Some(allocator) => {
                if *allocator.config() != config {
                    allocator.set_config(config.clone(), &services);
                }
                allocator
            }
        };
        allocator.set_namespaces(namespaces);
        let present: HashSet<&ServiceKey> = services.iter().map(|s| &s.key).collect();
        for gone in self.services.iter().filter(|s| !present.contains(&s.key)) {
            allocator.release(&gone.key);
        }
        // Idempotent for Services that keep their addresses; those with
        // status addresses go first so a restart gives them back.
        let results = allocator.allocate_all(&services);
        let mut allocations = Vec::with_capacity(services.len());
        for (service, result) in services.iter().zip(results) {
            match result {
                Ok(None) => {}
                Ok(Some((addresses, pool))) => allocations.push(AllocationView {
                    service: service.key.to_string(),
                    ips: addresses.to_vec(),
                    pool: Some(pool),
                    error: None,
                }),
                Err(e) => {
                    if before.contains_key(&service.key) || !self.services.iter().any(|s| s.key == service.key) {
                        warn!(event = "allocationFailed", service = %service.key, error = %e, "no IP for the Service");
                    }
                    allocations.push(AllocationView {
                        service: service.key.to_string(),
                        ips: Vec::new(),
                        pool: None,
                        error: Some(e.to_string()),
                    });
                }
            }
        }
        let pools = allocator.pool_stats();
        self.services = services;
        let after = self.assignments();
        for (key, ips) in &after {
            if before.get(key) != Some(ips) {
                let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
                info!(event = "ipAllocated", service = %key, ips = %ips.join(","), "Service assigned");
            }
        }
        for key in before.keys().filter(|k| !after.contains_key(*k)) {
            info!(event = "ipReleased", service = %key, "Service's IPs released");
        }

        if after != before
            && let Some(path) = &self.options.state
            && let Err(e) = write_state(path, &after)
        {
            error!(event = "stateNotSaved", path = %path.display(), error = %e, "cannot save assignments");
        }

        // This node's announcements.
        let ips: Vec<(usize, Vec<IpAddr>)> = self
            .services
            .iter()
            .enumerate()
            .filter_map(|(i, s)| after.get(&s.key).map(|ips| (i, ips.clone())))
            .collect();
        let assigned: Vec<AssignedService<'_>> =
            ips.iter().map(|(i, ips)| AssignedService { service: &self.services[*i], ips }).collect();
        let world = World { config: &config, services: &assigned, endpoints: endpoints.as_ref(), nodes: &nodes };
        let plan = planner::plan_bgp(&world, &self.options.node);
        let desired: Vec<_> =
            plan.peers.iter().filter_map(|p| specs.remove(&p.peer).map(|spec| (spec, speaker::routes_of(p)))).collect();
        self.speaker.apply(desired).await;
        self.log_announcements(&plan);

        let mut view = lock(&self.view);
        view.config_loaded = true;
        view.config_stale = false;
        view.last_error = None;
        view.reloads += 1;
        view.allocations = allocations;
        view.pools = pools;
        view.plan = Some(plan);
        view.peers = self
            .speaker
            .peers()
            .map(|(name, shared)| (name.to_string(), shared.status().remote, shared.clone()))
            .collect();
        drop(view);
        info!(event = "configLoaded", services = self.services.len(), "configuration applied");
    }

    fn assignments(&self) -> BTreeMap<ServiceKey, Vec<IpAddr>> {
        self.allocator
            .as_ref()
            .map(|a| a.assignments().map(|(k, a)| (k.clone(), a.addresses.to_vec())).collect())
            .unwrap_or_default()
    }

    fn log_announcements(&mut self, plan: &BgpPlan) {
        let now: BTreeSet<(ServiceKey, IpAddr)> =
            plan.services.iter().filter(|s| s.result.is_ok()).map(|s| (s.service.clone(), s.ip)).collect();
        for (key, ip) in now.difference(&self.announced) {
            info!(event = "serviceAnnounced", service = %key, ip = %ip, protocol = "bgp", "announcing from this node");
        }
        for (key, ip) in self.announced.difference(&now) {
            let reason = plan
                .services
                .iter()
                .find(|s| s.service == *key && s.ip == *ip)
                .and_then(|s| s.result.err())
                .map_or_else(|| "Service has no IP any more".to_string(), |r| r.to_string());
            info!(event = "serviceWithdrawn", service = %key, ip = %ip, protocol = "bgp", reason = %reason, "withdrawn from this node");
        }
        self.announced = now;
    }

    /// Cease / Administrative Shutdown to every peer, then close.
    pub async fn shutdown(self) {
        info!(event = "shutdown", "stopping: Cease to every BGP peer");
        self.speaker.shutdown("lb standalone shutting down").await;
    }
}

/// The state file: `{"namespace/name": ["ip", ...]}`. A missing or
/// unreadable file is an empty state (logged), never a reason not to start.
fn read_state(path: &Path) -> BTreeMap<String, Vec<IpAddr>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
            error!(event = "stateIgnored", path = %path.display(), error = %e, "state file unreadable; starting afresh");
            BTreeMap::new()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => {
            warn!(event = "stateIgnored", path = %path.display(), error = %e, "state file unreadable; starting afresh");
            BTreeMap::new()
        }
    }
}

/// Writes the state beside its final place and renames it over, so a crash
/// never leaves half a file.
fn write_state(path: &Path, assignments: &BTreeMap<ServiceKey, Vec<IpAddr>>) -> std::io::Result<()> {
    let map: BTreeMap<&str, &Vec<IpAddr>> = assignments.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let text = serde_json::to_string_pretty(&map).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    // On disk before the rename, and the rename on disk before going on:
    // after a crash the file is the old state or the new one, never empty.
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The view, even if a holder panicked: it is only ever replaced whole.
pub(crate) fn lock(view: &SharedView) -> std::sync::MutexGuard<'_, View> {
    view.lock().unwrap_or_else(|e| e.into_inner())
}

/// `/status`: allocations, sessions with state and uptime, announced routes.
pub fn status_json(view: &View) -> serde_json::Value {
    use serde_json::json;
    let now = SystemTime::now();
    let sessions: Vec<serde_json::Value> = view
        .peers
        .iter()
        .map(|(name, remote, shared)| {
            let s = shared.status();
            let c = &shared.counters;
            let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            json!({
                "peer": name,
                "address": remote.to_string(),
                "state": format!("{:?}", s.state),
                "established": s.state == State::Established,
                "uptimeSeconds": s.established_at.and_then(|t| now.duration_since(t).ok()).map(|d| d.as_secs_f64()),
                "localAddress": s.local.map(|l| l.to_string()),
                "peerASN": s.peer_asn,
                "routes": s.routes,
                "updatesSent": load(&c.updates_sent),
                "connects": load(&c.connects),
                "lastError": s.last_error,
            })
        })
        .collect();
    let announced: Vec<serde_json::Value> = view
        .plan
        .iter()
        .flat_map(|p| &p.peers)
        .map(|p| {
            json!({
                "peer": p.peer,
                "address": p.address.map(|a| a.to_string()),
                "routes": p.routes.iter().map(|(prefix, a)| {
                    json!({
                        "prefix": prefix.to_string(),
                        "localPref": a.local_pref,
                        "communities": a.standard_communities().collect::<Vec<_>>(),
                        "largeCommunities": a.large_communities().collect::<Vec<_>>(),
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let services: Vec<serde_json::Value> = view
        .plan
        .iter()
        .flat_map(|p| &p.services)
        .map(|s| {
            json!({
                "service": s.service.to_string(),
                "ip": s.ip.to_string(),
                "announced": s.result.is_ok(),
                "reason": s.result.err().map(|r| r.to_string()),
            })
        })
        .collect();
    json!({
        "node": view.node,
        "configLoaded": view.config_loaded,
        "configStale": view.config_stale,
        "lastError": view.last_error,
        "allocations": view.allocations,
        "pools": view.pools.iter().map(|p| json!({
            "name": p.name, "ipv4Total": p.ipv4_total, "ipv4InUse": p.ipv4_in_use,
            "ipv6Total": p.ipv6_total, "ipv6InUse": p.ipv6_in_use,
        })).collect::<Vec<_>>(),
        "sessions": sessions,
        "announced": announced,
        "services": services,
    })
}

/// Makes the listener's TCP MD5 keys those of the running peers: a peer
/// with a password can only connect with it, and only while configured.
fn sync_keys(listener: &tokio::net::TcpListener, standalone: &Standalone, keys: &mut BTreeMap<IpAddr, Vec<u8>>) {
    let want = standalone.speaker().md5_keys();
    for (ip, key) in &want {
        if keys.get(ip) != Some(key)
            && let Err(e) = crate::bgp::socket::set_md5_key(listener, *ip, Some(key))
        {
            warn!(peer = %ip, error = %e, "cannot set the TCP MD5 key on the BGP listener");
        }
    }
    for ip in keys.keys().filter(|ip| !want.contains_key(*ip)) {
        let _ = crate::bgp::socket::set_md5_key(listener, *ip, None);
    }
    *keys = want;
}

/// Why `lb standalone` could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    /// The BGP address could not be bound.
    #[error("cannot listen for BGP on {addr}")]
    BgpListen { addr: SocketAddr, source: crate::bgp::socket::SocketError },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Runs until SIGTERM or SIGINT: serves `/metrics` and `/status` on
/// `listen`, applies the files at start, again whenever they change or on
/// SIGHUP, and at the end sends every peer a Cease.
pub async fn run(options: Options, listen: Listen) -> Result<(), RunError> {
    use tokio::signal::unix::{SignalKind, signal};

    let paths: Vec<std::path::PathBuf> = options.sources.paths().cloned().collect();
    let bgp = match options.bgp_listen {
        Some(addr) => {
            let listener = crate::bgp::socket::listen(addr).map_err(|source| RunError::BgpListen { addr, source })?;
            info!(event = "bgpListening", address = %addr, "accepting BGP connections from configured peers");
            Some(listener)
        }
        None => None,
    };
    let mut keys: BTreeMap<IpAddr, Vec<u8>> = BTreeMap::new();
    let mut standalone = Standalone::new(options);
    let http = match crate::http::bind(listen.addr()).await {
        Ok(listener) => {
            let bound = listener.local_addr().unwrap_or(listen.addr());
            info!(event = "listening", address = %bound, "serving /metrics and /status");
            Some(tokio::spawn(crate::http::serve(listener, standalone.view())))
        }
        Err(source) => match listen {
            Listen::Given(addr) => return Err(RunError::Listen { addr, source }),
            // Announcing matters more than the default endpoint: a second
            // instance on one host still runs, and says what it lacks.
            Listen::Default(addr) => {
                error!(event = "listenFailed", address = %addr, error = %source, "no /metrics and /status (pass --listen)");
                None
            }
        },
    };
    let mut hangup = signal(SignalKind::hangup()).map_err(RunError::Signals)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;

    // Watch before the first read, so that a change made meanwhile is seen.
    let mut watcher = crate::files::Watcher::new(paths, std::time::Duration::from_secs(2));
    standalone.reload().await;
    if let Some(listener) = &bgp {
        sync_keys(listener, &standalone, &mut keys);
    }
    loop {
        tokio::select! {
            () = watcher.changed() => standalone.reload().await,
            _ = hangup.recv() => {
                info!(event = "reloadRequested", "SIGHUP: reading the files again");
                standalone.reload().await;
            }
            accepted = async { bgp.as_ref().expect("guarded").accept().await }, if bgp.is_some() => {
                match accepted {
                    Ok((stream, from)) => standalone.speaker().accepted(stream, from),
                    Err(e) => warn!(error = %e, "accepting a BGP connection failed"),
                }
                continue;
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
        if let Some(listener) = &bgp {
            sync_keys(listener, &standalone, &mut keys);
        }
    }
    standalone.shutdown().await;
    if let Some(http) = http {
        http.abort();
    }
    Ok(())
}

/// Where `/metrics` and `/status` are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// Asked for: failing to bind it is fatal.
    Given(SocketAddr),
    /// The default (`127.0.0.1:7472`, MetalLB's metrics port): failing to
    /// bind it is logged, and the speaker runs without HTTP.
    Default(SocketAddr),
}

impl Listen {
    pub fn addr(self) -> SocketAddr {
        match self {
            Listen::Given(a) | Listen::Default(a) => a,
        }
    }
}
