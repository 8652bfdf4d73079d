//! The `metallb.io` CRDs: the checked-in YAML, their structure, their CEL
//! rules, and one configuration through both ways in.

use std::collections::BTreeSet;
use std::path::PathBuf;

use lb_k8s::crds;

fn deploy_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds.yaml")
}

/// `deploy/crds.yaml` is what the types generate. When it is stale, this
/// fails; `LB_UPDATE_CRDS=1 cargo test -p lb-k8s --test crds` rewrites it
/// (then review and commit the diff).
#[test]
fn deploy_crds_are_up_to_date() {
    let generated = crds::crds_yaml();
    let path = deploy_file();
    if std::env::var_os("LB_UPDATE_CRDS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write deploy/crds.yaml");
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "{} is stale: run `LB_UPDATE_CRDS=1 cargo test -p lb-k8s --test crds` and commit it",
        path.display()
    );
}

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::cel::{Validator, cel::Program};
use lb_k8s::crds::schema::{cel_rules, structural_problems};
use serde_json::{Value, json};

/// The YAML written is the CRDs generated: read back, it gives the same values.
#[test]
fn crds_yaml_reads_back_as_generated() {
    let docs = lb_core::manifest::documents(&crds::crds_yaml()).expect("valid YAML");
    let generated: Vec<Value> = crds::crds().iter().map(|c| serde_json::to_value(c).expect("json")).collect();
    assert_eq!(docs, generated);
}

fn crd(kind: &str) -> CustomResourceDefinition {
    crds::crds().into_iter().find(|c| c.spec.names.kind == kind).expect(kind)
}

fn schema(kind: &str, version: &str) -> Value {
    let crd = crd(kind);
    let v = crd.spec.versions.iter().find(|v| v.name == version).expect(version);
    serde_json::to_value(v.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()).expect("schema")).expect("json")
}

/// Each CRD is one an API server accepts: structural, group `metallb.io`,
/// namespaced, every version served, exactly one stored (v1beta2 for BGPPeer).
#[test]
fn crds_are_structural() {
    let all = crds::crds();
    assert_eq!(all.len(), 9);
    for crd in &all {
        let name = crd.metadata.name.clone().unwrap_or_default();
        assert_eq!(crd.spec.group, "metallb.io");
        assert_eq!(name, format!("{}.metallb.io", crd.spec.names.plural));
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.versions.iter().filter(|v| v.storage).count(), 1, "{name}");
        assert!(crd.spec.versions.iter().all(|v| v.served), "{name}");
        assert_eq!(structural_problems(crd), Vec::<String>::new(), "{name}");
    }
    let peers = crd("BGPPeer");
    let mut versions: Vec<(&str, bool)> = peers.spec.versions.iter().map(|v| (v.name.as_str(), v.storage)).collect();
    versions.sort();
    assert_eq!(versions, [("v1beta1", false), ("v1beta2", true)]);
}

/// The checker itself finds what a real API server refuses.
#[test]
fn structural_check_finds_problems() {
    let mut bad = crd("L2Advertisement");
    let mut schema = serde_json::to_value(&bad.spec.versions[0].schema).expect("json");
    let spec = schema.pointer_mut("/openAPIV3Schema/properties/spec/properties").expect("spec");
    spec["nodeSelectors"].as_object_mut().expect("object").remove("maxItems");
    spec["interfaces"].as_object_mut().expect("object").remove("type");
    spec["extra"] = json!({"$ref": "#/definitions/x"});
    bad.spec.versions[0].schema = serde_json::from_value(schema).expect("schema");
    let problems = structural_problems(&bad).join("\n");
    assert!(
        problems.contains(".spec.nodeSelectors[].matchExpressions[]: CEL rules below lists without maxItems"),
        "{problems}"
    );
    assert!(problems.contains(".spec.interfaces: no type"), "{problems}");
    assert!(problems.contains(".spec.extra: $ref"), "{problems}");
}

/// Every CEL rule compiles, and its estimated cost is within the API
/// server's budget (kube-cel's estimate, with the lists' maxItems).
#[test]
fn cel_rules_compile() {
    let mut count = 0;
    for crd in crds::crds() {
        for (version, path, rule) in cel_rules(&crd) {
            count += 1;
            if let Err(e) = Program::compile(&rule) {
                panic!("{} {version} {path}: {rule}: {e}", crd.spec.names.kind);
            }
        }
        for version in &crd.spec.versions {
            let schema = serde_json::to_value(&version.schema).expect("json");
            let compiled = kube::core::cel::compile_schema(&schema["openAPIV3Schema"]);
            assert!(!compiled.has_errors(), "{}: {:?}", crd.spec.names.kind, compiled.compilation_errors());
        }
    }
    assert!(count >= 20, "only {count} rules");
}

