//! `lb controller`: the allocation half in a cluster.
//!
//! Sources are watches on Services, Namespaces and the configuration (the
//! `metallb.io` kinds and the legacy ConfigMap); the pure allocator
//! (`lb_ipam::incremental`) decides; `lb_core::writeback` says what each
//! Service needs; this module only carries it out (status subresource,
//! the pool annotation, Events as `metallb-controller`).
//!
//! # Expected flow
//!
//! [`run`] lists and watches every source; nothing is written until all
//! of them are synced, so the first pass sees every Service with its
//! status and restores every existing IP before allocating anything new
//! (a restart never moves a Service). After that, each batch of changes
//! gives one pass, over the Services that changed and those waiting for an
//! address (a whole pass after a change of configuration or namespaces),
//! with the outcome of a whole pass. Writes go out 32 Services at a time;
//! Events go through [`crate::sinks::events`]. A configuration that does
//! not load is logged (`configStale`) and the last good one stays in force.
//!
//! # Guarantees
//!
//! - A Service whose status and annotation are already right is not
//!   written to (a restart writes nothing for them).
//! - `AllocationFailed` is recorded once per Service and distinct error.
//! - A refused write is tried again on its own (0.5 s, doubling to 30 s).
//! - Only the leader writes, Events included; a replica that loses
//!   leadership forgets what it knew and starts again from the cluster.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Namespace as K8sNamespace, ObjectReference, Service as K8sService};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use lb_core::ServiceKey;
use lb_core::writeback::{self, PoolAnnotation};
use lb_ipam::Allocator;
use lb_ipam::incremental::Incremental;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::sinks::configuration_state::ConfigurationState;
use crate::sinks::events::{self, Events};
pub use crate::sources::cluster::CONFIG_KINDS;
use crate::sources::cluster::{ConfigChange, ConfigSources, Source, key_of, spawn_watch};
use crate::view::{ConfigState, Snapshot, error_chain};

/// The reporting component of our Events, as MetalLB's.
pub const COMPONENT: &str = "metallb-controller";
/// The ConfigurationState object this component writes.
pub const CONFIGURATION_STATE: &str = "controller";

/// Field manager of our writes.
pub const FIELD_MANAGER: &str = "lb-controller";

/// Options of `lb controller`.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// Where the configuration lives (`metallb-system`).
    pub namespace: String,
    /// Only Services of this `loadBalancerClass`; `None`: only Services without one.
    pub load_balancer_class: Option<String>,
    /// The Secret whose `secretkey` the speakers authenticate their gossip
    /// with: filled with a random key when it has none (`None`: leave it).
    pub memberlist_secret: Option<String>,
}

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("a watch ended")]
    WatchEnded,
    /// No API server: neither in-cluster nor a kubeconfig.
    #[error("cannot reach the Kubernetes API")]
    Connect(#[source] kube::Error),
}

/// The API server as every client finds it: the in-cluster service
/// account, else `KUBECONFIG` or `~/.kube/config`.
pub async fn connect() -> Result<Client, ControllerError> {
    Client::try_default().await.map_err(ControllerError::Connect)
}

/// One change from a source.
enum Change {
    Service(Box<watcher::Event<K8sService>>),
    Namespace(Box<watcher::Event<K8sNamespace>>),
    Config(ConfigChange),
}

/// A Service as the controller keeps it: converted once, when it
/// changes, and what an Event about it refers to.
#[derive(Debug)]
struct Watched {
    service: lb_core::Service,
    reference: ObjectReference,
}

impl Watched {
    fn of(svc: K8sService) -> Option<Self> {
        let reference = svc.object_ref(&());
        let value = serde_json::to_value(&svc).unwrap_or_default();
        match lb_core::manifest::service(&value) {
            Ok(service) => Some(Self { service, reference }),
            Err(e) => {
                warn!(event = "serviceUnreadable", service = %key_of(&svc), error = %e, "Service skipped");
                None
            }
        }
    }
}

/// What the sources say now.
struct Sources {
    services: Source<Watched>,
    namespaces: Source<K8sNamespace>,
    config: ConfigSources,
    /// The configuration or the namespaces changed since the last pass.
    config_changed: bool,
    namespaces_changed: bool,
}

