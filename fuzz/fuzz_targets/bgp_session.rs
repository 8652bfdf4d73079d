//! Arbitrary bytes from a peer, in arbitrary chunks at arbitrary times,
//! into a session that has just connected: never a panic, and never an
//! UPDATE out before the session is Established.
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use lb_bgp::session::{RemoteAs, Session, SessionConfig, State};
use lb_bgp::wire::{Context, Framer};

fuzz_target!(|data: &[u8]| {
    let mut config = SessionConfig::new(64512, RemoteAs::External, Ipv4Addr::new(192, 0, 2, 1));
    config.ipv6 = true;
    let mut s = Session::new(config);
    let mut now = Instant::now();
    s.start(now);
    s.handle_connected(now, "192.0.2.1:50000".parse().expect("addr"));
    let mut out = Vec::new();
    // Each chunk: one byte of elapsed time (in 100 ms), one of length, then the bytes.
    let mut rest = data;
    while let [dt, len, tail @ ..] = rest {
        now += Duration::from_millis(u64::from(*dt) * 100);
        let n = usize::from(*len).min(tail.len());
        s.handle_bytes(now, &tail[..n]);
        rest = &tail[n..];
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
        while s.poll_event().is_some() {}
        let established = s.state() == State::Established;
        out.clear();
        let _ = s.poll_transmit(&mut out);
        if !established {
            let mut framer = Framer::new();
            framer.push(&out);
            while let Some(Ok(frame)) = framer.next_frame(&Context { four_octet_asn: true, extended_messages: false }) {
                assert_ne!(frame[18], 2, "UPDATE before Established");
            }
        }
    }
});
