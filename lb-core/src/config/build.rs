//! Validation and defaults: from resources as written to the [`Config`]
//! model. Follows MetalLB's rules, reports every error it finds (one
//! resource's problems never hide another's), and accepts what MetalLB's
//! native mode refuses but this project implements (IPv6 over BGP, large
//! communities, BFD, graceful restart, dynamic ASNs).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::crd::{self, Object, Resource};
use super::error::{ConfigError, ConfigErrorKind as E};
use super::secret::{FileSecrets, key_of};
use super::{
    BfdProfile, BgpAdvertisement, BgpPeer, Config, L2Advertisement, Origin, Password, PeerAsn, Pool, ServiceAllocation,
    SourcedResource, UncheckedSecret,
};
use crate::addr::{AddressBlock, Family};
use crate::community::Community;
use crate::duration::parse_duration;
use crate::peering::{MAX_DEVICE_NAME_LEN, MAX_HOLD_TIME, MD5_MAX_KEY_LEN, hold_time_secs};
use crate::selector::LabelSelector;

const DEFAULT_HOLD: Duration = Duration::from_secs(90);
/// RFC 4271 §4.2: a hold time, unless 0, is at least 3 s.
const MIN_HOLD: Duration = Duration::from_secs(3);
const DEFAULT_PORT: u16 = 179;

/// Collects errors for one resource.
struct Check<'a> {
    origin: &'a Origin,
    errors: &'a mut Vec<ConfigError>,
}

impl Check<'_> {
    fn err(&mut self, field: &str, kind: E) {
        self.errors.push(self.origin.error(field, kind));
    }

    fn selectors(&mut self, field: &str, selectors: &[LabelSelector]) {
        for (i, s) in selectors.iter().enumerate() {
            if let Err(e) = s.validate() {
                self.err(&format!("{field}[{i}]"), E::Selector(e));
            }
            if selectors[..i].contains(s) {
                self.err(&format!("{field}[{i}]"), E::Duplicate { value: s.to_string() });
            }
        }
    }

    fn unique(&mut self, field: &str, values: &[String]) {
        for (i, v) in values.iter().enumerate() {
            if values[..i].contains(v) {
                self.err(&format!("{field}[{i}]"), E::Duplicate { value: v.clone() });
            }
        }
    }

    fn single_line(&mut self, field: &str, value: Option<&str>) {
        if value.is_some_and(|v| v.contains(['\n', '\r'])) {
            self.err(field, E::LineBreak);
        }
    }

    fn range(&mut self, field: &str, value: Option<i64>, min: i64, max: i64, default: u32) -> u32 {
        match value {
            None => default,
            Some(v) if (min..=max).contains(&v) => v as u32,
            Some(v) => {
                self.err(field, E::OutOfRange { value: v, min, max });
                default
            }
        }
    }

    fn ip(&mut self, field: &str, text: Option<&str>) -> Option<IpAddr> {
        let text = text?;
        match text.trim().parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.err(field, E::InvalidIp { text: text.into() });
                None
            }
        }
    }

    fn duration(&mut self, field: &str, text: Option<&str>) -> Option<Duration> {
        match parse_duration(text?) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(field, E::Duration(e));
                None
            }
        }
    }
}

