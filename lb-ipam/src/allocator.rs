//! The allocator: which address each LoadBalancer Service gets.
//!
//! Expected flow: build with [`Allocator::new`], give it the namespaces
//! ([`Allocator::set_namespaces`]) and call [`Allocator::allocate`] for every
//! Service, those with `status.loadBalancer.ingress` first, then those
//! requesting specific addresses ([`Allocator::allocate_all`] does that
//! ordering), then again for each
//! change. On a configuration change call [`Allocator::set_config`] with the
//! current Services, then `allocate` for the ones it released.
//!
//! Guarantees:
//! - an assignment that is still allowed never moves (not on a restart, not
//!   on a configuration change, not when the Service is re-submitted);
//! - no address is held by two Services that may not share it;
//! - the same inputs in the same order give the same result.

use std::collections::hash_map::Entry as Slot;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use lb_core::addr::Family;
use lb_core::config::Config;
use lb_core::selector::Labels;
use lb_core::service::{Namespace, Service, ServiceKey, ServicePort, ServiceType};

use crate::error::AllocError;
use crate::request::{Families, Request, requests_addresses};
use crate::services::Services;
use crate::space::AddressSpace;

/// Hash maps keyed by addresses and names (Services have their own table,
/// [`Services`]). foldhash is several times faster than SipHash on such
/// short keys; its per-process random seed still resists crafted collisions.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One or two addresses (one per family), the primary family first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Addresses {
    first: IpAddr,
    second: Option<IpAddr>,
}

impl Addresses {
    pub fn one(ip: IpAddr) -> Self {
        Self { first: ip, second: None }
    }

    pub fn two(first: IpAddr, second: IpAddr) -> Self {
        Self { first, second: Some(second) }
    }

    /// One or two addresses of different families; `None` otherwise.
    pub fn from_slice(ips: &[IpAddr]) -> Option<Self> {
        match *ips {
            [a] => Some(Self::one(a)),
            [a, b] if Family::of(a) != Family::of(b) => Some(Self::two(a, b)),
            _ => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + use<> {
        std::iter::once(self.first).chain(self.second)
    }

    pub fn to_vec(&self) -> Vec<IpAddr> {
        self.iter().collect()
    }

    /// The same addresses with `primary`'s first (`spec.ipFamilies` may be reordered).
    fn primary_first(self, primary: Family) -> Self {
        match self.second {
            Some(second) if Family::of(self.first) != primary => Self::two(second, self.first),
            _ => self,
        }
    }

    fn as_array(&self) -> ([IpAddr; 2], usize) {
        match self.second {
            Some(b) => ([self.first, b], 2),
            None => ([self.first, self.first], 1),
        }
    }
}

/// A Service's current addresses and the pool of the first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment<'a> {
    pub addresses: Addresses,
    pub pool: &'a str,
}

/// Per-pool counts, for metrics (`metallb_allocator_addresses_*`): part of
/// the plan value, so defined with it.
pub use lb_core::plan::PoolStats;

#[derive(Debug, Clone)]
struct PoolSpaces {
    v4: AddressSpace,
    v6: AddressSpace,
}

impl PoolSpaces {
    fn space(&self, family: Family) -> &AddressSpace {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    fn space_mut(&mut self, family: Family) -> &mut AddressSpace {
        match family {
            Family::V4 => &mut self.v4,
            Family::V6 => &mut self.v6,
        }
    }
}

/// What other Services must agree with to share this Service's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sharing {
    key: String,
    ports: Vec<ServicePort>,
    backend: Option<Labels>,
}

impl Sharing {
    #[inline]
    fn of(service: &Service) -> Option<Box<Self>> {
        service.sharing_key().map(|key| {
            Box::new(Sharing {
                key: key.to_string(),
                ports: service.ports.clone(),
                backend: service.backend_key().cloned(),
            })
        })
    }
}

#[derive(Debug, Clone)]
struct Entry {
    addresses: Addresses,
    pool: usize,
    sharing: Option<Box<Sharing>>,
}

/// Holders of one address: usually one Service, several when shared.
#[derive(Debug, Clone)]
struct Holders {
    pool: usize,
    first: ServiceKey,
    others: Vec<ServiceKey>,
}

impl Holders {
    fn iter(&self) -> impl Iterator<Item = &ServiceKey> {
        std::iter::once(&self.first).chain(&self.others)
    }
}

/// The family of a Service that asks for nothing in particular: one
/// family, no annotations (so no requested address, pool or sharing key),
/// no `spec.loadBalancerIP`, no status address to restore. Its [`Request`]
/// cannot fail and says nothing more than this.
#[inline]
fn plain_family(service: &Service) -> Option<Family> {
    if !service.annotations.is_empty() || service.load_balancer_ip.is_some() || !service.ingress_ips.is_empty() {
        return None;
    }
    match Families::of(service) {
        Families::Single(family) => Some(family),
        Families::Dual { .. } => None,
    }
}

/// Address allocation for LoadBalancer Services with MetalLB's semantics.
#[derive(Debug, Clone)]
pub struct Allocator {
    config: Config,
    pools: Vec<PoolSpaces>,
    /// Pools for auto-assignment, in the order they are tried.
    auto_order: Vec<usize>,
    services: Services<Entry>,
    /// Holders of addresses taken under a sharing key. An address held
    /// without one has a single holder by definition and is not indexed:
    /// that keeps two hash operations off every plain allocation, and only
    /// error messages need to find such a holder (by a scan).
    holders: Map<IpAddr, Holders>,
    /// Addresses held under each sharing key, lowest first.
    by_sharing_key: Map<String, BTreeSet<IpAddr>>,
    namespaces: Map<String, Labels>,
    load_balancer_class: Option<String>,
    /// Services without a class are not ours when a class is set.
    only_class: bool,
    scratch: Vec<usize>,
}

impl Allocator {
    pub fn new(config: Config) -> Self {
        let mut allocator = Allocator {
            config: Config::default(),
            pools: Vec::new(),
            auto_order: Vec::new(),
            services: Services::default(),
            holders: Map::default(),
            by_sharing_key: Map::default(),
            namespaces: Map::default(),
            load_balancer_class: None,
            only_class: false,
            scratch: Vec::new(),
        };
        allocator.install(config);
        allocator
    }

