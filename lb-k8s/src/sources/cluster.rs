//! The Kubernetes API as a source: watched kinds kept as maps of objects,
//! and the configuration (the `metallb.io` kinds and the legacy ConfigMap)
//! as the JSON documents `lb_core::config` loads, as from files.
//!
//! Each watch runs in a task of its own (kube's `watcher`, which relists
//! after a dropped watch or a `410 Gone`) and sends its events to the
//! role's one channel; the role applies them to a [`Source`] and runs a
//! pass once every source it needs has been listed.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, Resource};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::view::error_chain;

/// A `metallb.io` kind: version, kind, plural.
pub type ConfigKind = (&'static str, &'static str, &'static str);

/// The `metallb.io` kinds the configuration is read from (the API server
/// must serve each; tests register them).
pub const CONFIG_KINDS: &[ConfigKind] = &[
    ("v1beta1", "IPAddressPool", "ipaddresspools"),
    ("v1beta1", "L2Advertisement", "l2advertisements"),
    ("v1beta1", "BGPAdvertisement", "bgpadvertisements"),
    ("v1beta2", "BGPPeer", "bgppeers"),
    ("v1beta1", "Community", "communities"),
    ("v1beta1", "BFDProfile", "bfdprofiles"),
];

/// The legacy ConfigMap's name, in the configuration's namespace.
pub const LEGACY_CONFIGMAP: &str = "config";

/// `namespace/name` of an object (`/name` for cluster-scoped ones).
pub fn key_of<K: Resource>(o: &K) -> String {
    format!("{}/{}", o.meta().namespace.as_deref().unwrap_or_default(), o.meta().name.as_deref().unwrap_or_default())
}

/// One watched kind: its objects by `namespace/name`, and a relist in
/// progress (the watcher's `Init` .. `InitDone`).
#[derive(Debug)]
pub struct Source<K> {
    pub objects: BTreeMap<String, K>,
    relist: Option<BTreeMap<String, K>>,
    /// Listed at least once.
    pub synced: bool,
    /// Keys changed since [`Source::take_changed`], when tracked.
    changed: Option<BTreeSet<String>>,
}

impl<K> Default for Source<K> {
    fn default() -> Self {
        Self { objects: BTreeMap::new(), relist: None, synced: false, changed: None }
    }
}

impl<T> Source<T> {
    /// A source that keeps the keys of what changed, for a role whose
    /// passes take only what changed.
    pub fn tracking() -> Self {
        Self { changed: Some(BTreeSet::new()), ..Self::default() }
    }

    /// The keys added, changed or removed since the last call (all of
    /// them after a relist). Empty when not [`Source::tracking`].
    pub fn take_changed(&mut self) -> BTreeSet<String> {
        self.changed.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn note(&mut self, key: &str) {
        if let Some(changed) = &mut self.changed {
            changed.insert(key.to_string());
        }
    }

    /// Takes one watcher event, keeping of each object what `convert`
    /// makes of it (`None`: leave it out). A relist replaces every object
    /// at once when it is complete, so objects deleted while the watch was
    /// down go away, and a pass never sees half a list.
    pub fn apply_with<K: Resource>(&mut self, event: watcher::Event<K>, mut convert: impl FnMut(K) -> Option<T>) {
        match event {
            watcher::Event::Init => self.relist = Some(BTreeMap::new()),
            watcher::Event::InitApply(o) => {
                let key = key_of(&o);
                if let (Some(r), Some(kept)) = (self.relist.as_mut(), convert(o)) {
                    r.insert(key, kept);
                }
            }
            watcher::Event::InitDone => {
                if let Some(r) = self.relist.take() {
                    let old = std::mem::replace(&mut self.objects, r);
                    if let Some(changed) = &mut self.changed {
                        changed.extend(old.into_keys());
                        changed.extend(self.objects.keys().cloned());
                    }
                }
                self.synced = true;
            }
            watcher::Event::Apply(o) => {
                let key = key_of(&o);
                self.note(&key);
                match convert(o) {
                    Some(kept) => self.objects.insert(key, kept),
                    None => self.objects.remove(&key),
                };
            }
            watcher::Event::Delete(o) => {
                let key = key_of(&o);
                self.note(&key);
                self.objects.remove(&key);
            }
        }
    }
}

impl<K: Resource> Source<K> {
    /// Takes one watcher event, keeping objects whole.
    pub fn apply(&mut self, event: watcher::Event<K>) {
        self.apply_with(event, Some);
    }
}

/// Watches `api` until the receiver goes away, sending each event wrapped.
pub fn spawn_watch<K, C, F>(api: Api<K>, config: watcher::Config, tx: mpsc::Sender<C>, wrap: F) -> JoinHandle<()>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    C: Send + 'static,
    F: Fn(watcher::Event<K>) -> C + Send + 'static,
{
    tokio::spawn(async move {
        // kube's watcher retries at once after an error: without a backoff
        // an unreachable API server would be asked again in a tight loop.
        let mut stream = watcher(api, config).default_backoff().boxed();
        loop {
            tokio::select! {
                // The role stopped: so does its watch.
                () = tx.closed() => return,
                item = stream.next() => match item {
                    None => return,
                    Some(Ok(event)) => {
                        if tx.send(wrap(event)).await.is_err() {
                            return;
                        }
                    }
                    // The watcher retries by itself; say so and go on.
                    Some(Err(e)) => warn!(event = "watchFailed", error = %error_chain(&e), "watch failed; retrying"),
                },
            }
        }
    })
}

/// One change to the configuration's objects.
#[derive(Debug)]
pub enum ConfigChange {
    ConfigMap(Box<watcher::Event<ConfigMap>>),
    /// An object of [`CONFIG_KINDS`]`[index]`.
    Object(usize, Box<watcher::Event<DynamicObject>>),
}

/// The configuration as the cluster holds it.
#[derive(Debug)]
pub struct ConfigSources {
    configmaps: Source<ConfigMap>,
    /// One per [`CONFIG_KINDS`] entry.
    pub kinds: Vec<Source<DynamicObject>>,
}

impl Default for ConfigSources {
    fn default() -> Self {
        Self { configmaps: Source::default(), kinds: CONFIG_KINDS.iter().map(|_| Source::default()).collect() }
    }
}

impl ConfigSources {
    /// Starts the watches on `namespace`: the legacy ConfigMap and each of [`CONFIG_KINDS`].
    pub fn spawn<C: Send + 'static>(
        client: &Client,
        namespace: &str,
        tx: &mpsc::Sender<C>,
        wrap: impl Fn(ConfigChange) -> C + Clone + Send + Sync + 'static,
    ) {
        let w = wrap.clone();
        spawn_watch(
            Api::<ConfigMap>::namespaced(client.clone(), namespace),
            watcher::Config::default().fields(&format!("metadata.name={LEGACY_CONFIGMAP}")),
            tx.clone(),
            move |e| w(ConfigChange::ConfigMap(Box::new(e))),
        );
        for (i, (version, kind, plural)) in CONFIG_KINDS.iter().enumerate() {
            let gvk = GroupVersionKind::gvk("metallb.io", version, kind);
            let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
            let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource);
            let w = wrap.clone();
            spawn_watch(api, watcher::Config::default(), tx.clone(), move |e| w(ConfigChange::Object(i, Box::new(e))));
        }
    }

    pub fn take(&mut self, change: ConfigChange) {
        match change {
            ConfigChange::ConfigMap(e) => self.configmaps.apply(*e),
            ConfigChange::Object(i, e) => {
                if let Some(source) = self.kinds.get_mut(i) {
                    source.apply(*e);
                }
            }
        }
    }

    /// Every configuration kind has been listed once.
    pub fn synced(&self) -> bool {
        self.configmaps.synced && self.kinds.iter().all(|s| s.synced)
    }

    /// The objects of one kind (`IPAddressPool`, ...).
    pub fn of_kind(&self, kind: &str) -> Option<(&'static ConfigKind, &Source<DynamicObject>)> {
        let i = CONFIG_KINDS.iter().position(|(_, k, _)| *k == kind)?;
        Some((&CONFIG_KINDS[i], self.kinds.get(i)?))
    }

    /// A reference to the configuration object `Kind/name`, for an Event.
    pub fn object_ref(&self, object: &str) -> Option<ObjectReference> {
        let (kind, name) = object.split_once('/')?;
        let ((version, kind, _), source) = self.of_kind(kind)?;
        let o = source.objects.values().find(|o| o.metadata.name.as_deref() == Some(name))?;
        Some(ObjectReference {
            api_version: Some(format!("metallb.io/{version}")),
            kind: Some((*kind).to_string()),
            name: o.metadata.name.clone(),
            namespace: o.metadata.namespace.clone(),
            uid: o.metadata.uid.clone(),
            ..Default::default()
        })
    }

    /// Loads the configuration the cluster holds, noting the outcome in
    /// `shown` (what `/metrics` and `/status` say) and, when it is
    /// invalid, in the logs (`configStale`): the caller keeps its last
    /// good configuration.
    pub fn load(
        &self,
        shown: &mut crate::view::ConfigState,
    ) -> Result<lb_core::config::Loaded, Vec<lb_core::config::ConfigError>> {
        let loaded = crate::crds::load(&self.objects());
        match &loaded {
            Ok(_) => {
                shown.stale = false;
                shown.last_error = None;
                shown.reloads += 1;
            }
            Err(errors) => {
                let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                tracing::error!(event = "configStale", errors = %text.join("; "), "invalid configuration; the last good one stays in force");
                shown.stale = true;
                shown.last_error = Some(text.join("; "));
                shown.reload_errors += 1;
            }
        }
        loaded
    }

    /// The configuration objects, as JSON documents for the loader.
    pub fn objects(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for cm in self.configmaps.objects.values() {
            let mut v = serde_json::to_value(cm).unwrap_or_default();
            v["apiVersion"] = json!("v1");
            v["kind"] = json!("ConfigMap");
            out.push(v);
        }
        for (source, (version, kind, _)) in self.kinds.iter().zip(CONFIG_KINDS) {
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
