//! Watch streams: newline-delimited JSON `WatchEvent`s from the change
//! history, with bookmarks, timeouts, 410 on expired versions and the
//! faults that end streams.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use futures_util::Stream;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use crate::Error;
use crate::faults::Control;
use crate::kinds::ResourceKind;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::store::{Change, EventType};

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// `resourceVersion` unset or `"0"`, or `sendInitialEvents=true`: the
    /// current objects as ADDED events, then changes from now on.
    Current,
    /// Changes after this version, or 410 when they were forgotten.
    After(u64),
}

/// A parsed watch request.
#[derive(Debug, Clone)]
pub(crate) struct WatchRequest {
    pub(crate) kind: ResourceKind,
    pub(crate) namespace: Option<String>,
    pub(crate) labels: LabelSelector,
    pub(crate) fields: FieldSelector,
    pub(crate) start: Start,
    pub(crate) bookmarks: bool,
    /// `sendInitialEvents=true`: end the initial events with a bookmark
    /// annotated `k8s.io/initial-events-end`.
    pub(crate) initial_events_end: bool,
    pub(crate) timeout: Duration,
}

/// Counts the watch as open while it lives.
#[derive(Debug)]
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.lock().open_watches -= 1;
        self.0.notify();
    }
}

#[derive(Debug)]
struct Watch {
    shared: Arc<Shared>,
    request: WatchRequest,
    position: u64,
    queue: VecDeque<Bytes>,
    done: bool,
    changes: watch::Receiver<u64>,
    control: watch::Receiver<Control>,
    seen: Control,
    deadline: Instant,
    next_bookmark: Instant,
    _open: OpenGuard,
}

/// The body of a watch response.
pub(crate) fn stream(shared: Arc<Shared>, request: WatchRequest) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let now = Instant::now();
    let mut changes = shared.changes.subscribe();
    changes.borrow_and_update();
    let mut control = shared.control.subscribe();
    let seen = *control.borrow_and_update();
    let interval = shared.bookmark_interval;
    let deadline = now + request.timeout;
    let w = {
        let mut state = shared.lock();
        state.open_watches += 1;
        let position = match request.start {
            Start::Current => state.store.resource_version(),
            Start::After(v) => v,
        };
        let mut queue = VecDeque::new();
        if request.start == Start::Current {
            let objects =
                state.store.list(&request.kind, request.namespace.as_deref(), &request.labels, &request.fields);
            queue.extend(objects.into_iter().map(|o| line("ADDED", &o)));
            if request.initial_events_end {
                queue.push_back(bookmark(&request.kind, position, true));
            }
        }
        drop(state);
        Watch {
            shared: shared.clone(),
            request,
            position,
            queue,
            done: false,
            changes,
            control,
            seen,
            deadline,
            next_bookmark: now + interval,
            _open: OpenGuard(shared.clone()),
        }
    };
    shared.notify();
    futures_util::stream::unfold(w, next)
}

async fn next(mut w: Watch) -> Option<(Result<Bytes, Infallible>, Watch)> {
    loop {
        if let Some(line) = w.queue.pop_front() {
            return Some((Ok(line), w));
        }
        if w.done {
            return None;
        }
        w.changes.borrow_and_update();
        w.read_history();
        if !w.queue.is_empty() || w.done {
            continue;
        }
        let bookmarks = w.request.bookmarks;
        tokio::select! {
            changed = w.changes.changed() => {
                if changed.is_err() {
                    w.done = true;
                }
            }
            changed = w.control.changed() => {
                if changed.is_err() {
                    return None;
                }
                let control = *w.control.borrow_and_update();
                if control.drop_generation != w.seen.drop_generation {
                    return None;
                }
                if control.gone_generation != w.seen.gone_generation {
                    let oldest = w.shared.lock().store.oldest_resumable();
                    w.queue.push_back(error_line(&Error::Expired { requested: w.position, oldest }));
                    w.done = true;
                }
                if control.bookmark_generation != w.seen.bookmark_generation && bookmarks {
                    w.queue.push_back(bookmark(&w.request.kind, w.position, false));
                }
                w.seen = control;
            }
            () = sleep_until(w.deadline) => w.done = true,
            () = sleep_until(w.next_bookmark), if bookmarks => {
                w.queue.push_back(bookmark(&w.request.kind, w.position, false));
                w.next_bookmark = Instant::now() + w.shared.bookmark_interval;
            }
        }
    }
}

impl Watch {
    /// Queues the events after `position` that this watch selects.
    fn read_history(&mut self) {
        let state = self.shared.lock();
        let store = &state.store;
        let id = self.request.kind.id();
        match store.changes_since(self.position) {
            Err(expired) => {
                self.queue.push_back(error_line(&expired));
                self.done = true;
            }
            Ok(changes) => {
                for change in changes.filter(|c| c.resource == id) {
                    if let Some(event) = self.event_for(change) {
                        self.queue.push_back(line(event, &change.object));
                    }
                }
                self.position = store.resource_version();
            }
        }
    }

    /// The event this watch sees: selectors turn a modification that
    /// enters or leaves the selection into ADDED or DELETED.
    fn event_for(&self, change: &Change) -> Option<&'static str> {
        if self.request.namespace.as_deref().is_some_and(|ns| ns != change.namespace) {
            return None;
        }
        let selects = |o: &Value| self.request.labels.matches(o) && self.request.fields.matches(o);
        let now = selects(&change.object);
        let before = change.previous.as_ref().is_some_and(selects);
        match change.event {
            EventType::Added => now.then_some("ADDED"),
            EventType::Deleted => now.then_some("DELETED"),
            EventType::Modified => match (before, now) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            },
        }
    }
}

fn line(event: &str, object: &Value) -> Bytes {
    let mut text = json!({ "type": event, "object": object }).to_string();
    text.push('\n');
    Bytes::from(text)
}

fn error_line(error: &Error) -> Bytes {
    line("ERROR", &error.to_status())
}

fn bookmark(kind: &ResourceKind, version: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({ "resourceVersion": version.to_string() });
    if initial_events_end {
        metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    line("BOOKMARK", &json!({ "kind": kind.kind, "apiVersion": kind.api_version(), "metadata": metadata }))
}
