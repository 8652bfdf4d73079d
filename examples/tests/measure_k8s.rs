//! Kubernetes role measurements against the in-process fake API server
//! (ignored by default; `scripts/measure_k8s.sh` runs them in release and
//! the README quotes them). Each prints one result line (the controller
//! start a second: where its time goes); none asserts a
//! time. Everything talks over loopback only.
//!
//! - controller start: `SERVICES` (default 10,000) Services without
//!   status, from the controller's start to the last status written, next
//!   to the floor (the same statuses written by a bare loop of merge
//!   patches through kube's client); then a restart: to its first pass,
//!   and the writes it makes;
//! - controller memory: `lb controller` as a process on the same Services,
//!   its peak resident memory (VmHWM) when every status is written;
//! - Service to status: 100 Services created one at a time, each from its
//!   creation to its status, with `EXISTING` (default 0) Services already
//!   assigned;
//! - speaker memory: `lb speaker` as a process with `SERVICES` Services,
//!   as many EndpointSlices, 100 Nodes and one BGP peer where nothing
//!   listens, its VmHWM once every ServiceBGPStatus is written.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_apiserver::{FakeApiServer, ResourceKind};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams};
use lb_core::ServiceKey;
use lb_core::writeback::{AnnouncementStatus, Protocol};
use lb_k8s::crds::{IpAddressPool, ServiceBgpStatus};
use lb_k8s::roles::controller::{self, ControllerOptions, Progress};
use serde_json::{Value, json};
use tokio::sync::watch;

const NS: &str = "metallb-system";
/// Long enough for any of these runs on a slow machine; a wait that ends
/// here is a failure, not a figure.
const WAIT: Duration = Duration::from_secs(900);
/// Namespaces the Services are spread over.
const NAMESPACES: usize = 10;
/// The pool: 10.128.0.0/14, room for 262,144 Services.
const POOL: &str = "10.128.0.0/14";
const POOL_BASE: Ipv4Addr = Ipv4Addr::new(10, 128, 0, 0);

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn service_count() -> usize {
    env_or("SERVICES", 10_000)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A fake API server serving the `metallb.io` kinds both roles use. Its
/// history holds every change of a run, so no watch falls behind it and
/// relists (that would be the fake server's limit, not the role's cost).
async fn server() -> FakeApiServer {
    let server = FakeApiServer::builder().history(10_000_000).start().await.expect("fake API server");
    for (version, kind, plural) in controller::CONFIG_KINDS.iter().copied().chain([
        ("v1beta1", "ConfigurationState", "configurationstates"),
        ("v1beta1", "ServiceL2Status", "servicel2statuses"),
        ("v1beta1", "ServiceBGPStatus", "servicebgpstatuses"),
    ]) {
        server.register(ResourceKind::namespaced("metallb.io", version, kind, plural).with_status());
    }
    server
}

fn seed(server: &FakeApiServer, object: &Value) {
    server.seed(object).unwrap_or_else(|e| panic!("seed {object}: {e}"));
}

fn seed_pool(server: &FakeApiServer) {
    seed(
        server,
        &json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "default", "namespace": NS}, "spec": {"addresses": [POOL]}}),
    );
}

fn namespace_of(i: usize) -> String {
    format!("ns-{}", i % NAMESPACES)
}

fn name_of(i: usize) -> String {
    format!("svc-{i}")
}

/// The `i`-th address of the pool.
fn pool_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(POOL_BASE) + u32::try_from(i).expect("fits"))
}

/// Service `i` as `kubectl apply` leaves it: type LoadBalancer, a
/// ClusterIP of its own, a label and pod selector, and kubectl's
/// `last-applied-configuration` annotation (the applied object again, as
/// JSON); with `ip`, the status and pool annotation the controller would
/// have written.
fn service(i: usize, ip: Option<Ipv4Addr>) -> Value {
    let cluster_ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + u32::try_from(i).expect("fits"));
    let mut svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name_of(i), "namespace": namespace_of(i), "labels": {"app": name_of(i)}},
        "spec": {"type": "LoadBalancer", "selector": {"app": name_of(i)},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    });
    let applied = svc.to_string();
    svc["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/last-applied-configuration": applied});
    svc["spec"]["clusterIP"] = json!(cluster_ip.to_string());
    svc["spec"]["clusterIPs"] = json!([cluster_ip.to_string()]);
    svc["spec"]["ipFamilies"] = json!(["IPv4"]);
    if let Some(ip) = ip {
        svc["metadata"]["annotations"]["metallb.io/ip-allocated-from-pool"] = json!("default");
        svc["status"] = json!({"loadBalancer": {"ingress": [{"ip": ip.to_string()}]}});
    }
    svc
}

