//! This host's interface addresses, for the next-hop choice
//! (`lb_core::peering::nexthop`, RFC 2545), which is made from them and the
//! connection's addresses.

use std::net::IpAddr;

use nix::ifaddrs::getifaddrs;

pub use lb_core::peering::nexthop::{InterfaceAddress, ipv4_next_hop, ipv6_next_hop};

/// Every IP address of every interface of this host (this network namespace).
pub fn interface_addresses() -> Vec<InterfaceAddress> {
    let Ok(addrs) = getifaddrs() else { return Vec::new() };
    addrs
        .filter_map(|ifa| {
            let address = ifa.address.as_ref()?;
            let netmask = ifa.netmask.as_ref();
            let (address, prefix_len) = if let Some(v4) = address.as_sockaddr_in() {
                let mask = netmask.and_then(|m| m.as_sockaddr_in()).map_or(32, |m| u32::from(m.ip()).count_ones());
                (IpAddr::V4(v4.ip()), mask as u8)
            } else if let Some(v6) = address.as_sockaddr_in6() {
                let mask = netmask.and_then(|m| m.as_sockaddr_in6()).map_or(128, |m| u128::from(m.ip()).count_ones());
                (IpAddr::V6(v6.ip()), mask as u8)
            } else {
                return None;
            };
            Some(InterfaceAddress { interface: ifa.interface_name, address, prefix_len })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_host_has_loopback() {
        assert!(interface_addresses().iter().any(|a| a.address == IpAddr::from([127, 0, 0, 1])));
    }
}
