//! Kubernetes manifests as YAML text: multi-document files and `List`s of
//! Services, Namespaces, Nodes and EndpointSlices, read leniently (unknown fields are ignored, as
//! the API server's clients do), into the model of [`crate::service`].

use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::Value;

use crate::addr::Family;
use crate::endpoints::{Endpoint, EndpointSlice, SERVICE_NAME_LABEL};
use crate::node::{Node, NodeAddress};
use crate::selector::Labels;
use crate::service::{
    IpFamilyPolicy, Namespace, Protocol, Service, ServiceKey, ServicePort, ServiceType, TrafficPolicy,
};

/// Why a manifest could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The text is not YAML.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// A field has the wrong type or value. Shown escaped: the object's
    /// name and the message may hold anything the file held.
    #[error("{}: {}: {}", escape(object), escape(field), escape(message))]
    Field { object: String, field: String, message: String },
    /// A file given for one kind holds objects, none of that kind: the
    /// wrong file, which would otherwise silently mean "none".
    #[error("no {expected} found (found {found})")]
    NoneOfKind { expected: &'static str, found: String },
}

/// The parser's limits. Its defaults guard against hostile documents
/// (1,024 documents, 250,000 nodes), but a cluster's Services written one
/// document each exceed them at a few thousand, and a configuration of
/// 100,000 pools must load; these files come from the operator, so the
/// limits on plain size are those of a very large cluster.
///
/// Aliases are another matter: a few hundred bytes of nested aliases (a
/// "billion laughs") expand to gigabytes, and no real configuration or
/// manifest needs more than a handful of small anchors. So what an anchor
/// may hold, and how often it may be repeated, stay small: the expansion of
/// any file is bounded to about [`MAX_ANCHORED_EVENTS`] × [`MAX_ALIASES`]
/// nodes, and a bomb stops within a few hundred kilobytes.
pub(crate) fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = 1_000_000;
    budget.max_nodes = 50_000_000;
    budget.max_events = 200_000_000;
    budget.max_total_scalar_bytes = 1 << 30;
    budget.max_aliases = MAX_ALIASES;
    budget.max_recorded_anchor_events = MAX_ANCHORED_EVENTS;
    budget.max_recorded_anchor_bytes = 1 << 20;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// How many aliases (`*name`) one file may use.
pub const MAX_ALIASES: usize = 1_000;
/// How many parser events all anchors (`&name`) of one file may hold together.
pub const MAX_ANCHORED_EVENTS: usize = 10_000;

/// The parser's error in the operator's words, on one line, with where it
/// happened: the library's own messages name its internals
/// (`RecordedAnchorEvents`) or its options (`DuplicateKeyPolicy`), which
/// mean nothing to someone fixing a file.
pub fn yaml_message(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    let e = e.without_snippet();
    // Where it happened in the file: for an error met while expanding an
    // alias, where the alias is used.
    let at = match e.location().filter(|l| *l != serde_saphyr::Location::UNKNOWN) {
        Some(l) => format!(" at line {}, column {}", l.line(), l.column()),
        None => String::new(),
    };
    let mut inner = e;
    while let serde_saphyr::Error::AliasError { error, .. } = inner {
        inner = error.without_snippet();
    }
    match inner {
        serde_saphyr::Error::DuplicateMappingKey { key, .. } => match key {
            Some(k) => format!("duplicate key `{}`{at}", escape(k)),
            None => format!("duplicate key{at}"),
        },
        serde_saphyr::Error::Budget { breach, .. } => {
            let what = match breach {
                B::Aliases { .. }
                | B::Anchors { .. }
                | B::AliasAnchorRatio { .. }
                | B::RecordedAnchorEvents { .. }
                | B::RecordedAnchorBytes { .. }
                | B::MergeKeys { .. } => format!(
                    "too many aliases: anchors and aliases may expand to at most {MAX_ANCHORED_EVENTS} anchored items and {MAX_ALIASES} aliases"
                ),
                B::Depth { depth } => format!("nested too deeply ({depth} levels)"),
                B::Documents { .. } => "too many documents".to_string(),
                B::Nodes { .. } | B::Events { .. } => "too many values".to_string(),
                B::ScalarBytes { .. } => "too much text".to_string(),
                _ => "too large".to_string(),
            };
            format!("{what}{at}")
        }
        _ => escape(&e.to_string()).into_owned(),
    }
}

