//! `deploy/`: what `kubectl apply -k deploy/` creates is what the code
//! expects (RBAC generated from `lb_k8s::rbac`, the Pods' labels, env and
//! privileges), and the example configurations load.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

const NS: &str = "metallb-system";

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    lb_core::manifest::documents(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every object `kubectl apply -k deploy/` creates.
fn applied() -> Vec<Value> {
    let kustomization = documents(&deploy().join("kustomization.yaml")).remove(0);
    let resources = kustomization["resources"].as_array().expect("resources");
    resources.iter().flat_map(|r| documents(&deploy().join(r.as_str().expect("file name")))).collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/"))
}

/// `deploy/rbac.yaml` is what `lb_k8s::rbac` declares. When it is stale,
/// this fails; `LB_UPDATE_DEPLOY=1 cargo test -p lb-k8s --test deploy`
/// rewrites it (then review and commit the diff).
#[test]
fn rbac_is_generated_from_the_declared_grants() {
    let generated = lb_k8s::rbac::manifests(NS);
    let path = deploy().join("rbac.yaml");
    if std::env::var_os("LB_UPDATE_DEPLOY").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write deploy/rbac.yaml");
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "deploy/rbac.yaml is stale: run `LB_UPDATE_DEPLOY=1 cargo test -p lb-k8s --test deploy`"
    );
    // And it says what the declarations say, rule for rule.
    let objects = documents(&path);
    for perms in [lb_k8s::rbac::CONTROLLER, lb_k8s::rbac::SPEAKER] {
        let name = format!("lb-{}", perms.component);
        for (kind, grants) in [("ClusterRole", perms.cluster), ("Role", perms.namespace)] {
            let rules = find(&objects, kind, &name)["rules"].as_array().expect("rules").clone();
            assert_eq!(rules.len(), grants.len(), "{kind} {name}");
            for (rule, grant) in rules.iter().zip(grants) {
                let strings = |v: &Value| -> Vec<String> {
                    v.as_array()
                        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
                        .unwrap_or_default()
                };
                assert_eq!(strings(&rule["apiGroups"]), [grant.group]);
                assert_eq!(strings(&rule["resources"]), grant.resources);
                assert_eq!(strings(&rule["verbs"]), grant.verbs);
                assert_eq!(strings(&rule["resourceNames"]), grant.names);
            }
            let binding = find(&objects, &format!("{kind}Binding"), &name);
            assert_eq!(binding["roleRef"]["name"], name.as_str());
            assert_eq!(binding["subjects"][0]["name"], name.as_str());
        }
    }
}

#[test]
fn the_kustomization_creates_every_piece_in_one_namespace() {
    let objects = applied();
    let kinds: BTreeSet<String> = objects.iter().map(|o| o["kind"].as_str().unwrap_or_default().to_string()).collect();
    for kind in [
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "Role",
        "Secret",
        "Deployment",
        "DaemonSet",
    ] {
        assert!(kinds.contains(kind), "no {kind}: {kinds:?}");
    }
    for o in objects.iter().filter(|o| {
        !["Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"]
            .contains(&o["kind"].as_str().unwrap_or_default())
    }) {
        assert_eq!(o["metadata"]["namespace"], NS, "{} {}", o["kind"], o["metadata"]["name"]);
    }
    // The memberlist Secret names no key: the controller fills it in, and
    // applying again does not take it away.
    let secret = find(&objects, "Secret", "memberlist");
    assert!(secret.get("data").is_none() && secret.get("stringData").is_none());
}

fn container(workload: &Value) -> &Value {
    &workload["spec"]["template"]["spec"]["containers"][0]
}

fn env_field(container: &Value, name: &str) -> Option<String> {
    container["env"].as_array()?.iter().find(|e| e["name"] == name)?["valueFrom"]["fieldRef"]["fieldPath"]
        .as_str()
        .map(String::from)
}

#[test]
fn the_controller_runs_two_non_root_replicas_with_nothing_added() {
    let objects = applied();
    let deployment = find(&objects, "Deployment", "lb-controller");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "lb-controller");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = container(deployment);
    assert_eq!(c["args"][0], "controller");
    assert_eq!(env_field(c, "POD_NAME").as_deref(), Some("metadata.name"), "the Lease identity");
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(sc["capabilities"].get("add").is_none());
}

#[test]
fn the_speaker_runs_on_the_host_network_with_net_raw_and_net_admin_only() {
    let objects = applied();
    let daemonset = find(&objects, "DaemonSet", "lb-speaker");
    let pod = &daemonset["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["serviceAccountName"], "lb-speaker");
    let c = container(daemonset);
    assert_eq!(c["args"][0], "speaker");
    assert_eq!(env_field(c, "NODE_NAME").as_deref(), Some("spec.nodeName"));
    assert_eq!(env_field(c, "POD_NAME").as_deref(), Some("metadata.name"), "the owner of its status objects");
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let mut added: Vec<&str> =
        sc["capabilities"]["add"].as_array().expect("add").iter().filter_map(Value::as_str).collect();
    added.sort_unstable();
    assert_eq!(added, ["NET_ADMIN", "NET_RAW"]);
    // The Pods carry the labels the speakers find each other by (the
    // default --speaker-selector).
    let labels = &daemonset["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/name"], "lb");
    assert_eq!(labels["app.kubernetes.io/component"], "speaker");
    assert_eq!(container(find(&objects, "Deployment", "lb-controller"))["image"], c["image"], "one image");
}

#[test]
fn the_example_configurations_load() {
    for file in ["layer2.yaml", "bgp.yaml"] {
        let objects = documents(&deploy().join("examples").join(file));
        let loaded = lb_k8s::crds::load(&objects).unwrap_or_else(|e| panic!("{file}: {e:?}"));
        assert_eq!(loaded.config.pools.len(), 1, "{file}");
    }
}
