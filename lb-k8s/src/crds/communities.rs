//! `Community`: names for BGP community values.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A standard (`65535:65282`) or large (`large:1:2:3`) community value;
/// lb-core checks the numbers' ranges.
pub const COMMUNITY_PATTERN: &str = r"^([0-9]+:[0-9]+|[lL][aA][rR][gG][eE]:[0-9]+:[0-9]+:[0-9]+)$";

/// `Community.spec`: `metallb.io/v1beta1`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "Community",
    doc = "Community names BGP community values for BGPAdvertisements.",
    namespaced,
    status = "CommunityStatus"
)]
pub struct CommunitySpec {
    /// The aliases; a name appears once (the API server refuses a second).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub communities: Vec<CommunityAlias>,
}

/// One alias.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
pub struct CommunityAlias {
    /// The name BGPAdvertisements use.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The community it stands for.
    #[schemars(regex(pattern = COMMUNITY_PATTERN))]
    pub value: String,
}

/// `Community.status`: empty, as MetalLB's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
pub struct CommunityStatus {}
