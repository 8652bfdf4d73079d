//! The responder's decisions, without I/O: which frames to answer, with
//! what, from which interface, and when to announce.
//!
//! # Methods by kind
//!
//! - **Commands**: [`Responder::set_interface`], [`Responder::remove_interface`],
//!   [`Responder::set_owned`], [`Responder::set_peer_macs`].
//! - **Inputs**: [`Responder::handle_frame`], [`Responder::handle_timeout`].
//! - **Outputs**: [`Responder::poll_transmit`], [`Responder::poll_event`],
//!   [`Responder::poll_timeout`].
//! - **Queries**: [`Responder::counters`], [`Responder::owned`],
//!   [`Responder::stood_down`].
//!
//! # Expected flow
//!
//! After every command or input, drain [`Responder::poll_transmit`] (each
//! frame goes out of the interface it names), then [`Responder::poll_event`],
//! and re-arm the one timer from [`Responder::poll_timeout`]. Time never
//! goes backwards: every `now` passed must be greater than or equal to the
//! previous one.
//!
//! # Rules
//!
//! - ARP: a request (broadcast, or unicast to the interface's MAC) whose
//!   target is an IP owned on the receiving interface is answered from
//!   that interface's MAC; replies, requests for others, announcements
//!   (sender IP = target IP: another host's gratuitous ARP asks nothing)
//!   and frames from any of our interfaces are ignored.
//! - NDP: a Neighbor Solicitation for an owned address is answered with a
//!   solicited advertisement (S=1, O=0) unicast to the asker, which must
//!   have said its link-layer address; a duplicate address detection probe
//!   (from `::`) for an owned address is answered to all-nodes, so the
//!   prober backs off (RFC 4861 §7.2.4).
//! - An IP that becomes owned is announced at once on each of its
//!   interfaces (gratuitous ARP in both forms, or an unsolicited
//!   advertisement with O=1), again on [`ResponderConfig::repeats`], then
//!   every [`ResponderConfig::refresh`] so switches and routers never age
//!   the owner out. An IP no longer owned is not answered from that moment.
//!   An owned IP that gains an interface is announced again at once, on
//!   the same schedule.
//!
//! # Conflicts
//!
//! An address of the pool that another host on the segment already uses is
//! reported, not fought over. A frame received on an interface where an IP
//! is answered shows another host using it when it comes from a MAC that is
//! neither one of our interfaces' nor a peer's ([`Responder::set_peer_macs`]:
//! the other load-balancer nodes, which answer legitimately during a
//! handover), and it is:
//!
//! - an ARP request or reply whose sender IP is the owned IP (an ARP probe,
//!   from `0.0.0.0`, is a question, not a claim: it is answered);
//! - a Neighbor Advertisement whose target is the owned IP (the other
//!   host's answer, or its defence against our announcement), the MAC
//!   being its target link-layer address option, else the frame's source;
//! - a Neighbor Solicitation from the owned IP (the other host resolving a
//!   neighbor with it as its own address).
//!
//! The responder then stands down for that IP on that interface: no
//! answers, no announcements there, until the IP leaves the owned set and
//! enters it again. Each (IP, interface, MAC) is reported once as a
//! [`ResponderEvent::Conflict`] and counted in [`Counters::conflicts`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::wire::{
    ALL_NODES, ArpRepr, Frame, FrameBody, Ipv6NdpRepr, MacAddr, NdpRepr, Operation, arp_frame, ndp_frame,
};

/// When to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponderConfig {
    /// After the announcement at the moment an IP becomes owned, again at
    /// these offsets from that moment: a lost frame does not leave the
    /// segment pointing at the old owner.
    pub repeats: Vec<Duration>,
    /// Then every this long (`None`: never), before switches' FDB and
    /// routers' ARP entries age out.
    pub refresh: Option<Duration>,
}

impl Default for ResponderConfig {
    fn default() -> Self {
        Self {
            repeats: [100, 500, 1000, 2000].map(Duration::from_millis).to_vec(),
            refresh: Some(Duration::from_secs(30)),
        }
    }
}

/// A frame to send, and the interface it leaves by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub interface: String,
    pub frame: Vec<u8>,
}

/// What happened for one IP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests (ARP) or solicitations (NDP) for it received.
    pub requests_received: u64,
    /// Answers sent.
    pub responses_sent: u64,
    /// Announcements (gratuitous ARP, unsolicited advertisements) sent.
    pub gratuitous_sent: u64,
    /// Other hosts seen using it: each (interface, MAC) once.
    pub conflicts: u64,
}