    /// Also handle Services whose `spec.loadBalancerClass` is `class`
    /// (Services without a class are always handled).
    pub fn with_load_balancer_class(mut self, class: Option<String>) -> Self {
        self.load_balancer_class = class;
        self
    }

    /// As a controller in a cluster (MetalLB's `--lb-class`): with a class,
    /// only Services of that class; without, only Services without one.
    /// (`with_load_balancer_class` handles Services without a class too.)
    pub fn with_only_class(mut self, class: Option<String>) -> Self {
        self.only_class = true;
        self.load_balancer_class = class;
        self
    }

    /// Namespace labels, for `serviceAllocation.namespaceSelectors`.
    /// Namespaces not given here have only their implicit name label.
    pub fn set_namespaces(&mut self, namespaces: impl IntoIterator<Item = Namespace>) {
        self.namespaces = namespaces
            .into_iter()
            .map(|n| {
                // A `Namespace` built field by field lacks the implicit name label.
                let n = Namespace::new(&n.name, n.labels);
                (n.name, n.labels)
            })
            .collect();
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn install(&mut self, config: Config) {
        self.pools = config
            .pools
            .iter()
            .map(|p| PoolSpaces {
                v4: AddressSpace::new(Family::V4, &p.blocks, p.avoid_buggy_ips),
                v6: AddressSpace::new(Family::V6, &p.blocks, p.avoid_buggy_ips),
            })
            .collect();
        // Pools with serviceAllocation by priority (unset last), then the
        // others; names break ties (config.pools is sorted by name).
        let mut selective: Vec<usize> = (0..config.pools.len())
            .filter(|&i| config.pools[i].auto_assign && config.pools[i].allocation.is_some())
            .collect();
        selective.sort_by_key(|&i| {
            let priority = config.pools[i].allocation.as_ref().and_then(|a| a.priority);
            (priority.is_none(), priority)
        });
        let general =
            (0..config.pools.len()).filter(|&i| config.pools[i].auto_assign && config.pools[i].allocation.is_none());
        self.auto_order = selective.into_iter().chain(general).collect();
        self.config = config;
    }

    /// Whether this allocator is responsible for the Service at all.
    pub fn is_handled(&self, service: &Service) -> bool {
        service.service_type == ServiceType::LoadBalancer
            && match &service.load_balancer_class {
                None => !self.only_class || self.load_balancer_class.is_none(),
                Some(class) => self.load_balancer_class.as_ref() == Some(class),
            }
    }

    /// The Service's assignment, if it has one.
    pub fn assignment(&self, key: &ServiceKey) -> Option<Assignment<'_>> {
        self.services.get(key).map(|e| self.assignment_of(e))
    }

