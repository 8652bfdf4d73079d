//! `lb speaker`: one node's announcements in a cluster (a DaemonSet).
//!
//! Sources are watches on Services, EndpointSlices, Nodes, the speaker
//! Pods (gossip seeds, and this Pod as the owner of what it writes), the
//! configuration, and only the Secrets the configuration names (peer
//! passwords) plus the `memberlist` Secret (the gossip key). The
//! controller's decision is read from each Service's status
//! ([`status_assignments`]); the pure planners decide what this node
//! announces ([`plan_bgp`] here, `lb_core::l2` in the layer 2 thread); the
//! BGP and layer 2 drivers carry it out, as in standalone.
//!
//! Sinks: a `ServiceL2Status` / `ServiceBGPStatus` object per Service this
//! node announces (named by [`AnnouncementStatus::object_name`], labelled
//! with the node and Service, owned by this Pod so they go with it), the
//! `nodeAssigned` and `announceFailed` Events (as `metallb-speaker`), and
//! this node's `ConfigurationState` (`speaker-<node>`).
//!
//! # Expected flow
//!
//! Nothing is planned until every source has been listed once (a speaker
//! that starts must not withdraw what it has not read yet). Then each
//! batch of changes gives one pass; a change in what layer 2 owns gives a
//! status update alone. An invalid configuration is logged and reported,
//! and the last good one stays in force. On stop, layer 2 is handed over
//! and BGP peers get a Cease, at the same time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Node as K8sNode, ObjectReference, Pod, Secret, Service as K8sService};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::watcher;
use lb_core::config::{Config, Password, Secrets};
use lb_core::endpoints::Endpoints;
use lb_core::plan::{L2Announcement, NodePlan, Observed, assigned_services, status_assignments};
use lb_core::planner::{PeerPlan, ServiceAnnouncement, World, plan_bgp};
use lb_core::writeback::{AnnouncementStatus, EventType, Protocol, ServiceEvent, announcement_statuses};
use lb_core::{Node, ServiceKey};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::drivers::bgp::speaker::{self, Speaker as BgpSpeaker};
use crate::roles::controller::Progress;
use crate::roles::layer2::{L2Local, L2World, Layer2, Layer2Options};
use crate::roles::standalone::Layer2Settings;
use crate::sinks::configuration_state::ConfigurationState;
use crate::sinks::events::{self, Events};
use crate::sources::cluster::{ConfigChange, ConfigSources, Source, spawn_watch};
use crate::view::{ConfigState, Snapshot, error_chain};

/// The reporting component of our Events, as MetalLB's.
pub const COMPONENT: &str = "metallb-speaker";
/// Field manager of our writes.
pub const FIELD_MANAGER: &str = "lb-speaker";
/// The label naming the node on our status objects (MetalLB's).
pub const NODE_LABEL: &str = "metallb.io/node";
/// The labels naming the Service on our status objects.
pub const SERVICE_NAME_LABEL: &str = "metallb.io/service-name";
pub const SERVICE_NAMESPACE_LABEL: &str = "metallb.io/service-namespace";
/// The key of the gossip key in the `memberlist` Secret (MetalLB's).
pub const MEMBERLIST_KEY: &str = "secretkey";

/// Options of `lb speaker`.
#[derive(Debug, Clone)]
pub struct SpeakerOptions {
    /// This node's name (`--node`, else `NODE_NAME`).
    pub node: String,
    /// Where the configuration, the speaker Pods and the `memberlist` Secret live.
    pub namespace: String,
    /// Only Services of this `loadBalancerClass`; `None`: only Services without one.
    pub load_balancer_class: Option<String>,
    /// This speaker's Pod, the owner of its status objects (`POD_NAME`).
    pub pod: Option<String>,
    /// Label selector of the speaker Pods, whose IPs seed the gossip.
    pub speaker_selector: String,
    /// The Secret holding the gossip key (`secretkey`).
    pub memberlist_secret: String,
    /// Gossip port and interface exclusions; a key given here wins over the Secret.
    pub layer2: Layer2Settings,
}

/// Why the speaker stopped.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("a watch ended")]
    WatchEnded,
}

/// What the speaker keeps of a speaker Pod.
#[derive(Debug, Clone)]
struct SpeakerPod {
    name: String,
    uid: Option<String>,
    ip: Option<IpAddr>,
}

