//! The server handle: start, clients, direct store access, waits, the
//! write record.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Error;
use crate::faults::{Control, FaultState, Faults};
use crate::kinds::ResourceKind;
use crate::record::{WRITER_HEADER, WriteRecord};
use crate::store::Store;

/// Everything behind the lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) store: Store,
    pub(crate) faults: FaultState,
    pub(crate) writes: Vec<WriteRecord>,
    /// Every request that named a known resource, as an authorizer sees it.
    pub(crate) accesses: Vec<crate::record::Access>,
    pub(crate) open_watches: usize,
    /// The rest of paginated lists, by `continue` token.
    pub(crate) pages: Pages,
}

/// Paginated lists not yet read to the end. Bounded: the oldest go first
/// (their token then answers 410, as a compacted one does).
#[derive(Debug, Default)]
pub(crate) struct Pages {
    next: u64,
    open: std::collections::BTreeMap<u64, Page>,
}

#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) version: u64,
    pub(crate) rest: std::collections::VecDeque<serde_json::Value>,
}

impl Pages {
    const OPEN: usize = 64;

    /// Keeps `rest` of a list made at `version`; its token.
    pub(crate) fn keep(&mut self, version: u64, rest: std::collections::VecDeque<serde_json::Value>) -> String {
        self.next += 1;
        self.open.insert(self.next, Page { version, rest });
        while self.open.len() > Self::OPEN {
            self.open.pop_first();
        }
        self.next.to_string()
    }

    pub(crate) fn take(&mut self, token: &str) -> Option<Page> {
        self.open.remove(&token.parse().ok()?)
    }
}

/// State shared by the HTTP tasks, the watch streams and the test's handle.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Bumped on every change a test might wait for: store writes, write
    /// records, watches opening and closing.
    pub(crate) changes: watch::Sender<u64>,
    pub(crate) control: watch::Sender<Control>,
    pub(crate) bookmark_interval: Duration,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes watches and waiting tests.
    pub(crate) fn notify(&self) {
        self.changes.send_modify(|n| *n += 1);
    }
}

/// Settings for [`FakeApiServer::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    history: usize,
    bookmark_interval: Duration,
    kinds: Vec<ResourceKind>,
}

impl Default for Builder {
    fn default() -> Self {
        Self { history: 1000, bookmark_interval: Duration::from_secs(60), kinds: Vec::new() }
    }
}

impl Builder {
    /// How many changes are kept for watches to resume from (default 1000).
    #[must_use]
    pub fn history(mut self, changes: usize) -> Self {
        self.history = changes;
        self
    }

    /// How often open watches that allow bookmarks get one (default 60 s).
    #[must_use]
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// Serves a custom resource from the start.
    #[must_use]
    pub fn kind(mut self, kind: ResourceKind) -> Self {
        self.kinds.push(kind);
        self
    }

    /// Binds 127.0.0.1 on a free port and serves on the current tokio runtime.
    ///
    /// # Errors
    /// [`Error::Bind`] when the listener cannot be bound.
    pub async fn start(self) -> Result<FakeApiServer, Error> {
        let mut store = Store::new(self.history);
        for kind in self.kinds {
            store.register(kind);
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                store,
                faults: FaultState::default(),
                writes: Vec::new(),
                accesses: Vec::new(),
                open_watches: 0,
                pages: Pages::default(),
            }),
            changes: watch::Sender::new(0),
            control: watch::Sender::new(Control::default()),
            bookmark_interval: self.bookmark_interval,
        });
        let listener =
            tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.map_err(|e| Error::Bind(e.to_string()))?;
        let addr = listener.local_addr().map_err(|e| Error::Bind(e.to_string()))?;
        let router = crate::routes::router(shared.clone());
        let task = tokio::spawn(async move {
            // Serving ends only when the handle's last clone is dropped (abort).
            let _ = axum::serve(listener, router).await;
        });
        Ok(FakeApiServer { shared: shared.clone(), addr, _serving: Arc::new(Serving { task, shared }) })
    }
}

