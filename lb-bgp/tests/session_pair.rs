//! Two sessions wired back to back on a fake clock: what one transmits the
//! other receives, connects and closes are delivered by the harness.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use lb_bgp::adj_rib_out::RouteAttributes;
use lb_bgp::session::{DownReason, Failure, RemoteAs, STABLE_AFTER, Session, SessionConfig, SessionEvent, State};
use lb_bgp::wire::{
    Afi, CeaseSubcode, Context, ErrorCode, Message, Notification, NotificationError, OpenSubcode, RouteRefreshSubtype,
    Safi,
};
use lb_bgp::wire::{Framer, Prefix, Update};

struct Pair {
    now: Instant,
    a: Session,
    b: Session,
    /// Whether the link between them is up, and whether it carries bytes.
    connected: bool,
    frozen_b: bool,
    events_a: Vec<SessionEvent>,
    events_b: Vec<SessionEvent>,
    /// Everything `a` wrote, to look at what the peer was told.
    wire_a: Vec<u8>,
}

impl Pair {
    fn new(a: SessionConfig, b: SessionConfig) -> Self {
        Self::with(Session::new(a), b)
    }

    /// A pair whose `a` was prepared (routes set, say) before it starts.
    fn with(a: Session, b: SessionConfig) -> Self {
        let now = Instant::now();
        let mut pair = Pair {
            now,
            a,
            b: Session::new(b),
            connected: false,
            frozen_b: false,
            events_a: vec![],
            events_b: vec![],
            wire_a: vec![],
        };
        pair.a.start(now);
        pair.b.start(now);
        pair.drive();
        pair
    }

    /// Delivers bytes and events until nothing moves.
    fn drive(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            let mut buf = Vec::new();
            if self.a.poll_transmit(&mut buf) > 0 && self.connected && !self.frozen_b {
                self.wire_a.extend_from_slice(&buf);
                self.b.handle_bytes(self.now, &buf);
                moved = true;
            }
            buf.clear();
            if !self.frozen_b && self.b.poll_transmit(&mut buf) > 0 && self.connected {
                self.a.handle_bytes(self.now, &buf);
                moved = true;
            }
            while let Some(e) = self.a.poll_event() {
                moved = true;
                match e {
                    SessionEvent::Connect if !self.connected => {
                        self.connected = true;
                        self.a.handle_connected(self.now, "192.0.2.1:50000".parse().expect("addr"));
                        self.b.handle_connected(self.now, "192.0.2.2:179".parse().expect("addr"));
                    }
                    SessionEvent::Disconnect if self.connected => {
                        // Like TCP: what was written before the close arrives first.
                        let mut last = Vec::new();
                        if self.a.poll_transmit(&mut last) > 0 && !self.frozen_b {
                            self.b.handle_bytes(self.now, &last);
                        }
                        self.connected = false;
                        self.b.handle_closed(self.now);
                        self.a.handle_closed(self.now);
                    }
                    _ => {}
                }
                self.events_a.push(e);
            }
            while let Some(e) = self.b.poll_event() {
                moved = true;
                if e == SessionEvent::Disconnect && self.connected {
                    let mut last = Vec::new();
                    if self.b.poll_transmit(&mut last) > 0 {
                        self.a.handle_bytes(self.now, &last);
                    }
                    self.connected = false;
                    self.a.handle_closed(self.now);
                    self.b.handle_closed(self.now);
                }
                self.events_b.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("the pair does not settle");
    }

    /// Advances the clock to the next deadline of either side (at most `limit`).
    fn advance(&mut self, limit: Duration) {
        let until = self.now + limit;
        loop {
            let next = [self.a.poll_timeout(), (!self.frozen_b).then(|| self.b.poll_timeout()).flatten()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    if self.a.poll_timeout().is_some_and(|x| x <= self.now) {
                        self.a.handle_timeout(self.now);
                    }
                    if !self.frozen_b && self.b.poll_timeout().is_some_and(|x| x <= self.now) {
                        self.b.handle_timeout(self.now);
                    }
                    self.drive();
                }
                _ => {
                    self.now = until;
                    return;
                }
            }
        }
    }
}

fn id(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, last)
}