/// Validates `resources` into a [`Config`], appending every problem to `errors`.
pub fn build(resources: &[SourcedResource], errors: &mut Vec<ConfigError>) -> Config {
    check_duplicate_names(resources, errors);
    let mut config = Config::default();
    let mut pool_sources = Vec::new();
    let mut bgp_sources = Vec::new();
    let mut l2_sources = Vec::new();
    let mut peer_sources = Vec::new();

    for r in resources {
        match &r.resource {
            Resource::BfdProfile(o) => config.bfd_profiles.push(bfd_profile(&r.origin, o, errors)),
            Resource::Community(o) => communities(&r.origin, o, &mut config.communities, errors),
            Resource::IpAddressPool(o) => pool_sources.push((&r.origin, o)),
            Resource::BgpAdvertisement(o) => bgp_sources.push((&r.origin, o)),
            Resource::L2Advertisement(o) => l2_sources.push((&r.origin, o)),
            Resource::BgpPeer(o) => peer_sources.push((&r.origin, o)),
        }
    }

    let mut blocks = Vec::new();
    let pools: Vec<Option<Pool>> =
        pool_sources.iter().enumerate().map(|(p, (origin, o))| pool(p, origin, o, &mut blocks, errors)).collect();
    let overlapping = check_overlaps(&blocks, &pool_sources, errors);
    for (p, pool) in pools.into_iter().enumerate() {
        if let Some(pool) = pool.filter(|_| !overlapping.contains(&p)) {
            config.pools.push(pool);
        }
    }
    config.pools.sort_by(|a, b| a.name.cmp(&b.name));
    config.pools.dedup_by(|a, b| a.name == b.name);

    for (origin, o) in peer_sources {
        if let Some(peer) = peer(origin, o, &config.bfd_profiles, errors) {
            config.peers.push(peer);
        }
    }
    let mut bgp_origins = Vec::new();
    for (origin, o) in bgp_sources {
        if let Some(adv) = bgp_advertisement(origin, o, &config, errors) {
            config.bgp_advertisements.push(adv);
            bgp_origins.push(origin);
        }
    }
    check_local_prefs(&config, &bgp_origins, errors);
    for (origin, o) in l2_sources {
        config.l2_advertisements.push(l2_advertisement(origin, o, &config, errors));
    }
    config
}

fn check_duplicate_names(resources: &[SourcedResource], errors: &mut Vec<ConfigError>) {
    let mut seen: HashMap<(&str, &str), &Origin> = HashMap::new();
    for r in resources {
        let name = r.resource.metadata().name.as_str();
        if name.is_empty() {
            if r.origin.legacy.is_some() {
                errors.push(r.origin.error("metadata.name", E::MissingName));
            }
            continue;
        }
        let kind = r.resource.kind();
        if let Some(first) = seen.get(&(kind, name)) {
            let other = format!("{}: {}", first.file, first.object);
            errors.push(
                r.origin.error("metadata.name", E::DuplicateName { kind: kind.into(), name: name.into(), other }),
            );
        } else {
            seen.insert((kind, name), &r.origin);
        }
    }
}

fn bfd_profile(origin: &Origin, o: &Object<crd::BfdProfileSpec>, errors: &mut Vec<ConfigError>) -> BfdProfile {
    let mut c = Check { origin, errors };
    let s = &o.spec;
    BfdProfile {
        name: o.metadata.name.clone(),
        receive_interval: c.range("spec.receiveInterval", s.receive_interval, 10, 60000, 300),
        transmit_interval: c.range("spec.transmitInterval", s.transmit_interval, 10, 60000, 300),
        detect_multiplier: c.range("spec.detectMultiplier", s.detect_multiplier, 2, 255, 3),
        echo_interval: c.range("spec.echoInterval", s.echo_interval, 10, 60000, 50),
        echo_mode: s.echo_mode.unwrap_or(false),
        passive_mode: s.passive_mode.unwrap_or(false),
        minimum_ttl: c.range("spec.minimumTtl", s.minimum_ttl, 1, 254, 254),
    }
}

fn communities(
    origin: &Origin,
    o: &Object<crd::CommunitySpec>,
    aliases: &mut BTreeMap<String, Community>,
    errors: &mut Vec<ConfigError>,
) {
    let mut c = Check { origin, errors };
    for (i, alias) in o.spec.communities.iter().enumerate() {
        if alias.name.is_empty() {
            c.err(&format!("spec.communities[{i}].name"), E::Required);
            continue;
        }
        match alias.value.parse::<Community>() {
            Ok(value) => {
                if aliases.insert(alias.name.clone(), value).is_some() {
                    c.err(
                        &format!("spec.communities[{i}].name"),
                        E::DuplicateCommunityAlias { name: alias.name.clone() },
                    );
                }
            }
            Err(e) => c.err(&format!("spec.communities[{i}].value"), E::Community(e)),
        }
    }
}

/// One address block as written, for the overlap check.
struct BlockEntry {
    block: AddressBlock,
    /// Index of its pool among the pools.
    pool: usize,
    /// Index in its pool's `spec.addresses`.
    index: usize,
}

