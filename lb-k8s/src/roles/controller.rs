//! `lb controller`: the allocation half in a cluster.
//!
//! Sources are watches on Services, Namespaces and the configuration (the
//! `metallb.io` kinds and the legacy ConfigMap); the pure allocator
//! (`lb_ipam::pipeline`) decides; `lb_core::writeback` says what each
//! Service needs; this module only carries it out (status subresource,
//! the pool annotation, Events as `metallb-controller`).
//!
//! # Expected flow
//!
//! [`run`] lists and watches every source; nothing is written until all
//! of them are synced, so the first pass sees every Service with its
//! status and restores every existing IP before allocating anything new
//! (a restart never moves a Service). After that, each batch of changes
//! gives one pass. A configuration that does not load is logged
//! (`configStale`) and the last good one stays in force.
//!
//! # Guarantees
//!
//! - A Service whose status and annotation are already right is not
//!   written to (a restart writes nothing for them).
//! - `AllocationFailed` is recorded once per Service and distinct error.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace as K8sNamespace, Service as K8sService};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::events::{Event, EventType as KubeEventType, Recorder, Reporter};
use kube::runtime::watcher::{self, watcher};
use kube::{Client, Resource, ResourceExt};
use lb_core::plan::Observed;
use lb_core::writeback::{self, EventType, PoolAnnotation, ServiceEvent};
use lb_ipam::{Allocator, pipeline};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::view::{ConfigState, Snapshot, error_chain};

/// The reporting component of our Events, as MetalLB's.
pub const COMPONENT: &str = "metallb-controller";
/// The ConfigurationState object this component writes.
pub const CONFIGURATION_STATE: &str = "controller";

/// RFC 3339 now, as `lastTransitionTime` wants it.
fn jiff_now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// Field manager of our writes.
pub const FIELD_MANAGER: &str = "lb-controller";

/// The `metallb.io` kinds the configuration is read from: version, kind,
/// plural (the API server must serve each; tests register them).
pub const CONFIG_KINDS: &[(&str, &str, &str)] = &[
    ("v1beta1", "IPAddressPool", "ipaddresspools"),
    ("v1beta1", "L2Advertisement", "l2advertisements"),
    ("v1beta1", "BGPAdvertisement", "bgpadvertisements"),
    ("v1beta2", "BGPPeer", "bgppeers"),
    ("v1beta1", "Community", "communities"),
    ("v1beta1", "BFDProfile", "bfdprofiles"),
];

/// Options of `lb controller`.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// Where the configuration lives (`metallb-system`).
    pub namespace: String,
    /// Only Services of this `loadBalancerClass`; `None`: only Services without one.
    pub load_balancer_class: Option<String>,
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
    ConfigMap(Box<watcher::Event<ConfigMap>>),
    Config(usize, Box<watcher::Event<DynamicObject>>),
}

/// One watched kind: its objects by `namespace/name`, and a relist in
/// progress (the watcher's `Init` .. `InitDone`).
struct Source<K> {
    objects: BTreeMap<String, K>,
    relist: Option<BTreeMap<String, K>>,
    synced: bool,
}

impl<K> Default for Source<K> {
    fn default() -> Self {
        Self { objects: BTreeMap::new(), relist: None, synced: false }
    }
}

fn key_of<K: Resource>(o: &K) -> String {
    format!("{}/{}", o.meta().namespace.as_deref().unwrap_or_default(), o.meta().name.as_deref().unwrap_or_default())
}

impl<K: Resource + Clone> Source<K> {
    fn apply(&mut self, event: watcher::Event<K>) {
        match event {
            watcher::Event::Init => self.relist = Some(BTreeMap::new()),
            watcher::Event::InitApply(o) => {
                if let Some(r) = self.relist.as_mut() {
                    r.insert(key_of(&o), o);
                }
            }
            watcher::Event::InitDone => {
                if let Some(r) = self.relist.take() {
                    self.objects = r;
                }
                self.synced = true;
            }
            watcher::Event::Apply(o) => {
                self.objects.insert(key_of(&o), o);
            }
            watcher::Event::Delete(o) => {
                self.objects.remove(&key_of(&o));
            }
        }
    }
}

