//! Adj-RIB-Out: from what the peer has to what it should have.
//!
//! The caller says which routes the peer should have (all at once with
//! [`AdjRibOut::set_routes`], or change by change with
//! [`AdjRibOut::set_route`]); [`AdjRibOut::poll_update`] then yields the
//! fewest UPDATEs that take the peer there: withdrawals for what went away,
//! announcements for what is new or changed, prefixes that share their
//! attributes packed together up to the message size. Only the set of
//! pending prefixes is kept, not a queue of changes, so a prefix that
//! flaps a thousand times while the socket is blocked costs one UPDATE,
//! and memory stays bounded by the table.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Maps keyed by prefix: foldhash is several times faster than SipHash on
/// such short keys, with a per-process seed against crafted collisions.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Set<K> = HashSet<K, foldhash::fast::RandomState>;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::wire::header::HEADER_LEN;
use crate::wire::update::{AsSegment, Attributes, MpReach, MpUnreach, Origin};
use crate::wire::{Afi, Context, MessageType, Prefix, Safi, Update};

/// What the load balancer attaches to a route.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RouteAttributes {
    pub communities: Vec<u32>,
    pub large_communities: Vec<[u32; 3]>,
    /// Sent to iBGP peers only.
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
}

/// How this speaker talks to this peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerContext {
    pub local_asn: u32,
    pub ibgp: bool,
    /// Next hop for IPv4 routes: the local address of the connection.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// Next hop for IPv6 routes, global and (for on-link peers) link-local.
    pub next_hop_v6: Option<(Ipv6Addr, Option<Ipv6Addr>)>,
    pub ipv4: bool,
    pub ipv6: bool,
    /// What the session negotiated: UPDATEs are sized in this context,
    /// since a 2-octet peer gets AS4_PATH beside AS_PATH and only extended
    /// messages may pass 4096 octets.
    pub context: Context,
}

impl PeerContext {
    /// The largest UPDATE this peer accepts: 4096, or 65535 with extended messages.
    pub fn max_message_len(&self) -> usize {
        self.context.max_message_len(MessageType::Update)
    }
}

/// The routes one peer should have and has.
#[derive(Debug, Default)]
pub struct AdjRibOut {
    desired: Map<Prefix, Arc<RouteAttributes>>,
    sent: Map<Prefix, Arc<RouteAttributes>>,
    /// Prefixes whose desired state may differ from what was sent.
    pending: BTreeSet<Prefix>,
    /// Prefixes to announce again even though the peer has them (ROUTE-REFRESH).
    resend: Set<Prefix>,
    /// One shared copy of each distinct attribute set: a million routes with
    /// the same communities hold one allocation, and compare by pointer.
    interned: Set<Arc<RouteAttributes>>,
    /// End-of-RIB markers still to send after the initial table (IPv4, IPv6).
    end_of_rib: [bool; 2],
}

impl AdjRibOut {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the whole desired table. Cost: a comparison per route.
    pub fn set_routes(&mut self, routes: &BTreeMap<Prefix, RouteAttributes>) {
        let gone: Vec<Prefix> = self.desired.keys().filter(|p| !routes.contains_key(p)).copied().collect();
        for p in gone {
            self.set_route(p, None);
        }
        for (p, attrs) in routes {
            if self.desired.get(p).is_none_or(|a| **a != *attrs) {
                let shared = match self.interned.get(attrs) {
                    Some(shared) => shared.clone(),
                    None => self.intern(attrs.clone()),
                };
                self.desired.insert(*p, shared);
                self.pending.insert(*p);
            }
        }
        // Attribute sets no route uses any more.
        self.interned.retain(|a| Arc::strong_count(a) > 1);
    }

    fn intern(&mut self, attrs: RouteAttributes) -> Arc<RouteAttributes> {
        if let Some(shared) = self.interned.get(&attrs) {
            return shared.clone();
        }
        let shared = Arc::new(attrs);
        self.interned.insert(shared.clone());
        shared
    }

    /// Changes one route (`None` withdraws it). Cost: independent of the table.
    pub fn set_route(&mut self, prefix: Prefix, attrs: Option<RouteAttributes>) {
        match attrs {
            Some(a) => {
                let shared = self.intern(a);
                self.desired.insert(prefix, shared);
            }
            None => {
                self.desired.remove(&prefix);
            }
        }
        self.pending.insert(prefix);
    }