/// `text` with every control character (ANSI escapes, line breaks) shown
/// as a Rust escape (`\u{1b}`), so that nothing read from a file can drive
/// the terminal it is printed on or forge another line of output.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A kind of object read from manifests, and how.
trait Kind {
    type Object;
    /// What a file given for this kind should hold (`Service`).
    const EXPECTED: &'static str;
    /// `None` for documents of other kinds.
    fn convert(doc: &Value) -> Option<Result<Self::Object, ManifestError>>;
}

/// Objects of one kind, converted as the parser yields each document: a
/// file of many thousand objects never exists as a whole tree of `Value`s
/// (about 4 KB per Service), only as the objects it describes.
struct Converted<K: Kind> {
    /// With the index of their document (`List` items counted one each).
    objects: Vec<(usize, Result<K::Object, ManifestError>)>,
    documents: usize,
    /// Kinds of the other objects, one entry per object.
    others: Vec<String>,
}

impl<K: Kind> Default for Converted<K> {
    fn default() -> Self {
        Self { objects: Vec::new(), documents: 0, others: Vec::new() }
    }
}

impl<K: Kind> Extend<Value> for Converted<K> {
    fn extend<I: IntoIterator<Item = Value>>(&mut self, docs: I) {
        let mut flat = Vec::new();
        for doc in docs {
            flatten_lists(doc, &mut flat);
            for d in flat.drain(..) {
                let index = self.documents;
                self.documents += 1;
                match K::convert(&d) {
                    Some(object) => self.objects.push((index, object)),
                    None => self.others.push(kind(&d).unwrap_or("?").to_string()),
                }
            }
        }
    }
}

/// The objects of kind `K` in a YAML text, in order, with their document index.
fn read<K: Kind>(text: &str) -> Result<Converted<K>, ManifestError> {
    serde_saphyr::from_str_multiple_with_options::<Value, Converted<K>>(text, options())
        .map_err(|e| ManifestError::Yaml(yaml_message(&e)))
}

/// The objects of kind `K` in a YAML text, in order.
fn objects<K: Kind>(text: &str) -> Result<Vec<K::Object>, ManifestError> {
    read::<K>(text)?.objects.into_iter().map(|(_, o)| o).collect()
}

/// `3 Node objects`, `2 Service, 1 ConfigMap objects`: what a file holds,
/// by kind in order of first appearance; empty for nothing.
pub fn found_objects<'a>(kinds: impl IntoIterator<Item = &'a str>) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for kind in kinds {
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return String::new();
    }
    let list: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {}", escape(k))).collect();
    format!("{} object{}", list.join(", "), if total == 1 { "" } else { "s" })
}

struct Services;
impl Kind for Services {
    const EXPECTED: &'static str = "Service";
    type Object = Service;
    fn convert(doc: &Value) -> Option<Result<Service, ManifestError>> {
        (kind(doc) == Some("Service")).then(|| service(doc))
    }
}

struct Namespaces;
impl Kind for Namespaces {
    const EXPECTED: &'static str = "Namespace";
    type Object = Namespace;
    fn convert(doc: &Value) -> Option<Result<Namespace, ManifestError>> {
        (kind(doc) == Some("Namespace")).then(|| namespace(doc))
    }
}

struct Nodes;
impl Kind for Nodes {
    const EXPECTED: &'static str = "Node";
    type Object = Node;
    fn convert(doc: &Value) -> Option<Result<Node, ManifestError>> {
        (kind(doc) == Some("Node")).then(|| node(doc))
    }
}

struct Slices;
impl Kind for Slices {
    const EXPECTED: &'static str = "EndpointSlice or Endpoints";
    type Object = EndpointSlice;
    fn convert(doc: &Value) -> Option<Result<EndpointSlice, ManifestError>> {
        match kind(doc) {
            Some("EndpointSlice") => Some(endpoint_slice(doc)),
            Some("Endpoints") => Some(endpoints_object(doc)),
            _ => None,
        }
    }
}

