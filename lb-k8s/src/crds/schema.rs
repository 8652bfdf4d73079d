//! Schema pieces the kinds share (label selectors, Secret references,
//! limits) and the structural checks the API server makes of a CRD.
//!
//! Limits here mirror lb-core's validation (`lb_core::config::build`), so
//! that `kubectl apply` refuses what `lb check-config` would, field by
//! field. Cross-object rules (overlapping pools, unknown BFD profiles)
//! stay in lb-core: a CRD schema sees one object at a time.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most selectors in one list. Bounds the CEL cost of the rule on each
/// selector requirement (the API server multiplies a rule's cost by the
/// largest number of times it can run).
pub const MAX_SELECTORS: usize = 64;
/// Most `matchExpressions` in one selector (same reason).
pub const MAX_REQUIREMENTS: usize = 32;
/// A Go duration (`90s`, `1m30s`, `500ms`, `0`): a first filter; CEL's
/// `duration()` and lb-core parse it exactly.
pub const DURATION_PATTERN: &str = r"^\+?(0|([0-9.]+(ns|us|µs|μs|ms|s|m|h))+)$";
/// One line: a password, an interface or VRF name is never two.
pub const SINGLE_LINE_PATTERN: &str = r"^[^\r\n]*$";

/// A label selector: `matchLabels` and `matchExpressions` must all hold.
/// (`metav1.LabelSelector`, with the checks the API server makes of its own
/// selectors but not of those in custom resources: `In`/`NotIn` need values,
/// `Exists`/`DoesNotExist` take none, keys are not empty.)
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-map-type" = "atomic"))]
pub struct LabelSelector {
    /// Labels a matching object has, all of them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Requirements a matching object meets, all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_REQUIREMENTS), extend("x-kubernetes-list-type" = "atomic"))]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new(
    "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)"
).message("In and NotIn need values; Exists and DoesNotExist take none"))]
pub struct LabelSelectorRequirement {
    /// The label key.
    #[schemars(length(min = 1))]
    pub key: String,
    /// How the key's value is compared with `values`.
    pub operator: SelectorOperator,
    /// The values compared against (`In`, `NotIn`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub values: Vec<String>,
}

/// The set-based operators of label selectors.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// `corev1.SecretReference`: the Secret holding a TCP MD5 password.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[schemars(extend("x-kubernetes-map-type" = "atomic"))]
pub struct SecretReference {
    /// The Secret's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its namespace; MetalLB's own (`metallb-system`) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Where a generated CRD is not what a real API server accepts (or not
/// what it should be): one line per problem, naming the version and the
/// schema path. Empty when all is well.
///
/// Checks the rules of structural schemas that kube's generator could get
/// wrong: every node says its `type` (or is an intended
/// `x-kubernetes-preserve-unknown-fields` / `x-kubernetes-int-or-string`
/// node), no `$ref`, no `definitions`, no `additionalProperties: false`
/// beside `properties`, `anyOf`/`oneOf`/`allOf` only below a typed node and
/// without types or `properties` of their own, `nullable` never on the
/// root; and, for the API server's CEL cost budget, that every list above a
/// CEL rule, and every list or map a rule iterates (`self.f.all(...)`), has
/// a `maxItems` (`maxProperties`).
pub fn structural_problems(crd: &CustomResourceDefinition) -> Vec<String> {
    let mut problems = Vec::new();
    for version in &crd.spec.versions {
        let Some(schema) = version.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()) else {
            problems.push(format!("{}: no openAPIV3Schema", version.name));
            continue;
        };
        let value = serde_json::to_value(schema).unwrap_or(Value::Null);
        if value.get("nullable").is_some() {
            problems.push(format!("{}: nullable at the root", version.name));
        }
        walk(&value, &version.name, &mut Vec::new(), &mut problems);
    }
    problems
}

/// Whether a CEL rule in `node` or below it.
fn has_rules(node: &Value) -> bool {
    match node {
        Value::Object(map) => map.contains_key("x-kubernetes-validations") || map.values().any(has_rules),
        Value::Array(items) => items.iter().any(has_rules),
        _ => false,
    }
}

