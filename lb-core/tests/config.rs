//! MetalLB configuration, end to end: YAML fixtures under `tests/fixtures`
//! (`valid/` loads, `invalid/` does not) through [`lb_core::config::load`]
//! to the model, or to errors that name file, object and field.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lb_core::addr::{AddressBlock, AddressError, Family};
use lb_core::community::{Community, CommunityError};
use lb_core::config::decode::LegacyPath;
use lb_core::config::{
    self, BfdProfile, BgpAdvertisement, BgpPeer, Config, ConfigError, ConfigErrorKind as K, L2Advertisement, Loaded,
    Password, PeerAsn, Resource, SecretReference, ServiceAllocation,
};
use lb_core::duration::DurationError;
use lb_core::selector::{LabelSelector, LabelSelectorRequirement, Labels, Operator, SelectorError};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The text of a fixture, by its path under `tests/fixtures`.
fn fixture(name: &str) -> String {
    let path = fixtures().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Loads fixtures, each named by its path under `tests/fixtures`.
fn load(names: &[&str]) -> Result<Loaded, Vec<ConfigError>> {
    let texts: Vec<(&str, String)> = names.iter().map(|n| (*n, fixture(n))).collect();
    let files: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (*n, t.as_str())).collect();
    config::load(&files)
}

fn lines(errors: &[ConfigError]) -> String {
    errors.iter().map(|e| format!("  {e}\n")).collect()
}

#[track_caller]
fn load_ok(names: &[&str]) -> Loaded {
    match load(names) {
        Ok(loaded) => loaded,
        Err(errors) => panic!("{names:?} should load, but:\n{}", lines(&errors)),
    }
}

#[track_caller]
fn load_err(names: &[&str]) -> Vec<ConfigError> {
    match load(names) {
        Ok(_) => panic!("{names:?} should not load"),
        Err(errors) => errors,
    }
}

fn err(file: &str, object: &str, field: &str, kind: K) -> ConfigError {
    ConfigError { file: file.into(), object: object.into(), field: field.into(), kind }
}

/// Asserts that `actual` holds exactly the `expected` errors, in any order.
#[track_caller]
fn assert_errors(actual: &[ConfigError], expected: &[ConfigError]) {
    let mut unexpected: Vec<&ConfigError> = actual.iter().collect();
    let mut missing = Vec::new();
    for want in expected {
        match unexpected.iter().position(|e| *e == want) {
            Some(i) => {
                unexpected.remove(i);
            }
            None => missing.push(want),
        }
    }
    if !missing.is_empty() || !unexpected.is_empty() {
        let show = |v: &[&ConfigError]| v.iter().map(|e| format!("  {e}\n    {e:?}\n")).collect::<String>();
        panic!("missing errors:\n{}unexpected errors:\n{}", show(&missing), show(&unexpected));
    }
}

/// Asserts the location of every error, which must all be decoding (type) errors.
#[track_caller]
fn assert_decode_errors(actual: &[ConfigError], file: &str, expected: &[(&str, &str)]) {
    let mut got: Vec<(&str, &str, &str)> =
        actual.iter().map(|e| (e.file.as_str(), e.object.as_str(), e.field.as_str())).collect();
    let mut want: Vec<(&str, &str, &str)> = expected.iter().map(|(o, f)| (file, *o, *f)).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "{}", lines(actual));
    for e in actual {
        assert!(matches!(e.kind, K::Decode(_)), "not a decoding error: {e}");
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn block(s: &str) -> AddressBlock {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
    LabelSelector::from_labels(labels(pairs))
}

fn expression(key: &str, operator: Operator, values: &[&str]) -> LabelSelectorRequirement {
    LabelSelectorRequirement { key: key.into(), operator, values: strings(values) }
}

fn standard(asn: u16, value: u16) -> Community {
    Community::Standard((u32::from(asn) << 16) | u32::from(value))
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn names<T>(items: &[T], name: impl Fn(&T) -> &str) -> Vec<&str> {
    items.iter().map(name).collect()
}

/// The same configuration with every list in name order, so configurations
/// from files given in different orders compare equal.
fn normalised(mut config: Config) -> Config {
    config.l2_advertisements.sort_by(|a, b| a.name.cmp(&b.name));
    config.bgp_advertisements.sort_by(|a, b| a.name.cmp(&b.name));
    config.peers.sort_by(|a, b| a.name.cmp(&b.name));
    config.bfd_profiles.sort_by(|a, b| a.name.cmp(&b.name));
    config
}

fn peer(name: &str, my_asn: u32, peer_asn: PeerAsn) -> BgpPeer {
    BgpPeer {
        name: name.into(),
        my_asn,
        local_asn: None,
        peer_asn,
        address: None,
        interface: None,
        source_address: None,
        port: 179,
        hold_time: secs(90),
        keepalive_time: secs(30),
        connect_time: None,
        router_id: None,
        node_selectors: Vec::new(),
        password: None,
        bfd_profile: None,
        ebgp_multihop: false,
        graceful_restart: false,
        vrf: None,
        disable_mp: false,
        dual_stack_address_family: false,
    }
}

fn bfd(name: &str, values: [u32; 5], echo_mode: bool, passive_mode: bool) -> BfdProfile {
    let [receive_interval, transmit_interval, detect_multiplier, echo_interval, minimum_ttl] = values;
    BfdProfile {
        name: name.into(),
        receive_interval,
        transmit_interval,
        detect_multiplier,
        echo_interval,
        echo_mode,
        passive_mode,
        minimum_ttl,
    }
}

/// Top-level `.yaml` files of a fixture folder (subfolders are sets loaded together).
fn fixture_files(folder: &str) -> Vec<String> {
    let dir = fixtures().join(folder);
    let mut out: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|x| x == "yaml"))
        .filter_map(|path| path.file_name().and_then(|n| n.to_str()).map(|n| format!("{folder}/{n}")))
        .collect();
    out.sort();
    out
}

// ---------------------------------------------------------------------------
// Valid configuration: the model and its defaults
// ---------------------------------------------------------------------------

#[test]
fn every_valid_fixture_loads_on_its_own() {
    let files = fixture_files("valid");
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        load_ok(&[&file]);
    }
}

#[test]
fn full_crds_pools() {
    let loaded = load_ok(&["valid/full-crds.yaml"]);
    let config = &loaded.config;
    assert!(loaded.skipped.is_empty());
    assert_eq!(loaded.resources.len(), 15);
    assert!(loaded.resources.iter().all(|r| &*r.origin.file == "valid/full-crds.yaml" && r.origin.legacy.is_none()));

    assert_eq!(names(&config.pools, |p| &p.name), ["big", "internal", "public"], "sorted by name");

    let public = config.pool("public").expect("pool public");
    assert_eq!(public.labels, labels(&[("tier", "public")]));
    assert_eq!(
        public.blocks,
        [block("192.0.2.0/26"), block("198.51.100.10-198.51.100.20"), block("2001:db8:1::/120")],
        "in the order written"
    );
    assert!(!public.auto_assign);
    assert!(public.avoid_buggy_ips);
    assert_eq!(
        public.allocation,
        Some(ServiceAllocation {
            priority: Some(10),
            namespaces: strings(&["web", "shop"]),
            namespace_selectors: vec![selector(&[("team", "web")])],
            service_selectors: vec![LabelSelector {
                match_labels: Labels::new(),
                match_expressions: vec![expression("app", Operator::In, &["nginx", "envoy"])],
            }],
        })
    );
    // 192.0.2.0 is skipped by avoidBuggyIPs; the range holds no .0 or .255.
    assert_eq!(public.total(Family::V4), 63 + 11);
    assert_eq!(public.total(Family::V6), 256);
    assert!(public.is_usable(ip("192.0.2.1")));
    assert!(!public.is_usable(ip("192.0.2.0")));

    let internal = config.pool("internal").expect("pool internal");
    assert!(internal.auto_assign, "autoAssign defaults to true");
    assert!(!internal.avoid_buggy_ips, "avoidBuggyIPs defaults to false");
    assert_eq!(internal.allocation, None);
    assert_eq!(internal.blocks, [block("203.0.113.0/24"), block("2001:db8:2::/64")]);

    let big = config.pool("big").expect("pool big");
    assert_eq!(big.total(Family::V4), 1 << 24);
    assert_eq!(config.pool_of(ip("10.20.30.40")).map(|p| p.name.as_str()), Some("big"));
    assert_eq!(config.pool_of(ip("2001:db8:2::42")).map(|p| p.name.as_str()), Some("internal"));
    assert_eq!(config.pool_of(ip("198.51.100.21")), None);
}

#[test]
fn full_crds_advertisements() {
    let config = load_ok(&["valid/full-crds.yaml"]).config;

    assert_eq!(
        config.l2_advertisements,
        [
            L2Advertisement {
                name: "l2".into(),
                pools: strings(&["internal", "public"]),
                node_selectors: vec![selector(&[("kubernetes.io/hostname", "node-a")])],
                interfaces: strings(&["eth1", "eth0"]),
                service_selectors: vec![],
                preferred_node_selectors: vec![],
            },
            L2Advertisement {
                name: "l2-all".into(),
                pools: strings(&["big", "internal", "public"]),
                node_selectors: vec![],
                interfaces: vec![],
                service_selectors: vec![],
                preferred_node_selectors: vec![],
            },
        ]
    );

    assert_eq!(
        config.bgp_advertisements,
        [
            BgpAdvertisement {
                name: "aggregated".into(),
                aggregation_length: 24,
                aggregation_length_v6: 64,
                local_pref: Some(200),
                communities: vec![
                    standard(65000, 100),
                    standard(65535, 65282),
                    Community::Large(64512, 1, 2),
                    Community::Large(64512, 7, 8),
                ],
                pools: strings(&["internal"]),
                node_selectors: vec![LabelSelector {
                    match_labels: Labels::new(),
                    match_expressions: vec![expression("node-role.kubernetes.io/edge", Operator::Exists, &[])],
                }],
                peers: strings(&["tor-v2"]),
                service_selectors: vec![],
            },
            BgpAdvertisement {
                name: "selected".into(),
                aggregation_length: 32,
                aggregation_length_v6: 128,
                local_pref: Some(50),
                communities: vec![],
                pools: strings(&["public"]),
                node_selectors: vec![],
                peers: vec![],
                service_selectors: vec![selector(&[("app", "nginx")])],
            },
            BgpAdvertisement {
                name: "default".into(),
                aggregation_length: 32,
                aggregation_length_v6: 128,
                local_pref: None,
                communities: vec![],
                pools: strings(&["big", "internal", "public"]),
                node_selectors: vec![],
                peers: vec![],
                service_selectors: vec![],
            },
        ]
    );

    assert_eq!(
        config.communities.iter().map(|(k, v)| (k.as_str(), *v)).collect::<Vec<_>>(),
        [("big", Community::Large(64512, 1, 2)), ("no-advertise", standard(65535, 65282))]
    );
}