fn pool(
    pool_index: usize,
    origin: &Origin,
    o: &Object<crd::IpAddressPoolSpec>,
    entries: &mut Vec<BlockEntry>,
    errors: &mut Vec<ConfigError>,
) -> Option<Pool> {
    let mut c = Check { origin, errors };
    let name = o.metadata.name.clone();
    let s = &o.spec;
    if s.addresses.is_empty() {
        c.err("spec.addresses", E::NoAddresses);
    }
    let mut blocks = Vec::new();
    let mut valid = true;
    for (i, text) in s.addresses.iter().enumerate() {
        match text.parse::<AddressBlock>() {
            Ok(block) => {
                entries.push(BlockEntry { block, pool: pool_index, index: i });
                blocks.push(block);
            }
            Err(e) => {
                c.err(&format!("spec.addresses[{i}]"), E::Address(e));
                valid = false;
            }
        }
    }
    let allocation = s.service_allocation.as_ref().map(|a| {
        c.unique("spec.serviceAllocation.namespaces", &a.namespaces);
        c.selectors("spec.serviceAllocation.namespaceSelectors", &a.namespace_selectors);
        c.selectors("spec.serviceAllocation.serviceSelectors", &a.service_selectors);
        ServiceAllocation {
            priority: a.priority,
            namespaces: a.namespaces.clone(),
            namespace_selectors: a.namespace_selectors.clone(),
            service_selectors: a.service_selectors.clone(),
        }
    });
    (valid && !blocks.is_empty() && !name.is_empty()).then(|| Pool {
        name,
        labels: o.metadata.labels.clone(),
        blocks,
        auto_assign: s.auto_assign.unwrap_or(true),
        avoid_buggy_ips: s.avoid_buggy_ips.unwrap_or(false),
        allocation,
    })
}

/// Every block that shares addresses with a block written before it (in
/// file order, across pools) is an error naming the first such block, and
/// its pool is dropped. Returns the indices of the pools dropped.
///
/// Sorted by first address rather than compared pairwise: a configuration
/// of 80,000 blocks would otherwise take seconds to validate on every
/// change. For each block, the first-written block overlapping it is either
/// one that starts no later and is still open at its start (a sweep over
/// the blocks by first address, keeping those open by their file order), or
/// one that starts inside it (a range minimum over the blocks sorted by
/// first address).
fn check_overlaps(
    entries: &[BlockEntry],
    pools: &[(&Origin, &Object<crd::IpAddressPoolSpec>)],
    errors: &mut Vec<ConfigError>,
) -> std::collections::BTreeSet<usize> {
    use std::cmp::Reverse;
    use std::collections::{BTreeSet, BinaryHeap};

    use crate::addr::ip_to_u128;

    let key =
        |e: &BlockEntry| (e.block.family() == Family::V6, ip_to_u128(e.block.first()), ip_to_u128(e.block.last()));
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_unstable_by_key(|&i| key(&entries[i]));
    let n = order.len();
    let mut first_overlap = vec![usize::MAX; n];

    // Blocks that start at or before a given one and are still open there.
    let mut open = BTreeSet::new();
    let mut closing = BinaryHeap::new();
    let mut g = 0;
    while g < n {
        let (v6, start, _) = key(&entries[order[g]]);
        let mut h = g;
        while h < n && key(&entries[order[h]]).0 == v6 && key(&entries[order[h]]).1 == start {
            h += 1;
        }
        while let Some(&Reverse((end_v6, end, i))) = closing.peek() {
            if end_v6 == v6 && end >= start {
                break;
            }
            closing.pop();
            open.remove(&i);
        }
        for &i in &order[g..h] {
            open.insert(i);
            closing.push(Reverse((v6, key(&entries[i]).2, i)));
        }
        for &i in &order[g..h] {
            if let Some(&j) = open.iter().find(|&&j| j != i) {
                first_overlap[i] = first_overlap[i].min(j);
            }
        }
        g = h;
    }

    // Blocks that start strictly inside a given one: a range of `order`,
    // whose smallest file index a sparse table gives in constant time.
    let mut table = vec![order.clone()];
    let mut width = 1;
    while width * 2 <= n {
        let prev = &table[table.len() - 1];
        let next: Vec<usize> = (0..=n - width * 2).map(|k| prev[k].min(prev[k + width])).collect();
        table.push(next);
        width *= 2;
    }
    let range_min = |from: usize, to: usize| {
        // Smallest of order[from..to], `from < to`.
        let level = (usize::BITS - 1 - (to - from).leading_zeros()) as usize;
        table[level][from].min(table[level][to - (1 << level)])
    };
    for (position, &i) in order.iter().enumerate() {
        let (v6, start, end) = key(&entries[i]);
        let from = order[position..].partition_point(|&j| key(&entries[j]) <= (v6, start, u128::MAX)) + position;
        let to = order.partition_point(|&j| {
            let (jv6, jstart, _) = key(&entries[j]);
            (jv6, jstart) <= (v6, end)
        });
        if from < to {
            first_overlap[i] = first_overlap[i].min(range_min(from, to));
        }
    }

    let mut dropped = BTreeSet::new();
    for (i, entry) in entries.iter().enumerate() {
        let j = first_overlap[i];
        if j >= i {
            continue;
        }
        let (origin, o) = pools[entry.pool];
        let other = &entries[j];
        errors.push(origin.error(
            &format!("spec.addresses[{}]", entry.index),
            E::Overlap {
                block: o.spec.addresses[entry.index].clone(),
                other_block: other.block.to_string(),
                other_pool: pools[other.pool].1.metadata.name.clone(),
            },
        ));
        dropped.insert(entry.pool);
    }
    dropped
}

