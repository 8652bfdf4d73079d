//! The host's links and their IPv6 link-local addresses, from rtnetlink:
//! dumped once, then kept current by the kernel's notifications.
//!
//! One `NETLINK_ROUTE` socket subscribed to `RTMGRP_LINK`,
//! `RTMGRP_IPV4_IFADDR` and `RTMGRP_IPV6_IFADDR` carries both: the
//! subscription is made before the dumps are asked for, so a change while
//! dumping is never missed, and every message (dump answer or
//! notification) is applied the same way, in the order received. A link
//! going down, losing carrier or being deleted is known as soon as the
//! kernel says it, without polling. When the kernel drops notifications
//! (`ENOBUFS`: our buffer overflowed), everything is dumped again and what
//! the new dump lacks is forgotten.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv6Addr};

use lb_arp::interfaces::{Link, LinkFlags};
use lb_arp::wire::MacAddr;
use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{self, LinkAttribute, LinkLayerType, LinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use tokio::io::unix::AsyncFd;

use crate::sys;

/// Receive buffer asked of the kernel, so bursts of changes (many pods
/// starting) fit before we read them.
const RCVBUF: usize = 1 << 20;
/// Read buffer: the kernel's dump messages are at most 32 KiB.
const READ_BUF: usize = 64 * 1024;

/// Opens the rtnetlink socket, subscribed to link and address changes.
/// Call it in the network namespace to watch; the socket stays there.
///
/// # Errors
///
/// Creating, binding or configuring the socket.
pub fn open_socket() -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    let groups = libc::RTMGRP_LINK | libc::RTMGRP_IPV4_IFADDR | libc::RTMGRP_IPV6_IFADDR;
    socket.bind(&SocketAddr::new(0, u32::try_from(groups).unwrap_or(0)))?;
    // Best effort: the default buffer works, only less well under bursts.
    let _ = socket.set_rx_buf_sz(RCVBUF);
    socket.set_non_blocking(true)?;
    Ok(socket)
}

/// Which dump is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dump {
    Links,
    Addresses,
}

/// The host's links as the kernel last described them.
#[derive(Debug)]
pub struct LinkWatch {
    fd: AsyncFd<Socket>,
    buf: Vec<u8>,
    seq: u32,
    /// The dump answered now (its sequence number), and those to come.
    dumping: Option<(Dump, u32)>,
    queued: VecDeque<Dump>,
    /// What the running dump has shown, to forget the rest at its end.
    seen_links: BTreeSet<u32>,
    seen_addresses: BTreeSet<(u32, Ipv6Addr)>,
    /// Both first dumps are done: the view is complete.
    ready: bool,
    links: BTreeMap<u32, Link>,
    /// IPv6 link-local addresses by interface index (addresses may be told
    /// before their link).
    link_locals: BTreeMap<u32, BTreeSet<Ipv6Addr>>,
}

impl LinkWatch {
    /// Starts watching on `socket` (from [`open_socket`]): asks for the
    /// dumps. Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// Registering the socket, sending the first dump request.
    pub fn new(socket: Socket) -> io::Result<Self> {
        let mut watch = Self {
            fd: sys::register_readable(socket)?,
            buf: Vec::with_capacity(READ_BUF),
            seq: 0,
            dumping: None,
            queued: VecDeque::new(),
            seen_links: BTreeSet::new(),
            seen_addresses: BTreeSet::new(),
            ready: false,
            links: BTreeMap::new(),
            link_locals: BTreeMap::new(),
        };
        watch.resync()?;
        Ok(watch)
    }

    /// Whether the first dumps are complete.
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// The links, each with whether it has an IPv6 link-local address.
    pub fn links(&self) -> Vec<Link> {
        self.links
            .values()
            .map(|l| Link {
                ipv6_link_local: self.link_locals.get(&l.index).is_some_and(|a| !a.is_empty()),
                ..l.clone()
            })
            .collect()
    }