fn walk(node: &Value, path: &str, unbounded: &mut Vec<String>, problems: &mut Vec<String>) {
    let Some(map) = node.as_object() else {
        problems.push(format!("{path}: not a schema object"));
        return;
    };
    let preserve = map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let int_or_string = map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    if preserve {
        // Nothing of the metallb.io kinds is free-form.
        problems.push(format!("{path}: x-kubernetes-preserve-unknown-fields"));
    }
    if map.get("type").and_then(Value::as_str).is_none() && !preserve && !int_or_string {
        problems.push(format!("{path}: no type"));
    }
    for forbidden in ["$ref", "definitions", "$defs", "$schema", "not"] {
        if map.contains_key(forbidden) {
            problems.push(format!("{path}: {forbidden}"));
        }
    }
    if map.get("additionalProperties") == Some(&Value::Bool(false)) {
        problems.push(format!("{path}: additionalProperties: false"));
    }
    if map.contains_key("properties") && map.get("additionalProperties").is_some() {
        problems.push(format!("{path}: both properties and additionalProperties"));
    }
    for junction in ["anyOf", "oneOf", "allOf"] {
        if let Some(branches) = map.get(junction).and_then(Value::as_array) {
            if map.get("type").is_none() {
                problems.push(format!("{path}: {junction} without a type beside it"));
            }
            for (i, branch) in branches.iter().enumerate() {
                for key in ["type", "properties", "items", "additionalProperties", "default", "nullable", "description"]
                {
                    if branch.get(key).is_some() {
                        problems.push(format!("{path}.{junction}[{i}]: {key}"));
                    }
                }
            }
        }
    }
    if map.contains_key("x-kubernetes-validations") && !unbounded.is_empty() {
        problems.push(format!("{path}: CEL rules below lists without maxItems: {}", unbounded.join(", ")));
    }
    let rules = map.get("x-kubernetes-validations").and_then(Value::as_array);
    for rule in rules.into_iter().flatten().filter_map(|r| r.get("rule").and_then(Value::as_str)) {
        for field in iterated_fields(rule) {
            let Some(child) = map.get("properties").and_then(|p| p.get(field)) else { continue };
            let bounded = child.get("maxItems").is_some() || child.get("maxProperties").is_some();
            if !bounded && (child.get("items").is_some() || child.get("additionalProperties").is_some()) {
                problems.push(format!("{path}.{field}: iterated by a CEL rule without maxItems/maxProperties"));
            }
        }
    }
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            walk(child, &format!("{path}.{name}"), unbounded, problems);
        }
    }
    if let Some(child) = map.get("additionalProperties").filter(|v| v.is_object()) {
        walk(child, &format!("{path}.*"), unbounded, problems);
    }
    if let Some(items) = map.get("items") {
        let bounded = map.get("maxItems").is_some();
        if !bounded && has_rules(items) {
            unbounded.push(path.to_string());
        }
        walk(items, &format!("{path}[]"), unbounded, problems);
        if !bounded && has_rules(items) {
            unbounded.pop();
        }
    } else if map.get("type").and_then(Value::as_str) == Some("array") {
        problems.push(format!("{path}: array without items"));
    }
}

/// Fields `self.<field>` that a rule runs a macro over (`all`, `exists`,
/// `exists_one`, `map`, `filter`): their cost grows with their size.
fn iterated_fields(rule: &str) -> Vec<&str> {
    let mut fields = Vec::new();
    for call in [".all(", ".exists(", ".exists_one(", ".map(", ".filter("] {
        for (at, _) in rule.match_indices(call) {
            let start =
                rule[..at].rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')).map_or(0, |i| i + 1);
            if let Some(field) = rule[start..at].strip_prefix("self.").filter(|f| !f.contains('.')) {
                fields.push(field);
            }
        }
    }
    fields
}

/// Every CEL rule of a CRD: `(version, schema path, rule)`.
pub fn cel_rules(crd: &CustomResourceDefinition) -> Vec<(String, String, String)> {
    fn collect(node: &Value, version: &str, path: &str, out: &mut Vec<(String, String, String)>) {
        let Some(map) = node.as_object() else { return };
        if let Some(rules) = map.get("x-kubernetes-validations").and_then(Value::as_array) {
            for rule in rules {
                if let Some(text) = rule.get("rule").and_then(Value::as_str) {
                    out.push((version.to_string(), path.to_string(), text.to_string()));
                }
            }
        }
        if let Some(props) = map.get("properties").and_then(Value::as_object) {
            for (name, child) in props {
                collect(child, version, &format!("{path}.{name}"), out);
            }
        }
        if let Some(items) = map.get("items") {
            collect(items, version, &format!("{path}[]"), out);
        }
        if let Some(child) = map.get("additionalProperties") {
            collect(child, version, &format!("{path}.*"), out);
        }
    }
    let mut out = Vec::new();
    for version in &crd.spec.versions {
        if let Some(schema) = version.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()) {
            collect(&serde_json::to_value(schema).unwrap_or(Value::Null), &version.name, "", &mut out);
        }
    }
    out
}
