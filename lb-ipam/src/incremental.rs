//! Allocation for a controller that sees the world change one Service at a
//! time: the same outcome as [`crate::pipeline::allocate`] over the whole
//! world at every change, at the cost of what changed.
//!
//! A controller watching 10,000 Services gets one event when an eleventh
//! thousand-and-first is created. A whole pass would convert and
//! re-allocate all of them to learn that one Service needs an address;
//! [`Incremental::pass`] allocates only the Services that changed since
//! the last pass, plus those still waiting for an address (something may
//! have been freed for them), and says which Services' results may differ
//! so the controller writes back only those.
//!
//! Why this gives the whole pass's outcome: allocating a Service that
//! already holds addresses, and has not changed, keeps them as long as
//! the configuration and the namespaces are the same (those changes make
//! the next pass a whole one), so in a whole pass every such Service is a
//! no-op. What remains are the changed and the waiting Services, taken in
//! the whole pass's order ([`Allocator::allocate_all`]'s groups, then key
//! order). The property test below checks it against whole passes.

use std::collections::{BTreeMap, BTreeSet};

use lb_core::plan::{PoolStats, ServiceAssignment};
use lb_core::{Config, Namespace, Service, ServiceKey};

use crate::Allocator;

/// The world as last seen and what allocation made of it.
#[derive(Debug, Clone)]
pub struct Incremental {
    allocator: Allocator,
    services: BTreeMap<ServiceKey, Service>,
    /// Results of the Services the allocator handles (with an address or
    /// an error), by key.
    results: BTreeMap<ServiceKey, ServiceAssignment>,
    /// Handled Services without an address: tried again at every pass.
    waiting: BTreeSet<ServiceKey>,
    /// Changed (or removed) since the last pass.
    dirty: BTreeSet<ServiceKey>,
    namespaces: Vec<Namespace>,
    /// A configuration given since the last pass: installed at the next,
    /// with the Services as they are then (as a whole pass does).
    config: Option<Config>,
    /// The next pass takes every Service.
    whole: bool,
}

impl Incremental {
    /// Starts from `allocator` (its configuration and class options); the
    /// first pass is a whole one.
    pub fn new(allocator: Allocator) -> Self {
        Self {
            allocator,
            services: BTreeMap::new(),
            results: BTreeMap::new(),
            waiting: BTreeSet::new(),
            dirty: BTreeSet::new(),
            namespaces: Vec::new(),
            config: None,
            whole: true,
        }
    }

    /// A Service as it is now (added or changed); the same again is no change.
    pub fn upsert(&mut self, service: Service) {
        if self.services.get(&service.key) != Some(&service) {
            self.dirty.insert(service.key.clone());
            self.services.insert(service.key.clone(), service);
        }
    }

    /// A Service gone.
    pub fn remove(&mut self, key: &ServiceKey) {
        if self.services.remove(key).is_some() {
            self.dirty.insert(key.clone());
        }
    }

    /// Takes `key` again at the next pass, unchanged (its write-back failed).
    pub fn touch(&mut self, key: &ServiceKey) {
        self.dirty.insert(key.clone());
    }

    /// The configuration now; a different one makes the next pass whole.
    /// It is installed by that pass, so that what it keeps or releases is
    /// judged on the Services as they are then, whatever order the changes
    /// were given in.
    pub fn set_config(&mut self, config: Config) {
        self.config = (*self.allocator.config() != config).then_some(config);
    }

    /// The configuration in force (the last given, once a pass installed it).
    pub fn config(&self) -> &Config {
        self.allocator.config()
    }

    /// The namespaces now; different ones make the next pass whole.
    pub fn set_namespaces(&mut self, mut namespaces: Vec<Namespace>) {
        namespaces.sort_by(|a, b| a.name.cmp(&b.name));
        if self.namespaces != namespaces {
            self.allocator.set_namespaces(namespaces.iter().cloned());
            self.namespaces = namespaces;
            self.whole = true;
        }
    }