#[test]
fn full_crds_peers_and_bfd() {
    let config = load_ok(&["valid/full-crds.yaml"]).config;

    let tor_v1 = BgpPeer {
        address: Some(ip("198.51.100.1")),
        source_address: Some(ip("198.51.100.2")),
        port: 1179,
        hold_time: secs(30),
        keepalive_time: secs(10),
        router_id: Some("192.0.2.200".parse().expect("router ID")),
        node_selectors: vec![LabelSelector {
            match_labels: labels(&[("rack", "r1")]),
            match_expressions: vec![expression("kubernetes.io/arch", Operator::In, &["amd64", "arm64"])],
        }],
        password: Some(Password::Plain("s3cret".into())),
        bfd_profile: Some("fast".into()),
        ebgp_multihop: true,
        ..peer("tor-v1", 64512, PeerAsn::Fixed(64513))
    };
    let tor_v2 = BgpPeer {
        address: Some(ip("2001:db8::1")),
        source_address: Some(ip("2001:db8::2")),
        hold_time: secs(9),
        keepalive_time: secs(3),
        connect_time: Some(secs(5)),
        router_id: Some("192.0.2.201".parse().expect("router ID")),
        password: Some(Password::Secret(SecretReference {
            name: "bgp-secret".into(),
            namespace: Some("metallb-system".into()),
        })),
        bfd_profile: Some("defaults".into()),
        graceful_restart: true,
        vrf: Some("red".into()),
        dual_stack_address_family: true,
        ..peer("tor-v2", 64512, PeerAsn::Internal)
    };
    let unnumbered = BgpPeer {
        interface: Some("eth2".into()),
        hold_time: secs(60),
        keepalive_time: secs(20),
        ebgp_multihop: true,
        disable_mp: true,
        ..peer("unnumbered", 64512, PeerAsn::External)
    };
    let minimal = BgpPeer { address: Some(ip("198.51.100.254")), ..peer("minimal", 64512, PeerAsn::Fixed(64512)) };
    assert_eq!(config.peers, [tor_v1, tor_v2, unnumbered, minimal]);
    assert_eq!(config.peers.iter().map(BgpPeer::is_ibgp).collect::<Vec<_>>(), [false, true, false, true]);

    assert_eq!(
        config.bfd_profiles,
        [bfd("fast", [100, 150, 5, 20, 10], true, true), bfd("defaults", [300, 300, 3, 50, 254], false, false)]
    );
}