    /// The session (re)started: the peer has nothing; send the whole table,
    /// then End-of-RIB for each family.
    pub fn reset(&mut self, peer: &PeerContext) {
        self.sent.clear();
        self.resend.clear();
        self.pending = self.desired.keys().copied().collect();
        self.end_of_rib = [peer.ipv4, peer.ipv6];
    }

    /// ROUTE-REFRESH: send the whole table again. What the peer has but
    /// should not stays known, so its pending withdrawal is not lost.
    pub fn refresh(&mut self) {
        self.resend.extend(self.desired.keys().copied());
        self.pending.extend(self.desired.keys().copied());
    }

    /// Whether UPDATEs are waiting.
    #[must_use]
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || self.end_of_rib.iter().any(|x| *x)
    }

    /// Routes the peer has been sent.
    pub fn sent_len(&self) -> usize {
        self.sent.len()
    }

    /// The next UPDATE to send, or `None` when the peer is up to date.
    #[must_use]
    pub fn poll_update(&mut self, peer: &PeerContext) -> Option<Update> {
        while let Some(&first) = self.pending.first() {
            // Settle prefixes whose desired state is what was sent.
            let desired = self.desired.get(&first);
            let sent = self.sent.get(&first);
            let settled = match (desired, sent) {
                (None, None) => true,
                (d, s) => d.map(Arc::as_ref) == s.map(Arc::as_ref) && !self.resend.contains(&first),
            };
            if settled {
                self.pending.pop_first();
                self.resend.remove(&first);
                continue;
            }
            let family_ok = if first.is_ipv4() { peer.ipv4 } else { peer.ipv6 };
            if !family_ok {
                self.pending.pop_first();
                self.resend.remove(&first);
                continue;
            }
            let update = match desired.cloned() {
                None => self.withdrawals(peer, first.is_ipv4()),
                Some(attrs) => self.announcements(peer, first.is_ipv4(), &attrs),
            };
            if self.pending.first() == Some(&first) {
                // Nothing fitted (attributes larger than a message): this
                // prefix cannot be announced. Drop it rather than loop, and
                // withdraw what the peer has of it, which is no longer right.
                self.pending.pop_first();
                self.resend.remove(&first);
                if self.sent.remove(&first).is_some() {
                    return Some(if first.is_ipv4() {
                        Update { withdrawn: vec![first], ..Default::default() }
                    } else {
                        let mp = MpUnreach { afi: Afi::Ipv6, safi: Safi::Unicast, withdrawn: vec![first] };
                        Update {
                            attributes: Attributes { mp_unreach: Some(mp), ..Default::default() },
                            ..Default::default()
                        }
                    });
                }
                continue;
            }
            return Some(update);
        }
        for (i, pending) in self.end_of_rib.iter_mut().enumerate() {
            if std::mem::take(pending) {
                return Some(if i == 0 {
                    Update::end_of_rib_ipv4()
                } else {
                    Update::end_of_rib(Afi::Ipv6, Safi::Unicast)
                });
            }
        }
        None
    }

    /// An UPDATE with as many pending withdrawals of the family as fit.
    fn withdrawals(&mut self, peer: &PeerContext, ipv4: bool) -> Update {
        let empty = if ipv4 { Update::default() } else { Update::end_of_rib(Afi::Ipv6, Safi::Unicast) };
        // MP_UNREACH_NLRI's length takes 2 octets once past 255.
        let overhead = HEADER_LEN + empty.encoded_len(&peer.context) + if ipv4 { 0 } else { 1 };
        let budget = peer.max_message_len().saturating_sub(overhead);
        let desired = &self.desired;
        let sent = &self.sent;
        let withdrawn = take_fitting(&mut self.pending, budget, |p| {
            p.is_ipv4() == ipv4 && !desired.contains_key(p) && sent.contains_key(p)
        });
        for p in &withdrawn {
            self.sent.remove(p);
            self.resend.remove(p);
        }
        if ipv4 {
            Update { withdrawn, ..Default::default() }
        } else {
            let attributes = Attributes {
                mp_unreach: Some(MpUnreach { afi: Afi::Ipv6, safi: Safi::Unicast, withdrawn }),
                ..Default::default()
            };
            Update { attributes, ..Default::default() }
        }
    }

    /// An UPDATE announcing as many pending prefixes with `attrs` as fit.
    fn announcements(&mut self, peer: &PeerContext, ipv4: bool, attrs: &Arc<RouteAttributes>) -> Update {
        let mut attributes = path_attributes(peer, attrs);
        if !ipv4 {
            // IPv6 next hops travel in MP_REACH_NLRI.
            attributes.next_hop = None;
            attributes.mp_reach = Some(MpReach {
                afi: Afi::Ipv6,
                safi: Safi::Unicast,
                next_hops: peer
                    .next_hop_v6
                    .map(|(g, ll)| std::iter::once(IpAddr::V6(g)).chain(ll.map(IpAddr::V6)).collect())
                    .unwrap_or_default(),
                nlri: vec![],
            });
        }
        // Sized in the peer's own context: toward a 2-octet peer the
        // attributes grow by AS4_PATH. For IPv6, MP_REACH_NLRI is measured
        // without its NLRI, when its length may still fit in 1 octet; with
        // them it may need 2.
        let empty = Update { attributes, ..Default::default() };
        let overhead = HEADER_LEN + empty.encoded_len(&peer.context) + if ipv4 { 0 } else { 1 };
        let budget = peer.max_message_len().saturating_sub(overhead);
        let mut attributes = empty.attributes;
        // Pending prefixes already in sync (and not asked again) are skipped.
        let (desired, sent, resend) = (&self.desired, &self.sent, &self.resend);
        let nlri = take_fitting(&mut self.pending, budget, |p| {
            p.is_ipv4() == ipv4
                && desired.get(p).is_some_and(|a| a == attrs)
                && (sent.get(p) != Some(attrs) || resend.contains(p))
        });
        for p in &nlri {
            self.sent.insert(*p, attrs.clone());
            self.resend.remove(p);
        }
        if ipv4 {
            Update { attributes, nlri, ..Default::default() }
        } else {
            if let Some(mp) = attributes.mp_reach.as_mut() {
                mp.nlri = nlri;
            }
            Update { attributes, ..Default::default() }
        }
    }
}

