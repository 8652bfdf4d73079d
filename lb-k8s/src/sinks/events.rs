//! Kubernetes Events (`events.k8s.io/v1`), published off the hot path.
//!
//! A role hands each Event to [`Events::record`], which only queues it:
//! a pass that allocates 10,000 Services does not wait for 10,000 Event
//! round trips before the next status write. The [`Publisher`] sends them
//! with a few requests in flight, inside the role's own task, so a role
//! that stops or loses leadership stops publishing with it.
//!
//! A repeat of an Event (same object, type, reason and message) within
//! [`REPEAT_WINDOW`] patches the first one's `series` instead of creating
//! another, as client-go and kube's recorder do. Unlike kube's recorder,
//! which keeps every Event it sent for six minutes and scans them all on
//! each publish, what is remembered here is bounded ([`REMEMBERED`]
//! entries of a few dozen bytes), so 10,000 announcements cost a speaker
//! no more memory than ten, and a publish is O(1).

use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use lb_core::event_series::{REMEMBERED, REPEAT_WINDOW, Recent, Repeat, note};
use lb_core::writeback::{EventType, ServiceEvent};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tracing::warn;

use crate::view::error_chain;

/// Events waiting to be sent; beyond this, new ones are dropped (and
/// counted), as client-go's broadcaster does: Events are best effort and
/// must not hold up what they describe.
pub const QUEUED: usize = 16_384;
/// Requests in flight at once.
pub const IN_FLIGHT: usize = 8;

/// One Event to publish.
#[derive(Debug)]
struct Pending {
    regarding: ObjectReference,
    event: ServiceEvent,
}

/// Where a role records Events (cheap to clone; never blocks).
#[derive(Debug, Clone)]
pub struct Events {
    tx: mpsc::Sender<Pending>,
    dropped: Arc<AtomicU64>,
}

impl Events {
    /// Queues `event` about the object `regarding` names.
    pub fn record(&self, regarding: ObjectReference, event: &ServiceEvent) {
        let pending = Pending { regarding, event: event.clone() };
        if let Err(mpsc::error::TrySendError::Full(p)) = self.tx.try_send(pending) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                warn!(event = "eventDropped", reason = p.event.reason, dropped, "Event queue full: Event dropped");
            }
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Sends what [`Events`] queued. Run [`Publisher::run`] inside the role's
/// task (joined with its loop) so that it stops with the role.
pub struct Publisher {
    rx: mpsc::Receiver<Pending>,
    client: Client,
    component: String,
    /// Publishing only while this says so (a controller's leadership).
    gate: Option<watch::Receiver<bool>>,
    recent: Recent,
    sequence: u64,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("component", &self.component).field("remembered", &self.recent.len()).finish()
    }
}

/// The queue and its publisher, for `component` (`metallb-controller`).
pub fn channel(client: Client, component: &str, gate: Option<watch::Receiver<bool>>) -> (Events, Publisher) {
    let (tx, rx) = mpsc::channel(QUEUED);
    let events = Events { tx, dropped: Arc::default() };
    let publisher = Publisher {
        rx,
        client,
        component: component.into(),
        gate,
        recent: Recent::new(REMEMBERED, REPEAT_WINDOW),
        sequence: 0,
    };
    (events, publisher)
}

/// What one request did, for the memory of repeats.
struct Sent {
    key: u64,
    namespace: String,
    /// The Event, when this was its create.
    created: Option<Box<K8sEvent>>,
    result: Result<(), kube::Error>,
    reason: &'static str,
}

impl Publisher {
    /// Publishes until every [`Events`] handle is gone and the queue is
    /// empty.
    pub async fn run(mut self) {
        let mut in_flight = FuturesUnordered::new();
        loop {
            tokio::select! {
                pending = self.rx.recv(), if in_flight.len() < IN_FLIGHT => {
                    let Some(pending) = pending else { break };
                    if self.gate.as_ref().is_some_and(|g| !*g.borrow()) {
                        // Not ours to write: another replica leads.
                        continue;
                    }
                    if let Some(request) = self.send(pending) {
                        in_flight.push(request);
                    }
                }
                Some(sent) = in_flight.next(), if !in_flight.is_empty() => {
                    if let Some(request) = self.sent(sent) {
                        in_flight.push(request);
                    }
                }
            }
        }
        while let Some(sent) = in_flight.next().await {
            if let Some(request) = self.sent(sent) {
                in_flight.push(request);
            }
        }
    }