/// What the sources say now.
#[derive(Default)]
struct Sources {
    services: Source<K8sService>,
    namespaces: Source<K8sNamespace>,
    configmaps: Source<ConfigMap>,
    /// One per [`CONFIG_KINDS`] entry.
    config: Vec<Source<DynamicObject>>,
}

impl Sources {
    fn take(&mut self, change: Change) {
        match change {
            Change::Service(e) => self.services.apply(*e),
            Change::Namespace(e) => self.namespaces.apply(*e),
            Change::ConfigMap(e) => self.configmaps.apply(*e),
            Change::Config(i, e) => {
                if let Some(source) = self.config.get_mut(i) {
                    source.apply(*e);
                }
            }
        }
    }

    /// Every source has been listed once: a pass sees the whole world.
    fn synced(&self) -> bool {
        self.services.synced && self.namespaces.synced && self.configmaps.synced && self.config.iter().all(|s| s.synced)
    }

    /// A reference to the configuration object `Kind/name`.
    fn object_ref(&self, object: &str) -> Option<k8s_openapi::api::core::v1::ObjectReference> {
        let (kind, name) = object.split_once('/')?;
        let pick = |o: &DynamicObject| o.metadata.name.as_deref() == Some(name);
        let (i, (version, kind, _)) = CONFIG_KINDS.iter().enumerate().find(|(_, (_, k, _))| *k == kind)?;
        let o = self.config.get(i)?.objects.values().find(|o| pick(o))?;
        Some(k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(format!("metallb.io/{version}")),
            kind: Some((*kind).to_string()),
            name: o.metadata.name.clone(),
            namespace: o.metadata.namespace.clone(),
            uid: o.metadata.uid.clone(),
            ..Default::default()
        })
    }

    /// The configuration objects, as JSON documents for the loader.
    fn config_objects(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for cm in self.configmaps.objects.values() {
            let mut v = serde_json::to_value(cm).unwrap_or_default();
            v["apiVersion"] = json!("v1");
            v["kind"] = json!("ConfigMap");
            out.push(v);
        }
        for (source, (version, kind, _)) in self.config.iter().zip(CONFIG_KINDS) {
            for o in source.objects.values() {
                let mut v = serde_json::to_value(o).unwrap_or_default();
                v["apiVersion"] = json!(format!("metallb.io/{version}"));
                v["kind"] = json!(kind);
                out.push(v);
            }
        }
        out
    }
}

/// How far the controller got: `/readyz` is ready after the first pass,
/// and tests wait for a pass rather than sleep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Passes completed (each after the sources were all listed).
    pub passes: u64,
}

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
    mut leader: tokio::sync::watch::Receiver<bool>,
    published: tokio::sync::watch::Sender<Arc<Snapshot>>,
) -> Result<(), ControllerError> {
    let (tx, mut rx) = mpsc::channel::<Change>(1024);
    let mut sources =
        Sources { config: CONFIG_KINDS.iter().map(|_| Source::default()).collect(), ..Sources::default() };
    spawn_watch(Api::<K8sService>::all(client.clone()), watcher::Config::default(), tx.clone(), |e| {
        Change::Service(Box::new(e))
    });
    spawn_watch(Api::<K8sNamespace>::all(client.clone()), watcher::Config::default(), tx.clone(), |e| {
        Change::Namespace(Box::new(e))
    });
    spawn_watch(
        Api::<ConfigMap>::namespaced(client.clone(), &options.namespace),
        watcher::Config::default().fields("metadata.name=config"),
        tx.clone(),
        |e| Change::ConfigMap(Box::new(e)),
    );
    for (i, (version, kind, plural)) in CONFIG_KINDS.iter().enumerate() {
        let gvk = GroupVersionKind::gvk("metallb.io", version, kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), &options.namespace, &resource);
        spawn_watch(api, watcher::Config::default(), tx.clone(), move |e| Change::Config(i, Box::new(e)));
    }
    drop(tx);

    let recorder = Recorder::new(client.clone(), Reporter { controller: COMPONENT.into(), instance: None });
    let mut state = State {
        options,
        config_state: None,
        allocator: None,
        last_errors: HashMap::new(),
        written: HashMap::new(),
        leader: None,
        pools_written: HashMap::new(),
        shown: ConfigState::default(),
        allocations: Vec::new(),
        pools: Vec::new(),
    };
    let mut leading = *leader.borrow_and_update();
    loop {
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
                    state.forget();
                    continue;
                }
            }
        }
        if sources.synced() && !state.shown.loaded {
            // Listed once: ready (leading or standing by).
            state.shown.loaded = true;
            state.publish(&published);
        }
        if leading && sources.synced() {
            state.leader = Some(leader.clone());
            state.pass(&client, &recorder, &sources).await;
            state.publish(&published);
            progress.send_modify(|p| p.passes += 1);
        }
    }
    Err(ControllerError::WatchEnded)
}

