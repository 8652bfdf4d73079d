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
    /// `metadata.resourceVersion`: which of our writes it shows.
    version: Option<String>,
}

impl Watched {
    fn of(svc: K8sService) -> Option<Self> {
        let reference = svc.object_ref(&());
        let version = svc.metadata.resource_version.clone();
        let value = serde_json::to_value(&svc).unwrap_or_default();
        match lb_core::manifest::service(&value) {
            Ok(mut service) => {
                service.forget_what_no_rule_reads();
                Some(Self { service, reference, version })
            }
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
        failed: Default::default(),
        due: Default::default(),
        config_state_failed: false,
        retry: Retry::default(),
        events,
    };
    let mut leading = *leader.borrow_and_update();
    loop {
        let retry = state.retry.at;
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
            () = sleep_until(retry), if retry.is_some() => state.retry_due(&mut sources),
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

/// Refused writes are tried again after 0.5 s, doubling up to 30 s.
const WRITE_RETRY: lb_core::backoff::Backoff =
    lb_core::backoff::Backoff::new(std::time::Duration::from_millis(500), std::time::Duration::from_secs(30));

/// When refused writes are tried again.
#[derive(Debug, Clone, Copy, Default)]
struct Retry {
    /// The next try (`None`: none pending).
    at: Option<tokio::time::Instant>,
    /// The last delay, doubled at each try that fails again.
    delay: Option<std::time::Duration>,
}

impl Retry {
    /// Something failed: a try is due, later each time it fails again.
    fn arm(&mut self) {
        if self.at.is_none() {
            let delay = WRITE_RETRY.next(self.delay);
            self.delay = Some(delay);
            self.at = Some(tokio::time::Instant::now() + delay);
        }
    }
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
    /// Services whose writes failed (or were not made: leadership lapsed
    /// during the pass), tried again when `retry` is due, not at every
    /// pass (a write the server keeps refusing backs off).
    failed: std::collections::BTreeSet<ServiceKey>,
    /// Of those, the ones the next pass writes again (the retry is due).
    due: std::collections::BTreeSet<ServiceKey>,
    /// The ConfigurationState could not be written: reported again when due.
    config_state_failed: bool,
    retry: Retry,
    events: Events,
}

/// Writes not yet seen in the watch, for one Service. Each is laid over
/// the Service as watched only while the watch shows a version known to
/// come before it: any other version (the write itself, or a later
/// change by anyone) is trusted as it is. So a write is never made twice
/// while the watch catches up, and never hidden for good (a Service
/// deleted and made again has another uid; a status someone else wrote
/// after ours shows as it is).
#[derive(Default)]
struct Written {
    uid: Option<String>,
    /// Every version of the Service known to come before the latest of
    /// our writes: those the passes saw and those our writes made (the
    /// most recent few).
    versions: Vec<String>,
    /// The status written, and the versions before it.
    status: Option<(Vec<IpAddr>, Vec<String>)>,
    /// The annotation change written, and the versions before it.
    annotation: Option<(PoolAnnotation, Vec<String>)>,
}

impl Written {
    /// Versions kept: enough for the writes of a few passes in a row.
    const VERSIONS: usize = 16;

    fn know(&mut self, version: Option<String>) {
        let Some(version) = version else { return };
        if !self.versions.contains(&version) {
            if self.versions.len() == Self::VERSIONS {
                self.versions.remove(0);
            }
            self.versions.push(version);
        }
    }

    /// Lays what the watch has not shown yet over `service`; forgets the
    /// rest. Whether anything is still pending.
    fn overlay(&mut self, service: &mut lb_core::Service, watched: &Watched) -> bool {
        if self.uid != watched.reference.uid {
            self.status = None;
            self.annotation = None;
            return false;
        }
        let before = |versions: &[String]| watched.version.as_ref().is_some_and(|v| versions.contains(v));
        if self.status.as_ref().is_some_and(|(_, versions)| !before(versions)) {
            self.status = None;
        }
        if self.annotation.as_ref().is_some_and(|(_, versions)| !before(versions)) {
            self.annotation = None;
        }
        self.lay_over(service);
        self.status.is_some() || self.annotation.is_some()
    }

    /// Makes `service` say what was written.
    fn lay_over(&self, service: &mut lb_core::Service) {
        if let Some((ips, _)) = &self.status {
            service.ingress_ips.clone_from(ips);
        }
        let [stable, deprecated] = lb_core::service::annotation::IP_ALLOCATED_FROM_POOL;
        match &self.annotation {
            Some((PoolAnnotation::Set(pool), _)) => {
                service.annotations.insert(stable.into(), pool.clone());
                service.annotations.remove(deprecated);
            }
            Some((PoolAnnotation::Remove, _)) => {
                service.annotations.remove(stable);
                service.annotations.remove(deprecated);
            }
            None => {}
        }
    }
}

/// The writes one Service needs, and the Events that say what they did.
struct Job {
    key: ServiceKey,
    /// The Service as the pass saw it: its uid and version.
    uid: Option<String>,
    version: Option<String>,
    reference: ObjectReference,
    status: Option<Vec<IpAddr>>,
    annotation: Option<PoolAnnotation>,
    events: Vec<writeback::ServiceEvent>,
}

/// What a [`Job`] achieved: each write with the version it made (`None`:
/// not attempted).
struct Done {
    job: Job,
    status: Option<Result<Option<String>, kube::Error>>,
    annotation: Option<Result<Option<String>, kube::Error>>,
    /// Not all attempted: leadership lapsed.
    skipped: bool,
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
        self.failed.clear();
        self.due.clear();
        self.config_state_failed = false;
        self.retry = Retry::default();
        sources.config_changed = true;
        sources.namespaces_changed = true;
    }

    /// The retry is due: the failed Services are taken again by the next
    /// pass, and the ConfigurationState reported again.
    fn retry_due(&mut self, sources: &mut Sources) {
        self.retry.at = None;
        if let Some(allocation) = self.allocation.as_mut() {
            for key in &self.failed {
                allocation.touch(key);
            }
            self.due.clone_from(&self.failed);
        }
        if std::mem::take(&mut self.config_state_failed) {
            sources.config_changed = true;
        }
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
            let outcome = loaded.as_ref().map(drop).map_err(Vec::as_slice);
            if !self.may_write() || !self.config_state.report(client, &self.events, &sources.config, outcome).await {
                // Refused, or leadership lapsed: reported again.
                self.config_state_failed = true;
                self.retry.arm();
            }
            config = loaded.ok().map(|l| l.config);
        }
        let fresh = self.allocation.is_none();
        let namespaces_changed = std::mem::take(&mut sources.namespaces_changed);
        // A whole pass: every Service is written as it should be, those
        // waiting on the retry's backoff included.
        let whole = fresh || config.is_some() || namespaces_changed;
        let due = std::mem::take(&mut self.due);
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
        if namespaces_changed || fresh {
            let namespaces = sources
                .namespaces
                .objects
                .values()
                .map(|n| lb_core::Namespace::new(&n.name_any(), n.labels().clone().into_iter().collect()))
                .collect();
            allocation.set_namespaces(namespaces);
        }
        let watch_changed = sources.services.take_changed();
        let changed: Box<dyn Iterator<Item = &String>> =
            if fresh { Box::new(sources.services.objects.keys()) } else { Box::new(watch_changed.iter()) };
        for key in changed {
            match sources.services.objects.get(key) {
                Some(watched) => {
                    let mut service = watched.service.clone();
                    if let Some(w) = self.written.get_mut(key.as_str())
                        && !w.overlay(&mut service, watched)
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
                self.failed.remove(key);
                continue;
            };
            // Refused before: written again when the retry is due (or the
            // Service changed, or the pass is whole), not at every pass.
            if self.failed.contains(key) && !whole && !due.contains(key) && !watch_changed.contains(key.as_str()) {
                continue;
            }
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
            let Some(watched) = sources.services.objects.get(key.as_str()) else { continue };
            if !may_write {
                // Leadership lapsed since the loop looked: not lost, tried again.
                self.failed.insert(key.clone());
                self.last_errors.remove(key.as_str());
                self.retry.arm();
                continue;
            }
            if wb.status.is_none() && wb.annotation.is_none() {
                for event in &wb.events {
                    self.events.record(watched.reference.clone(), event);
                }
                continue;
            }
            jobs.push(Job {
                key: key.clone(),
                uid: watched.reference.uid.clone(),
                version: watched.version.clone(),
                reference: watched.reference.clone(),
                status: wb.status,
                annotation: wb.annotation,
                events: wb.events,
            });
        }
        let pools = allocation.pool_stats();
        self.carry_out(client, jobs).await;
        self.pool_statuses(client, sources, &pools).await;
    }

    /// The Services' writes, [`WRITES_IN_FLIGHT`] at a time; what was
    /// written is laid over the Services kept (so it is not written again
    /// before the watch shows it) and its Events recorded; what failed is
    /// tried again when the retry is due, its Events with it.
    async fn carry_out(&mut self, client: &Client, jobs: Vec<Job>) {
        let leader = self.leader.clone();
        let done: Vec<Done> = futures_util::stream::iter(jobs)
            .map(|job| write_service(client.clone(), leader.clone(), job))
            .buffer_unordered(WRITES_IN_FLIGHT)
            .collect()
            .await;
        for d in done {
            let job = d.job;
            let key = job.key.as_str();
            let mut failed = d.skipped;
            let entry = self.written.entry(key.to_string()).or_default();
            if entry.uid != job.uid {
                *entry = Written { uid: job.uid.clone(), ..Written::default() };
            }
            entry.know(job.version.clone());
            // The job's Events say what its first write does.
            let mut said = false;
            let writes_status = job.status.is_some();
            match (d.status, job.status) {
                (Some(Ok(version)), Some(ips)) => {
                    entry.status = Some((ips, entry.versions.clone()));
                    entry.know(version);
                    said = true;
                }
                (Some(Err(e)), _) => {
                    failed = true;
                    warn!(event = "statusNotWritten", service = %job.key, error = %error_chain(&e), "cannot write the Service's status");
                }
                _ => {}
            }
            match (d.annotation, job.annotation) {
                (Some(Ok(version)), Some(change)) => {
                    entry.annotation = Some((change, entry.versions.clone()));
                    entry.know(version);
                    said |= !writes_status;
                }
                (Some(Err(e)), _) => {
                    failed = true;
                    warn!(event = "annotationNotWritten", service = %job.key, error = %error_chain(&e), "cannot write the Service's annotation");
                }
                _ => {}
            }
            if entry.status.is_none() && entry.annotation.is_none() {
                self.written.remove(key);
            }
            if said {
                for event in &job.events {
                    self.events.record(job.reference.clone(), event);
                }
            }
            if failed {
                if !said {
                    // Said when the writes are tried again.
                    self.last_errors.remove(key);
                }
                self.failed.insert(job.key.clone());
                self.retry.arm();
            } else {
                self.failed.remove(&job.key);
            }
            let Some(allocation) = self.allocation.as_mut() else { continue };
            if let Some(w) = self.written.get(key)
                && let Some(service) = allocation.service(&job.key)
            {
                // The Service kept is the watched one at `job.version`: what
                // was written goes over it.
                let mut service = service.clone();
                w.lay_over(&mut service);
                allocation.upsert(service);
            }
        }
        if self.failed.is_empty() && !self.config_state_failed {
            self.retry = Retry::default();
        }
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
    let api: Api<K8sService> = Api::namespaced(client, job.key.namespace());
    let name = job.key.name().to_string();
    let (mut status, mut annotation, mut skipped) = (None, None, false);
    if let Some(ips) = &job.status {
        if may_write() {
            let ingress: Vec<Value> = ips.iter().map(|ip: &IpAddr| json!({"ip": ip.to_string()})).collect();
            let patch = json!({"status": {"loadBalancer": {"ingress": ingress}}});
            let result = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await;
            status = Some(result.map(|s| s.metadata.resource_version));
        } else {
            skipped = true;
        }
    }
    if let Some(change) = &job.annotation {
        if may_write() {
            let [stable, deprecated] = lb_core::service::annotation::IP_ALLOCATED_FROM_POOL;
            let value = match change {
                PoolAnnotation::Set(pool) => json!(pool),
                PoolAnnotation::Remove => Value::Null,
            };
            let patch = json!({"metadata": {"annotations": {stable: value, deprecated: Value::Null}}});
            let result = api.patch(&name, &PatchParams::apply(FIELD_MANAGER), &Patch::Merge(&patch)).await;
            annotation = Some(result.map(|s| s.metadata.resource_version));
        } else {
            skipped = true;
        }
    }
    Done { job, status, annotation, skipped }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(uid: &str, version: &str) -> Watched {
        Watched {
            service: lb_core::Service::new("shop", "web"),
            reference: ObjectReference { uid: Some(uid.into()), ..ObjectReference::default() },
            version: Some(version.into()),
        }
    }

    fn written(uid: &str) -> Written {
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        Written {
            uid: Some(uid.into()),
            versions: vec!["10".into(), "11".into(), "12".into()],
            status: Some((vec![ip], vec!["10".into()])),
            annotation: Some((PoolAnnotation::Set("default".into()), vec!["10".into(), "11".into()])),
        }
    }

    #[test]
    fn writes_are_laid_over_versions_before_them_only() {
        let [stable, _] = lb_core::service::annotation::IP_ALLOCATED_FROM_POOL;
        // The watch is still at the version the pass saw: both laid over.
        let mut w = written("u1");
        let seen = watched("u1", "10");
        let mut service = seen.service.clone();
        assert!(w.overlay(&mut service, &seen));
        assert_eq!(service.ingress_ips.len(), 1);
        assert_eq!(service.annotations.get(stable).map(String::as_str), Some("default"));
        // The status write shows: trusted as watched; the annotation still laid over.
        let seen = watched("u1", "11");
        let mut service = seen.service.clone();
        assert!(w.overlay(&mut service, &seen));
        assert!(service.ingress_ips.is_empty(), "the watch's own status stands");
        assert!(w.status.is_none());
        assert_eq!(service.annotations.get(stable).map(String::as_str), Some("default"));
        // Any later version: nothing pending.
        let seen = watched("u1", "15");
        let mut service = seen.service.clone();
        assert!(!w.overlay(&mut service, &seen));
        assert!(!service.annotations.contains_key(stable));
    }

    #[test]
    fn a_service_made_again_under_the_same_name_is_not_given_the_old_ones_writes() {
        let mut w = written("u1");
        let seen = watched("u2", "10");
        let mut service = seen.service.clone();
        assert!(!w.overlay(&mut service, &seen));
        assert!(service.ingress_ips.is_empty());
    }
}