fn ebgp() -> (SessionConfig, SessionConfig) {
    let a = SessionConfig::new(64512, RemoteAs::Fixed(4_200_000_001), id(1));
    let mut b = SessionConfig::new(4_200_000_001, RemoteAs::External, id(2));
    b.passive = true;
    (a, b)
}

fn down_reasons(events: &[SessionEvent]) -> Vec<&DownReason> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Down(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// The UPDATEs `a` sent, in order.
fn updates_sent(pair: &Pair) -> Vec<Update> {
    let ctx = Context { four_octet_asn: true, extended_messages: false };
    let mut framer = Framer::new();
    framer.push(&pair.wire_a);
    let mut out = Vec::new();
    while let Some(Ok(frame)) = framer.next_frame(&ctx) {
        if let Ok(Message::Update(u)) = Message::decode(&frame, &ctx) {
            out.push(*u);
        }
    }
    out
}

#[test]
fn routes_follow_the_desired_set() {
    let (a, b) = ebgp();
    let p = |s: &str| Prefix::new(s.parse().expect("ip"), 32).expect("prefix");
    let mut routes = BTreeMap::new();
    routes.insert(p("198.51.100.1"), RouteAttributes { communities: vec![0xfde8_0064], ..Default::default() });
    // Set before Established: sent as the initial table, then End-of-RIB.
    let mut session = Session::new(a);
    session.set_routes(&routes);
    let mut pair2 = Pair::with(session, b);
    pair2.drive();
    let updates = updates_sent(&pair2);
    assert!(updates.iter().any(|u| u.nlri == [p("198.51.100.1")] && u.attributes.next_hop == Some(id(1))));
    assert!(updates.iter().any(|u| *u == Update::end_of_rib_ipv4()));
    // A change while Established: the old route withdrawn, the new announced.
    routes.clear();
    routes.insert(p("198.51.100.2"), RouteAttributes::default());
    pair2.a.set_routes(&routes);
    pair2.drive();
    let updates = updates_sent(&pair2);
    assert!(updates.iter().any(|u| u.withdrawn == [p("198.51.100.1")]));
    assert!(updates.iter().any(|u| u.nlri == [p("198.51.100.2")]));
}

#[test]
fn establishes_and_negotiates() {
    let (mut a, b) = ebgp();
    a.hold_time = 30;
    a.ipv6 = true;
    let pair = Pair::new(a, b);
    assert_eq!((pair.a.state(), pair.b.state()), (State::Established, State::Established));
    let n = pair.a.negotiated().expect("negotiated");
    assert_eq!((n.peer_asn, n.hold_time, n.keepalive), (4_200_000_001, 30, Duration::from_secs(10)));
    assert!(n.context.four_octet_asn && n.route_refresh && n.ipv4 && !n.ipv6);
    assert!(n.context.extended_messages && n.enhanced_route_refresh);
    assert!(pair.events_a.iter().any(|e| matches!(e, SessionEvent::Established(_))));
}

#[test]
fn the_session_counts_what_it_sends_and_receives() {
    let (a, b) = ebgp();
    let mut session = Session::new(a);
    let p = |s: &str| Prefix::new(s.parse().expect("ip"), 32).expect("prefix");
    session.set_routes(&BTreeMap::from([(p("198.51.100.1"), RouteAttributes::default())]));
    let mut pair = Pair::with(session, b);
    pair.drive();
    let (a, b) = (*pair.a.stats(), *pair.b.stats());
    // a: OPEN, KEEPALIVE, the route and End-of-RIB; b: OPEN, KEEPALIVE, End-of-RIB.
    let counts = |c: lb_bgp::stats::MessageCounts| (c.open, c.keepalive, c.update, c.notification);
    assert_eq!(counts(a.sent), (1, 1, 2, 0));
    assert_eq!(counts(b.sent), (1, 1, 1, 0));
    assert_eq!((a.received, b.received), (b.sent, a.sent), "each receives what the other sent");
    assert_eq!((a.bytes_sent, a.bytes_received), (b.bytes_received, b.bytes_sent));
    assert_eq!(a.bytes_sent, pair.wire_a.len() as u64);
    assert_eq!((a.times_established, b.times_established), (1, 1));
    // The driver took a KEEPALIVE and an UPDATE but its connection closed
    // after writing only part of the first: the UPDATE is taken back.
    let mut out = Vec::new();
    let before = *pair.a.stats();
    assert!(pair.a.send_message(&Message::Keepalive));
    pair.a.set_route(p("198.51.100.2"), Some(RouteAttributes::default()));
    let _ = pair.a.poll_transmit(&mut out);
    assert_eq!(pair.a.stats().sent.update, before.sent.update + 1);
    let end = lb_bgp::wire::header::message_end(&out, 3);
    assert_eq!(end, 19, "the KEEPALIVE being written is kept whole");
    pair.a.take_back_unsent(&out[end..]);
    let after = *pair.a.stats();
    assert_eq!((after.sent.keepalive, after.sent.update), (before.sent.keepalive + 1, before.sent.update));
    assert_eq!(after.bytes_sent, before.bytes_sent + 19);
}

#[test]
fn keepalives_hold_the_session_and_silence_ends_it() {
    let (mut a, b) = ebgp();
    a.hold_time = 9;
    let mut pair = Pair::new(a, b);
    pair.advance(Duration::from_secs(60));
    assert_eq!(pair.a.state(), State::Established, "keepalives every 3 s keep it up");
    // The peer freezes: no keepalives, no reads.
    pair.frozen_b = true;
    pair.advance(Duration::from_secs(9));
    assert_eq!(pair.a.state(), State::Idle);
    assert_eq!(down_reasons(&pair.events_a), [&DownReason::Sent(Notification::hold_timer_expired())]);
}

#[test]
fn a_wrong_peer_as_is_refused_with_bad_peer_as() {
    let (mut a, b) = ebgp();
    a.remote_as = RemoteAs::Fixed(65000);
    let pair = Pair::new(a, b);
    let reasons = down_reasons(&pair.events_a);
    assert!(
        matches!(reasons[0], DownReason::Sent(n) if n.error == NotificationError::Open(OpenSubcode::BadPeerAs)),
        "{reasons:?}"
    );
    assert!(
        matches!(down_reasons(&pair.events_b)[0], DownReason::Received(n) if n.error == NotificationError::Open(OpenSubcode::BadPeerAs))
    );
}

#[test]
fn stop_sends_cease_with_the_message() {
    let (a, b) = ebgp();
    let mut pair = Pair::new(a, b);
    let now = pair.now;
    pair.a.stop(now, Some("maintenance"));
    pair.drive();
    let reasons = down_reasons(&pair.events_b);
    let [DownReason::Received(n)] = reasons.as_slice() else { panic!("{reasons:?}") };
    assert_eq!(n.shutdown_message(), Some("maintenance"));
    assert_eq!(pair.a.state(), State::Idle);
    pair.advance(Duration::from_secs(600));
    assert_eq!(pair.a.state(), State::Idle, "a stopped session does not come back");
}

#[test]
fn failures_back_off_exponentially() {
    let (mut a, mut b) = ebgp();
    a.connect_retry = Duration::from_secs(1);
    a.max_backoff = Duration::from_secs(16);
    b.remote_as = RemoteAs::Fixed(1); // b refuses a every time
    let mut pair = Pair::new(a, b);
    let mut connects = Vec::new();
    let start = pair.now;
    for _ in 0..200 {
        let before = pair.events_a.iter().filter(|e| **e == SessionEvent::Connect).count();
        pair.advance(Duration::from_millis(500));
        let after = pair.events_a.iter().filter(|e| **e == SessionEvent::Connect).count();
        if after > before {
            connects.push((pair.now - start).as_secs_f64());
        }
    }
    let gaps: Vec<f64> = connects.windows(2).map(|w| (w[1] - w[0]).round()).collect();
    assert!(gaps.len() >= 5, "{connects:?}");
    assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "gaps grow: {gaps:?}");
    assert_eq!(gaps.last().copied(), Some(16.0), "capped: {gaps:?}");
}

