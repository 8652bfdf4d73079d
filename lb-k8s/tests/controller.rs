//! `lb controller` against the fake API server, through kube's real
//! client: what ends in the server's store is asserted.

use std::time::Duration;

use fake_apiserver::{FakeApiServer, ResourceKind};
use k8s_openapi::api::core::v1::Service;
use lb_k8s::roles::controller::{self, ControllerOptions, Progress};
use serde_json::json;
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(10);

async fn server() -> FakeApiServer {
    let server = FakeApiServer::start().await.expect("fake API server");
    for (version, kind, plural) in
        controller::CONFIG_KINDS.iter().copied().chain([("v1beta1", "ConfigurationState", "configurationstates")])
    {
        server.register(ResourceKind::namespaced("metallb.io", version, kind, plural).with_status());
    }
    server
        .seed(&json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "default", "namespace": "metallb-system"},
            "spec": {"addresses": ["192.0.2.0/30"]}
        }))
        .expect("pool");
    server
}

fn service(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ipFamilies": ["IPv4"],
                 "ports": [{"port": 80, "protocol": "TCP"}]}
    })
}

/// Starts a controller; returns its progress and its task.
fn start(server: &FakeApiServer, writer: &str) -> (watch::Receiver<Progress>, tokio::task::JoinHandle<()>) {
    let client = server.client_as(writer).expect("client");
    let (tx, rx) = watch::channel(Progress::default());
    let options = ControllerOptions {
        namespace: "metallb-system".into(),
        load_balancer_class: None,
        memberlist_secret: Some("memberlist".into()),
    };
    let task = tokio::spawn(async move {
        let _ = controller::run(client, options, tx).await;
    });
    (rx, task)
}

/// Every request the controller made is granted by its RBAC (deploy/rbac.yaml).
fn assert_granted(server: &FakeApiServer) {
    let refused: Vec<_> = server
        .accesses()
        .into_iter()
        .filter(|a| {
            !lb_k8s::rbac::CONTROLLER.allows(
                &a.verb,
                &a.group,
                &a.resource,
                a.namespace.as_deref(),
                a.name.as_deref(),
                "metallb-system",
            )
        })
        .collect();
    assert!(refused.is_empty(), "not granted to the controller: {refused:#?}");
}

/// The controller's ConfigurationState as stored (null when there is none).
fn configuration_state(server: &FakeApiServer) -> serde_json::Value {
    server.with_store(|store| {
        let kind = store.registry().by_kind("metallb.io/v1beta1", "ConfigurationState").cloned();
        kind.and_then(|k| store.get(&k, "metallb-system", "controller").cloned()).unwrap_or_default()
    })
}

fn pool_annotation(svc: &Service) -> Option<&str> {
    svc.metadata.annotations.as_ref().and_then(|a| a.get("metallb.io/ip-allocated-from-pool")).map(String::as_str)
}