    /// Allocates what may have changed. Returns the keys whose result may
    /// differ from the last pass (every key after a whole pass), in key
    /// order: Services with a result ([`Incremental::result`]), Services
    /// not handled (no result) and Services gone.
    pub fn pass(&mut self) -> Vec<ServiceKey> {
        if let Some(config) = self.config.take() {
            let services: Vec<Service> = self.services.values().cloned().collect();
            self.allocator.set_config(config, &services);
            self.whole = true;
        }
        let touched: BTreeSet<ServiceKey> = if std::mem::take(&mut self.whole) {
            let mut all: BTreeSet<ServiceKey> = self.services.keys().cloned().collect();
            all.extend(self.results.keys().cloned());
            all.append(&mut self.dirty);
            all
        } else {
            let mut touched = std::mem::take(&mut self.dirty);
            touched.extend(self.waiting.iter().cloned());
            touched
        };
        let mut present = Vec::with_capacity(touched.len());
        for key in &touched {
            if !self.services.contains_key(key) {
                self.allocator.release(key);
                self.results.remove(key);
                self.waiting.remove(key);
            } else {
                present.push(key);
            }
        }
        let services: Vec<Service> = present.iter().filter_map(|k| self.services.get(*k)).cloned().collect();
        let results = self.allocator.allocate_all(&services);
        for (service, result) in services.into_iter().zip(results) {
            let key = service.key;
            let assignment = match result {
                Ok(None) => None,
                Ok(Some((addresses, pool))) => Some(ServiceAssignment {
                    service: key.clone(),
                    ips: addresses.to_vec(),
                    pool: Some(pool),
                    error: None,
                }),
                Err(e) => Some(ServiceAssignment {
                    service: key.clone(),
                    ips: Vec::new(),
                    pool: None,
                    error: Some(e.to_string()),
                }),
            };
            match assignment {
                Some(a) => {
                    if a.error.is_some() {
                        self.waiting.insert(key.clone());
                    } else {
                        self.waiting.remove(&key);
                    }
                    self.results.insert(key, a);
                }
                None => {
                    self.waiting.remove(&key);
                    self.results.remove(&key);
                }
            }
        }
        touched.into_iter().collect()
    }