/// Something the driver should know (and log).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponderEvent {
    /// Another host (`mac`) uses `ip` on `interface`: the responder stands
    /// down for `ip` there until it is owned anew.
    Conflict { ip: IpAddr, interface: String, mac: MacAddr },
}

/// One owned IP.
#[derive(Debug, Clone)]
struct Owned {
    /// Empty: every interface.
    interfaces: BTreeSet<String>,
    since: Instant,
    /// How many of the repeats have been sent.
    repeats_sent: usize,
    next_announcement: Option<Instant>,
    counters: Counters,
    /// Interfaces where another host uses the IP: not answered nor announced.
    stood_down: BTreeSet<String>,
    /// Conflicts reported, so each is reported once.
    conflicts: BTreeSet<(String, MacAddr)>,
}

/// Answers ARP and NDP for the IPs this node owns.
#[derive(Debug, Default)]
pub struct Responder {
    config: ResponderConfig,
    interfaces: BTreeMap<String, MacAddr>,
    owned: BTreeMap<IpAddr, Owned>,
    /// The other load-balancer nodes' MACs: never a conflict.
    peer_macs: BTreeSet<MacAddr>,
    out: VecDeque<Transmit>,
    events: VecDeque<ResponderEvent>,
}

impl Responder {
    pub fn new(config: ResponderConfig) -> Self {
        Self { config, ..Self::default() }
    }

    /// An interface to answer on, with its MAC (a new MAC replaces the old).
    pub fn set_interface(&mut self, name: &str, mac: MacAddr) {
        self.interfaces.insert(name.to_string(), mac);
    }

    /// An interface gone: nothing more is answered or announced on it.
    pub fn remove_interface(&mut self, name: &str) {
        self.interfaces.remove(name);
    }

    /// The IPs this node owns now, each with the interfaces it is answered
    /// on (empty: all). IPs new to the set are announced at once, and so are
    /// IPs that gain an interface; IPs gone from it are not answered from
    /// now on, and forget their conflicts.
    pub fn set_owned(&mut self, now: Instant, owned: BTreeMap<IpAddr, BTreeSet<String>>) {
        self.owned.retain(|ip, _| owned.contains_key(ip));
        for (ip, interfaces) in owned {
            match self.owned.get_mut(&ip) {
                Some(o) => {
                    let gained =
                        !o.interfaces.is_empty() && (interfaces.is_empty() || !interfaces.is_subset(&o.interfaces));
                    o.interfaces = interfaces;
                    if gained {
                        o.since = now;
                        o.repeats_sent = 0;
                        self.announce(now, ip);
                    }
                }
                None => {
                    let o = Owned {
                        interfaces,
                        since: now,
                        repeats_sent: 0,
                        next_announcement: None,
                        counters: Counters::default(),
                        stood_down: BTreeSet::new(),
                        conflicts: BTreeSet::new(),
                    };
                    self.owned.insert(ip, o);
                    self.announce(now, ip);
                }
            }
        }
    }

    /// The MACs of the other load-balancer nodes: frames from them never
    /// count as conflicts (they answer for an IP during a handover).
    pub fn set_peer_macs(&mut self, macs: BTreeSet<MacAddr>) {
        self.peer_macs = macs;
    }

    /// A frame received on `interface`.
    pub fn handle_frame(&mut self, _now: Instant, interface: &str, bytes: &[u8]) {
        let Some(&ours) = self.interfaces.get(interface) else { return };
        let Ok(frame) = Frame::parse(bytes) else { return };
        if frame.ethernet.src == ours {
            return;
        }
        // Evidence of another owner counts whoever the frame was sent to.
        if let Some((ip, mac)) = claim(&frame) {
            self.conflict(interface, ip, mac);
        }
        // Broadcast and multicast are for everyone; unicast only to us.
        if !frame.ethernet.dst.is_multicast() && frame.ethernet.dst != ours {
            return;
        }
        match frame.body {
            FrameBody::Arp(arp) => self.arp(interface, ours, frame.ethernet.src, &arp),
            FrameBody::Ndp(ndp) => self.ndp(interface, ours, &ndp),
            _ => {}
        }
    }

