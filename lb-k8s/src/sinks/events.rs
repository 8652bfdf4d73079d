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

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
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
/// Repeats within this window count as one Event's series.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(6 * 60);
/// Recent Events remembered for counting repeats.
pub const REMEMBERED: usize = 4096;

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
        f.debug_struct("Publisher")
            .field("component", &self.component)
            .field("remembered", &self.recent.by_key.len())
            .finish()
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
                    in_flight.push(self.send(pending));
                }
                Some(sent) = in_flight.next(), if !in_flight.is_empty() => self.sent(sent),
            }
        }
        while let Some(sent) = in_flight.next().await {
            self.sent(sent);
        }
    }

    fn sent(&mut self, sent: Sent) {
        if let Err(e) = sent.result {
            // A failed create or patch: the next repeat starts afresh.
            self.recent.forget(sent.key);
            warn!(event = "eventNotRecorded", reason = sent.reason, error = %error_chain(&e), "cannot record an Event");
        }
    }

    /// The request for `pending`: a new Event, or the series of a recent one.
    fn send(&mut self, pending: Pending) -> impl Future<Output = Sent> + use<> {
        let key = key_of(&pending);
        let now = Timestamp::now();
        let namespace = pending.regarding.namespace.clone().unwrap_or_else(|| "default".into());
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        let reason = pending.event.reason;
        let request = match self.recent.repeat(key, Instant::now()) {
            Some((name, count)) => Request::Series { name, count },
            None => {
                self.sequence += 1;
                let event = self.event(&pending, now, self.sequence);
                let name = event.metadata.name.clone().unwrap_or_default();
                self.recent.insert(key, name, Instant::now());
                Request::Create(Box::new(event))
            }
        };
        async move {
            let result = match request {
                Request::Create(event) => api.create(&PostParams::default(), &event).await.map(drop),
                Request::Series { name, count } => {
                    let patch = json!({"series": EventSeries { count, last_observed_time: MicroTime(now) }});
                    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.map(drop)
                }
            };
            Sent { key, result, reason }
        }
    }

    /// The Event object, with the fields the API server requires of
    /// `events.k8s.io/v1` (event time, action, reporting controller and
    /// instance). The action carries a digest of the message, as the one
    /// recorder before this did, so two Events of a reason with different
    /// messages stay apart for readers keyed on action.
    fn event(&self, pending: &Pending, now: Timestamp, sequence: u64) -> K8sEvent {
        let event = &pending.event;
        let mut digest = std::collections::hash_map::DefaultHasher::new();
        event.message.hash(&mut digest);
        let object = pending.regarding.name.as_deref().unwrap_or(&self.component);
        K8sEvent {
            action: Some(format!("{}-{:08x}", event.reason, digest.finish() as u32)),
            reason: Some(event.reason.into()),
            note: Some(event.message.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(pending.regarding.clone()),
            metadata: ObjectMeta {
                namespace: pending.regarding.namespace.clone(),
                // Unique per publisher: nanoseconds alone can repeat when
                // several Events are made in one clock tick.
                name: Some(format!("{object}.{:x}{sequence:x}", now.as_nanosecond())),
                ..ObjectMeta::default()
            },
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

enum Request {
    Create(Box<K8sEvent>),
    Series { name: String, count: i32 },
}

/// What makes two Events one series: the object, type, reason and message.
fn key_of(pending: &Pending) -> u64 {
    let r = &pending.regarding;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&r.api_version, &r.kind, &r.namespace, &r.name, &r.uid).hash(&mut h);
    (pending.event.event_type.as_str(), pending.event.reason, &pending.event.message).hash(&mut h);
    h.finish()
}

/// The Events sent recently, by key: name, count and when first sent.
/// Bounded both in size (the oldest go first) and in age.
#[derive(Debug)]
struct Recent {
    by_key: HashMap<u64, Remembered>,
    /// Keys in the order they were first sent (may name forgotten keys).
    order: VecDeque<(u64, Instant)>,
    capacity: usize,
    window: Duration,
}

#[derive(Debug)]
struct Remembered {
    name: String,
    count: i32,
    first: Instant,
}

impl Recent {
    fn new(capacity: usize, window: Duration) -> Self {
        Self { by_key: HashMap::new(), order: VecDeque::new(), capacity, window }
    }

    /// A repeat of a recent Event: its name and the series count now.
    fn repeat(&mut self, key: u64, now: Instant) -> Option<(String, i32)> {
        self.expire(now);
        let r = self.by_key.get_mut(&key)?;
        r.count = r.count.saturating_add(1);
        Some((r.name.clone(), r.count))
    }

    fn insert(&mut self, key: u64, name: String, now: Instant) {
        self.expire(now);
        while self.by_key.len() >= self.capacity {
            let Some((old, at)) = self.order.pop_front() else { break };
            if self.by_key.get(&old).is_some_and(|r| r.first == at) {
                self.by_key.remove(&old);
            }
        }
        self.by_key.insert(key, Remembered { name, count: 1, first: now });
        self.order.push_back((key, now));
    }

    fn forget(&mut self, key: u64) {
        self.by_key.remove(&key);
    }

    /// Drops what is older than the window, and order entries of keys
    /// forgotten or sent again since.
    fn expire(&mut self, now: Instant) {
        while let Some(&(key, at)) = self.order.front() {
            let current = self.by_key.get(&key).is_some_and(|r| r.first == at);
            if current && now.duration_since(at) < self.window {
                break;
            }
            if current {
                self.by_key.remove(&key);
            }
            self.order.pop_front();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_within_the_window_is_counted_on_the_first() {
        let mut recent = Recent::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(recent.repeat(1, t0), None);
        recent.insert(1, "a.1".into(), t0);
        assert_eq!(recent.repeat(1, t0 + Duration::from_secs(1)), Some(("a.1".into(), 2)));
        assert_eq!(recent.repeat(1, t0 + Duration::from_secs(2)), Some(("a.1".into(), 3)));
        assert_eq!(recent.repeat(2, t0), None, "another key");
        // Past the window: a new Event.
        assert_eq!(recent.repeat(1, t0 + Duration::from_secs(61)), None);
        assert_eq!(recent.len(), 0);
    }

    #[test]
    fn memory_is_bounded_oldest_first() {
        let mut recent = Recent::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for key in 0..10 {
            recent.insert(key, format!("e.{key}"), t0 + Duration::from_millis(key));
            assert!(recent.len() <= 3);
        }
        assert!(recent.order.len() <= 10);
        assert_eq!(recent.repeat(9, t0 + Duration::from_secs(1)), Some(("e.9".into(), 2)));
        assert_eq!(recent.repeat(0, t0 + Duration::from_secs(1)), None, "the oldest went first");
    }

    #[test]
    fn a_forgotten_key_starts_afresh_and_its_stale_order_entry_is_dropped() {
        let mut recent = Recent::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        recent.insert(1, "a".into(), at(0));
        recent.insert(2, "b".into(), at(1));
        recent.forget(1);
        assert_eq!(recent.repeat(1, at(2)), None);
        recent.insert(1, "c".into(), at(2));
        // Full: the oldest live entry (2) goes, not key 1 by its stale entry.
        recent.insert(3, "d".into(), at(3));
        assert_eq!(recent.len(), 2);
        assert_eq!(recent.repeat(1, at(4)), Some(("c".into(), 2)));
        assert_eq!(recent.repeat(2, at(4)), None);
    }
}