fn ingress(svc: &Service) -> Vec<String> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|i| i.iter().filter_map(|e| e.ip.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_new_service_gets_an_ip_its_annotation_and_metallbs_event_and_a_restart_writes_nothing() {
    let server = server().await;
    server.seed(&service("web")).expect("service");
    let mut foreign = service("foreign");
    foreign["spec"]["loadBalancerClass"] = json!("someone.else/lb");
    server.seed(&foreign).expect("service");
    // As the manifests ship it: no key yet.
    server
        .seed(&json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "memberlist", "namespace": "metallb-system"}}))
        .expect("memberlist Secret");
    let (mut progress, task) = start(&server, "controller-1");
    let svc = server
        .wait_for::<Service>("shop", "web", WAIT, |s| {
            s.as_ref().is_some_and(|s| !ingress(s).is_empty() && pool_annotation(s).is_some())
        })
        .await
        .expect("status and annotation written");
    let svc = svc.expect("service");
    assert_eq!(ingress(&svc), ["192.0.2.0"]);
    assert_eq!(pool_annotation(&svc), Some("default"));
    server
        .wait_until(WAIT, |s| {
            s.list::<k8s_openapi::api::events::v1::Event>().unwrap_or_default().iter().any(|e| {
                e.reason.as_deref() == Some("IPAllocated")
                    && e.note.as_deref() == Some("Assigned IP [\"192.0.2.0\"]")
                    && e.reporting_controller.as_deref() == Some("metallb-controller")
            })
        })
        .await
        .expect("IPAllocated Event");
    progress.wait_for(|p| p.passes > 0).await.expect("a pass");
    // The pool's counts: one of four IPv4 addresses in use.
    server
        .wait_until(WAIT, |s| {
            s.with_store(|store| {
                let kind = store.registry().by_kind("metallb.io/v1beta1", "IPAddressPool").cloned();
                kind.and_then(|k| store.get(&k, "metallb-system", "default").cloned()).is_some_and(|p| {
                    p["status"] == json!({"assignedIPv4": 1, "assignedIPv6": 0, "availableIPv4": 3, "availableIPv6": 0})
                })
            })
        })
        .await
        .expect("pool status counts");
    let key = server
        .wait_for::<k8s_openapi::api::core::v1::Secret>("metallb-system", "memberlist", WAIT, |s| {
            s.and_then(|s| s.data.as_ref()).is_some_and(|d| d.contains_key("secretkey"))
        })
        .await
        .expect("a gossip key")
        .and_then(|s| s.data)
        .and_then(|mut d| d.remove("secretkey"))
        .expect("secretkey");
    assert_eq!(key.0.len(), 44, "32 random bytes, base64");
    let foreign = server.get::<Service>("shop", "foreign").expect("get").expect("foreign");
    assert!(ingress(&foreign).is_empty(), "another class is not ours");
    task.abort();

    // A restart: every Service is already right, nothing is written.
    server.clear_writes();
    let (mut progress, task) = start(&server, "controller-2");
    progress.wait_for(|p| p.passes > 0).await.expect("a pass");
    let writes: Vec<String> = server.writes().iter().map(|w| format!("{} {}", w.method, w.path)).collect();
    assert!(writes.is_empty(), "a restart wrote {writes:?}");
    task.abort();
    assert_granted(&server);
}

#[tokio::test]
async fn a_service_that_stops_being_a_load_balancer_is_cleared_and_its_ip_reused() {
    let server = server().await;
    for name in ["a", "b", "c", "d"] {
        server.seed(&service(name)).expect("service");
    }
    let (_progress, task) = start(&server, "controller");
    server
        .wait_for::<Service>("shop", "d", WAIT, |s| s.as_ref().is_some_and(|s| !ingress(s).is_empty()))
        .await
        .expect("the pool's four addresses given out");
    // The pool is full: a fifth Service waits.
    server.seed(&service("e")).expect("service");
    server
        .wait_until(WAIT, |s| {
            s.list::<k8s_openapi::api::events::v1::Event>().unwrap_or_default().iter().any(|e| {
                e.reason.as_deref() == Some("AllocationFailed")
                    && e.note.as_deref().is_some_and(|n| n.starts_with("Failed to allocate IP for \"shop/e\": "))
            })
        })
        .await
        .expect("AllocationFailed Event");
    // `a` becomes a ClusterIP Service: cleared, and `e` gets its address.
    let mut a: serde_json::Value =
        serde_json::to_value(server.get::<Service>("shop", "a").expect("get").expect("a")).expect("json");
    let freed = a["status"]["loadBalancer"]["ingress"][0]["ip"].as_str().expect("ip").to_string();
    a["spec"]["type"] = json!("ClusterIP");
    server.seed(&a).expect("update");
    let e = server
        .wait_for::<Service>("shop", "e", WAIT, |s| s.as_ref().is_some_and(|s| !ingress(s).is_empty()))
        .await
        .expect("e gets the freed address")
        .expect("e");
    assert_eq!(ingress(&e), [freed]);
    let a = server
        .wait_for::<Service>("shop", "a", WAIT, |s| {
            s.as_ref().is_some_and(|s| ingress(s).is_empty() && pool_annotation(s).is_none())
        })
        .await
        .expect("a cleared: status and annotation")
        .expect("a");
    assert_eq!(a.spec.and_then(|s| s.type_).as_deref(), Some("ClusterIP"));
    task.abort();
    assert_granted(&server);
}