    /// Call when `now` has reached [`Self::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<IpAddr> = self
            .owned
            .iter()
            .filter(|(_, o)| o.next_announcement.is_some_and(|t| t <= now))
            .map(|(ip, _)| *ip)
            .collect();
        for ip in due {
            self.announce(now, ip);
        }
    }

    /// The next frame to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ResponderEvent> {
        self.events.pop_front()
    }

    /// The next instant [`Self::handle_timeout`] must be called at.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.owned.values().filter_map(|o| o.next_announcement).min()
    }

    /// What happened for `ip`, while it is owned.
    #[must_use]
    pub fn counters(&self, ip: IpAddr) -> Option<Counters> {
        self.owned.get(&ip).map(|o| o.counters)
    }

    /// The owned IPs.
    pub fn owned(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.owned.keys().copied()
    }

    /// The interfaces where `ip` is not answered because another host uses
    /// it there (empty when it is not owned).
    pub fn stood_down(&self, ip: IpAddr) -> impl Iterator<Item = &str> + '_ {
        self.owned.get(&ip).into_iter().flat_map(|o| o.stood_down.iter().map(String::as_str))
    }

    /// Whether `ip` is owned on `interface` (answered there unless stood down).
    fn assigned(&self, ip: IpAddr, interface: &str) -> bool {
        self.owned.get(&ip).is_some_and(|o| o.interfaces.is_empty() || o.interfaces.contains(interface))
    }

    /// Whether `ip` is answered on `interface`.
    fn answers(&self, ip: IpAddr, interface: &str) -> bool {
        self.assigned(ip, interface) && self.owned.get(&ip).is_some_and(|o| !o.stood_down.contains(interface))
    }

    /// Whether `mac` is one of our interfaces'.
    fn is_ours(&self, mac: MacAddr) -> bool {
        self.interfaces.values().any(|m| *m == mac)
    }

    /// `mac` claims `ip` on `interface`: a conflict, unless the MAC is ours
    /// or a peer's or the IP is not owned there.
    fn conflict(&mut self, interface: &str, ip: IpAddr, mac: MacAddr) {
        if self.is_ours(mac) || self.peer_macs.contains(&mac) || !self.assigned(ip, interface) {
            return;
        }
        let Some(o) = self.owned.get_mut(&ip) else { return };
        o.stood_down.insert(interface.to_string());
        if o.conflicts.insert((interface.to_string(), mac)) {
            o.counters.conflicts += 1;
            self.events.push_back(ResponderEvent::Conflict { ip, interface: interface.to_string(), mac });
        }
    }

    fn arp(&mut self, interface: &str, ours: MacAddr, from: MacAddr, arp: &ArpRepr) {
        let target = IpAddr::V4(arp.target_ip);
        // An announcement (sender IP = target IP) asks nothing; our own
        // frames heard on another of our interfaces neither.
        let announcement = arp.sender_ip == arp.target_ip;
        if arp.operation != Operation::Request
            || announcement
            || self.is_ours(arp.sender_mac)
            || !self.answers(target, interface)
        {
            return;
        }
        let reply = ArpRepr {
            operation: Operation::Reply,
            sender_mac: ours,
            sender_ip: arp.target_ip,
            target_mac: arp.sender_mac,
            target_ip: arp.sender_ip,
        };
        self.out.push_back(Transmit { interface: interface.to_string(), frame: arp_frame(from, ours, &reply) });
        if let Some(o) = self.owned.get_mut(&target) {
            o.counters.requests_received += 1;
            o.counters.responses_sent += 1;
        }
    }

    fn ndp(&mut self, interface: &str, ours: MacAddr, ndp: &Ipv6NdpRepr) {
        let NdpRepr::NeighborSolicit { target, source_ll } = ndp.message else { return };
        if !self.answers(IpAddr::V6(target), interface) {
            return;
        }
        let probe = ndp.src.is_unspecified();
        let (dst_ip, dst_mac, solicited) = match (probe, source_ll) {
            // Duplicate address detection: tell everyone the address is taken.
            (true, _) => (ALL_NODES, MacAddr::from_ipv6_multicast(ALL_NODES), false),
            (false, Some(asker)) => (ndp.src, asker, true),
            // A unicast-able answer needs the asker's link-layer address.
            (false, None) => return,
        };
        let advert = Ipv6NdpRepr {
            src: target,
            dst: dst_ip,
            hop_limit: crate::wire::ndp::HOP_LIMIT,
            message: NdpRepr::NeighborAdvert {
                router: false,
                solicited,
                override_flag: probe,
                target,
                target_ll: Some(ours),
            },
        };
        self.out.push_back(Transmit { interface: interface.to_string(), frame: ndp_frame(dst_mac, ours, &advert) });
        if let Some(o) = self.owned.get_mut(&IpAddr::V6(target)) {
            o.counters.requests_received += 1;
            o.counters.responses_sent += 1;
        }
    }

    /// Announces `ip` on each of its interfaces and schedules the next time.
    fn announce(&mut self, now: Instant, ip: IpAddr) {
        let Some(o) = self.owned.get(&ip) else { return };
        let interfaces: Vec<(String, MacAddr)> = self
            .interfaces
            .iter()
            .filter(|(name, _)| o.interfaces.is_empty() || o.interfaces.contains(*name))
            .filter(|(name, _)| !o.stood_down.contains(*name))
            .map(|(name, mac)| (name.clone(), *mac))
            .collect();
        let mut sent = 0;
        for (interface, mac) in interfaces {
            match ip {
                IpAddr::V4(v4) => {
                    // Both forms: some devices heed only requests, others only replies.
                    let request = ArpRepr::announcement(mac, v4);
                    let reply = ArpRepr { operation: Operation::Reply, target_mac: mac, ..request };
                    for arp in [request, reply] {
                        self.out.push_back(Transmit {
                            interface: interface.clone(),
                            frame: arp_frame(MacAddr::BROADCAST, mac, &arp),
                        });
                        sent += 1;
                    }
                }
                IpAddr::V6(v6) => {
                    let advert = Ipv6NdpRepr::unsolicited_advert(mac, v6);
                    let frame = ndp_frame(MacAddr::from_ipv6_multicast(ALL_NODES), mac, &advert);
                    self.out.push_back(Transmit { interface: interface.clone(), frame });
                    sent += 1;
                }
            }
        }
        let (repeats, refresh) = (&self.config.repeats, self.config.refresh);
        let Some(o) = self.owned.get_mut(&ip) else { return };
        o.counters.gratuitous_sent += sent;
        o.next_announcement = match repeats.get(o.repeats_sent) {
            Some(offset) => {
                o.repeats_sent += 1;
                Some((o.since + *offset).max(now))
            }
            None => refresh.filter(|r| !r.is_zero()).map(|r| now + r),
        };
    }
}

