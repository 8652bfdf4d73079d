//! Which interfaces an owned IP is answered on, without I/O: the driver
//! lists the host's links (from rtnetlink) as [`Link`] values and asks.
//!
//! # Rules
//!
//! A link can answer ARP only when it is up, has carrier (`LOWER_UP`), has
//! an Ethernet MAC, can broadcast, is not a loopback, is not `NOARP` and is
//! not enslaved to a bond or a bridge (the master answers, not its ports):
//! [`selectable_named`]. NDP additionally needs an IPv6 link-local address
//! on the link ([`answers_ndp`]), since a Neighbor Advertisement comes from
//! a link-local source in the kernel's world and the link without one has
//! IPv6 off.
//!
//! An IP whose L2Advertisement names no interface is answered on every link
//! that passes those rules and whose name no [`Exclusions`] entry matches
//! ([`selectable`]): by default MetalLB's list of container, bridge and
//! tunnel interfaces (`docker*`, `veth*`, `cali*`, …, `lo`). An IP whose
//! advertisement names interfaces is answered on exactly those of them that
//! exist and pass the flag rules, **whatever their names**: naming an
//! interface is the operator's explicit choice and overrides the default
//! exclusions (MetalLB applies its exclusion list to named interfaces too;
//! we do not, so a named `veth0` is answered on). [`answering_interfaces`]
//! puts the two cases together.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::wire::MacAddr;

/// One network interface of the host, as the kernel describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Link {
    /// `eth0`.
    pub name: String,
    /// The kernel's interface index.
    pub index: u32,
    /// Its Ethernet address; `None` for links without one (tunnels,
    /// WireGuard, or a hardware address that is not 6 bytes long).
    pub mac: Option<MacAddr>,
    pub flags: LinkFlags,
    /// It has an IPv6 link-local address (`fe80::/10`).
    pub ipv6_link_local: bool,
}

/// The flags of a [`Link`] that decide whether it can answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct LinkFlags {
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Carrier: the driver says the link layer is up (`IFF_LOWER_UP`).
    pub lower_up: bool,
    /// Can broadcast (`IFF_BROADCAST`).
    pub broadcast: bool,
    /// A loopback (`IFF_LOOPBACK`).
    pub loopback: bool,
    /// ARP is off on it (`IFF_NOARP`).
    pub noarp: bool,
    /// A port of a bond or a bridge: it has a master (`IFLA_MASTER`).
    pub enslaved: bool,
}

/// Why a link does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Unselectable {
    /// Administratively down.
    #[error("down")]
    Down,
    /// Up but without carrier.
    #[error("no carrier")]
    NoCarrier,
    /// A loopback interface.
    #[error("loopback")]
    Loopback,
    /// ARP is off (`NOARP`).
    #[error("NOARP")]
    NoArp,
    /// Cannot broadcast (point-to-point links).
    #[error("not broadcast-capable")]
    NoBroadcast,
    /// A port of a bond or a bridge: its master answers.
    #[error("enslaved to a bond or bridge")]
    Enslaved,
    /// No Ethernet address.
    #[error("no Ethernet address")]
    NoMac,
    /// Its name matches an exclusion and no advertisement names it.
    #[error("excluded by name")]
    Excluded,
}

/// MetalLB's default `announcedInterfacesToExclude` as name prefixes (its
/// Helm chart anchors each pattern `^name.*`).
pub const DEFAULT_EXCLUDED_PREFIXES: &[&str] = &[
    "docker",
    "cbr",
    "dummy",
    "virbr",
    "lxcbr",
    "veth",
    "cali",
    "tunl",
    "flannel",
    "kube-ipvs",
    "cni",
    "nodelocaldns",
];

/// MetalLB's default exclusions that match a whole name (`^lo$`).
pub const DEFAULT_EXCLUDED_NAMES: &[&str] = &["lo"];

/// Interface names not answered on unless an advertisement names them:
/// name prefixes and whole names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusions {
    prefixes: Vec<String>,
    names: Vec<String>,
}

impl Default for Exclusions {
    /// MetalLB's default list: [`DEFAULT_EXCLUDED_PREFIXES`] and
    /// [`DEFAULT_EXCLUDED_NAMES`].
    fn default() -> Self {
        Self::new(DEFAULT_EXCLUDED_PREFIXES.iter().copied()).with_names(DEFAULT_EXCLUDED_NAMES.iter().copied())
    }
}