fn seed_services(server: &FakeApiServer, range: std::ops::Range<usize>, with_status: bool) {
    for i in 0..NAMESPACES {
        seed(server, &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace_of(i)}}));
    }
    for i in range {
        seed(server, &service(i, with_status.then(|| pool_ip(i))));
    }
}

fn has_ingress(svc: &Service) -> bool {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .is_some_and(|i| i.iter().any(|e| e.ip.is_some()))
}

/// Whether Services `*done..n` all have their status, moving `done` past
/// those that do: cheap enough to run at every change of a run.
fn statuses_written(server: &FakeApiServer, done: &mut usize, n: usize) -> bool {
    while *done < n {
        let written = server
            .get::<Service>(&namespace_of(*done), &name_of(*done))
            .ok()
            .flatten()
            .is_some_and(|s| has_ingress(&s));
        if !written {
            return false;
        }
        *done += 1;
    }
    true
}

/// An in-process controller on a runtime of its own (two workers, as
/// `lb controller` has): stopping it ends its watches too, so none is left
/// retrying against a server that has gone.
struct InProcess {
    runtime: Option<tokio::runtime::Runtime>,
    progress: watch::Receiver<Progress>,
}

impl InProcess {
    fn start(server: &FakeApiServer, writer: &str) -> Self {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let client = {
            let _inside = runtime.enter();
            server.client_as(writer).expect("client")
        };
        let (tx, progress) = watch::channel(Progress::default());
        let options = ControllerOptions {
            namespace: NS.into(),
            load_balancer_class: None,
            memberlist_secret: Some("memberlist".into()),
        };
        runtime.spawn(async move {
            let _ = controller::run(client, options, tx).await;
        });
        Self { runtime: Some(runtime), progress }
    }

