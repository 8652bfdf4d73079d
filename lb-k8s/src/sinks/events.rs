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
use std::pin::Pin;
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

/// What a recent Event makes of one more like it.
#[derive(Debug, PartialEq, Eq)]
enum Repeat {
    /// None recent: create it.
    First,
    /// Its create is in flight: counted, sent with the series after it.
    Pending,
    /// Patch the series of this Event to this count.
    Of(String, i32),
}

/// The API server refuses a note over 1 KiB: longer messages are cut
/// at a character boundary, with an ellipsis.
pub const NOTE_LIMIT: usize = 1024;

fn note(message: &str) -> String {
    if message.len() <= NOTE_LIMIT {
        return message.to_string();
    }
    let mut end = NOTE_LIMIT - '…'.len_utf8();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
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
    /// Its create is in flight.
    creating: bool,
    /// Repeats counted while it was being created.
    unsent: bool,
}

impl Recent {
    fn new(capacity: usize, window: Duration) -> Self {
        Self { by_key: HashMap::new(), order: VecDeque::new(), capacity, window }
    }

    /// A repeat of a recent Event: its name and the series count now.
    fn repeat(&mut self, key: u64, now: Instant) -> Repeat {
        self.expire(now);
        let Some(r) = self.by_key.get_mut(&key) else { return Repeat::First };
        r.count = r.count.saturating_add(1);
        if r.creating {
            r.unsent = true;
            return Repeat::Pending;
        }
        Repeat::Of(r.name.clone(), r.count)
    }

    /// Its create is done: the series to send for repeats counted meanwhile.
    fn created(&mut self, key: u64) -> Option<(String, i32)> {
        let r = self.by_key.get_mut(&key)?;
        r.creating = false;
        std::mem::take(&mut r.unsent).then(|| (r.name.clone(), r.count))
    }

    fn insert(&mut self, key: u64, name: String, now: Instant) {
        self.expire(now);
        while self.by_key.len() >= self.capacity {
            let Some((old, at)) = self.order.pop_front() else { break };
            if self.by_key.get(&old).is_some_and(|r| r.first == at) {
                self.by_key.remove(&old);
            }
        }
        self.by_key.insert(key, Remembered { name, count: 1, first: now, creating: true, unsent: false });
        self.order.push_back((key, now));
        // Entries of keys forgotten (failed requests) would otherwise stay
        // behind live ones for the whole window.
        if self.order.len() > 2 * self.capacity {
            let by_key = &self.by_key;
            self.order.retain(|(k, at)| by_key.get(k).is_some_and(|r| r.first == *at));
        }
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

    fn of(name: &str, count: i32) -> Repeat {
        Repeat::Of(name.into(), count)
    }

    #[test]
    fn notes_fit_the_api_servers_limit() {
        assert_eq!(note("short"), "short");
        for long in ["x".repeat(5000), "é".repeat(3000)] {
            let cut = note(&long);
            assert!(cut.len() <= NOTE_LIMIT && cut.ends_with('…'), "{}", cut.len());
        }
    }

    #[test]
    fn a_repeat_within_the_window_is_counted_on_the_first() {
        let mut recent = Recent::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(recent.repeat(1, t0), Repeat::First);
        recent.insert(1, "a.1".into(), t0);
        assert_eq!(recent.created(1), None, "no repeat while it was created");
        assert_eq!(recent.repeat(1, t0 + Duration::from_secs(1)), of("a.1", 2));
        assert_eq!(recent.repeat(1, t0 + Duration::from_secs(2)), of("a.1", 3));
        assert_eq!(recent.repeat(2, t0), Repeat::First, "another key");
        // Past the window: a new Event.
        assert_eq!(recent.repeat(1, t0 + Duration::from_secs(61)), Repeat::First);
        assert_eq!(recent.len(), 0);
    }

    #[test]
    fn repeats_while_the_first_is_created_go_out_as_one_series_after_it() {
        let mut recent = Recent::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        recent.insert(1, "a.1".into(), t0);
        assert_eq!(recent.repeat(1, t0), Repeat::Pending);
        assert_eq!(recent.repeat(1, t0), Repeat::Pending);
        assert_eq!(recent.created(1), Some(("a.1".into(), 3)));
        assert_eq!(recent.repeat(1, t0), of("a.1", 4));
    }

    #[test]
    fn memory_is_bounded_oldest_first() {
        let mut recent = Recent::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for key in 0..10 {
            recent.insert(key, format!("e.{key}"), t0 + Duration::from_millis(key));
            let _ = recent.created(key);
            assert!(recent.len() <= 3);
        }
        assert_eq!(recent.repeat(9, t0 + Duration::from_secs(1)), of("e.9", 2));
        assert_eq!(recent.repeat(0, t0 + Duration::from_secs(1)), Repeat::First, "the oldest went first");
        // Keys forgotten (failed requests) do not pile up behind a live one.
        for key in 100..1000 {
            recent.insert(key, format!("e.{key}"), t0 + Duration::from_secs(2));
            recent.forget(key);
        }
        assert!(recent.order.len() <= 6, "{}", recent.order.len());
    }

    #[test]
    fn a_forgotten_key_starts_afresh_and_its_stale_order_entry_is_dropped() {
        let mut recent = Recent::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        recent.insert(1, "a".into(), at(0));
        recent.insert(2, "b".into(), at(1));
        recent.forget(1);
        assert_eq!(recent.repeat(1, at(2)), Repeat::First);
        recent.insert(1, "c".into(), at(2));
        let _ = recent.created(1);
        // Full: the oldest live entry (2) goes, not key 1 by its stale entry.
        recent.insert(3, "d".into(), at(3));
        assert_eq!(recent.len(), 2);
        assert_eq!(recent.repeat(1, at(4)), of("c", 2));
        assert_eq!(recent.repeat(2, at(4)), Repeat::First);
    }
}
