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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lb_core::plan;
use lb_core::{Node, ServiceKey};
use lb_ipam::{Allocator, pipeline};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::drivers::bgp::speaker::{self, Speaker};
use crate::roles::layer2::{L2World, Layer2, Layer2Options};
use crate::sinks::announcements::{self, Announcements};
use crate::sinks::{http, state};
use crate::sources::files::{FileSources, Files, SourceError};
use crate::sources::watch::Watcher;
use crate::view::{ConfigState, Snapshot, error_chain};

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
    /// Layer 2: gossip port and key, interface exclusions.
    pub layer2: Layer2Settings,
}

/// How layer 2 runs, when the configuration has an L2Advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer2Settings {
    /// UDP port of the gossip among the nodes (MetalLB's memberlist port).
    pub memberlist_port: u16,
    /// The shared gossip key (the `memberlist` Secret's content).
    pub memberlist_key: Option<Vec<u8>>,
    /// Interface name prefixes not answered on unless an advertisement
    /// names the interface (`None`: MetalLB's list).
    pub exclude_interfaces: Option<Vec<String>>,
}

impl Default for Layer2Settings {
    fn default() -> Self {
        Self { memberlist_port: 7946, memberlist_key: None, exclude_interfaces: None }
    }
}

/// The standalone controller and speaker.
#[derive(Debug)]
pub struct Standalone {
    options: Options,
    allocator: Option<Allocator>,
    /// Services of the last good snapshot.
    services: Vec<ServiceKey>,
    speaker: Speaker,
    announcements: Announcements,
    /// Assignments read from the state file, given back on the first load.
    restored: BTreeMap<String, Vec<IpAddr>>,
    /// Default router IDs, chosen once per peer: a new one would restart
    /// the session.
    router_ids: HashMap<String, std::net::Ipv4Addr>,
    config_state: ConfigState,
    published: watch::Sender<Arc<Snapshot>>,
    /// The files' warnings last logged.
    warned: Vec<String>,
    /// Started with the first configuration that has an L2Advertisement.
    layer2: Option<Layer2>,
}

impl Standalone {
    pub fn new(options: Options) -> Self {
        let (published, _) = watch::channel(Arc::new(Snapshot { node: options.node.clone(), ..Snapshot::default() }));
        let restored = options.state.as_deref().map(state::read).unwrap_or_default();
        Self {
            restored,
            router_ids: HashMap::new(),
            options,
            allocator: None,
            services: Vec::new(),
            speaker: Speaker::new(),
            announcements: Announcements::default(),
            config_state: ConfigState::default(),
            published,
            warned: Vec::new(),
            layer2: None,
        }
    }