impl Default for Sources {
    fn default() -> Self {
        Self {
            services: Source::tracking(),
            namespaces: Source::default(),
            config: ConfigSources::default(),
            config_changed: true,
            namespaces_changed: true,
        }
    }
}

impl Sources {
    fn take(&mut self, change: Change) {
        match change {
            Change::Service(e) => self.services.apply_with(*e, Watched::of),
            Change::Namespace(e) => {
                self.namespaces.apply(*e);
                self.namespaces_changed = true;
            }
            Change::Config(c) => {
                self.config.take(c);
                self.config_changed = true;
            }
        }
    }

    /// Every source has been listed once: a pass sees the whole world.
    fn synced(&self) -> bool {
        self.services.synced && self.namespaces.synced && self.config.synced()
    }
}

/// How far the controller got: `/readyz` is ready after the first pass,
/// and tests wait for a pass rather than sleep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Passes completed (each after the sources were all listed).
    pub passes: u64,
}

/// Service writes in flight at once. Each Service's own writes stay in
/// order (status, then annotation); different Services' are independent,
/// and a start with 10,000 Services is bound by round trips, not work.
pub const WRITES_IN_FLIGHT: usize = 32;

/// Runs until a watch ends for good, telling `progress` after each pass.
pub async fn run(
    client: Client,
    options: ControllerOptions,
    progress: tokio::sync::watch::Sender<Progress>,
) -> Result<(), ControllerError> {
    let (_always, leader) = tokio::sync::watch::channel(true);
    let (published, _) = tokio::sync::watch::channel(Arc::new(Snapshot::default()));
    run_led(client, options, progress, leader, published).await
}

/// [`run`] for one of several replicas: passes run, and writes go out,
/// only while `leader` says so (see `drivers::lease`). Leadership gained
/// starts from the Services' statuses again, as a restart does.
pub async fn run_led(
    client: Client,
    options: ControllerOptions,
    progress: tokio::sync::watch::Sender<Progress>,
    leader: tokio::sync::watch::Receiver<bool>,
    published: tokio::sync::watch::Sender<Arc<Snapshot>>,
) -> Result<(), ControllerError> {
    let (events, publisher) = events::channel(client.clone(), COMPONENT, Some(leader.clone()));
    // The Events go out from this task too: they stop with the role.
    tokio::select! {
        result = run_passes(client, options, progress, leader, published, events) => result,
        () = publisher.run() => Err(ControllerError::WatchEnded),
    }
}

async fn run_passes(
    client: Client,
    options: ControllerOptions,
    progress: tokio::sync::watch::Sender<Progress>,
    mut leader: tokio::sync::watch::Receiver<bool>,
    published: tokio::sync::watch::Sender<Arc<Snapshot>>,
    events: Events,
) -> Result<(), ControllerError> {
    let (tx, mut rx) = mpsc::channel::<Change>(1024);
    let mut sources = Sources::default();
    spawn_watch(Api::<K8sService>::all(client.clone()), watcher::Config::default(), tx.clone(), |e| {
        Change::Service(Box::new(e))
    });
    spawn_watch(Api::<K8sNamespace>::all(client.clone()), watcher::Config::default(), tx.clone(), |e| {
        Change::Namespace(Box::new(e))
    });
    ConfigSources::spawn(&client, &options.namespace, &tx, Change::Config);
    drop(tx);

    let mut state = State {
        config_state: ConfigurationState::new(&options.namespace, CONFIGURATION_STATE, &[], FIELD_MANAGER),
        options,
        allocation: None,
        last_errors: HashMap::new(),
        written: HashMap::new(),
        leader: None,
        pools_written: HashMap::new(),
        shown: ConfigState::default(),
        memberlist_checked: false,
        retry: None,
        events,
    };
    let mut leading = *leader.borrow_and_update();
    loop {
        let retry = state.retry.map(|r| r.at);
        tokio::select! {
            change = rx.recv() => {
                let Some(change) = change else { break };
                sources.take(change);
                // Everything already queued goes into the same pass.
                while let Ok(more) = rx.try_recv() {
                    sources.take(more);
                }
            }
            changed = leader.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = *leader.borrow_and_update();
                if now == leading {
                    continue;
                }
                leading = now;
                if !leading {
                    // Another replica writes now; what we knew may go stale.
                    state.forget(&mut sources);
                    continue;
                }
            }
            () = sleep_until(retry), if retry.is_some() => {}
        }
        if sources.synced() && !state.shown.loaded {
            // Listed once: ready (leading or standing by).
            state.shown.loaded = true;
            state.publish(&published);
        }
        if leading && sources.synced() {
            state.leader = Some(leader.clone());
            if !state.memberlist_checked {
                state.memberlist_checked = true;
                if let Some(name) = state.options.memberlist_secret.clone() {
                    ensure_memberlist_key(&client, &state.options.namespace, &name).await;
                }
            }
            state.pass(&client, &mut sources).await;
            state.publish(&published);
            progress.send_modify(|p| p.passes += 1);
        }
    }
    Err(ControllerError::WatchEnded)
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Failed writes are tried again after this, doubling up to [`RETRY_MAX`].
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(500);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
struct Retry {
    at: tokio::time::Instant,
    delay: std::time::Duration,
}