#[tokio::test]
async fn an_invalid_configuration_changes_nothing_and_says_so() {
    let server = server().await;
    server.seed(&service("web")).expect("service");
    let (mut progress, task) = start(&server, "controller");
    server
        .wait_for::<Service>("shop", "web", WAIT, |s| {
            s.as_ref().is_some_and(|s| !ingress(s).is_empty() && pool_annotation(s).is_some())
        })
        .await
        .expect("an IP and its pool");
    let state = configuration_state;
    server.wait_until(WAIT, |s| state(s)["status"]["result"] == "Valid").await.expect("Valid");

    // A typo in the pool: refused, reported, and the Service keeps its IP.
    let passes = progress.borrow().passes;
    server.clear_writes();
    server
        .seed(&json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "default", "namespace": "metallb-system"},
            "spec": {"addresses": ["192.0.2.300/30"]}
        }))
        .expect("bad pool");
    server
        .wait_until(WAIT, |s| {
            let st = state(s);
            st["status"]["result"] == "Invalid"
                && st["status"]["errorSummary"].as_str().is_some_and(|e| e.contains("IPAddressPool/default"))
        })
        .await
        .expect("Invalid, naming the pool");
    server
        .wait_until(WAIT, |s| {
            s.list::<k8s_openapi::api::events::v1::Event>().unwrap_or_default().iter().any(|e| {
                e.reason.as_deref() == Some("InvalidConfiguration")
                    && e.type_.as_deref() == Some("Warning")
                    && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("IPAddressPool")
            })
        })
        .await
        .expect("a Warning Event on the pool");
    progress.wait_for(|p| p.passes > passes).await.expect("a pass");
    let svc = server.get::<Service>("shop", "web").expect("get").expect("web");
    assert_eq!(ingress(&svc), ["192.0.2.0"], "no Service loses its IP because of a typo");
    let service_writes: Vec<String> =
        server.writes().iter().filter(|w| w.path.contains("/services/")).map(|w| w.path.clone()).collect();
    assert!(service_writes.is_empty(), "{service_writes:?}");
    task.abort();
    assert_granted(&server);
}

/// A replica: its controller and its lease task.
struct Replica {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    leader: watch::Receiver<bool>,
}

fn replica(server: &FakeApiServer, name: &str) -> Replica {
    use lb_core::lease::LeaseTiming;
    let client = server.client_as(name).expect("client");
    let (leader_tx, leader) = watch::channel(false);
    let timing = LeaseTiming {
        duration: Duration::from_secs(2),
        renew_every: Duration::from_millis(200),
        margin: Duration::from_millis(500),
    };
    let (lease_client, id) = (client.clone(), name.to_string());
    let lease = tokio::spawn(async move {
        lb_k8s::drivers::lease::run(lease_client, "metallb-system", "lb-controller", &id, timing, leader_tx).await;
    });
    let (progress, _) = watch::channel(Progress::default());
    let options = ControllerOptions {
        namespace: "metallb-system".into(),
        load_balancer_class: None,
        memberlist_secret: Some("memberlist".into()),
    };
    let rx = leader.clone();
    let (published, _) = watch::channel(std::sync::Arc::new(lb_k8s::view::Snapshot::default()));
    let controller = tokio::spawn(async move {
        let _ = controller::run_led(client, options, progress, rx, published).await;
    });
    Replica { tasks: vec![lease, controller], leader }
}

#[tokio::test]
async fn two_replicas_one_writer_and_the_standby_takes_over() {
    let server = server().await;
    server.seed(&service("a")).expect("service");
    let one = replica(&server, "one");
    // The second starts once the first leads: out of step with its renewals,
    // so a candidate that did not wait its turn would take the Lease.
    one.leader.clone().wait_for(|l| *l).await.expect("one leads");
    let two = replica(&server, "two");
    server
        .wait_for::<Service>("shop", "a", WAIT, |s| {
            s.as_ref().is_some_and(|s| !ingress(s).is_empty() && pool_annotation(s).is_some())
        })
        .await
        .expect("a served");
    // Several renewals: the holder never changes while it lives.
    let lease_writes = |s: &FakeApiServer| -> Vec<String> {
        s.writes()
            .into_iter()
            .filter(|w| w.path.contains("/leases") && w.status < 300)
            .filter_map(|w| w.body?.pointer("/spec/holderIdentity")?.as_str().map(String::from))
            .collect()
    };
    server.wait_until(WAIT, |s| lease_writes(s).len() >= 10).await.expect("renewals");
    let holders = lease_writes(&server);
    assert!(holders.windows(2).all(|w| w[0] == w[1]), "the Lease changed hands: {holders:?}");
    let leads = [*one.leader.borrow(), *two.leader.borrow()];
    assert_eq!(leads.iter().filter(|l| **l).count(), 1, "exactly one leader: {leads:?}");
    let (leader, standby, standby_name) = if leads[0] { (one, two, "two") } else { (two, one, "one") };
    for t in &leader.tasks {
        t.abort();
    }
    let killed = std::time::Instant::now();
    server.seed(&service("b")).expect("service");
    server
        .wait_for::<Service>("shop", "b", Duration::from_secs(20), |s| {
            s.as_ref().is_some_and(|s| !ingress(s).is_empty())
        })
        .await
        .expect("the standby serves b");
    println!("standby took over and served a new Service {:?} after the leader died", killed.elapsed());
    assert!(*standby.leader.borrow());
    // Never two writers: the Service and Event writes of each replica come
    // in one run, the standby's after the leader's last.
    let writes: Vec<(u64, String)> = server
        .writes()
        .into_iter()
        .filter(|w| !w.path.contains("/leases"))
        .map(|w| (w.seq, w.writer.unwrap_or_default()))
        .collect();
    let first_standby = writes.iter().find(|(_, w)| w == standby_name).map(|(s, _)| *s).expect("standby wrote");
    assert!(writes.iter().all(|(seq, w)| w == standby_name || *seq < first_standby), "interleaved writers: {writes:?}");
    for t in &standby.tasks {
        t.abort();
    }
    assert_granted(&server);
}

