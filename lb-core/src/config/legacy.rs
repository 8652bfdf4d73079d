//! MetalLB's legacy configuration: the `config` key of the ConfigMap
//! `metallb-system/config`, converted to the `metallb.io` resources MetalLB's
//! own `configmaptocrs` would generate (same names: `peer1`,
//! `bgpadvertisement1`, `l2advertisement1`, `communities`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::crd::{
    BfdProfileSpec, BgpAdvertisementSpec, BgpPeerSpec, CommunityAlias, CommunitySpec, IpAddressPoolSpec,
    L2AdvertisementSpec, Metadata, Object, Resource,
};
use super::decode::{LegacyPath, Origin, decode};
use super::error::{ConfigError, ConfigErrorKind};
use crate::manifest;
use crate::selector::{LabelSelector, LabelSelectorRequirement, Labels};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct LegacyConfig {
    #[serde(default)]
    peers: Vec<LegacyPeer>,
    #[serde(default)]
    bgp_communities: BTreeMap<String, String>,
    #[serde(default)]
    address_pools: Vec<LegacyPool>,
    #[serde(default)]
    bfd_profiles: Vec<LegacyBfdProfile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct LegacyPeer {
    my_asn: Option<u32>,
    peer_asn: Option<u32>,
    peer_address: Option<String>,
    source_address: Option<String>,
    peer_port: Option<u32>,
    hold_time: Option<String>,
    keepalive_time: Option<String>,
    router_id: Option<String>,
    #[serde(default)]
    node_selectors: Vec<LegacySelector>,
    password: Option<String>,
    bfd_profile: Option<String>,
    #[serde(rename = "ebgp-multihop")]
    ebgp_multihop: Option<bool>,
    vrf: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct LegacySelector {
    #[serde(default)]
    match_labels: Labels,
    #[serde(default)]
    match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct LegacyPool {
    #[serde(default)]
    name: String,
    protocol: Option<String>,
    #[serde(default)]
    addresses: Vec<String>,
    auto_assign: Option<bool>,
    avoid_buggy_ips: Option<bool>,
    bgp_advertisements: Option<Vec<LegacyAdvertisement>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct LegacyAdvertisement {
    aggregation_length: Option<i64>,
    aggregation_length_v6: Option<i64>,
    localpref: Option<u32>,
    #[serde(default)]
    communities: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct LegacyBfdProfile {
    #[serde(default)]
    name: String,
    receive_interval: Option<i64>,
    transmit_interval: Option<i64>,
    detect_multiplier: Option<i64>,
    echo_interval: Option<i64>,
    echo_mode: Option<bool>,
    passive_mode: Option<bool>,
    minimum_ttl: Option<i64>,
}

fn object<S>(kind: &str, version: &str, name: String, namespace: &str, spec: S) -> Object<S> {
    Object {
        api_version: format!("metallb.io/{version}"),
        kind: kind.into(),
        metadata: Metadata { name, namespace: Some(namespace.into()), labels: Labels::new() },
        spec,
    }
}

/// The `config` text of a ConfigMap, converted to resources with origins
/// that point back into the ConfigMap. Problems go to `errors`; what could
/// be read is still returned, so one mistake does not hide the others.
pub fn convert(
    file: &Arc<str>,
    configmap: &str,
    namespace: &str,
    text: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<(Origin, Resource)> {
    let cm_origin = Origin { file: file.clone(), object: format!("ConfigMap/{configmap}"), legacy: None };
    let value: Value = match serde_saphyr::from_str_with_options(text, manifest::options()) {
        Ok(v) => v,
        Err(e) => {
            // One line (no source snippet), like every other error; lines
            // are counted from the start of the `config` text.
            let message = manifest::yaml_message(&e);
            errors.push(cm_origin.error("data.config", ConfigErrorKind::Yaml(message)));
            return Vec::new();
        }
    };
    let value = if value.is_null() { Value::Object(Default::default()) } else { value };
    let Some(legacy) = decode::<LegacyConfig>(&value, "data.config", &cm_origin, errors) else {
        return Vec::new();
    };
    let origin = |base: String| Origin {
        file: file.clone(),
        object: cm_origin.object.clone(),
        legacy: Some(LegacyPath { base, alias_names: Vec::new(), camel_case: false }),
    };
    let mut out = Vec::new();

    for (i, p) in legacy.bfd_profiles.into_iter().enumerate() {
        let spec = BfdProfileSpec {
            receive_interval: p.receive_interval,
            transmit_interval: p.transmit_interval,
            detect_multiplier: p.detect_multiplier,
            echo_interval: p.echo_interval,
            echo_mode: p.echo_mode,
            passive_mode: p.passive_mode,
            minimum_ttl: p.minimum_ttl,
        };
        let o = object("BFDProfile", "v1beta1", p.name, namespace, spec);
        out.push((origin(format!("data.config.bfd-profiles[{i}]")), Resource::BfdProfile(o)));
    }

    if !legacy.bgp_communities.is_empty() {
        let (names, communities): (Vec<String>, Vec<CommunityAlias>) = legacy
            .bgp_communities
            .into_iter()
            .map(|(name, value)| (name.clone(), CommunityAlias { name, value }))
            .unzip();
        let o = object("Community", "v1beta1", "communities".into(), namespace, CommunitySpec { communities });
        let origin = Origin {
            file: file.clone(),
            object: cm_origin.object.clone(),
            legacy: Some(LegacyPath {
                base: "data.config.bgp-communities".into(),
                alias_names: names,
                camel_case: false,
            }),
        };
        out.push((origin, Resource::Community(o)));
    }

    for (i, p) in legacy.peers.into_iter().enumerate() {
        let spec = BgpPeerSpec {
            my_asn: p.my_asn,
            peer_asn: p.peer_asn,
            peer_address: p.peer_address,
            source_address: p.source_address,
            peer_port: p.peer_port,
            hold_time: p.hold_time,
            keepalive_time: p.keepalive_time,
            router_id: p.router_id,
            node_selectors: p
                .node_selectors
                .into_iter()
                .map(|s| LabelSelector { match_labels: s.match_labels, match_expressions: s.match_expressions })
                .collect(),
            password: p.password,
            bfd_profile: p.bfd_profile,
            ebgp_multi_hop: p.ebgp_multihop,
            vrf: p.vrf,
            ..Default::default()
        };
        let o = object("BGPPeer", "v1beta2", format!("peer{}", i + 1), namespace, spec);
        out.push((origin(format!("data.config.peers[{i}]")), Resource::BgpPeer(o)));
    }

    let (mut bgp_count, mut l2_count) = (0, 0);
    for (i, p) in legacy.address_pools.into_iter().enumerate() {
        let base = format!("data.config.address-pools[{i}]");
        let spec = IpAddressPoolSpec {
            addresses: p.addresses,
            auto_assign: p.auto_assign,
            avoid_buggy_ips: p.avoid_buggy_ips,
            service_allocation: None,
        };
        out.push((
            origin(base.clone()),
            Resource::IpAddressPool(object("IPAddressPool", "v1beta1", p.name.clone(), namespace, spec)),
        ));
        match p.protocol.as_deref() {
            Some("layer2") => {
                // As MetalLB: an empty list advertises nothing, so it is allowed.
                if p.bgp_advertisements.as_ref().is_some_and(|a| !a.is_empty()) {
                    errors.push(
                        origin(base.clone()).error("bgp-advertisements", ConfigErrorKind::AdvertisementsOnLayer2Pool),
                    );
                }
                l2_count += 1;
                let spec = L2AdvertisementSpec { ip_address_pools: vec![p.name.clone()], ..Default::default() };
                let o = object("L2Advertisement", "v1beta1", format!("l2advertisement{l2_count}"), namespace, spec);
                out.push((origin(base), Resource::L2Advertisement(o)));
            }
            Some("bgp") => {
                let advertisements = p.bgp_advertisements.unwrap_or_default();
                let defaulted = advertisements.is_empty();
                let advertisements = if defaulted { vec![LegacyAdvertisement::default()] } else { advertisements };
                for (j, a) in advertisements.into_iter().enumerate() {
                    bgp_count += 1;
                    let spec = BgpAdvertisementSpec {
                        aggregation_length: a.aggregation_length,
                        aggregation_length_v6: a.aggregation_length_v6,
                        local_pref: a.localpref,
                        communities: a.communities,
                        ip_address_pools: vec![p.name.clone()],
                        ..Default::default()
                    };
                    let o =
                        object("BGPAdvertisement", "v1beta1", format!("bgpadvertisement{bgp_count}"), namespace, spec);
                    let adv_base = if defaulted { base.clone() } else { format!("{base}.bgp-advertisements[{j}]") };
                    out.push((origin(adv_base), Resource::BgpAdvertisement(o)));
                }
            }
            None => errors.push(origin(base).error("protocol", ConfigErrorKind::MissingProtocol)),
            Some(other) => errors.push(origin(base).error("protocol", ConfigErrorKind::UnknownProtocol(other.into()))),
        }
    }
    out
}

/// `AddressPool.spec` (metallb.io v1alpha1 and v1beta1, MetalLB up to
/// 0.13, removed in 0.14): a pool that also says how it is announced.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddressPoolSpec {
    protocol: Option<String>,
    #[serde(default)]
    addresses: Vec<String>,
    auto_assign: Option<bool>,
    #[serde(rename = "avoidBuggyIPs")]
    avoid_buggy_ips: Option<bool>,
    bgp_advertisements: Option<Vec<AddressPoolAdvertisement>>,
}

/// `AddressPool.spec.bgpAdvertisements[]`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddressPoolAdvertisement {
    aggregation_length: Option<i64>,
    aggregation_length_v6: Option<i64>,
    local_pref: Option<u32>,
    #[serde(default)]
    communities: Vec<String>,
}

/// An `AddressPool`, read as MetalLB 0.13 did: an IPAddressPool of the
/// same name, and the advertisement its protocol implies: an
/// L2Advertisement (`layer2`), or a BGPAdvertisement per entry of
/// `bgpAdvertisements` (`bgp`; one with defaults when there is none).
/// The advertisements are named after the pool (`NAME`, or `NAME-1`,
/// `NAME-2`, ... for several) and apply to it alone. Errors point into
/// the AddressPool as written.
pub fn address_pool(
    file: &Arc<str>,
    metadata: Metadata,
    spec: &Value,
    errors: &mut Vec<ConfigError>,
) -> Vec<(Origin, Resource)> {
    let name = metadata.name.clone();
    let namespace = metadata.namespace.clone().unwrap_or_else(|| "metallb-system".into());
    let written = format!("AddressPool/{name}");
    let plain = Origin { file: file.clone(), object: written.clone(), legacy: None };
    let Some(s) = decode::<AddressPoolSpec>(spec, "spec", &plain, errors) else {
        return Vec::new();
    };
    let origin = |base: String| Origin {
        file: file.clone(),
        object: written.clone(),
        legacy: Some(LegacyPath { base, alias_names: Vec::new(), camel_case: true }),
    };
    let pool_spec = IpAddressPoolSpec {
        addresses: s.addresses,
        auto_assign: s.auto_assign,
        avoid_buggy_ips: s.avoid_buggy_ips,
        service_allocation: None,
    };
    let pool =
        Object { api_version: "metallb.io/v1beta1".into(), kind: "IPAddressPool".into(), metadata, spec: pool_spec };
    let mut out = vec![(origin("spec".into()), Resource::IpAddressPool(pool))];
    match s.protocol.as_deref() {
        Some("layer2") => {
            if s.bgp_advertisements.as_ref().is_some_and(|a| !a.is_empty()) {
                errors.push(
                    origin("spec".into()).error("spec.bgpAdvertisements", ConfigErrorKind::AdvertisementsOnLayer2Pool),
                );
            }
            let spec = L2AdvertisementSpec { ip_address_pools: vec![name.clone()], ..Default::default() };
            let o = object("L2Advertisement", "v1beta1", name, &namespace, spec);
            out.push((origin("spec".into()), Resource::L2Advertisement(o)));
        }
        Some("bgp") => {
            let advertisements = s.bgp_advertisements.unwrap_or_default();
            let defaulted = advertisements.is_empty();
            let count = advertisements.len();
            let advertisements = if defaulted { vec![AddressPoolAdvertisement::default()] } else { advertisements };
            for (i, a) in advertisements.into_iter().enumerate() {
                let spec = BgpAdvertisementSpec {
                    aggregation_length: a.aggregation_length,
                    aggregation_length_v6: a.aggregation_length_v6,
                    local_pref: a.local_pref,
                    communities: a.communities,
                    ip_address_pools: vec![name.clone()],
                    ..Default::default()
                };
                let adv_name = if count > 1 { format!("{name}-{}", i + 1) } else { name.clone() };
                let base = if defaulted { "spec".to_string() } else { format!("spec.bgpAdvertisements[{i}]") };
                let o = object("BGPAdvertisement", "v1beta1", adv_name, &namespace, spec);
                out.push((origin(base), Resource::BgpAdvertisement(o)));
            }
        }
        None => errors.push(plain.error("spec.protocol", ConfigErrorKind::MissingProtocol)),
        Some(other) => errors.push(plain.error("spec.protocol", ConfigErrorKind::UnknownProtocol(other.into()))),
    }
    out
}

/// A legacy name changed to one Kubernetes accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renamed {
    /// `IPAddressPool` or `BFDProfile`.
    pub kind: &'static str,
    pub from: String,
    pub to: String,
}

/// A name Kubernetes accepts for `name`, as MetalLB's converter makes one:
/// lowercase, `_` (and anything else not allowed, dots included) as `-`,
/// no `-` at either end, at most 63 characters: an RFC 1123 label.
pub fn kubernetes_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' })
        .collect();
    let mut out: String = mapped.trim_matches('-').chars().take(super::name::MAX_LABEL).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() { "pool".into() } else { out }
}

/// Gives the pools and BFD profiles of a legacy ConfigMap names that
/// Kubernetes accepts (the legacy format had no rule; the resources
/// written from it must apply), and rewrites the references to them
/// (advertisements' `ipAddressPools`, peers' `bfdProfile`) to match.
/// Names that would collide get a numeric suffix. Returns what changed.
pub fn rename_for_kubernetes(resources: &mut [super::SourcedResource]) -> Vec<Renamed> {
    use std::collections::{BTreeMap, BTreeSet};
    let from_configmap = |r: &super::SourcedResource| r.origin.legacy.as_ref().is_some_and(|l| !l.camel_case);
    // Every name as written is taken, so a new one never lands on another.
    let mut taken: BTreeSet<(String, String)> =
        resources.iter().map(|r| (r.resource.kind().to_string(), r.resource.metadata().name.clone())).collect();
    let mut renamed = Vec::new();
    let mut maps: BTreeMap<&'static str, BTreeMap<String, String>> = BTreeMap::new();
    for r in resources.iter_mut().filter(|r| from_configmap(r)) {
        let (kind, metadata) = match &mut r.resource {
            Resource::IpAddressPool(o) => ("IPAddressPool", &mut o.metadata),
            Resource::BfdProfile(o) => ("BFDProfile", &mut o.metadata),
            _ => continue,
        };
        let base = kubernetes_name(&metadata.name);
        if base == metadata.name {
            continue;
        }
        let mut name = base.clone();
        let mut n = 2;
        while taken.contains(&(kind.to_string(), name.clone())) {
            let suffix = format!("-{n}");
            let keep = super::name::MAX_LABEL - suffix.len();
            name = format!("{}{suffix}", base.chars().take(keep).collect::<String>().trim_end_matches('-'));
            n += 1;
        }
        taken.insert((kind.to_string(), name.clone()));
        renamed.push(Renamed { kind, from: metadata.name.clone(), to: name.clone() });
        maps.entry(kind).or_default().insert(metadata.name.clone(), name.clone());
        metadata.name = name;
    }
    let rename = |kind: &str, names: &mut Vec<String>| {
        for n in names.iter_mut() {
            if let Some(new) = maps.get(kind).and_then(|m| m.get(n)) {
                *n = new.clone();
            }
        }
    };
    for r in resources.iter_mut().filter(|r| from_configmap(r)) {
        match &mut r.resource {
            Resource::L2Advertisement(o) => rename("IPAddressPool", &mut o.spec.ip_address_pools),
            Resource::BgpAdvertisement(o) => rename("IPAddressPool", &mut o.spec.ip_address_pools),
            Resource::BgpPeer(o) => {
                if let Some(profile) = &mut o.spec.bfd_profile
                    && let Some(new) = maps.get("BFDProfile").and_then(|m| m.get(profile.as_str()))
                {
                    *profile = new.clone();
                }
            }
            _ => {}
        }
    }
    renamed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_names() {
        assert_eq!(kubernetes_name("My_Pool"), "my-pool");
        assert_eq!(kubernetes_name("_a.b_"), "a-b");
        assert_eq!(kubernetes_name(&"x".repeat(70)).len(), 63);
        assert_eq!(kubernetes_name(&format!("{}_y", "x".repeat(62))), "x".repeat(62), "no '-' at the end");
        assert_eq!(kubernetes_name("__"), "pool");
    }

    #[test]
    fn renames_keep_references_and_avoid_collisions() {
        let text = "address-pools:\n- {name: My_Pool, protocol: layer2, addresses: [192.0.2.0/28]}\n- {name: my-pool, protocol: bgp, addresses: [192.0.2.16/28]}\n";
        let mut errors = Vec::new();
        let mut resources: Vec<super::super::SourcedResource> =
            convert(&Arc::from("f"), "config", "metallb-system", text, &mut errors)
                .into_iter()
                .map(|(origin, resource)| super::super::SourcedResource { origin, resource })
                .collect();
        assert!(errors.is_empty(), "{errors:?}");
        let renamed = rename_for_kubernetes(&mut resources);
        assert_eq!(renamed, [Renamed { kind: "IPAddressPool", from: "My_Pool".into(), to: "my-pool-2".into() }]);
        let l2 = resources.iter().find_map(|r| match &r.resource {
            Resource::L2Advertisement(o) => Some(o.spec.ip_address_pools.clone()),
            _ => None,
        });
        assert_eq!(l2, Some(vec!["my-pool-2".to_string()]));
    }
}