/// The encoding bug's loop: the session opens, sends its table, and the
/// peer answers at once with a NOTIFICATION (Bad Message Length), again
/// and again. Reaching Established must not reset the back-off, and the
/// session says why it keeps failing and how often.
#[test]
fn a_session_that_fails_right_after_opening_backs_off_and_says_why() {
    let (mut config, _) = ebgp();
    config.connect_retry = Duration::from_secs(1);
    config.max_backoff = Duration::from_secs(16);
    let mut s = Session::new(config);
    let ctx = Context::default();
    let encode = |msgs: &[Message]| {
        let mut out = bytes::BytesMut::new();
        for m in msgs {
            m.encode(&ctx, &mut out);
        }
        out.to_vec()
    };
    // The peer: OPEN (hold time 0, so silence is fine), KEEPALIVE.
    let open = lb_bgp::wire::Open::new(4_200_000_001, 0, id(2), vec![]);
    let opening = encode(&[Message::Open(open), Message::Keepalive]);
    let bad_length = NotificationError::MessageHeader(lb_bgp::wire::MessageHeaderSubcode::BadMessageLength);
    let rejection = encode(&[Message::Notification(Notification::new(bad_length))]);
    let start = Instant::now();
    let mut now = start;
    s.start(now);
    let mut connects = Vec::new();
    // One attempt: returns when it connected, in seconds from the start.
    let cycle = |s: &mut Session, now: &mut Instant, answer: &[u8], wait: Duration| {
        // Wait for the session to ask for a connection.
        loop {
            if std::iter::from_fn(|| s.poll_event()).any(|e| e == SessionEvent::Connect) {
                break;
            }
            *now = s.poll_timeout().expect("a retry timer");
            s.handle_timeout(*now);
        }
        let connected = (*now - start).as_secs();
        s.handle_connected(*now, "192.0.2.1:50000".parse().expect("addr"));
        s.handle_bytes(*now, &opening);
        assert_eq!(s.state(), State::Established);
        *now += wait;
        s.handle_bytes(*now, answer);
        assert_eq!(s.state(), State::Idle);
        connected
    };
    for _ in 0..7 {
        connects.push(cycle(&mut s, &mut now, &rejection, Duration::from_millis(10)));
    }
    let gaps: Vec<u64> = connects.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, [2, 4, 8, 16, 16, 16], "doubling up to the cap, though each reached Established");
    let failures = s.failures();
    assert_eq!(failures.last, Some(Failure::Received(bad_length)));
    assert_eq!((failures.repeats, failures.consecutive), (7, 7));
    // Failing another way: a new reason, the back-off goes on.
    let cease = encode(&[Message::Notification(Notification::cease(CeaseSubcode::AdministrativeReset))]);
    let _ = cycle(&mut s, &mut now, &cease, Duration::from_millis(10));
    let failures = s.failures();
    assert_eq!(failures.last, Some(Failure::Received(NotificationError::Cease(CeaseSubcode::AdministrativeReset))));
    assert_eq!((failures.repeats, failures.consecutive), (1, 8));
    // A session that ran stably before failing starts over at the shortest delay.
    let _ = cycle(&mut s, &mut now, &rejection, STABLE_AFTER);
    assert_eq!((s.failures().repeats, s.failures().consecutive), (1, 1));
    let failed_at = (now - start).as_secs();
    let next = cycle(&mut s, &mut now, &rejection, Duration::from_millis(10));
    assert_eq!(next - failed_at, 2, "the shortest back-off again");
}