    /// The Service as last given.
    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.services.get(key)
    }

    /// What the last pass made of a handled Service.
    pub fn result(&self, key: &ServiceKey) -> Option<&ServiceAssignment> {
        self.results.get(key)
    }

    /// Every handled Service's result, in key order.
    pub fn results(&self) -> impl Iterator<Item = &ServiceAssignment> {
        self.results.values()
    }

    /// Handled Services still without an address.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn pool_stats(&self) -> Vec<PoolStats> {
        self.allocator.pool_stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline;
    use lb_core::plan::Observed;
    use proptest::prelude::*;

    fn config() -> Config {
        let yaml = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [192.0.2.0/30]}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: b}\nspec: {addresses: [198.51.100.0/31], autoAssign: false}\n";
        match lb_core::config::load(&[("c.yaml", yaml)]) {
            Ok(l) => l.config,
            Err(e) => panic!("{e:?}"),
        }
    }

    /// A Service from a few knobs that make allocation interesting: a
    /// requested address, a pool, a sharing key with ports, a status
    /// address, a class or type that is not ours.
    fn service(name: u8, knobs: (u8, u8, u8, u8, u8)) -> Service {
        let (requested, pool, sharing, status, kind) = knobs;
        let mut annotations = String::new();
        if requested % 4 == 1 {
            annotations += &format!("metallb.io/loadBalancerIPs: 192.0.2.{}\n    ", requested % 3);
        }
        if pool % 3 == 1 {
            annotations += "metallb.io/address-pool: b\n    ";
        }
        if sharing % 3 != 0 {
            annotations += "metallb.io/allow-shared-ip: k\n    ";
        }
        let spec_type = if kind % 5 == 0 { "ClusterIP" } else { "LoadBalancer" };
        let class = if kind % 5 == 1 { "\n  loadBalancerClass: other" } else { "" };
        let status = if status % 4 == 1 {
            format!("\nstatus: {{loadBalancer: {{ingress: [{{ip: 192.0.2.{}}}]}}}}", status % 3)
        } else {
            String::new()
        };
        let yaml = format!(
            "kind: Service\nmetadata:\n  name: s{name}\n  namespace: ns\n  annotations:\n    {annotations}x: z\nspec:\n  type: {spec_type}{class}\n  ports: [{{port: {}, protocol: TCP}}]{status}\n",
            80 + u16::from(sharing % 2),
        );
        match lb_core::manifest::services(&yaml) {
            Ok(mut s) => s.remove(0),
            Err(e) => panic!("{e:?}\n{yaml}"),
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Upsert(u8, (u8, u8, u8, u8, u8)),
        Remove(u8),
        Config(bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..8, any::<(u8, u8, u8, u8, u8)>()).prop_map(|(n, k)| Op::Upsert(n, k)),
            2 => (0u8..8).prop_map(Op::Remove),
            1 => any::<bool>().prop_map(Op::Config),
        ]
    }

    fn smaller(config: &Config) -> Config {
        let yaml = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [192.0.2.1/32, 192.0.2.2/32]}\n";
        let mut c = match lb_core::config::load(&[("c.yaml", yaml)]) {
            Ok(l) => l.config,
            Err(e) => panic!("{e:?}"),
        };
        c.pools.extend(config.pools.iter().filter(|p| p.name == "b").cloned());
        c
    }

    proptest! {
        /// After every batch of changes (a pass takes whatever came since
        /// the last), the incremental results equal those of a whole pass
        /// run on an allocator that saw the same history of whole passes;
        /// and the keys a pass reports cover every result that changed.
        #[test]
        fn incremental_passes_give_the_whole_passes_outcome(
            batches in prop::collection::vec(prop::collection::vec(op(), 1..4), 1..25),
        ) {
            let full_config = config();
            let mut incremental = Incremental::new(Allocator::new(full_config.clone()).with_only_class(None));
            let mut whole = Allocator::new(full_config.clone()).with_only_class(None);
            let mut world: BTreeMap<u8, Service> = BTreeMap::new();
            let mut current = full_config.clone();
            let mut before: BTreeMap<ServiceKey, ServiceAssignment> = BTreeMap::new();
            for batch in batches {
              for op in batch {
                match op {
                    Op::Upsert(n, knobs) => {
                        let s = service(n, knobs);
                        world.insert(n, s.clone());
                        incremental.upsert(s);
                    }
                    Op::Remove(n) => {
                        if let Some(s) = world.remove(&n) {
                            incremental.remove(&s.key);
                        }
                    }
                    Op::Config(full) => {
                        current = if full { full_config.clone() } else { smaller(&full_config) };
                        incremental.set_config(current.clone());
                    }
                }
              }
                let touched = incremental.pass();
                let observed = Observed {
                    config: current.clone(),
                    services: world.values().cloned().collect(),
                    ..Observed::default()
                };
                let expected = pipeline::allocate(&mut whole, &observed);
                let mut expected: Vec<ServiceAssignment> = expected.services;
                expected.sort_by(|a, b| a.service.cmp(&b.service));
                let got: Vec<ServiceAssignment> = incremental.results().cloned().collect();
                prop_assert_eq!(&got, &expected);
                prop_assert_eq!(incremental.pool_stats(), whole.pool_stats());
                let now: BTreeMap<ServiceKey, ServiceAssignment> =
                    got.into_iter().map(|a| (a.service.clone(), a)).collect();
                for key in before.keys().chain(now.keys()) {
                    if before.get(key) != now.get(key) {
                        prop_assert!(touched.contains(key), "{} changed but was not reported", key);
                    }
                }
                before = now;
            }
        }
    }

    #[test]
    fn a_pass_after_one_change_takes_that_service_and_the_waiting_ones() {
        let mut incremental = Incremental::new(Allocator::new(config()).with_only_class(None));
        for n in 0..6 {
            incremental.upsert(service(n, (0, 0, 0, 0, 2)));
        }
        let first = incremental.pass();
        assert_eq!(first.len(), 6);
        // Four addresses in the auto-assigned pool: two wait.
        assert_eq!(incremental.waiting(), 2);
        incremental.upsert(service(6, (0, 0, 0, 0, 2)));
        let touched: Vec<String> = incremental.pass().iter().map(ToString::to_string).collect();
        assert_eq!(touched, ["ns/s4", "ns/s5", "ns/s6"]);
        // Nothing changed: only the waiting are tried again.
        assert_eq!(incremental.pass().len(), 3);
        incremental.remove(&service(0, (0, 0, 0, 0, 2)).key);
        let touched: Vec<String> = incremental.pass().iter().map(ToString::to_string).collect();
        assert_eq!(touched, ["ns/s0", "ns/s4", "ns/s5", "ns/s6"]);
        assert_eq!(incremental.waiting(), 2, "the freed address went to one waiting Service");
    }
}