#[tokio::test]
async fn dropped_watches_and_expired_versions_converge_anyway() {
    let server = server().await;
    server.seed(&service("a")).expect("service");
    let (_progress, task) = start(&server, "controller");
    server
        .wait_for::<Service>("shop", "a", WAIT, |s| s.as_ref().is_some_and(|s| !ingress(s).is_empty()))
        .await
        .expect("a served");
    // Watches cut, then history gone (410 on resume): the watchers relist.
    server.faults().drop_watches();
    server.seed(&service("b")).expect("service");
    server.faults().expire_history();
    server.seed(&service("c")).expect("service");
    for name in ["b", "c"] {
        server
            .wait_for::<Service>("shop", name, WAIT, |s| {
                s.as_ref().is_some_and(|s| !ingress(s).is_empty() && pool_annotation(s).is_some())
            })
            .await
            .unwrap_or_else(|e| panic!("{name} served after the faults: {e:?}"));
    }
    // Three Services, three distinct addresses.
    let mut ips: Vec<String> = ["a", "b", "c"]
        .iter()
        .flat_map(|n| ingress(&server.get::<Service>("shop", n).expect("get").expect("svc")))
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 3, "{ips:?}");
    task.abort();
    assert_granted(&server);
}

fn service6(name: &str, ip: Option<&str>) -> serde_json::Value {
    let mut s = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"type": "LoadBalancer", "clusterIP": "fd00::1", "clusterIPs": ["fd00::1"], "ipFamilies": ["IPv6"],
                 "ports": [{"port": 80, "protocol": "TCP"}]}
    });
    if let Some(ip) = ip {
        s["status"] = json!({"loadBalancer": {"ingress": [{"ip": ip}]}});
        s["metadata"]["annotations"] = json!({"metallb.io/ip-allocated-from-pool": "big"});
    }
    s
}

/// A restart with 10,000 Services in a pool of 10,000 addresses, 9,995 of
/// them assigned by an earlier run and 10 new ones competing for the 5
/// free addresses (named so that they are listed first): every assigned
/// Service keeps its address and is not written to; 5 newcomers get the
/// free addresses, 5 are told the pool is full.
#[tokio::test]
async fn a_restart_with_ten_thousand_services_moves_none_and_writes_only_for_newcomers() {
    let server = server().await;
    server
        .seed(&json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "big", "namespace": "metallb-system"},
            "spec": {"addresses": ["2001:db8::1-2001:db8::2710"]}
        }))
        .expect("pool");
    // 9,995 assigned: every address but five spread through the range.
    let free: Vec<u32> = vec![1, 2000, 4000, 6000, 10_000];
    let mut assigned = std::collections::BTreeMap::new();
    for n in (1..=10_000u32).filter(|n| !free.contains(n)) {
        let (name, ip) = (format!("svc-{n:05}"), format!("2001:db8::{n:x}"));
        server.seed(&service6(&name, Some(&ip))).expect("service");
        assigned.insert(name, ip);
    }
    for n in 0..10 {
        server.seed(&service6(&format!("a-new-{n}"), None)).expect("service");
    }
    server.clear_writes();
    let (mut progress, task) = start(&server, "controller");
    progress.wait_for(|p| p.passes > 0).await.expect("a pass");
    let services = server.list::<Service>().expect("list");
    let mut moved = Vec::new();
    let mut newcomers = Vec::new();
    for s in &services {
        let name = s.metadata.name.clone().unwrap_or_default();
        match assigned.get(&name) {
            Some(ip) if ingress(s) != [ip.clone()] => moved.push(name),
            Some(_) => {}
            None => newcomers.extend(ingress(s)),
        }
    }
    assert!(moved.is_empty(), "moved: {moved:?}");
    newcomers.sort();
    let mut expected: Vec<String> = free.iter().map(|n| format!("2001:db8::{n:x}")).collect();
    expected.sort();
    assert_eq!(newcomers, expected, "the newcomers get exactly the free addresses");
    let touched: Vec<String> = server.writes().into_iter().map(|w| w.path).filter(|p| p.contains("svc-")).collect();
    assert!(touched.is_empty(), "assigned Services written to: {:?}", &touched[..touched.len().min(5)]);
    let full = server
        .list::<k8s_openapi::api::events::v1::Event>()
        .unwrap_or_default()
        .iter()
        .filter(|e| e.reason.as_deref() == Some("AllocationFailed"))
        .count();
    assert_eq!(full, 5, "five newcomers told the pool is full");
    task.abort();
    assert_granted(&server);
}

