//! Standalone mode over files, without routers: assignments survive
//! reloads, invalid changes and restarts.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use lb_k8s::roles::standalone::{Options, Reloaded, Standalone};
use lb_k8s::sources::files::FileSources;

const CONFIG: &str =
    "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: pool}\nspec: {addresses: [192.0.2.0/29]}\n";

fn services(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("---\napiVersion: v1\nkind: Service\nmetadata: {{name: {n}, namespace: default}}\nspec: {{type: LoadBalancer}}\n"))
        .collect()
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("lb-standalone-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options(dir: &Dir, state: Option<&Path>) -> Options {
    Options {
        sources: FileSources {
            config: vec![dir.0.join("config.yaml")],
            services: vec![dir.0.join("services.yaml")],
            ..FileSources::default()
        },
        node: "n1".into(),
        load_balancer_class: None,
        state: state.map(Path::to_path_buf),
        bgp_listen: None,
        layer2: Default::default(),
    }
}

fn with_namespaces(mut options: Options, path: PathBuf) -> Options {
    options.sources.namespaces = vec![path];
    options
}

fn assignments(lb: &Standalone) -> BTreeMap<String, Vec<IpAddr>> {
    lb.snapshot().allocations.iter().map(|a| (a.service.to_string(), a.ips.clone())).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("IP")
}

#[tokio::test]
async fn reloads_keep_addresses_and_invalid_changes_change_nothing() {
    let dir = Dir::new("reload");
    dir.write("config.yaml", CONFIG);
    dir.write("services.yaml", &services(&["a", "b", "c"]));
    let mut lb = Standalone::new(options(&dir, None));
    assert_eq!(lb.reload().await, Reloaded::Done);
    let first = assignments(&lb);
    assert_eq!(first["default/c"], vec![ip("192.0.2.2")]);

    // A Service added first in the file, one removed: nobody else moves.
    dir.write("services.yaml", &services(&["new", "a", "c"]));
    assert_eq!(lb.reload().await, Reloaded::Done);
    let second = assignments(&lb);
    assert_eq!(second["default/a"], first["default/a"]);
    assert_eq!(second["default/c"], first["default/c"]);
    assert_eq!(second["default/new"], vec![ip("192.0.2.1")], "b's freed address");

    // An invalid configuration: refused, everything stays.
    dir.write("config.yaml", "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: pool}\nspec: {addresses: [192.0.2.9-192.0.2.1]}\n");
    assert_eq!(lb.reload().await, Reloaded::Refused);
    assert_eq!(assignments(&lb), second);
    assert!(lb.snapshot().config.stale);
    lb.shutdown().await;
}

#[tokio::test]
async fn a_restart_gives_every_service_its_address_back() {
    let dir = Dir::new("restart");
    let state = dir.0.join("state.json");
    dir.write("config.yaml", CONFIG);
    dir.write("services.yaml", &services(&["a", "b", "c"]));
    let mut lb = Standalone::new(options(&dir, Some(&state)));
    assert_eq!(lb.reload().await, Reloaded::Done);
    let before = assignments(&lb);
    lb.shutdown().await;

    // While it was down, the file was rewritten in another order with a
    // new Service first: without the state, `new` would take a's address.
    dir.write("services.yaml", &services(&["new", "c", "b", "a"]));
    let mut lb = Standalone::new(options(&dir, Some(&state)));
    assert_eq!(lb.reload().await, Reloaded::Done);
    let after = assignments(&lb);
    for key in ["default/a", "default/b", "default/c"] {
        assert_eq!(after[key], before[key], "{key} moved");
    }
    assert_eq!(after["default/new"], vec![ip("192.0.2.3")]);
    lb.shutdown().await;
}

#[tokio::test]
async fn a_peer_whose_secret_is_missing_makes_the_change_invalid() {
    let dir = Dir::new("secret");
    // The peer is a listener of the test's own, on loopback: nothing leaves the machine.
    let router = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = router.local_addr().expect("address").port();
    let peer = format!(
        "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: r1}}\nspec: {{myASN: 64500, peerASN: 64501, peerAddress: 127.0.0.1, peerPort: {port}, passwordSecret: {{name: bgp-key}}}}\n"
    );
    let secret = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: bgp-key, namespace: metallb-system}\ntype: kubernetes.io/basic-auth\ndata: {password: czNjcmV0}\n";
    dir.write("config.yaml", &format!("{CONFIG}{peer}{secret}"));
    dir.write("services.yaml", &services(&["a"]));
    let mut lb = Standalone::new(options(&dir, None));
    assert_eq!(lb.reload().await, Reloaded::Done);
    let peers = lb.speaker().peers().count();
    assert_eq!(peers, 1, "the Secret is found: the peer runs");

    // The Secret gone: refused as a whole, the session stays.
    dir.write("config.yaml", &format!("{CONFIG}{peer}"));
    assert_eq!(lb.reload().await, Reloaded::Done);
    let snapshot = lb.snapshot();
    let error = snapshot.config.last_error.clone().unwrap_or_default();
    assert!(snapshot.config.stale);
    assert!(error.contains("bgp-key"), "{error}");
    assert_eq!(lb.speaker().peers().count(), 1, "last good state in force");
    lb.shutdown().await;
}

