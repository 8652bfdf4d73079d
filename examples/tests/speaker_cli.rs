//! `lb speaker` as a DaemonSet runs it: the binary finds the API server
//! from `KUBECONFIG` (the fake API server on loopback), announces a
//! Service over BGP (to a peer on loopback where nothing listens, its TCP
//! MD5 password from the Secret it names: the plan stands, the session
//! retries), says so in a ServiceBGPStatus, serves
//! `/readyz` and `/metrics`, and on SIGTERM stops cleanly and removes its
//! status object. No layer 2 here: it would answer on the host's own
//! interfaces (the namespace test in lb-k8s covers it).

use std::process::{Command, Stdio};
use std::time::Duration;

use fake_apiserver::{FakeApiServer, ResourceKind};
use lb_k8s::crds::ServiceBgpStatus;
use lb_k8s::roles::controller;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);
const NS: &str = "metallb-system";

fn get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[tokio::test]
async fn lb_speaker_announces_through_a_kubeconfig_and_cleans_up_on_sigterm() {
    let server = FakeApiServer::start().await.expect("fake API server");
    for (version, kind, plural) in controller::CONFIG_KINDS.iter().copied().chain([
        ("v1beta1", "ConfigurationState", "configurationstates"),
        ("v1beta1", "ServiceL2Status", "servicel2statuses"),
        ("v1beta1", "ServiceBGPStatus", "servicebgpstatuses"),
    ]) {
        server.register(ResourceKind::namespaced("metallb.io", version, kind, plural).with_status());
    }
    // A port nothing listens on: the session keeps retrying.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    for object in [
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "web", "namespace": NS},
            "spec": {"addresses": ["203.0.113.0/28"]}}),
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": "bgp", "namespace": NS},
            "spec": {"ipAddressPools": ["web"]}}),
        json!({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": {"name": "tor", "namespace": NS},
            "spec": {"myASN": 64512, "peerASN": 64513, "peerAddress": "127.0.0.1", "peerPort": closed,
                     "passwordSecret": {"name": "tor-password", "namespace": NS}}}),
        // The one Secret the speaker reads besides the memberlist one: without it the peer is not set up.
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
            "metadata": {"name": "tor-password", "namespace": NS}, "data": {"password": "c2VjcmV0"}}),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1", "ports": [{"port": 80, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.1"}]}}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.1.0.1"], "nodeName": "node-1", "conditions": {"ready": true}}]}),
    ] {
        server.seed(&object).expect("seed");
    }
    let dir = std::env::temp_dir().join(format!("lb-speaker-kubeconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let kubeconfig = dir.join("config");
    std::fs::write(&kubeconfig, server.kubeconfig()).expect("kubeconfig");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut lb = Command::new(env!("CARGO_BIN_EXE_lb"))
        .args(["speaker", "--listen", &format!("127.0.0.1:{port}")])
        .env("KUBECONFIG", &kubeconfig)
        .env("NODE_NAME", "node-1")
        .env("LB_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("lb speaker");
    let announced = server
        .wait_until(WAIT, |s| {
            s.list::<ServiceBgpStatus>().unwrap_or_default().iter().any(|st| {
                st.status.as_ref().is_some_and(|st| {
                    st.node.as_deref() == Some("node-1")
                        && st.service_name.as_deref() == Some("web")
                        && st.peers == ["tor"]
                })
            })
        })
        .await;
    let mut ready = String::new();
    let mut metrics = String::new();
    for _ in 0..100 {
        ready = get(port, "/readyz");
        metrics = get(port, "/metrics");
        if ready.starts_with("HTTP/1.1 200") && metrics.contains("metallb_bgp_session_up{peer=\"127.0.0.1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SIGTERM, as the kubelet stops it.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(lb.id()).expect("pid"));
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let cleaned = server.wait_until(WAIT, |s| s.list::<ServiceBgpStatus>().unwrap_or_default().is_empty()).await;
    let status = lb.wait().expect("wait");
    let _ = std::fs::remove_dir_all(&dir);
    announced.expect("a ServiceBGPStatus naming node-1, web and the peer");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(metrics.contains("metallb_bgp_session_up{peer=\"127.0.0.1"), "{metrics}");
    cleaned.expect("its status object removed on SIGTERM");
    assert!(status.success(), "exit: {status:?}");
}