struct State {
    options: ControllerOptions,
    config_state: ConfigurationState,
    /// Allocation across passes; `None` until a configuration loads.
    allocation: Option<Incremental>,
    /// The allocation error last reported per Service.
    last_errors: HashMap<String, String>,
    /// What we wrote and the watch has not shown yet, per Service: a pass
    /// in between (the status came back, the annotation not yet) must not
    /// write it again.
    written: HashMap<String, Written>,
    /// Whether we may write (checked before every write).
    leader: Option<tokio::sync::watch::Receiver<bool>>,
    /// Pool status counts last written, until the watch shows them.
    pools_written: HashMap<String, Value>,
    /// What `/metrics` and `/status` show.
    shown: ConfigState,
    /// The memberlist Secret was looked at since leadership was gained.
    memberlist_checked: bool,
    /// Writes failed: a pass at this time tries them again.
    retry: Option<Retry>,
    events: Events,
}

/// Writes not yet seen in the watch.
#[derive(Default)]
struct Written {
    status: Option<Vec<IpAddr>>,
    annotation: Option<PoolAnnotation>,
}

impl Written {
    /// Lays what we wrote over the Service as watched; forgets what the
    /// watch already shows. Whether anything is still pending.
    fn overlay(&mut self, service: &mut lb_core::Service) -> bool {
        let [stable, deprecated] = lb_core::service::annotation::IP_ALLOCATED_FROM_POOL;
        if let Some(ips) = &self.status {
            let (mut a, mut b) = (ips.clone(), service.ingress_ips.clone());
            a.sort();
            b.sort();
            if a == b {
                self.status = None;
            } else {
                service.ingress_ips.clone_from(ips);
            }
        }
        match &self.annotation {
            Some(PoolAnnotation::Set(pool)) => {
                if service.annotations.get(stable) == Some(pool) && !service.annotations.contains_key(deprecated) {
                    self.annotation = None;
                } else {
                    service.annotations.insert(stable.into(), pool.clone());
                    service.annotations.remove(deprecated);
                }
            }
            Some(PoolAnnotation::Remove) => {
                if !service.annotations.contains_key(stable) && !service.annotations.contains_key(deprecated) {
                    self.annotation = None;
                } else {
                    service.annotations.remove(stable);
                    service.annotations.remove(deprecated);
                }
            }
            None => {}
        }
        self.status.is_some() || self.annotation.is_some()
    }
}

/// The writes one Service needs.
struct Job {
    key: ServiceKey,
    status: Option<Vec<IpAddr>>,
    annotation: Option<PoolAnnotation>,
}

/// What a [`Job`] achieved (`None`: not attempted).
struct Done {
    key: ServiceKey,
    status: Option<Result<Vec<IpAddr>, kube::Error>>,
    annotation: Option<Result<PoolAnnotation, kube::Error>>,
}

