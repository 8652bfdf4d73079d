//! `IPAddressPool`: the addresses Services get.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::schema::{LabelSelector, MAX_SELECTORS};

/// `IPAddressPool.spec`: `metallb.io/v1beta1`, field for field as MetalLB.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "IPAddressPool",
    doc = "IPAddressPool represents a pool of IP addresses that can be allocated to LoadBalancer services.",
    root = "IpAddressPool",
    namespaced,
    status = "IpAddressPoolStatus",
    printcolumn = r#"{"name":"Auto Assign","type":"boolean","jsonPath":".spec.autoAssign"}"#,
    printcolumn = r#"{"name":"Avoid Buggy IPs","type":"boolean","jsonPath":".spec.avoidBuggyIPs"}"#,
    printcolumn = r#"{"name":"Addresses","type":"string","jsonPath":".spec.addresses"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct IpAddressPoolSpec {
    /// Address ranges, each a CIDR prefix (`192.0.2.0/28`) or a first-last
    /// range (`192.0.2.10-192.0.2.20`), handed out in this order.
    #[schemars(length(min = 1))]
    pub addresses: Vec<String>,
    /// Whether Services get addresses from this pool without asking for it
    /// (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_assign: Option<bool>,
    /// Skip addresses ending in .0 and .255 (default false).
    #[serde(default, rename = "avoidBuggyIPs", skip_serializing_if = "Option::is_none")]
    pub avoid_buggy_ips: Option<bool>,
    /// Which Services the pool serves, and how eagerly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_allocation: Option<ServiceAllocation>,
}

/// `IPAddressPool.spec.serviceAllocation`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAllocation {
    /// Lower first; a pool without one comes after every pool with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Namespaces whose Services may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub namespaces: Vec<String>,
    /// Namespaces, by label, whose Services may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SELECTORS))]
    pub namespace_selectors: Vec<LabelSelector>,
    /// Services, by label, that may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SELECTORS))]
    pub service_selectors: Vec<LabelSelector>,
}

/// `IPAddressPool.status`: how many addresses are in use and free, per
/// family, as MetalLB 0.15 counts them (written by the controller; counts
/// above 2^53 - 1, an IPv6 /64, are capped there, where JSON readers stay
/// exact).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IpAddressPoolStatus {
    #[serde(default, rename = "assignedIPv4", skip_serializing_if = "Option::is_none")]
    pub assigned_ipv4: Option<i64>,
    #[serde(default, rename = "assignedIPv6", skip_serializing_if = "Option::is_none")]
    pub assigned_ipv6: Option<i64>,
    #[serde(default, rename = "availableIPv4", skip_serializing_if = "Option::is_none")]
    pub available_ipv4: Option<i64>,
    #[serde(default, rename = "availableIPv6", skip_serializing_if = "Option::is_none")]
    pub available_ipv6: Option<i64>,
}