    async fn first_pass(&mut self) {
        self.progress.wait_for(|p| p.passes > 0).await.expect("a first pass");
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: scripts/measure_k8s.sh"]
async fn controller_start_and_restart() {
    let n = service_count();

    // The floor: the same statuses, written one after another by kube's
    // client, with nothing else to do.
    let floor_server = server().await;
    seed_services(&floor_server, 0..n, false);
    let client = floor_server.client().expect("client");
    let started = Instant::now();
    for i in 0..n {
        let api: Api<Service> = Api::namespaced(client.clone(), &namespace_of(i));
        let patch = json!({"status": {"loadBalancer": {"ingress": [{"ip": pool_ip(i).to_string()}]}}});
        api.patch_status(&name_of(i), &PatchParams::default(), &Patch::Merge(&patch)).await.expect("status written");
    }
    let floor = started.elapsed();
    drop(floor_server);

    // The controller, from its start to the last status.
    let server = server().await;
    seed_pool(&server);
    seed_services(&server, 0..n, false);
    let started = Instant::now();
    let first = InProcess::start(&server, "controller-1");
    let mut done = 0;
    server.wait_until(WAIT, |s| statuses_written(s, &mut done, n)).await.expect("every status written");
    let start = started.elapsed();
    let writes_at_status = server.writes().len();
    let breakdown = write_breakdown(&server.writes(), started);
    // Its first pass is over when the pool's counts are written (last).
    server
        .wait_for::<IpAddressPool>(NS, "default", WAIT, |p| {
            p.and_then(|p| p.status.as_ref()).and_then(|s| s.assigned_ipv4) == Some(i64::try_from(n).expect("fits"))
        })
        .await
        .expect("pool counts written");
    let settled = started.elapsed();
    let first_writes = server.writes().len();

    // A restart: another writer, nothing it should write.
    drop(first);
    server.clear_writes();
    let restarted = Instant::now();
    let mut second = InProcess::start(&server, "controller-2");
    second.first_pass().await;
    let restart = restarted.elapsed();
    // Only the second controller's: requests the first sent before it was
    // stopped may still land.
    let restart_writes = server.writes().iter().filter(|w| w.writer.as_deref() == Some("controller-2")).count();
    drop(second);

    println!(
        "controller start, {n} Services: all statuses after {} (floor: {} for the status writes alone, ratio {:.2}); \
         {writes_at_status} writes by then, first pass over after {} with {first_writes} writes; \
         restart: first pass after {}, {restart_writes} writes",
        secs(start),
        secs(floor),
        start.as_secs_f64() / floor.as_secs_f64(),
        secs(settled),
        ms(restart),
    );
    println!("  where the start's time goes: {breakdown}");
}

/// The controller's writes by kind, the API server's time on them and the
/// time between the first and the last.
fn write_breakdown(writes: &[fake_apiserver::WriteRecord], started: Instant) -> String {
    let mut kinds: std::collections::BTreeMap<&str, (usize, Duration)> = Default::default();
    for w in writes {
        let kind = if w.path.contains("/services/") && w.path.contains("/status") {
            "Service status"
        } else if w.path.contains("/services/") {
            "Service annotation"
        } else if w.path.contains("/events") {
            "Event"
        } else {
            "other"
        };
        let entry = kinds.entry(kind).or_default();
        entry.0 += 1;
        entry.1 += w.finished - w.started;
    }
    let (Some(first), Some(last)) = (writes.first(), writes.last()) else { return "no writes".into() };
    let per_kind: Vec<String> = kinds
        .iter()
        .map(|(kind, (count, time))| {
            format!("{count} {kind} ({:.0} µs each in the server)", time.as_secs_f64() * 1e6 / *count as f64)
        })
        .collect();
    format!(
        "first write {} after start (listing and allocating), last {} later; {}",
        ms(first.started - started),
        secs(last.finished - first.started),
        per_kind.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: scripts/measure_k8s.sh"]
async fn service_created_to_status_written() {
    let existing = env_or("EXISTING", 0);
    let runs = env_or("RUNS", 100);
    let server = server().await;
    seed_pool(&server);
    seed_services(&server, 0..existing, true);
    let mut controller = InProcess::start(&server, "controller");
    controller.first_pass().await;
    let mut times = Vec::new();
    for i in existing..existing + runs {
        let started = Instant::now();
        seed(&server, &service(i, None));
        server
            .wait_for::<Service>(&namespace_of(i), &name_of(i), WAIT, |s| s.is_some_and(has_ingress))
            .await
            .expect("status written");
        times.push(started.elapsed());
    }
    drop(controller);
    times.sort();
    println!(
        "Service created to status written, {runs} Services one at a time, {existing} existing: \
         median {}, p90 {}, max {}",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        ms(times.last().copied().unwrap_or_default())
    );
}

/// `lb ARGS` as a process, finding the fake API server through a
/// kubeconfig; killed when dropped. Its log goes to `lb.log` in its directory.
struct Lb {
    child: Child,
    dir: PathBuf,
}

impl Lb {
    fn start(server: &FakeApiServer, name: &str, args: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("lb-measure-k8s-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let kubeconfig = dir.join("config");
        std::fs::write(&kubeconfig, server.kubeconfig()).expect("kubeconfig");
        let log = std::fs::File::create(dir.join("lb.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_lb"))
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .env("LB_LOG", "warn")
            .stdout(log)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("lb");
        Self { child, dir }
    }

    /// Peak and current resident memory, in KiB: VmHWM and VmRSS.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("/proc status");
        (proc_field(&status, "VmHWM:"), proc_field(&status, "VmRSS:"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("lb.log")).unwrap_or_default()
    }
}

impl Drop for Lb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn proc_field(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

fn listen_arg() -> String {
    format!("127.0.0.1:{}", free_port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: scripts/measure_k8s.sh"]
async fn controller_memory() {
    let n = service_count();
    let server = server().await;
    seed_pool(&server);
    seed_services(&server, 0..n, false);
    let started = Instant::now();
    let listen = listen_arg();
    let lb = Lb::start(&server, "controller", &["controller", "--no-leader-election", "--listen", &listen]);
    let mut done = 0;
    if server.wait_until(WAIT, |s| statuses_written(s, &mut done, n)).await.is_err() {
        panic!("{done} of {n} statuses written\n{}", lb.log());
    }
    let elapsed = started.elapsed();
    let (hwm, rss) = lb.memory();
    println!(
        "lb controller, {n} Services: peak memory (VmHWM) {} when every status is written ({} after start; VmRSS then {})",
        mib(hwm),
        secs(elapsed),
        mib(rss)
    );
}

/// The speaker's world: `n` Services with their IPs, one EndpointSlice each
/// (two ready endpoints, on two of the 100 Nodes), BGP to one peer on
/// loopback where nothing listens. No L2Advertisement: layer 2 would open
/// raw sockets on this host's interfaces.
fn seed_speaker_world(server: &FakeApiServer, n: usize, peer_port: u16) {
    seed_pool(server);
    seed(
        server,
        &json!({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
            "metadata": {"name": "bgp", "namespace": NS}, "spec": {"ipAddressPools": ["default"]}}),
    );
    seed(
        server,
        &json!({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
            "metadata": {"name": "tor", "namespace": NS},
            "spec": {"myASN": 64512, "peerASN": 64513, "peerAddress": "127.0.0.1", "peerPort": peer_port}}),
    );
    seed(
        server,
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "memberlist", "namespace": NS},
            "data": {"secretkey": "bWVhc3VyZS1rZXk="}}),
    );
    let nodes = 100;
    for i in 1..=nodes {
        seed(
            server,
            &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("node-{i}")},
                "status": {"addresses": [{"type": "InternalIP", "address": format!("10.200.0.{i}")}]}}),
        );
        seed(
            server,
            &json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("speaker-{i}"), "namespace": NS,
                    "labels": {"app.kubernetes.io/name": "lb", "app.kubernetes.io/component": "speaker"}},
                "spec": {"nodeName": format!("node-{i}"), "containers": [{"name": "speaker", "image": "lb"}]},
                "status": {"podIP": format!("10.200.0.{i}")}}),
        );
    }
    seed_services(server, 0..n, true);
    for i in 0..n {
        let endpoints: Vec<Value> = [i % nodes, (i + 37) % nodes]
            .iter()
            .enumerate()
            .map(|(k, node)| {
                json!({"addresses": [format!("10.{}.{}.{}", 1 + k, (i / 256) % 256, i % 256)],
                    "nodeName": format!("node-{}", node + 1), "conditions": {"ready": true}})
            })
            .collect();
        seed(
            server,
            &json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": format!("{}-abcde", name_of(i)), "namespace": namespace_of(i),
                    "labels": {"kubernetes.io/service-name": name_of(i)}},
                "addressType": "IPv4", "endpoints": endpoints,
                "ports": [{"port": 8080, "protocol": "TCP"}]}),
        );
    }
}