    /// What the node shows now (`/status`, `/metrics`).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.published.borrow().clone()
    }

    /// Every snapshot from now on, for readers that render them.
    pub fn snapshots(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.published.subscribe()
    }

    /// Publishes a new snapshot: this one with `change` applied.
    fn publish(&self, change: impl FnOnce(&mut Snapshot)) {
        let current = self.published.borrow().clone();
        let mut next = Snapshot {
            node: current.node.clone(),
            config: self.config_state.clone(),
            allocations: current.allocations.clone(),
            pools: current.pools.clone(),
            plan: current.plan.clone(),
            sessions: current.sessions.clone(),
            layer2: current.layer2.clone(),
            status_fixed: std::sync::OnceLock::new(),
        };
        change(&mut next);
        self.published.send_replace(Arc::new(next));
    }

    /// The speaker, to hand it accepted connections.
    pub fn speaker(&self) -> &Speaker {
        &self.speaker
    }

    /// Reads the files and applies them; on error logs and keeps the last good state.
    ///
    /// Returns whether the files could be read at all: a read that failed
    /// (out of descriptors, say) is worth retrying by itself, while an
    /// invalid configuration waits for the next change.
    pub async fn reload(&mut self) -> Reloaded {
        self.reload_unless(std::future::pending()).await.unwrap_or(Reloaded::Done)
    }

    /// [`Self::reload`], given up as soon as `stop` resolves (`None`):
    /// reading, allocating and planning a large cluster take seconds, and
    /// a SIGTERM meanwhile must reach the peers as a Cease at once, not
    /// after them. What was running stays as it was.
    pub async fn reload_unless(&mut self, stop: impl Future<Output = ()>) -> Option<Reloaded> {
        tokio::pin!(stop);
        let sources = self.options.sources.clone();
        let loaded = tokio::select! {
            loaded = offload(move || sources.load()) => loaded,
            () = &mut stop => return None,
        };
        let snapshot = match loaded {
            Ok(s) => s,
            Err(e) => {
                let unreadable = matches!(e, SourceError::Read { .. });
                self.refuse(error_chain(&e));
                return Some(if unreadable { Reloaded::Unreadable } else { Reloaded::Refused });
            }
        };
        self.apply_unless(snapshot, stop).await.then_some(Reloaded::Done)
    }

    /// Logs an invalid change and marks the running state stale; nothing else changes.
    fn refuse(&mut self, error: String) {
        error!(event = "configStale", error = %error, "invalid change ignored; the last good state stays in force");
        self.config_state.stale = true;
        self.config_state.last_error = Some(error);
        self.config_state.reload_errors += 1;
        self.publish(|_| {});
    }

    /// Applies a snapshot; refuses it (logged, nothing changed) if a peer of
    /// this node cannot be set up as configured (a missing Secret, say).
    pub async fn apply(&mut self, snapshot: Files) {
        let _ = self.apply_unless(snapshot, std::future::pending()).await;
    }

    /// [`Self::apply`], given up (returning false, nothing changed) as soon
    /// as `stop` resolves.
    async fn apply_unless(&mut self, snapshot: Files, stop: impl Future<Output = ()>) -> bool {
        let Files { mut observed, secrets, warnings } = snapshot;
        // Said once, while the files keep saying the same.
        let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        for warning in warnings.iter().filter(|w| !self.warned.contains(*w)) {
            warn!(event = "manifestWarning", warning = %warning, "accepted with a warning");
        }
        self.warned = warnings;
        // Every session of this node, before anything changes: a peer
        // whose configuration cannot be honoured makes the whole change
        // invalid, as any other configuration error does.
        let node = observed
            .nodes
            .iter()
            .find(|n| n.name == self.options.node)
            .cloned()
            .unwrap_or_else(|| Node::new(&self.options.node));
        let mut specs = match speaker::peer_specs(&observed.config, &node, &secrets, &mut self.router_ids) {
            Ok(specs) => specs,
            Err(invalid) => {
                self.refuse(invalid.join("; "));
                return true;
            }
        };
        // What a previous run assigned counts as the Service's status, so
        // a restart gives every Service its address back, whatever the
        // order of the files now.
        pipeline::restore(&mut observed.services, &self.restored);
        self.restored.clear();
        let before = self.assignments();

        let class = self.options.load_balancer_class.clone();
        let mut allocator = self
            .allocator
            .take()
            .unwrap_or_else(|| Allocator::new(observed.config.clone()).with_load_balancer_class(class));
        let node_name = self.options.node.clone();
        let work = offload(move || {
            let assignments = pipeline::allocate(&mut allocator, &observed);
            let assigned = plan::assigned_services(&observed.services, &assignments.services);
            let plan = plan::plan_node(&observed.world(&assigned), &node_name);
            (allocator, observed, assignments, plan)
        });
        let (allocator, observed, assignments, plan) = tokio::select! {
            done = work => done,
            // Stopping: the allocator goes with the abandoned work; nothing
            // else was touched.
            () = stop => return false,
        };
        self.allocator = Some(allocator);
        let known: HashSet<&ServiceKey> = self.services.iter().collect();
        for failed in &assignments.services {
            // Said once: when a Service first fails, or loses its address.
            if let Some(error) = &failed.error
                && (before.contains_key(&failed.service) || !known.contains(&failed.service))
            {
                warn!(event = "allocationFailed", service = %failed.service, error = %error, "no IP for the Service");
            }
        }
        self.services = observed.services.iter().map(|s| s.key.clone()).collect();
        let has_l2 = !observed.config.l2_advertisements.is_empty();
        if has_l2 && self.layer2.is_none() {
            let settings = &self.options.layer2;
            match Layer2::spawn(Layer2Options {
                node: self.options.node.clone(),
                port: settings.memberlist_port,
                key: settings.memberlist_key.clone(),
                exclusions: settings.exclude_interfaces.clone(),
            }) {
                Ok(l2) => self.layer2 = Some(l2),
                Err(e) => error!(event = "layer2Failed", error = %e, "cannot start layer 2"),
            }
        }
        if let Some(l2) = &self.layer2 {
            l2.set_world(Arc::new(L2World { observed, assignments: assignments.services.clone(), seeds: None }));
        }
        let after = self.assignments();
        announcements::log_assignments(&before, &after);
        if after != before
            && let Some(path) = &self.options.state
            && let Err(e) = state::write(path, &after)
        {
            error!(event = "stateNotSaved", path = %path.display(), error = %e, "cannot save assignments");
        }

        // This node's announcements.
        let desired: Vec<_> =
            plan.bgp.iter().filter_map(|p| specs.remove(&p.peer).map(|spec| (spec, speaker::routes_of(p)))).collect();
        self.speaker.apply(desired).await;
        let _ = self.announcements.record(&plan.services);

        self.config_state.loaded = true;
        self.config_state.stale = false;
        self.config_state.last_error = None;
        self.config_state.reloads += 1;
        let sessions = self.speaker.peers().map(|(_, shared)| shared.clone()).collect();
        let services = self.services.len();
        let layer2 = self.layer2.as_ref().map(Layer2::shared);
        self.publish(|s| {
            s.layer2 = layer2;
            s.allocations = assignments.services;
            s.pools = assignments.pools;
            s.plan = Some(plan);
            s.sessions = sessions;
        });
        info!(event = "configLoaded", services, "configuration applied");
        true
    }

    fn assignments(&self) -> BTreeMap<ServiceKey, Vec<IpAddr>> {
        self.allocator
            .as_ref()
            .map(|a| a.assignments().map(|(k, a)| (k.clone(), a.addresses.to_vec())).collect())
            .unwrap_or_default()
    }

    /// Cease / Administrative Shutdown to every peer, then close.
    pub async fn shutdown(self) {
        info!(event = "shutdown", "stopping: Cease to every BGP peer, layer 2 IPs handed over");
        let layer2 = async {
            if let Some(l2) = self.layer2 {
                l2.shutdown().await;
            }
        };
        tokio::join!(self.speaker.shutdown("lb standalone shutting down"), layer2);
    }
}