/// One change from a source.
enum Change {
    Service(Box<watcher::Event<K8sService>>),
    Slice(Box<watcher::Event<EndpointSlice>>),
    Node(Box<watcher::Event<K8sNode>>),
    Pod(Box<watcher::Event<Pod>>),
    Config(ConfigChange),
    /// A Secret named by the configuration, by `namespace/name`.
    Secret(String, Box<watcher::Event<Secret>>),
    Memberlist(Box<watcher::Event<Secret>>),
    Status(Protocol, Box<watcher::Event<DynamicObject>>),
}

/// A password Secret's watch and what it holds.
struct WatchedSecret {
    task: JoinHandle<()>,
    source: Source<Vec<u8>>,
}

/// What the sources say now, kept as the planners need it.
#[derive(Default)]
struct Sources {
    services: Source<lb_core::Service>,
    slices: Source<lb_core::endpoints::EndpointSlice>,
    nodes: Source<Node>,
    pods: Source<SpeakerPod>,
    config: ConfigSources,
    secrets: BTreeMap<String, WatchedSecret>,
    memberlist: Source<Vec<u8>>,
    /// Our status objects, each as the digest of its `status`.
    l2_statuses: Source<u64>,
    bgp_statuses: Source<u64>,
    /// Services are kept with their labels (the configuration selects by them).
    service_labels: bool,
    /// The Services are being listed again, with their labels: no pass
    /// until then (it would see none and withdraw what selectors pick).
    services_relisting: bool,
    service_watch: Option<JoinHandle<()>>,
}

/// What the speaker keeps of a Service: what its rules read, and the
/// labels only when `labels` (an advertisement selects Services).
fn service_of(s: K8sService, labels: bool) -> Option<lb_core::Service> {
    let value = serde_json::to_value(&s).ok()?;
    let mut service = lb_core::manifest::service(&value)
        .map_err(|e| warn!(event = "serviceUnreadable", error = %e, "Service skipped"))
        .ok()?;
    service.forget_what_no_rule_reads();
    if !labels {
        service.labels = Default::default();
    }
    Some(service)
}

fn slice_of(s: EndpointSlice) -> Option<lb_core::endpoints::EndpointSlice> {
    lb_core::manifest::endpoint_slice(&serde_json::to_value(&s).ok()?).ok()
}

fn node_of(n: K8sNode) -> Option<Node> {
    let value = serde_json::to_value(&n).ok()?;
    lb_core::manifest::node(&value).map_err(|e| warn!(event = "nodeUnreadable", error = %e, "Node skipped")).ok()
}

fn pod_of(p: Pod) -> Option<SpeakerPod> {
    Some(SpeakerPod {
        name: p.metadata.name?,
        uid: p.metadata.uid,
        ip: p.status.and_then(|s| s.pod_ip).and_then(|ip| ip.parse().ok()),
    })
}

/// The password of a Secret, for the types MetalLB reads it from.
fn password_of(s: Secret) -> Option<Vec<u8>> {
    let kind = s.type_.as_deref().unwrap_or("Opaque");
    if !lb_core::config::secret::PASSWORD_TYPES.contains(&kind) {
        warn!(event = "secretIgnored", secret = ?s.metadata.name, kind, "a peer's Secret must be of type kubernetes.io/basic-auth");
        return None;
    }
    s.data?.remove("password").map(|b| b.0)
}

fn memberlist_key_of(s: Secret) -> Option<Vec<u8>> {
    s.data?.remove(MEMBERLIST_KEY).map(|b| b.0)
}

/// What a status object says, as we compare it: a digest of its
/// `status`. 10,000 announcements would otherwise keep 10,000 JSON trees
/// twice (as watched and as written), the largest part of a speaker's memory.
fn status_of(o: DynamicObject) -> Option<u64> {
    Some(digest(o.data.get("status").unwrap_or(&Value::Null)))
}