/// Aborts the accept loop and ends the watches when the last handle goes.
struct Serving {
    task: JoinHandle<()>,
    shared: Arc<Shared>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
        self.shared.control.send_modify(|c| c.drop_generation += 1);
    }
}

impl fmt::Debug for Serving {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serving").finish_non_exhaustive()
    }
}

/// A running fake API server. Clones share the server; it stops when the
/// last clone is dropped.
///
/// # Expected flow
/// 1. [`FakeApiServer::start`] (or [`FakeApiServer::builder`]), then
///    [`FakeApiServer::register`] any custom resources;
/// 2. [`FakeApiServer::seed`] the world the code under test should see;
/// 3. hand [`FakeApiServer::client`] / [`FakeApiServer::client_as`] to it;
/// 4. [`FakeApiServer::wait_until`] / [`FakeApiServer::wait_for`] the
///    outcome, inject [`FakeApiServer::faults`], assert on
///    [`FakeApiServer::writes`].
#[derive(Debug, Clone)]
pub struct FakeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _serving: Arc<Serving>,
}

impl FakeApiServer {
    /// Settings: history size, bookmark interval, custom kinds.
    #[must_use]
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A server with the default settings.
    ///
    /// # Errors
    /// [`Error::Bind`] when the listener cannot be bound.
    pub async fn start() -> Result<Self, Error> {
        Builder::default().start().await
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig file's text naming this server (plain HTTP, no auth),
    /// for a process that finds its API server through `KUBECONFIG`.
    #[must_use]
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: \"{}\"}}}}]\nusers: [{{name: fake, user: {{}}}}]\ncontexts: [{{name: fake, context: {{cluster: fake, user: fake}}}}]\ncurrent-context: fake\n",
            self.url()
        )
    }

    /// A kube config for this server: plain HTTP, no auth, namespace `default`.
    ///
    /// # Errors
    /// [`Error::Client`] if the URL does not parse (it always does).
    pub fn config(&self) -> Result<kube::Config, Error> {
        let uri = self.url().parse().map_err(|e: axum::http::uri::InvalidUri| Error::Client(e.to_string()))?;
        Ok(kube::Config::new(uri))
    }

    /// A real `kube::Client` talking to this server.
    ///
    /// # Errors
    /// [`Error::Client`] if kube cannot build the client.
    pub fn client(&self) -> Result<kube::Client, Error> {
        kube::Client::try_from(self.config()?).map_err(|e| Error::Client(e.to_string()))
    }

    /// A client whose every request carries `x-writer: WRITER`, so the
    /// write record tells writers apart.
    ///
    /// # Errors
    /// [`Error::Client`] if `writer` is not a valid header value.
    pub fn client_as(&self, writer: &str) -> Result<kube::Client, Error> {
        let mut config = self.config()?;
        let value = HeaderValue::from_str(writer).map_err(|e| Error::Client(e.to_string()))?;
        config.headers.push((HeaderName::from_static(WRITER_HEADER), value));
        kube::Client::try_from(config).map_err(|e| Error::Client(e.to_string()))
    }

    /// Serves another kind (a custom resource) from now on.
    pub fn register(&self, kind: ResourceKind) {
        self.shared.lock().store.register(kind);
    }

    /// The fault controls.
    #[must_use]
    pub fn faults(&self) -> Faults {
        Faults { shared: self.shared.clone() }
    }

    /// Direct access to the store under the lock (for what the helpers
    /// below do not cover). Watches are woken afterwards.
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let result = f(&mut self.shared.lock().store);
        self.shared.notify();
        result
    }

    /// Inserts or overwrites an object, status included, as a cluster
    /// component would have written it. Its apiVersion and kind pick the
    /// resource; a namespaced object without namespace goes to `default`.
    ///
    /// # Errors
    /// [`Error::UnknownKind`], or as a create would fail (422 on a bad name).
    pub fn seed<T: Serialize>(&self, object: &T) -> Result<Value, Error> {
        let value = serde_json::to_value(object).map_err(|e| Error::Decode(e.to_string()))?;
        self.with_store(|s| s.seed(value))
    }

    /// The stored object of type `K` (use `""` as namespace for cluster-scoped kinds).
    ///
    /// # Errors
    /// [`Error::UnknownKind`] when `K` is not registered, [`Error::Decode`]
    /// when the stored JSON does not decode as `K`.
    pub fn get<K>(&self, namespace: &str, name: &str) -> Result<Option<K>, Error>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        let kind = self.kind_of::<K>()?;
        let value = self.shared.lock().store.get(&kind, namespace, name).cloned();
        value.map(decode).transpose()
    }

    /// Every stored object of type `K`, in all namespaces, by namespace and name.
    ///
    /// # Errors
    /// As [`FakeApiServer::get`].
    pub fn list<K>(&self) -> Result<Vec<K>, Error>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        let kind = self.kind_of::<K>()?;
        let values = self.shared.lock().store.list(&kind, None, &Default::default(), &Default::default());
        values.into_iter().map(decode).collect()
    }

    /// Deletes an object as `kubectl delete` would: finalizers honoured,
    /// dependents garbage-collected.
    ///
    /// # Errors
    /// 404 when absent, [`Error::UnknownKind`] when `K` is not registered.
    pub fn remove<K>(&self, namespace: &str, name: &str) -> Result<Value, Error>
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let kind = self.kind_of::<K>()?;
        self.with_store(|s| s.remove_object(&kind, namespace, name))
    }

    /// The latest resourceVersion.
    #[must_use]
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().store.resource_version()
    }

    /// How many watch streams are open now.
    #[must_use]
    pub fn open_watches(&self) -> usize {
        self.shared.lock().open_watches
    }

    /// Every write request so far, in order of arrival.
    #[must_use]
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.shared.lock().writes.clone()
    }

    /// Forgets the write record.
    pub fn accesses(&self) -> Vec<crate::record::Access> {
        self.shared.lock().accesses.clone()
    }

    /// Forgets every write recorded so far.
    pub fn clear_writes(&self) {
        self.shared.lock().writes.clear();
    }

    /// Waits until `predicate` holds, re-checking after every change to the
    /// store, the write record or the set of open watches (no polling).
    ///
    /// # Errors
    /// [`Error::Timeout`] when it still does not hold after `timeout`.
    pub async fn wait_until(&self, timeout: Duration, mut predicate: impl FnMut(&Self) -> bool) -> Result<(), Error> {
        let mut changes = self.shared.changes.subscribe();
        let waiting = async {
            loop {
                changes.borrow_and_update();
                if predicate(self) {
                    return;
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, waiting).await.map_err(|_| Error::Timeout(format!("a condition ({timeout:?})")))
    }

    /// Waits until the object `K` named `namespace/name` satisfies `predicate`
    /// (which sees `None` while it does not exist) and returns it.
    ///
    /// # Errors
    /// [`Error::Timeout`], or as [`FakeApiServer::get`].
    pub async fn wait_for<K>(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
        predicate: impl Fn(Option<&K>) -> bool,
    ) -> Result<Option<K>, Error>
    where
        K: kube::Resource<DynamicType = ()> + DeserializeOwned,
    {
        let mut found = Ok(None);
        self.wait_until(timeout, |server| {
            found = server.get::<K>(namespace, name);
            match &found {
                Ok(object) => predicate(object.as_ref()),
                Err(_) => true,
            }
        })
        .await
        .map_err(|_| Error::Timeout(format!("{}/{namespace}/{name} ({timeout:?})", K::plural(&()))))?;
        found
    }

    fn kind_of<K: kube::Resource<DynamicType = ()>>(&self) -> Result<ResourceKind, Error> {
        let (group, version, plural) = (K::group(&()), K::version(&()), K::plural(&()));
        self.shared.lock().store.registry().get(&group, &version, &plural).cloned().ok_or_else(|| Error::UnknownKind {
            api_version: K::api_version(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
        })
    }
}

fn decode<K: DeserializeOwned>(value: Value) -> Result<K, Error> {
    serde_json::from_value(value).map_err(|e| Error::Decode(e.to_string()))
}
