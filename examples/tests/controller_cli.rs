//! `lb controller` as a user runs it: the binary finds the API server from
//! `KUBECONFIG` (here the fake API server on loopback) and gives a Service
//! its address.

use std::process::{Command, Stdio};
use std::time::Duration;

use fake_apiserver::{FakeApiServer, ResourceKind};
use k8s_openapi::api::core::v1::Service;
use lb_k8s::roles::controller;
use serde_json::json;

#[tokio::test]
async fn lb_controller_assigns_through_a_kubeconfig() {
    assigns_with(&[]).await;
}

#[tokio::test]
async fn lb_controller_without_leader_election_assigns_too() {
    assigns_with(&["--no-leader-election"]).await;
}

async fn assigns_with(extra: &[&str]) {
    let server = FakeApiServer::start().await.expect("fake API server");
    for (version, kind, plural) in
        controller::CONFIG_KINDS.iter().copied().chain([("v1beta1", "ConfigurationState", "configurationstates")])
    {
        server.register(ResourceKind::namespaced("metallb.io", version, kind, plural).with_status());
    }
    server
        .seed(&json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "default", "namespace": "metallb-system"},
            "spec": {"addresses": ["198.51.100.0/31"]}}))
        .expect("pool");
    server
        .seed(&json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1", "ipFamilies": ["IPv4"], "ports": [{"port": 80}]}}))
        .expect("service");
    let dir = std::env::temp_dir().join(format!("lb-kubeconfig-{}-{}", std::process::id(), extra.len()));
    std::fs::create_dir_all(&dir).expect("dir");
    let kubeconfig = dir.join("config");
    std::fs::write(&kubeconfig, server.kubeconfig()).expect("kubeconfig");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut lb = Command::new(env!("CARGO_BIN_EXE_lb"))
        .arg("controller")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .env("KUBECONFIG", &kubeconfig)
        .env("LB_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("lb controller");
    let found = server
        .wait_for::<Service>("shop", "web", Duration::from_secs(20), |s| {
            s.as_ref()
                .and_then(|s| s.status.as_ref())
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .is_some_and(|i| i.iter().any(|e| e.ip.as_deref() == Some("198.51.100.0")))
        })
        .await;
    // Ready, and the pool's use in MetalLB's metric.
    let get = |path: &str| -> String {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
        let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = get("/metrics");
        if metrics.contains("metallb_allocator_addresses_in_use_total{pool=\"default\"} 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready = get("/readyz");
    let healthy = get("/healthz");
    let _ = lb.kill();
    let _ = lb.wait();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(healthy.starts_with("HTTP/1.1 200"), "{healthy}");
    assert!(metrics.contains("metallb_allocator_addresses_in_use_total{pool=\"default\"} 1"), "{metrics}");
    let _ = std::fs::remove_dir_all(&dir);
    found.expect("the Service's status names its address");
}
