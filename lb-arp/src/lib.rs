//! Layer 2 address resolution for a load balancer that answers for the IPs
//! it owns: ARP (RFC 826) for IPv4 and Neighbor Discovery (RFC 4861) for IPv6.
//!
//! This crate is pure: it never opens a socket, reads a clock (every call
//! takes `now`), spawns a task or touches the file system. Frames come in as byte slices and go out
//! as byte vectors; a driver (`lb-k8s`, over `AF_PACKET`) owns the socket.
//!
//! - [`wire`]: zero-copy views over Ethernet II, ARP, IPv6 and ICMPv6
//!   Neighbor Solicitation / Advertisement, each with an owned `Repr`
//!   (`parse`, `buffer_len`, `emit`), and [`wire::Frame`], which parses or
//!   builds a whole Ethernet frame. Every parser is total: any bytes give a
//!   value or a [`wire::WireError`], never a panic;
//! - [`responder`]: the sans-IO [`Responder`]: which frames to answer, from
//!   which interface, and when to announce an owned IP; which frames show
//!   another host using an owned IP (a conflict, reported and not fought);
//! - [`interfaces`]: which of the host's links an owned IP is answered on
//!   (flags, MetalLB's name exclusions, interfaces named by an
//!   advertisement);
//! - [`membership`]: who is alive and what each member answers for: SWIM
//!   (the `foca` crate, sans-IO) tuned to declare a dead node down in about
//!   0.3 s, each member's claims gossiped with its updates, datagrams
//!   authenticated with a shared key. Its output, with the observed world,
//!   is what `lb_core::l2::plan_l2` decides ownership from.
//!
//! # Example: answering an ARP request
//!
//! ```
//! use std::net::Ipv4Addr;
//! use lb_arp::wire::{arp_frame, ArpRepr, EtherType, EthernetRepr, Frame, FrameBody, MacAddr, Operation};
//!
//! let ours = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
//! let vip = Ipv4Addr::new(192, 0, 2, 10);
//! let asker = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
//! let request = ArpRepr {
//!     operation: Operation::Request,
//!     sender_mac: asker,
//!     sender_ip: Ipv4Addr::new(192, 0, 2, 1),
//!     target_mac: MacAddr::ZERO,
//!     target_ip: vip,
//! };
//! let received = arp_frame(MacAddr::BROADCAST, asker, &request);
//!
//! let frame = Frame::parse(&received)?;
//! if let FrameBody::Arp(req) = frame.body {
//!     if req.operation == Operation::Request && req.target_ip == vip {
//!         let reply = ArpRepr {
//!             operation: Operation::Reply,
//!             sender_mac: ours,
//!             sender_ip: vip,
//!             target_mac: req.sender_mac,
//!             target_ip: req.sender_ip,
//!         };
//!         let bytes = arp_frame(frame.ethernet.src, ours, &reply);
//!         let sent = Frame::parse(&bytes)?;
//!         assert_eq!(sent.ethernet, EthernetRepr { dst: asker, src: ours, ethertype: EtherType::Arp });
//!         assert_eq!(sent.body, FrameBody::Arp(reply));
//!     }
//! }
//! # Ok::<(), lb_arp::wire::WireError>(())
//! ```
//!
//! # Example: answering a Neighbor Solicitation
//!
//! ```
//! use std::net::Ipv6Addr;
//! use lb_arp::wire::{ndp_frame, solicited_node, solicited_node_mac, Frame, FrameBody, Ipv6NdpRepr, MacAddr, NdpRepr};
//!
//! let ours = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
//! let vip: Ipv6Addr = "2001:db8::10".parse().unwrap();
//! let asker = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
//! let ns = Ipv6NdpRepr {
//!     src: "2001:db8::1".parse().unwrap(),
//!     dst: solicited_node(vip),
//!     hop_limit: 255,
//!     message: NdpRepr::NeighborSolicit { target: vip, source_ll: Some(asker) },
//! };
//! let received = ndp_frame(solicited_node_mac(vip), asker, &ns);
//!
//! let frame = Frame::parse(&received)?;
//! if let FrameBody::Ndp(Ipv6NdpRepr { src, message: NdpRepr::NeighborSolicit { target, source_ll }, .. }) = frame.body {
//!     assert_eq!(target, vip);
//!     let na = Ipv6NdpRepr {
//!         src: vip,
//!         dst: src,
//!         hop_limit: 255,
//!         message: NdpRepr::NeighborAdvert {
//!             router: false,
//!             solicited: true,
//!             override_flag: true,
//!             target: vip,
//!             target_ll: Some(ours),
//!         },
//!     };
//!     let bytes = ndp_frame(source_ll.unwrap_or(frame.ethernet.src), ours, &na);
//!     assert_eq!(Frame::parse(&bytes)?.body, FrameBody::Ndp(na));
//! }
//! # Ok::<(), lb_arp::wire::WireError>(())
//! ```
//!
//! The field layouts are written by hand from the RFCs (RFC 826, RFC 8200
//! §3, RFC 4861 §4.3, §4.4 and §4.6.1, RFC 4443 §2.3); no packet crate is
//! used.

pub mod interfaces;
pub mod membership;
pub mod responder;
pub mod wire;

pub use interfaces::{Exclusions, Link, LinkFlags, Unselectable};
pub use responder::{Counters, Responder, ResponderConfig, ResponderEvent, Transmit};