fn cel(kind: &str, version: &str, object: &Value, old: Option<&Value>) -> Vec<String> {
    match Validator::new().validate(&schema(kind, version), object, old) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_vec().into_iter().map(|e| e.to_string()).collect(),
    }
}

fn object(api_version: &str, kind: &str, spec: Value) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x", "namespace": "metallb-system"}, "spec": spec})
}

/// lb-core's verdict on one object (beside a BFD profile and a pool, which peers and advertisements may name).
fn core_accepts(object: &Value) -> bool {
    let bfd =
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "BFDProfile", "metadata": {"name": "fast"}, "spec": {}});
    let pool = json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "p"}, "spec": {"addresses": ["192.0.2.0/24"]}});
    crds::load(&[bfd, pool, object.clone()]).is_ok()
}

/// CEL rules refuse what lb-core refuses and accept what it accepts: each
/// bad object breaks one rule, and lb-core says no to it too.
#[test]
fn cel_rules_judge_objects_as_lb_core_does() {
    let v2 = |spec: Value| object("metallb.io/v1beta2", "BGPPeer", spec);
    let good_peers = [
        json!({"myASN": 64500, "peerASN": 64501, "peerAddress": "192.0.2.1", "holdTime": "90s", "keepaliveTime": "30s"}),
        json!({"myASN": 64500, "dynamicASN": "external", "interface": "eth0", "ebgpMultiHop": true}),
        json!({"myASN": 64500, "peerASN": 64500, "peerAddress": "192.0.2.1", "password": "p", "passwordSecret": {}}),
        json!({"myASN": 64500, "peerASN": 64501, "peerAddress": "192.0.2.1", "holdTime": "0", "connectTime": "5s"}),
        json!({"myASN": 64500, "peerASN": 64501, "peerAddress": "192.0.2.1", "keepaliveTime": "10s", "bfdProfile": "fast"}),
    ];
    for spec in good_peers {
        let o = v2(spec);
        assert_eq!(cel("BGPPeer", "v1beta2", &o, None), Vec::<String>::new(), "{o}");
        assert!(core_accepts(&o), "lb-core refuses {o}");
    }
    let bad_peers = [
        (json!({"myASN": 1, "peerASN": 2}), "peerAddress and interface"),
        (
            json!({"myASN": 1, "peerASN": 2, "peerAddress": "192.0.2.1", "interface": "eth0"}),
            "peerAddress and interface",
        ),
        (json!({"myASN": 1, "peerAddress": "192.0.2.1"}), "peerASN and dynamicASN"),
        (
            json!({"myASN": 1, "peerASN": 2, "dynamicASN": "internal", "peerAddress": "192.0.2.1"}),
            "peerASN and dynamicASN",
        ),
        (
            json!({"myASN": 1, "peerASN": 2, "peerAddress": "192.0.2.1", "password": "p", "passwordSecret": {"name": "s"}}),
            "mutually exclusive",
        ),
        (
            json!({"myASN": 1, "peerASN": 2, "peerAddress": "192.0.2.1", "holdTime": "30s", "keepaliveTime": "31s"}),
            "must not exceed",
        ),
        (json!({"myASN": 1, "peerASN": 2, "peerAddress": "192.0.2.1", "holdTime": "2s"}), "holdTime must be"),
        (json!({"myASN": 1, "peerASN": 2, "peerAddress": "192.0.2.1", "holdTime": "65536s"}), "holdTime must be"),
        (json!({"myASN": 1, "peerASN": 2, "peerAddress": "192.0.2.1", "keepaliveTime": "500ms"}), "without holdTime"),
        (json!({"myASN": 1, "peerASN": 2, "peerAddress": "192.0.2.1", "connectTime": "500ms"}), "connectTime"),
        (json!({"myASN": 1, "peerASN": 1, "peerAddress": "192.0.2.1", "ebgpMultiHop": true}), "eBGP sessions only"),
        (
            json!({"myASN": 1, "localASN": 7, "peerASN": 7, "peerAddress": "192.0.2.1", "ebgpMultiHop": true}),
            "eBGP sessions only",
        ),
        (
            json!({"myASN": 1, "dynamicASN": "internal", "peerAddress": "192.0.2.1", "ebgpMultiHop": true}),
            "eBGP sessions only",
        ),
        (
            json!({"myASN": 1, "peerASN": 2, "peerAddress": "192.0.2.1", "nodeSelectors": [{"matchExpressions": [{"key": "k", "operator": "In"}]}]}),
            "In and NotIn need values",
        ),
        (
            json!({"myASN": 1, "peerASN": 2, "peerAddress": "192.0.2.1", "nodeSelectors": [{"matchExpressions": [{"key": "k", "operator": "Exists", "values": ["v"]}]}]}),
            "In and NotIn need values",
        ),
    ];
    for (spec, message) in bad_peers {
        let o = v2(spec);
        let errors = cel("BGPPeer", "v1beta2", &o, None);
        assert!(errors.iter().any(|e| e.contains(message)), "{o}: expected {message:?}, got {errors:?}");
        assert!(!core_accepts(&o), "lb-core accepts {o}");
    }

    let v1 = object(
        "metallb.io/v1beta1",
        "BGPPeer",
        json!({"myASN": 5, "peerASN": 5, "peerAddress": "192.0.2.1", "ebgpMultiHop": true}),
    );
    assert!(cel("BGPPeer", "v1beta1", &v1, None).iter().any(|e| e.contains("eBGP sessions only")));
    assert!(!core_accepts(&v1));

    let adv = |spec: Value| object("metallb.io/v1beta1", "BGPAdvertisement", spec);
    let good = adv(json!({"serviceSelectors": [{"matchLabels": {"a": "b"}}], "aggregationLength": 32}));
    assert_eq!(cel("BGPAdvertisement", "v1beta1", &good, None), Vec::<String>::new());
    assert!(core_accepts(&good));
    let bad = adv(json!({"serviceSelectors": [{"matchLabels": {"a": "b"}}], "aggregationLength": 24}));
    assert!(cel("BGPAdvertisement", "v1beta1", &bad, None).iter().any(|e| e.contains("with serviceSelectors")));
    assert!(!core_accepts(&bad));
}