#[test]
fn resources_keep_what_was_written() {
    let loaded = load_ok(&["valid/full-crds.yaml"]);
    let peers: Vec<_> = loaded
        .resources
        .iter()
        .filter_map(|r| match &r.resource {
            Resource::BgpPeer(o) => Some((o.api_version.as_str(), o.metadata.name.as_str(), r.origin.object.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        peers,
        [
            ("metallb.io/v1beta1", "tor-v1", "BGPPeer/tor-v1"),
            ("metallb.io/v1beta2", "tor-v2", "BGPPeer/tor-v2"),
            ("metallb.io/v1beta2", "unnumbered", "BGPPeer/unnumbered"),
            ("metallb.io/v1beta2", "minimal", "BGPPeer/minimal"),
        ]
    );
    let Some(Resource::BgpPeer(minimal)) = loaded.resources.iter().map(|r| &r.resource).next_back() else {
        panic!("the last resource is BGPPeer/minimal");
    };
    assert_eq!(minimal.spec.hold_time, None, "defaults belong to the model, not to the resource");
    assert_eq!(minimal.metadata.namespace.as_deref(), Some("metallb-system"));
}

#[test]
fn boundary_values_are_accepted() {
    let config = load_ok(&["valid/boundaries.yaml"]).config;
    assert_eq!(
        config.bfd_profiles,
        [bfd("low", [10, 10, 2, 10, 1], false, false), bfd("high", [60000, 60000, 255, 60000, 254], false, false)]
    );
    let hold_zero = &config.peers[0];
    assert_eq!((hold_zero.hold_time, hold_zero.keepalive_time), (Duration::ZERO, Duration::ZERO));
    assert_eq!((hold_zero.my_asn, hold_zero.peer_asn, hold_zero.port), (1, PeerAsn::Fixed(u32::MAX), 65535));
    let hold_three = &config.peers[1];
    assert_eq!((hold_three.hold_time, hold_three.keepalive_time), (secs(3), secs(1)));
    assert_eq!((hold_three.my_asn, hold_three.port), (u32::MAX, 1));
    let equal = &config.peers[2];
    assert_eq!((equal.hold_time, equal.keepalive_time), (secs(90), secs(90)));

    let advs: Vec<_> = config
        .bgp_advertisements
        .iter()
        .map(|a| (a.aggregation_length, a.aggregation_length_v6, a.local_pref))
        .collect();
    assert_eq!(advs, [(32, 128, None), (25, 120, Some(u32::MAX))]);
}

#[test]
fn address_forms() {
    let config = load_ok(&["valid/addresses.yaml"]).config;

    // Host bits are cleared.
    let host_bits = config.pool("host-bits").expect("pool host-bits");
    assert_eq!(host_bits.blocks, [block("192.0.2.64/26"), block("2001:db8:0:1::/64")]);
    assert_eq!((host_bits.blocks[0].first(), host_bits.blocks[0].last()), (ip("192.0.2.64"), ip("192.0.2.127")));

    // Spaces around the dash and around the whole value are fine.
    let ranges = config.pool("ranges").expect("pool ranges");
    let lens: Vec<u128> = ranges.blocks.iter().map(AddressBlock::len).collect();
    assert_eq!(lens, [11, 9, 16]);
    assert_eq!(config.pool("single").map(|p| p.blocks[0].len()), Some(1));
    assert_eq!(ranges.blocks[1], block("203.0.113.1-203.0.113.9"));

    assert_eq!(config.pool_of(ip("203.0.113.9")).map(|p| p.name.as_str()), Some("ranges"));
    assert_eq!(config.pool_of(ip("203.0.113.10")).map(|p| p.name.as_str()), Some("adjacent"));

    let big = config.pool("big").expect("pool big");
    assert_eq!(big.total(Family::V4), 1 << 24);
    assert_eq!(big.total(Family::V6), 1 << 92);

    let advs: Vec<_> = config
        .bgp_advertisements
        .iter()
        .map(|a| (a.name.as_str(), a.aggregation_length, a.aggregation_length_v6, a.pools.clone()))
        .collect();
    assert_eq!(
        advs,
        [
            ("widest-cidr", 26, 64, strings(&["host-bits"])),
            ("widest-range", 30, 124, strings(&["ranges"])),
            ("big", 8, 36, strings(&["big"])),
        ]
    );
}

#[test]
fn null_fields_are_unset() {
    let config = load_ok(&["valid/nulls.yaml"]).config;
    let pool = config.pool("pool").expect("pool pool");
    assert!(pool.auto_assign && pool.labels.is_empty());
    assert_eq!(pool.allocation, Some(ServiceAllocation::default()));
    let l2 = &config.l2_advertisements;
    assert_eq!((l2[0].name.as_str(), &l2[0].pools, &l2[0].interfaces), ("l2", &strings(&["legacy", "pool"]), &vec![]));
    assert_eq!(config.peers[0].password, None);
    assert!(config.peers[0].node_selectors.is_empty());
    assert_eq!(l2[1].pools, strings(&["legacy"]));
}

// ---------------------------------------------------------------------------
// The legacy ConfigMap
// ---------------------------------------------------------------------------

#[test]
fn legacy_config_equals_the_equivalent_resources() {
    let legacy = load_ok(&["valid/legacy-full.yaml"]);
    let crds = load_ok(&["valid/legacy-equivalent.yaml"]);
    assert_eq!(legacy.config, crds.config);

    // The conversion itself: the same resources, field for field.
    let resources = |l: &Loaded| l.resources.iter().map(|r| r.resource.clone()).collect::<Vec<_>>();
    assert_eq!(resources(&legacy), resources(&crds));
}

#[test]
fn legacy_config_model() {
    let config = load_ok(&["valid/legacy-full.yaml"]).config;

    let peer1 = BgpPeer {
        address: Some(ip("198.51.100.1")),
        source_address: Some(ip("198.51.100.2")),
        port: 1179,
        hold_time: secs(120),
        keepalive_time: secs(30),
        router_id: Some("192.0.2.200".parse().expect("router ID")),
        node_selectors: vec![LabelSelector {
            match_labels: labels(&[("rack", "r1")]),
            match_expressions: vec![expression("kubernetes.io/arch", Operator::In, &["amd64", "arm64"])],
        }],
        password: Some(Password::Plain("s3cret".into())),
        bfd_profile: Some("fast".into()),
        ebgp_multihop: true,
        vrf: Some("red".into()),
        ..peer("peer1", 64512, PeerAsn::Fixed(64513))
    };
    let peer2 = BgpPeer { address: Some(ip("2001:db8::1")), ..peer("peer2", 64512, PeerAsn::Fixed(64512)) };
    assert_eq!(config.peers, [peer1, peer2]);

    assert_eq!(names(&config.pools, |p| &p.name), ["bgp-default", "bgp-pool", "l2-pool"]);
    let l2_pool = config.pool("l2-pool").expect("pool l2-pool");
    assert!(l2_pool.avoid_buggy_ips && l2_pool.auto_assign);
    let bgp_pool = config.pool("bgp-pool").expect("pool bgp-pool");
    assert!(!bgp_pool.auto_assign && !bgp_pool.avoid_buggy_ips);

    assert_eq!(
        config.l2_advertisements,
        [L2Advertisement {
            name: "l2advertisement1".into(),
            pools: strings(&["l2-pool"]),
            node_selectors: vec![],
            interfaces: vec![],
            service_selectors: vec![],
            preferred_node_selectors: vec![],
        }]
    );
    let advs: Vec<_> = config
        .bgp_advertisements
        .iter()
        .map(|a| {
            (a.name.as_str(), a.aggregation_length, a.aggregation_length_v6, a.local_pref, &a.communities, &a.pools)
        })
        .collect();
    assert_eq!(
        advs,
        [
            (
                "bgpadvertisement1",
                24,
                64,
                Some(100),
                &vec![standard(65000, 1), standard(65535, 65282), Community::Large(64512, 1, 2)],
                &strings(&["bgp-pool"])
            ),
            ("bgpadvertisement2", 32, 128, Some(50), &vec![Community::Large(64512, 3, 4)], &strings(&["bgp-pool"])),
            // A bgp pool without advertisements gets a default one.
            ("bgpadvertisement3", 32, 128, None, &vec![], &strings(&["bgp-default"])),
        ]
    );
    assert_eq!(
        config.bfd_profiles,
        [bfd("fast", [100, 150, 5, 20, 10], true, true), bfd("defaults", [300, 300, 3, 50, 254], false, false)]
    );
}

#[test]
fn legacy_resources_point_back_into_the_configmap() {
    let loaded = load_ok(&["valid/legacy-full.yaml"]);
    let origins: Vec<(String, String)> = loaded
        .resources
        .iter()
        .map(|r| {
            assert_eq!(&*r.origin.file, "valid/legacy-full.yaml");
            assert_eq!(r.origin.object, "ConfigMap/config");
            let base = r.origin.legacy.as_ref().map(|l: &LegacyPath| l.base.clone()).unwrap_or_default();
            (format!("{}/{}", r.resource.kind(), r.resource.metadata().name), base)
        })
        .collect();
    let expected = [
        ("BFDProfile/fast", "data.config.bfd-profiles[0]"),
        ("BFDProfile/defaults", "data.config.bfd-profiles[1]"),
        ("Community/communities", "data.config.bgp-communities"),
        ("BGPPeer/peer1", "data.config.peers[0]"),
        ("BGPPeer/peer2", "data.config.peers[1]"),
        ("IPAddressPool/l2-pool", "data.config.address-pools[0]"),
        ("L2Advertisement/l2advertisement1", "data.config.address-pools[0]"),
        ("IPAddressPool/bgp-pool", "data.config.address-pools[1]"),
        ("BGPAdvertisement/bgpadvertisement1", "data.config.address-pools[1].bgp-advertisements[0]"),
        ("BGPAdvertisement/bgpadvertisement2", "data.config.address-pools[1].bgp-advertisements[1]"),
        ("IPAddressPool/bgp-default", "data.config.address-pools[2]"),
        ("BGPAdvertisement/bgpadvertisement3", "data.config.address-pools[2]"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(origins, expected);
}

#[test]
fn converted_legacy_resources_serialise_back_to_the_same_config() {
    let legacy = load_ok(&["valid/legacy-full.yaml"]);
    // JSON is YAML: write every converted resource as one document.
    let text: String = legacy
        .resources
        .iter()
        .map(|r| format!("---\n{}\n", serde_json::to_string(&r.resource).expect("serialisable")))
        .collect();
    let reloaded = match config::load(&[("converted.yaml", &text)]) {
        Ok(l) => l,
        Err(errors) => panic!("converted resources should load:\n{}", lines(&errors)),
    };
    assert_eq!(reloaded.config, legacy.config);
}

#[test]
fn legacy_layer2_pool_may_have_an_empty_advertisement_list() {
    // MetalLB rejects only a non-empty `bgp-advertisements` on a layer2 pool.
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config}\ndata:\n  config: |\n    address-pools:\n    \
                - name: l2\n      protocol: layer2\n      addresses: [192.0.2.0/28]\n      bgp-advertisements: []\n";
    let loaded = config::load(&[("cm.yaml", text)]).unwrap_or_else(|e| panic!("{}", lines(&e)));
    assert_eq!(names(&loaded.config.l2_advertisements, |a| &a.name), ["l2advertisement1"]);
    assert!(loaded.config.bgp_advertisements.is_empty());
}

#[test]
fn empty_legacy_config_is_empty() {
    for config in ["\"\"", "\"{}\"", "|\n    # nothing yet\n", "\"address-pools: []\""] {
        let text = format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: config}}\ndata:\n  config: {config}\n");
        let loaded = config::load(&[("cm.yaml", &text)]).unwrap_or_else(|e| panic!("{config}: {}", lines(&e)));
        assert_eq!(loaded.config, Config::default(), "{config}");
    }
}

// ---------------------------------------------------------------------------
// Several files, several documents, lists
// ---------------------------------------------------------------------------

#[test]
fn lists_and_documents() {
    let loaded = load_ok(&["valid/list-and-documents.yaml"]);
    assert_eq!(names(&loaded.config.pools, |p| &p.name), ["after-the-list", "from-list", "from-typed-list"]);
    assert_eq!(loaded.config.l2_advertisements[0].pools, strings(&["from-list"]));
    let file = "valid/list-and-documents.yaml".to_string();
    let skipped: Vec<(String, String)> = loaded.skipped.into_iter().map(|s| (s.file, s.object)).collect();
    assert_eq!(skipped, [(file.clone(), "Service/web".into()), (file, "ConfigMap/unrelated".into())]);
}

#[test]
fn legacy_and_resources_mix_across_files() {
    let files = ["valid/mixed/legacy.yaml", "valid/mixed/crds.yaml", "valid/mixed/pools.yaml"];
    let config = load_ok(&files).config;

    assert_eq!(names(&config.pools, |p| &p.name), ["crd-pool", "legacy-bgp", "legacy-l2"]);
    // A legacy peer uses a BFDProfile resource, a legacy advertisement a Community alias.
    assert_eq!(config.peers[0].bfd_profile.as_deref(), Some("from-crd"));
    assert_eq!(config.bgp_advertisements[0].communities, [standard(64512, 10)]);
    // A resource advertises a legacy pool.
    let both = config.l2_advertisements.iter().find(|a| a.name == "both").expect("L2Advertisement both");
    assert_eq!(both.pools, strings(&["crd-pool", "legacy-bgp"]));

    // The order of files does not matter.
    let reversed = load_ok(&["valid/mixed/pools.yaml", "valid/mixed/crds.yaml", "valid/mixed/legacy.yaml"]).config;
    assert_eq!(normalised(reversed), normalised(config));
}

#[test]
fn references_across_files_are_needed() {
    let file = "valid/mixed/legacy.yaml";
    let errors = load_err(&[file]);
    assert_errors(
        &errors,
        &[
            err(file, "ConfigMap/config", "data.config.peers[0].bfd-profile", K::UnknownBfdProfile("from-crd".into())),
            err(
                file,
                "ConfigMap/config",
                "data.config.address-pools[1].bgp-advertisements[0].communities[0]",
                K::Community(CommunityError::Format("from-crd-alias".into())),
            ),
        ],
    );
}

#[test]
fn duplicates_and_overlaps_across_files() {
    let (a, b) = ("invalid/cross/a.yaml", "invalid/cross/b.yaml");
    load_ok(&[a]);
    load_ok(&[b]);
    let errors = load_err(&[a, b]);
    assert_errors(
        &errors,
        &[
            err(
                b,
                "IPAddressPool/shared-name",
                "metadata.name",
                K::DuplicateName {
                    kind: "IPAddressPool".into(),
                    name: "shared-name".into(),
                    other: format!("{a}: IPAddressPool/shared-name"),
                },
            ),
            err(
                b,
                "IPAddressPool/b-only",
                "spec.addresses[0]",
                K::Overlap {
                    block: "198.51.100.128/25".into(),
                    other_block: "198.51.100.0/24".into(),
                    other_pool: "a-only".into(),
                },
            ),
        ],
    );
}

// ---------------------------------------------------------------------------
// Validation errors
// ---------------------------------------------------------------------------

#[test]
fn every_invalid_fixture_fails_with_located_single_line_errors() {
    let files = fixture_files("invalid");
    assert!(files.len() >= 15, "{files:?}");
    for file in files {
        for e in load_err(&[&file]) {
            assert_eq!(e.file, file);
            let shown = e.to_string();
            assert!(shown.starts_with(&format!("{file}: {}: {}: ", e.object, e.field)), "{shown}");
            assert!(!shown.contains('\n'), "one error per line:\n{shown}");
            assert!(!e.object.is_empty() && !e.field.is_empty(), "{shown}");
        }
    }
}

#[test]
fn display_is_file_object_field_message() {
    let errors = load_err(&["invalid/peers.yaml"]);
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(shown.contains(&"invalid/peers.yaml: BGPPeer/asn-zero: spec.myASN: ASN 0 is not allowed".to_string()));
    assert!(shown.contains(
        &"invalid/peers.yaml: BGPPeer/hold-2500ms: spec.holdTime: hold time 2.5s must be 0 or at least 3s".to_string()
    ));

    assert!(shown.contains(
        &"invalid/peers.yaml: BGPPeer/keepalive-above: spec.keepaliveTime: keepalive time 31s is above hold time 30s"
            .to_string()
    ));

    let errors = load_err(&["invalid/legacy.yaml"]);
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(shown.contains(
        &"invalid/legacy.yaml: ConfigMap/config: data.config.address-pools[0].protocol: protocol is required (layer2 or bgp)"
            .to_string()
    ));

    let errors = load_err(&["invalid/names.yaml"]);
    assert!(errors.iter().map(ToString::to_string).any(|s| s
        == "invalid/names.yaml: IPAddressPool/dup: metadata.name: duplicate IPAddressPool name \"dup\" \
            (also defined in invalid/names.yaml: IPAddressPool/dup)"));
}

#[test]
fn duplicate_and_missing_names() {
    let f = "invalid/names.yaml";
    let duplicate = |kind: &str, name: &str| {
        err(
            f,
            &format!("{kind}/{name}"),
            "metadata.name",
            K::DuplicateName { kind: kind.into(), name: name.into(), other: format!("{f}: {kind}/{name}") },
        )
    };
    assert_errors(
        &load_err(&[f]),
        &[
            duplicate("IPAddressPool", "dup"),
            duplicate("BGPPeer", "peer"),
            duplicate("BFDProfile", "bfd"),
            duplicate("Community", "c"),
            duplicate("L2Advertisement", "same"),
            err(f, "IPAddressPool/", "metadata.name", K::MissingName),
        ],
    );
}

#[test]
fn overlapping_pools() {
    let f = "invalid/overlap.yaml";
    let overlap = |pool: &str, index: usize, block: &str, other_block: &str, other_pool: &str| {
        err(
            f,
            &format!("IPAddressPool/{pool}"),
            &format!("spec.addresses[{index}]"),
            K::Overlap { block: block.into(), other_block: other_block.into(), other_pool: other_pool.into() },
        )
    };
    assert_errors(
        &load_err(&[f]),
        &[
            overlap("a", 1, "192.0.2.128/25", "192.0.2.0/24", "a"),
            overlap("c", 0, "198.51.100.15-198.51.100.20", "198.51.100.0/28", "b"),
            overlap("d", 0, "192.0.2.77/32", "192.0.2.0/24", "a"),
            overlap("f", 0, "2001:db8::ffff - 2001:db8:0:1::1", "2001:db8::/64", "e"),
            overlap("h", 0, "203.0.113.5/32", "203.0.113.0/24", "g"),
        ],
    );
}

#[test]
fn malformed_addresses() {
    let f = "invalid/addresses.yaml";
    let invalid = |index: usize, text: &str| {
        err(
            f,
            "IPAddressPool/garbage",
            &format!("spec.addresses[{index}]"),
            K::Address(AddressError::Invalid { text: text.into() }),
        )
    };
    assert_errors(
        &load_err(&[f]),
        &[
            err(
                f,
                "IPAddressPool/reversed",
                "spec.addresses[0]",
                K::Address(AddressError::Reversed {
                    text: "192.0.2.20-192.0.2.10".into(),
                    first: ip("192.0.2.20"),
                    last: ip("192.0.2.10"),
                }),
            ),
            err(
                f,
                "IPAddressPool/reversed",
                "spec.addresses[1]",
                K::Address(AddressError::Reversed {
                    text: "2001:db8::20 - 2001:db8::10".into(),
                    first: ip("2001:db8::20"),
                    last: ip("2001:db8::10"),
                }),
            ),
            invalid(0, "192.0.2.0/33"),
            invalid(1, "not-an-address"),
            invalid(2, "192.0.2.1"),
            invalid(3, "192.0.2.0 /24"),
            invalid(4, "192.0.2.1 192.0.2.5"),
            invalid(5, "192.0.2.1-"),
            invalid(6, ""),
            err(
                f,
                "IPAddressPool/mixed",
                "spec.addresses[0]",
                K::Address(AddressError::MixedFamilies { text: "192.0.2.1-2001:db8::1".into() }),
            ),
            err(f, "IPAddressPool/empty", "spec.addresses", K::NoAddresses),
            err(f, "IPAddressPool/no-spec", "spec.addresses", K::NoAddresses),
        ],
    );
}

#[test]
fn aggregation_lengths() {
    let f = "invalid/aggregation.yaml";
    let out_of_range = |adv: &str, field: &str, length: i64, family: &'static str, max: u8| {
        err(f, &format!("BGPAdvertisement/{adv}"), field, K::AggregationOutOfRange { length, family, max })
    };
    let shorter = |adv: &str, field: &str, length: u8, mask: u8, block: &str, pool: &str| {
        err(
            f,
            &format!("BGPAdvertisement/{adv}"),
            field,
            K::AggregationShorterThanBlock { length, mask, block: block.into(), pool: pool.into() },
        )
    };
    let v4 = "spec.aggregationLength";
    let v6 = "spec.aggregationLengthV6";
    assert_errors(
        &load_err(&[f]),
        &[
            out_of_range("too-long", v4, 33, "IPv4", 32),
            out_of_range("too-long", v6, 129, "IPv6", 128),
            out_of_range("negative", v4, -1, "IPv4", 32),
            shorter("shorter-v4", v4, 24, 26, "192.0.2.0/26", "v4"),
            shorter("shorter-v6", v6, 64, 120, "2001:db8::/120", "v6"),
            shorter("shorter-range", v4, 29, 30, "198.51.100.10-198.51.100.20", "range"),
            shorter("all-pools", v4, 25, 30, "198.51.100.10-198.51.100.20", "range"),
            shorter("all-pools", v4, 25, 26, "192.0.2.0/26", "v4"),
        ],
    );
}

#[test]
fn communities() {
    let f = "invalid/communities.yaml";
    let aliases = |field: &str, kind: K| err(f, "Community/aliases", field, kind);
    let adv = |index: usize, kind: K| err(f, "BGPAdvertisement/bad", &format!("spec.communities[{index}]"), kind);
    let format = |s: &str| K::Community(CommunityError::Format(s.into()));
    let range = |s: &str| K::Community(CommunityError::Range(s.into()));
    assert_errors(
        &load_err(&[f]),
        &[
            aliases("spec.communities[1].value", range("65536:1")),
            aliases("spec.communities[2].value", format("nope")),
            aliases("spec.communities[3].name", K::DuplicateCommunityAlias { name: "ok".into() }),
            aliases("spec.communities[4].name", K::Required),
            err(f, "Community/more", "spec.communities[0].name", K::DuplicateCommunityAlias { name: "ok".into() }),
            adv(0, range("64512:70000")),
            adv(1, format("large:1:2")),
            adv(2, range("large:1:2:4294967296")),
            adv(3, format("unknown-alias")),
            adv(5, K::Duplicate { value: "65000:1".into() }),
            adv(7, format("1:2:3")),
            // An alias whose value is invalid is not defined.
            adv(8, format("bad-range")),
            adv(9, format("")),
        ],
    );
}

#[test]
fn peers() {
    let f = "invalid/peers.yaml";
    let e = |peer: &str, field: &str, kind: K| err(f, &format!("BGPPeer/{peer}"), field, kind);
    let hold = |peer: &str, hold: Duration| e(peer, "spec.holdTime", K::HoldTimeTooShort { hold });
    let duration = |field: &str, text: &str| e("bad-durations", field, K::Duration(DurationError(text.into())));
    assert_errors(
        &load_err(&[f]),
        &[
            e("asn-zero", "spec.myASN", K::AsnZero),
            e("asn-zero", "spec.peerASN", K::AsnZero),
            e("missing-my-asn", "spec.myASN", K::Required),
            e("both-asn", "spec.dynamicASN", K::PeerAsnAndDynamicAsn),
            e("no-peer-asn", "spec.peerASN", K::MissingPeerAsn),
            e("bad-dynamic", "spec.dynamicASN", K::InvalidDynamicAsn("sideways".into())),
            e("multihop-ibgp", "spec.ebgpMultiHop", K::EbgpMultiHopOnIbgp),
            e("multihop-internal", "spec.ebgpMultiHop", K::EbgpMultiHopOnIbgp),
            hold("hold-1s", secs(1)),
            hold("hold-2s", secs(2)),
            hold("hold-2500ms", millis(2500)),
            hold("hold-sub-second", millis(500)),
            hold("keepalive-implies-short-hold", millis(1500)),
            e("keepalive-above", "spec.keepaliveTime", K::KeepaliveAboveHold { keepalive: secs(31), hold: secs(30) }),
            e(
                "keepalive-above-zero",
                "spec.keepaliveTime",
                K::KeepaliveAboveHold { keepalive: secs(10), hold: secs(0) },
            ),
            e("password-both", "spec.passwordSecret", K::PasswordAndSecret),
            e("no-address", "spec.peerAddress", K::MissingPeerAddress),
            e("address-and-interface", "spec.interface", K::PeerAddressAndInterface),
            e("bad-addresses", "spec.peerAddress", K::InvalidIp { text: "192.0.2.300".into() }),
            e("bad-addresses", "spec.sourceAddress", K::InvalidIp { text: "eth0".into() }),
            e("bad-addresses", "spec.routerID", K::InvalidRouterId { text: "2001:db8::1".into() }),
            e("port-zero", "spec.peerPort", K::OutOfRange { value: 0, min: 1, max: 65535 }),
            e("port-too-high", "spec.peerPort", K::OutOfRange { value: 65536, min: 1, max: 65535 }),
            duration("spec.holdTime", "ninety"),
            duration("spec.keepaliveTime", "-1s"),
            duration("spec.connectTime", "5"),
            e("unknown-bfd", "spec.bfdProfile", K::UnknownBfdProfile("nope".into())),
            e("line-breaks", "spec.password", K::LineBreak),
            e("line-breaks", "spec.vrf", K::LineBreak),
            e("line-breaks", "spec.interface", K::LineBreak),
            e("v1beta2-fields-in-v1beta1", "spec.dynamicASN", K::UnknownField),
            e("several", "spec.myASN", K::AsnZero),
            hold("several", secs(1)),
            e("several", "spec.passwordSecret", K::PasswordAndSecret),
            e("several", "spec.bfdProfile", K::UnknownBfdProfile("missing".into())),
        ],
    );
}

#[test]
fn bfd_profiles() {
    let f = "invalid/bfd.yaml";
    let e = |profile: &str, field: &str, value: i64, min: i64, max: i64| {
        err(f, &format!("BFDProfile/{profile}"), field, K::OutOfRange { value, min, max })
    };
    assert_errors(
        &load_err(&[f]),
        &[
            e("low", "spec.receiveInterval", 9, 10, 60000),
            e("low", "spec.transmitInterval", 9, 10, 60000),
            e("low", "spec.echoInterval", 9, 10, 60000),
            e("low", "spec.detectMultiplier", 1, 2, 255),
            e("low", "spec.minimumTtl", 0, 1, 254),
            e("high", "spec.receiveInterval", 60001, 10, 60000),
            e("high", "spec.transmitInterval", 60001, 10, 60000),
            e("high", "spec.echoInterval", 60001, 10, 60000),
            e("high", "spec.detectMultiplier", 256, 2, 255),
            e("high", "spec.minimumTtl", 255, 1, 254),
            e("negative", "spec.receiveInterval", -300, 10, 60000),
        ],
    );
}

#[test]
fn conflicting_local_preferences() {
    let f = "invalid/local-pref.yaml";
    let conflict = |adv: &str, local_pref: u32, other_local_pref: u32, other: &str, pool: &str| {
        err(
            f,
            &format!("BGPAdvertisement/{adv}"),
            "spec.localPref",
            K::LocalPrefConflict { local_pref, other_local_pref, other: other.into(), pool: pool.into() },
        )
    };
    assert_errors(
        &load_err(&[f]),
        &[
            conflict("second", 200, 100, "first", "shared"),
            conflict("unset", 0, 100, "first", "shared"),
            conflict("unset", 0, 200, "second", "shared"),
            conflict("dual-2", 20, 10, "dual-1", "dual"),
        ],
    );
}

#[test]
fn service_selectors_need_host_routes() {
    let f = "invalid/service-selectors.yaml";
    let e = |adv: &str, field: &str, length: u8| {
        err(f, &format!("BGPAdvertisement/{adv}"), field, K::AggregationWithServiceSelectors { length })
    };
    assert_errors(
        &load_err(&[f]),
        &[
            e("v4", "spec.aggregationLength", 24),
            e("v6", "spec.aggregationLengthV6", 64),
            e("both", "spec.aggregationLength", 28),
            e("both", "spec.aggregationLengthV6", 100),
        ],
    );
}

#[test]
fn selectors_and_lists() {
    let f = "invalid/selectors.yaml";
    let duplicate = |object: &str, field: &str, value: String| err(f, object, field, K::Duplicate { value });
    assert_errors(
        &load_err(&[f]),
        &[
            duplicate("IPAddressPool/p", "spec.serviceAllocation.namespaces[2]", "a".into()),
            err(
                f,
                "IPAddressPool/p",
                "spec.serviceAllocation.namespaceSelectors[0]",
                K::Selector(SelectorError::MissingValues { key: "team".into(), operator: Operator::In }),
            ),
            duplicate(
                "IPAddressPool/p",
                "spec.serviceAllocation.serviceSelectors[1]",
                selector(&[("app", "x")]).to_string(),
            ),
            duplicate("L2Advertisement/l2", "spec.ipAddressPools[1]", "p".into()),
            duplicate("L2Advertisement/l2", "spec.interfaces[2]", "eth0".into()),
            err(f, "L2Advertisement/l2", "spec.interfaces[1]", K::LineBreak),
            err(f, "L2Advertisement/l2", "spec.nodeSelectors[0]", K::Selector(SelectorError::EmptyKey)),
            duplicate("BGPAdvertisement/bgp", "spec.peers[1]", "a".into()),
            err(
                f,
                "BGPAdvertisement/bgp",
                "spec.ipAddressPoolSelectors[0]",
                K::Selector(SelectorError::UnexpectedValues { key: "k".into(), operator: Operator::Exists }),
            ),
            err(f, "BGPAdvertisement/bgp", "spec.nodeSelectors[0]", K::Selector(SelectorError::EmptyKey)),
        ],
    );
}

#[test]
fn unknown_fields_at_any_depth() {
    let f = "invalid/unknown-fields.yaml";
    let unknown = |object: &str, field: &str| err(f, object, field, K::UnknownField);
    assert_errors(
        &load_err(&[f]),
        &[
            unknown("L2Advertisement/top", "specs"),
            unknown("L2Advertisement/top", "extra"),
            unknown("IPAddressPool/typo", "spec.adresses"),
            err(f, "IPAddressPool/typo", "spec.addresses", K::NoAddresses),
            unknown("IPAddressPool/deep", "spec.serviceAllocation.namespaceSelectors[0].matchLabel"),
            unknown("BGPPeer/deeper", "spec.nodeSelectors[0].matchExpressions[1].value"),
            unknown("BGPPeer/deeper", "spec.passwordSecret.nam"),
            unknown("Community/c", "spec.communities[0].valeu"),
            err(f, "Community/c", "spec.communities[0].value", K::Community(CommunityError::Format(String::new()))),
            unknown("BFDProfile/b", "spec.echo"),
            unknown("BGPAdvertisement/adv", "spec.aggregationLenght"),
        ],
    );
}

#[test]
fn unknown_kinds_and_documents_that_are_not_objects() {
    let f = "invalid/unknown-kind.yaml";
    let unknown = |object: &str, api_version: &str, kind: &str| {
        err(f, object, "apiVersion", K::UnknownKind { api_version: api_version.into(), kind: kind.into() })
    };
    assert_errors(
        &load_err(&[f]),
        &[
            unknown("IPPool/typo", "metallb.io/v1beta1", "IPPool"),
            unknown("IPAddressPool/future", "metallb.io/v1", "IPAddressPool"),
            unknown("IPAddressPool/wrong-version", "metallb.io/v1beta2", "IPAddressPool"),
            unknown("AddressPool/never", "metallb.io/v1beta2", "AddressPool"),
            err(f, "document[4]", "-", K::NotAnObject),
            err(f, "document[5]", "-", K::NotAnObject),
            err(f, "document[6]", "-", K::NotAnObject),
        ],
    );
}

#[test]
fn wrong_types() {
    let f = "invalid/types.yaml";
    let errors = load_err(&[f]);
    assert_decode_errors(
        &errors,
        f,
        &[
            ("IPAddressPool/string-addresses", "spec.addresses"),
            ("BGPPeer/string-asn", "spec.myASN"),
            ("BGPPeer/negative-asn", "spec.peerASN"),
            ("BGPPeer/huge-asn", "spec.myASN"),
            ("BGPAdvertisement/string-local-pref", "spec.localPref"),
            ("L2Advertisement/bad-operator", "spec.nodeSelectors[0].matchExpressions[1].operator"),
            ("BFDProfile/string-bool", "spec.echoMode"),
            ("IPAddressPool/string-spec", "spec"),
            ("ConfigMap/config", "data.config"),
            ("IPAddressPool/boolean-label", "metadata.labels.aggregate"),
        ],
    );
    let message = |object: &str| {
        errors.iter().find(|e| e.object == object).map(|e| e.kind.to_string()).unwrap_or_else(|| panic!("{object}"))
    };
    assert!(message("IPAddressPool/string-addresses").contains("expected a sequence"));
    assert!(message("BGPPeer/huge-asn").contains("4294967296"));
    assert_eq!(message("ConfigMap/config"), "must be a string");
}

#[test]
fn legacy_errors_point_into_the_configmap() {
    let f = "invalid/legacy.yaml";
    let e = |field: &str, kind: K| err(f, "ConfigMap/config", &format!("data.config.{field}"), kind);
    let pools = |i: usize, rest: &str, kind: K| e(&format!("address-pools[{i}].{rest}"), kind);
    let duplicate = |kind: &str, name: &str| K::DuplicateName {
        kind: kind.into(),
        name: name.into(),
        other: format!("{f}: ConfigMap/config"),
    };
    assert_errors(
        &load_err(&[f]),
        &[
            pools(3, "auto-asign", K::UnknownField),
            e("peers[0].peer-asn", K::MissingPeerAsn),
            e("peers[0].hold-time", K::HoldTimeTooShort { hold: secs(2) }),
            e("peers[1].peer-address", K::InvalidIp { text: "198.51.100.300".into() }),
            e("peers[1].router-id", K::InvalidRouterId { text: "nope".into() }),
            e("peers[1].bfd-profile", K::UnknownBfdProfile("missing".into())),
            e("peers[1].ebgp-multihop", K::EbgpMultiHopOnIbgp),
            e("peers[2].my-asn", K::Required),
            e("peers[2].source-address", K::InvalidIp { text: "nowhere".into() }),
            e("peers[2].peer-port", K::OutOfRange { value: 0, min: 1, max: 65535 }),
            e("peers[2].keepalive-time", K::KeepaliveAboveHold { keepalive: secs(100), hold: secs(90) }),
            e(
                "peers[2].node-selectors[0]",
                K::Selector(SelectorError::MissingValues { key: "rack".into(), operator: Operator::In }),
            ),
            e("bgp-communities.bad", K::Community(CommunityError::Range("70000:1".into()))),
            pools(0, "protocol", K::MissingProtocol),
            pools(1, "protocol", K::UnknownProtocol("ospf".into())),
            pools(2, "bgp-advertisements", K::AdvertisementsOnLayer2Pool),
            pools(
                3,
                "addresses[1]",
                K::Address(AddressError::Reversed {
                    text: "192.0.2.100-192.0.2.90".into(),
                    first: ip("192.0.2.100"),
                    last: ip("192.0.2.90"),
                }),
            ),
            pools(
                3,
                "addresses[2]",
                K::Overlap {
                    block: "192.0.2.0/28".into(),
                    other_block: "192.0.2.0/28".into(),
                    other_pool: "no-protocol".into(),
                },
            ),
            pools(
                3,
                "bgp-advertisements[0].aggregation-length",
                K::AggregationOutOfRange { length: 33, family: "IPv4", max: 32 },
            ),
            pools(
                3,
                "bgp-advertisements[0].aggregation-length-v6",
                K::AggregationOutOfRange { length: 129, family: "IPv6", max: 128 },
            ),
            pools(3, "bgp-advertisements[0].communities[1]", K::Community(CommunityError::Format("bad".into()))),
            pools(3, "bgp-advertisements[0].communities[2]", K::Community(CommunityError::Range("65536:1".into()))),
            pools(
                4,
                "bgp-advertisements[0].aggregation-length",
                K::AggregationShorterThanBlock {
                    length: 24,
                    mask: 28,
                    block: "198.51.100.16/28".into(),
                    pool: "shorter".into(),
                },
            ),
            pools(
                4,
                "bgp-advertisements[2].localpref",
                K::LocalPrefConflict {
                    local_pref: 20,
                    other_local_pref: 10,
                    other: "bgpadvertisement3".into(),
                    pool: "shorter".into(),
                },
            ),
            pools(5, "name", K::MissingName),
            pools(6, "name", duplicate("IPAddressPool", "shorter")),
            pools(7, "name", K::MissingName),
            pools(7, "addresses", K::NoAddresses),
            e("bfd-profiles[0].detect-multiplier", K::OutOfRange { value: 1, min: 2, max: 255 }),
            e("bfd-profiles[0].minimum-ttl", K::OutOfRange { value: 255, min: 1, max: 254 }),
            e("bfd-profiles[1].name", duplicate("BFDProfile", "slow")),
        ],
    );
}

#[test]
fn legacy_unknown_keys() {
    let f = "invalid/legacy-top-level.yaml";
    let unknown = |field: &str| err(f, "ConfigMap/config", field, K::UnknownField);
    assert_errors(
        &load_err(&[f]),
        &[
            unknown("data.config.address-pool"),
            unknown("data.config.peers[0].node-selectors[0].match-label"),
            unknown("data.config.bfd-profiles[0].receive_interval"),
        ],
    );
}

#[test]
fn legacy_type_error() {
    let f = "invalid/legacy-types.yaml";
    assert_decode_errors(&load_err(&[f]), f, &[("ConfigMap/config", "data.config.peers[0].peer-asn")]);
}

#[test]
fn several_independent_errors_are_all_reported() {
    let f = "invalid/several.yaml";
    let expected = [
        err(
            f,
            "IPAddressPool/bad-pool",
            "spec.addresses[0]",
            K::Address(AddressError::Reversed {
                text: "192.0.2.20-192.0.2.10".into(),
                first: ip("192.0.2.20"),
                last: ip("192.0.2.10"),
            }),
        ),
        err(
            f,
            "IPAddressPool/bad-pool",
            "spec.addresses[1]",
            K::Address(AddressError::Invalid { text: "192.0.2.0/33".into() }),
        ),
        err(f, "BGPPeer/bad-peer", "spec.myASN", K::AsnZero),
        err(f, "BGPPeer/bad-peer", "spec.holdTime", K::HoldTimeTooShort { hold: secs(1) }),
        err(f, "BGPPeer/bad-peer", "spec.passwordSecret", K::PasswordAndSecret),
        err(f, "BFDProfile/bad-bfd", "spec.detectMultiplier", K::OutOfRange { value: 300, min: 2, max: 255 }),
        err(f, "BFDProfile/bad-bfd", "spec.minimumTtl", K::OutOfRange { value: 0, min: 1, max: 254 }),
        err(
            f,
            "BGPAdvertisement/bad-ad",
            "spec.aggregationLength",
            K::AggregationOutOfRange { length: 40, family: "IPv4", max: 32 },
        ),
        err(f, "BGPAdvertisement/bad-ad", "spec.communities[0]", K::Community(CommunityError::Range("65536:0".into()))),
        err(
            f,
            "Thing/what",
            "apiVersion",
            K::UnknownKind { api_version: "metallb.io/v1beta1".into(), kind: "Thing".into() },
        ),
        err(f, "L2Advertisement/typo", "spec.interface", K::UnknownField),
        err(
            f,
            "IPAddressPool/overlapping",
            "spec.addresses[0]",
            K::Overlap {
                block: "203.0.113.128/25".into(),
                other_block: "203.0.113.0/24".into(),
                other_pool: "good".into(),
            },
        ),
    ];
    assert_errors(&load_err(&[f]), &expected);

    // A broken file does not hide the errors of the others.
    let errors = load_err(&["invalid/bad-yaml.yaml", f]);
    assert_eq!(errors.len(), expected.len() + 1, "{}", lines(&errors));
    assert!(errors.iter().any(|e| e.file == "invalid/bad-yaml.yaml" && matches!(e.kind, K::Yaml(_))));
}

// ---------------------------------------------------------------------------
// Text that is not YAML, or not configuration
// ---------------------------------------------------------------------------

#[track_caller]
fn assert_one_yaml_error(errors: &[ConfigError], file: &str, object: &str, field: &str, mentions: &[&str]) {
    assert_eq!(errors.len(), 1, "{}", lines(errors));
    let e = &errors[0];
    assert_eq!((e.file.as_str(), e.object.as_str(), e.field.as_str()), (file, object, field));
    let K::Yaml(message) = &e.kind else { panic!("not a YAML error: {e}") };
    for word in mentions {
        assert!(message.contains(word), "{message:?} should mention {word:?}");
    }
    assert!(!e.to_string().contains('\n'), "one line: {e}");
}

#[test]
fn invalid_yaml_is_a_clear_error() {
    let f = "invalid/bad-yaml.yaml";
    assert_one_yaml_error(&load_err(&[f]), f, "-", "-", &["tab", "line 4"]);

    // A broken document spoils the whole file: nothing of it is half-read.
    let f = "invalid/bad-yaml-later-document.yaml";
    assert_one_yaml_error(&load_err(&[f]), f, "-", "-", &["line 10"]);

    let f = "invalid/legacy-bad-yaml.yaml";
    assert_one_yaml_error(&load_err(&[f]), f, "ConfigMap/config", "data.config", &["line 3"]);
}

#[test]
fn hostile_yaml_is_refused_not_expanded() {
    let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (name, previous) in
        ["b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        let refs = vec![format!("*{previous}"); 10].join(", ");
        laughs.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let deep_lists = "[".repeat(100_000);
    let deep_maps = "{a: ".repeat(100_000);
    for (name, text) in [("laughs", laughs), ("deep lists", deep_lists), ("deep maps", deep_maps)] {
        let errors = config::load(&[("hostile.yaml", &text)]).err().unwrap_or_else(|| panic!("{name} loads"));
        assert!(matches!(errors[..], [ConfigError { kind: K::Yaml(_), .. }]), "{name}: {}", lines(&errors));
    }
}

#[test]
fn empty_and_unrelated_files_are_no_configuration() {
    for (text, found) in [
        ("", ""),
        ("---\n", ""),
        ("# just a comment\n", ""),
        ("---\n---\n...\n", ""),
        ("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n", "; found 1 Namespace object"),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\n",
            "; found 2 Service objects",
        ),
    ] {
        let errors = config::load(&[("empty.yaml", text)]).err().unwrap_or_else(|| panic!("{text:?} loads"));
        let message = format!(
            "empty.yaml: -: -: no MetalLB configuration found (metallb.io resources or the legacy ConfigMap){found}"
        );
        assert_eq!(lines(&errors), format!("  {message}\n"), "{text:?}");
    }
    assert!(matches!(config::load(&[]).err().as_deref(), Some([ConfigError { kind: K::NoConfiguration { .. }, .. }])));
    // Explicit configurations of no pools stay valid.
    let peer = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1}\n";
    assert!(config::load(&[("peer.yaml", peer), ("empty.yaml", "")]).expect("a peer alone").config.pools.is_empty());
}

