//! Watches through kube's `Api::watch` and `kube::runtime::watcher`.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

use std::pin::Pin;
use std::time::Duration;

use fake_apiserver::FakeApiServer;
use futures_util::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, Event};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

type Events = Pin<Box<dyn Stream<Item = Result<Event<ConfigMap>, watcher::Error>> + Send>>;

fn config_map(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": value}})).unwrap()
}

/// The next watcher event, as `(kind, name, data v)`; errors as ("error", code).
async fn next(events: &mut Events) -> (String, String, String) {
    let event = tokio::time::timeout(WAIT, events.next()).await.expect("a watcher event in time").expect("open stream");
    let describe = |kind: &str, cm: &ConfigMap| {
        let v = cm.data.as_ref().and_then(|d| d.get("v")).cloned().unwrap_or_default();
        (kind.to_owned(), cm.metadata.name.clone().unwrap_or_default(), v)
    };
    match event {
        Ok(Event::Init) => ("init".into(), String::new(), String::new()),
        Ok(Event::InitDone) => ("init-done".into(), String::new(), String::new()),
        Ok(Event::InitApply(cm)) => describe("init-apply", &cm),
        Ok(Event::Apply(cm)) => describe("apply", &cm),
        Ok(Event::Delete(cm)) => describe("delete", &cm),
        Err(watcher::Error::WatchError(status)) => ("error".into(), status.code.to_string(), String::new()),
        Err(other) => ("error".into(), other.to_string(), String::new()),
    }
}

fn ev(kind: &str, name: &str, v: &str) -> (String, String, String) {
    (kind.to_owned(), name.to_owned(), v.to_owned())
}

async fn setup(config: watcher::Config) -> (FakeApiServer, Api<ConfigMap>, Events) {
    let server = FakeApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "ns");
    let events: Events = Box::pin(watcher::watcher(api.clone(), config));
    (server, api, events)
}

#[tokio::test]
async fn watcher_sees_adds_modifies_and_deletes_in_order() {
    let (server, api, mut events) = setup(watcher::Config::default()).await;
    server.seed(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seeded", "namespace": "ns"}, "data": {"v": "0"}})).unwrap();
    assert_eq!(next(&mut events).await, ev("init", "", ""));
    assert_eq!(next(&mut events).await, ev("init-apply", "seeded", "0"));
    assert_eq!(next(&mut events).await, ev("init-done", "", ""));

    let pp = PostParams::default();
    api.create(&pp, &config_map("a", "1")).await.unwrap();
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"v": "2"}}))).await.unwrap();
    api.create(&pp, &config_map("b", "1")).await.unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    // Another namespace is not in this watch.
    Api::<ConfigMap>::namespaced(server.client().unwrap(), "other").create(&pp, &config_map("x", "1")).await.unwrap();
    api.delete("seeded", &DeleteParams::default()).await.unwrap();
    for expected in [
        ev("apply", "a", "1"),
        ev("apply", "a", "2"),
        ev("apply", "b", "1"),
        ev("delete", "a", "2"),
        ev("delete", "seeded", "0"),
    ] {
        assert_eq!(next(&mut events).await, expected);
    }
}

#[tokio::test]
async fn watcher_resumes_after_dropped_watches_without_losing_events() {
    let (server, api, mut events) = setup(watcher::Config::default()).await;
    assert_eq!(next(&mut events).await, ev("init", "", ""));
    assert_eq!(next(&mut events).await, ev("init-done", "", ""));
    api.create(&PostParams::default(), &config_map("a", "1")).await.unwrap();
    assert_eq!(next(&mut events).await, ev("apply", "a", "1"));
    assert_eq!(server.open_watches(), 1);

    server.faults().drop_watches();
    server.wait_until(WAIT, |s| s.open_watches() == 0).await.unwrap();
    // Changes while no watch is open: the resumed watch replays them.
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"v": "2"}}))).await.unwrap();
    api.create(&PostParams::default(), &config_map("b", "1")).await.unwrap();
    assert_eq!(next(&mut events).await, ev("apply", "a", "2"));
    assert_eq!(next(&mut events).await, ev("apply", "b", "1"));
    assert_eq!(server.open_watches(), 1);
}