fn peer(
    origin: &Origin,
    o: &Object<crd::BgpPeerSpec>,
    bfd: &[BfdProfile],
    errors: &mut Vec<ConfigError>,
) -> Option<BgpPeer> {
    let mut c = Check { origin, errors };
    let s = &o.spec;
    let before = c.errors.len();
    let my_asn = match s.my_asn {
        None => {
            c.err("spec.myASN", E::Required);
            0
        }
        Some(0) => {
            c.err("spec.myASN", E::AsnZero);
            0
        }
        Some(asn) => asn,
    };
    // A valid ASN, as myASN: 0 is reserved (RFC 7607).
    if s.local_asn == Some(0) {
        c.err("spec.localASN", E::AsnZero);
    }
    let peer_asn = match (s.peer_asn, s.dynamic_asn.as_deref()) {
        (Some(_), Some(_)) => {
            c.err("spec.dynamicASN", E::PeerAsnAndDynamicAsn);
            None
        }
        (None, None) => {
            c.err("spec.peerASN", E::MissingPeerAsn);
            None
        }
        (Some(0), None) => {
            c.err("spec.peerASN", E::AsnZero);
            None
        }
        (Some(asn), None) => Some(PeerAsn::Fixed(asn)),
        (None, Some("internal")) => Some(PeerAsn::Internal),
        (None, Some("external")) => Some(PeerAsn::External),
        (None, Some(other)) => {
            c.err("spec.dynamicASN", E::InvalidDynamicAsn(other.into()));
            None
        }
    };
    let address = c.ip("spec.peerAddress", s.peer_address.as_deref());
    match (&s.peer_address, &s.interface) {
        (None, None) => c.err("spec.peerAddress", E::MissingPeerAddress),
        (Some(_), Some(_)) => c.err("spec.interface", E::PeerAddressAndInterface),
        _ => {}
    }
    let source_address = c.ip("spec.sourceAddress", s.source_address.as_deref());
    // A socket has one family: the driver could not connect from there.
    if let (Some(source), Some(peer)) = (source_address, address)
        && Family::of(source) != Family::of(peer)
    {
        c.err("spec.sourceAddress", E::WrongFamily { ip: source, expected: Family::of(peer).k8s_name() });
    }
    // SO_BINDTODEVICE takes a device name, at most IFNAMSIZ - 1 bytes; a
    // longer one names no device.
    for (field, name) in [("spec.vrf", &s.vrf), ("spec.interface", &s.interface)] {
        if let Some(name) = name.as_deref()
            && name.len() > MAX_DEVICE_NAME_LEN
        {
            c.err(field, E::DeviceNameTooLong { len: name.len(), max: MAX_DEVICE_NAME_LEN });
        }
    }
    let port = match s.peer_port {
        None => DEFAULT_PORT,
        Some(p @ 1..=65535) => p as u16,
        Some(p) => {
            c.err("spec.peerPort", E::OutOfRange { value: i64::from(p), min: 1, max: 65535 });
            DEFAULT_PORT
        }
    };
    let hold = c.duration("spec.holdTime", s.hold_time.as_deref());
    let keepalive = c.duration("spec.keepaliveTime", s.keepalive_time.as_deref());
    let (hold_time, keepalive_time) = match (hold, keepalive) {
        (Some(h), Some(k)) => (h, k),
        (Some(h), None) => (h, h / 3),
        (None, Some(k)) if s.hold_time.is_none() => (k * 3, k),
        _ => (DEFAULT_HOLD, DEFAULT_HOLD / 3),
    };
    // Compared exactly, not rounded: rounding would let 2.5 s through, below
    // the RFC's minimum (MetalLB truncates, which rejects it).
    if !hold_time.is_zero() && hold_time < MIN_HOLD {
        c.err("spec.holdTime", E::HoldTimeTooShort { hold: hold_time });
    }
    if keepalive_time > hold_time {
        c.err("spec.keepaliveTime", E::KeepaliveAboveHold { keepalive: keepalive_time, hold: hold_time });
    }
    // The OPEN message carries the hold time in 16 bits; MetalLB takes
    // connectTime in whole seconds up to the same bound.
    let max_time = MAX_HOLD_TIME;
    if hold_time_secs(hold_time).is_none() {
        c.err("spec.holdTime", E::DurationOutOfRange { value: hold_time, min: MIN_HOLD, max: max_time });
    }
    let connect_time = c.duration("spec.connectTime", s.connect_time.as_deref());
    if let Some(t) = connect_time
        && !(Duration::from_secs(1)..=max_time).contains(&t)
    {
        c.err("spec.connectTime", E::DurationOutOfRange { value: t, min: Duration::from_secs(1), max: max_time });
    }
    let router_id = s.router_id.as_deref().and_then(|text| match text.trim().parse::<Ipv4Addr>() {
        Ok(id) => Some(id),
        Err(_) => {
            c.err("spec.routerID", E::InvalidRouterId { text: text.into() });
            None
        }
    });
    c.selectors("spec.nodeSelectors", &s.node_selectors);
    c.single_line("spec.password", s.password.as_deref());
    c.single_line("spec.vrf", s.vrf.as_deref());
    c.single_line("spec.interface", s.interface.as_deref());
    // `passwordSecret: {}` is what MetalLB's converter and Go clients
    // write when no Secret is used (the field is a struct, not a pointer):
    // a reference without a name is no reference.
    let password_secret = s.password_secret.as_ref().filter(|r| !r.name.is_empty());
    let password = match (&s.password, password_secret) {
        (Some(_), Some(_)) => {
            c.err("spec.passwordSecret", E::PasswordAndSecret);
            None
        }
        (Some(p), None) => {
            if p.len() > MD5_MAX_KEY_LEN {
                c.err("spec.password", E::PasswordTooLong { len: p.len(), max: MD5_MAX_KEY_LEN });
            }
            Some(Password::Plain(p.clone()))
        }
        (None, Some(secret)) => Some(Password::Secret(secret.clone())),
        (None, None) => None,
    };
    if let Some(profile) = &s.bfd_profile
        && !bfd.iter().any(|b| b.name == *profile)
    {
        c.err("spec.bfdProfile", E::UnknownBfdProfile(profile.clone()));
    }
    let ebgp_multihop = s.ebgp_multi_hop.unwrap_or(false);
    let peer = BgpPeer {
        name: o.metadata.name.clone(),
        my_asn,
        local_asn: s.local_asn,
        peer_asn: peer_asn?,
        address,
        interface: s.interface.clone(),
        source_address,
        port,
        hold_time,
        keepalive_time,
        connect_time,
        router_id,
        node_selectors: s.node_selectors.clone(),
        password,
        bfd_profile: s.bfd_profile.clone(),
        ebgp_multihop,
        graceful_restart: s.enable_graceful_restart.unwrap_or(false),
        vrf: s.vrf.clone().filter(|v| !v.is_empty()),
        disable_mp: s.disable_mp.unwrap_or(false),
        dual_stack_address_family: s.dual_stack_address_family.unwrap_or(false),
    };
    if ebgp_multihop && my_asn != 0 && peer.is_ibgp() {
        c.err("spec.ebgpMultiHop", E::EbgpMultiHopOnIbgp);
    }
    (c.errors.len() == before).then_some(peer)
}