/// Field names of every form, so generated objects reach deep into validation.
const KEYS: &[&str] = &[
    "addresses",
    "autoAssign",
    "avoidBuggyIPs",
    "serviceAllocation",
    "priority",
    "namespaces",
    "namespaceSelectors",
    "serviceSelectors",
    "ipAddressPools",
    "ipAddressPoolSelectors",
    "nodeSelectors",
    "interfaces",
    "aggregationLength",
    "aggregationLengthV6",
    "localPref",
    "communities",
    "peers",
    "myASN",
    "peerASN",
    "dynamicASN",
    "peerAddress",
    "interface",
    "sourceAddress",
    "peerPort",
    "holdTime",
    "keepaliveTime",
    "connectTime",
    "routerID",
    "password",
    "passwordSecret",
    "bfdProfile",
    "ebgpMultiHop",
    "enableGracefulRestart",
    "vrf",
    "disableMP",
    "name",
    "value",
    "namespace",
    "receiveInterval",
    "detectMultiplier",
    "minimumTtl",
    "matchLabels",
    "matchExpressions",
    "key",
    "operator",
    "values",
    "address-pools",
    "protocol",
    "bgp-advertisements",
    "aggregation-length",
    "localpref",
    "bgp-communities",
    "bfd-profiles",
    "peer-address",
    "peer-asn",
    "my-asn",
    "hold-time",
    "node-selectors",
    "match-labels",
    "typo",
];

