//! Which addresses announcements carry as their next hop, from the
//! interfaces of the host (which the driver lists and passes in).
//!
//! An IPv4 route's next hop is the local address of the TCP connection,
//! which the session takes by itself. IPv6 needs more (RFC 2545 §3): a
//! global address, plus the link-local address of the same interface when
//! the peer is on that link, since routers resolve the link-local one to
//! forward. Both come from the interface the connection leaves by.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One address of one interface of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub interface: String,
    pub address: IpAddr,
    pub prefix_len: u8,
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

fn same_subnet(a: IpAddr, b: IpAddr, len: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len.min(32))) };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len.min(128))) };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// The IPv6 next hop for a connection from `local` to `peer`: a global
/// address of the interface holding `local` (`local` itself when it is
/// IPv6), and that interface's link-local address when `peer` is on-link.
/// `None` when the interface has no global IPv6 address: IPv6 routes
/// cannot be announced over this connection then.
pub fn ipv6_next_hop(
    addresses: &[InterfaceAddress],
    local: IpAddr,
    peer: IpAddr,
) -> Option<(Ipv6Addr, Option<Ipv6Addr>)> {
    let interface = &addresses.iter().find(|a| a.address == local)?.interface;
    let on_interface = || addresses.iter().filter(move |a| &a.interface == interface);
    let global = match local {
        IpAddr::V6(a) if !is_link_local(&a) => a,
        _ => on_interface().find_map(|a| match a.address {
            IpAddr::V6(v6) if !is_link_local(&v6) && !v6.is_loopback() => Some(v6),
            _ => None,
        })?,
    };
    let on_link = match peer {
        IpAddr::V6(p) if is_link_local(&p) => true,
        _ => on_interface().any(|a| a.prefix_len > 0 && same_subnet(a.address, peer, a.prefix_len)),
    };
    let link_local = on_link
        .then(|| {
            on_interface().find_map(|a| match a.address {
                IpAddr::V6(v6) if is_link_local(&v6) => Some(v6),
                _ => None,
            })
        })
        .flatten();
    Some((global, link_local))
}

/// The IPv4 next hop for IPv4 routes over a connection whose local end is
/// the IPv6 address `local`: the first IPv4 address of the same interface.
/// `None` when `local` is IPv4 (the session uses it as it is) or the
/// interface has no IPv4 address (IPv4 routes cannot be announced then).
pub fn ipv4_next_hop(addresses: &[InterfaceAddress], local: IpAddr) -> Option<Ipv4Addr> {
    if local.is_ipv4() {
        return None;
    }
    let interface = &addresses.iter().find(|a| a.address == local)?.interface;
    addresses.iter().filter(|a| &a.interface == interface).find_map(|a| match a.address {
        IpAddr::V4(v4) if !v4.is_loopback() => Some(v4),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(interface: &str, address: &str, prefix_len: u8) -> InterfaceAddress {
        InterfaceAddress { interface: interface.into(), address: address.parse().expect("IP"), prefix_len }
    }

    #[test]
    fn global_and_link_local_of_the_outgoing_interface() {
        let host = [
            addr("eth0", "192.0.2.10", 24),
            addr("eth0", "2001:db8::10", 64),
            addr("eth0", "fe80::1", 64),
            addr("eth1", "2001:db8:1::10", 64),
            addr("eth1", "fe80::2", 64),
        ];
        let ip = |s: &str| s.parse::<IpAddr>().expect("IP");
        let v6 = |s: &str| s.parse::<Ipv6Addr>().expect("IPv6");
        assert_eq!(
            ipv6_next_hop(&host, ip("2001:db8::10"), ip("2001:db8::1")),
            Some((v6("2001:db8::10"), Some(v6("fe80::1"))))
        );
        assert_eq!(ipv6_next_hop(&host, ip("2001:db8::10"), ip("2001:db8:9::1")), Some((v6("2001:db8::10"), None)));
        assert_eq!(
            ipv6_next_hop(&host, ip("fe80::2"), ip("fe80::9")),
            Some((v6("2001:db8:1::10"), Some(v6("fe80::2")))),
            "a link-local session takes the interface's global address; a link-local peer is on-link"
        );
        let point_to_point = [addr("ptp0", "2001:db8:2::1", 128), addr("ptp0", "fe80::3", 128)];
        assert_eq!(
            ipv6_next_hop(&point_to_point, ip("fe80::3"), ip("fe80::4")),
            Some((v6("2001:db8:2::1"), Some(v6("fe80::3")))),
            "a link-local peer is on the link whatever the prefix lengths say"
        );
        assert_eq!(
            ipv6_next_hop(&host, ip("192.0.2.10"), ip("192.0.2.1")),
            Some((v6("2001:db8::10"), Some(v6("fe80::1")))),
            "an IPv4 session carrying IPv6 routes takes the interface's addresses"
        );
        assert_eq!(ipv6_next_hop(&[addr("eth0", "192.0.2.10", 24)], ip("192.0.2.10"), ip("192.0.2.1")), None);
        assert_eq!(ipv6_next_hop(&host, ip("198.51.100.1"), ip("192.0.2.1")), None, "local address on no interface");
        assert_eq!(ipv4_next_hop(&host, ip("2001:db8::10")), Some("192.0.2.10".parse().expect("IPv4")));
        assert_eq!(ipv4_next_hop(&host, ip("2001:db8:1::10")), None, "eth1 has no IPv4 address");
        assert_eq!(ipv4_next_hop(&host, ip("192.0.2.10")), None, "the connection's own address serves");
    }

    #[test]
    fn subnets_by_prefix_length() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("IP");
        assert!(same_subnet(ip("192.0.2.1"), ip("192.0.2.200"), 24));
        assert!(!same_subnet(ip("192.0.2.1"), ip("192.0.3.1"), 24));
        assert!(same_subnet(ip("192.0.2.1"), ip("10.0.0.1"), 0));
        assert!(same_subnet(ip("2001:db8::1"), ip("2001:db8::ffff"), 64));
        assert!(!same_subnet(ip("2001:db8::1"), ip("2001:db8:0:1::1"), 64));
        assert!(!same_subnet(ip("192.0.2.1"), ip("2001:db8::1"), 0), "families never match");
    }
}