impl State {
    fn publish(&self, published: &tokio::sync::watch::Sender<Arc<Snapshot>>) {
        let allocation = self.allocation.as_ref();
        published.send_replace(Arc::new(Snapshot {
            config: self.shown.clone(),
            allocations: allocation.map(|a| a.results().cloned().collect()).unwrap_or_default(),
            pools: allocation.map(Incremental::pool_stats).unwrap_or_default(),
            ..Snapshot::default()
        }));
    }

    /// Leadership lost: the next leadership starts from the cluster's
    /// state, with a whole pass over what the sources hold.
    fn forget(&mut self, sources: &mut Sources) {
        self.allocation = None;
        self.last_errors.clear();
        self.written.clear();
        self.pools_written.clear();
        self.config_state.forget();
        self.memberlist_checked = false;
        self.retry = None;
        sources.config_changed = true;
        sources.namespaces_changed = true;
    }

    fn may_write(&self) -> bool {
        self.leader.as_ref().is_none_or(|l| *l.borrow())
    }

    /// One pass: what changed since the last one (everything, the first
    /// time and after a change of configuration or namespaces).
    async fn pass(&mut self, client: &Client, sources: &mut Sources) {
        let mut config = None;
        if std::mem::take(&mut sources.config_changed) {
            let loaded = sources.config.load(&mut self.shown);
            if self.may_write() {
                let outcome = loaded.as_ref().map(drop).map_err(Vec::as_slice);
                self.config_state.report(client, &self.events, &sources.config, outcome).await;
            }
            config = loaded.ok().map(|l| l.config);
        }
        let fresh = self.allocation.is_none();
        let may_write = self.may_write();
        let allocation = match (&mut self.allocation, config) {
            (Some(a), Some(config)) => {
                a.set_config(config);
                a
            }
            (Some(a), None) => a,
            (None, Some(config)) => {
                let class = self.options.load_balancer_class.clone();
                self.allocation.insert(Incremental::new(Allocator::new(config).with_only_class(class)))
            }
            (None, None) => return,
        };
        if std::mem::take(&mut sources.namespaces_changed) || fresh {
            let namespaces = sources
                .namespaces
                .objects
                .values()
                .map(|n| lb_core::Namespace::new(&n.name_any(), n.labels().clone().into_iter().collect()))
                .collect();
            allocation.set_namespaces(namespaces);
        }
        let changed = sources.services.take_changed();
        let changed: Box<dyn Iterator<Item = &String>> =
            if fresh { Box::new(sources.services.objects.keys()) } else { Box::new(changed.iter()) };
        for key in changed {
            match sources.services.objects.get(key) {
                Some(watched) => {
                    let mut service = watched.service.clone();
                    if let Some(w) = self.written.get_mut(key.as_str())
                        && !w.overlay(&mut service)
                    {
                        self.written.remove(key.as_str());
                    }
                    allocation.upsert(service);
                }
                None => {
                    self.written.remove(key.as_str());
                    let (namespace, name) = key.split_once('/').unwrap_or_default();
                    allocation.remove(&ServiceKey::new(namespace, name));
                }
            }
        }
        let touched = allocation.pass();
        let mut jobs = Vec::new();
        for key in &touched {
            let Some(service) = allocation.service(key) else {
                self.last_errors.remove(key.as_str());
                continue;
            };
            let wb = match allocation.result(key) {
                Some(a) => {
                    let last = self.last_errors.get(key.as_str()).map(String::as_str);
                    let wb = writeback::service_writeback(service, a, last);
                    match &a.error {
                        Some(e) => self.last_errors.insert(key.as_str().to_string(), e.clone()),
                        None => self.last_errors.remove(key.as_str()),
                    };
                    if let Some(ips) = &wb.status {
                        info!(event = "ipAllocated", service = %key, ips = ?ips, "IP address assigned by controller");
                    }
                    wb
                }
                // Not handled any more (type or class changed): what we
                // wrote goes.
                None => {
                    self.last_errors.remove(key.as_str());
                    if service.annotation(lb_core::service::annotation::IP_ALLOCATED_FROM_POOL).is_none() {
                        continue;
                    }
                    info!(event = "clearAssignment", service = %key, "not handled any more: status cleared");
                    writeback::Writeback {
                        status: (!service.ingress_ips.is_empty()).then(Vec::new),
                        annotation: Some(PoolAnnotation::Remove),
                        events: Vec::new(),
                    }
                }
            };
            if !may_write {
                continue;
            }
            if let Some(watched) = sources.services.objects.get(key.as_str()) {
                for event in &wb.events {
                    self.events.record(watched.reference.clone(), event);
                }
            }
            if wb.status.is_some() || wb.annotation.is_some() {
                jobs.push(Job { key: key.clone(), status: wb.status, annotation: wb.annotation });
            }
        }
        let pools = allocation.pool_stats();
        self.carry_out(client, jobs).await;
        self.pool_statuses(client, sources, &pools).await;
    }