/// Values that mean something somewhere.
const STRINGS: &[&str] = &[
    "192.0.2.0/24",
    "192.0.2.7/30",
    "192.0.2.1-192.0.2.9",
    "192.0.2.9-192.0.2.1",
    "2001:db8::/64",
    "2001:db8::1 - 2001:db8::ff",
    "10.0.0.0/8",
    "198.51.100.1",
    "64512:1",
    "large:1:2:3",
    "65536:1",
    "90s",
    "1s",
    "0",
    "internal",
    "external",
    "In",
    "Exists",
    "layer2",
    "bgp",
    "web",
    "",
    "a\nb",
];

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![Just(0i64), Just(-1), Just(32), Just(128), Just(64512), Just(1 << 32), any::<i64>()]
            .prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

fn json_document() -> impl Strategy<Value = String> {
    const API_VERSIONS: &[&str] = &["metallb.io/v1beta1", "metallb.io/v1beta2", "v1"];
    const KINDS: &[&str] =
        &["IPAddressPool", "L2Advertisement", "BGPAdvertisement", "BGPPeer", "Community", "BFDProfile", "ConfigMap"];
    const OBJECT_NAMES: &[&str] = &["a", "b", ""];
    (prop::sample::select(API_VERSIONS), prop::sample::select(KINDS), prop::sample::select(OBJECT_NAMES), json_value())
        .prop_map(|(api_version, kind, name, spec)| {
            let mut doc = serde_json::json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
            if kind == "ConfigMap" {
                // The legacy form is a YAML text inside the ConfigMap.
                doc["data"] = serde_json::json!({"config": spec.to_string()});
            } else {
                doc["spec"] = spec;
            }
            doc.to_string()
        })
}