    /// Waits for the kernel's next datagram and applies it: whether the
    /// links changed (or the first dumps just completed).
    ///
    /// # Errors
    ///
    /// A read error other than an overflow (which starts a resync).
    pub async fn changed(&mut self) -> io::Result<bool> {
        loop {
            let mut guard = self.fd.readable().await?;
            self.buf.clear();
            let buf = &mut self.buf;
            match guard.try_io(|fd| fd.get_ref().recv(buf, 0)) {
                Err(_would_block) => continue,
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.resync()?;
                    continue;
                }
                Ok(Err(e)) => return Err(e),
                Ok(Ok(_)) => {}
            }
            let before = (self.ready, self.links());
            self.apply_datagram()?;
            return Ok((self.ready, self.links()) != before);
        }
    }

    /// Dumps links, then addresses, afresh.
    fn resync(&mut self) -> io::Result<()> {
        self.queued = VecDeque::from([Dump::Links, Dump::Addresses]);
        self.dumping = None;
        self.next_dump()
    }

    fn next_dump(&mut self) -> io::Result<()> {
        let Some(dump) = self.queued.pop_front() else {
            self.dumping = None;
            self.ready = true;
            return Ok(());
        };
        self.seq = self.seq.wrapping_add(1).max(1);
        let payload = match dump {
            Dump::Links => {
                self.seen_links.clear();
                RouteNetlinkMessage::GetLink(LinkMessage::default())
            }
            Dump::Addresses => {
                self.seen_addresses.clear();
                RouteNetlinkMessage::GetAddress(AddressMessage::default())
            }
        };
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = self.seq;
        let mut request = NetlinkMessage::new(header, NetlinkPayload::from(payload));
        request.finalize();
        let mut bytes = vec![0; request.buffer_len()];
        request.serialize(&mut bytes);
        self.fd.get_ref().send(&bytes, 0)?;
        self.dumping = Some((dump, self.seq));
        Ok(())
    }

    /// Applies every message of the datagram in `self.buf`.
    fn apply_datagram(&mut self) -> io::Result<()> {
        let datagram = std::mem::take(&mut self.buf);
        let mut at = 0;
        while let Some(header) = datagram.get(at..at + 4) {
            let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
            if len < 16 || at + len > datagram.len() {
                break;
            }
            // A message this crate cannot decode is skipped, not fatal.
            if let Ok(message) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&datagram[at..at + len]) {
                self.apply(message)?;
            }
            at += (len + 3) & !3;
        }
        self.buf = datagram;
        Ok(())
    }

    fn apply(&mut self, message: NetlinkMessage<RouteNetlinkMessage>) -> io::Result<()> {
        let ours = self.dumping.filter(|(_, seq)| *seq == message.header.sequence_number).map(|(dump, _)| dump);
        match message.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => {
                if let Some(link) = link_of(&m) {
                    if ours == Some(Dump::Links) {
                        self.seen_links.insert(link.index);
                    }
                    self.links.insert(link.index, link);
                }
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(m)) => {
                self.links.remove(&m.header.index);
                self.link_locals.remove(&m.header.index);
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m)) => {
                if let Some(address) = link_local_of(&m) {
                    if ours == Some(Dump::Addresses) {
                        self.seen_addresses.insert((m.header.index, address));
                    }
                    self.link_locals.entry(m.header.index).or_default().insert(address);
                }
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(m)) => {
                if let Some(address) = link_local_of(&m)
                    && let Some(set) = self.link_locals.get_mut(&m.header.index)
                {
                    set.remove(&address);
                }
            }
            NetlinkPayload::Done(_) if ours.is_some() => {
                match ours {
                    Some(Dump::Links) => {
                        let seen = std::mem::take(&mut self.seen_links);
                        self.links.retain(|index, _| seen.contains(index));
                    }
                    Some(Dump::Addresses) => {
                        let seen = std::mem::take(&mut self.seen_addresses);
                        for (index, set) in &mut self.link_locals {
                            set.retain(|a| seen.contains(&(*index, *a)));
                        }
                    }
                    None => {}
                }
                self.next_dump()?;
            }
            // The dump failed (it was interrupted): ask again.
            NetlinkPayload::Error(e) if ours.is_some() && e.code.is_some() => {
                if let Some(dump) = ours {
                    self.queued.push_front(dump);
                }
                self.next_dump()?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// A link as the pure crate sees it; `None` without an index or a name.
fn link_of(m: &LinkMessage) -> Option<Link> {
    let mut name = None;
    let mut mac = None;
    let mut enslaved = false;
    for attribute in &m.attributes {
        match attribute {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Address(bytes) if m.header.link_layer_type == LinkLayerType::Ether => {
                mac = <[u8; 6]>::try_from(bytes.as_slice()).ok().map(MacAddr);
            }
            LinkAttribute::Controller(master) => enslaved = *master != 0,
            _ => {}
        }
    }
    let f = m.header.flags;
    let flags = LinkFlags {
        up: f.contains(link::LinkFlags::Up),
        lower_up: f.contains(link::LinkFlags::LowerUp),
        broadcast: f.contains(link::LinkFlags::Broadcast),
        loopback: f.contains(link::LinkFlags::Loopback),
        noarp: f.contains(link::LinkFlags::Noarp),
        enslaved,
    };
    let name = name?;
    (m.header.index != 0).then_some(Link { name, index: m.header.index, mac, flags, ipv6_link_local: false })
}

/// The IPv6 link-local address a message is about, if that is what it is.
fn link_local_of(m: &AddressMessage) -> Option<Ipv6Addr> {
    m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(IpAddr::V6(v6)) if v6.is_unicast_link_local() => Some(*v6),
        _ => None,
    })
}