    /// The Services' writes, [`WRITES_IN_FLIGHT`] at a time; what was
    /// written is laid over the Services kept (so it is not written again
    /// before the watch shows it), what failed is tried again later.
    async fn carry_out(&mut self, client: &Client, jobs: Vec<Job>) {
        let leader = self.leader.clone();
        let done: Vec<Done> = futures_util::stream::iter(jobs)
            .map(|job| write_service(client.clone(), leader.clone(), job))
            .buffer_unordered(WRITES_IN_FLIGHT)
            .collect()
            .await;
        let mut any_failed = false;
        for d in done {
            let key = d.key.as_str();
            let mut failed = false;
            match d.status {
                Some(Ok(ips)) => self.written.entry(key.to_string()).or_default().status = Some(ips),
                Some(Err(e)) => {
                    failed = true;
                    warn!(event = "statusNotWritten", service = %d.key, error = %error_chain(&e), "cannot write the Service's status");
                }
                None => {}
            }
            match d.annotation {
                Some(Ok(change)) => self.written.entry(key.to_string()).or_default().annotation = Some(change),
                Some(Err(e)) => {
                    failed = true;
                    warn!(event = "annotationNotWritten", service = %d.key, error = %error_chain(&e), "cannot write the Service's annotation");
                }
                None => {}
            }
            let Some(allocation) = self.allocation.as_mut() else { continue };
            if let (Some(w), Some(service)) = (self.written.get_mut(key), allocation.service(&d.key)) {
                let mut service = service.clone();
                w.overlay(&mut service);
                allocation.upsert(service);
            }
            if failed {
                any_failed = true;
                allocation.touch(&d.key);
            }
        }
        self.retry = match (any_failed, self.retry) {
            (false, _) => None,
            (true, previous) => {
                let delay = previous.map_or(RETRY_FIRST, |r| (r.delay * 2).min(RETRY_MAX));
                Some(Retry { at: tokio::time::Instant::now() + delay, delay })
            }
        };
    }

    /// Each IPAddressPool's `status` counts, written when they differ from
    /// what the pool shows (so a restart writes none).
    async fn pool_statuses(&mut self, client: &Client, sources: &Sources, pools: &[lb_core::plan::PoolStats]) {
        if !self.may_write() {
            return;
        }
        let Some(((version, kind, plural), source)) = sources.config.of_kind("IPAddressPool") else { return };
        let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("metallb.io", version, kind), plural);
        for stats in pools {
            let count = |n: u128| lb_core::plan::json_count(n);
            let want = json!({
                "assignedIPv4": count(stats.ipv4_in_use),
                "assignedIPv6": count(stats.ipv6_in_use),
                "availableIPv4": count(stats.ipv4_total.saturating_sub(stats.ipv4_in_use)),
                "availableIPv6": count(stats.ipv6_total.saturating_sub(stats.ipv6_in_use)),
            });
            let Some(pool) = source.objects.values().find(|o| o.metadata.name.as_deref() == Some(stats.name.as_str()))
            else {
                continue;
            };
            if pool.data.get("status") == Some(&want) {
                // Shown: a later change that loses it (the pool deleted and
                // made again) is written again.
                self.pools_written.remove(&stats.name);
                continue;
            }
            if self.pools_written.get(&stats.name) == Some(&want) {
                continue;
            }
            let namespace = pool.metadata.namespace.clone().unwrap_or_default();
            let api = Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, &resource);
            match api.patch_status(&stats.name, &PatchParams::default(), &Patch::Merge(&json!({"status": want}))).await
            {
                Ok(_) => {
                    self.pools_written.insert(stats.name.clone(), want);
                }
                Err(e) => {
                    warn!(event = "poolStatusNotWritten", pool = %stats.name, error = %error_chain(&e), "cannot write the pool's status");
                }
            }
        }
    }
}

