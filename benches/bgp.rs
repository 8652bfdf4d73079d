//! BGP codec cost, with baselines in the same run:
//! - `decode_1m_prefixes`: a stream of UPDATEs carrying 1,000,000 /32s,
//!   decoded by `lb-bgp`, by `bgpkit-parser`, and by a bare walk over the
//!   NLRI bytes (the floor: no decoder can do less);
//! - `encode_1m_prefixes`: the same routes from an empty Adj-RIB-Out;
//! - `table_100k`: sending a whole 100,000-route table beside a 1 % change
//!   of it (the change should cost about 1 % of the table).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use lb_bgp::adj_rib_out::{AdjRibOut, PeerContext, RouteAttributes};
use lb_bgp::wire::{Context, Framer, Message, Prefix};

const ROUTES: u32 = 1_000_000;

fn ctx() -> Context {
    Context { four_octet_asn: true, extended_messages: false }
}

fn peer() -> PeerContext {
    PeerContext {
        local_asn: 64512,
        ibgp: false,
        next_hop_v4: Some(Ipv4Addr::new(192, 0, 2, 1)),
        next_hop_v6: None,
        ipv4: true,
        ipv6: false,
        context: ctx(),
    }
}

fn prefix(i: u32) -> Prefix {
    // 10.0.0.0 onwards: a million distinct /32s.
    Prefix::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 32).expect("prefix")
}

fn table(n: u32) -> BTreeMap<Prefix, RouteAttributes> {
    let attrs = RouteAttributes { communities: vec![0xfde8_0001], ..Default::default() };
    (0..n).map(|i| (prefix(i), attrs.clone())).collect()
}

/// Encodes everything the Adj-RIB-Out has pending; returns the bytes.
fn drain(rib: &mut AdjRibOut, out: &mut BytesMut) -> usize {
    let p = peer();
    let mut n = 0;
    while let Some(u) = rib.poll_update(&p) {
        Message::Update(Box::new(u)).encode(&ctx(), out);
        n += 1;
    }
    n
}

/// An Adj-RIB-Out holding `routes`, all pending, no End-of-RIB owed.
fn loaded(routes: &BTreeMap<Prefix, RouteAttributes>) -> AdjRibOut {
    let mut rib = AdjRibOut::new();
    rib.set_routes(routes);
    rib.reset(&PeerContext { ipv4: false, ..peer() });
    rib
}

fn stream(n: u32) -> BytesMut {
    let mut rib = loaded(&table(n));
    let mut out = BytesMut::new();
    drain(&mut rib, &mut out);
    out
}

/// The floor: find each message and walk its NLRI, touching every prefix.
fn walk_nlri(mut stream: &[u8]) -> usize {
    let mut count = 0;
    while stream.len() >= 19 {
        let len = usize::from(u16::from_be_bytes([stream[16], stream[17]]));
        let body = &stream[19..len];
        let withdrawn = usize::from(u16::from_be_bytes([body[0], body[1]]));
        let attrs = usize::from(u16::from_be_bytes([body[2 + withdrawn], body[3 + withdrawn]]));
        let mut nlri = &body[4 + withdrawn + attrs..];
        while let [bits, rest @ ..] = nlri {
            let n = usize::from(*bits).div_ceil(8);
            count += usize::from(rest[n - 1]) & 1 | 1;
            nlri = &rest[n..];
        }
        stream = &stream[len..];
    }
    count
}

fn decode(c: &mut Criterion) {
    let bytes = stream(ROUTES);
    let frames: Vec<Bytes> = {
        let mut f = Framer::new();
        f.push(&bytes);
        std::iter::from_fn(|| f.next_frame(&ctx()).map(|r| r.expect("valid").freeze())).collect()
    };
    let mut group = c.benchmark_group("decode_1m_prefixes");
    group.sample_size(10).measurement_time(Duration::from_secs(5)).throughput(Throughput::Elements(u64::from(ROUTES)));
    group.bench_function("lb_bgp", |b| {
        b.iter(|| {
            let mut framer = Framer::new();
            framer.push(&bytes);
            let mut count = 0;
            while let Some(frame) = framer.next_frame(&ctx()) {
                if let Ok(Message::Update(u)) = Message::decode(&frame.expect("valid"), &ctx()) {
                    count += u.nlri.len();
                }
            }
            assert_eq!(count, ROUTES as usize);
            count
        })
    });
    group.bench_function("bgpkit_parser", |b| {
        b.iter(|| {
            let mut count = 0;
            for frame in &frames {
                let mut data = frame.clone();
                let msg = bgpkit_parser::parser::bgp::parse_bgp_message(
                    &mut data,
                    false,
                    &bgpkit_parser::models::AsnLength::Bits32,
                )
                .expect("valid");
                if let bgpkit_parser::models::BgpMessage::Update(u) = msg {
                    count += u.announced_prefixes.len();
                }
            }
            assert_eq!(count, ROUTES as usize);
            count
        })
    });
    group.bench_function("bare_nlri_walk", |b| b.iter(|| black_box(walk_nlri(black_box(&bytes)))));
    group.finish();
}

fn encode(c: &mut Criterion) {
    let routes = table(ROUTES);
    let mut group = c.benchmark_group("encode_1m_prefixes");
    group.sample_size(10).measurement_time(Duration::from_secs(5)).throughput(Throughput::Elements(u64::from(ROUTES)));
    group.bench_function("lb_bgp_adj_rib_out", |b| {
        b.iter_batched(
            || loaded(&routes),
            |mut rib| {
                let mut out = BytesMut::with_capacity(6_000_000);
                drain(&mut rib, &mut out);
                // Returned, so that freeing the table is not timed.
                (rib, out)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn change(c: &mut Criterion) {
    const N: u32 = 100_000;
    let routes = table(N);
    let changed = RouteAttributes { communities: vec![0xfde8_0002], ..Default::default() };
    let mut group = c.benchmark_group("table_100k");
    group.sample_size(20).measurement_time(Duration::from_secs(5));
    group.bench_function("full_table", |b| {
        b.iter_batched(
            || loaded(&routes),
            |mut rib| {
                let mut out = BytesMut::with_capacity(600_000);
                drain(&mut rib, &mut out);
                (rib, out)
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("one_percent_change", |b| {
        b.iter_batched(
            || {
                let mut rib = loaded(&routes);
                drain(&mut rib, &mut BytesMut::new());
                rib
            },
            |mut rib| {
                // 1 %: every hundredth route changes its community.
                for i in (0..N).step_by(100) {
                    rib.set_route(prefix(i), Some(changed.clone()));
                }
                let mut out = BytesMut::with_capacity(10_000);
                drain(&mut rib, &mut out);
                (rib, out)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, decode, encode, change);
criterion_main!(benches);
