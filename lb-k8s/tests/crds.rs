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

/// The YAML written is the CRDs generated: read back, it gives the same objects.
#[test]
fn crds_yaml_reads_back_as_generated() {
    let docs = lb_core::manifest::documents(&crds::crds_yaml()).expect("valid YAML");
    let read: Vec<CustomResourceDefinition> =
        docs.into_iter().map(|d| serde_json::from_value(d).expect("a CRD")).collect();
    assert_eq!(read, crds::crds());
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
        // MetalLB requires a spec of pools only: an L2Advertisement without
        // one announces every pool; ConfigurationState has none at all.
        for version in &crd.spec.versions {
            let schema = serde_json::to_value(&version.schema).expect("json");
            let root = &schema["openAPIV3Schema"];
            let required = root.get("required").cloned().unwrap_or(json!([]));
            let expected = if crd.spec.names.kind == "IPAddressPool" { json!(["spec"]) } else { json!([]) };
            assert_eq!(required, expected, "{name}");
            let has_spec = root["properties"].get("spec").is_some();
            assert_eq!(has_spec, crd.spec.names.kind != "ConfigurationState", "{name}");
        }
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
    schema["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"] =
        json!([{"rule": "self.ipAddressPools.all(p, p != '')"}]);
    bad.spec.versions[0].schema = serde_json::from_value(schema).expect("schema");
    let problems = structural_problems(&bad).join("\n");
    assert!(
        problems.contains(".spec.nodeSelectors[].matchExpressions[]: CEL rules below lists without maxItems"),
        "{problems}"
    );
    assert!(problems.contains(".spec.interfaces: no type"), "{problems}");
    assert!(problems.contains(".spec.extra: $ref"), "{problems}");
    assert!(problems.contains(".spec.ipAddressPools: iterated by a CEL rule without maxItems"), "{problems}");
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
            let mut warnings = Vec::new();
            analyze(&schema["openAPIV3Schema"], &mut warnings);
            assert_eq!(warnings, Vec::<String>::new(), "{}", crd.spec.names.kind);
        }
    }
    assert!(count >= 20, "only {count} rules");
}