/// Every document of a YAML stream, with `kind: List` expanded into its items.
pub fn documents(text: &str) -> Result<Vec<Value>, ManifestError> {
    // Without the source snippet: the message must stay on one line, and it
    // still says where (`at line 4, column 2`).
    let docs: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options()).map_err(|e| ManifestError::Yaml(yaml_message(&e)))?;
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        flatten_lists(doc, &mut out);
    }
    Ok(out)
}

fn flatten_lists(doc: Value, out: &mut Vec<Value>) {
    let is_list = doc.get("kind").and_then(Value::as_str).is_some_and(|k| k == "List" || k.ends_with("List"))
        && doc.get("items").is_some_and(Value::is_array);
    if is_list {
        if let Value::Object(mut map) = doc
            && let Some(Value::Array(items)) = map.remove("items")
        {
            for item in items {
                flatten_lists(item, out);
            }
        }
    } else if !doc.is_null() {
        out.push(doc);
    }
}

/// `kind` of an object, if it is one.
pub fn kind(doc: &Value) -> Option<&str> {
    doc.get("kind").and_then(Value::as_str)
}

/// `metadata.name` of an object, if set.
pub fn name(doc: &Value) -> Option<&str> {
    doc.pointer("/metadata/name").and_then(Value::as_str)
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Meta {
    name: String,
    namespace: Option<String>,
    labels: Labels,
    annotations: Labels,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ServiceManifest {
    metadata: Meta,
    spec: ServiceSpec,
    status: ServiceStatus,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ServiceSpec {
    #[serde(rename = "type")]
    type_: Option<String>,
    load_balancer_class: Option<String>,
    #[serde(rename = "loadBalancerIP")]
    load_balancer_ip: Option<String>,
    ports: Vec<PortSpec>,
    external_traffic_policy: Option<String>,
    selector: Labels,
    ip_family_policy: Option<String>,
    ip_families: Vec<String>,
    #[serde(rename = "clusterIP")]
    cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs")]
    cluster_ips: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PortSpec {
    protocol: Option<String>,
    port: u16,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ServiceStatus {
    load_balancer: LbStatus,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LbStatus {
    ingress: Vec<Ingress>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Ingress {
    ip: Option<String>,
}

/// Service and Namespace names are RFC 1123 labels: Kubernetes refuses
/// anything else, and a name that is not one could carry escapes or floods
/// to whoever reads the plan.
fn check_name(object: &str, field: &str, name: &str) -> Result<(), ManifestError> {
    crate::config::name::check_label(name).map_err(|e| field_error(object, field, e.to_string()))
}

fn field_error(object: &str, field: &str, message: impl Into<String>) -> ManifestError {
    ManifestError::Field { object: object.into(), field: field.into(), message: message.into() }
}

/// `doc` without its `null` map entries. Kubernetes treats `annotations:`
/// with only comments under it (a null map), like a null list, as empty;
/// so does every reader here, instead of refusing the object.
fn without_nulls(doc: &Value) -> Value {
    crate::config::decode::without_nulls(doc)
}

/// Reads a `kind: Service` object.
pub fn service(doc: &Value) -> Result<Service, ManifestError> {
    let object = format!("Service/{}", name(doc).unwrap_or("?"));
    let m: ServiceManifest = serde_path_to_error::deserialize(without_nulls(doc))
        .map_err(|e| field_error(&object, &e.path().to_string(), e.inner().to_string()))?;
    if m.metadata.name.is_empty() {
        return Err(field_error(&object, "metadata.name", "missing"));
    }
    check_name(&object, "metadata.name", &m.metadata.name)?;
    if let Some(namespace) = m.metadata.namespace.as_deref().filter(|n| !n.is_empty()) {
        check_name(&object, "metadata.namespace", namespace)?;
    }
    let spec = m.spec;
    let service_type = match spec.type_.as_deref() {
        None | Some("ClusterIP") => ServiceType::ClusterIp,
        Some("NodePort") => ServiceType::NodePort,
        Some("LoadBalancer") => ServiceType::LoadBalancer,
        Some("ExternalName") => ServiceType::ExternalName,
        Some(other) => ServiceType::Other(other.into()),
    };
    let external_traffic_policy = match spec.external_traffic_policy.as_deref() {
        None | Some("Cluster") => TrafficPolicy::Cluster,
        Some("Local") => TrafficPolicy::Local,
        Some(other) => {
            return Err(field_error(&object, "spec.externalTrafficPolicy", format!("unknown policy {other:?}")));
        }
    };
    let ip_family_policy = match spec.ip_family_policy.as_deref() {
        None => None,
        Some("SingleStack") => Some(IpFamilyPolicy::SingleStack),
        Some("PreferDualStack") => Some(IpFamilyPolicy::PreferDualStack),
        Some("RequireDualStack") => Some(IpFamilyPolicy::RequireDualStack),
        Some(other) => {
            return Err(field_error(&object, "spec.ipFamilyPolicy", format!("unknown policy {other:?}")));
        }
    };
    let mut ip_families = Vec::new();
    for (i, f) in spec.ip_families.iter().enumerate() {
        ip_families.push(match f.as_str() {
            "IPv4" => Family::V4,
            "IPv6" => Family::V6,
            other => {
                return Err(field_error(
                    &object,
                    &format!("spec.ipFamilies[{i}]"),
                    format!("unknown family {other:?}"),
                ));
            }
        });
    }
    let mut ports = Vec::new();
    for (i, p) in spec.ports.iter().enumerate() {
        let protocol = match p.protocol.as_deref() {
            None | Some("TCP") => Protocol::Tcp,
            Some("UDP") => Protocol::Udp,
            Some("SCTP") => Protocol::Sctp,
            Some(other) => {
                return Err(field_error(
                    &object,
                    &format!("spec.ports[{i}].protocol"),
                    format!("unknown protocol {other:?}"),
                ));
            }
        };
        ports.push(ServicePort { protocol, port: p.port });
    }
    // clusterIP "None" (headless) and unparsable values carry no family.
    let cluster_ips =
        if spec.cluster_ips.is_empty() { spec.cluster_ip.into_iter().collect() } else { spec.cluster_ips };
    let cluster_ips = cluster_ips.iter().filter_map(|ip| ip.parse::<IpAddr>().ok()).collect();
    let mut ingress_ips = Vec::new();
    for (i, ing) in m.status.load_balancer.ingress.iter().enumerate() {
        if let Some(text) = &ing.ip {
            let ip = text.parse::<IpAddr>().map_err(|_| {
                field_error(&object, &format!("status.loadBalancer.ingress[{i}].ip"), format!("{text:?} is not an IP"))
            })?;
            ingress_ips.push(ip);
        }
    }
    Ok(Service {
        key: ServiceKey::new(
            m.metadata.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or("default"),
            &m.metadata.name,
        ),
        labels: m.metadata.labels,
        annotations: m.metadata.annotations,
        service_type,
        load_balancer_class: spec.load_balancer_class.filter(|c| !c.is_empty()),
        load_balancer_ip: spec.load_balancer_ip.filter(|ip| !ip.trim().is_empty()),
        ports,
        external_traffic_policy,
        selector: spec.selector,
        ip_family_policy,
        ip_families,
        cluster_ips,
        ingress_ips,
    })
}

/// Reads a `kind: Namespace` object.
pub fn namespace(doc: &Value) -> Result<Namespace, ManifestError> {
    #[derive(Deserialize)]
    struct NamespaceManifest {
        #[serde(default)]
        metadata: Meta,
    }
    let object = format!("Namespace/{}", name(doc).unwrap_or("?"));
    let m: NamespaceManifest = serde_path_to_error::deserialize(without_nulls(doc))
        .map_err(|e| field_error(&object, &e.path().to_string(), e.inner().to_string()))?;
    if m.metadata.name.is_empty() {
        return Err(field_error(&object, "metadata.name", "missing"));
    }
    check_name(&object, "metadata.name", &m.metadata.name)?;
    Ok(Namespace::new(&m.metadata.name, m.metadata.labels))
}

/// All Services of a YAML text, in order; other kinds are skipped.
pub fn services(text: &str) -> Result<Vec<Service>, ManifestError> {
    objects::<Services>(text)
}

/// All Namespaces of a YAML text, in order; other kinds are skipped.
pub fn namespaces(text: &str) -> Result<Vec<Namespace>, ManifestError> {
    objects::<Namespaces>(text)
}

/// Reads a `kind: Node` object.
pub fn node(doc: &Value) -> Result<Node, ManifestError> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct NodeManifest {
        metadata: Meta,
        status: NodeStatus,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct NodeStatus {
        conditions: Vec<Condition>,
        addresses: Vec<Address>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Condition {
        #[serde(rename = "type")]
        type_: String,
        status: String,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Address {
        #[serde(rename = "type")]
        type_: String,
        address: String,
    }
    let object = format!("Node/{}", name(doc).unwrap_or("?"));
    let m: NodeManifest = serde_path_to_error::deserialize(without_nulls(doc))
        .map_err(|e| field_error(&object, &e.path().to_string(), e.inner().to_string()))?;
    if m.metadata.name.is_empty() {
        return Err(field_error(&object, "metadata.name", "missing"));
    }
    let mut node = Node::new(&m.metadata.name);
    node.labels.extend(m.metadata.labels);
    node.network_unavailable =
        m.status.conditions.iter().any(|c| c.type_ == "NetworkUnavailable" && c.status == "True");
    // Hostnames are not addresses; the speaker only needs IPs.
    node.addresses = m
        .status
        .addresses
        .iter()
        .filter_map(|a| a.address.parse().ok().map(|address| NodeAddress { kind: a.type_.clone(), address }))
        .collect();
    Ok(node)
}

/// Reads a `kind: EndpointSlice` (discovery.k8s.io/v1) object.
pub fn endpoint_slice(doc: &Value) -> Result<EndpointSlice, ManifestError> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct SliceManifest {
        metadata: Meta,
        endpoints: Option<Vec<SliceEndpoint>>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct SliceEndpoint {
        conditions: Conditions,
        node_name: Option<String>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Conditions {
        ready: Option<bool>,
        serving: Option<bool>,
    }
    let object = format!("EndpointSlice/{}", name(doc).unwrap_or("?"));
    let m: SliceManifest = serde_path_to_error::deserialize(without_nulls(doc))
        .map_err(|e| field_error(&object, &e.path().to_string(), e.inner().to_string()))?;
    let Some(service) = m.metadata.labels.get(SERVICE_NAME_LABEL).filter(|s| !s.is_empty()) else {
        return Err(field_error(&object, "metadata.labels", format!("missing label {SERVICE_NAME_LABEL}")));
    };
    let namespace = m.metadata.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or("default");
    Ok(EndpointSlice {
        service: ServiceKey::new(namespace, service),
        endpoints: m
            .endpoints
            .unwrap_or_default()
            .into_iter()
            .map(|e| Endpoint { node_name: e.node_name, ready: e.conditions.ready, serving: e.conditions.serving })
            .collect(),
    })
}

/// Reads a `kind: Endpoints` (core/v1) object: ready addresses count as
/// ready endpoints, `notReadyAddresses` as not ready.
pub fn endpoints_object(doc: &Value) -> Result<EndpointSlice, ManifestError> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct EndpointsManifest {
        metadata: Meta,
        subsets: Option<Vec<Subset>>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct Subset {
        addresses: Option<Vec<Address>>,
        not_ready_addresses: Option<Vec<Address>>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct Address {
        node_name: Option<String>,
    }
    let object = format!("Endpoints/{}", name(doc).unwrap_or("?"));
    let m: EndpointsManifest = serde_path_to_error::deserialize(without_nulls(doc))
        .map_err(|e| field_error(&object, &e.path().to_string(), e.inner().to_string()))?;
    if m.metadata.name.is_empty() {
        return Err(field_error(&object, "metadata.name", "missing"));
    }
    let namespace = m.metadata.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or("default");
    let mut endpoints = Vec::new();
    for subset in m.subsets.unwrap_or_default() {
        for (list, ready) in [(subset.addresses, true), (subset.not_ready_addresses, false)] {
            endpoints.extend(list.unwrap_or_default().into_iter().map(|a| Endpoint {
                node_name: a.node_name,
                ready: Some(ready),
                serving: None,
            }));
        }
    }
    Ok(EndpointSlice { service: ServiceKey::new(namespace, &m.metadata.name), endpoints })
}

/// All Nodes of a YAML text, in order; other kinds are skipped.
pub fn nodes(text: &str) -> Result<Vec<Node>, ManifestError> {
    objects::<Nodes>(text)
}

/// All EndpointSlices and Endpoints of a YAML text, in order; other kinds are skipped.
pub fn endpoint_slices(text: &str) -> Result<Vec<EndpointSlice>, ManifestError> {
    objects::<Slices>(text)
}

/// Manifest texts by kind, each as `(file name, text)`: a file is read for
/// the kind it was given for, other kinds in it are left alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct ManifestFiles<'a> {
    pub services: &'a [(&'a str, &'a str)],
    pub namespaces: &'a [(&'a str, &'a str)],
    pub nodes: &'a [(&'a str, &'a str)],
    /// EndpointSlices or Endpoints. None at all means no endpoint
    /// information (every Service counts as served on every node), which is
    /// not the same as a file without any.
    pub endpoints: &'a [(&'a str, &'a str)],
}

/// The objects of [`ManifestFiles`], in file order.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    /// One per `namespace/name`: of two with one name, the later is kept
    /// (in the earlier one's place) and a warning says so.
    pub services: Vec<Service>,
    pub namespaces: Vec<Namespace>,
    pub nodes: Vec<Node>,
    /// `None` when no endpoints file was given.
    pub endpoints: Option<crate::endpoints::Endpoints>,
    /// What was accepted but is likely a mistake; for the operator's eyes.
    pub warnings: Vec<ManifestWarning>,
}

/// Where an object was read: its file and the index of its document
/// (`List` items counted one each, from 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: String,
    pub document: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document[{}]", self.file, self.document)
    }
}

/// Something accepted in the manifests that the operator should know of.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestWarning {
    /// One Service given twice: as `kubectl apply` would, the later one
    /// wins, so the plan never holds two answers for one Service.
    #[error("{used}: Service {service} is also defined at {replaced}; the later one is used")]
    DuplicateService { service: ServiceKey, replaced: Place, used: Place },
}

/// A manifest file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: cannot read {kind}")]
pub struct ManifestFileError {
    pub file: String,
    /// What the file was read for (`Services`, `Nodes`, ...).
    pub kind: &'static str,
    #[source]
    pub source: ManifestError,
}

/// Reads every manifest file of [`ManifestFiles`]; the first unreadable
/// file stops it, named in the error. A file that holds objects but none
/// of the kind it was given for is unreadable too (Nodes given as
/// Services); an empty file is not (no Services yet).
pub fn load(files: &ManifestFiles<'_>) -> Result<Manifests, ManifestFileError> {
    fn all<K: Kind>(files: &[(&str, &str)], kind: &'static str) -> Result<Vec<(Place, K::Object)>, ManifestFileError> {
        let mut out = Vec::new();
        for (file, text) in files {
            let error = |source| ManifestFileError { file: file.to_string(), kind, source };
            let read = read::<K>(text).map_err(error)?;
            if read.objects.is_empty() && !read.others.is_empty() {
                let found = found_objects(read.others.iter().map(String::as_str));
                return Err(error(ManifestError::NoneOfKind { expected: K::EXPECTED, found }));
            }
            for (document, object) in read.objects {
                out.push((Place { file: file.to_string(), document }, object.map_err(error)?));
            }
        }
        Ok(out)
    }
    fn objects<T>(placed: Vec<(Place, T)>) -> Vec<T> {
        placed.into_iter().map(|(_, o)| o).collect()
    }
    let endpoints = if files.endpoints.is_empty() {
        None
    } else {
        Some(crate::endpoints::Endpoints::new(objects(all::<Slices>(files.endpoints, "EndpointSlices")?)))
    };
    let mut warnings = Vec::new();
    let mut services: Vec<(Place, Service)> = Vec::new();
    let mut index: std::collections::HashMap<ServiceKey, usize> = std::collections::HashMap::new();
    for (place, service) in all::<Services>(files.services, "Services")? {
        match index.get(&service.key) {
            Some(&i) => {
                let (replaced, _) = std::mem::replace(&mut services[i], (place.clone(), service));
                warnings.push(ManifestWarning::DuplicateService {
                    service: services[i].1.key.clone(),
                    replaced,
                    used: place,
                });
            }
            None => {
                index.insert(service.key.clone(), services.len());
                services.push((place, service));
            }
        }
    }
    Ok(Manifests {
        services: objects(services),
        namespaces: objects(all::<Namespaces>(files.namespaces, "Namespaces")?),
        nodes: objects(all::<Nodes>(files.nodes, "Nodes")?),
        endpoints,
        warnings,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn load_reads_each_file_for_its_kind() {
        let node = "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n";
        let files = [("svc.yaml", SVC), ("node.yaml", node)];
        let both = format!("{SVC}---\n{node}");
        let both = [("both.yaml", both.as_str())];
        let m = load(&ManifestFiles { services: &both, nodes: &both, ..Default::default() }).expect("valid");
        assert_eq!(m.services.len(), 1, "the Node is not read for Services");
        assert_eq!(m.nodes.len(), 1, "nor the Service for Nodes");
        assert!(m.endpoints.is_none(), "no endpoints file: no information");
        let empty = [("empty.yaml", "# none yet\n")];
        let m = load(&ManifestFiles { endpoints: &empty, services: &empty, ..Default::default() }).expect("valid");
        assert!(m.endpoints.is_some(), "an endpoints file without any: information that nothing serves");
        assert!(m.services.is_empty(), "an empty Services file: no Services yet");
        // A file of other objects only is the wrong file, not "none".
        let e = load(&ManifestFiles { services: &files[1..], ..Default::default() }).expect_err("Nodes as Services");
        assert_eq!(
            format!("{e}: {}", e.source),
            "node.yaml: cannot read Services: no Service found (found 1 Node object)"
        );
        let e = load(&ManifestFiles { endpoints: &files, ..Default::default() }).expect_err("no slices");
        assert_eq!(e.source.to_string(), "no EndpointSlice or Endpoints found (found 1 Service object)");
        let bad = [("bad.yaml", "kind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 99999}]}\n")];
        let bad_node = [("bad.yaml", "kind: Node\nmetadata: {}\n")];
        let e =
            load(&ManifestFiles { services: &files[..1], nodes: &bad_node, ..Default::default() }).expect_err("bad");
        assert_eq!(e.to_string(), "bad.yaml: cannot read Nodes");
        let e = load(&ManifestFiles { services: &bad, ..Default::default() }).expect_err("bad");
        assert_eq!((e.file.as_str(), e.kind), ("bad.yaml", "Services"));
        assert!(e.source.to_string().contains("spec.ports[0].port"), "{}", e.source);
    }
    #[test]
    fn a_service_given_twice_is_the_later_one_with_a_warning() {
        let svc = |ip: &str| {
            format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: shop}}\nspec: {{type: LoadBalancer, loadBalancerIP: {ip}}}\n"
            )
        };
        let other = "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: shop}\n";
        let a = format!("{}---\n{other}", svc("192.0.2.1"));
        let b = format!("{other}---\n{}", svc("192.0.2.2"));
        let files = [("a.yaml", a.as_str()), ("b.yaml", b.as_str())];
        let m = load(&ManifestFiles { services: &files, ..Default::default() }).expect("valid");
        let keys: Vec<&str> = m.services.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["shop/web", "shop/db"], "one answer per Service, in first-seen order");
        assert_eq!(m.services[0].load_balancer_ip.as_deref(), Some("192.0.2.2"), "the later one wins");
        let warnings: Vec<String> = m.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                "b.yaml: document[0]: Service shop/db is also defined at a.yaml: document[1]; the later one is used",
                "b.yaml: document[1]: Service shop/web is also defined at a.yaml: document[0]; the later one is used",
            ]
        );
    }

    use super::*;

    const SVC: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  annotations:
    metallb.io/allow-shared-ip: k1
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: web}
  ipFamilyPolicy: RequireDualStack
  ipFamilies: [IPv6, IPv4]
  ports:
  - port: 80
  - port: 53
    protocol: UDP
status:
  loadBalancer:
    ingress:
    - ip: 192.0.2.1
    - hostname: example.invalid
"#;

    #[test]
    fn reads_a_service() {
        let s = &services(SVC).expect("services")[0];
        assert_eq!(s.key.as_str(), "shop/web");
        assert_eq!(s.service_type, ServiceType::LoadBalancer);
        assert_eq!(s.external_traffic_policy, TrafficPolicy::Local);
        assert_eq!(s.ip_family_policy, Some(IpFamilyPolicy::RequireDualStack));
        assert_eq!(s.ip_families, vec![Family::V6, Family::V4]);
        assert_eq!(s.ports[1], ServicePort { protocol: Protocol::Udp, port: 53 });
        assert_eq!(s.ingress_ips, vec!["192.0.2.1".parse::<IpAddr>().expect("IP address")]);
        assert_eq!(s.sharing_key(), Some("k1"));
    }

    #[test]
    fn lists_and_multi_documents() {
        let text = format!(
            "{SVC}\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {{name: b}}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: c}}\n"
        );
        let all = services(&text).expect("services");
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].key.as_str(), "default/b");
    }

    #[test]
    fn bad_fields_name_their_path() {
        let text = "kind: Service\nmetadata: {name: x}\nspec:\n  ports:\n  - port: 99999\n";
        let err = services(text).expect_err("port out of range").to_string();
        assert!(err.contains("spec.ports[0].port"), "{err}");
        assert!(services("a: [").is_err());
    }

    #[test]
    fn many_documents() {
        let one = "---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: LoadBalancer}\n";
        assert_eq!(services(&one.repeat(20_000)).expect("services").len(), 20_000);
    }

    #[test]
    fn reads_nodes_and_endpoints() {
        let text = r#"
apiVersion: v1
kind: Node
metadata:
  name: n1
  labels: {zone: a}
status:
  conditions:
  - {type: Ready, status: "True"}
  - {type: NetworkUnavailable, status: "True"}
  addresses:
  - {type: InternalIP, address: 192.0.2.10}
  - {type: Hostname, address: n1}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: false, serving: true, terminating: true}
  nodeName: n1
