//! BGP-4 (RFC 4271) for a speaker that announces routes: the wire codec,
//! the session state machine, collision handling and the Adj-RIB-Out.
//!
//! This crate is pure: it never opens a socket, reads a clock, spawns a
//! task or touches the file system. Bytes come in as slices and go out into
//! buffers; a driver (`lb-k8s`) owns the TCP connection and the timers.
//!
//! - [`adj_rib_out`]: the fewest UPDATEs from what a peer has to what it should have;
//! - [`peer`]: one peer over up to two connections, resolving collisions (RFC 4271 §6.8);
//! - [`session`]: the RFC 4271 state machine, fed bytes, events and time;
//! - [`stats`]: what a session sent and received, counted as it encodes and decodes;
//! - [`wire`]: framing and the messages, with the negotiated [`wire::Context`];
//!   every decoder is total (any bytes give a value or an error, never a
//!   panic) and every error knows the NOTIFICATION it calls for.

pub mod adj_rib_out;
pub mod peer;
pub mod session;
pub mod stats;
pub mod wire;
