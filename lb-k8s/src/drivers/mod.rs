//! Drivers: each turns a plan into system calls and system events into
//! inputs for a pure state machine; none holds a rule of its own.
//!
//! - [`bgp`]: a tokio task per peer driving `lb_bgp` sessions over TCP.

pub mod bgp;