/// Status objects keep their node and Service once written.
#[test]
fn status_identity_is_immutable() {
    let status = |node: &str| {
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "ServiceL2Status", "metadata": {"name": "x"},
        "status": {"node": node, "serviceName": "web", "serviceNamespace": "default"}})
    };
    assert!(cel("ServiceL2Status", "v1beta1", &status("a"), Some(&status("a"))).is_empty());
    assert!(!cel("ServiceL2Status", "v1beta1", &status("b"), Some(&status("a"))).is_empty());
    let bgp = |node: &str| {
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "ServiceBGPStatus", "metadata": {"name": "x"},
        "status": {"node": node, "serviceName": "web", "serviceNamespace": "default", "peers": ["r1"]}})
    };
    assert!(cel("ServiceBGPStatus", "v1beta1", &bgp("a"), Some(&bgp("a"))).is_empty());
    assert!(!cel("ServiceBGPStatus", "v1beta1", &bgp("b"), Some(&bgp("a"))).is_empty());
}

/// One configuration of every kind and form: pools of every form, L2 and
/// BGP advertisements with selectors, peers v1beta1 and v1beta2 (one with
/// `passwordSecret`), communities, BFD profiles. Together they set every
/// field of every spec (checked by `sample_sets_every_field`).
const SAMPLE: &str = include_str!("crds_sample.yaml");

/// What the API server adds to every object it returns.
fn as_served(mut object: Value) -> Value {
    let metadata = object["metadata"].as_object_mut().expect("metadata");
    metadata.entry("namespace").or_insert(json!("metallb-system"));
    metadata.insert("uid".into(), json!("7c6f2b9e-0000-4000-8000-000000000000"));
    metadata.insert("resourceVersion".into(), json!("4711"));
    metadata.insert("generation".into(), json!(1));
    metadata.insert("creationTimestamp".into(), json!("2026-12-02T17:00:00Z"));
    metadata.insert(
        "managedFields".into(),
        json!([{"manager": "kubectl", "operation": "Apply", "apiVersion": "metallb.io/v1beta1"}]),
    );
    object
}

