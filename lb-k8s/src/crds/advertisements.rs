//! `L2Advertisement` and `BGPAdvertisement`: how pools' addresses are announced.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::schema::{LabelSelector, MAX_SELECTORS, SINGLE_LINE_PATTERN};

/// `L2Advertisement.spec`: `metallb.io/v1beta1`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "L2Advertisement",
    doc = "L2Advertisement announces the addresses of the selected pools over layer 2 (ARP and NDP).",
    namespaced,
    status = "L2AdvertisementStatus",
    printcolumn = r#"{"name":"IPAddressPools","type":"string","jsonPath":".spec.ipAddressPools"}"#,
    printcolumn = r#"{"name":"IPAddressPool Selectors","type":"string","jsonPath":".spec.ipAddressPoolSelectors"}"#,
    printcolumn = r#"{"name":"Interfaces","type":"string","jsonPath":".spec.interfaces"}"#,
    printcolumn = r#"{"name":"Node Selectors","type":"string","jsonPath":".spec.nodeSelectors","priority":10}"#
)]
#[serde(rename_all = "camelCase")]
pub struct L2AdvertisementSpec {
    /// Pools announced, by name (all pools when neither this nor the
    /// selectors are given).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub ip_address_pools: Vec<String>,
    /// Pools announced, by label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SELECTORS))]
    pub ip_address_pool_selectors: Vec<LabelSelector>,
    /// Nodes that may announce (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SELECTORS))]
    pub node_selectors: Vec<LabelSelector>,
    /// Interfaces to answer ARP/NDP on (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        inner(length(min = 1), regex(pattern = SINGLE_LINE_PATTERN)),
        extend("x-kubernetes-list-type" = "set")
    )]
    pub interfaces: Vec<String>,
    /// Services it applies to, by label (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SELECTORS))]
    pub service_selectors: Vec<LabelSelector>,
    /// Nodes to prefer as an address's announcer, weighted as Kubernetes'
    /// preferred scheduling terms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SELECTORS))]
    pub preferred_node_selectors: Vec<PreferredNodeSelector>,
}

/// One `preferredNodeSelectors` entry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
pub struct PreferredNodeSelector {
    /// 1-100: a node's score is the sum of the weights of the terms it matches.
    #[schemars(range(min = 1, max = 100))]
    pub weight: i32,
    /// The nodes this term prefers.
    #[serde(default)]
    pub preference: LabelSelector,
}

/// `L2Advertisement.status`: empty, as MetalLB's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
pub struct L2AdvertisementStatus {}

/// `BGPAdvertisement.spec`: `metallb.io/v1beta1`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "BGPAdvertisement",
    doc = "BGPAdvertisement announces the addresses of the selected pools to BGP peers.",
    root = "BgpAdvertisement",
    namespaced,
    status = "BgpAdvertisementStatus",
    printcolumn = r#"{"name":"IPAddressPools","type":"string","jsonPath":".spec.ipAddressPools"}"#,
    printcolumn = r#"{"name":"IPAddressPool Selectors","type":"string","jsonPath":".spec.ipAddressPoolSelectors"}"#,
    printcolumn = r#"{"name":"Peers","type":"string","jsonPath":".spec.peers"}"#,
    printcolumn = r#"{"name":"Node Selectors","type":"string","jsonPath":".spec.nodeSelectors","priority":10}"#
)]
#[x_kube(validation = Rule::new(
    "!has(self.serviceSelectors) || size(self.serviceSelectors) == 0 || ((!has(self.aggregationLength) || self.aggregationLength == 32) && (!has(self.aggregationLengthV6) || self.aggregationLengthV6 == 128))"
).message("with serviceSelectors, aggregationLength must be 32 and aggregationLengthV6 128"))]
#[serde(rename_all = "camelCase")]
pub struct BgpAdvertisementSpec {
    /// Prefix length IPv4 addresses are announced with (default 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 32))]
    pub aggregation_length: Option<i32>,
    /// Prefix length IPv6 addresses are announced with (default 128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 128))]
    pub aggregation_length_v6: Option<i32>,
    /// LOCAL_PREF of the routes (iBGP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    /// Communities, as values (`65535:65282`, `large:1:2:3`) or alias names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(length(min = 1)), extend("x-kubernetes-list-type" = "set"))]
    pub communities: Vec<String>,
    /// Pools announced, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub ip_address_pools: Vec<String>,
    /// Pools announced, by label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SELECTORS))]
    pub ip_address_pool_selectors: Vec<LabelSelector>,
    /// Nodes that announce (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SELECTORS))]
    pub node_selectors: Vec<LabelSelector>,
    /// BGPPeers, by name, the routes go to (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub peers: Vec<String>,
    /// Services it applies to, by label (all when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SELECTORS))]
    pub service_selectors: Vec<LabelSelector>,
}

/// `BGPAdvertisement.status`: empty, as MetalLB's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
pub struct BgpAdvertisementStatus {}
