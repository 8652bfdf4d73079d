//! `BGPPeer` (v1beta1 and v1beta2, v1beta2 stored) and `BFDProfile`.
//!
//! Rules that hold across fields of one peer are CEL rules on the spec;
//! the hold and keepalive limits are RFC 4271's (a hold time of 0 or 3 s to
//! 65535 s), as lb-core checks them.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A hold time of 0 (no keepalives) or 3 s to 65535 s, as the OPEN message carries it.
pub const HOLD_TIME_RULE: &str =
    "duration(self) == duration('0s') || (duration(self) >= duration('3s') && duration(self) < duration('65536s'))";
/// The keepalive time never exceeds the hold time.
pub const KEEPALIVE_RULE: &str =
    "!has(self.holdTime) || !has(self.keepaliveTime) || duration(self.keepaliveTime) <= duration(self.holdTime)";
/// Without a hold time, it is three keepalive times: that must be a valid hold time too.
pub const KEEPALIVE_ALONE_RULE: &str = "has(self.holdTime) || !has(self.keepaliveTime) || duration(self.keepaliveTime) == duration('0s') || (duration(self.keepaliveTime) >= duration('1s') && duration(self.keepaliveTime) < duration('21846s'))";

/// `BGPPeer` `metallb.io/v1beta1`: deprecated, still served; the API server
/// stores it as v1beta2 (whose fields are a superset).
pub mod v1beta1 {
    use super::*;
    use crate::crds::schema::{DURATION_PATTERN, LabelSelector, MAX_SELECTORS, SINGLE_LINE_PATTERN};

    /// `BGPPeer.spec` of v1beta1.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
    #[kube(
        group = "metallb.io",
        version = "v1beta1",
        kind = "BGPPeer",
        doc = "BGPPeer is a BGP session to a router.",
        root = "BgpPeer",
        namespaced,
        status = "BgpPeerStatus",
        deprecated = "metallb.io/v1beta1 BGPPeer is deprecated; use metallb.io/v1beta2",
        printcolumn = r#"{"name":"Address","type":"string","jsonPath":".spec.peerAddress"}"#,
        printcolumn = r#"{"name":"ASN","type":"string","jsonPath":".spec.peerASN"}"#,
        printcolumn = r#"{"name":"BFD Profile","type":"string","jsonPath":".spec.bfdProfile"}"#,
        printcolumn = r#"{"name":"Multi Hops","type":"string","jsonPath":".spec.ebgpMultiHop"}"#
    )]
    #[x_kube(
        validation = Rule::new(KEEPALIVE_RULE).message("keepaliveTime must not exceed holdTime"),
        validation = Rule::new(KEEPALIVE_ALONE_RULE).message("without holdTime, keepaliveTime must be 0 or 1s to 21845s (holdTime is three times it)"),
        validation = Rule::new("!has(self.ebgpMultiHop) || !self.ebgpMultiHop || self.peerASN != self.myASN").message("ebgpMultiHop is for eBGP sessions only")
    )]
    #[serde(rename_all = "camelCase")]
    pub struct BgpPeerSpec {
        /// This side's AS number.
        #[serde(rename = "myASN")]
        #[schemars(range(min = 1))]
        pub my_asn: u32,
        /// The peer's AS number.
        #[serde(rename = "peerASN")]
        #[schemars(range(min = 1))]
        pub peer_asn: u32,
        /// The address to dial.
        pub peer_address: String,
        /// The address to dial from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub source_address: Option<String>,
        /// The port to dial (default 179).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1, max = 65535))]
        pub peer_port: Option<u32>,
        /// Hold time proposed in OPEN (default 90s).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = DURATION_PATTERN))]
        #[x_kube(validation = Rule::new(HOLD_TIME_RULE).message("holdTime must be 0 or 3s to 65535s"))]
        pub hold_time: Option<String>,
        /// Keepalive interval (default a third of the hold time).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = DURATION_PATTERN))]
        pub keepalive_time: Option<String>,
        /// BGP identifier, an IPv4 address (default the node's).
        #[serde(default, rename = "routerID", skip_serializing_if = "Option::is_none")]
        #[schemars(extend("format" = "ipv4"))]
        pub router_id: Option<String>,
        /// Nodes that peer (all when empty).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = MAX_SELECTORS))]
        pub node_selectors: Vec<LabelSelector>,
        /// TCP MD5 password.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 80), regex(pattern = SINGLE_LINE_PATTERN))]
        pub password: Option<String>,
        /// BFDProfile, by name, for a BFD session beside the BGP one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bfd_profile: Option<String>,
        /// The peer is more than one hop away.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ebgp_multi_hop: Option<bool>,
        /// The VRF whose interface the session goes through.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 15), regex(pattern = SINGLE_LINE_PATTERN))]
        pub vrf: Option<String>,
    }

    /// `BGPPeer.status`: empty, as MetalLB's.
    #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
    pub struct BgpPeerStatus {}
}

