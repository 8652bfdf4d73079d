//! Layer 2 address resolution for a load balancer that answers for the IPs
//! it owns: ARP (RFC 826) for IPv4 and Neighbor Discovery (RFC 4861) for IPv6.
//!
//! This crate is pure: it never opens a socket, reads a clock, spawns a
//! task or touches the file system. Frames come in as byte slices and go out
//! as byte vectors; a driver (`lb-k8s`, over `AF_PACKET`) owns the socket.
//!
//! - [`wire`]: zero-copy views over Ethernet II, ARP, IPv6 and ICMPv6
//!   Neighbor Solicitation / Advertisement, each with an owned `Repr`
//!   (`parse`, `buffer_len`, `emit`), and [`wire::Frame`], which parses or
//!   builds a whole Ethernet frame. Every parser is total: any bytes give a
//!   value or a [`wire::WireError`], never a panic.
//!
//! The field layouts are written by hand from the RFCs (RFC 826, RFC 8200
//! §3, RFC 4861 §4.3, §4.4 and §4.6.1, RFC 4443 §2.3); no packet crate is
//! used.

pub mod wire;
