//! The Event sink against the fake API server: what a role records ends
//! as `events.k8s.io/v1` Events, a repeat as the first one's series, and
//! nothing is written while the gate (leadership) is closed.

use std::time::Duration;

use fake_apiserver::FakeApiServer;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use lb_core::writeback::{EventType, ServiceEvent};
use lb_k8s::sinks::events;
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(10);

fn regarding(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Service".into()),
        name: Some(name.into()),
        namespace: Some("shop".into()),
        ..ObjectReference::default()
    }
}

fn assigned(ip: &str) -> ServiceEvent {
    ServiceEvent { event_type: EventType::Normal, reason: "IPAllocated", message: format!("Assigned IP [\"{ip}\"]") }
}

fn notes(server: &FakeApiServer) -> Vec<(String, String, i32)> {
    let mut out: Vec<(String, String, i32)> = server
        .list::<Event>()
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let name = e.regarding.and_then(|r| r.name).unwrap_or_default();
            (name, e.note.unwrap_or_default(), e.series.map_or(1, |s| s.count))
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn repeats_count_on_the_first_event_and_other_messages_are_events_of_their_own() {
    let server = FakeApiServer::start().await.expect("fake API server");
    let (sink, publisher) = events::channel(server.client().expect("client"), "metallb-controller", None);
    let publishing = tokio::spawn(publisher.run());
    sink.record(regarding("a"), &assigned("192.0.2.1"));
    // The create must be done before a repeat can name it: wait for it.
    server.wait_until(WAIT, |s| notes(s).len() == 1).await.expect("first Event");
    sink.record(regarding("a"), &assigned("192.0.2.1"));
    sink.record(regarding("a"), &assigned("192.0.2.1"));
    sink.record(regarding("a"), &assigned("192.0.2.2"));
    sink.record(regarding("b"), &assigned("192.0.2.1"));
    // Repeats while the first is still being created: one Event, counted.
    for _ in 0..3 {
        sink.record(regarding("c"), &assigned("192.0.2.3"));
    }
    drop(sink);
    tokio::time::timeout(WAIT, publishing).await.expect("publisher drains and ends").expect("publisher");
    assert_eq!(
        notes(&server),
        [
            ("a".into(), "Assigned IP [\"192.0.2.1\"]".into(), 3),
            ("a".into(), "Assigned IP [\"192.0.2.2\"]".into(), 1),
            ("b".into(), "Assigned IP [\"192.0.2.1\"]".into(), 1),
            ("c".into(), "Assigned IP [\"192.0.2.3\"]".into(), 3),
        ]
    );
    let event = server.list::<Event>().expect("list").into_iter().next().expect("an Event");
    assert_eq!(event.reporting_controller.as_deref(), Some("metallb-controller"));
    assert!(event.event_time.is_some() && event.action.is_some(), "fields events.k8s.io/v1 requires: {event:?}");
}

#[tokio::test]
async fn nothing_is_published_while_the_gate_is_closed() {
    let server = FakeApiServer::start().await.expect("fake API server");
    for open in [false, true] {
        let (_gate_tx, gate) = watch::channel(open);
        let (sink, publisher) = events::channel(server.client().expect("client"), "metallb-controller", Some(gate));
        let publishing = tokio::spawn(publisher.run());
        sink.record(regarding(if open { "open" } else { "closed" }), &assigned("192.0.2.1"));
        drop(sink);
        tokio::time::timeout(WAIT, publishing).await.expect("publisher ends").expect("publisher");
    }
    assert_eq!(notes(&server), [("open".into(), "Assigned IP [\"192.0.2.1\"]".into(), 1)]);
}

/// A create refused while repeats of it waited: the repeats make it again,
/// rather than being lost with it.
#[tokio::test]
async fn repeats_of_a_refused_create_make_it_again() {
    let server = FakeApiServer::start().await.expect("fake API server");
    server.faults().fail_next_matching(1, "/events", 500);
    let (sink, publisher) = events::channel(server.client().expect("client"), "metallb-controller", None);
    let publishing = tokio::spawn(publisher.run());
    for _ in 0..3 {
        sink.record(regarding("c"), &assigned("192.0.2.3"));
    }
    drop(sink);
    tokio::time::timeout(WAIT, publishing).await.expect("publisher ends").expect("publisher");
    let refused = server.writes().iter().filter(|w| w.path.contains("/events") && w.status >= 500).count();
    assert_eq!(refused, 1);
    assert_eq!(notes(&server), [("c".into(), "Assigned IP [\"192.0.2.3\"]".into(), 1)]);
}