impl Exclusions {
    /// Excludes every name starting with one of `prefixes` (and nothing
    /// else: the default list is replaced, not extended). An empty prefix
    /// excludes every name.
    pub fn new<S: Into<String>>(prefixes: impl IntoIterator<Item = S>) -> Self {
        Self { prefixes: prefixes.into_iter().map(Into::into).collect(), names: Vec::new() }
    }

    /// Excludes nothing.
    #[must_use]
    pub fn none() -> Self {
        Self::new(std::iter::empty::<String>())
    }

    /// Also excludes these whole names.
    #[must_use]
    pub fn with_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.names.extend(names.into_iter().map(Into::into));
        self
    }

    /// The prefix or whole name that excludes `name`, if any.
    #[must_use]
    pub fn matching(&self, name: &str) -> Option<&str> {
        self.names
            .iter()
            .find(|n| n.as_str() == name)
            .or_else(|| self.prefixes.iter().find(|p| name.starts_with(p.as_str())))
            .map(String::as_str)
    }

    /// Whether `name` is excluded.
    #[must_use]
    pub fn excludes(&self, name: &str) -> bool {
        self.matching(name).is_some()
    }

    pub fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// Whether `link` can answer ARP when an advertisement names it: every
/// flag rule of the [module](self), no name rule.
///
/// # Errors
///
/// The first rule it breaks, in the order of [`Unselectable`].
pub fn selectable_named(link: &Link) -> Result<(), Unselectable> {
    let f = &link.flags;
    let broken = [
        (!f.up, Unselectable::Down),
        (!f.lower_up, Unselectable::NoCarrier),
        (f.loopback, Unselectable::Loopback),
        (f.noarp, Unselectable::NoArp),
        (!f.broadcast, Unselectable::NoBroadcast),
        (f.enslaved, Unselectable::Enslaved),
        (link.mac.is_none(), Unselectable::NoMac),
    ];
    match broken.into_iter().find(|(broken, _)| *broken) {
        Some((_, why)) => Err(why),
        None => Ok(()),
    }
}

/// Whether `link` answers ARP for an IP whose advertisement names no
/// interface: [`selectable_named`], and no exclusion matches its name.
///
/// # Errors
///
/// The first rule it breaks; [`Unselectable::Excluded`] last.
pub fn selectable(link: &Link, exclusions: &Exclusions) -> Result<(), Unselectable> {
    selectable_named(link)?;
    if exclusions.excludes(&link.name) { Err(Unselectable::Excluded) } else { Ok(()) }
}

/// Whether a link that is selectable also answers NDP: it has an IPv6
/// link-local address. Check [`selectable`] or [`selectable_named`] too.
#[must_use]
pub fn answers_ndp(link: &Link) -> bool {
    link.ipv6_link_local
}

