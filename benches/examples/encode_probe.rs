//! Times the phases of sending a large table through the Adj-RIB-Out.
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use bytes::BytesMut;
use lb_bgp::adj_rib_out::{AdjRibOut, PeerContext, RouteAttributes};
use lb_bgp::wire::{Context, Message, Prefix};

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let peer = PeerContext {
        local_asn: 64512,
        ibgp: false,
        next_hop_v4: Some(Ipv4Addr::new(192, 0, 2, 1)),
        next_hop_v6: None,
        ipv4: true,
        ipv6: false,
        max_message_len: 4096,
    };
    let attrs = RouteAttributes { communities: vec![1], ..Default::default() };
    let routes: BTreeMap<Prefix, RouteAttributes> = (0..n)
        .map(|i| (Prefix::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 32).expect("p"), attrs.clone()))
        .collect();
    let t = Instant::now();
    let mut rib = AdjRibOut::new();
    rib.set_routes(&routes);
    rib.reset(&peer);
    eprintln!("set_routes+reset: {:?}", t.elapsed());
    let t = Instant::now();
    let mut updates = Vec::new();
    while let Some(u) = rib.poll_update(&peer) {
        updates.push(u);
    }
    eprintln!("poll_update x{}: {:?}", updates.len(), t.elapsed());
    let t = Instant::now();
    let mut out = BytesMut::with_capacity(6_000_000);
    let ctx = Context { four_octet_asn: true, extended_messages: false };
    for u in updates {
        Message::Update(Box::new(u)).encode(&ctx, &mut out);
    }
    eprintln!("encode {} bytes: {:?}", out.len(), t.elapsed());
    let t = Instant::now();
    drop(rib);
    eprintln!("drop: {:?}", t.elapsed());
}