fn spawn_watch<K, F>(api: Api<K>, config: watcher::Config, tx: mpsc::Sender<Change>, wrap: F)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    F: Fn(watcher::Event<K>) -> Change + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = watcher(api, config).boxed();
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    if tx.send(wrap(event)).await.is_err() {
                        return;
                    }
                }
                // The watcher retries by itself; say so and go on.
                Err(e) => warn!(event = "watchFailed", error = %error_chain(&e), "watch failed; retrying"),
            }
        }
    });
}

struct State {
    options: ControllerOptions,
    /// What the ConfigurationState says, as last written (errors: Invalid).
    config_state: Option<Result<(), Vec<String>>>,
    allocator: Option<Allocator>,
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
    allocations: Vec<lb_core::plan::ServiceAssignment>,
    pools: Vec<lb_core::plan::PoolStats>,
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

impl State {
    fn publish(&self, published: &tokio::sync::watch::Sender<Arc<Snapshot>>) {
        published.send_replace(Arc::new(Snapshot {
            config: self.shown.clone(),
            allocations: self.allocations.clone(),
            pools: self.pools.clone(),
            ..Snapshot::default()
        }));
    }

    /// Leadership lost: the next leadership starts from the cluster's state.
    fn forget(&mut self) {
        self.allocator = None;
        self.last_errors.clear();
        self.written.clear();
        self.pools_written.clear();
        self.config_state = None;
    }

    fn may_write(&self) -> bool {
        self.leader.as_ref().is_none_or(|l| *l.borrow())
    }

    /// One pass over the whole world.
    async fn pass(&mut self, client: &Client, recorder: &Recorder, sources: &Sources) {
        let config = match crate::crds::load(&sources.config_objects()) {
            Ok(loaded) => {
                self.shown.stale = false;
                self.shown.last_error = None;
                self.shown.reloads += 1;
                self.report_config(client, recorder, sources, Ok(())).await;
                Some(loaded.config)
            }
            Err(errors) => {
                let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                error!(event = "configStale", errors = %text.join("; "), "invalid configuration; the last good one stays in force");
                self.shown.stale = true;
                self.shown.last_error = Some(text.join("; "));
                self.shown.reload_errors += 1;
                self.report_config(client, recorder, sources, Err(errors)).await;
                None
            }
        };
        let config = match (config, &self.allocator) {
            (Some(c), _) => c,
            (None, Some(a)) => a.config().clone(),
            (None, None) => return,
        };
        let mut services = Vec::new();
        for svc in sources.services.objects.values() {
            let value = serde_json::to_value(svc).unwrap_or_default();
            match lb_core::manifest::service(&value) {
                Ok(mut s) => {
                    if let Some(w) = self.written.get_mut(s.key.as_str())
                        && !w.overlay(&mut s)
                    {
                        self.written.remove(s.key.as_str());
                    }
                    services.push(s);
                }
                Err(e) => warn!(event = "serviceUnreadable", service = %key_of(svc), error = %e, "Service skipped"),
            }
        }
        let namespaces = sources
            .namespaces
            .objects
            .values()
            .map(|n| lb_core::Namespace::new(&n.name_any(), n.labels().clone().into_iter().collect()))
            .collect();
        let observed = Observed { config, services, namespaces, nodes: Vec::new(), endpoints: None };
        let class = self.options.load_balancer_class.clone();
        let allocator =
            self.allocator.get_or_insert_with(|| Allocator::new(observed.config.clone()).with_only_class(class));
        let assignments = pipeline::allocate(allocator, &observed);
        let by_key: HashMap<&str, &lb_core::Service> = observed.services.iter().map(|s| (s.key.as_str(), s)).collect();
        let mut handled = std::collections::HashSet::new();
        for a in &assignments.services {
            handled.insert(a.service.as_str().to_string());
            let Some(service) = by_key.get(a.service.as_str()) else { continue };
            let last = self.last_errors.get(a.service.as_str()).map(String::as_str);
            let wb = writeback::service_writeback(service, a, last);
            match &a.error {
                Some(e) => {
                    self.last_errors.insert(a.service.as_str().to_string(), e.clone());
                }
                None => {
                    self.last_errors.remove(a.service.as_str());
                }
            }
            if let Some(ips) = &wb.status {
                info!(event = "ipAllocated", service = %a.service, ips = ?ips, "IP address assigned by controller");
            }
            self.carry_out(client, recorder, sources, service, &wb).await;
        }
        self.written.retain(|k, _| by_key.contains_key(k.as_str()));
        self.pool_statuses(client, sources, &assignments.pools).await;
        self.allocations.clone_from(&assignments.services);
        self.pools.clone_from(&assignments.pools);
        // Services no longer handled (type or class changed) lose what we wrote.
        for service in observed.services.iter().filter(|s| !handled.contains(s.key.as_str())) {
            if service.annotation(lb_core::service::annotation::IP_ALLOCATED_FROM_POOL).is_some() {
                let wb = writeback::Writeback {
                    status: (!service.ingress_ips.is_empty()).then(Vec::new),
                    annotation: Some(PoolAnnotation::Remove),
                    events: Vec::new(),
                };
                info!(event = "clearAssignment", service = %service.key, "not handled any more: status cleared");
                self.carry_out(client, recorder, sources, service, &wb).await;
            }
        }
    }