/// A digest of a JSON value that does not depend on the order of object
/// keys (the server may send them in any order).
fn digest(value: &Value) -> u64 {
    fn feed(value: &Value, h: &mut impl Hasher) {
        match value {
            Value::Null => 0u8.hash(h),
            Value::Bool(b) => (1u8, b).hash(h),
            Value::Number(n) => (2u8, n.to_string()).hash(h),
            Value::String(s) => (3u8, s).hash(h),
            Value::Array(items) => {
                (4u8, items.len()).hash(h);
                items.iter().for_each(|i| feed(i, h));
            }
            Value::Object(map) => {
                (5u8, map.len()).hash(h);
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for k in keys {
                    k.hash(h);
                    feed(&map[k], h);
                }
            }
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    feed(value, &mut h);
    h.finish()
}

impl Sources {
    fn take(&mut self, change: Change) {
        match change {
            Change::Service(e) => {
                if matches!(*e, watcher::Event::InitDone) {
                    self.services_relisting = false;
                }
                let labels = self.service_labels;
                self.services.apply_with(*e, |s| service_of(s, labels));
            }
            Change::Slice(e) => self.slices.apply_with(*e, slice_of),
            Change::Node(e) => self.nodes.apply_with(*e, node_of),
            Change::Pod(e) => self.pods.apply_with(*e, pod_of),
            Change::Config(c) => self.config.take(c),
            Change::Secret(key, e) => {
                if let Some(w) = self.secrets.get_mut(&key) {
                    w.source.apply_with(*e, password_of);
                }
            }
            Change::Memberlist(e) => self.memberlist.apply_with(*e, memberlist_key_of),
            Change::Status(Protocol::Layer2, e) => self.l2_statuses.apply_with(*e, status_of),
            Change::Status(Protocol::Bgp, e) => self.bgp_statuses.apply_with(*e, status_of),
        }
    }

    fn synced(&self) -> bool {
        !self.services_relisting
            && self.services.synced
            && self.slices.synced
            && self.nodes.synced
            && self.pods.synced
            && self.config.synced()
            && self.memberlist.synced
            && self.l2_statuses.synced
            && self.bgp_statuses.synced
    }

    /// The passwords of the Secrets watched, once each has been listed.
    fn passwords(&self) -> Option<Secrets> {
        let mut secrets = Secrets::new();
        for (key, watched) in &self.secrets {
            if !watched.source.synced {
                return None;
            }
            let (namespace, name) = key.split_once('/').unwrap_or_default();
            if let Some(password) = watched.source.objects.values().next() {
                secrets.insert(namespace, name, password.clone());
            }
        }
        Some(secrets)
    }
}

fn spawn_services_watch(client: &Client, tx: &mpsc::Sender<Change>) -> JoinHandle<()> {
    spawn_watch(Api::<K8sService>::all(client.clone()), watcher::Config::default(), tx.clone(), |e| {
        Change::Service(Box::new(e))
    })
}

/// The Secrets a configuration's peers name, by `namespace/name`.
fn named_secrets(config: &Config) -> BTreeSet<String> {
    config
        .peers
        .iter()
        .filter_map(|p| match &p.password {
            Some(Password::Secret(reference)) => Some(lb_core::config::secret::key_of(reference)),
            _ => None,
        })
        .collect()
}

/// Runs until `stop` resolves (then hands layer 2 over and sends every BGP
/// peer a Cease) or a watch ends for good. `progress` counts passes;
/// `published` is what `/metrics`, `/status` and `/readyz` show.
pub async fn run(
    client: Client,
    options: SpeakerOptions,
    progress: watch::Sender<Progress>,
    published: watch::Sender<Arc<Snapshot>>,
    stop: impl Future<Output = ()>,
) -> Result<(), SpeakerError> {
    let (events, publisher) = events::channel(client.clone(), COMPONENT, None);
    // The Events go out from this task too: they stop with the role.
    tokio::select! {
        result = run_with(client, options, progress, published, stop, events) => result,
        () = publisher.run() => Err(SpeakerError::WatchEnded),
    }
}

async fn run_with(
    client: Client,
    options: SpeakerOptions,
    progress: watch::Sender<Progress>,
    published: watch::Sender<Arc<Snapshot>>,
    stop: impl Future<Output = ()>,
    events: Events,
) -> Result<(), SpeakerError> {
    let (tx, mut rx) = mpsc::channel::<Change>(1024);
    let mut sources = Sources::default();
    let all = watcher::Config::default();
    sources.service_watch = Some(spawn_services_watch(&client, &tx));
    spawn_watch(Api::<EndpointSlice>::all(client.clone()), all.clone(), tx.clone(), |e| Change::Slice(Box::new(e)));
    spawn_watch(Api::<K8sNode>::all(client.clone()), all.clone(), tx.clone(), |e| Change::Node(Box::new(e)));
    spawn_watch(
        Api::<Pod>::namespaced(client.clone(), &options.namespace),
        watcher::Config::default().labels(&options.speaker_selector),
        tx.clone(),
        |e| Change::Pod(Box::new(e)),
    );
    ConfigSources::spawn(&client, &options.namespace, &tx, Change::Config);
    spawn_watch(
        Api::<Secret>::namespaced(client.clone(), &options.namespace),
        watcher::Config::default().fields(&format!("metadata.name={}", options.memberlist_secret)),
        tx.clone(),
        |e| Change::Memberlist(Box::new(e)),
    );
    for (protocol, kind, plural) in [
        (Protocol::Layer2, "ServiceL2Status", "servicel2statuses"),
        (Protocol::Bgp, "ServiceBGPStatus", "servicebgpstatuses"),
    ] {
        let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("metallb.io", "v1beta1", kind), plural);
        spawn_watch(
            Api::<DynamicObject>::namespaced_with(client.clone(), &options.namespace, &resource),
            watcher::Config::default().labels(&format!("{NODE_LABEL}={}", options.node)),
            tx.clone(),
            move |e| Change::Status(protocol, Box::new(e)),
        );
    }

    let mut state = State {
        events,
        config_state: ConfigurationState::new(
            &options.namespace,
            &format!("speaker-{}", options.node),
            &[("metallb.io/node-name", &options.node)],
            FIELD_MANAGER,
        ),
        options,
        config: None,
        router_ids: HashMap::new(),
        bgp: BgpSpeaker::new(),
        bgp_plan: None,
        layer2: None,
        l2_local: None,
        written: HashMap::new(),
        failed_reported: BTreeSet::new(),
        shown: ConfigState::default(),
        waiting_for_key: false,
        planned: false,
    };
    tokio::pin!(stop);
    loop {
        let mut l2_changed = false;
        let mut config_changed = false;
        // Only our own status objects changed (mostly our writes coming
        // back): the plan is the same, only the statuses are compared.
        let mut statuses_only = true;
        tokio::select! {
            change = rx.recv() => {
                let Some(change) = change else { break };
                config_changed |= matches!(change, Change::Config(_));
                statuses_only &= matches!(change, Change::Status(..));
                sources.take(change);
                while let Ok(more) = rx.try_recv() {
                    config_changed |= matches!(more, Change::Config(_));
                    statuses_only &= matches!(more, Change::Status(..));
                    sources.take(more);
                }
            }
            changed = async { state.l2_local.as_mut().expect("guarded").changed().await }, if state.l2_local.is_some() => {
                if changed.is_err() {
                    state.l2_local = None;
                }
                l2_changed = true;
            }
            () = &mut stop => {
                state.shutdown(&client, &sources).await;
                return Ok(());
            }
        }
        // The Secrets to watch follow the peers: only a configuration change moves them.
        if config_changed {
            state.sync_secret_watches(&client, &mut sources, &tx);
            state.sync_service_labels(&client, &mut sources, &tx);
        }
        if !sources.synced() {
            continue;
        }
        if l2_changed || (statuses_only && state.planned) {
            state.sync_statuses(&client, &sources).await;
        } else {
            state.pass(&client, &sources).await;
        }
        state.publish(&published);
        progress.send_modify(|p| p.passes += 1);
    }
    Err(SpeakerError::WatchEnded)
}

struct State {
    events: Events,
    options: SpeakerOptions,
    config_state: ConfigurationState,
    /// The last good configuration.
    config: Option<Config>,
    router_ids: HashMap<String, std::net::Ipv4Addr>,
    bgp: BgpSpeaker,
    /// This node's BGP plan, for its status objects.
    bgp_plan: Option<(Vec<PeerPlan>, Vec<ServiceAnnouncement>)>,
    layer2: Option<Layer2>,
    l2_local: Option<watch::Receiver<Arc<L2Local>>>,
    /// Status objects written and not yet seen in the watch, by name
    /// (`None`: deleted).
    written: HashMap<String, Option<u64>>,
    /// `announceFailed` already recorded.
    failed_reported: BTreeSet<(ServiceKey, IpAddr)>,
    shown: ConfigState,
    /// Said once: layer 2 waits for the gossip key.
    waiting_for_key: bool,
    /// A whole pass has planned at least once.
    planned: bool,
}

impl State {
    /// Watches exactly the Secrets the configuration's peers name.
    fn sync_secret_watches(&self, client: &Client, sources: &mut Sources, tx: &mpsc::Sender<Change>) {
        let Some(config) = &self.config_candidate(sources) else { return };
        let wanted = named_secrets(config);
        sources.secrets.retain(|key, watched| {
            let keep = wanted.contains(key);
            if !keep {
                watched.task.abort();
            }
            keep
        });
        for key in wanted {
            if sources.secrets.contains_key(&key) {
                continue;
            }
            let (namespace, name) = key.split_once('/').unwrap_or_default();
            let k = key.clone();
            let task = spawn_watch(
                Api::<Secret>::namespaced(client.clone(), namespace),
                watcher::Config::default().fields(&format!("metadata.name={name}")),
                tx.clone(),
                move |e| Change::Secret(k.clone(), Box::new(e)),
            );
            sources.secrets.insert(key, WatchedSecret { task, source: Source::default() });
        }
    }

    /// Keeps the Services' labels exactly when the configuration selects
    /// Services by them: a one-label map is half a KiB, 5 MiB for 10,000
    /// Services that nothing selects. Needed again, the Services are
    /// listed anew (their labels were not kept) before the next pass.
    fn sync_service_labels(&self, client: &Client, sources: &mut Sources, tx: &mpsc::Sender<Change>) {
        let Some(config) = &self.config_candidate(sources) else { return };
        let needed = config.advertisements_select_services();
        if needed == sources.service_labels {
            return;
        }
        sources.service_labels = needed;
        if !needed {
            for service in sources.services.objects.values_mut() {
                service.labels = Default::default();
            }
            return;
        }
        if let Some(task) = sources.service_watch.take() {
            task.abort();
        }
        sources.services_relisting = true;
        sources.service_watch = Some(spawn_services_watch(client, tx));
    }

    /// The configuration the cluster holds now if it loads, else the last good one.
    fn config_candidate(&self, sources: &Sources) -> Option<Config> {
        if !sources.config.synced() {
            return None;
        }
        crate::crds::load(&sources.config.objects()).ok().map(|l| l.config).or_else(|| self.config.clone())
    }

    fn me(&self, sources: &Sources) -> Node {
        sources
            .nodes
            .objects
            .values()
            .find(|n| n.name == self.options.node)
            .cloned()
            .unwrap_or_else(|| Node::new(&self.options.node))
    }

    /// One pass over the whole world.
    async fn pass(&mut self, client: &Client, sources: &Sources) {
        let loaded = sources.config.load(&mut self.shown);
        let outcome = loaded.as_ref().map(drop).map_err(Vec::as_slice);
        // A failed write is reported again at the next pass (each reloads).
        let _ = self.config_state.report(client, &self.events, &sources.config, outcome).await;
        if let Ok(loaded) = loaded {
            self.config = Some(loaded.config);
        }
        let Some(config) = self.config.clone() else { return };
        self.shown.loaded = true;
        let Some(secrets) = sources.passwords() else { return };
        let class = self.options.load_balancer_class.as_deref();
        let assignments = status_assignments(&config, sources.services.objects.values(), class);
        let nodes: Vec<Node> = sources.nodes.objects.values().cloned().collect();
        let endpoints = Endpoints::new(sources.slices.objects.values().cloned());
        let me = self.me(sources);
        let plan = {
            // Planned from the Services where they are kept: a copy of
            // 10,000 of them at every pass was a speaker's largest peak.
            let assigned = assigned_services(sources.services.objects.values(), &assignments);
            let world = World { config: &config, services: &assigned, endpoints: Some(&endpoints), nodes: &nodes };
            plan_bgp(&world, &me.name)
        };
        match speaker::peer_specs(&config, &me, &secrets, &mut self.router_ids) {
            Ok(mut specs) => {
                let desired: Vec<_> = plan
                    .peers
                    .iter()
                    .filter_map(|p| specs.remove(&p.peer).map(|spec| (spec, speaker::routes_of(p))))
                    .collect();
                self.bgp.apply(desired).await;
            }
            Err(invalid) => {
                error!(event = "configStale", errors = %invalid.join("; "), "BGP peers cannot be set up as configured; sessions stay as they are");
            }
        }
        self.bgp_plan = Some((plan.peers, plan.services));
        self.planned = true;
        self.start_layer2(&config, sources);
        if let Some(l2) = &self.layer2 {
            // The layer 2 thread keeps its world: a copy it owns.
            let observed = Observed {
                config,
                services: sources.services.objects.values().cloned().collect(),
                namespaces: Vec::new(),
                nodes,
                endpoints: Some(endpoints),
            };
            l2.set_world(Arc::new(L2World {
                observed,
                assignments,
                seeds: Some(sources.pods.objects.values().filter_map(|p| p.ip).collect()),
            }));
        }
        self.sync_statuses(client, sources).await;
    }

    /// Starts layer 2 with the first configuration that has an L2Advertisement.
    fn start_layer2(&mut self, config: &Config, sources: &Sources) {
        if self.layer2.is_some() || config.l2_advertisements.is_empty() {
            return;
        }
        let settings = &self.options.layer2;
        let key = settings.memberlist_key.clone().or_else(|| sources.memberlist.objects.values().next().cloned());
        if key.as_ref().is_none_or(Vec::is_empty) {
            // Gossip without the key the others use would be dropped by
            // them and lock this node out: wait for the controller to fill it in.
            if !self.waiting_for_key {
                self.waiting_for_key = true;
                warn!(event = "memberlistKeyMissing", secret = %self.options.memberlist_secret, "layer 2 waits for the memberlist Secret's secretkey");
            }
            return;
        }
        match Layer2::spawn(Layer2Options {
            node: self.options.node.clone(),
            port: settings.memberlist_port,
            key,
            exclusions: settings.exclude_interfaces.clone(),
        }) {
            Ok(l2) => {
                self.l2_local = Some(l2.local());
                self.layer2 = Some(l2);
            }
            Err(e) => error!(event = "layer2Failed", error = %e, "cannot start layer 2"),
        }
    }

    /// Makes this node's status objects say what it announces, records
    /// `nodeAssigned` for each new one and `announceFailed` for each IP it
    /// should but cannot answer for.
    async fn sync_statuses(&mut self, client: &Client, sources: &Sources) {
        let local = self.l2_local.as_ref().map(|l| l.borrow().clone()).unwrap_or_default();
        let l2: Vec<L2Announcement> = local
            .owned
            .iter()
            .filter_map(|(ip, (service, interfaces))| {
                let (ns, name) = service.split_once('/')?;
                // Named by no advertisement: every interface that passes the exclusions.
                let on = if interfaces.is_empty() { &local.default_interfaces } else { interfaces };
                Some(L2Announcement::new(*ip, ServiceKey::new(ns, name), on.iter().cloned().collect()))
            })
            .collect();
        let (peers, announced) = self.bgp_plan.clone().unwrap_or_default();
        let wanted = announcement_statuses(&l2, &peers, &announced);
        let node = self.options.node.clone();
        let owner = self.options.pod.as_ref().and_then(|name| {
            let pod = sources.pods.objects.values().find(|p| &p.name == name)?;
            Some(json!([{"apiVersion": "v1", "kind": "Pod", "name": pod.name, "uid": pod.uid.clone()?}]))
        });
        let mut keep = BTreeSet::new();
        // What to write: small records; the requests (several KiB each in
        // flight) are made as the writes go, not 10,000 at once.
        let mut jobs = Vec::new();
        for status in &wanted {
            let name = status.object_name(&node);
            keep.insert(name.clone());
            let want_digest = digest(&status_value(status, &node));
            let existing = match status.protocol {
                Protocol::Layer2 => &sources.l2_statuses,
                Protocol::Bgp => &sources.bgp_statuses,
            };
            let shown = existing.objects.get(&format!("{}/{name}", self.options.namespace));
            if self.is_current(&name, shown, Some(&want_digest)) {
                continue;
            }
            jobs.push((status.clone(), name, shown.is_none(), want_digest));
        }
        let namespace = self.options.namespace.clone();
        let jobs = jobs.into_iter().map(|(status, name, create, want_digest)| {
            let create = create.then(|| {
                let mut object = json!({
                    "apiVersion": "metallb.io/v1beta1",
                    "kind": status_kind(status.protocol),
                    "metadata": {
                        "name": name,
                        "namespace": namespace,
                        "labels": {
                            NODE_LABEL: node,
                            SERVICE_NAME_LABEL: status.service.name(),
                            SERVICE_NAMESPACE_LABEL: status.service.namespace(),
                        },
                    },
                    "spec": {},
                });
                // No owner known (no --pod): the object is left without one
                // rather than with a null an API server would refuse.
                if let Some(owner) = &owner {
                    object["metadata"]["ownerReferences"] = owner.clone();
                }
                object
            });
            let api = status_api(client, &namespace, status.protocol);
            let want = status_value(&status, &node);
            write_status(api, name, create, want, want_digest, status)
        });
        // Different objects' writes are independent: a speaker taking
        // 10,000 announcements writes them WRITES_IN_FLIGHT at a time.
        let done: Vec<StatusWritten> =
            futures_util::stream::iter(jobs).buffer_unordered(WRITES_IN_FLIGHT).collect().await;
        for d in done {
            if d.created {
                self.events.record(service_ref(&d.status.service), &d.status.event(&node));
                info!(event = "serviceAnnounced", protocol = d.status.protocol.as_str(), service = %d.status.service, "announcing");
            }
            if let Some(digest) = d.written {
                self.written.insert(d.name, Some(digest));
            }
        }
        for (protocol, existing) in [(Protocol::Layer2, &sources.l2_statuses), (Protocol::Bgp, &sources.bgp_statuses)] {
            for key in existing.objects.keys() {
                let name = key.rsplit('/').next().unwrap_or_default().to_string();
                if keep.contains(&name) || self.is_current(&name, existing.objects.get(key), None) {
                    continue;
                }
                let api = status_api(client, &self.options.namespace, protocol);
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {
                        self.written.insert(name, None);
                    }
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => {
                        warn!(event = "statusNotDeleted", object = %name, error = %error_chain(&e), "cannot delete the status object");
                    }
                }
            }
        }
        let listed: BTreeSet<&str> = sources
            .l2_statuses
            .objects
            .keys()
            .chain(sources.bgp_statuses.objects.keys())
            .filter_map(|k| k.rsplit('/').next())
            .collect();
        self.written.retain(|name, _| keep.contains(name) || listed.contains(name.as_str()));
        // announceFailed, once per IP while it lasts.
        for (service, ip) in local.failed.iter().filter(|f| !self.failed_reported.contains(*f)) {
            let event = ServiceEvent {
                event_type: EventType::Warning,
                reason: "announceFailed",
                message: format!(
                    "the interfaces specified by LB IP \"{ip}\" doesn't exist in assigned node \"{node}\" with protocol \"layer2\""
                ),
            };
            warn!(event = "announceFailed", service = %service, ip = %ip, "the interfaces the L2Advertisement names are not on this node");
            self.events.record(service_ref(service), &event);
        }
        self.failed_reported = local.failed.clone();
    }

    /// Whether the object `name`, shown as `shown` by the watch, says
    /// `want` (`None`: absent), counting writes the watch has not shown yet.
    fn is_current(&mut self, name: &str, shown: Option<&u64>, want: Option<&u64>) -> bool {
        if shown == want {
            self.written.remove(name);
            return true;
        }
        self.written.get(name).is_some_and(|w| w.as_ref() == want)
    }

    fn publish(&self, published: &watch::Sender<Arc<Snapshot>>) {
        let (peers, services) = self.bgp_plan.clone().unwrap_or_default();
        published.send_replace(Arc::new(Snapshot {
            node: self.options.node.clone(),
            config: self.shown.clone(),
            plan: Some(NodePlan { node: self.options.node.clone(), bgp: peers, l2: Vec::new(), services }),
            sessions: self.bgp.peers().map(|(_, shared)| shared.clone()).collect(),
            layer2: self.layer2.as_ref().map(Layer2::shared),
            ..Snapshot::default()
        }));
    }

    /// Hands layer 2 over and sends every peer a Cease, at the same time;
    /// then removes this node's status objects, since it announces nothing
    /// any more (bounded: the Pod's deletion removes them anyway).
    async fn shutdown(&mut self, client: &Client, sources: &Sources) {
        info!(event = "shutdown", "stopping: Cease to every BGP peer, layer 2 IPs handed over");
        let layer2 = self.layer2.take();
        let bgp = std::mem::replace(&mut self.bgp, BgpSpeaker::new());
        tokio::join!(bgp.shutdown("lb speaker shutting down"), async {
            if let Some(l2) = layer2 {
                l2.shutdown().await;
            }
        });
        // What the watches show, and what was written since.
        let mut ours: BTreeSet<(Protocol, String)> = BTreeSet::new();
        for (protocol, existing) in [(Protocol::Layer2, &sources.l2_statuses), (Protocol::Bgp, &sources.bgp_statuses)] {
            ours.extend(
                existing.objects.keys().filter_map(|k| k.rsplit('/').next()).map(|n| (protocol, n.to_string())),
            );
        }
        for (name, written) in &self.written {
            let protocol = if name.starts_with("l2-") { Protocol::Layer2 } else { Protocol::Bgp };
            if written.is_some() {
                ours.insert((protocol, name.clone()));
            }
        }
        let deletes = async {
            for (protocol, name) in &ours {
                let _ =
                    status_api(client, &self.options.namespace, *protocol).delete(name, &DeleteParams::default()).await;
            }
        };
        if tokio::time::timeout(std::time::Duration::from_secs(2), deletes).await.is_err() {
            warn!(event = "statusNotDeleted", "status objects left for the Pod's deletion to remove");
        }
    }
}