/// The IP a frame shows its sender using, with the sender's MAC.
fn claim(frame: &Frame) -> Option<(IpAddr, MacAddr)> {
    match frame.body {
        // Requests and replies alike; a probe (from 0.0.0.0) claims nothing.
        FrameBody::Arp(arp) if !arp.sender_ip.is_unspecified() => Some((arp.sender_ip.into(), arp.sender_mac)),
        FrameBody::Ndp(ndp) => match ndp.message {
            NdpRepr::NeighborAdvert { target, target_ll, .. } => {
                Some((target.into(), target_ll.unwrap_or(frame.ethernet.src)))
            }
            NdpRepr::NeighborSolicit { source_ll, .. } if !ndp.src.is_unspecified() => {
                Some((ndp.src.into(), source_ll.unwrap_or(frame.ethernet.src)))
            }
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::wire::{EtherType, solicited_node, solicited_node_mac};

    const OURS: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
    const OTHER_NIC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x20]);
    const ASKER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

    fn vip6() -> Ipv6Addr {
        "2001:db8::10".parse().expect("IPv6")
    }

    fn owned(ips: &[(IpAddr, &[&str])]) -> BTreeMap<IpAddr, BTreeSet<String>> {
        ips.iter().map(|(ip, ifs)| (*ip, ifs.iter().map(ToString::to_string).collect())).collect()
    }

    fn drain(r: &mut Responder) -> Vec<Transmit> {
        std::iter::from_fn(|| r.poll_transmit()).collect()
    }

    fn responder(now: Instant, ips: &[(IpAddr, &[&str])]) -> Responder {
        let mut r = Responder::new(ResponderConfig::default());
        r.set_interface("eth0", OURS);
        r.set_interface("eth1", OTHER_NIC);
        r.set_owned(now, owned(ips));
        let _ = drain(&mut r);
        r
    }

    fn who_has(target: Ipv4Addr, dst: MacAddr) -> Vec<u8> {
        let request = ArpRepr {
            operation: Operation::Request,
            sender_mac: ASKER,
            sender_ip: Ipv4Addr::new(192, 0, 2, 1),
            target_mac: MacAddr::ZERO,
            target_ip: target,
        };
        arp_frame(dst, ASKER, &request)
    }

    fn solicit(src: Ipv6Addr, target: Ipv6Addr, source_ll: Option<MacAddr>) -> Vec<u8> {
        let ns = Ipv6NdpRepr {
            src,
            dst: solicited_node(target),
            hop_limit: 255,
            message: NdpRepr::NeighborSolicit { target, source_ll },
        };
        ndp_frame(solicited_node_mac(target), ASKER, &ns)
    }

    #[test]
    fn an_arp_request_for_an_owned_ip_is_answered_from_the_receiving_interface() {
        let now = Instant::now();
        let mut r = responder(now, &[(VIP.into(), &[])]);
        r.handle_frame(now, "eth1", &who_has(VIP, MacAddr::BROADCAST));
        let sent = drain(&mut r);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].interface, "eth1");
        let frame = Frame::parse(&sent[0].frame).expect("a frame");
        assert_eq!(
            (frame.ethernet.dst, frame.ethernet.src, frame.ethernet.ethertype),
            (ASKER, OTHER_NIC, EtherType::Arp)
        );
        let FrameBody::Arp(reply) = frame.body else { panic!("ARP") };
        assert_eq!(reply.operation, Operation::Reply);
        assert_eq!((reply.sender_mac, reply.sender_ip), (OTHER_NIC, VIP));
        assert_eq!((reply.target_mac, reply.target_ip), (ASKER, Ipv4Addr::new(192, 0, 2, 1)));
        let c = r.counters(VIP.into()).expect("owned");
        assert_eq!((c.requests_received, c.responses_sent), (1, 1));
    }

    #[test]
    fn what_is_not_ours_to_answer_is_ignored() {
        let now = Instant::now();
        let mut r = responder(now, &[(VIP.into(), &["eth0"])]);
        // Another IP; a unicast to another MAC; the wrong interface; an
        // unknown interface; a reply; our own frame; garbage.
        r.handle_frame(now, "eth0", &who_has(Ipv4Addr::new(192, 0, 2, 11), MacAddr::BROADCAST));
        r.handle_frame(now, "eth0", &who_has(VIP, MacAddr([0x02, 0, 0, 0, 0, 0x99])));
        r.handle_frame(now, "eth1", &who_has(VIP, MacAddr::BROADCAST));
        r.handle_frame(now, "wlan9", &who_has(VIP, MacAddr::BROADCAST));
        let reply = ArpRepr {
            operation: Operation::Reply,
            sender_mac: ASKER,
            sender_ip: Ipv4Addr::new(192, 0, 2, 1),
            target_mac: OURS,
            target_ip: VIP,
        };
        r.handle_frame(now, "eth0", &arp_frame(OURS, ASKER, &reply));
        let own = ArpRepr { sender_mac: OURS, ..ArpRepr::announcement(OURS, VIP) };
        r.handle_frame(now, "eth0", &arp_frame(MacAddr::BROADCAST, OURS, &own));
        r.handle_frame(now, "eth0", &[0xff; 7]);
        assert!(drain(&mut r).is_empty());
        // Unicast to our MAC is answered.
        r.handle_frame(now, "eth0", &who_has(VIP, OURS));
        assert_eq!(drain(&mut r).len(), 1);
    }

    #[test]
    fn a_solicitation_gets_a_solicited_advertisement_and_a_dad_probe_one_to_all_nodes() {
        let now = Instant::now();
        let mut r = responder(now, &[(vip6().into(), &[])]);
        let asker_ip: Ipv6Addr = "2001:db8::1".parse().expect("IPv6");
        r.handle_frame(now, "eth0", &solicit(asker_ip, vip6(), Some(ASKER)));
        let sent = drain(&mut r);
        assert_eq!(sent.len(), 1);
        let frame = Frame::parse(&sent[0].frame).expect("a frame");
        assert_eq!((frame.ethernet.dst, frame.ethernet.src), (ASKER, OURS));
        let FrameBody::Ndp(na) = frame.body else { panic!("NDP") };
        assert_eq!((na.src, na.dst), (vip6(), asker_ip));
        assert_eq!(
            na.message,
            NdpRepr::NeighborAdvert {
                router: false,
                solicited: true,
                override_flag: false,
                target: vip6(),
                target_ll: Some(OURS)
            }
        );

        // Without the asker's link-layer address there is no one to answer.
        r.handle_frame(now, "eth0", &solicit(asker_ip, vip6(), None));
        assert!(drain(&mut r).is_empty());

        // A duplicate address detection probe: to all-nodes, not solicited.
        r.handle_frame(now, "eth0", &solicit(Ipv6Addr::UNSPECIFIED, vip6(), None));
        let sent = drain(&mut r);
        let frame = Frame::parse(&sent[0].frame).expect("a frame");
        assert_eq!(frame.ethernet.dst, MacAddr::from_ipv6_multicast(ALL_NODES));
        let FrameBody::Ndp(na) = frame.body else { panic!("NDP") };
        assert_eq!(na.dst, ALL_NODES);
        assert!(matches!(na.message, NdpRepr::NeighborAdvert { solicited: false, override_flag: true, .. }));
    }

    #[test]
    fn a_new_ip_is_announced_at_once_then_on_the_schedule_then_refreshed() {
        let start = Instant::now();
        let mut r = Responder::new(ResponderConfig::default());
        r.set_interface("eth0", OURS);
        r.set_owned(start, owned(&[(VIP.into(), &[]), (vip6().into(), &[])]));
        let first = drain(&mut r);
        // Both gratuitous forms for IPv4, an unsolicited NA for IPv6.
        assert_eq!(first.len(), 3);
        let kinds: Vec<FrameBody> = first.iter().map(|t| Frame::parse(&t.frame).expect("frame").body).collect();
        assert!(kinds.iter().any(|b| matches!(b, FrameBody::Arp(a) if a.operation == Operation::Request && a.sender_ip == VIP && a.target_ip == VIP)));
        assert!(kinds.iter().any(|b| matches!(b, FrameBody::Arp(a) if a.operation == Operation::Reply && a.sender_ip == VIP && a.target_ip == VIP)));
        assert!(kinds.iter().any(|b| matches!(b, FrameBody::Ndp(n) if n.dst == ALL_NODES && matches!(n.message, NdpRepr::NeighborAdvert { override_flag: true, .. }))));

        // The repeats, then the refresh.
        let mut times = Vec::new();
        while let Some(at) = r.poll_timeout() {
            if at > start + Duration::from_secs(70) {
                break;
            }
            r.handle_timeout(at);
            assert_eq!(drain(&mut r).len(), 3);
            times.push(at.duration_since(start).as_millis());
        }
        assert_eq!(times, [100, 500, 1000, 2000, 32_000, 62_000]);
        assert_eq!(r.counters(VIP.into()).expect("owned").gratuitous_sent, 2 * 7);

        // No longer owned: not answered, not announced.
        r.set_owned(start + Duration::from_secs(70), BTreeMap::new());
        r.handle_frame(start + Duration::from_secs(70), "eth0", &who_has(VIP, MacAddr::BROADCAST));
        assert!(drain(&mut r).is_empty());
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn a_refresh_of_zero_or_none_stops_after_the_repeats() {
        let start = Instant::now();
        for refresh in [None, Some(Duration::ZERO)] {
            let mut r = Responder::new(ResponderConfig { repeats: vec![Duration::from_millis(100)], refresh });
            r.set_interface("eth0", OURS);
            r.set_owned(start, owned(&[(VIP.into(), &[])]));
            let at = r.poll_timeout().expect("a repeat");
            r.handle_timeout(at);
            assert_eq!(r.poll_timeout(), None);
        }
    }

    const STRANGER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x66]);
    const PEER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x77]);

    fn events(r: &mut Responder) -> Vec<ResponderEvent> {
        std::iter::from_fn(|| r.poll_event()).collect()
    }

    fn gratuitous_from(mac: MacAddr, ip: Ipv4Addr) -> Vec<u8> {
        arp_frame(MacAddr::BROADCAST, mac, &ArpRepr::announcement(mac, ip))
    }

    fn advert_from(mac: MacAddr, target: Ipv6Addr, target_ll: Option<MacAddr>) -> Vec<u8> {
        let na = Ipv6NdpRepr {
            src: "fe80::66".parse().expect("IPv6"),
            dst: ALL_NODES,
            hop_limit: 255,
            message: NdpRepr::NeighborAdvert {
                router: false,
                solicited: false,
                override_flag: true,
                target,
                target_ll,
            },
        };
        ndp_frame(MacAddr::from_ipv6_multicast(ALL_NODES), mac, &na)
    }

    fn conflict(ip: impl Into<IpAddr>, interface: &str, mac: MacAddr) -> ResponderEvent {
        ResponderEvent::Conflict { ip: ip.into(), interface: interface.to_string(), mac }
    }

    #[test]
    fn another_host_announcing_an_owned_ip_is_a_conflict_and_we_stand_down_there() {
        let now = Instant::now();
        let mut r = responder(now, &[(VIP.into(), &["eth0", "eth1"])]);
        r.handle_frame(now, "eth0", &gratuitous_from(STRANGER, VIP));
        assert_eq!(events(&mut r), [conflict(VIP, "eth0", STRANGER)]);
        assert_eq!(r.counters(VIP.into()).expect("owned").conflicts, 1);
        assert_eq!(r.stood_down(VIP.into()).collect::<Vec<_>>(), ["eth0"]);

        // No answer on eth0 any more; eth1 still answers.
        r.handle_frame(now, "eth0", &who_has(VIP, MacAddr::BROADCAST));
        assert!(drain(&mut r).is_empty());
        r.handle_frame(now, "eth1", &who_has(VIP, MacAddr::BROADCAST));
        assert_eq!(drain(&mut r).len(), 1);

        // Announcements go out of eth1 only.
        let at = r.poll_timeout().expect("a repeat");
        r.handle_timeout(at);
        let sent = drain(&mut r);
        assert_eq!(sent.len(), 2);
        assert!(sent.iter().all(|t| t.interface == "eth1"), "{sent:?}");
    }

    #[test]
    fn arp_requests_and_replies_from_an_owned_ip_are_conflicts_a_probe_is_not() {
        let now = Instant::now();
        // A probe (RFC 5227: sender 0.0.0.0) for our IP is answered, not a conflict.
        let mut r = responder(now, &[(VIP.into(), &[])]);
        let probe = ArpRepr {
            operation: Operation::Request,
            sender_mac: STRANGER,
            sender_ip: Ipv4Addr::UNSPECIFIED,
            target_mac: MacAddr::ZERO,
            target_ip: VIP,
        };
        r.handle_frame(now, "eth0", &arp_frame(MacAddr::BROADCAST, STRANGER, &probe));
        assert_eq!(drain(&mut r).len(), 1);
        assert!(events(&mut r).is_empty());

        // The other host asking for its gateway, from our IP.
        let request = ArpRepr {
            operation: Operation::Request,
            sender_mac: STRANGER,
            sender_ip: VIP,
            target_mac: MacAddr::ZERO,
            target_ip: Ipv4Addr::new(192, 0, 2, 1),
        };
        r.handle_frame(now, "eth0", &arp_frame(MacAddr::BROADCAST, STRANGER, &request));
        assert_eq!(events(&mut r), [conflict(VIP, "eth0", STRANGER)]);

        // A reply from our IP, unicast to someone else: still evidence.
        let mut r = responder(now, &[(VIP.into(), &[])]);
        let reply = ArpRepr {
            operation: Operation::Reply,
            sender_mac: STRANGER,
            sender_ip: VIP,
            target_mac: ASKER,
            target_ip: Ipv4Addr::new(192, 0, 2, 1),
        };
        r.handle_frame(now, "eth1", &arp_frame(ASKER, STRANGER, &reply));
        assert_eq!(events(&mut r), [conflict(VIP, "eth1", STRANGER)]);
    }

    #[test]
    fn peers_and_our_own_interfaces_are_not_conflicts() {
        let now = Instant::now();
        let mut r = responder(now, &[(VIP.into(), &[]), (vip6().into(), &[])]);
        r.set_peer_macs(BTreeSet::from([PEER]));
        r.handle_frame(now, "eth0", &gratuitous_from(PEER, VIP));
        r.handle_frame(now, "eth0", &advert_from(PEER, vip6(), Some(PEER)));
        // eth1's announcement heard on eth0 (both on one segment).
        r.handle_frame(now, "eth0", &gratuitous_from(OTHER_NIC, VIP));
        r.handle_frame(now, "eth0", &advert_from(OTHER_NIC, vip6(), Some(OTHER_NIC)));
        assert!(events(&mut r).is_empty());
        assert_eq!(r.counters(VIP.into()).expect("owned").conflicts, 0);
        r.handle_frame(now, "eth0", &who_has(VIP, MacAddr::BROADCAST));
        assert_eq!(drain(&mut r).len(), 1);

        // A peer no longer is one: its frames are conflicts again.
        r.set_peer_macs(BTreeSet::new());
        r.handle_frame(now, "eth0", &gratuitous_from(PEER, VIP));
        assert_eq!(events(&mut r), [conflict(VIP, "eth0", PEER)]);
    }

    #[test]
    fn a_neighbor_advertisement_for_an_owned_ipv6_address_is_a_conflict() {
        let now = Instant::now();
        let mut r = responder(now, &[(vip6().into(), &[])]);
        // With a target link-layer address option: that MAC.
        r.handle_frame(now, "eth0", &advert_from(ASKER, vip6(), Some(STRANGER)));
        // Without: the frame's source.
        r.handle_frame(now, "eth1", &advert_from(STRANGER, vip6(), None));
        assert_eq!(events(&mut r), [conflict(vip6(), "eth0", STRANGER), conflict(vip6(), "eth1", STRANGER)]);
        r.handle_frame(now, "eth0", &solicit("2001:db8::1".parse().expect("IPv6"), vip6(), Some(ASKER)));
        assert!(drain(&mut r).is_empty(), "stood down on both");

        // A solicitation from the owned address is a claim too; a DAD probe is not.
        let mut r = responder(now, &[(vip6().into(), &[])]);
        r.handle_frame(now, "eth0", &solicit(Ipv6Addr::UNSPECIFIED, vip6(), None));
        assert!(events(&mut r).is_empty());
        r.handle_frame(now, "eth0", &solicit(vip6(), "2001:db8::1".parse().expect("IPv6"), Some(STRANGER)));
        assert_eq!(events(&mut r), [conflict(vip6(), "eth0", STRANGER)]);
    }

    #[test]
    fn each_conflict_is_reported_once_until_the_ip_is_owned_anew() {
        let now = Instant::now();
        let mut r = responder(now, &[(VIP.into(), &[])]);
        r.handle_frame(now, "eth0", &gratuitous_from(STRANGER, VIP));
        r.handle_frame(now, "eth0", &gratuitous_from(STRANGER, VIP));
        r.handle_frame(now, "eth0", &gratuitous_from(ASKER, VIP));
        assert_eq!(events(&mut r), [conflict(VIP, "eth0", STRANGER), conflict(VIP, "eth0", ASKER)]);
        assert_eq!(r.counters(VIP.into()).expect("owned").conflicts, 2);
        // A changed interface set keeps the stand-down.
        r.set_owned(now, owned(&[(VIP.into(), &["eth0"])]));
        r.handle_frame(now, "eth0", &who_has(VIP, MacAddr::BROADCAST));
        assert!(drain(&mut r).is_empty());

        // Gone, then owned again: announced and answered, and a conflict is news again.
        r.set_owned(now, BTreeMap::new());
        r.set_owned(now, owned(&[(VIP.into(), &["eth0"])]));
        assert_eq!(drain(&mut r).len(), 2, "announced at once");
        assert_eq!(r.stood_down(VIP.into()).count(), 0);
        r.handle_frame(now, "eth0", &who_has(VIP, MacAddr::BROADCAST));
        assert_eq!(drain(&mut r).len(), 1);
        r.handle_frame(now, "eth0", &gratuitous_from(STRANGER, VIP));
        assert_eq!(events(&mut r), [conflict(VIP, "eth0", STRANGER)]);
    }

    #[test]
    fn a_claim_where_the_ip_is_not_answered_is_not_a_conflict() {
        let now = Instant::now();
        let mut r = responder(now, &[(VIP.into(), &["eth0"])]);
        r.handle_frame(now, "eth1", &gratuitous_from(STRANGER, VIP));
        r.handle_frame(now, "eth0", &gratuitous_from(STRANGER, Ipv4Addr::new(192, 0, 2, 11)));
        assert!(events(&mut r).is_empty());
        r.handle_frame(now, "eth0", &who_has(VIP, MacAddr::BROADCAST));
        assert_eq!(drain(&mut r).len(), 1);
    }

    #[test]
    fn an_ip_that_gains_an_interface_is_announced_again() {
        let now = Instant::now();
        let mut r = responder(now, &[(VIP.into(), &["eth0"])]);
        let later = now + Duration::from_secs(10);
        r.set_owned(later, owned(&[(VIP.into(), &["eth0", "eth1"])]));
        let sent = drain(&mut r);
        assert_eq!(sent.len(), 4, "both forms on both interfaces: {sent:?}");
        assert_eq!(r.poll_timeout(), Some(later + Duration::from_millis(100)), "the schedule again");
        // Losing one is no news.
        r.set_owned(later, owned(&[(VIP.into(), &["eth1"])]));
        assert!(drain(&mut r).is_empty());
    }
}