/// Checks every `passwordSecret` against the Secrets the files give, as a
/// speaker would when it starts the session: the Secret must be there and
/// its password must fit a TCP MD5 key. When the files give no Secret at
/// all, nothing can be checked; the references are returned instead.
pub fn check_secret_references(
    resources: &[SourcedResource],
    secrets: &FileSecrets,
    errors: &mut Vec<ConfigError>,
) -> Vec<UncheckedSecret> {
    let mut unchecked = Vec::new();
    for r in resources {
        let Resource::BgpPeer(o) = &r.resource else { continue };
        // With both set, or without a name, the peer is already in error.
        let (None, Some(reference)) = (&o.spec.password, &o.spec.password_secret) else { continue };
        if reference.name.is_empty() {
            continue;
        }
        let key = key_of(reference);
        if !secrets.any {
            unchecked.push(UncheckedSecret {
                file: r.origin.file.to_string(),
                object: r.origin.object.clone(),
                field: r.origin.field("spec.passwordSecret"),
                secret: key,
            });
            continue;
        }
        match secrets.secrets.get(reference) {
            None if secrets.unreadable.contains(&key) => {}
            None => errors.push(r.origin.error("spec.passwordSecret.name", E::SecretNotFound { secret: key })),
            Some(password) if password.len() > MD5_MAX_KEY_LEN => errors.push(r.origin.error(
                "spec.passwordSecret",
                E::SecretPasswordTooLong { secret: key, len: password.len(), max: MD5_MAX_KEY_LEN },
            )),
            Some(_) => {}
        }
    }
    unchecked
}

