//! Drivers: each turns a plan into system calls and system events into
//! inputs for a pure state machine; none holds a rule of its own.
//!
//! - [`bgp`]: a tokio task per peer driving `lb_bgp` sessions over TCP;
//! - [`l2`]: a dedicated thread answering ARP and NDP over `AF_PACKET`,
//!   driving an `lb_arp` responder.

pub mod bgp;
pub mod l2;
pub mod lease;