/// `BGPPeer` `metallb.io/v1beta2`, the stored version.
pub mod v1beta2 {
    use super::*;
    use crate::crds::schema::{DURATION_PATTERN, LabelSelector, MAX_SELECTORS, SINGLE_LINE_PATTERN, SecretReference};

    /// `BGPPeer.spec` of v1beta2.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
    #[kube(
        group = "metallb.io",
        version = "v1beta2",
        kind = "BGPPeer",
        doc = "BGPPeer is a BGP session to a router.",
        root = "BgpPeer",
        namespaced,
        status = "BgpPeerStatus",
        printcolumn = r#"{"name":"Address","type":"string","jsonPath":".spec.peerAddress"}"#,
        printcolumn = r#"{"name":"ASN","type":"string","jsonPath":".spec.peerASN"}"#,
        printcolumn = r#"{"name":"BFD Profile","type":"string","jsonPath":".spec.bfdProfile"}"#,
        printcolumn = r#"{"name":"Multi Hops","type":"string","jsonPath":".spec.ebgpMultiHop"}"#
    )]
    #[x_kube(
        validation = Rule::new("has(self.peerAddress) != has(self.interface)").message("exactly one of peerAddress and interface"),
        validation = Rule::new("has(self.peerASN) != has(self.dynamicASN)").message("exactly one of peerASN and dynamicASN"),
        validation = Rule::new("!has(self.password) || !has(self.passwordSecret) || !has(self.passwordSecret.name) || self.passwordSecret.name == ''").message("password and passwordSecret are mutually exclusive"),
        validation = Rule::new(KEEPALIVE_RULE).message("keepaliveTime must not exceed holdTime"),
        validation = Rule::new(KEEPALIVE_ALONE_RULE).message("without holdTime, keepaliveTime must be 0 or 1s to 21845s (holdTime is three times it)"),
        validation = Rule::new("!has(self.ebgpMultiHop) || !self.ebgpMultiHop || (has(self.dynamicASN) ? self.dynamicASN == 'external' : (!has(self.peerASN) || self.peerASN != (has(self.localASN) ? self.localASN : self.myASN)))").message("ebgpMultiHop is for eBGP sessions only")
    )]
    #[serde(rename_all = "camelCase")]
    pub struct BgpPeerSpec {
        /// This side's AS number.
        #[serde(rename = "myASN")]
        #[schemars(range(min = 1))]
        pub my_asn: u32,
        /// The AS number this one session speaks as, instead of `myASN`.
        #[serde(default, rename = "localASN", skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1))]
        pub local_asn: Option<u32>,
        /// The peer's AS number; or `dynamicASN`.
        #[serde(default, rename = "peerASN", skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1))]
        pub peer_asn: Option<u32>,
        /// Accept the AS the peer says, as long as it is ours (`internal`)
        /// or not ours (`external`); or `peerASN`.
        #[serde(default, rename = "dynamicASN", skip_serializing_if = "Option::is_none")]
        pub dynamic_asn: Option<DynamicAsn>,
        /// The address to dial; or `interface`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub peer_address: Option<String>,
        /// The interface of an unnumbered session; or `peerAddress`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 15), regex(pattern = SINGLE_LINE_PATTERN))]
        pub interface: Option<String>,
        /// The address to dial from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub source_address: Option<String>,
        /// The port to dial (default 179).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1, max = 65535))]
        pub peer_port: Option<u32>,
        /// Hold time proposed in OPEN (default 90s).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = DURATION_PATTERN))]
        #[x_kube(validation = Rule::new(HOLD_TIME_RULE).message("holdTime must be 0 or 3s to 65535s"))]
        pub hold_time: Option<String>,
        /// Keepalive interval (default a third of the hold time).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = DURATION_PATTERN))]
        pub keepalive_time: Option<String>,
        /// Time between connection attempts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = DURATION_PATTERN))]
        #[x_kube(validation = Rule::new("duration(self) >= duration('1s') && duration(self) <= duration('65535s')").message("connectTime must be 1s to 65535s"))]
        pub connect_time: Option<String>,
        /// BGP identifier, an IPv4 address (default the node's).
        #[serde(default, rename = "routerID", skip_serializing_if = "Option::is_none")]
        #[schemars(extend("format" = "ipv4"))]
        pub router_id: Option<String>,
        /// Nodes that peer (all when empty).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = MAX_SELECTORS))]
        pub node_selectors: Vec<LabelSelector>,
        /// TCP MD5 password; or `passwordSecret`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 80), regex(pattern = SINGLE_LINE_PATTERN))]
        pub password: Option<String>,
        /// The Secret (type `kubernetes.io/basic-auth`, key `password`)
        /// holding the TCP MD5 password; or `password`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub password_secret: Option<SecretReference>,
        /// BFDProfile, by name, for a BFD session beside the BGP one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bfd_profile: Option<String>,
        /// Graceful restart (RFC 4724): the peer keeps our routes while we restart.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub enable_graceful_restart: Option<bool>,
        /// The peer is more than one hop away.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ebgp_multi_hop: Option<bool>,
        /// The VRF whose interface the session goes through.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(max = 15), regex(pattern = SINGLE_LINE_PATTERN))]
        pub vrf: Option<String>,
        /// One session per address family (deprecated for `dualStackAddressFamily`).
        #[serde(default, rename = "disableMP", skip_serializing_if = "Option::is_none")]
        pub disable_mp: Option<bool>,
        /// Both families' routes over this one session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub dual_stack_address_family: Option<bool>,
    }

    /// `dynamicASN`.
    #[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
    #[serde(rename_all = "lowercase")]
    pub enum DynamicAsn {
        /// The peer's AS is ours (iBGP).
        Internal,
        /// The peer's AS is not ours (eBGP).
        External,
    }

    /// `BGPPeer.status`: empty, as MetalLB's.
    #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
    pub struct BgpPeerStatus {}
}