/// Pools named in `names` or matched by `selectors`; all pools when both are empty.
fn resolve_pools(config: &Config, names: &[String], selectors: &[LabelSelector]) -> Vec<String> {
    config
        .pools
        .iter()
        .filter(|p| {
            (names.is_empty() && selectors.is_empty())
                || names.contains(&p.name)
                || selectors.iter().any(|s| s.matches(&p.labels))
        })
        .map(|p| p.name.clone())
        .collect()
}

fn aggregation(c: &mut Check<'_>, field: &str, value: Option<i64>, family: Family) -> u8 {
    let max = family.bits();
    match value {
        None => max,
        Some(v) if (0..=i64::from(max)).contains(&v) => v as u8,
        Some(v) => {
            c.err(field, E::AggregationOutOfRange { length: v, family: family.k8s_name(), max });
            max
        }
    }
}

fn bgp_advertisement(
    origin: &Origin,
    o: &Object<crd::BgpAdvertisementSpec>,
    config: &Config,
    errors: &mut Vec<ConfigError>,
) -> Option<BgpAdvertisement> {
    let mut c = Check { origin, errors };
    let s = &o.spec;
    let before = c.errors.len();
    let aggregation_length = aggregation(&mut c, "spec.aggregationLength", s.aggregation_length, Family::V4);
    let aggregation_length_v6 = aggregation(&mut c, "spec.aggregationLengthV6", s.aggregation_length_v6, Family::V6);
    let mut communities = Vec::new();
    for (i, text) in s.communities.iter().enumerate() {
        let field = format!("spec.communities[{i}]");
        if s.communities[..i].contains(text) {
            c.err(&field, E::Duplicate { value: text.clone() });
        }
        match config.communities.get(text) {
            Some(value) => communities.push(*value),
            None => match text.parse::<Community>() {
                Ok(value) => communities.push(value),
                Err(e) => c.err(&field, E::Community(e)),
            },
        }
    }
    communities.sort();
    communities.dedup();
    c.unique("spec.ipAddressPools", &s.ip_address_pools);
    c.unique("spec.peers", &s.peers);
    c.selectors("spec.ipAddressPoolSelectors", &s.ip_address_pool_selectors);
    c.selectors("spec.nodeSelectors", &s.node_selectors);
    c.selectors("spec.serviceSelectors", &s.service_selectors);
    if !s.service_selectors.is_empty() {
        if aggregation_length != 32 {
            c.err("spec.aggregationLength", E::AggregationWithServiceSelectors { length: aggregation_length });
        }
        if aggregation_length_v6 != 128 {
            c.err("spec.aggregationLengthV6", E::AggregationWithServiceSelectors { length: aggregation_length_v6 });
        }
    }
    let pools = resolve_pools(config, &s.ip_address_pools, &s.ip_address_pool_selectors);
    for pool in pools.iter().filter_map(|n| config.pool(n)) {
        for block in &pool.blocks {
            let (field, length) = match block.family() {
                Family::V4 => ("spec.aggregationLength", aggregation_length),
                Family::V6 => ("spec.aggregationLengthV6", aggregation_length_v6),
            };
            let mask = block.widest_prefix_len();
            if length < mask {
                c.err(
                    field,
                    E::AggregationShorterThanBlock { length, mask, block: block.to_string(), pool: pool.name.clone() },
                );
            }
        }
    }
    (c.errors.len() == before).then(|| BgpAdvertisement {
        name: o.metadata.name.clone(),
        aggregation_length,
        aggregation_length_v6,
        local_pref: s.local_pref,
        communities,
        pools,
        node_selectors: s.node_selectors.clone(),
        peers: s.peers.clone(),
        service_selectors: s.service_selectors.clone(),
    })
}

