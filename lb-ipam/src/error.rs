//! Why a Service got no address.

use std::net::IpAddr;

use lb_core::addr::Family;
use lb_core::service::{Protocol, ServiceKey};

/// An allocation failure, naming what failed so an operator can act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AllocError {
    /// `spec.loadBalancerIP` and the `loadBalancerIPs` annotation together.
    #[error("spec.loadBalancerIP and the loadBalancerIPs annotation are both set; use only the annotation")]
    BothRequestForms,
    /// A requested address that does not parse.
    #[error("requested address {text:?} is not an IP address")]
    InvalidRequestedIp { text: String },
    /// More addresses requested than families exist.
    #[error("{count} addresses requested; at most one IPv4 and one IPv6")]
    TooManyRequestedIps { count: usize },
    /// Two requested addresses of one family.
    #[error("two {family} addresses requested; at most one per family")]
    SameFamilyTwice { family: Family },
    /// Requested addresses that do not fit `ipFamilyPolicy` / `ipFamilies`.
    #[error("requested addresses {requested:?} do not match the Service's IP families ({wanted})")]
    FamilyMismatch { requested: Vec<IpAddr>, wanted: &'static str },
    /// The `address-pool` annotation names no pool.
    #[error("address pool {pool:?} does not exist")]
    UnknownPool { pool: String },
    /// The annotated pool's `serviceAllocation` excludes this Service.
    #[error("address pool {pool:?} does not serve this Service (its serviceAllocation does not match)")]
    PoolNotAllowed { pool: String },
    /// A requested address in no pool.
    #[error("{ip} is not in any address pool")]
    NotInAnyPool { ip: IpAddr },
    /// A requested address whose pool excludes this Service.
    #[error("{ip} is in pool {pool:?}, which does not serve this Service (serviceAllocation)")]
    IpPoolNotAllowed { ip: IpAddr, pool: String },
    /// A requested address outside the annotated pool.
    #[error("{ip} is not in the requested address pool {pool:?}")]
    NotInRequestedPool { ip: IpAddr, pool: String },
    /// A requested `.0`/`.255` address of a pool that avoids them.
    #[error("{ip} ends in .0 or .255 and pool {pool:?} has avoidBuggyIPs")]
    BuggyIp { ip: IpAddr, pool: String },
    /// Two addresses of one Service from different pools.
    #[error("{} is in pool {:?} and {} in pool {:?}; a Service's addresses must come from one pool", .ips[0], .pools[0], .ips[1], .pools[1])]
    DifferentPools { ips: [IpAddr; 2], pools: [String; 2] },
    /// The address is held by a Service that does not share it.
    #[error("{ip} is in use by {other}, which does not share it (allow-shared-ip keys differ or are unset)")]
    InUse { ip: IpAddr, other: ServiceKey },
    /// Sharing would put two Services on one port.
    #[error("{ip} cannot be shared with {other}: both use {protocol}/{port}")]
    PortCollision { ip: IpAddr, other: ServiceKey, protocol: Protocol, port: u16 },
    /// Sharing across different traffic policies or pod selectors.
    #[error(
        "{ip} cannot be shared with {other}: both need externalTrafficPolicy Cluster, or Local with the same selector"
    )]
    BackendMismatch { ip: IpAddr, other: ServiceKey },
    /// No pool may serve this Service at all.
    #[error("no address pool may serve this Service (none with autoAssign, or serviceAllocation excludes it)")]
    NoPool,
    /// None of the allowed pools has addresses of the family.
    #[error("no {family} addresses in pools {} (the Service needs {family})", .pools.join(", "))]
    NoPoolWithFamily { family: Family, pools: Vec<String> },
    /// Every allowed pool is full for the family.
    #[error("no free {family} address in pools {}", .pools.join(", "))]
    Exhausted { family: Family, pools: Vec<String> },
    /// RequireDualStack, and no allowed pool has both families free.
    #[error("no pool has a free IPv4 and a free IPv6 address for RequireDualStack (pools: {})", .pools.join(", "))]
    NoDualStack { pools: Vec<String> },
}
