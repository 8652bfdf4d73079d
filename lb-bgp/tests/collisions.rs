//! Connection collisions (RFC 4271 §6.8) between two real [`Peer`]s over a
//! simulated network with latency: both sides connect at once, and both
//! must end with the same single connection.

mod util;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use lb_bgp::adj_rib_out::RouteAttributes;
use lb_bgp::peer::{ConnectionId, Peer, PeerEvent};
use lb_bgp::session::{RemoteAs, SessionConfig, SessionEvent, State, keeps_connection};
use lb_bgp::wire::{CeaseSubcode, Message, NotificationError, Prefix, Update};
use proptest::prelude::*;
use util::Network;

fn id(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, last)
}

fn config(asn: u32, router_id: Ipv4Addr) -> SessionConfig {
    let mut c = SessionConfig::new(asn, RemoteAs::External, router_id);
    c.hold_time = 9;
    c
}

fn is_collision_cease(m: &Message) -> bool {
    matches!(m, Message::Notification(n) if n.error == NotificationError::Cease(CeaseSubcode::ConnectionCollisionResolution))
}

/// Both connect at the same instant; after things settle each side has
/// exactly one connection, the same one, Established, and it is the one
/// opened by the speaker that §6.8 says; the other was closed by both
/// sides with Cease / Connection Collision Resolution and never carried a
/// KEEPALIVE (so neither side saw that session Established).
fn simultaneous_open(a: SessionConfig, b: SessionConfig, latency: [Duration; 2]) {
    let winner_side =
        if keeps_connection((a.router_id, a.local_asn), (b.router_id, b.local_asn), true) { 0 } else { 1 };
    let mut net = Network::new(a, b, latency[0]);
    net.latency = latency;
    net.start();
    assert_eq!(net.connects.len(), 2, "both sides connect at once");
    net.run_for(Duration::from_secs(30));
    let [a, b] = &net.sides;
    assert_eq!((a.peer.state(), b.peer.state()), (State::Established, State::Established));
    assert_eq!(a.open.len(), 1, "one connection left: {:?}", a.open);
    assert_eq!(a.open, b.open, "the same connection on both sides");
    let kept = *a.open.first().expect("one");
    assert_eq!((a.peer.carrier(), b.peer.carrier()), (Some(kept), Some(kept)));
    // Links are numbered in the order of the Connect events: side 0's first.
    let opened_by = |link: ConnectionId| if link == ConnectionId(1) { 0 } else { 1 };
    assert_eq!(opened_by(kept), winner_side, "the connection of the higher identifier (or AS) survives");
    let lost = ConnectionId(3 - kept.0);
    for side in [a, b] {
        let on_lost = side.sent_on(lost);
        assert!(on_lost.iter().any(|m| is_collision_cease(m)), "Cease on the lost connection: {on_lost:?}");
        assert!(!on_lost.iter().any(|m| matches!(m, Message::Keepalive)), "no KEEPALIVE before the Cease: {on_lost:?}");
        assert!(side.closed.contains(&lost));
        let established = side.session_events().filter(|e| matches!(e, SessionEvent::Established(_))).count();
        assert_eq!(established, 1);
        assert!(!side.session_events().any(|e| matches!(e, SessionEvent::Down(_))), "the session never went down");
        assert!(side.events.iter().any(|(_, e)| *e == PeerEvent::CollisionResolved { kept, closed: lost }));
        // Stats cover both connections: an OPEN on each, the Cease on the lost one.
        let stats = side.peer.stats();
        assert_eq!((stats.sent.open, stats.sent.notification), (2, 1));
        let written: usize = side.wire.values().map(Vec::len).sum();
        assert_eq!(stats.bytes_sent, written as u64);
    }
    // Still up later: keepalives flow on the kept connection.
    net.run_for(Duration::from_secs(60));
    assert_eq!((net.sides[0].peer.state(), net.sides[1].peer.state()), (State::Established, State::Established));
}

#[test]
fn simultaneous_open_keeps_the_connection_of_the_higher_identifier() {
    let ms = Duration::from_millis;
    for latency in [[ms(0), ms(0)], [ms(10), ms(10)], [ms(3), ms(70)], [ms(70), ms(3)]] {
        simultaneous_open(config(65001, id(9)), config(65002, id(2)), latency);
        simultaneous_open(config(65001, id(2)), config(65002, id(9)), latency);
        // Equal identifiers (eBGP): the higher AS wins (RFC 6286 §2.3).
        simultaneous_open(config(65001, id(5)), config(65002, id(5)), latency);
        simultaneous_open(config(65002, id(5)), config(65001, id(5)), latency);
    }
}

proptest! {
    #[test]
    fn simultaneous_open_any_latency_and_identifiers(
        to_b in 0u64..300, to_a in 0u64..300, id_a in 1u8..4, id_b in 1u8..4, asn_a in 65001u32..65003,
    ) {
        let asn_b = if asn_a == 65001 { 65002 } else { 65001 };
        let latency = [Duration::from_millis(to_b), Duration::from_millis(to_a)];
        simultaneous_open(config(asn_a, id(id_a)), config(asn_b, id(id_b)), latency);
    }
}