    fn assignment_of(&self, entry: &Entry) -> Assignment<'_> {
        Assignment { addresses: entry.addresses, pool: &self.config.pools[entry.pool].name }
    }

    /// All assignments, in no particular order.
    pub fn assignments(&self) -> impl Iterator<Item = (&ServiceKey, Assignment<'_>)> {
        self.services.iter().map(|(k, e)| (k, self.assignment_of(e)))
    }

    /// Services holding `ip`.
    pub fn holders(&self, ip: IpAddr) -> impl Iterator<Item = &ServiceKey> {
        let shared = self.holders.get(&ip);
        let sole = if shared.is_none() { self.sole_holder(ip) } else { None };
        shared.into_iter().flat_map(Holders::iter).chain(sole)
    }

    /// The Service holding `ip` without a sharing key: a scan, for diagnostics.
    fn sole_holder(&self, ip: IpAddr) -> Option<&ServiceKey> {
        self.services.iter().find(|(_, e)| e.sharing.is_none() && e.addresses.iter().any(|a| a == ip)).map(|(k, _)| k)
    }

    /// Whether the Service currently holds `ip`.
    fn holds(&self, service: &Service, ip: IpAddr) -> bool {
        self.services.get(&service.key).is_some_and(|e| e.addresses.iter().any(|a| a == ip))
    }

