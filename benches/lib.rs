//! Baselines the benches compare against, and shared set-up.

use std::collections::HashMap;
use std::net::IpAddr;

use lb_core::addr::AddressBlock;
use lb_core::service::{Service, ServiceKey, ServiceType};

/// MetalLB's way: scan the pool from its first address until one is free.
#[derive(Debug)]
pub struct NaiveScan {
    blocks: Vec<AddressBlock>,
    used: HashMap<IpAddr, ServiceKey>,
}

impl NaiveScan {
    pub fn new(blocks: Vec<AddressBlock>) -> Self {
        Self { blocks, used: HashMap::new() }
    }

    pub fn allocate(&mut self, key: &ServiceKey) -> Option<IpAddr> {
        let ip = self
            .blocks
            .iter()
            .flat_map(|b| (0..b.len()).map_while(move |i| b.nth(i)))
            .find(|ip| !self.used.contains_key(ip))?;
        self.used.insert(ip, key.clone());
        Some(ip)
    }

    /// The state after `count` allocations from empty (the first `count`
    /// addresses in use), built directly rather than by `count` scans.
    pub fn filled(blocks: Vec<AddressBlock>, keys: &[ServiceKey]) -> Self {
        let used =
            blocks.iter().flat_map(|b| (0..b.len()).map_while(move |i| b.nth(i))).zip(keys.iter().cloned()).collect();
        Self { blocks, used }
    }

    pub fn release(&mut self, ip: IpAddr) {
        self.used.remove(&ip);
    }
}

/// `count` LoadBalancer Services `bench/svc-N`.
pub fn services(count: usize) -> Vec<Service> {
    (0..count)
        .map(|i| {
            let mut s = Service::new("bench", &format!("svc-{i}"));
            s.service_type = ServiceType::LoadBalancer;
            s
        })
        .collect()
}

/// Configuration with one IPv4 pool `bench` of `cidr`.
pub fn config(cidr: &str) -> lb_core::Config {
    let yaml = format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: bench}}\nspec:\n  addresses: [{cidr}]\n"
    );
    match lb_core::config::load(&[("bench.yaml", &yaml)]) {
        Ok(l) => l.config,
        Err(e) => panic!("bench config: {e:?}"),
    }
}
