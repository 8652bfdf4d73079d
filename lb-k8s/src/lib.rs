//! The one crate of the load balancer that does I/O.
//!
//! The pure crates decide; this crate carries their decisions out on real
//! sockets and feeds them what the world says:
//!
//! - [`bgp`]: a tokio task per BGP peer driving an `lb_bgp::session::Session`
//!   over TCP (TCP MD5, TTL, source address), and the speaker that keeps
//!   the set of peers and their routes equal to what the planner wants;
//! - [`files`]: configuration and manifests from files, and a watcher;
//! - [`standalone`]: allocator, planner and speaker in one process over
//!   files (`lb standalone`);
//! - [`http`], [`metrics`]: `/status` and `/metrics`.

pub mod bgp;
pub mod files;
pub mod http;
pub mod metrics;
pub mod standalone;