    /// Per-pool counts, in pool name order.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        self.config
            .pools
            .iter()
            .zip(&self.pools)
            .map(|(p, s)| PoolStats {
                name: p.name.clone(),
                ipv4_total: s.v4.usable(),
                ipv4_in_use: s.v4.in_use(),
                ipv6_total: s.v6.usable(),
                ipv6_in_use: s.v6.in_use(),
            })
            .collect()
    }

    /// Gives the Service its addresses, keeping the ones it has while they
    /// are allowed. `Ok(None)` for Services this allocator does not handle
    /// (any addresses they held are released). On error the Service holds nothing.
    pub fn allocate(&mut self, service: &Service) -> Result<Option<Assignment<'_>>, AllocError> {
        let key = &service.key;
        if !self.is_handled(service) {
            self.release(key);
            return Ok(None);
        }
        let hash = self.services.hash(key);
        if let Some(family) = plain_family(service)
            && self.services.get_hashed(hash, key).is_none()
            && let Some((addresses, pool)) = self.take_plain(service, family, hash)
        {
            return Ok(Some(Assignment { addresses, pool: &self.config.pools[pool].name }));
        }
        let request = match self.check_request(service) {
            Ok(r) => r,
            Err(e) => {
                self.release(key);
                return Err(e);
            }
        };
        if let Some(entry) = self.services.get_hashed(hash, key) {
            let current = entry.addresses.primary_first(service.primary_family());
            let wanted = request.addresses.is_empty() || request.addresses == current.to_vec();
            let (array, n) = current.as_array();
            if wanted && self.check_addresses(&array[..n], service, &request).is_ok() {
                if let Some(entry) = self.services.get_mut(key) {
                    entry.addresses = current;
                }
                self.refresh_sharing(service);
                return Ok(self.assignment(key));
            }
            self.release(key);
        }
        let (addresses, pool) = self.choose(service, &request)?;
        self.record(hash, service, addresses, pool);
        Ok(Some(Assignment { addresses, pool: &self.config.pools[pool].name }))
    }

    /// The common case in one step, for a Service that holds nothing and
    /// asks for nothing in particular (see [`plain_family`]): the lowest
    /// free address of the first pool that admits it, which is what
    /// [`Allocator::choose`] would pick, held at once without building a
    /// [`Request`], finding the address's position again or hashing the key
    /// again. `None`, having changed nothing, when no pool has a free
    /// address: the general path then finds out why.
    #[inline(always)]
    fn take_plain(&mut self, service: &Service, family: Family, hash: u64) -> Option<(Addresses, usize)> {
        for i in 0..self.auto_order.len() {
            let pool = self.auto_order[i];
            if !self.pool_admits(pool, service) {
                continue;
            }
            if let Some(ip) = self.pools[pool].space_mut(family).take_first_free() {
                let addresses = Addresses::one(ip);
                self.services.insert_new_hashed(hash, service.key.clone(), Entry { addresses, pool, sharing: None });
                return Some((addresses, pool));
            }
        }
        None
    }

    /// Allocates for every Service in three groups, each in input order:
    /// first those with status addresses (so a restart gives them back),
    /// then those that request specific addresses ([`requests_addresses`]:
    /// `spec.loadBalancerIP` or the `loadBalancerIPs` annotation, sharing
    /// key or not), then the rest. A Service that asks for an address must
    /// get it even when a Service listed before it, which would take any
    /// address, would otherwise have taken that one first: MetalLB's
    /// outcome depends on creation order here, and configurations in the
    /// wild rely on the requester winning. Results are in the order of
    /// `services`.
    ///
    /// A Service listed more than once is the last one listed (as
    /// `kubectl apply` of the same object twice): the earlier entries get
    /// `Ok(None)`. Otherwise the grouping could allocate an earlier copy
    /// after the later one and leave the Service holding what its current
    /// spec no longer allows (found by the `plan` fuzz target).
    pub fn allocate_all(&mut self, services: &[Service]) -> Vec<Result<Option<(Addresses, String)>, AllocError>> {
        let mut results = vec![Ok(None); services.len()];
        let mut last: HashMap<&ServiceKey, usize> = HashMap::new();
        for (i, s) in services.iter().enumerate() {
            last.insert(&s.key, i);
        }
        let last = &last;
        let group = |s: &Service| match () {
            () if !s.ingress_ips.is_empty() => 0,
            () if requests_addresses(s) => 1,
            () => 2,
        };
        let ordered = (0..3).flat_map(|g| {
            services.iter().enumerate().filter(move |(i, s)| group(s) == g && last.get(&s.key) == Some(i))
        });
        for (i, service) in ordered {
            results[i] = self.allocate(service).map(|a| a.map(|a| (a.addresses, a.pool.to_string())));
        }
        results
    }

    /// Frees the Service's addresses (an address stays held while another
    /// Service shares it). Idempotent; false if it held nothing.
    pub fn release(&mut self, key: &ServiceKey) -> bool {
        let Some(entry) = self.services.remove(key) else { return false };
        for ip in entry.addresses.iter() {
            let Some(sharing) = &entry.sharing else {
                self.pools[entry.pool].space_mut(Family::of(ip)).remove(ip);
                continue;
            };
            let Slot::Occupied(mut slot) = self.holders.entry(ip) else { continue };
            let h = slot.get_mut();
            if h.first != *key {
                h.others.retain(|k| k != key);
            } else if let Some(next) = h.others.pop() {
                h.first = next;
            } else {
                let pool = slot.remove().pool;
                self.pools[pool].space_mut(Family::of(ip)).remove(ip);
                self.unindex(&sharing.key, ip);
            }
        }
        true
    }

    /// Installs a new configuration. Every assignment is checked against it
    /// with the Service it belongs to; those no longer allowed (or whose
    /// Service is not in `services`) are released and returned: allocate
    /// those Services again. The others keep their addresses.
    pub fn set_config(&mut self, config: Config, services: &[Service]) -> Vec<ServiceKey> {
        let mut entries: Vec<(ServiceKey, Entry)> = self.services.drain().collect();
        self.holders.clear();
        self.by_sharing_key.clear();
        self.install(config);
        let by_key: HashMap<&ServiceKey, &Service> = services.iter().map(|s| (&s.key, s)).collect();
        // Services whose sharing terms changed are checked last: when two
        // holders of an address no longer agree, the one that changed moves.
        entries.sort_by_cached_key(|(key, entry)| {
            let changed = by_key.get(key).is_some_and(|s| Sharing::of(s) != entry.sharing);
            (changed, key.clone())
        });
        let mut released = Vec::new();
        for (key, entry) in entries {
            let Some(service) = by_key.get(&key).copied().filter(|s| self.is_handled(s)) else {
                released.push(key);
                continue;
            };
            let addresses = entry.addresses.primary_first(service.primary_family());
            let (array, n) = addresses.as_array();
            // Kept only if the Service still asks for these addresses (or
            // for none in particular) and may still hold them.
            let pool = self.check_request(service).ok().and_then(|request| {
                let wanted = request.addresses.is_empty() || request.addresses == addresses.to_vec();
                wanted.then(|| self.check_addresses(&array[..n], service, &request).ok()).flatten()
            });
            match pool {
                Some(pool) => self.record(self.services.hash(&key), service, addresses, pool),
                None => released.push(key),
            }
        }
        released
    }

    fn check_request<'s>(&self, service: &'s Service) -> Result<Request<'s>, AllocError> {
        let request = Request::of(service)?;
        if let Some(pool) = request.pool
            && self.config.pool(pool).is_none()
        {
            return Err(AllocError::UnknownPool { pool: pool.into() });
        }
        Ok(request)
    }

    fn pool_index(&self, name: &str) -> Option<usize> {
        self.config.pools.binary_search_by(|p| p.name.as_str().cmp(name)).ok()
    }

    fn pool_of(&self, ip: IpAddr) -> Option<usize> {
        self.pools.iter().position(|s| s.space(Family::of(ip)).position(ip).is_some())
    }

    /// Whether the pool's `serviceAllocation` (if any) admits the Service.
    #[inline]
    fn pool_admits(&self, pool: usize, service: &Service) -> bool {
        let Some(allocation) = &self.config.pools[pool].allocation else { return true };
        match self.namespaces.get(service.namespace()) {
            Some(labels) => allocation.matches(service, labels),
            None => allocation.matches(service, &Namespace::new(service.namespace(), Labels::new()).labels),
        }
    }

    /// Checks that the Service may hold `ips`, all from one pool; returns that pool.
    fn check_addresses(&self, ips: &[IpAddr], service: &Service, request: &Request<'_>) -> Result<usize, AllocError> {
        if !request.families.accepts(ips) {
            return Err(AllocError::FamilyMismatch { requested: ips.to_vec(), wanted: request.families.describe() });
        }
        let mut first_pool: Option<usize> = None;
        for &ip in ips {
            let pool = self.pool_of(ip).ok_or(AllocError::NotInAnyPool { ip })?;
            let p = &self.config.pools[pool];
            if !p.is_usable(ip) {
                return Err(AllocError::BuggyIp { ip, pool: p.name.clone() });
            }
            if let Some(wanted) = request.pool
                && wanted != p.name
            {
                return Err(AllocError::NotInRequestedPool { ip, pool: wanted.into() });
            }
            if !self.pool_admits(pool, service) {
                return Err(AllocError::IpPoolNotAllowed { ip, pool: p.name.clone() });
            }
            self.check_sharing(ip, pool, service)?;
            if let Some(first) = first_pool
                && first != pool
            {
                let names = [self.config.pools[first].name.clone(), p.name.clone()];
                return Err(AllocError::DifferentPools { ips: [ips[0], ip], pools: names });
            }
            first_pool = Some(pool);
        }
        first_pool.ok_or(AllocError::NoPool)
    }

    /// Whether the Service may join the holders of `ip` (if any).
    fn check_sharing(&self, ip: IpAddr, pool: usize, service: &Service) -> Result<(), AllocError> {
        let Some(holders) = self.holders.get(&ip) else {
            if self.pools[pool].space(Family::of(ip)).is_used(ip) && !self.holds(service, ip) {
                let other = self.sole_holder(ip).cloned().unwrap_or_default();
                return Err(AllocError::InUse { ip, other });
            }
            return Ok(());
        };
        for other in holders.iter().filter(|k| **k != service.key) {
            let theirs = self.services.get(other).and_then(|e| e.sharing.as_deref());
            let (Some(theirs), Some(key)) = (theirs, service.sharing_key()) else {
                return Err(AllocError::InUse { ip, other: other.clone() });
            };
            if theirs.key != key {
                return Err(AllocError::InUse { ip, other: other.clone() });
            }
            if theirs.backend.as_ref() != service.backend_key() {
                return Err(AllocError::BackendMismatch { ip, other: other.clone() });
            }
            if let Some(port) = service.ports.iter().find(|p| theirs.ports.contains(p)) {
                return Err(AllocError::PortCollision {
                    ip,
                    other: other.clone(),
                    protocol: port.protocol,
                    port: port.port,
                });
            }
        }
        Ok(())
    }

    fn choose(&mut self, service: &Service, request: &Request<'_>) -> Result<(Addresses, usize), AllocError> {
        if !request.addresses.is_empty() {
            let pool = self.check_addresses(&request.addresses, service, request)?;
            // Request::of allows at most one address per family.
            let addresses = Addresses::from_slice(&request.addresses)
                .ok_or(AllocError::TooManyRequestedIps { count: request.addresses.len() })?;
            return Ok((addresses, pool));
        }
        if let Some(restored) = self.restorable(service, request) {
            return Ok(restored);
        }
        let mut candidates = std::mem::take(&mut self.scratch);
        candidates.clear();
        let result = self.candidates(service, request, &mut candidates).and_then(|()| {
            if candidates.is_empty() {
                return Err(AllocError::NoPool);
            }
            self.pick(service, request, &candidates)
        });
        self.scratch = candidates;
        result
    }

    /// The status addresses, if the Service may keep them.
    fn restorable(&self, service: &Service, request: &Request<'_>) -> Option<(Addresses, usize)> {
        if service.ingress_ips.is_empty() {
            return None;
        }
        let mut ips = service.ingress_ips.clone();
        ips.sort_by_key(|ip| Family::of(*ip) != service.primary_family());
        ips.dedup();
        let addresses = Addresses::from_slice(&ips)?;
        let pool = self.check_addresses(&ips, service, request).ok()?;
        Some((addresses, pool))
    }

    fn candidates(&self, service: &Service, request: &Request<'_>, out: &mut Vec<usize>) -> Result<(), AllocError> {
        match request.pool {
            Some(name) => {
                let pool = self.pool_index(name).ok_or(AllocError::UnknownPool { pool: name.into() })?;
                if !self.pool_admits(pool, service) {
                    return Err(AllocError::PoolNotAllowed { pool: name.into() });
                }
                out.push(pool);
            }
            None => out.extend(self.auto_order.iter().copied().filter(|&i| self.pool_admits(i, service))),
        }
        Ok(())
    }

    /// Why no address of `family` was found: the pools are full, or none has that family.
    fn exhausted(&self, family: Family, pools: &[usize]) -> AllocError {
        let with_family: Vec<usize> =
            pools.iter().copied().filter(|&p| !self.pools[p].space(family).is_empty()).collect();
        if with_family.is_empty() {
            AllocError::NoPoolWithFamily { family, pools: self.pool_names(pools) }
        } else {
            AllocError::Exhausted { family, pools: self.pool_names(&with_family) }
        }
    }

    fn pool_names(&self, pools: &[usize]) -> Vec<String> {
        pools.iter().map(|&i| self.config.pools[i].name.clone()).collect()
    }

    fn pick(
        &self,
        service: &Service,
        request: &Request<'_>,
        pools: &[usize],
    ) -> Result<(Addresses, usize), AllocError> {
        match request.families {
            Families::Single(family) => self
                .pick_family(service, request.sharing_key, family, pools)
                .map(|(ip, pool)| (Addresses::one(ip), pool))
                .ok_or_else(|| self.exhausted(family, pools)),
            Families::Dual { primary, required } => {
                let other = match primary {
                    Family::V4 => Family::V6,
                    Family::V6 => Family::V4,
                };
                for &pool in pools {
                    let both = (
                        self.pick_family(service, request.sharing_key, primary, &[pool]),
                        self.pick_family(service, request.sharing_key, other, &[pool]),
                    );
                    if let (Some((a, _)), Some((b, _))) = both {
                        return Ok((Addresses::two(a, b), pool));
                    }
                }
                if required {
                    return Err(AllocError::NoDualStack { pools: self.pool_names(pools) });
                }
                self.pick_family(service, request.sharing_key, primary, pools)
                    .or_else(|| self.pick_family(service, request.sharing_key, other, pools))
                    .map(|(ip, pool)| (Addresses::one(ip), pool))
                    .ok_or_else(|| self.exhausted(primary, pools))
            }
        }
    }

    /// An address of `family` from `pools`: first a compatible one already
    /// used under the Service's sharing key (lowest first), then the lowest
    /// free one of the first pool that has one.
    fn pick_family(
        &self,
        service: &Service,
        sharing_key: Option<&str>,
        family: Family,
        pools: &[usize],
    ) -> Option<(IpAddr, usize)> {
        if let Some(key) = sharing_key
            && let Some(shared) = self.by_sharing_key.get(key)
        {
            for &ip in shared.iter().filter(|ip| Family::of(**ip) == family) {
                let Some(pool) = self.holders.get(&ip).map(|h| h.pool) else { continue };
                if pools.contains(&pool) && self.check_sharing(ip, pool, service).is_ok() {
                    return Some((ip, pool));
                }
            }
        }
        pools.iter().find_map(|&pool| self.pools[pool].space(family).first_free().map(|ip| (ip, pool)))
    }

    /// Holds `addresses` for the Service, which holds nothing; `hash` is its key's.
    fn record(&mut self, hash: u64, service: &Service, addresses: Addresses, pool: usize) {
        let key = &service.key;
        let sharing = Sharing::of(service);
        for ip in addresses.iter() {
            let Some(sharing) = &sharing else {
                let inserted = self.pools[pool].space_mut(Family::of(ip)).insert(ip);
                debug_assert!(inserted, "{ip} handed out twice");
                continue;
            };
            match self.holders.entry(ip) {
                Slot::Occupied(mut h) => h.get_mut().others.push(key.clone()),
                Slot::Vacant(slot) => {
                    slot.insert(Holders { pool, first: key.clone(), others: Vec::new() });
                    let inserted = self.pools[pool].space_mut(Family::of(ip)).insert(ip);
                    debug_assert!(inserted, "{ip} handed out twice");
                }
            }
            self.by_sharing_key.entry(sharing.key.clone()).or_default().insert(ip);
        }
        self.services.insert_new_hashed(hash, key.clone(), Entry { addresses, pool, sharing });
    }

    /// Updates the stored sharing terms of a Service that keeps its addresses
    /// (its ports or key may have changed compatibly).
    fn refresh_sharing(&mut self, service: &Service) {
        let fresh = Sharing::of(service);
        let Some(entry) = self.services.get_mut(&service.key) else { return };
        if entry.sharing == fresh {
            return;
        }
        let old = std::mem::replace(&mut entry.sharing, fresh);
        let (addresses, pool) = (entry.addresses, entry.pool);
        let new_key = service.sharing_key();
        for ip in addresses.iter() {
            // A Service that changed its key (or dropped it) and kept its
            // addresses holds them alone: the check before refused otherwise.
            match (&old, new_key) {
                (None, Some(_)) => {
                    self.holders.insert(ip, Holders { pool, first: service.key.clone(), others: Vec::new() });
                }
                (Some(_), None) => {
                    self.holders.remove(&ip);
                }
                _ => {}
            }
            if let Some(old) = &old
                && new_key != Some(old.key.as_str())
            {
                self.unindex(&old.key, ip);
            }
            if let Some(key) = new_key {
                self.by_sharing_key.entry(key.to_string()).or_default().insert(ip);
            }
        }
    }

    fn unindex(&mut self, key: &str, ip: IpAddr) {
        if let Some(set) = self.by_sharing_key.get_mut(key) {
            set.remove(&ip);
            if set.is_empty() {
                self.by_sharing_key.remove(key);
            }
        }
    }
}
