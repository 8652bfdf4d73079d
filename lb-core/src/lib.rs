//! The model of a bare-metal load balancer: MetalLB-compatible
//! configuration, Services, Namespaces, Nodes and endpoints, label
//! selectors, and the planner that decides what each node announces.
//!
//! This crate is pure: it never opens a socket, reads a clock, spawns a task
//! or touches the file system. Text comes in as `&str`, results come out as
//! values, so every rule can be tested, simulated and embedded.
//!
//! - [`config`]: the legacy ConfigMap and the `metallb.io` resources, read
//!   from YAML and validated into [`config::Config`];
//! - [`service`], [`node`], [`endpoints`], [`manifest`]: Services,
//!   Namespaces, Nodes and EndpointSlices, and reading them from Kubernetes
//!   manifests;
//! - [`l2`]: who announces a layer 2 IP, by MetalLB's ranking;
//! - [`planner`]: the one function from the observed world to the routes a
//!   node announces to each of its peers;
//! - [`plan`]: the plan value, [`plan::ClusterPlan`], and the node half of
//!   it, [`plan::plan_node`];
//! - [`peering`]: the BGP session with each peer (timers, TTL, key, router
//!   ID, next hops), for a driver to apply;
//! - [`addr`], [`community`], [`duration`], [`selector`]: the value types
//!   the configuration is written in.

pub mod addr;
pub mod backoff;
pub mod community;
pub mod config;
pub mod duration;
pub mod endpoints;
pub mod event_series;
pub mod l2;
pub mod lease;
pub mod manifest;
pub mod node;
pub mod peering;
pub mod plan;
pub mod planner;
pub mod selector;
pub mod service;
pub mod writeback;

pub use addr::{AddressBlock, Family};
pub use config::{Config, ConfigError, Pool};
pub use node::Node;
pub use service::{Namespace, Service, ServiceKey};
