//! The one crate of the load balancer that does I/O.
//!
//! The pure crates decide; this crate feeds them what the world says and
//! carries their decisions out. Its modules depend one way:
//!
//! ```text
//! roles ──► sources, sinks, drivers ──► view ──► pure crates
//! ```
//!
//! - [`crds`]: the `metallb.io` resources as Rust types, their CRDs, and
//!   the way from cluster objects into lb-core's configuration;
//! - [`sources`]: the observed world from files (and a watcher);
//! - [`sinks`]: the state file, `/status`, `/metrics`, the announcement log;
//! - [`drivers`]: BGP sessions over TCP (a tokio task per peer), the layer 2
//!   responder over `AF_PACKET` (a thread of its own);
//! - [`view`]: the values drivers write and sinks read;
//! - [`roles`]: `standalone`, wiring the above;
//! - [`sys`]: the system calls no crate wraps; the only `unsafe` code.

pub mod crds;
pub mod drivers;
pub mod rbac;
pub mod roles;
pub mod sinks;
pub mod sources;
pub mod sys;
pub mod view;