/// A document through the typed object of its kind and version, as a
/// client reading the cluster would have it.
fn through_type(doc: &Value) -> Value {
    fn typed<K: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> Value {
        crds::to_object(&serde_json::from_value::<K>(doc.clone()).expect("the typed object reads it"))
    }
    use lb_k8s::crds::peers;
    match (doc["apiVersion"].as_str().unwrap_or(""), doc["kind"].as_str().unwrap_or("")) {
        ("metallb.io/v1beta1", "IPAddressPool") => typed::<crds::IpAddressPool>(doc),
        ("metallb.io/v1beta1", "L2Advertisement") => typed::<crds::L2Advertisement>(doc),
        ("metallb.io/v1beta1", "BGPAdvertisement") => typed::<crds::BgpAdvertisement>(doc),
        ("metallb.io/v1beta1", "BGPPeer") => typed::<peers::v1beta1::BgpPeer>(doc),
        ("metallb.io/v1beta2", "BGPPeer") => typed::<peers::v1beta2::BgpPeer>(doc),
        ("metallb.io/v1beta1", "Community") => typed::<crds::Community>(doc),
        ("metallb.io/v1beta1", "BFDProfile") => typed::<crds::BfdProfile>(doc),
        (v, k) => panic!("no type for {v} {k}"),
    }
}

/// One model, two ways in: the sample as files and the same objects from
/// the cluster (through the typed objects, with the API server's metadata)
/// give the same `Config`, with the same unchecked `passwordSecret`.
#[test]
fn cluster_and_files_give_the_same_config() {
    let from_files = lb_core::config::load(&[("sample.yaml", SAMPLE)]).expect("the sample is valid");
    let docs = lb_core::manifest::documents(SAMPLE).expect("YAML");
    let objects: Vec<Value> = docs.iter().map(|d| as_served(through_type(d))).collect();
    let from_cluster = crds::load(&objects).expect("the served objects are valid");
    let config = &from_files.config;
    assert_eq!(from_cluster.config, *config);
    assert_eq!(from_cluster.unchecked_secrets.len(), 1);
    assert_eq!(from_cluster.unchecked_secrets[0].secret, from_files.unchecked_secrets[0].secret);
    // The sample is not trivially equal: every kind is there.
    assert_eq!(config.pools.len(), 3);
    assert_eq!(config.l2_advertisements.len(), 1);
    assert_eq!(config.bgp_advertisements.len(), 2);
    assert_eq!(config.peers.len(), 3);
    assert_eq!(config.bfd_profiles.len(), 1);
    assert_eq!(config.communities.len(), 2);
}

/// Whether a path is a label selector: one shared type, whose own fields
/// the sample need not set in every list.
fn is_selector(path: &str) -> bool {
    path.ends_with("Selectors[]") || path.ends_with(".preference")
}

/// Field paths of a schema (`spec.nodeSelectors[]`), leaves and inner
/// nodes alike, down to label selectors.
fn schema_paths(node: &Value, path: &str, out: &mut BTreeSet<String>) {
    if is_selector(path) {
        return;
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            let p = format!("{path}.{name}");
            out.insert(p.clone());
            schema_paths(child, &p, out);
        }
    }
    if let Some(items) = node.get("items") {
        schema_paths(items, &format!("{path}[]"), out);
    }
}

/// Field paths of a value, as [`schema_paths`].
fn value_paths(value: &Value, path: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) if !is_selector(path) => {
            for (name, child) in map {
                let p = format!("{path}.{name}");
                out.insert(p.clone());
                value_paths(child, &p, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| value_paths(i, &format!("{path}[]"), out)),
        _ => {}
    }
}

/// The sample sets every field of every configuration kind's spec, and
/// nothing outside the schemas: the equality test above covers every field.
#[test]
fn sample_sets_every_field() {
    let docs = lb_core::manifest::documents(SAMPLE).expect("YAML");
    for crd in crds::crds() {
        let kind = crd.spec.names.kind.clone();
        if !lb_core::config::crd::KINDS.contains(&kind.as_str()) {
            continue;
        }
        for version in &crd.spec.versions {
            let api_version = format!("metallb.io/{}", version.name);
            let mut in_schema = BTreeSet::new();
            schema_paths(&schema(&kind, &version.name)["properties"]["spec"], "spec", &mut in_schema);
            let mut in_sample = BTreeSet::new();
            for doc in docs.iter().filter(|d| d["kind"] == kind.as_str() && d["apiVersion"] == api_version.as_str()) {
                value_paths(&doc["spec"], "spec", &mut in_sample);
            }
            let missing: Vec<_> = in_schema.difference(&in_sample).collect();
            let unknown: Vec<_> = in_sample.difference(&in_schema).collect();
            assert!(
                missing.is_empty() && unknown.is_empty(),
                "{api_version} {kind}: not in the sample {missing:?}, not in the schema {unknown:?}"
            );
        }
    }
}