/// One Service's writes, in order: the status, then the pool annotation;
/// none once leadership is lost.
async fn write_service(client: Client, leader: Option<tokio::sync::watch::Receiver<bool>>, job: Job) -> Done {
    let may_write = || leader.as_ref().is_none_or(|l| *l.borrow());
    let mut done = Done { key: job.key, status: None, annotation: None };
    let api: Api<K8sService> = Api::namespaced(client, done.key.namespace());
    let name = done.key.name().to_string();
    if let Some(ips) = job.status
        && may_write()
    {
        let ingress: Vec<Value> = ips.iter().map(|ip: &IpAddr| json!({"ip": ip.to_string()})).collect();
        let patch = json!({"status": {"loadBalancer": {"ingress": ingress}}});
        let result = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await;
        done.status = Some(result.map(|_| ips));
    }
    if let Some(change) = job.annotation
        && may_write()
    {
        let [stable, deprecated] = lb_core::service::annotation::IP_ALLOCATED_FROM_POOL;
        let value = match &change {
            PoolAnnotation::Set(pool) => json!(pool),
            PoolAnnotation::Remove => Value::Null,
        };
        let patch = json!({"metadata": {"annotations": {stable: value, deprecated: Value::Null}}});
        let result = api.patch(&name, &PatchParams::apply(FIELD_MANAGER), &Patch::Merge(&patch)).await;
        done.annotation = Some(result.map(|_| change));
    }
    done
}

/// Gives the memberlist Secret a random `secretkey` if it has none, as
/// MetalLB's controller does, so the speakers' gossip is authenticated
/// without an operator generating a key. The Secret itself comes with the
/// manifests (the controller may read and patch it, not create Secrets);
/// the patch carries the resourceVersion read, so two writers cannot both
/// set a key.
async fn ensure_memberlist_key(client: &Client, namespace: &str, name: &str) {
    use k8s_openapi::api::core::v1::Secret;
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = match api.get_opt(name).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            warn!(event = "memberlistSecretMissing", secret = %name, "no memberlist Secret: layer 2 speakers wait for it (apply deploy/ again)");
            return;
        }
        Err(e) => {
            warn!(event = "memberlistSecretUnreadable", secret = %name, error = %error_chain(&e), "cannot read the memberlist Secret");
            return;
        }
    };
    if secret
        .data
        .as_ref()
        .is_some_and(|d| d.get(crate::roles::speaker::MEMBERLIST_KEY).is_some_and(|k| !k.0.is_empty()))
    {
        return;
    }
    let key = match random_key() {
        Ok(k) => k,
        Err(e) => {
            error!(event = "memberlistKeyFailed", error = %e, "cannot draw a random gossip key");
            return;
        }
    };
    use base64::Engine as _;
    let patch = json!({
        "metadata": {"resourceVersion": secret.metadata.resource_version},
        "data": {crate::roles::speaker::MEMBERLIST_KEY: base64::engine::general_purpose::STANDARD.encode(key)},
    });
    match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => {
            info!(event = "memberlistKeyCreated", secret = %name, "gave the memberlist Secret a random gossip key")
        }
        Err(e) => {
            warn!(event = "memberlistKeyFailed", secret = %name, error = %error_chain(&e), "cannot write the gossip key")
        }
    }
}

/// 32 bytes from the kernel's random source, as text (the key is read
/// back as bytes; MetalLB's is base64 text too).
fn random_key() -> std::io::Result<String> {
    use base64::Engine as _;
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}