/// MetalLB's rule: two advertisements of one pool that would give the same
/// prefix to the same peer from the same nodes must agree on LOCAL_PREF,
/// or the router would see one route with two preferences.
fn check_local_prefs(config: &Config, origins: &[&Origin], errors: &mut Vec<ConfigError>) {
    let advs = &config.bgp_advertisements;
    for (j, b) in advs.iter().enumerate() {
        for a in &advs[..j] {
            if !a.service_selectors.is_empty() || !b.service_selectors.is_empty() {
                continue;
            }
            let (pa, pb) = (a.local_pref.unwrap_or(0), b.local_pref.unwrap_or(0));
            if pa == pb {
                continue;
            }
            let peers_overlap = a.peers.is_empty() || b.peers.is_empty() || a.peers.iter().any(|p| b.peers.contains(p));
            let nodes_overlap =
                a.node_selectors.is_empty() || b.node_selectors.is_empty() || a.node_selectors == b.node_selectors;
            if !peers_overlap || !nodes_overlap {
                continue;
            }
            let shared = a.pools.iter().filter(|p| b.pools.contains(p)).filter_map(|n| config.pool(n)).find(|pool| {
                let same4 = a.aggregation_length == b.aggregation_length;
                let same6 = a.aggregation_length_v6 == b.aggregation_length_v6;
                match (pool.has_family(Family::V4), pool.has_family(Family::V6)) {
                    (true, true) => same4 || same6,
                    (true, false) => same4,
                    (false, _) => same6,
                }
            });
            if let Some(pool) = shared {
                errors.push(origins[j].error(
                    "spec.localPref",
                    E::LocalPrefConflict {
                        local_pref: pb,
                        other_local_pref: pa,
                        other: a.name.clone(),
                        pool: pool.name.clone(),
                    },
                ));
            }
        }
    }
}

