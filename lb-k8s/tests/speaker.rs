//! `lb speaker` against the fake API server, through kube's real client:
//! two speakers (nodes `node-a` and `node-b`) in one network namespace of
//! the test's own, each with its layer 2 thread, gossip and raw sockets,
//! and what ends in the server's store is asserted.
//!
//! The namespace holds a veth pair, `sa0` (192.0.2.11, node-a's) and
//! `sb0` (192.0.2.12, node-b's); each speaker excludes the other's end,
//! so each node answers on its own interface and gossips from its own
//! address. The fake API server listens on the namespace's loopback.
//! Nothing leaves the namespace.

mod support;

use std::time::Duration;

use fake_apiserver::{FakeApiServer, ResourceKind};
use k8s_openapi::api::events::v1::Event;
use lb_k8s::crds::{ServiceBgpStatus, ServiceL2Status};
use lb_k8s::roles::controller::{CONFIG_KINDS, Progress};
use lb_k8s::roles::speaker::{self, SpeakerOptions};
use lb_k8s::roles::standalone::Layer2Settings;
use serde_json::{Value, json};
use support::Netns;
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(20);
const NS: &str = "metallb-system";
const VIP: &str = "192.0.2.240";

fn objects() -> Vec<Value> {
    let pod = |name: &str, node: &str, ip: &str| {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS,
                "labels": {"app.kubernetes.io/name": "lb", "app.kubernetes.io/component": "speaker"}},
            "spec": {"nodeName": node, "containers": [{"name": "speaker", "image": "lb"}]},
            "status": {"podIP": ip}})
    };
    vec![
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "web", "namespace": NS}, "spec": {"addresses": ["192.0.2.240/28"]}}),
        l2_advertisement(&[]),
        // Selects the Service by its label: the speakers keep Services'
        // labels only when a selector reads them.
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
            "metadata": {"name": "bgp", "namespace": NS},
            "spec": {"ipAddressPools": ["web"], "serviceSelectors": [{"matchLabels": {"tier": "gold"}}]}}),
        // Nothing listens there: the session keeps trying, the plan stands.
        json!({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
            "metadata": {"name": "tor", "namespace": NS},
            "spec": {"myASN": 64512, "peerASN": 64513, "peerAddress": "192.0.2.1"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "memberlist", "namespace": NS},
            "data": {"secretkey": "c3BlYWtlci10ZXN0LWtleQ=="}}),
        node("node-a", "192.0.2.11", true),
        node("node-b", "192.0.2.12", true),
        pod("speaker-a", "node-a", "192.0.2.11"),
        pod("speaker-b", "node-b", "192.0.2.12"),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"tier": "gold"}},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1", "ports": [{"port": 80, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": VIP}]}}}),
        endpoints(&["node-a", "node-b"]),
    ]
}

fn l2_advertisement(interfaces: &[&str]) -> Value {
    json!({"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
        "metadata": {"name": "l2", "namespace": NS},
        "spec": {"ipAddressPools": ["web"], "nodeSelectors": [{"matchLabels": {"lb": "yes"}}], "interfaces": interfaces}})
}

fn node(name: &str, ip: &str, selected: bool) -> Value {
    let labels = if selected { json!({"lb": "yes"}) } else { json!({}) };
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}]}})
}

fn endpoints(nodes: &[&str]) -> Value {
    let endpoints: Vec<Value> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"addresses": [format!("10.1.0.{}", i + 1)], "nodeName": n, "conditions": {"ready": true}}))
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4", "endpoints": endpoints})
}

/// Who announces `web` on layer 2, by the status objects.
fn l2_nodes(server: &FakeApiServer) -> Vec<String> {
    let mut nodes: Vec<String> = server
        .list::<ServiceL2Status>()
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.status.as_ref()?.node.clone())
        .collect();
    nodes.sort();
    nodes
}

fn bgp_statuses(server: &FakeApiServer) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = server
        .list::<ServiceBgpStatus>()
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.status.as_ref().map(|st| (st.node.clone().unwrap_or_default(), st.peers.clone())))
        .collect();
    out.sort();
    out
}

fn events(server: &FakeApiServer, reason: &str) -> Vec<String> {
    server
        .list::<Event>()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter(|e| e.reporting_controller.as_deref() == Some("metallb-speaker"))
        .filter_map(|e| e.note)
        .collect()
}