#[test]
fn route_refresh_and_bad_updates() {
    let (a, b) = ebgp();
    let mut pair = Pair::new(a, b);
    assert!(pair.b.request_route_refresh(Afi::Ipv4, Safi::Unicast));
    pair.drive();
    assert!(pair.events_a.contains(&SessionEvent::RouteRefreshRequested { afi: Afi::Ipv4, safi: Safi::Unicast }));
    // RFC 7313: the re-sent table comes between BoRR and EoRR.
    let ctx = Context { four_octet_asn: true, extended_messages: true };
    let mut framer = Framer::new();
    framer.push(&pair.wire_a);
    let subtypes: Vec<RouteRefreshSubtype> = std::iter::from_fn(|| framer.next_frame(&ctx))
        .filter_map(|f| match Message::decode(&f.expect("frame"), &ctx) {
            Ok(Message::RouteRefresh(r)) => Some(r.subtype),
            _ => None,
        })
        .collect();
    assert_eq!(subtypes, [RouteRefreshSubtype::BeginOfRouteRefresh, RouteRefreshSubtype::EndOfRouteRefresh]);
    // An UPDATE with an invalid ORIGIN is ignored (RFC 7606), the session stays.
    let mut frame = vec![0xff; 16];
    let body = [0, 0, 0, 4, 0x40, 1, 1, 9];
    frame.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    frame.push(2);
    frame.extend_from_slice(&body);
    let now = pair.now;
    pair.a.handle_bytes(now, &frame);
    pair.drive();
    assert_eq!(pair.a.state(), State::Established);
    assert!(pair.events_a.iter().any(|e| matches!(e, SessionEvent::UpdateIgnored(_))));
    // A framing error ends it with the header error.
    pair.a.handle_bytes(now, &[0u8; 19]);
    pair.drive();
    assert_eq!(pair.a.state(), State::Idle);
    assert!(matches!(down_reasons(&pair.events_a)[0], DownReason::Sent(n) if n.code() == ErrorCode::MessageHeader));
}

