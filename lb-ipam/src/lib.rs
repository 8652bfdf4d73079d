//! Address allocation for LoadBalancer Services, with MetalLB's semantics:
//! pools, `serviceAllocation`, requested addresses, the `address-pool`
//! annotation, sharing keys, dual stack, restore after restart and
//! revalidation on configuration change.
//!
//! This crate is pure: no I/O, no clock, no tasks. It is a data structure
//! that a controller drives (see [`Allocator`] for the expected flow).
//!
//! - [`allocator`]: the [`Allocator`];
//! - [`space`]: one family of one pool, with the used addresses as runs,
//!   so a pool's size never costs memory or time;
//! - `runs`: the used runs of a space, the lowest kept out of the tree;
//! - `services`: the per-Service table, each key stored with its hash;
//! - [`request`]: what a Service asks for;
//! - [`error`]: why a Service got no address;
//! - [`incremental`]: a controller's passes at the cost of what changed;
//! - [`pipeline`]: the controller's half of the plan, and the whole
//!   [`lb_core::plan::ClusterPlan`] (allocation, then every node's plan).

pub mod allocator;
pub mod error;
pub mod incremental;
pub mod pipeline;
pub mod request;
mod runs;
mod services;
pub mod space;

pub use allocator::{Addresses, Allocator, Assignment, PoolStats};
pub use error::AllocError;