/// A pool removed from the configuration: its Services are cleared and
/// get addresses from the pool that remains; the others are not touched.
#[tokio::test]
async fn removing_a_pool_reallocates_only_its_services() {
    let server = server().await;
    server
        .seed(&json!({
            "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "extra", "namespace": "metallb-system"},
            "spec": {"addresses": ["203.0.113.0/30"], "autoAssign": false}
        }))
        .expect("pool");
    for name in ["a", "b"] {
        server.seed(&service(name)).expect("service");
    }
    for name in ["x", "y"] {
        let mut s = service(name);
        s["metadata"]["annotations"] = json!({"metallb.io/address-pool": "extra"});
        server.seed(&s).expect("service");
    }
    let (_progress, task) = start(&server, "controller");
    for name in ["a", "b", "x", "y"] {
        server
            .wait_for::<Service>("shop", name, WAIT, |s| {
                s.as_ref().is_some_and(|s| !ingress(s).is_empty() && pool_annotation(s).is_some())
            })
            .await
            .expect("assigned");
    }
    let before: Vec<Vec<String>> =
        ["a", "b"].iter().map(|n| ingress(&server.get::<Service>("shop", n).expect("get").expect("svc"))).collect();
    // x and y no longer ask for a pool, and the pool goes.
    for name in ["x", "y"] {
        server.seed(&service(name)).expect("service");
    }
    server.clear_writes();
    let kind =
        server.with_store(|s| s.registry().by_kind("metallb.io/v1beta1", "IPAddressPool").cloned()).expect("kind");
    server.with_store(|s| s.remove_object(&kind, "metallb-system", "extra")).expect("remove pool");
    for name in ["x", "y"] {
        server
            .wait_for::<Service>("shop", name, WAIT, |s| {
                s.as_ref().is_some_and(|s| ingress(s).first().is_some_and(|ip| ip.starts_with("192.0.2.")))
                    && s.as_ref().is_some_and(|s| pool_annotation(s) == Some("default"))
            })
            .await
            .expect("reallocated from the remaining pool");
    }
    let after: Vec<Vec<String>> =
        ["a", "b"].iter().map(|n| ingress(&server.get::<Service>("shop", n).expect("get").expect("svc"))).collect();
    assert_eq!(before, after);
    let touched: Vec<String> = server
        .writes()
        .into_iter()
        .map(|w| w.path)
        .filter(|p| p.contains("/services/a") || p.contains("/services/b"))
        .collect();
    assert!(touched.is_empty(), "unaffected Services written to: {touched:?}");
    task.abort();
    assert_granted(&server);
}

/// A status write the API server refuses (500) is tried again by itself:
/// no other change comes to start a pass.
#[tokio::test]
async fn a_failed_status_write_is_retried_without_another_change() {
    let server = server().await;
    let (mut progress, task) = start(&server, "controller");
    progress.wait_for(|p| p.passes > 0).await.expect("first pass");
    server.faults().fail_next_matching(3, "/services/a/status", 500);
    server.seed(&service("a")).expect("service");
    server
        .wait_for::<Service>("shop", "a", WAIT, |s| {
            s.as_ref().is_some_and(|s| !ingress(s).is_empty() && pool_annotation(s).is_some())
        })
        .await
        .expect("a served after the refusals");
    let refused = server.writes().iter().filter(|w| w.path.contains("/services/a/status") && w.status >= 500).count();
    assert_eq!(refused, 3, "every refusal seen");
    task.abort();
}