/// Status object writes in flight at once.
const WRITES_IN_FLIGHT: usize = 32;

/// What writing one status object achieved.
struct StatusWritten {
    name: String,
    status: AnnouncementStatus,
    /// It was created (its nodeAssigned Event is due).
    created: bool,
    /// The digest of the status written, when it was.
    written: Option<u64>,
}

/// Creates the object if `create` says so (server-side apply), then
/// writes its status.
async fn write_status(
    api: Api<DynamicObject>,
    name: String,
    create: Option<Value>,
    want: Value,
    want_digest: u64,
    status: AnnouncementStatus,
) -> StatusWritten {
    let mut done = StatusWritten { name, status, created: false, written: None };
    if let Some(object) = create {
        if let Err(e) = api.patch(&done.name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&object)).await
        {
            warn!(event = "statusNotWritten", service = %done.status.service, error = %error_chain(&e), "cannot create the status object");
            return done;
        }
        done.created = true;
    }
    match api.patch_status(&done.name, &PatchParams::default(), &Patch::Merge(&json!({"status": want}))).await {
        Ok(_) => done.written = Some(want_digest),
        Err(e) => {
            warn!(event = "statusNotWritten", service = %done.status.service, error = %error_chain(&e), "cannot write the status object");
        }
    }
    done
}