#[tokio::test]
async fn namespace_labels_pick_pools_and_a_label_change_reallocates() {
    let dir = Dir::new("namespaces");
    let config = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: team-a}\nspec:\n  addresses: [192.0.2.0/29]\n  serviceAllocation: {namespaceSelectors: [{matchLabels: {team: a}}]}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: general}\nspec: {addresses: [198.51.100.0/29]}\n";
    dir.write("config.yaml", config);
    dir.write("services.yaml", &services(&["a"]));
    let ns = |team: &str| {
        format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: default, labels: {{team: {team}}}}}\n")
    };
    let namespaces = dir.write("namespaces.yaml", &ns("a"));
    let mut lb = Standalone::new(with_namespaces(options(&dir, None), namespaces));
    assert_eq!(lb.reload().await, Reloaded::Done);
    assert_eq!(assignments(&lb)["default/a"], vec![ip("192.0.2.0")], "the team's pool");

    dir.write("namespaces.yaml", &ns("b"));
    assert_eq!(lb.reload().await, Reloaded::Done);
    assert_eq!(assignments(&lb)["default/a"], vec![ip("198.51.100.0")], "no longer the team's: moved");
    lb.shutdown().await;
}

#[tokio::test]
async fn a_file_that_cannot_be_read_is_worth_retrying_and_an_invalid_one_is_not() {
    let dir = Dir::new("unreadable");
    dir.write("config.yaml", CONFIG);
    let mut lb = Standalone::new(options(&dir, None));
    // The services file is not there (yet): the read fails, the reload is retried.
    assert_eq!(lb.reload().await, Reloaded::Unreadable);
    assert!(lb.snapshot().config.stale);
    dir.write("services.yaml", &services(&["a"]));
    assert_eq!(lb.reload().await, Reloaded::Done);
    assert_eq!(assignments(&lb)["default/a"], vec![ip("192.0.2.0")]);
    // An invalid file is the operator's to fix: nothing to retry.
    dir.write(
        "config.yaml",
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: pool}\nspec: {addresses: [bad]}\n",
    );
    assert_eq!(lb.reload().await, Reloaded::Refused);
    lb.shutdown().await;
}

#[tokio::test]
async fn a_reload_given_up_for_a_stop_changes_nothing() {
    let dir = Dir::new("given-up");
    dir.write("config.yaml", CONFIG);
    dir.write("services.yaml", &services(&["a", "b"]));
    let mut lb = Standalone::new(options(&dir, None));
    assert_eq!(lb.reload().await, Reloaded::Done);
    let before = assignments(&lb);

    // A SIGTERM arrives while the files are being read: the reload stops
    // there, and what ran goes on unchanged until the shutdown.
    dir.write("services.yaml", &services(&["new", "b"]));
    assert_eq!(lb.reload_unless(std::future::ready(())).await, None);
    assert_eq!(assignments(&lb), before);
    assert_eq!(lb.snapshot().config.reloads, 1);

    // Had it not stopped, the change would have applied.
    assert_eq!(lb.reload().await, Reloaded::Done);
    assert!(assignments(&lb).contains_key("default/new"));
    lb.shutdown().await;
}

#[tokio::test]
async fn an_emptied_configuration_is_an_invalid_change_and_loses_nothing() {
    let dir = Dir::new("emptied");
    let state = dir.0.join("state.json");
    let router = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = router.local_addr().expect("address").port();
    let peer = format!(
        "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: r1}}\nspec: {{myASN: 64500, peerASN: 64501, peerAddress: 127.0.0.1, peerPort: {port}}}\n"
    );
    let config = format!("{CONFIG}{peer}");
    dir.write("config.yaml", &config);
    dir.write("services.yaml", &services(&["a", "b", "c"]));
    let mut lb = Standalone::new(options(&dir, Some(&state)));
    assert_eq!(lb.reload().await, Reloaded::Done);
    let before = assignments(&lb);
    let saved = std::fs::read_to_string(&state).expect("state");

    // Truncated to nothing, then to comments only: refused, nothing moves,
    // the session stays, the state file is not rewritten.
    for emptied in ["", "# being edited\n---\n"] {
        dir.write("config.yaml", emptied);
        assert_eq!(lb.reload().await, Reloaded::Refused);
        let snapshot = lb.snapshot();
        assert!(snapshot.config.stale);
        assert!(snapshot.config.last_error.as_deref().unwrap_or_default().contains("no MetalLB configuration"));
        assert_eq!(assignments(&lb), before);
        assert_eq!(lb.speaker().peers().count(), 1, "the session stays");
        assert_eq!(std::fs::read_to_string(&state).expect("state"), saved);
    }

    // The file back, with a Service added first: nobody moves.
    dir.write("config.yaml", &config);
    dir.write("services.yaml", &services(&["new", "a", "b", "c"]));
    assert_eq!(lb.reload().await, Reloaded::Done);
    let after = assignments(&lb);
    for key in ["default/a", "default/b", "default/c"] {
        assert_eq!(after[key], before[key], "{key} moved");
    }
    lb.shutdown().await;
}