/// `BFDProfile.spec`: `metallb.io/v1beta1`; intervals in milliseconds.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "BFDProfile",
    doc = "BFDProfile holds the settings of a BFD session that can go with a BGP session.",
    root = "BfdProfile",
    namespaced,
    status = "BfdProfileStatus",
    printcolumn = r#"{"name":"Passive Mode","type":"boolean","jsonPath":".spec.passiveMode"}"#,
    printcolumn = r#"{"name":"Transmit Interval","type":"integer","jsonPath":".spec.transmitInterval"}"#,
    printcolumn = r#"{"name":"Receive Interval","type":"integer","jsonPath":".spec.receiveInterval"}"#,
    printcolumn = r#"{"name":"Multiplier","type":"integer","jsonPath":".spec.detectMultiplier"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BfdProfileSpec {
    /// Slowest rate this side can receive control packets at (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub receive_interval: Option<u32>,
    /// Rate this side wants to send control packets at (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub transmit_interval: Option<u32>,
    /// Packets missed before the session is down (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 255))]
    pub detect_multiplier: Option<u32>,
    /// Echo packet interval (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 60000))]
    pub echo_interval: Option<u32>,
    /// Echo mode (single hop only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_mode: Option<bool>,
    /// Wait for the peer's control packets before sending any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive_mode: Option<bool>,
    /// Lowest TTL accepted on multi-hop sessions (default 254).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 254))]
    pub minimum_ttl: Option<u32>,
}

/// `BFDProfile.status`: empty, as MetalLB's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
pub struct BfdProfileStatus {}