fn status_kind(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Layer2 => "ServiceL2Status",
        Protocol::Bgp => "ServiceBGPStatus",
    }
}

fn status_api(client: &Client, namespace: &str, protocol: Protocol) -> Api<DynamicObject> {
    let plural = match protocol {
        Protocol::Layer2 => "servicel2statuses",
        Protocol::Bgp => "servicebgpstatuses",
    };
    let gvk = GroupVersionKind::gvk("metallb.io", "v1beta1", status_kind(protocol));
    Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk_with_plural(&gvk, plural))
}

/// The `status` of a ServiceL2Status or ServiceBGPStatus, as MetalLB writes it.
fn status_value(status: &AnnouncementStatus, node: &str) -> Value {
    let mut v = json!({
        "node": node,
        "serviceName": status.service.name(),
        "serviceNamespace": status.service.namespace(),
    });
    match status.protocol {
        Protocol::Layer2 if !status.interfaces.is_empty() => {
            v["interfaces"] = status.interfaces.iter().map(|i| json!({"name": i})).collect();
        }
        Protocol::Bgp if !status.peers.is_empty() => v["peers"] = json!(status.peers),
        _ => {}
    }
    v
}

fn service_ref(service: &ServiceKey) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Service".into()),
        name: Some(service.name().into()),
        namespace: Some(service.namespace().into()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_digest_ignores_key_order_and_sees_every_value() {
        let a: Value = serde_json::from_str(r#"{"node":"n1","peers":["tor"],"serviceName":"web"}"#).expect("json");
        let b: Value = serde_json::from_str(r#"{"serviceName":"web","peers":["tor"],"node":"n1"}"#).expect("json");
        assert_eq!(digest(&a), digest(&b));
        for other in [
            r#"{"node":"n2","peers":["tor"],"serviceName":"web"}"#,
            r#"{"node":"n1","peers":["tor","tor2"],"serviceName":"web"}"#,
            r#"{"node":"n1","peers":[],"serviceName":"web"}"#,
            r#"{"node":"n1","serviceName":"web"}"#,
            "null",
        ] {
            let other: Value = serde_json::from_str(other).expect("json");
            assert_ne!(digest(&a), digest(&other), "{other}");
        }
    }
}
