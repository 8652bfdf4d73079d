//! The responder fed arbitrary frames on its interfaces: never a panic;
//! everything it sends parses, leaves by the interface the frame came in
//! on, from that interface's MAC, and speaks only for the IPs it owns; a
//! conflict it reports names an owned IP, the receiving interface and a MAC
//! that is not ours.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use lb_arp::wire::{Frame, FrameBody, MacAddr, NdpRepr, Operation};
use lb_arp::{Responder, ResponderConfig, ResponderEvent};
use libfuzzer_sys::fuzz_target;

const ETH0: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
const ETH1: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x20]);

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let owned: BTreeMap<IpAddr, BTreeSet<String>> = [
        ("192.0.2.10".parse().expect("IP"), BTreeSet::new()),
        ("2001:db8::10".parse().expect("IP"), BTreeSet::from(["eth1".to_string()])),
    ]
    .into();
    let mut r = Responder::new(ResponderConfig::default());
    r.set_interface("eth0", ETH0);
    r.set_interface("eth1", ETH1);
    r.set_owned(start, owned.clone());
    while r.poll_transmit().is_some() {}
    // The first byte picks the interface, the rest is the frame.
    let Some((&pick, frame)) = data.split_first() else { return };
    let interface = if pick & 1 == 0 { "eth0" } else { "eth1" };
    let now = start + Duration::from_millis(u64::from(pick));
    r.handle_frame(now, interface, frame);
    while let Some(t) = r.poll_transmit() {
        assert_eq!(t.interface, interface, "answered from the receiving interface");
        let sent = Frame::parse(&t.frame).expect("what it sends parses");
        let ours = if interface == "eth0" { ETH0 } else { ETH1 };
        assert_eq!(sent.ethernet.src, ours);
        match sent.body {
            FrameBody::Arp(a) => {
                assert_eq!(a.operation, Operation::Reply);
                assert!(owned.contains_key(&IpAddr::V4(a.sender_ip)), "{a:?}");
            }
            FrameBody::Ndp(n) => {
                let NdpRepr::NeighborAdvert { target, .. } = n.message else { panic!("only advertisements") };
                let allowed = owned.get(&IpAddr::V6(target)).expect("an owned target");
                assert!(allowed.is_empty() || allowed.contains(interface));
            }
            other => panic!("sent {other:?}"),
        }
    }
    while let Some(event) = r.poll_event() {
        if let ResponderEvent::Conflict { ip, interface: on, mac } = event {
            assert_eq!(on, interface, "a conflict is seen where the frame came in");
            let allowed = owned.get(&ip).expect("an owned IP");
            assert!(allowed.is_empty() || allowed.contains(interface));
            assert!(mac != ETH0 && mac != ETH1, "our own MAC is no conflict");
        }
    }
});
