//! Properties of the wire codec: what is encoded decodes to itself, and no
//! byte stream makes the decoder panic.

use std::net::Ipv4Addr;

use bytes::BytesMut;
use lb_bgp::wire::open::{Capability, RestartFamily};
use lb_bgp::wire::update::{Aggregator, AsSegment, Attributes, MpReach, MpUnreach, Origin, RawAttribute};
use lb_bgp::wire::{
    Afi, Context, Framer, Message, Notification, NotificationError, Open, Prefix, RouteRefresh, Safi, Update,
};
use proptest::prelude::*;

fn capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        (any::<u16>(), any::<u8>())
            .prop_map(|(afi, safi)| Capability::Multiprotocol { afi: afi.into(), safi: safi.into() }),
        Just(Capability::RouteRefresh),
        Just(Capability::EnhancedRouteRefresh),
        Just(Capability::ExtendedMessage),
        any::<u32>().prop_map(Capability::FourOctetAsn),
        (0u8..16, 0u16..4096, proptest::collection::vec((any::<u16>(), any::<u8>(), any::<u8>()), 0..4)).prop_map(
            |(flags, time, fams)| Capability::GracefulRestart {
                flags,
                time,
                families: fams
                    .into_iter()
                    .map(|(afi, safi, flags)| RestartFamily { afi: afi.into(), safi: safi.into(), flags })
                    .collect(),
            }
        ),
        // Codes this crate does not interpret.
        (100u8..=255, proptest::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(code, value)| Capability::Unknown { code, value }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<u16>(),
            any::<u16>().prop_filter("1 and 2 are refused", |h| *h != 1 && *h != 2),
            1u32..,
            proptest::collection::vec(capability(), 0..8)
        )
            .prop_map(|(my_as, hold_time, id, capabilities)| Message::Open(Open {
                my_as,
                hold_time,
                bgp_id: Ipv4Addr::from(id),
                capabilities
            })),
        (any::<u8>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..100)).prop_map(|(code, subcode, data)| {
            Message::Notification(Notification::with_data(NotificationError::from_codes(code, subcode), data))
        }),
        Just(Message::Keepalive),
        // Any subtype: unknown ones survive the round trip too.
        (any::<u16>(), any::<u8>(), any::<u8>()).prop_map(|(afi, safi, subtype)| Message::RouteRefresh(RouteRefresh {
            afi: afi.into(),
            safi: safi.into(),
            subtype: subtype.into(),
        })),
    ]
}

fn v4_prefix() -> impl Strategy<Value = Prefix> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Prefix::new(std::net::IpAddr::V4(Ipv4Addr::from(a)), l).expect("len"))
}

fn v6_prefix() -> impl Strategy<Value = Prefix> {
    (any::<u128>(), 0u8..=128).prop_map(|(a, l)| Prefix::new(std::net::IpAddr::V6(a.into()), l).expect("len"))
}

fn segment() -> impl Strategy<Value = AsSegment> {
    (1u8..=4, proptest::collection::vec(any::<u32>(), 1..10)).prop_map(|(kind, asns)| match kind {
        1 => AsSegment::Set(asns),
        2 => AsSegment::Sequence(asns),
        3 => AsSegment::ConfedSequence(asns),
        _ => AsSegment::ConfedSet(asns),
    })
}

/// UPDATEs that are valid, so that decoding gives back exactly what was encoded.
fn update() -> impl Strategy<Value = Update> {
    let unicast = any::<u32>().prop_filter("a usable next hop", |a| {
        let ip = Ipv4Addr::from(*a);
        !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast())
    });
    (
        proptest::collection::vec(v4_prefix(), 0..20),
        proptest::collection::vec(v4_prefix(), 0..20),
        (
            prop_oneof![Just(Origin::Igp), Just(Origin::Egp), Just(Origin::Incomplete)],
            proptest::collection::vec(segment(), 0..3),
            unicast,
        ),
        (
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            any::<bool>(),
            proptest::option::of((any::<u32>(), any::<u32>())),
        ),
        (proptest::collection::vec(any::<u32>(), 0..10), proptest::collection::vec(any::<[u32; 3]>(), 0..5)),
        proptest::option::of((
            any::<u128>(),
            proptest::option::of(any::<u128>()),
            proptest::collection::vec(v6_prefix(), 0..10),
        )),
        proptest::option::of(proptest::collection::vec(v6_prefix(), 0..10)),
        proptest::collection::btree_map(
            100u8..=254,
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..30)),
            0..3,
        ),
    )
        .prop_map(
            |(
                withdrawn,
                nlri,
                (origin, path, nh),
                (med, local_pref, atomic_aggregate, agg),
                (communities, large_communities),
                reach,
                unreach,
                unknown,
            )| {
                Update {
                    withdrawn,
                    nlri,
                    attributes: Attributes {
                        origin: Some(origin),
                        as_path: Some(path),
                        next_hop: Some(Ipv4Addr::from(nh)),
                        med,
                        local_pref,
                        atomic_aggregate,
                        aggregator: agg.map(|(asn, a)| Aggregator { asn, address: Ipv4Addr::from(a) }),
                        communities,
                        large_communities,
                        mp_reach: reach.map(|(global, link_local, nlri)| MpReach {
                            afi: Afi::Ipv6,
                            safi: Safi::Unicast,
                            next_hops: std::iter::once(global)
                                .chain(link_local)
                                .map(|a| std::net::IpAddr::V6(a.into()))
                                .collect(),
                            nlri,
                        }),
                        mp_unreach: unreach.map(|withdrawn| MpUnreach {
                            afi: Afi::Ipv6,
                            safi: Safi::Unicast,
                            withdrawn,
                        }),
                        unknown: unknown
                            .into_iter()
                            .map(|(code, (transitive, value))| RawAttribute {
                                flags: if transitive { 0xc0 } else { 0x80 },
                                code,
                                value,
                            })
                            .collect(),
                    },
                }
            },
        )
}

