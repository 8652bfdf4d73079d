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

use crate::view::error_chain;

/// The reporting component of our Events, as MetalLB's.
pub const COMPONENT: &str = "metallb-controller";
/// Field manager of our writes.
pub const FIELD_MANAGER: &str = "lb-controller";

/// The `metallb.io` kinds the configuration is read from.
const CONFIG_KINDS: &[(&str, &str, &str)] = &[
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
    let mut state = State { options, allocator: None, last_errors: HashMap::new() };
    while let Some(change) = rx.recv().await {
        sources.take(change);
        // Everything already queued goes into the same pass.
        while let Ok(more) = rx.try_recv() {
            sources.take(more);
        }
        if sources.synced() {
            state.pass(&client, &recorder, &sources).await;
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
    allocator: Option<Allocator>,
    /// The allocation error last reported per Service.
    last_errors: HashMap<String, String>,
}

impl State {
    /// One pass over the whole world.
    async fn pass(&mut self, client: &Client, recorder: &Recorder, sources: &Sources) {
        let config = match crate::crds::load(&sources.config_objects()) {
            Ok(loaded) => Some(loaded.config),
            Err(errors) => {
                let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                error!(event = "configStale", errors = %text.join("; "), "invalid configuration; the last good one stays in force");
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
                Ok(s) => services.push(s),
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

    async fn carry_out(
        &self,
        client: &Client,
        recorder: &Recorder,
        sources: &Sources,
        service: &lb_core::Service,
        wb: &writeback::Writeback,
    ) {
        let api: Api<K8sService> = Api::namespaced(client.clone(), service.namespace());
        let params = PatchParams::apply(FIELD_MANAGER);
        let name = service.name();
        if let Some(ips) = &wb.status {
            let ingress: Vec<Value> = ips.iter().map(|ip: &IpAddr| json!({"ip": ip.to_string()})).collect();
            let patch = json!({"status": {"loadBalancer": {"ingress": ingress}}});
            if let Err(e) = api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                warn!(event = "statusNotWritten", service = %service.key, error = %error_chain(&e), "cannot write the Service's status");
            }
        }
        if let Some(change) = &wb.annotation {
            let [stable, deprecated] = lb_core::service::annotation::IP_ALLOCATED_FROM_POOL;
            let value = match change {
                PoolAnnotation::Set(pool) => json!(pool),
                PoolAnnotation::Remove => Value::Null,
            };
            let patch = json!({"metadata": {"annotations": {stable: value, deprecated: Value::Null}}});
            if let Err(e) = api.patch(name, &params, &Patch::Merge(&patch)).await {
                warn!(event = "annotationNotWritten", service = %service.key, error = %error_chain(&e), "cannot write the Service's annotation");
            }
        }
        let Some(k8s) = sources.services.objects.get(service.key.as_str()) else { return };
        for event in &wb.events {
            publish(recorder, k8s, event).await;
        }
    }
}

async fn publish(recorder: &Recorder, service: &K8sService, event: &ServiceEvent) {
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
    if let Err(e) = recorder.publish(&ev, &service.object_ref(&())).await {
        warn!(event = "eventNotRecorded", reason = event.reason, error = %error_chain(&e), "cannot record an Event");
    }
}