/// Takes out of `pending` the prefixes that match, in order, as many as
/// fit in `budget` octets.
fn take_fitting(pending: &mut BTreeSet<Prefix>, budget: usize, matches: impl Fn(&Prefix) -> bool) -> Vec<Prefix> {
    let mut used = 0;
    let mut out = Vec::new();
    // Usually the taken prefixes are the first ones: then one split removes them all.
    let mut contiguous = true;
    let mut stop = None;
    for p in pending.iter() {
        if !matches(p) {
            contiguous = false;
            continue;
        }
        if used + p.encoded_len() > budget {
            stop = Some(*p);
            break;
        }
        used += p.encoded_len();
        out.push(*p);
    }
    if contiguous {
        *pending = match stop {
            Some(stop) => pending.split_off(&stop),
            None => BTreeSet::new(),
        };
    } else {
        for p in &out {
            pending.remove(p);
        }
    }
    out
}

/// The attributes of an announcement: ORIGIN IGP, AS_PATH with the local
/// ASN for eBGP and empty for iBGP, LOCAL_PREF to iBGP peers only.
fn path_attributes(peer: &PeerContext, attrs: &RouteAttributes) -> Attributes {
    Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(if peer.ibgp { vec![] } else { vec![AsSegment::Sequence(vec![peer.local_asn])] }),
        next_hop: peer.next_hop_v4,
        med: attrs.med,
        local_pref: if peer.ibgp { Some(attrs.local_pref.unwrap_or(100)) } else { None },
        communities: attrs.communities.clone(),
        large_communities: attrs.large_communities.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use proptest::prelude::*;

    use super::*;
    use crate::wire::Message;

    fn peer(ibgp: bool) -> PeerContext {
        PeerContext {
            local_asn: 64512,
            ibgp,
            next_hop_v4: Some(Ipv4Addr::new(192, 0, 2, 1)),
            next_hop_v6: Some(("2001:db8::1".parse().expect("v6"), Some("fe80::1".parse().expect("v6")))),
            ipv4: true,
            ipv6: true,
            context: Context { four_octet_asn: true, extended_messages: false },
        }
    }

    fn v4(i: u32) -> Prefix {
        Prefix::new(IpAddr::V4(Ipv4Addr::from(0xc633_6400 + i)), 32).expect("v4")
    }

    fn v6(i: u128) -> Prefix {
        Prefix::new(IpAddr::V6(Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000 + i)), 128).expect("v6")
    }

    /// The peer's view: applies UPDATEs as a receiving router would.
    #[derive(Default)]
    struct Peer {
        routes: BTreeMap<Prefix, Attributes>,
        end_of_rib: usize,
        updates: usize,
    }

    impl Peer {
        /// Applies `u` as it arrives over a session negotiated as `ctx`.
        fn apply(&mut self, u: &Update, ctx: &Context) {
            self.updates += 1;
            // Every UPDATE must survive the wire, whole and within the limit.
            let msg = Message::Update(Box::new(u.clone()));
            let mut out = BytesMut::new();
            msg.encode(ctx, &mut out);
            assert!(out.len() <= ctx.max_message_len(MessageType::Update), "message too long: {}", out.len());
            let Ok(Message::Update(u)) = Message::decode(&out, ctx) else { panic!("an UPDATE that does not decode") };
            let u = *u;
            let eor_v6 = u.attributes.mp_unreach.as_ref().is_some_and(|m| m.withdrawn.is_empty());
            if u == Update::default() || (eor_v6 && u.nlri.is_empty() && u.withdrawn.is_empty()) {
                self.end_of_rib += 1;
                return;
            }
            for p in &u.withdrawn {
                self.routes.remove(p);
            }
            if let Some(mp) = &u.attributes.mp_unreach {
                for p in &mp.withdrawn {
                    self.routes.remove(p);
                }
            }
            let mut attrs = u.attributes.clone();
            attrs.mp_reach = None;
            attrs.mp_unreach = None;
            for p in &u.nlri {
                self.routes.insert(*p, attrs.clone());
            }
            if let Some(mp) = &u.attributes.mp_reach {
                for p in &mp.nlri {
                    self.routes.insert(*p, attrs.clone());
                }
            }
        }
    }

    fn drain(rib: &mut AdjRibOut, p: &PeerContext, peer: &mut Peer) {
        while let Some(u) = rib.poll_update(p) {
            peer.apply(&u, &p.context);
        }
    }

    #[test]
    fn initial_table_is_packed_then_end_of_rib() {
        let p = peer(false);
        let mut rib = AdjRibOut::new();
        let routes: BTreeMap<Prefix, RouteAttributes> =
            (0..2000).map(|i| (v4(i), RouteAttributes::default())).collect();
        rib.set_routes(&routes);
        rib.reset(&p);
        let mut view = Peer::default();
        drain(&mut rib, &p, &mut view);
        assert_eq!(view.routes.len(), 2000);
        // 5 octets per /32 in about 4,050 octets of NLRI per message.
        assert_eq!(view.updates, 3 + 2, "three UPDATEs and two End-of-RIB");
        assert_eq!(view.end_of_rib, 2);
        let attrs = view.routes.values().next().expect("a route");
        assert_eq!(attrs.as_path, Some(vec![AsSegment::Sequence(vec![64512])]));
        assert_eq!(attrs.local_pref, None, "no LOCAL_PREF to eBGP peers");
    }

    /// A 4-octet local AS toward a peer with neither the 4-octet ASN
    /// capability nor extended messages: every announcement carries AS4_PATH
    /// beside AS_PATH, and must still fit in 4096 octets.
    #[test]
    fn a_two_octet_peer_gets_whole_updates_of_at_most_4096_octets() {
        let p = PeerContext {
            local_asn: 4_200_000_001,
            context: Context { four_octet_asn: false, extended_messages: false },
            ..peer(false)
        };
        let mut rib = AdjRibOut::new();
        let attrs = RouteAttributes { communities: vec![0xfde8_0064], ..Default::default() };
        let routes: BTreeMap<Prefix, RouteAttributes> =
            (0..2000).flat_map(|i| [(v4(i), attrs.clone()), (v6(u128::from(i)), attrs.clone())]).collect();
        rib.set_routes(&routes);
        rib.reset(&p);
        let mut view = Peer::default();
        drain(&mut rib, &p, &mut view);
        assert_eq!(view.routes.len(), 4000, "every route delivered");
        assert_eq!(view.end_of_rib, 2);
        let attrs = view.routes.values().next().expect("a route");
        assert_eq!(attrs.as_path, Some(vec![AsSegment::Sequence(vec![u32::from(crate::wire::open::AS_TRANS)])]));
        assert!(attrs.unknown.iter().any(|a| a.code == crate::wire::update::attr::AS4_PATH), "AS4_PATH rides along");
    }

    #[test]
    fn ibgp_gets_local_pref_and_an_empty_path_and_ipv6_goes_in_mp_reach() {
        let p = peer(true);
        let mut rib = AdjRibOut::new();
        rib.reset(&p);
        let attrs = RouteAttributes { local_pref: Some(200), communities: vec![1], ..Default::default() };
        rib.set_route(v6(5), Some(attrs));
        let u = rib.poll_update(&p).expect("announcement");
        assert_eq!(u.attributes.local_pref, Some(200));
        assert_eq!(u.attributes.as_path, Some(vec![]));
        assert_eq!(u.attributes.next_hop, None);
        let mp = u.attributes.mp_reach.expect("MP_REACH");
        assert_eq!(mp.nlri, [v6(5)]);
        assert_eq!(mp.next_hops.len(), 2);
    }

    #[test]
    fn flapping_while_blocked_costs_one_update() {
        let p = peer(false);
        let mut rib = AdjRibOut::new();
        rib.reset(&p);
        let mut view = Peer::default();
        drain(&mut rib, &p, &mut view);
        let before = view.updates;
        for i in 0..1000 {
            let attrs = (i % 2 == 0).then(RouteAttributes::default);
            rib.set_route(v4(1), attrs);
        }
        rib.set_route(v4(1), Some(RouteAttributes::default()));
        drain(&mut rib, &p, &mut view);
        assert_eq!(view.updates - before, 1);
        // Flapping back to what the peer already has costs nothing.
        rib.set_route(v4(1), None);
        rib.set_route(v4(1), Some(RouteAttributes::default()));
        assert!(rib.poll_update(&p).is_none());
    }

    proptest! {
        /// After any sequence of desired-set changes, the peer ends with
        /// exactly the desired set, whatever was drained in between; in
        /// every context a session may negotiate (2- or 4-octet ASNs,
        /// extended messages or not, a local AS that needs 4 octets or not),
        /// and every UPDATE fits the peer's limit (checked in `apply`).
        /// Bulk additions fill messages to the limit.
        #[test]
        fn the_peer_converges_to_the_desired_set(
            four_octet_asn in any::<bool>(),
            extended_messages in any::<bool>(),
            wide_local_asn in any::<bool>(),
            steps in proptest::collection::vec((
                proptest::collection::vec((0u32..30, any::<bool>(), 0u8..3), 0..20),
                proptest::option::of((0u32..3000, 0u32..1500, any::<bool>(), 1usize..40)),
                any::<bool>(),
                any::<bool>(),
            ), 1..6)) {
            let p = PeerContext {
                local_asn: if wide_local_asn { 4_200_000_001 } else { 64512 },
                context: Context { four_octet_asn, extended_messages },
                ..peer(false)
            };
            let mut rib = AdjRibOut::new();
            rib.reset(&p);
            let mut view = Peer::default();
            let mut desired: BTreeMap<Prefix, RouteAttributes> = BTreeMap::new();
            for (changes, bulk, drain_now, refresh) in steps {
                for (i, v6_route, community) in changes {
                    let prefix = if v6_route { v6(u128::from(i)) } else { v4(i) };
                    if community == 0 {
                        desired.remove(&prefix);
                    } else {
                        desired.insert(prefix, RouteAttributes { communities: vec![u32::from(community)], ..Default::default() });
                    }
                }
                if let Some((start, count, v6_route, communities)) = bulk {
                    let attrs = RouteAttributes { communities: (0..communities as u32).collect(), ..Default::default() };
                    for i in start..start + count {
                        let prefix = if v6_route { v6(u128::from(i)) } else { v4(i) };
                        desired.insert(prefix, attrs.clone());
                    }
                }
                rib.set_routes(&desired);
                if refresh {
                    rib.refresh();
                }
                if drain_now {
                    drain(&mut rib, &p, &mut view);
                }
            }
            drain(&mut rib, &p, &mut view);
            let got: BTreeMap<Prefix, Vec<u32>> = view.routes.iter().map(|(k, a)| (*k, a.communities.clone())).collect();
            let want: BTreeMap<Prefix, Vec<u32>> = desired.iter().map(|(k, a)| (*k, a.communities.clone())).collect();
            prop_assert_eq!(got, want);
        }
    }
}