---
apiVersion: v1
kind: Endpoints
metadata: {name: db}
subsets:
- addresses: [{ip: 10.0.0.2, nodeName: n2}]
  notReadyAddresses: [{ip: 10.0.0.3, nodeName: n3}]
"#;
        let nodes = nodes(text).expect("nodes");
        assert_eq!(nodes[0].labels.get("zone").map(String::as_str), Some("a"));
        assert!(nodes[0].network_unavailable);
        assert_eq!(nodes[0].addresses.len(), 1);
        let slices = endpoint_slices(text).expect("slices");
        assert_eq!(slices[0].service.as_str(), "shop/web");
        assert!(slices[0].endpoints[0].is_serving());
        assert_eq!(slices[1].service.as_str(), "default/db");
        assert_eq!(slices[1].endpoints.iter().filter(|e| e.is_serving()).count(), 1);
        let err = endpoint_slices("kind: EndpointSlice\nmetadata: {name: x}\n").expect_err("no service label");
        assert!(err.to_string().contains("kubernetes.io/service-name"), "{err}");
    }
}

#[cfg(test)]
mod null_tests {
    use super::*;

    #[test]
    fn null_maps_and_lists_are_empty() {
        let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace:\n  labels:\n  annotations:\n    # metallb.io/address-pool: x\nspec:\n  type: LoadBalancer\n  selector:\n  ports:\n  ipFamilies:\n  clusterIPs:\nstatus:\n  loadBalancer:\n    ingress:\n";
        let s = &services(text).expect("a Service with null maps")[0];
        assert_eq!(s.key.as_str(), "default/web");
        assert!(s.annotations.is_empty() && s.labels.is_empty() && s.ports.is_empty());
        let node = "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: }\nstatus: {conditions: , addresses: }\n";
        assert_eq!(nodes(node).expect("a Node with null lists")[0].name, "n1");
        let ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: }\n";
        assert_eq!(namespaces(ns).expect("a Namespace with null labels").len(), 1);
        let slice = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: x, annotations: , labels: {kubernetes.io/service-name: web}}\nendpoints:\n- conditions:\n  nodeName:\n";
        assert_eq!(endpoint_slices(slice).expect("a slice with nulls")[0].endpoints.len(), 1);
    }
}