/// kube-cel's static analysis of every rule where it stands: an estimated
/// cost within the API server's budget.
fn analyze(node: &Value, warnings: &mut Vec<String>) {
    use kube::core::cel::{ScopeContext, WarningKind, analyze_rule, compile_schema};
    if let Some(rules) = node.get("x-kubernetes-validations").and_then(Value::as_array) {
        let compiled = compile_schema(node);
        for rule in rules.iter().filter_map(|r| r["rule"].as_str()) {
            // kube-cel 0.8's scope check takes comprehension variables
            // (`x` of `self.f.all(x, ...)`) for unknown ones: cost only.
            let found = analyze_rule(rule, &compiled, ScopeContext::CrdValidation);
            warnings.extend(found.into_iter().filter(|w| w.kind != WarningKind::WrongScope).map(|w| w.message));
        }
    }
    for child in node.get("properties").and_then(Value::as_object).into_iter().flat_map(|p| p.values()) {
        analyze(child, warnings);
    }
    if let Some(items) = node.get("items") {
        analyze(items, warnings);
    }
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

/// What an API server's OpenAPI validation (not CEL) says of `value`:
/// types, `required`, unknown fields (as `kubectl`'s strict field
/// validation), `enum`, `minimum`/`maximum`, `minLength`/`maxLength`,
/// `pattern`, `minItems`/`maxItems`, and duplicates in `set` and `map` lists.
fn openapi_problems(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            out.push(format!("{path}: null"));
        }
        return;
    }
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("");
    let type_ok = match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        out.push(format!("{path}: not {ty}"));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        out.push(format!("{path}: not one of {allowed:?}"));
    }
    if let Some(n) = value.as_f64() {
        if schema.get("minimum").and_then(Value::as_f64).is_some_and(|min| n < min) {
            out.push(format!("{path}: below minimum"));
        }
        if schema.get("maximum").and_then(Value::as_f64).is_some_and(|max| n > max) {
            out.push(format!("{path}: above maximum"));
        }
    }
    if let Some(text) = value.as_str() {
        let len = text.chars().count() as u64;
        if schema.get("minLength").and_then(Value::as_u64).is_some_and(|min| len < min) {
            out.push(format!("{path}: shorter than minLength"));
        }
        if schema.get("maxLength").and_then(Value::as_u64).is_some_and(|max| len > max) {
            out.push(format!("{path}: longer than maxLength"));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
            && !regex::Regex::new(pattern).expect("valid pattern").is_match(text)
        {
            out.push(format!("{path}: does not match {pattern}"));
        }
    }
    if let Some(items) = value.as_array() {
        let n = items.len() as u64;
        if schema.get("minItems").and_then(Value::as_u64).is_some_and(|min| n < min) {
            out.push(format!("{path}: fewer than minItems"));
        }
        if schema.get("maxItems").and_then(Value::as_u64).is_some_and(|max| n > max) {
            out.push(format!("{path}: more than maxItems"));
        }
        let keys: Vec<Value> = match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => items.clone(),
            Some("map") => {
                let key_names: Vec<&str> = schema["x-kubernetes-list-map-keys"]
                    .as_array()
                    .map(|k| k.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                items.iter().map(|i| Value::Array(key_names.iter().map(|k| i[*k].clone()).collect())).collect()
            }
            _ => Vec::new(),
        };
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].contains(key) {
                out.push(format!("{path}[{i}]: duplicate {key}"));
            }
        }
        for (i, item) in items.iter().enumerate() {
            openapi_problems(&schema["items"], item, &format!("{path}[{i}]"), out);
        }
    }
    if let Some(map) = value.as_object() {
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = required.as_str().unwrap_or("");
            if !map.contains_key(name) {
                out.push(format!("{path}.{name}: required"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, child) in map {
            let child_path = format!("{path}.{name}");
            // The API server knows these of every object.
            if path.is_empty() && matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match (properties.and_then(|p| p.get(name)), schema.get("additionalProperties")) {
                (Some(s), _) => openapi_problems(s, child, &child_path, out),
                (None, Some(s)) if s.is_object() => openapi_problems(s, child, &child_path, out),
                _ => out.push(format!("{child_path}: unknown field")),
            }
        }
    }
}

/// Everything the API server would say of an object: OpenAPI, then CEL.
fn api_server_problems(object: &Value) -> Vec<String> {
    let kind = object["kind"].as_str().unwrap_or("");
    let version = object["apiVersion"].as_str().and_then(|v| v.strip_prefix("metallb.io/")).unwrap_or("");
    let schema = schema(kind, version);
    let mut out = Vec::new();
    openapi_problems(&schema, object, "", &mut out);
    out.extend(cel(kind, version, object, None));
    out
}

/// The CRDs accept every object of the sample (a valid configuration):
/// nothing `lb check-config` accepts is refused by `kubectl apply`.
#[test]
fn crds_accept_the_sample() {
    for doc in lb_core::manifest::documents(SAMPLE).expect("YAML") {
        assert_eq!(api_server_problems(&doc), Vec::<String>::new(), "{doc}");
    }
}

/// Each object breaks one OpenAPI constraint: the schema refuses it, and so
/// does lb-core (the constraints are lb-core's rules, moved forward).
#[test]
fn openapi_constraints_refuse_what_lb_core_refuses() {
    let v1 = |kind: &str, spec: Value| object("metallb.io/v1beta1", kind, spec);
    let peer = |extra: Value| {
        let mut spec = json!({"myASN": 64500, "peerASN": 64501, "peerAddress": "192.0.2.1"});
        spec.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        object("metallb.io/v1beta2", "BGPPeer", spec)
    };
    let long = "x".repeat(81);
    let bad = [
        v1("IPAddressPool", json!({"addresses": []})),
        json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "x"}}),
        v1("IPAddressPool", json!({"addresses": ["192.0.2.0/28"], "serviceAllocation": {"namespaces": ["a", "a"]}})),
        v1("IPAddressPool", json!({"addresses": ["192.0.2.0/28"], "autoAssign": "yes"})),
        v1("L2Advertisement", json!({"preferredNodeSelectors": [{"weight": 0}]})),
        v1("L2Advertisement", json!({"preferredNodeSelectors": [{"weight": 101}]})),
        v1("L2Advertisement", json!({"interfaces": ["eth0", "eth0"]})),
        v1("L2Advertisement", json!({"interfaces": ["eth0\nx"]})),
        v1("L2Advertisement", json!({"ipAddressPools": ["p", "p"]})),
        v1("L2Advertisement", json!({"nodeSelectors": [{"matchExpressions": [{"key": "k", "operator": "Has"}]}]})),
        v1("L2Advertisement", json!({"nodeSelectors": [{"matchExpressions": [{"key": "", "operator": "Exists"}]}]})),
        v1("BGPAdvertisement", json!({"aggregationLength": 33})),
        v1("BGPAdvertisement", json!({"aggregationLength": -1})),
        v1("BGPAdvertisement", json!({"aggregationLengthV6": 129})),
        v1("BGPAdvertisement", json!({"localPref": -1})),
        v1("BGPAdvertisement", json!({"communities": ["64500:1", "64500:1"]})),
        v1("BGPAdvertisement", json!({"peers": ["a", "a"]})),
        v1("BGPAdvertisement", json!({"unknownField": 1})),
        peer(json!({"myASN": 0})),
        peer(json!({"peerASN": 0})),
        peer(json!({"localASN": 0})),
        peer(json!({"peerPort": 0})),
        peer(json!({"peerPort": 65536})),
        peer(json!({"holdTime": "90"})),
        peer(json!({"keepaliveTime": "soon"})),
        peer(json!({"password": long})),
        peer(json!({"password": "a\nb"})),
        peer(json!({"vrf": "a-very-long-vrf-name"})),
        object(
            "metallb.io/v1beta2",
            "BGPPeer",
            json!({"myASN": 1, "dynamicASN": "sometimes", "peerAddress": "192.0.2.1"}),
        ),
        object("metallb.io/v1beta2", "BGPPeer", json!({"myASN": 1, "peerASN": 2, "interface": "a-very-long-name0"})),
        object("metallb.io/v1beta2", "BGPPeer", json!({"peerASN": 2, "peerAddress": "192.0.2.1"})),
        object("metallb.io/v1beta1", "BGPPeer", json!({"myASN": 1, "peerASN": 2})),
        object(
            "metallb.io/v1beta1",
            "BGPPeer",
            json!({"myASN": 1, "peerASN": 2, "peerAddress": "192.0.2.1", "interface": "eth0"}),
        ),
        v1("Community", json!({"communities": [{"name": "a", "value": "not-a-community"}]})),
        v1("Community", json!({"communities": [{"name": "a", "value": "1:2"}, {"name": "a", "value": "1:3"}]})),
        v1("Community", json!({"communities": [{"name": "", "value": "1:2"}]})),
        v1("BFDProfile", json!({"receiveInterval": 9})),
        v1("BFDProfile", json!({"transmitInterval": 60001})),
        v1("BFDProfile", json!({"detectMultiplier": 1})),
        v1("BFDProfile", json!({"detectMultiplier": 256})),
        v1("BFDProfile", json!({"echoInterval": 5})),
        v1("BFDProfile", json!({"minimumTtl": 0})),
        v1("BFDProfile", json!({"minimumTtl": 255})),
    ];
    for o in bad {
        assert!(!api_server_problems(&o).is_empty(), "the CRD accepts {o}");
        assert!(!core_accepts(&o), "lb-core accepts {o}");
    }
}