/// Makes the listener's TCP MD5 keys those of the running peers: a peer
/// with a password can only connect with it, and only while configured.
fn sync_keys(listener: &tokio::net::TcpListener, standalone: &Standalone, keys: &mut BTreeMap<IpAddr, Vec<u8>>) {
    let want = standalone.speaker().md5_keys();
    for (ip, key) in &want {
        if keys.get(ip) != Some(key)
            && let Err(e) = crate::drivers::bgp::socket::set_md5_key(listener, *ip, Some(key))
        {
            warn!(peer = %ip, error = %error_chain(&e), "cannot set the TCP MD5 key on the BGP listener");
        }
    }
    for ip in keys.keys().filter(|ip| !want.contains_key(*ip)) {
        let _ = crate::drivers::bgp::socket::set_md5_key(listener, *ip, None);
    }
    *keys = want;
}

/// What became of a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Reloaded {
    /// Applied, or refused by the peers' checks.
    Done,
    /// The files are invalid: nothing changes until they do.
    Refused,
    /// A file could not be read: try again later.
    Unreadable,
}

/// A reload whose files could not be read is tried again after this,
/// doubling up to [`RETRY_MAX`], until one succeeds or the files change.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);

/// The longest wait between two tries of an unreadable reload.
pub const RETRY_MAX: Duration = Duration::from_secs(30);