/// The interfaces `ip` is answered on, given the interfaces its
/// advertisement names (`named`; empty: none named) and the host's links.
///
/// - `named` empty: every link that is [`selectable`] with `exclusions`;
/// - else: the links of `named` that exist and are [`selectable_named`];
/// - for an IPv6 `ip`, only links that also [`answers_ndp`].
///
/// An empty result means the IP is answered nowhere (never "everywhere").
pub fn answering_interfaces<'a>(
    ip: IpAddr,
    named: &BTreeSet<String>,
    links: impl IntoIterator<Item = &'a Link>,
    exclusions: &Exclusions,
) -> BTreeSet<String> {
    links
        .into_iter()
        .filter(|l| {
            if named.is_empty() {
                selectable(l, exclusions).is_ok()
            } else {
                named.contains(&l.name) && selectable_named(l).is_ok()
            }
        })
        .filter(|l| ip.is_ipv4() || answers_ndp(l))
        .map(|l| l.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(name: &str) -> Link {
        Link {
            name: name.to_string(),
            index: 2,
            mac: Some(MacAddr([0x02, 0, 0, 0, 0, 0x10])),
            flags: LinkFlags { up: true, lower_up: true, broadcast: true, ..LinkFlags::default() },
            ipv6_link_local: true,
        }
    }

    #[test]
    fn an_ethernet_link_that_is_up_with_carrier_is_selectable() {
        assert_eq!(selectable(&eth("eth0"), &Exclusions::default()), Ok(()));
        assert_eq!(selectable_named(&eth("eth0")), Ok(()));
    }

    #[test]
    fn each_flag_rule_makes_a_link_unselectable() {
        type Breaks = fn(&mut Link);
        let cases: [(Breaks, Unselectable); 7] = [
            (|l| l.flags.up = false, Unselectable::Down),
            (|l| l.flags.lower_up = false, Unselectable::NoCarrier),
            (|l| l.flags.loopback = true, Unselectable::Loopback),
            (|l| l.flags.noarp = true, Unselectable::NoArp),
            (|l| l.flags.broadcast = false, Unselectable::NoBroadcast),
            (|l| l.flags.enslaved = true, Unselectable::Enslaved),
            (|l| l.mac = None, Unselectable::NoMac),
        ];
        for (breaks, why) in cases {
            let mut link = eth("eth0");
            breaks(&mut link);
            assert_eq!(selectable_named(&link), Err(why));
            assert_eq!(selectable(&link, &Exclusions::none()), Err(why));
        }
    }

    #[test]
    fn the_default_exclusions_are_metallbs() {
        let ex = Exclusions::default();
        for excluded in
            ["docker0", "cbr0", "dummy1", "virbr0", "lxcbr0", "veth1a2b", "cali123", "tunl0", "flannel.1", "kube-ipvs0"]
                .into_iter()
                .chain(["cni0", "nodelocaldns", "lo"])
        {
            assert_eq!(selectable(&eth(excluded), &ex), Err(Unselectable::Excluded), "{excluded}");
        }
        // `lo` is a whole name, the others prefixes.
        for kept in ["eth0", "ens3", "bond0", "br0", "lower0", "enp0s31f6"] {
            assert_eq!(selectable(&eth(kept), &ex), Ok(()), "{kept}");
        }
        assert_eq!(ex.matching("veth0"), Some("veth"));
        assert_eq!(ex.matching("lo"), Some("lo"));
        assert_eq!(ex.matching("lower0"), None);
    }

    #[test]
    fn a_replaced_list_excludes_only_its_own_prefixes() {
        let ex = Exclusions::new(["ens"]);
        assert_eq!(selectable(&eth("ens3"), &ex), Err(Unselectable::Excluded));
        assert_eq!(selectable(&eth("veth0"), &ex), Ok(()));
        assert_eq!(selectable(&eth("veth0"), &Exclusions::none()), Ok(()));
        let ex = Exclusions::none().with_names(["eth0"]);
        assert_eq!(selectable(&eth("eth0"), &ex), Err(Unselectable::Excluded));
        assert_eq!(selectable(&eth("eth01"), &ex), Ok(()));
    }

    #[test]
    fn flag_rules_come_before_the_name_rule() {
        let mut link = eth("veth0");
        link.flags.lower_up = false;
        assert_eq!(selectable(&link, &Exclusions::default()), Err(Unselectable::NoCarrier));
    }

    #[test]
    fn ndp_needs_a_link_local_address() {
        let mut link = eth("eth0");
        assert!(answers_ndp(&link));
        link.ipv6_link_local = false;
        assert!(!answers_ndp(&link));
    }

    #[test]
    fn named_interfaces_ignore_exclusions_but_not_flags() {
        let v4: IpAddr = "192.0.2.10".parse().expect("IP");
        let mut down = eth("eth1");
        down.flags.up = false;
        let links = [eth("eth0"), eth("veth0"), down];
        let ex = Exclusions::default();
        let named = |names: &[&str]| names.iter().map(ToString::to_string).collect::<BTreeSet<String>>();

        // Nothing named: the selectable links, veth excluded by name.
        assert_eq!(answering_interfaces(v4, &named(&[]), &links, &ex), named(&["eth0"]));
        // Named: a veth is answered on, a down link or a missing one is not.
        assert_eq!(answering_interfaces(v4, &named(&["veth0", "eth1", "eth9"]), &links, &ex), named(&["veth0"]));
        // Only missing or unusable links named: nowhere, not everywhere.
        assert!(answering_interfaces(v4, &named(&["eth1", "eth9"]), &links, &ex).is_empty());
    }

    #[test]
    fn ipv6_is_answered_only_where_ndp_can_be() {
        let v6: IpAddr = "2001:db8::10".parse().expect("IP");
        let mut no_ll = eth("eth1");
        no_ll.ipv6_link_local = false;
        let links = [eth("eth0"), no_ll];
        let all = answering_interfaces(v6, &BTreeSet::new(), &links, &Exclusions::default());
        assert_eq!(all, BTreeSet::from(["eth0".to_string()]));
        let v4: IpAddr = "192.0.2.10".parse().expect("IP");
        assert_eq!(answering_interfaces(v4, &BTreeSet::new(), &links, &Exclusions::default()).len(), 2);
    }
}