/// Whether the ServiceBGPStatus objects of `node` for Services `*done..n`
/// all name the peer, moving `done` past those that do.
fn bgp_statuses_written(server: &FakeApiServer, node: &str, names: &[String], done: &mut usize) -> bool {
    while let Some(name) = names.get(*done) {
        let written = server
            .get::<ServiceBgpStatus>(NS, name)
            .ok()
            .flatten()
            .and_then(|s| s.status)
            .is_some_and(|s| s.node.as_deref() == Some(node) && s.peers == ["tor"]);
        if !written {
            return false;
        }
        *done += 1;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: scripts/measure_k8s.sh"]
async fn speaker_memory() {
    let n = service_count();
    let server = server().await;
    seed_speaker_world(&server, n, free_port());
    let node = "node-1";
    let names: Vec<String> = (0..n)
        .map(|i| {
            AnnouncementStatus {
                service: ServiceKey::new(&namespace_of(i), &name_of(i)),
                protocol: Protocol::Bgp,
                interfaces: Vec::new(),
                peers: Vec::new(),
            }
            .object_name(node)
        })
        .collect();
    let started = Instant::now();
    let listen = listen_arg();
    let lb = Lb::start(&server, "speaker", &["speaker", "--node", node, "--listen", &listen]);
    let mut done = 0;
    if server.wait_until(WAIT, |s| bgp_statuses_written(s, node, &names, &mut done)).await.is_err() {
        panic!("{done} of {n} ServiceBGPStatus objects written\n{}", lb.log());
    }
    let elapsed = started.elapsed();
    let (hwm, rss) = lb.memory();
    // Its own writes come back through its watches after that: the peak
    // is read again once they have (a measurement may wait; VmHWM only grows).
    std::thread::sleep(Duration::from_secs(3));
    let (settled, settled_rss) = lb.memory();
    println!(
        "lb speaker, {n} Services, {n} EndpointSlices, 100 Nodes, one BGP peer: peak memory (VmHWM) {} \
         when every ServiceBGPStatus is written ({} after start; VmRSS then {}); 3 s later VmHWM {}, VmRSS {}",
        mib(hwm),
        secs(elapsed),
        mib(rss),
        mib(settled),
        mib(settled_rss)
    );
}