    /// The ConfigurationState `controller` (MetalLB 0.15's) and, for each
    /// new error, a Warning Event on the object it names; written only
    /// when the outcome changed.
    async fn report_config(
        &mut self,
        client: &Client,
        recorder: &Recorder,
        sources: &Sources,
        outcome: Result<(), Vec<lb_core::config::ConfigError>>,
    ) {
        if !self.may_write() {
            return;
        }
        let texts = outcome.as_ref().copied().map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>());
        if self.config_state.as_ref() == Some(&texts) {
            return;
        }
        let before: Vec<String> = match &self.config_state {
            Some(Err(old)) => old.clone(),
            _ => Vec::new(),
        };
        self.config_state = Some(texts.clone());
        let gvk = GroupVersionKind::gvk("metallb.io", "v1beta1", "ConfigurationState");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "configurationstates");
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), &self.options.namespace, &resource);
        let object = json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "ConfigurationState",
            "metadata": {"name": CONFIGURATION_STATE, "namespace": self.options.namespace},
        });
        let summary = match &texts {
            Ok(()) => String::new(),
            Err(errors) => errors.join("\n"),
        };
        let result = if texts.is_ok() { "Valid" } else { "Invalid" };
        if before.is_empty()
            && let Ok(current) = api.get(CONFIGURATION_STATE).await
        {
            // A restart: what an earlier run wrote may be right already.
            let status = current.data.get("status");
            let same = status.and_then(|s| s.get("result")).and_then(Value::as_str) == Some(result)
                && status.and_then(|s| s.get("errorSummary")).and_then(Value::as_str).unwrap_or_default() == summary;
            if same {
                return;
            }
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        if let Err(e) = api.patch(CONFIGURATION_STATE, &params, &Patch::Apply(&object)).await {
            warn!(event = "configurationStateNotWritten", error = %error_chain(&e), "cannot write the ConfigurationState");
            return;
        }
        let now = jiff_now();
        let status = match &texts {
            Ok(()) => json!({"result": "Valid", "errorSummary": "", "conditions": [
                {"type": "Valid", "status": "True", "reason": "ConfigurationValid", "message": "", "lastTransitionTime": now}]}),
            Err(errors) => json!({"result": "Invalid", "errorSummary": errors.join("\n"), "conditions": [
                {"type": "Valid", "status": "False", "reason": "ConfigurationInvalid", "message": errors.join("\n"), "lastTransitionTime": now}]}),
        };
        if let Err(e) = api
            .patch_status(CONFIGURATION_STATE, &PatchParams::default(), &Patch::Merge(&json!({"status": status})))
            .await
        {
            warn!(event = "configurationStateNotWritten", error = %error_chain(&e), "cannot write the ConfigurationState");
        }
        let Err(errors) = outcome else { return };
        for error in errors.iter().filter(|e| !before.contains(&e.to_string())) {
            let Some(reference) = sources.object_ref(&error.object) else { continue };
            let event = ServiceEvent {
                event_type: EventType::Warning,
                reason: "InvalidConfiguration",
                message: format!("{}: {} (the last valid configuration stays in force)", error.field, error.kind),
            };
            publish_to(recorder, &reference, &event).await;
        }
    }

    /// Each IPAddressPool's `status` counts, written when they differ from
    /// what the pool shows (so a restart writes none).
    async fn pool_statuses(&mut self, client: &Client, sources: &Sources, pools: &[lb_core::plan::PoolStats]) {
        if !self.may_write() {
            return;
        }
        let Some(index) = CONFIG_KINDS.iter().position(|(_, kind, _)| *kind == "IPAddressPool") else { return };
        let (version, kind, plural) = CONFIG_KINDS[index];
        let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("metallb.io", version, kind), plural);
        let Some(source) = sources.config.get(index) else { return };
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
            let pending = self.pools_written.get(&stats.name);
            if pool.data.get("status") == Some(&want) || pending == Some(&want) {
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

    async fn carry_out(
        &mut self,
        client: &Client,
        recorder: &Recorder,
        sources: &Sources,
        service: &lb_core::Service,
        wb: &writeback::Writeback,
    ) {
        if !self.may_write() {
            return;
        }
        let api: Api<K8sService> = Api::namespaced(client.clone(), service.namespace());
        let params = PatchParams::apply(FIELD_MANAGER);
        let name = service.name();
        if let Some(ips) = &wb.status {
            let ingress: Vec<Value> = ips.iter().map(|ip: &IpAddr| json!({"ip": ip.to_string()})).collect();
            let patch = json!({"status": {"loadBalancer": {"ingress": ingress}}});
            match api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => self.written.entry(service.key.as_str().to_string()).or_default().status = Some(ips.clone()),
                Err(e) => {
                    warn!(event = "statusNotWritten", service = %service.key, error = %error_chain(&e), "cannot write the Service's status");
                }
            }
        }
        if let Some(change) = &wb.annotation {
            let [stable, deprecated] = lb_core::service::annotation::IP_ALLOCATED_FROM_POOL;
            let value = match change {
                PoolAnnotation::Set(pool) => json!(pool),
                PoolAnnotation::Remove => Value::Null,
            };
            let patch = json!({"metadata": {"annotations": {stable: value, deprecated: Value::Null}}});
            match api.patch(name, &params, &Patch::Merge(&patch)).await {
                Ok(_) => {
                    self.written.entry(service.key.as_str().to_string()).or_default().annotation = Some(change.clone());
                }
                Err(e) => {
                    warn!(event = "annotationNotWritten", service = %service.key, error = %error_chain(&e), "cannot write the Service's annotation");
                }
            }
        }
        let Some(k8s) = sources.services.objects.get(service.key.as_str()) else { return };
        for event in &wb.events {
            publish(recorder, k8s, event).await;
        }
    }
}

async fn publish(recorder: &Recorder, service: &K8sService, event: &ServiceEvent) {
    publish_to(recorder, &service.object_ref(&()), event).await;
}

async fn publish_to(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    event: &ServiceEvent,
) {
    let ev = Event {
        type_: match event.event_type {
            EventType::Normal => KubeEventType::Normal,
            EventType::Warning => KubeEventType::Warning,
        },
        reason: event.reason.to_string(),
        note: Some(event.message.clone()),
        action: event.reason.to_string(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, reference).await {
        warn!(event = "eventNotRecorded", reason = event.reason, error = %error_chain(&e), "cannot record an Event");
    }
}