fn start(
    server: &FakeApiServer,
    node: &str,
    pod: &str,
    other_if: &str,
) -> (tokio::task::JoinHandle<()>, tokio::sync::oneshot::Sender<()>) {
    let client = server.client_as(node).expect("client");
    let options = SpeakerOptions {
        node: node.into(),
        namespace: NS.into(),
        load_balancer_class: None,
        pod: Some(pod.into()),
        speaker_selector: "app.kubernetes.io/name=lb,app.kubernetes.io/component=speaker".into(),
        memberlist_secret: "memberlist".into(),
        layer2: Layer2Settings {
            memberlist_port: 7946,
            memberlist_key: None,
            exclude_interfaces: Some(vec!["lo".into(), other_if.into()]),
        },
    };
    let (progress, _) = watch::channel(Progress::default());
    let (published, _) = watch::channel(Default::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop = async {
            let _ = stopped.await;
        };
        let _ = speaker::run(client, options, progress, published, stop).await;
    });
    (task, stop)
}

#[test]
fn speakers_announce_from_service_status_and_their_status_objects_follow_labels_endpoints_and_interfaces() {
    support::skip_unless_root!();
    let ns = Netns::new().expect("netns");
    ns.ip(&["link", "add", "sa0", "type", "veth", "peer", "name", "sb0"]).expect("veth");
    for (ifname, addr) in [("sa0", "192.0.2.11/24"), ("sb0", "192.0.2.12/24")] {
        ns.add_addr(ifname, addr).expect("address");
        ns.set_link(ifname, true).expect("up");
    }
    ns.run(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        runtime.block_on(scenario());
    });
}

