//! Roles: each wires sources, the pure core, sinks and drivers into one
//! way of running `lb`. A role holds no rule; it says what feeds what.
//!
//! - [`standalone`]: files in, both halves (allocation and this node's
//!   announcements) in one process, the state file as its status store.

//! - [`layer2`]: gossip membership, layer 2 ownership and the raw-socket
//!   responder on a thread of their own, for `standalone` (and `speaker`).

pub mod controller;
pub mod layer2;
pub mod speaker;
pub mod standalone;