#[tokio::test]
async fn expired_history_makes_the_watcher_relist_and_converge() {
    let (server, api, mut events) = setup(watcher::Config::default()).await;
    assert_eq!(next(&mut events).await, ev("init", "", ""));
    assert_eq!(next(&mut events).await, ev("init-done", "", ""));
    api.create(&PostParams::default(), &config_map("a", "1")).await.unwrap();
    api.create(&PostParams::default(), &config_map("b", "1")).await.unwrap();
    assert_eq!(next(&mut events).await, ev("apply", "a", "1"));
    assert_eq!(next(&mut events).await, ev("apply", "b", "1"));

    server.faults().expire_history();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    api.create(&PostParams::default(), &config_map("c", "1")).await.unwrap();
    assert_eq!(next(&mut events).await, ev("error", "410", ""));
    // The relist is the store's state now.
    assert_eq!(next(&mut events).await, ev("init", "", ""));
    assert_eq!(next(&mut events).await, ev("init-apply", "b", "1"));
    assert_eq!(next(&mut events).await, ev("init-apply", "c", "1"));
    assert_eq!(next(&mut events).await, ev("init-done", "", ""));
}

#[tokio::test]
async fn watch_from_a_version_older_than_the_history_is_gone() {
    let server = FakeApiServer::builder().history(2).start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "ns");
    for name in ["a", "b", "c"] {
        api.create(&PostParams::default(), &config_map(name, "1")).await.unwrap();
    }
    // Versions 2 and 3 are kept: from 1 replays one change, from 0... is "any".
    let mut from_one = api.watch(&WatchParams::default(), "1").await.unwrap().boxed();
    let first = from_one.next().await.unwrap().unwrap();
    assert!(matches!(first, WatchEvent::Added(cm) if cm.metadata.name.as_deref() == Some("b")));
    api.create(&PostParams::default(), &config_map("d", "1")).await.unwrap();
    let mut stale = api.watch(&WatchParams::default(), "1").await.unwrap().boxed();
    match stale.next().await.unwrap().unwrap() {
        WatchEvent::Error(status) => assert_eq!((status.code, status.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test]
async fn bookmarks_timeouts_and_selector_transitions() {
    let server = FakeApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "ns");
    let mut web = config_map("a", "1");
    web.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    api.create(&PostParams::default(), &web).await.unwrap();
    let version = server.resource_version().to_string();

    let params = WatchParams::default().labels("app=web").timeout(1);
    let mut stream = api.watch(&params, &version).await.unwrap().boxed();
    server.wait_until(WAIT, |s| s.open_watches() == 1).await.unwrap();
    server.faults().send_bookmarks();
    match stream.next().await.unwrap().unwrap() {
        WatchEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, version),
        other => panic!("expected a bookmark, got {other:?}"),
    }
    // Leaving the selection is a DELETED, coming back an ADDED.
    let relabel = |app: &str| json!({"metadata": {"labels": {"app": app}}});
    api.patch("a", &PatchParams::default(), &Patch::Merge(relabel("db"))).await.unwrap();
    api.patch("a", &PatchParams::default(), &Patch::Merge(relabel("web"))).await.unwrap();
    assert!(matches!(stream.next().await.unwrap().unwrap(), WatchEvent::Deleted(_)));
    assert!(matches!(stream.next().await.unwrap().unwrap(), WatchEvent::Added(_)));
    // timeoutSeconds=1 ends the stream.
    assert!(tokio::time::timeout(WAIT, stream.next()).await.unwrap().is_none());
}

#[tokio::test]
async fn streaming_lists_end_with_the_initial_events_bookmark() {
    let (server, api, mut events) = setup(watcher::Config::default().streaming_lists()).await;
    api.create(&PostParams::default(), &config_map("a", "1")).await.unwrap();
    assert_eq!(next(&mut events).await, ev("init", "", ""));
    assert_eq!(next(&mut events).await, ev("init-apply", "a", "1"));
    assert_eq!(next(&mut events).await, ev("init-done", "", ""));
    api.create(&PostParams::default(), &config_map("b", "1")).await.unwrap();
    assert_eq!(next(&mut events).await, ev("apply", "b", "1"));
    assert_eq!(server.open_watches(), 1);
}