fn mutated(text: &str, edits: &[(prop::sample::Index, u8, char)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for (at, op, c) in edits {
        if chars.is_empty() {
            chars.push(*c);
            continue;
        }
        let i = at.index(chars.len());
        match op % 3 {
            0 => chars[i] = *c,
            1 => {
                chars.remove(i);
            }
            _ => chars.insert(i, *c),
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = config::load(&[("fuzz.yaml", &text)]);
    }

    #[test]
    fn yaml_like_text_never_panics(text in "[a-zA-Z0-9:/.\\- \n\t#&*!|>'\"%@`?{}\\[\\],]{0,300}") {
        let _ = config::load(&[("fuzz.yaml", &text)]);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..4,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<char>()), 1..6),
    ) {
        let name = ["valid/full-crds.yaml", "valid/legacy-full.yaml", "invalid/legacy.yaml", "invalid/peers.yaml"][which];
        let text = mutated(&fixture(name), &edits);
        if let Err(errors) = config::load(&[(name, &text)]) {
            for e in errors {
                prop_assert_eq!(e.file.as_str(), name);
                prop_assert!(!e.to_string().contains('\n'), "{}", e);
            }
        }
    }

    #[test]
    fn generated_objects_never_panic(docs in prop::collection::vec(json_document(), 1..5)) {
        let text = docs.join("\n---\n");
        match config::load(&[("generated.yaml", &text)]) {
            Ok(loaded) => prop_assert!(loaded.config.pools.windows(2).all(|w| w[0].name < w[1].name)),
            Err(errors) => prop_assert!(!errors.is_empty()),
        }
    }
}