/// lb-core's mirror of a spec with every field set, as written: the
/// struct literals list every field (no `..Default::default()`), so a
/// field added to lb-core breaks this test until the CRD types have it.
fn lb_core_specs() -> Vec<(&'static str, &'static str, Value)> {
    use lb_core::config::crd::*;
    use lb_core::selector::LabelSelector;
    let some = || Some("x".to_string());
    let selectors = || vec![LabelSelector::default()];
    let names = || vec!["x".to_string()];
    let pool = IpAddressPoolSpec {
        addresses: names(),
        auto_assign: Some(true),
        avoid_buggy_ips: Some(true),
        service_allocation: Some(ServiceAllocationSpec {
            priority: Some(1),
            namespaces: names(),
            namespace_selectors: selectors(),
            service_selectors: selectors(),
        }),
    };
    let l2 = L2AdvertisementSpec {
        ip_address_pools: names(),
        ip_address_pool_selectors: selectors(),
        node_selectors: selectors(),
        interfaces: names(),
        service_selectors: selectors(),
        preferred_node_selectors: vec![PreferredNodeSelectorSpec { weight: 1, preference: LabelSelector::default() }],
    };
    let bgp = BgpAdvertisementSpec {
        aggregation_length: Some(32),
        aggregation_length_v6: Some(128),
        local_pref: Some(1),
        communities: names(),
        ip_address_pools: names(),
        ip_address_pool_selectors: selectors(),
        node_selectors: selectors(),
        peers: names(),
        service_selectors: selectors(),
    };
    let peer = BgpPeerSpec {
        my_asn: Some(1),
        local_asn: Some(1),
        peer_asn: Some(1),
        dynamic_asn: some(),
        peer_address: some(),
        interface: some(),
        source_address: some(),
        peer_port: Some(1),
        hold_time: some(),
        keepalive_time: some(),
        connect_time: some(),
        router_id: some(),
        node_selectors: selectors(),
        password: some(),
        password_secret: Some(SecretReference { name: "x".into(), namespace: some() }),
        bfd_profile: some(),
        enable_graceful_restart: Some(true),
        ebgp_multi_hop: Some(true),
        vrf: some(),
        disable_mp: Some(true),
        dual_stack_address_family: Some(true),
    };
    let mut peer_v1 = serde_json::to_value(&peer).expect("json");
    for field in BGP_PEER_V1BETA2_ONLY {
        peer_v1.as_object_mut().expect("object").remove(*field);
    }
    let community = CommunitySpec { communities: vec![CommunityAlias { name: "x".into(), value: "1:1".into() }] };
    let bfd = BfdProfileSpec {
        receive_interval: Some(10),
        transmit_interval: Some(10),
        detect_multiplier: Some(2),
        echo_interval: Some(10),
        echo_mode: Some(true),
        passive_mode: Some(true),
        minimum_ttl: Some(1),
    };
    vec![
        ("IPAddressPool", "v1beta1", json(&pool)),
        ("L2Advertisement", "v1beta1", json(&l2)),
        ("BGPAdvertisement", "v1beta1", json(&bgp)),
        ("BGPPeer", "v1beta1", peer_v1),
        ("BGPPeer", "v1beta2", json(&peer)),
        ("Community", "v1beta1", json(&community)),
        ("BFDProfile", "v1beta1", json(&bfd)),
    ]
}

/// A spec as JSON.
fn json<T: serde::Serialize>(spec: &T) -> Value {
    serde_json::to_value(spec).expect("json")
}

/// The CRD types have exactly the fields lb-core reads, version by version
/// (BGPPeer v1beta1 without the v1beta2-only ones).
#[test]
fn crd_fields_are_lb_core_fields() {
    for (kind, version, spec) in lb_core_specs() {
        let mut in_schema = BTreeSet::new();
        schema_paths(&schema(kind, version)["properties"]["spec"], "spec", &mut in_schema);
        let mut in_core = BTreeSet::new();
        value_paths(&spec, "spec", &mut in_core);
        assert_eq!(in_schema, in_core, "{kind} {version}");
    }
}