proptest! {
    /// `encoded_len` is what `encode` writes, in every context: the
    /// Adj-RIB-Out sizes UPDATEs with it, so a wrong count makes messages
    /// too long for the peer (2-octet contexts add AS4_PATH and
    /// AS4_AGGREGATOR).
    #[test]
    fn encoded_len_is_what_encode_writes(
        mut u in update(),
        long in proptest::option::of((1u8..=4, proptest::collection::vec(any::<u32>(), 250..600))),
        other in message(),
        four_octet_asn in any::<bool>(),
        extended_messages in any::<bool>(),
    ) {
        // A segment of more than 255 ASNs takes several on the wire.
        if let (Some((kind, asns)), Some(path)) = (long, u.attributes.as_path.as_mut()) {
            path.push(match kind {
                1 => AsSegment::Set(asns),
                2 => AsSegment::Sequence(asns),
                3 => AsSegment::ConfedSequence(asns),
                _ => AsSegment::ConfedSet(asns),
            });
        }
        let ctx = Context { four_octet_asn, extended_messages };
        let mut out = BytesMut::new();
        u.attributes.encode(&ctx, &mut out);
        prop_assert_eq!(u.attributes.encoded_len(&ctx), out.len());
        out.clear();
        u.encode(&ctx, &mut out);
        prop_assert_eq!(u.encoded_len(&ctx), out.len());
        for msg in [Message::Update(Box::new(u)), other] {
            let mut out = BytesMut::new();
            msg.encode(&Context { extended_messages: true, ..ctx }, &mut out);
            prop_assert_eq!(msg.encoded_len(&Context { extended_messages: true, ..ctx }), out.len());
        }
    }

    #[test]
    fn updates_round_trip(u in update()) {
        let ctx = Context { four_octet_asn: true, extended_messages: true };
        let msg = Message::Update(Box::new(u));
        let mut out = BytesMut::new();
        msg.encode(&ctx, &mut out);
        prop_assert_eq!(Message::decode(&out, &ctx), Ok(msg));
    }

    #[test]
    fn encode_then_decode_is_identity(msg in message()) {
        let ctx = Context::default();
        let mut out = BytesMut::new();
        msg.encode(&ctx, &mut out);
        prop_assert_eq!(Message::decode(&out, &ctx), Ok(msg.clone()));
        // Through the framer, in two pieces.
        let mut framer = Framer::new();
        let cut = out.len() / 2;
        framer.push(&out[..cut]);
        prop_assert!(framer.next_frame(&ctx).is_none() || cut == out.len());
        framer.push(&out[cut..]);
        let frame = framer.next_frame(&ctx).expect("complete").expect("valid");
        prop_assert_eq!(Message::decode(&frame, &ctx), Ok(msg));
    }

    #[test]
    fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8), extended in any::<bool>()) {
        let ctx = Context { four_octet_asn: true, extended_messages: extended };
        let mut framer = Framer::new();
        for chunk in chunks {
            let _ = Message::decode(&chunk, &ctx);
            framer.push(&chunk);
            while let Some(frame) = framer.next_frame(&ctx) {
                match frame {
                    Ok(frame) => { let _ = Message::decode(&frame, &ctx); }
                    Err(e) => { let _ = e.notification(); framer.clear(); }
                }
            }
        }
    }

    /// Valid headers with arbitrary bodies: the interesting half of the input space.
    #[test]
    fn arbitrary_bodies_never_panic(kind in 1u8..=5, body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut frame = vec![0xff; 16];
        frame.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
        frame.push(kind);
        frame.extend_from_slice(&body);
        if let Err(e) = Message::decode(&frame, &Context::default()) {
            let n = e.notification();
            prop_assert!((1..=7).contains(&u8::from(n.code())));
        }
    }
}