#[test]
fn timers_fit_in_sixteen_bits() {
    let yaml = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p}\nspec: {myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, holdTime: 65536s, connectTime: 0s}\n";
    let errors = config::load(&[("t.yaml", yaml)]).expect_err("out of range");
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["spec.holdTime", "spec.connectTime"], "{errors:?}");
    assert!(errors.iter().all(|e| matches!(e.kind, K::DurationOutOfRange { .. })));
}

#[test]
fn a_metallb_kind_under_another_group_is_a_typo() {
    let yaml =
        "apiVersion: metalb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [192.0.2.0/24]}\n";
    let errors = config::load(&[("t.yaml", yaml)]).expect_err("typo");
    assert_eq!(
        errors[0].to_string(),
        "t.yaml: IPAddressPool/p: apiVersion: unknown resource metalb.io/v1beta1 IPAddressPool"
    );
}

#[test]
fn only_metallbs_configmap_is_legacy_configuration() {
    let other = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-settings, namespace: shop}\ndata: {config: 'not: metallb'}\n";
    let with_pool = format!("{other}---\n{POOL}");
    let loaded = config::load(&[("t.yaml", &with_pool)]).expect("someone else's ConfigMap is skipped");
    assert_eq!(loaded.resources.len(), 1);
    assert_eq!(loaded.skipped[0].object, "ConfigMap/app-settings");
}

#[test]
fn hold_time_limit_is_whole_seconds_as_the_open_message_carries_it() {
    let peer = |hold: &str| {
        format!(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: p}}\nspec: {{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, holdTime: {hold}}}\n"
        )
    };
    let loaded = config::load(&[("t.yaml", &peer("65535s"))]).expect("65535 s fits");
    assert_eq!(loaded.config.peers[0].hold_time, Duration::from_secs(65535));
    let errors = config::load(&[("t.yaml", &peer("18h12m16s"))]).expect_err("65536 s does not");
    assert_eq!(errors.len(), 1, "reported once: {errors:?}");
    assert_eq!(errors[0].field, "spec.holdTime");
}

const PEER_WITH_SECRET: &str = "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, passwordSecret: {name: bgp}}\n";

fn secret(name: &str, namespace: Option<&str>, body: &str) -> String {
    let namespace = namespace.map(|n| format!(", namespace: {n}")).unwrap_or_default();
    format!("---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}{namespace}}}\n{body}\n")
}

#[test]
fn tcp_md5_passwords_are_at_most_80_bytes() {
    let peer = |password: &str| {
        format!(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: tor}}\nspec: {{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, password: {password}}}\n"
        )
    };
    assert!(config::load(&[("t.yaml", &peer(&"k".repeat(80)))]).is_ok(), "80 bytes is the limit");
    let errors = config::load(&[("t.yaml", &peer(&"k".repeat(81)))]).expect_err("81 bytes");
    assert_errors(&errors, &[err("t.yaml", "BGPPeer/tor", "spec.password", K::PasswordTooLong { len: 81, max: 80 })]);
    // Counted in bytes, as the kernel counts them, not in characters.
    let errors = config::load(&[("t.yaml", &peer(&"é".repeat(41)))]).expect_err("82 bytes");
    assert_eq!(errors[0].kind, K::PasswordTooLong { len: 82, max: 80 });

    let legacy = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: config, namespace: metallb-system}}\ndata:\n  config: |\n    peers:\n    - {{my-asn: 64512, peer-asn: 64513, peer-address: 192.0.2.1, password: {}}}\n    address-pools:\n    - {{name: a, protocol: bgp, addresses: [192.0.2.0/28]}}\n",
        "k".repeat(100)
    );
    let errors = config::load(&[("legacy.yaml", &legacy)]).expect_err("legacy too");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "data.config.peers[0].password");
}

#[test]
fn secrets_in_the_files_are_read_for_password_secret() {
    let text = format!(
        "{PEER_WITH_SECRET}{}{}{}{}",
        secret("bgp", None, "type: kubernetes.io/basic-auth\nstringData: {password: from-string-data}"),
        secret("other", Some("shop"), "data: {password: c2VjcmV0}"),
        secret("tls", None, "type: kubernetes.io/tls\ndata: {password: '!!!'}"),
        secret("no-password", None, "data: {username: YQ==}"),
    );
    let loaded = config::load(&[("t.yaml", &text)]).expect("valid");
    let reference = |name: &str, namespace: Option<&str>| SecretReference {
        name: name.into(),
        namespace: namespace.map(str::to_string),
    };
    assert_eq!(loaded.secrets.get(&reference("bgp", None)), Some(&b"from-string-data"[..]));
    assert_eq!(loaded.secrets.get(&reference("bgp", Some("metallb-system"))), Some(&b"from-string-data"[..]));
    assert_eq!(loaded.secrets.get(&reference("other", Some("shop"))), Some(&b"secret"[..]), "base64 data");
    assert_eq!(loaded.secrets.len(), 2, "other types and Secrets without a password are not passwords");
    assert!(loaded.unchecked_secrets.is_empty());
    // check-config's listing stays as it was.
    assert_eq!(loaded.skipped.len(), 4);
    assert_eq!(loaded.skipped[0].object, "Secret/bgp");
}

#[test]
fn password_secrets_are_checked_against_the_secrets_given() {
    // No Secret at all: they live in the cluster; valid, and said to be unchecked.
    let loaded = config::load(&[("t.yaml", PEER_WITH_SECRET)]).expect("valid without Secrets");
    assert_eq!(loaded.unchecked_secrets.len(), 1);
    let u = &loaded.unchecked_secrets[0];
    assert_eq!(
        (u.file.as_str(), u.object.as_str(), u.field.as_str(), u.secret.as_str()),
        ("t.yaml", "BGPPeer/tor", "spec.passwordSecret", "metallb-system/bgp")
    );

    // Some Secret given, not that one: the speaker would refuse the peer.
    let text = format!("{PEER_WITH_SECRET}{}", secret("bgp", Some("default"), "stringData: {password: x}"));
    assert_errors(
        &config::load(&[("t.yaml", &text)]).expect_err("missing"),
        &[err(
            "t.yaml",
            "BGPPeer/tor",
            "spec.passwordSecret.name",
            K::SecretNotFound { secret: "metallb-system/bgp".into() },
        )],
    );
    // Given in another file of the same configuration: found.
    let other = secret("bgp", None, "stringData: {password: x}");
    let loaded = config::load(&[("peer.yaml", PEER_WITH_SECRET), ("secret.yaml", &other)]).expect("found");
    assert!(loaded.unchecked_secrets.is_empty());

    // Too long a password in the Secret: the peer's reference is the error.
    let long = secret("bgp", None, &format!("stringData: {{password: {}}}", "k".repeat(100)));
    assert_errors(
        &config::load(&[("t.yaml", &format!("{PEER_WITH_SECRET}{long}"))]).expect_err("too long"),
        &[err(
            "t.yaml",
            "BGPPeer/tor",
            "spec.passwordSecret",
            K::SecretPasswordTooLong { secret: "metallb-system/bgp".into(), len: 100, max: 80 },
        )],
    );

    // Not base64: the Secret is the error, and the peer is not told again.
    let bad = secret("bgp", None, "data: {password: 'not base64!'}");
    assert_errors(
        &config::load(&[("t.yaml", &format!("{PEER_WITH_SECRET}{bad}"))]).expect_err("bad base64"),
        &[err("t.yaml", "Secret/bgp", "data.password", K::SecretNotBase64)],
    );
    let number = secret("bgp", None, "stringData: {password: 5}");
    assert_errors(
        &config::load(&[("t.yaml", &format!("{PEER_WITH_SECRET}{number}"))]).expect_err("not a string"),
        &[err("t.yaml", "Secret/bgp", "stringData.password", K::Decode("must be a string".into()))],
    );
}

#[test]
fn what_no_socket_could_do_is_an_error() {
    let peer = |extra: &str| {
        format!(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: tor}}\nspec: {{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1{extra}}}\n"
        )
    };
    let errors = config::load(&[("t.yaml", &peer(", sourceAddress: '2001:db8::2'"))]).expect_err("family");
    assert_errors(
        &errors,
        &[err(
            "t.yaml",
            "BGPPeer/tor",
            "spec.sourceAddress",
            K::WrongFamily { ip: "2001:db8::2".parse().expect("IP"), expected: "IPv4" },
        )],
    );
    assert!(config::load(&[("t.yaml", &peer(", sourceAddress: 192.0.2.2, vrf: abcdefghijklmno"))]).is_ok(), "15 bytes");
    let errors = config::load(&[("t.yaml", &peer(", vrf: abcdefghijklmnop"))]).expect_err("16 bytes");
    assert_errors(&errors, &[err("t.yaml", "BGPPeer/tor", "spec.vrf", K::DeviceNameTooLong { len: 16, max: 15 })]);
}

const POOL: &str =
    "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [192.0.2.0/28]}\n";

#[test]
fn a_secret_reference_without_a_name_is_unset() {
    // What MetalLB's converter and Go clients write when no Secret is used.
    let peer = |extra: &str| {
        format!(
            "{POOL}---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: tor}}\nspec: {{myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, {extra}}}\n"
        )
    };
    for (extra, password) in [
        ("passwordSecret: {}", None),
        ("passwordSecret: {namespace: metallb-system}", None),
        ("passwordSecret: {}, password: s3cret", Some(Password::Plain("s3cret".into()))),
    ] {
        let text = peer(extra);
        let loaded = config::load(&[("c.yaml", &text)]).unwrap_or_else(|e| panic!("{extra}: {}", lines(&e)));
        assert_eq!(loaded.config.peers[0].password, password, "{extra}");
        assert!(loaded.unchecked_secrets.is_empty(), "{extra}");
    }
}