    /// Notes what a request did; a create that repeats came in for while
    /// it was in flight is followed by its series.
    fn sent(&mut self, sent: Sent) -> Option<Pin<Box<dyn Future<Output = Sent> + Send>>> {
        if let Err(e) = sent.result {
            warn!(event = "eventNotRecorded", reason = sent.reason, error = %error_chain(&e), "cannot record an Event");
            // The next repeat starts afresh; repeats that came while this
            // create was in flight are that repeat.
            let repeated = sent.created.is_some() && self.recent.created(sent.key).is_some();
            self.recent.forget(sent.key);
            let event = sent.created.filter(|_| repeated)?;
            return Some(self.create(sent.key, sent.namespace, *event, sent.reason));
        }
        sent.created.as_ref()?;
        let (name, count) = self.recent.created(sent.key)?;
        Some(Box::pin(self.series(sent.key, sent.namespace, name, count, sent.reason)))
    }

    /// The request for `pending`: a new Event, or the series of a recent
    /// one (`None`: its create is still in flight; the count goes with the
    /// series sent when it is done).
    fn send(&mut self, pending: Pending) -> Option<Pin<Box<dyn Future<Output = Sent> + Send>>> {
        let key = key_of(&pending);
        let namespace = pending.regarding.namespace.clone().unwrap_or_else(|| "default".into());
        let reason = pending.event.reason;
        match self.recent.repeat(key, Instant::now()) {
            Repeat::First => {
                let event = self.event(&pending);
                Some(self.create(key, namespace, event, reason))
            }
            Repeat::Pending => None,
            Repeat::Of(name, count) => Some(Box::pin(self.series(key, namespace, name, count, reason))),
        }
    }

    /// Creates `event` under a name of its own, remembered for its repeats.
    fn create(
        &mut self,
        key: u64,
        namespace: String,
        mut event: K8sEvent,
        reason: &'static str,
    ) -> Pin<Box<dyn Future<Output = Sent> + Send>> {
        self.sequence += 1;
        let now = Timestamp::now();
        let object = event.regarding.as_ref().and_then(|r| r.name.clone()).unwrap_or_else(|| self.component.clone());
        // Unique per publisher: nanoseconds alone can repeat when several
        // Events are made in one clock tick.
        let name = format!("{object}.{:x}{:x}", now.as_nanosecond(), self.sequence);
        event.metadata.name = Some(name.clone());
        event.event_time = Some(MicroTime(now));
        self.recent.insert(key, name, Instant::now());
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        Box::pin(async move {
            let result = api.create(&PostParams::default(), &event).await.map(drop);
            Sent { key, namespace, created: Some(Box::new(event)), result, reason }
        })
    }

    /// Counts a repeat on the Event `name`.
    fn series(
        &self,
        key: u64,
        namespace: String,
        name: String,
        count: i32,
        reason: &'static str,
    ) -> impl Future<Output = Sent> + Send + use<> {
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        async move {
            let series = EventSeries { count, last_observed_time: MicroTime(Timestamp::now()) };
            let result =
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&json!({"series": series}))).await.map(drop);
            Sent { key, namespace, created: None, result, reason }
        }
    }

    /// The Event object, with the fields the API server requires of
    /// `events.k8s.io/v1` (event time, action, reporting controller and
    /// instance). The action carries a digest of the message, as the one
    /// recorder before this did, so two Events of a reason with different
    /// messages stay apart for readers keyed on action.
    fn event(&self, pending: &Pending) -> K8sEvent {
        let event = &pending.event;
        let mut digest = std::collections::hash_map::DefaultHasher::new();
        event.message.hash(&mut digest);
        K8sEvent {
            action: Some(format!("{}-{:08x}", event.reason, digest.finish() as u32)),
            reason: Some(event.reason.into()),
            note: Some(note(&event.message)),
            regarding: Some(pending.regarding.clone()),
            // Named and timed by `create`.
            metadata: ObjectMeta { namespace: pending.regarding.namespace.clone(), ..ObjectMeta::default() },
            reporting_controller: Some(self.component.clone()),
            reporting_instance: Some(self.component.clone()),
            type_: Some(
                match event.event_type {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            ..K8sEvent::default()
        }
    }
}

/// What makes two Events one series: the object, type, reason and message.
fn key_of(pending: &Pending) -> u64 {
    let r = &pending.regarding;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&r.api_version, &r.kind, &r.namespace, &r.name, &r.uid).hash(&mut h);
    (pending.event.event_type.as_str(), pending.event.reason, &pending.event.message).hash(&mut h);
    h.finish()
}
