//! A session with routes to announce, fed a valid opening from the peer
//! (none, its OPEN, or its OPEN and KEEPALIVE, chosen by the first byte),
//! then arbitrary bytes in arbitrary chunks at arbitrary times: never a
//! panic, and never an UPDATE out while the session is not Established.
//! The opening lets most inputs reach Established, where UPDATEs do go
//! out, so the check is not empty.
#![no_main]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use lb_bgp::adj_rib_out::RouteAttributes;
use lb_bgp::session::{RemoteAs, Session, SessionConfig, State};
use lb_bgp::wire::{Context, Message, MessageType, Open, Prefix, header};
use libfuzzer_sys::fuzz_target;

fn opening(choice: u8) -> Vec<u8> {
    let mut out = BytesMut::new();
    let ctx = Context::default();
    if choice % 3 >= 1 {
        let hold = if choice & 0x80 != 0 { 0 } else { 90 };
        Message::Open(Open::new(4_200_000_001, hold, Ipv4Addr::new(192, 0, 2, 2), vec![])).encode(&ctx, &mut out);
    }
    if choice % 3 == 2 {
        Message::Keepalive.encode(&ctx, &mut out);
    }
    out.to_vec()
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, data)) = data.split_first() else { return };
    let mut config = SessionConfig::new(64512, RemoteAs::External, Ipv4Addr::new(192, 0, 2, 1));
    config.ipv6 = true;
    let mut s = Session::new(config);
    let routes: BTreeMap<Prefix, RouteAttributes> = (0..50u32)
        .map(|i| (Prefix::new(Ipv4Addr::from(0xc633_6400 + i).into(), 32).expect("prefix"), RouteAttributes::default()))
        .collect();
    s.set_routes(&routes);
    let mut now = Instant::now();
    s.start(now);
    s.handle_connected(now, "192.0.2.1:50000".parse().expect("addr"));
    let mut out = Vec::new();
    let mut check = |s: &mut Session, now: Instant| {
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        while s.poll_event().is_some() {}
        let established = s.state() == State::Established;
        out.clear();
        let _ = s.poll_transmit(&mut out);
        for (kind, _) in header::messages(&out) {
            assert!(established || kind != MessageType::Update, "UPDATE before Established");
        }
    };
    s.handle_bytes(now, &opening(choice));
    check(&mut s, now);
    // Each chunk: one byte of elapsed time (in 100 ms), one of length, then the bytes.
    let mut rest = data;
    while let [dt, len, tail @ ..] = rest {
        now += Duration::from_millis(u64::from(*dt) * 100);
        let n = usize::from(*len).min(tail.len());
        s.handle_bytes(now, &tail[..n]);
        rest = &tail[n..];
        check(&mut s, now);
    }
});