/// Every grant of `deploy/rbac.yaml` for the controller is used, in one
/// life of two replicas: nothing more is granted than the code needs.
#[tokio::test]
async fn the_controller_uses_every_grant_it_has() {
    let server = server().await;
    server
        .seed(&json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "memberlist", "namespace": "metallb-system"}}))
        .expect("memberlist Secret");
    server.seed(&service("web")).expect("service");
    let one = replica(&server, "one");
    let two = replica(&server, "two");
    server
        .wait_for::<Service>("shop", "web", WAIT, |s| {
            s.as_ref().is_some_and(|s| !ingress(s).is_empty() && pool_annotation(s).is_some())
        })
        .await
        .expect("web served");
    // The same typo twice: its Warning Event is created, then counted.
    let pool = |addresses: &str| {
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "default", "namespace": "metallb-system"},
            "spec": {"addresses": [addresses]}})
    };
    let invalid = |s: &FakeApiServer| {
        s.list::<k8s_openapi::api::events::v1::Event>()
            .unwrap_or_default()
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("InvalidConfiguration"))
            .map(|e| e.series.map_or(1, |s| s.count))
    };
    for (round, count) in [(1, 1), (2, 2)] {
        server.seed(&pool("192.0.2.300/30")).expect("bad pool");
        server.wait_until(WAIT, |s| invalid(s) == Some(count)).await.unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        server.seed(&pool("192.0.2.0/30")).expect("good pool");
        server.wait_until(WAIT, |s| configuration_state(s)["status"]["result"] == "Valid").await.expect("valid again");
    }
    server
        .wait_until(WAIT, |s| {
            let kind = s.with_store(|store| store.registry().by_kind("metallb.io/v1beta1", "IPAddressPool").cloned());
            kind.and_then(|k| s.with_store(|store| store.get(&k, "metallb-system", "default").cloned()))
                .is_some_and(|p| p["status"]["assignedIPv4"] == 1)
        })
        .await
        .expect("pool counts");
    // The leader renews its Lease.
    server
        .wait_until(WAIT, |s| s.accesses().iter().any(|a| a.resource == "leases" && a.verb == "update"))
        .await
        .expect("a renewal");
    for t in one.tasks.iter().chain(&two.tasks) {
        t.abort();
    }
    assert_granted(&server);
    let accesses = server.accesses();
    let unused = lb_k8s::rbac::CONTROLLER
        .unused(accesses.iter().map(|a| (a.verb.as_str(), a.group.as_str(), a.resource.as_str())));
    assert!(unused.is_empty(), "granted to the controller and never used: {unused:?}");
}

/// The ConfigurationState's write refused (500): reported again by itself,
/// with no other change to the configuration.
#[tokio::test]
async fn a_refused_configuration_state_is_written_again() {
    let server = server().await;
    server.faults().fail_next_matching(2, "/configurationstates/controller/status", 500);
    let (_progress, task) = start(&server, "controller");
    server
        .wait_until(WAIT, |s| configuration_state(s)["status"]["result"] == "Valid")
        .await
        .expect("Valid after the refusals");
    let refused = server.writes().iter().filter(|w| w.path.contains("configurationstates") && w.status >= 500).count();
    assert_eq!(refused, 2);
    task.abort();
}

/// The status written and the annotation refused: the annotation is
/// written again later, and `IPAllocated`, which says what the status
/// write did, is recorded once the status is written.
#[tokio::test]
async fn a_refused_annotation_does_not_lose_the_ip_allocated_event() {
    let server = server().await;
    server.faults().fail_next_matching(1, "/services/a?", 500);
    server.seed(&service("a")).expect("service");
    let (_progress, task) = start(&server, "controller");
    server
        .wait_for::<Service>("shop", "a", WAIT, |s| {
            s.as_ref().is_some_and(|s| !ingress(s).is_empty() && pool_annotation(s).is_some())
        })
        .await
        .expect("a served after the refusal");
    let refused = server.writes().iter().filter(|w| w.path.contains("/services/a?") && w.status >= 500).count();
    assert_eq!(refused, 1);
    server
        .wait_until(WAIT, |s| {
            s.list::<k8s_openapi::api::events::v1::Event>().unwrap_or_default().iter().any(|e| {
                e.reason.as_deref() == Some("IPAllocated")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("a")
            })
        })
        .await
        .expect("IPAllocated for a");
    task.abort();
}