const RELOAD_RETRY: lb_core::backoff::Backoff = lb_core::backoff::Backoff::new(RETRY_FIRST, RETRY_MAX);

/// Resolves on SIGTERM or SIGINT.
async fn stopping(terminate: &mut tokio::signal::unix::Signal, interrupt: &mut tokio::signal::unix::Signal) {
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
}

/// How long to wait before retrying after `outcome`, given the last wait:
/// only a failed read is retried, sooner first, then less and less often.
fn next_retry(outcome: Reloaded, last: Option<Duration>) -> Option<Duration> {
    match (outcome, last) {
        (Reloaded::Unreadable, last) => Some(RELOAD_RETRY.next(last)),
        (Reloaded::Done | Reloaded::Refused, _) => None,
    }
}

/// Runs `work` (parsing, allocating, planning a large cluster) on the
/// blocking pool, so that the sessions' tasks and the run loop (signals,
/// accepted connections) are never held up by it.
async fn offload<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Why `lb standalone` could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    /// The BGP address could not be bound.
    #[error("cannot listen for BGP on {addr}")]
    BgpListen { addr: SocketAddr, source: crate::drivers::bgp::socket::SocketError },
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
            let listener =
                crate::drivers::bgp::socket::listen(addr).map_err(|source| RunError::BgpListen { addr, source })?;
            info!(event = "bgpListening", address = %addr, "accepting BGP connections from configured peers");
            Some(listener)
        }
        None => None,
    };
    let mut keys: BTreeMap<IpAddr, Vec<u8>> = BTreeMap::new();
    let mut standalone = Standalone::new(options);
    let http = match http::bind(listen.addr()).await {
        Ok(listener) => {
            let bound = listener.local_addr().unwrap_or(listen.addr());
            info!(event = "listening", address = %bound, "serving /metrics and /status");
            Some(tokio::spawn(http::serve(listener, standalone.snapshots())))
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
    let mut watcher = Watcher::new(paths);
    // A reload that could not read the files is retried by itself.
    let mut retry: Option<(tokio::time::Instant, Duration)> = None;
    let mut reload = Some("start");
    loop {
        if let Some(why) = reload.take() {
            match why {
                "start" => {}
                // The configLoaded or configStale that follows says enough.
                "filesChanged" => tracing::debug!(event = why, "reading the files again"),
                _ => info!(event = why, "reading the files again"),
            }
            let Some(outcome) = standalone.reload_unless(stopping(&mut terminate, &mut interrupt)).await else {
                break;
            };
            retry =
                next_retry(outcome, retry.map(|(_, wait)| wait)).map(|wait| (tokio::time::Instant::now() + wait, wait));
            if let Some(listener) = &bgp {
                sync_keys(listener, &standalone, &mut keys);
            }
        }
        let retry_at = retry.map_or_else(tokio::time::Instant::now, |(at, _)| at);
        tokio::select! {
            () = watcher.changed() => reload = Some("filesChanged"),
            _ = hangup.recv() => reload = Some("reloadRequested"),
            () = tokio::time::sleep_until(retry_at), if retry.is_some() => reload = Some("reloadRetried"),
            accepted = async { bgp.as_ref().expect("guarded").accept().await }, if bgp.is_some() => {
                match accepted {
                    Ok((stream, from)) => standalone.speaker().accepted(stream, from),
                    Err(e) => warn!(error = %error_chain(&e), "accepting a BGP connection failed"),
                }
            }
            () = stopping(&mut terminate, &mut interrupt) => break,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_failed_read_is_retried_and_less_and_less_often() {
        assert_eq!(next_retry(Reloaded::Refused, None), None, "an invalid file waits for its next change");
        assert_eq!(next_retry(Reloaded::Done, Some(RETRY_FIRST)), None, "success ends the retries");
        let mut wait = None;
        let mut waits = Vec::new();
        for _ in 0..7 {
            wait = next_retry(Reloaded::Unreadable, wait);
            waits.push(wait.map(|w| w.as_secs()));
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30].map(Some));
    }
}
