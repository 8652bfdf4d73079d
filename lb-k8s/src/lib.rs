//! The one crate of the load balancer that does I/O.
//!
//! The pure crates decide; this crate carries their decisions out on real
//! sockets and feeds them what the world says:
//!
//! - [`bgp`]: a tokio task per BGP peer driving an `lb_bgp::session::Session`
//!   over TCP (TCP MD5, TTL, source address), and the speaker that keeps
//!   the set of peers and their routes equal to what the planner wants.

pub mod bgp;
