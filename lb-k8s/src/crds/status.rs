//! The status kinds MetalLB writes and MetalLB users read: which node
//! announces a Service (`ServiceL2Status`, `ServiceBGPStatus`) and whether
//! a component's configuration is valid (`ConfigurationState`, MetalLB 0.15+).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

const IMMUTABLE: &str = "self == oldSelf";

/// `ServiceL2Status.spec`: empty; everything is in the status.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "ServiceL2Status",
    doc = "ServiceL2Status says which node announces a Service over layer 2.",
    namespaced,
    status = "ServiceL2StatusStatus",
    printcolumn = r#"{"name":"Allocated Node","type":"string","jsonPath":".status.node"}"#,
    printcolumn = r#"{"name":"Service Name","type":"string","jsonPath":".status.serviceName"}"#,
    printcolumn = r#"{"name":"Service Namespace","type":"string","jsonPath":".status.serviceNamespace"}"#
)]
pub struct ServiceL2StatusSpec {}

/// Which node answers ARP/NDP for a Service's address, on which interfaces.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceL2StatusStatus {
    /// The announcing node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(IMMUTABLE).message("node is immutable"))]
    pub node: Option<String>,
    /// The Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(IMMUTABLE).message("serviceName is immutable"))]
    pub service_name: Option<String>,
    /// The Service's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(IMMUTABLE).message("serviceNamespace is immutable"))]
    pub service_namespace: Option<String>,
    /// The interfaces answering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceInfo>,
}

/// One interface of a layer 2 announcement.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
pub struct InterfaceInfo {
    /// The interface's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `ServiceBGPStatus.spec`: empty; everything is in the status.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "ServiceBGPStatus",
    doc = "ServiceBGPStatus says which BGP peers a node announces a Service to.",
    root = "ServiceBgpStatus",
    namespaced,
    status = "ServiceBgpStatusStatus",
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".status.node"}"#,
    printcolumn = r#"{"name":"Service Name","type":"string","jsonPath":".status.serviceName"}"#,
    printcolumn = r#"{"name":"Service Namespace","type":"string","jsonPath":".status.serviceNamespace"}"#
)]
pub struct ServiceBgpStatusSpec {}

/// Which peers a node is configured to announce a Service to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceBgpStatusStatus {
    /// The announcing node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(IMMUTABLE).message("node is immutable"))]
    pub node: Option<String>,
    /// The Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(IMMUTABLE).message("serviceName is immutable"))]
    pub service_name: Option<String>,
    /// The Service's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(IMMUTABLE).message("serviceNamespace is immutable"))]
    pub service_namespace: Option<String>,
    /// BGPPeers, by name, the Service is to be announced to (whether a
    /// session is up is not said here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
}

/// `ConfigurationState`: a status-only object per component (the
/// controller; each speaker, labelled `metallb.io/node-name`).
///
/// kube's derive needs a spec type; this one is flattened (`no_spec`) and
/// has no fields, so objects have no `spec`, as MetalLB's.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "ConfigurationState",
    doc = "ConfigurationState reports whether a component's configuration is valid.",
    namespaced,
    no_spec,
    status = "ConfigurationStateStatus",
    printcolumn = r#"{"name":"Result","type":"string","jsonPath":".status.result"}"#,
    printcolumn = r#"{"name":"ErrorSummary","type":"string","jsonPath":".status.errorSummary"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct ConfigurationStateFields {}

/// Whether a component's configuration is valid.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationStateStatus {
    /// The outcome of the last validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ConfigurationResult>,
    /// The errors of the last validation, together; empty when valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_summary: Option<String>,
    /// Conditions of the component's reconcilers, one per type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// `ConfigurationState.status.result`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum ConfigurationResult {
    /// The configuration was validated and is in force.
    Valid,
    /// The configuration has errors; the last valid one stays in force.
    Invalid,
    /// The component has not said yet.
    Unknown,
}