fn l2_advertisement(
    origin: &Origin,
    o: &Object<crd::L2AdvertisementSpec>,
    config: &Config,
    errors: &mut Vec<ConfigError>,
) -> L2Advertisement {
    let mut c = Check { origin, errors };
    let s = &o.spec;
    c.unique("spec.ipAddressPools", &s.ip_address_pools);
    c.unique("spec.interfaces", &s.interfaces);
    c.selectors("spec.ipAddressPoolSelectors", &s.ip_address_pool_selectors);
    c.selectors("spec.nodeSelectors", &s.node_selectors);
    c.selectors("spec.serviceSelectors", &s.service_selectors);
    for (i, iface) in s.interfaces.iter().enumerate() {
        c.single_line(&format!("spec.interfaces[{i}]"), Some(iface));
    }
    let mut preferred = Vec::with_capacity(s.preferred_node_selectors.len());
    for (i, term) in s.preferred_node_selectors.iter().enumerate() {
        // As Kubernetes' preferred scheduling terms: a weight of 1-100.
        let weight = match u8::try_from(term.weight) {
            Ok(w) if (1..=100).contains(&w) => w,
            _ => {
                c.err(
                    &format!("spec.preferredNodeSelectors[{i}].weight"),
                    E::OutOfRange { value: term.weight, min: 1, max: 100 },
                );
                continue;
            }
        };
        c.selectors(&format!("spec.preferredNodeSelectors[{i}].preference"), std::slice::from_ref(&term.preference));
        preferred.push(super::PreferredNodeSelector { weight, preference: term.preference.clone() });
    }
    L2Advertisement {
        name: o.metadata.name.clone(),
        pools: resolve_pools(config, &s.ip_address_pools, &s.ip_address_pool_selectors),
        node_selectors: s.node_selectors.clone(),
        interfaces: s.interfaces.clone(),
        service_selectors: s.service_selectors.clone(),
        preferred_node_selectors: preferred,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;

    /// The pairwise rule the sweep must agree with: each block against every
    /// block written before it, the first overlapping one named.
    fn naive(entries: &[BlockEntry]) -> Vec<(usize, usize)> {
        (0..entries.len())
            .filter_map(|i| (0..i).find(|&j| entries[j].block.overlaps(&entries[i].block)).map(|j| (i, j)))
            .collect()
    }

    proptest! {
        #[test]
        fn overlaps_match_the_pairwise_check(
            raw in prop::collection::vec((any::<bool>(), 0u32..64, 0u32..8), 0..40)
        ) {
            let mut entries = Vec::new();
            let mut texts = Vec::new();
            for (i, (v6, start, len)) in raw.iter().enumerate() {
                let (first, last): (IpAddr, IpAddr) = if *v6 {
                    (format!("2001:db8::{start:x}").parse().unwrap(), format!("2001:db8::{:x}", start + len).parse().unwrap())
                } else {
                    (Ipv4Addr::from(0xc000_0200 + start).into(), Ipv4Addr::from(0xc000_0200 + start + len).into())
                };
                let block = AddressBlock::new(first, last).expect("ordered");
                texts.push(block.to_string());
                entries.push(BlockEntry { block, pool: i, index: 0 });
            }
            let origin = Origin { file: Arc::from("f"), object: "IPAddressPool/p".into(), legacy: None };
            let objects: Vec<Object<crd::IpAddressPoolSpec>> = texts.iter().enumerate().map(|(i, t)| Object {
                api_version: "metallb.io/v1beta1".into(),
                kind: "IPAddressPool".into(),
                metadata: crd::Metadata { name: format!("p{i}"), ..Default::default() },
                spec: crd::IpAddressPoolSpec { addresses: vec![t.clone()], ..Default::default() },
            }).collect();
            let pools: Vec<_> = objects.iter().map(|o| (&origin, o)).collect();
            let mut errors = Vec::new();
            let dropped = check_overlaps(&entries, &pools, &mut errors);
            let expected = naive(&entries);
            // Errors come in file order, one per pool here: the pool named is the other block's.
            let named: Vec<usize> = errors.iter().map(|e| match &e.kind {
                E::Overlap { other_pool, .. } => other_pool[1..].parse::<usize>().expect("p<index>"),
                other => panic!("{other}"),
            }).collect();
            prop_assert_eq!(named, expected.iter().map(|e| e.1).collect::<Vec<_>>());
            prop_assert_eq!(dropped.into_iter().collect::<Vec<_>>(), expected.iter().map(|e| e.0).collect::<Vec<_>>());
        }
    }
}