#[test]
fn the_operators_metallb_object_is_skipped() {
    let text = format!(
        "{POOL}---\napiVersion: metallb.io/v1beta1\nkind: MetalLB\nmetadata: {{name: metallb, namespace: metallb-system}}\nspec: {{logLevel: debug}}\n"
    );
    let loaded = config::load(&[("c.yaml", &text)]).unwrap_or_else(|e| panic!("{}", lines(&e)));
    assert_eq!(loaded.config.pools.len(), 1);
    let skipped: Vec<(&str, &str)> = loaded.skipped.iter().map(|s| (s.file.as_str(), s.object.as_str())).collect();
    assert_eq!(skipped, [("c.yaml", "MetalLB/metallb")]);
}

#[test]
fn address_pools_of_metallb_0_13_load_as_a_pool_and_its_advertisements() {
    let text = "apiVersion: metallb.io/v1beta1
kind: AddressPool
metadata: {name: l2}
spec: {protocol: layer2, addresses: [192.0.2.0/28], autoAssign: false, avoidBuggyIPs: true}
---
apiVersion: metallb.io/v1alpha1
kind: AddressPool
metadata: {name: bgp}
spec:
  protocol: bgp
  addresses: [198.51.100.0/24]
  bgpAdvertisements:
  - {aggregationLength: 24, localPref: 100, communities: [65535:65282]}
  - {}
---
apiVersion: metallb.io/v1beta1
kind: AddressPool
metadata: {name: plain}
spec: {protocol: bgp, addresses: [203.0.113.0/28]}
";
    let loaded = config::load(&[("pools.yaml", text)]).unwrap_or_else(|e| panic!("{}", lines(&e)));
    let c = &loaded.config;
    assert_eq!(names(&c.pools, |p| &p.name), ["bgp", "l2", "plain"]);
    let l2 = c.pool("l2").expect("l2");
    assert!(!l2.auto_assign && l2.avoid_buggy_ips);
    assert_eq!(c.l2_advertisements.len(), 1);
    assert_eq!((c.l2_advertisements[0].name.as_str(), &c.l2_advertisements[0].pools), ("l2", &strings(&["l2"])));
    let bgp: Vec<(&str, u8, Option<u32>, &[String])> = c
        .bgp_advertisements
        .iter()
        .map(|a| (a.name.as_str(), a.aggregation_length, a.local_pref, a.pools.as_slice()))
        .collect();
    let (b, p) = (strings(&["bgp"]), strings(&["plain"]));
    assert_eq!(bgp, [("bgp-1", 24, Some(100), &b[..]), ("bgp-2", 32, None, &b[..]), ("plain", 32, None, &p[..])]);
    assert_eq!(c.bgp_advertisements[0].communities, [standard(65535, 65282)]);
    // Every generated resource says where it came from.
    assert!(loaded.resources.iter().all(|r| r.origin.object.starts_with("AddressPool/") && r.origin.legacy.is_some()));
}

#[test]
fn address_pool_errors_point_into_the_address_pool() {
    let text = "apiVersion: metallb.io/v1beta1
kind: AddressPool
metadata: {name: a}
spec:
  protocol: bgp
  addresses: [192.0.2.0/24]
  bgpAdvertisements:
  - {aggregationLength: 24}
  - {aggregationLength: 99}
---
apiVersion: metallb.io/v1beta1
kind: AddressPool
metadata: {name: b}
spec: {addresses: [192.0.3.0/24], autoAsign: false}
---
apiVersion: metallb.io/v1beta1
kind: AddressPool
metadata: {name: c}
spec: {protocol: layer2, addresses: [192.0.4.0/24], bgpAdvertisements: [{}]}
";
    let f = "a.yaml";
    let errors = config::load(&[(f, text)]).expect_err("invalid");
    assert_errors(
        &errors,
        &[
            err(
                f,
                "AddressPool/a",
                "spec.bgpAdvertisements[1].aggregationLength",
                K::AggregationOutOfRange { length: 99, family: "IPv4", max: 32 },
            ),
            err(f, "AddressPool/b", "spec.protocol", K::MissingProtocol),
            err(f, "AddressPool/b", "spec.autoAsign", K::UnknownField),
            err(f, "AddressPool/c", "spec.bgpAdvertisements", K::AdvertisementsOnLayer2Pool),
        ],
    );
}

#[test]
fn local_asn_is_an_asn_of_v1beta2_and_decides_ibgp() {
    let peer = |version: &str, name: &str, spec: &str| {
        format!(
            "---\napiVersion: metallb.io/{version}\nkind: BGPPeer\nmetadata: {{name: {name}}}\nspec: {{peerAddress: 192.0.2.1, {spec}}}\n"
        )
    };
    let text = format!("{POOL}{}", peer("v1beta2", "ok", "myASN: 64500, localASN: 64501, peerASN: 64502"));
    let loaded = config::load(&[("c.yaml", &text)]).unwrap_or_else(|e| panic!("{}", lines(&e)));
    let p = &loaded.config.peers[0];
    assert_eq!((p.my_asn, p.local_asn, p.session_asn(), p.is_ibgp()), (64500, Some(64501), 64501, false));
    let text = format!(
        "{POOL}{}{}{}{}",
        peer("v1beta2", "zero", "myASN: 64500, localASN: 0, peerASN: 64502"),
        peer("v1beta1", "old", "myASN: 64500, localASN: 64501, peerASN: 64502"),
        // iBGP by localASN, though myASN differs from the peer's: no multi-hop.
        peer("v1beta2", "ibgp", "myASN: 64500, localASN: 64502, peerASN: 64502, ebgpMultiHop: true"),
        // eBGP by localASN, though myASN is the peer's: multi-hop allowed.
        peer("v1beta2", "ebgp", "myASN: 64502, localASN: 64501, peerASN: 64502, ebgpMultiHop: true"),
    );
    let f = "c.yaml";
    assert_errors(
        &config::load(&[(f, &text)]).expect_err("invalid"),
        &[
            err(f, "BGPPeer/zero", "spec.localASN", K::AsnZero),
            err(f, "BGPPeer/old", "spec.localASN", K::UnknownField),
            err(f, "BGPPeer/ibgp", "spec.ebgpMultiHop", K::EbgpMultiHopOnIbgp),
        ],
    );
}

#[test]
fn l2_advertisement_service_selectors_and_preferred_node_selectors() {
    const POOL: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [192.0.2.0/28]}\n---\n";
    let good = format!(
        "{POOL}apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: l2}}\nspec:\n  serviceSelectors: [{{matchLabels: {{tier: web}}}}]\n  preferredNodeSelectors:\n  - {{weight: 80, preference: {{matchLabels: {{zone: a}}}}}}\n  - {{weight: 20, preference: {{matchExpressions: [{{key: gpu, operator: DoesNotExist}}]}}}}\n"
    );
    let loaded = config::load(&[("l2.yaml", &good)]).unwrap_or_else(|e| panic!("{}", lines(&e)));
    let l2 = &loaded.config.l2_advertisements[0];
    assert_eq!(l2.service_selectors, vec![selector(&[("tier", "web")])]);
    let weights: Vec<u8> = l2.preferred_node_selectors.iter().map(|p| p.weight).collect();
    assert_eq!(weights, [80, 20]);
    assert_eq!(l2.preferred_node_selectors[0].preference, selector(&[("zone", "a")]));

    // Weights are 1-100, as Kubernetes' preferred scheduling terms.
    for weight in ["0", "101", "-3"] {
        let bad = format!(
            "{POOL}apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: l2}}\nspec:\n  preferredNodeSelectors: [{{weight: {weight}, preference: {{matchLabels: {{zone: a}}}}}}]\n"
        );
        let errors = config::load(&[("l2.yaml", &bad)]).err().unwrap_or_else(|| panic!("weight {weight} loads"));
        assert_eq!(errors.len(), 1, "{}", lines(&errors));
        assert_eq!(errors[0].field, "spec.preferredNodeSelectors[0].weight", "{}", lines(&errors));
    }
    // An invalid selector is reported where it is.
    let bad = format!(
        "{POOL}apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: l2}}\nspec:\n  serviceSelectors: [{{matchExpressions: [{{key: tier, operator: In}}]}}]\n"
    );
    let errors = config::load(&[("l2.yaml", &bad)]).err().unwrap_or_else(|| panic!("loads"));
    assert!(errors.iter().any(|e| e.field.starts_with("spec.serviceSelectors[0]")), "{}", lines(&errors));
}

// ---------------------------------------------------------------------------
// Already-parsed objects (the Kubernetes API's way in)
// ---------------------------------------------------------------------------

/// Every valid fixture, as parsed objects through `load_objects`, gives
/// the `Config` its text gives through `load`: one reader, one validation.
#[test]
fn parsed_objects_load_as_their_files_do() {
    let dir = fixtures().join("valid");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(!names.is_empty());
    for name in names {
        let text = fixture(&format!("valid/{name}"));
        let from_text = config::load(&[(name.as_str(), text.as_str())]).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let docs = lb_core::manifest::documents(&text).expect("valid YAML");
        let objects: Vec<(&str, serde_json::Value)> = docs.into_iter().map(|d| (name.as_str(), d)).collect();
        let from_objects = config::load_objects(&objects).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(from_objects.config, from_text.config, "{name}");
        assert_eq!(from_objects.unchecked_secrets, from_text.unchecked_secrets, "{name}");
    }
}

/// Objects with nothing to configure are refused as an empty file is, and
/// errors name the source given for the object.
#[test]
fn parsed_objects_are_checked_as_files_are() {
    let errors = config::load_objects(&[]).expect_err("nothing to configure");
    assert!(matches!(errors[0].kind, K::NoConfiguration { .. }), "{errors:?}");

    let pool = serde_json::json!({
        "apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": "p", "namespace": "metallb-system", "uid": "u", "resourceVersion": "1"},
        "spec": {"addresses": ["192.0.2.0/33"]},
    });
    let errors = config::load_objects(&[("kubernetes", pool)]).expect_err("bad prefix");
    assert_eq!(errors[0].file, "kubernetes");
    assert_eq!(errors[0].object, "IPAddressPool/p");
    assert_eq!(errors[0].field, "spec.addresses[0]");
}