async fn scenario() {
    let server = FakeApiServer::start().await.expect("fake API server");
    for (version, kind, plural) in CONFIG_KINDS.iter().copied().chain([
        ("v1beta1", "ConfigurationState", "configurationstates"),
        ("v1beta1", "ServiceL2Status", "servicel2statuses"),
        ("v1beta1", "ServiceBGPStatus", "servicebgpstatuses"),
    ]) {
        server.register(ResourceKind::namespaced("metallb.io", version, kind, plural).with_status());
    }
    for object in objects() {
        server.seed(&object).expect("seed");
    }
    let (a, stop_a) = start(&server, "node-a", "speaker-a", "sb");
    let (b, stop_b) = start(&server, "node-b", "speaker-b", "sa");
    let mut stops = std::collections::BTreeMap::from([("node-a", stop_a), ("node-b", stop_b)]);

    // One node answers on layer 2; both announce over BGP to the peer.
    if server.wait_until(WAIT, |s| l2_nodes(s).len() == 1).await.is_err() {
        let cs = server.list::<lb_k8s::crds::ConfigurationState>().unwrap_or_default();
        let all: Vec<String> = server
            .list::<Event>()
            .unwrap_or_default()
            .into_iter()
            .map(|e| format!("{:?} {:?}", e.reason, e.note))
            .collect();
        panic!(
            "one ServiceL2Status: bgp {:?} states {cs:?} events {all:?} writes {:?}",
            bgp_statuses(&server),
            server.writes().iter().map(|w| format!("{} {} {}", w.method, w.path, w.succeeded())).collect::<Vec<_>>()
        );
    }
    let owner = l2_nodes(&server).remove(0);
    let other = if owner == "node-a" { "node-b" } else { "node-a" };
    server
        .wait_until(WAIT, |s| {
            bgp_statuses(s) == [("node-a".into(), vec!["tor".into()]), ("node-b".into(), vec!["tor".into()])]
        })
        .await
        .unwrap_or_else(|_| panic!("ServiceBGPStatus from both nodes, got {:?}", bgp_statuses(&server)));
    let l2 = server.list::<ServiceL2Status>().expect("list").remove(0);
    let status = l2.status.as_ref().expect("status");
    assert_eq!((status.service_name.as_deref(), status.service_namespace.as_deref()), (Some("web"), Some("shop")));
    // Its advertisement names no interface: every one that passes the owner's exclusions.
    let own_if = if owner == "node-a" { "sa0" } else { "sb0" };
    let interfaces: Vec<Option<&str>> = status.interfaces.iter().map(|i| i.name.as_deref()).collect();
    assert_eq!(interfaces, [Some(own_if)]);
    let owners = l2.metadata.owner_references.clone().unwrap_or_default();
    let speaker_pod = if owner == "node-a" { "speaker-a" } else { "speaker-b" };
    assert_eq!(owners.iter().map(|o| (o.kind.as_str(), o.name.as_str())).collect::<Vec<_>>(), [("Pod", speaker_pod)]);
    server
        .wait_until(WAIT, |s| {
            events(s, "nodeAssigned").contains(&format!("announcing from node \"{owner}\" with protocol \"layer2\""))
        })
        .await
        .expect("nodeAssigned Event");

    // The owner loses the label its advertisement selects: the other node takes over.
    let ip = |n: &str| if n == "node-a" { "192.0.2.11" } else { "192.0.2.12" };
    server.seed(&node(&owner, ip(&owner), false)).expect("relabel");
    server
        .wait_until(WAIT, |s| l2_nodes(s) == [other.to_string()])
        .await
        .unwrap_or_else(|_| panic!("layer 2 moved to {other}, got {:?}", l2_nodes(&server)));
    server.seed(&node(&owner, ip(&owner), true)).expect("relabel back");

    // The advertisement names an interface no node has: nobody answers,
    // and the node the ranking picks says why.
    server.seed(&l2_advertisement(&["eth9"])).expect("interfaces");
    server.wait_until(WAIT, |s| l2_nodes(s).is_empty()).await.expect("no layer 2 announcement");
    server
        .wait_until(WAIT, |s| {
            events(s, "announceFailed").iter().any(|m| {
                m.starts_with(&format!("the interfaces specified by LB IP \"{VIP}\" doesn't exist in assigned node"))
            })
        })
        .await
        .expect("announceFailed Event");
    server.seed(&l2_advertisement(&[])).expect("interfaces");
    server.wait_until(WAIT, |s| l2_nodes(s).len() == 1).await.expect("announced again");

    // The owner stops (SIGTERM): it hands over, the other announces, and
    // the stopped one's status objects go.
    let owner = l2_nodes(&server).remove(0);
    let other = if owner == "node-a" { "node-b" } else { "node-a" };
    let _ = stops.remove(owner.as_str()).expect("stop").send(());
    server
        .wait_until(WAIT, |s| l2_nodes(s) == [other.to_string()] && bgp_statuses(s).len() == 1)
        .await
        .unwrap_or_else(|_| panic!("{other} took over alone, got {:?} {:?}", l2_nodes(&server), bgp_statuses(&server)));

    // The endpoints go away: every announcement is withdrawn.
    server.seed(&endpoints(&[])).expect("no endpoints");
    server
        .wait_until(WAIT, |s| l2_nodes(s).is_empty() && bgp_statuses(s).is_empty())
        .await
        .unwrap_or_else(|_| panic!("withdrawn, got {:?} {:?}", l2_nodes(&server), bgp_statuses(&server)));
    // And come back: announced again, the same nodeAssigned counted on the first.
    server.seed(&endpoints(&["node-a", "node-b"])).expect("endpoints");
    server
        .wait_until(WAIT, |s| {
            s.list::<k8s_openapi::api::events::v1::Event>()
                .unwrap_or_default()
                .iter()
                .any(|e| e.reason.as_deref() == Some("nodeAssigned") && e.series.as_ref().is_some_and(|s| s.count >= 2))
        })
        .await
        .expect("nodeAssigned again, as a repeat");
    a.abort();
    b.abort();
    // Every request the speakers made is granted by their RBAC (deploy/rbac.yaml).
    let refused: Vec<_> = server
        .accesses()
        .into_iter()
        .filter(|a| {
            !lb_k8s::rbac::SPEAKER.allows(&a.verb, &a.group, &a.resource, a.namespace.as_deref(), a.name.as_deref(), NS)
        })
        .collect();
    assert!(refused.is_empty(), "not granted to the speaker: {refused:#?}");
    let accesses = server.accesses();
    let unused =
        lb_k8s::rbac::SPEAKER.unused(accesses.iter().map(|a| (a.verb.as_str(), a.group.as_str(), a.resource.as_str())));
    assert!(unused.is_empty(), "granted to the speaker and never used: {unused:?}");
}
