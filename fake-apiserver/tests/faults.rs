//! Injected failures, the write record, and leases under contention.

// Test helpers panic on purpose: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use fake_apiserver::FakeApiServer;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchParams};
use serde_json::json;

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

#[tokio::test]
async fn injected_500s_are_api_errors_and_a_retrying_caller_converges() {
    let server = FakeApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "ns");
    server.faults().fail_next_matching(2, "/configmaps", 500);
    let mut attempts = 0;
    let created = loop {
        attempts += 1;
        match api.create(&PostParams::default(), &config_map("a")).await {
            Ok(created) => break created,
            Err(kube::Error::Api(status)) => assert_eq!((status.code, status.reason.as_str()), (500, "InternalError")),
            Err(other) => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(attempts, 3);
    assert_eq!(created.metadata.name.as_deref(), Some("a"));
    let statuses: Vec<u16> = server.writes().iter().map(|w| w.status).collect();
    assert_eq!(statuses, [500, 500, 201]);

    // 503 is retried by kube's client itself.
    server.faults().fail_next(2, 503);
    api.create(&PostParams::default(), &config_map("b")).await.unwrap();
    let statuses: Vec<u16> = server.writes().iter().skip(3).map(|w| w.status).collect();
    assert_eq!(statuses, [503, 503, 201]);
}

#[tokio::test]
async fn delayed_responses_wait() {
    let server = FakeApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "ns");
    server.faults().set_delay(Duration::from_millis(200));
    let started = Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    server.faults().clear();
}

#[tokio::test]
async fn reads_and_watches_are_not_writes_and_writers_are_named() {
    let server = FakeApiServer::start().await.unwrap();
    let reader: Api<ConfigMap> = Api::namespaced(server.client_as("reader").unwrap(), "ns");
    server
        .seed(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "ns"}}))
        .unwrap();
    reader.get("a").await.unwrap();
    reader.list(&ListParams::default()).await.unwrap();
    drop(reader.watch(&WatchParams::default(), "0").await.unwrap());
    assert!(server.writes().is_empty(), "{:?}", server.writes());

    let writer: Api<ConfigMap> = Api::namespaced(server.client_as("controller-0").unwrap(), "ns");
    writer
        .create(&PostParams { field_manager: Some("lb".into()), ..Default::default() }, &config_map("b"))
        .await
        .unwrap();
    let writes = server.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].writer.as_deref(), Some("controller-0"));
    assert_eq!(writes[0].field_manager.as_deref(), Some("lb"));
    assert_eq!(writes[0].method, "POST");
    assert!(writes[0].body.as_ref().is_some_and(|b| b["metadata"]["name"] == "b"));
}

#[tokio::test]
async fn racing_lease_updates_exactly_one_wins_each_round() {
    let server = FakeApiServer::start().await.unwrap();
    let a: Api<Lease> = Api::namespaced(server.client_as("a").unwrap(), "lb");
    let b: Api<Lease> = Api::namespaced(server.client_as("b").unwrap(), "lb");
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "leader"}, "spec": {}})).unwrap();
    a.create(&PostParams::default(), &lease).await.unwrap();

    let claim = |mut lease: Lease, holder: &str| {
        lease.spec.get_or_insert_default().holder_identity = Some(holder.to_owned());
        lease
    };
    let mut winners = Vec::new();
    for round in 0..5 {
        // Both read the same version, then both write.
        let (seen_a, seen_b) = (a.get("leader").await.unwrap(), b.get("leader").await.unwrap());
        assert_eq!(seen_a.metadata.resource_version, seen_b.metadata.resource_version);
        let pp = PostParams::default();
        // Each claim changes the object (an identical write would be a no-op, never a conflict).
        let (claim_a, claim_b) = (claim(seen_a, &format!("a-{round}")), claim(seen_b, &format!("b-{round}")));
        let (won_a, won_b) = tokio::join!(a.replace("leader", &pp, &claim_a), b.replace("leader", &pp, &claim_b));
        let loser = match (&won_a, &won_b) {
            (Ok(_), Err(e)) | (Err(e), Ok(_)) => e,
            other => panic!("exactly one write must win: {other:?}"),
        };
        assert!(matches!(loser, kube::Error::Api(s) if s.code == 409));
        let holder = server.get::<Lease>("lb", "leader").unwrap().unwrap().spec.unwrap().holder_identity.unwrap();
        assert_eq!(holder, format!("{}-{round}", if won_a.is_ok() { "a" } else { "b" }));
        winners.push(holder);
    }
    let successes = server.writes().iter().filter(|w| w.succeeded() && w.method == "PUT").count();
    assert_eq!(successes, 5, "{winners:?}");
}