mod arbitrary_input {
    use proptest::prelude::*;

    use super::*;
    use lb_bgp::wire::open::Open;

    /// The peer's side of an opening: its OPEN, then (if `keepalive`) the
    /// KEEPALIVE that makes the session Established.
    fn opening(keepalive: bool) -> Vec<u8> {
        let ctx = Context::default();
        let mut out = bytes::BytesMut::new();
        Message::Open(Open::new(4_200_000_001, 90, id(2), vec![])).encode(&ctx, &mut out);
        if keepalive {
            Message::Keepalive.encode(&ctx, &mut out);
        }
        out.to_vec()
    }

    proptest! {
        /// A session with routes to announce, fed a valid opening (or part
        /// of one) and then any bytes, in any chunks, at any times: no
        /// panic, and no UPDATE written while it is not Established. The
        /// opening makes it reach Established in most cases, so UPDATEs do
        /// go out then and the check has something to check.
        #[test]
        fn never_panics_never_updates_early(
            prefix in 0usize..3,
            chunks in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..80), 0u64..5000), 0..20),
        ) {
            let (a, _) = ebgp();
            let mut s = Session::new(a);
            let p = Prefix::new("198.51.100.1".parse().expect("ip"), 32).expect("prefix");
            s.set_routes(&BTreeMap::from([(p, RouteAttributes::default())]));
            let mut now = Instant::now();
            s.start(now);
            s.handle_connected(now, "192.0.2.1:50000".parse().expect("addr"));
            let first = match prefix {
                0 => vec![],
                1 => opening(false),
                _ => opening(true),
            };
            let mut out = Vec::new();
            let mut updates = 0;
            for (bytes, ms) in std::iter::once((first, 0)).chain(chunks) {
                now += Duration::from_millis(ms);
                s.handle_bytes(now, &bytes);
                if s.poll_timeout().is_some_and(|t| t <= now) {
                    s.handle_timeout(now);
                }
                while s.poll_event().is_some() {}
                let established = s.state() == State::Established;
                out.clear();
                let _ = s.poll_transmit(&mut out);
                let mut framer = Framer::new();
                framer.push(&out);
                while let Some(Ok(frame)) = framer.next_frame(&Context { four_octet_asn: true, extended_messages: true }) {
                    if frame[18] == 2 {
                        prop_assert!(established, "an UPDATE before Established");
                        updates += 1;
                    }
                }
            }
            if prefix == 2 {
                // The whole opening came first: Established, and the route went out.
                prop_assert!(updates > 0, "the routes were announced once Established");
            }
        }
    }
}

#[test]
fn delay_open_answers_an_early_open_and_otherwise_waits() {
    // b delays, a does not: a's OPEN arrives during b's delay, b answers at once.
    let (a, mut b) = ebgp();
    b.delay_open = Some(Duration::from_secs(5));
    let pair = Pair::new(a.clone(), b.clone());
    assert_eq!((pair.a.state(), pair.b.state()), (State::Established, State::Established));
    // Both delay: nothing until the timers fire, then the usual exchange.
    let mut a = a;
    a.delay_open = Some(Duration::from_secs(2));
    let mut pair = Pair::new(a, b);
    assert_eq!(pair.a.state(), State::Connect);
    assert!(pair.wire_a.is_empty(), "no OPEN before the delay");
    pair.advance(Duration::from_secs(3));
    assert_eq!((pair.a.state(), pair.b.state()), (State::Established, State::Established));
}