#[test]
fn keeps_connection_compares_identifiers_then_asns() {
    assert!(keeps_connection((id(9), 65001), (id(2), 65002), true));
    assert!(!keeps_connection((id(9), 65001), (id(2), 65002), false));
    assert!(!keeps_connection((id(2), 65001), (id(9), 65002), true));
    assert!(keeps_connection((id(5), 65002), (id(5), 65001), true));
    assert!(!keeps_connection((id(5), 65001), (id(5), 65002), true));
    assert!(keeps_connection((id(5), 65001), (id(5), 65002), false));
}

#[test]
fn a_connection_while_established_is_refused() {
    let mut b = config(65002, id(2));
    b.passive = true;
    let mut net = Network::new(config(65001, id(1)), b, Duration::from_millis(5));
    net.start();
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.sides[0].peer.state(), State::Established);
    let first = net.sides[0].peer.carrier().expect("a connection");
    // The peer (side 1) connects again while the session is up.
    let second = net.connect(1);
    net.run_for(Duration::from_secs(30));
    for side in &net.sides {
        assert_eq!(side.peer.state(), State::Established);
        assert_eq!(side.peer.carrier(), Some(first));
        assert!(side.closed.contains(&second) || !side.open.contains(&second));
    }
    assert!(net.sides[0].sent_on(second).iter().all(|m| is_collision_cease(m)), "refused with a Cease");
    assert!(!net.sides[0].session_events().any(|e| matches!(e, SessionEvent::Down(_))));
}

/// Beyond §6.8, which cannot order two connections opened by the same
/// side: the peer's newer connection replaces its older one (it gave up
/// on the first), ours are kept in the order opened.
#[test]
fn two_connections_from_the_same_side() {
    let now = Instant::now();
    let (local, remote) = ("192.0.2.1:179".parse().expect("addr"), "192.0.2.2:50000".parse().expect("addr"));
    let drain = |p: &mut Peer| std::iter::from_fn(|| p.poll_event()).collect::<Vec<_>>();
    // From the peer, twice.
    let mut p = Peer::new(config(65001, id(1)));
    p.start(now);
    p.handle_connected(now, ConnectionId(1), local, remote, false);
    p.handle_connected(now, ConnectionId(2), local, remote, false);
    let events = drain(&mut p);
    assert!(events.contains(&PeerEvent::Close(ConnectionId(1))), "{events:?}");
    assert!(events.contains(&PeerEvent::CollisionResolved { kept: ConnectionId(2), closed: ConnectionId(1) }));
    assert_eq!(p.carrier(), Some(ConnectionId(2)));
    let mut last = Vec::new();
    let _ = p.poll_transmit(ConnectionId(1), &mut last);
    assert!(matches!(Message::decode(&last, &Default::default()), Ok(m) if is_collision_cease(&m)), "{last:?}");
    // Ours, twice: the first is kept.
    let mut p = Peer::new(config(65001, id(1)));
    p.start(now);
    p.handle_connected(now, ConnectionId(1), local, remote, true);
    p.handle_connected(now, ConnectionId(2), local, remote, true);
    let events = drain(&mut p);
    assert!(events.contains(&PeerEvent::Close(ConnectionId(2))), "{events:?}");
    assert_eq!(p.carrier(), Some(ConnectionId(1)));
}

/// Routes set before either side starts, over a network with latency:
/// every UPDATE on the wire was written by an Established session, and
/// the routes do arrive (so the check is not empty).
#[test]
fn no_update_before_established() {
    let p = |s: &str| Prefix::new(s.parse().expect("ip"), 32).expect("prefix");
    let routes: BTreeMap<Prefix, RouteAttributes> =
        [p("198.51.100.1"), p("198.51.100.2")].into_iter().map(|p| (p, RouteAttributes::default())).collect();
    for latency in [0, 1, 40] {
        let mut net = Network::new(config(65001, id(1)), config(65002, id(2)), Duration::from_millis(latency));
        for side in &mut net.sides {
            side.peer.set_routes(&routes);
        }
        net.start();
        net.run_for(Duration::from_secs(5));
        for side in &net.sides {
            let updates: Vec<_> = side.sent.iter().filter(|s| matches!(s.message, Message::Update(_))).collect();
            let announced: Vec<&Update> = updates
                .iter()
                .filter_map(|s| match &s.message {
                    Message::Update(u) if !u.nlri.is_empty() => Some(&**u),
                    _ => None,
                })
                .collect();
            assert!(!announced.is_empty(), "the routes went out");
            for s in &updates {
                assert_eq!(s.state, State::Established, "an UPDATE written at {:?} in {:?}", s.at, s.state);
            }
        }
    }
}
