//! Whole frames built by hand from the RFC layouts.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;
use crate::wire::ndp::NdpRepr;
use crate::wire::{Operation, solicited_node, solicited_node_mac};

const HOST_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const LB_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x10]);
const HOST_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const LB_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
const SN_LB: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 0x0010);

/// who-has 192.0.2.10 tell 192.0.2.1, broadcast, padded to 60 bytes.
static ARP_REQUEST: [u8; 60] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, // Ethernet
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet/IPv4, request
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 192, 0, 2, 1, // sender
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 192, 0, 2, 10, // target
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
];

/// NS for 2001:db8::10 from 2001:db8::1 to ff02::1:ff00:10, with a source link-layer option.
static NS: [u8; 86] = [
    0x33, 0x33, 0xff, 0x00, 0x00, 0x10, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, // Ethernet
    0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, // IPv6: payload 32, ICMPv6, hop limit 255
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // src
    0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0x00, 0x00, 0x10, // dst
    0x87, 0x00, 0x1c, 0x0b, 0x00, 0x00, 0x00, 0x00, // NS, code 0, checksum, reserved
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // target
    0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // source link-layer address
];

/// DAD NS for 2001:db8::10 from :: to ff02::1:ff00:10, no options.
static DAD_NS: [u8; 78] = [
    0x33, 0x33, 0xff, 0x00, 0x00, 0x10, 0x02, 0x00, 0x00, 0x00, 0x00, 0x10, 0x86, 0xdd, // Ethernet
    0x60, 0x00, 0x00, 0x00, 0x00, 0x18, 0x3a, 0xff, // IPv6: payload 24
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ::
    0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0x00, 0x00, 0x10, // dst
    0x87, 0x00, 0x4c, 0xcf, 0x00, 0x00, 0x00, 0x00, // NS
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // target
];

/// Solicited, override NA for 2001:db8::10 at 02:00:00:00:00:10, to 2001:db8::1.
static NA: [u8; 86] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x10, 0x86, 0xdd, // Ethernet
    0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, // IPv6
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // src
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // dst
    0x88, 0x00, 0x8a, 0x47, 0x60, 0x00, 0x00, 0x00, // NA, S and O
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // target
    0x02, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x10, // target link-layer address
];

/// Offsets into the frames above.
const ICMP: usize = 14 + 40;
const HOP: usize = 14 + 7;

/// RFC 1071 sum written independently of the crate: 16-bit words of the
/// pseudo-header and the message, end-around carry, complement.
fn reference_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut data = Vec::new();
    data.extend_from_slice(&src.octets());
    data.extend_from_slice(&dst.octets());
    data.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    data.extend_from_slice(&[0, 0, 0, 58]);
    data.extend_from_slice(icmp);
    if data.len() % 2 == 1 {
        data.push(0);
    }
    let mut sum: u64 = data.chunks(2).map(|w| u64::from(w[0]) << 8 | u64::from(w[1])).sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn with_zero_checksum(frame: &[u8]) -> Vec<u8> {
    let mut icmp = frame[ICMP..].to_vec();
    icmp[2] = 0;
    icmp[3] = 0;
    icmp
}

/// Recomputes the checksum after a test edits a frame, so the edit is what fails.
fn refill(frame: &mut [u8]) {
    let p = Ipv6Packet::new_checked(&frame[14..]).unwrap();
    let (src, dst) = (p.src(), p.dst());
    let mut icmp = crate::wire::NdpPacket::new_unchecked(&mut frame[ICMP..]);
    icmp.fill_checksum(src, dst);
}

fn ns() -> Ipv6NdpRepr {
    Ipv6NdpRepr {
        src: HOST_IP6,
        dst: SN_LB,
        hop_limit: 255,
        message: NdpRepr::NeighborSolicit { target: LB_IP6, source_ll: Some(HOST_MAC) },
    }
}

fn dad() -> Ipv6NdpRepr {
    Ipv6NdpRepr {
        src: Ipv6Addr::UNSPECIFIED,
        dst: SN_LB,
        hop_limit: 255,
        message: NdpRepr::NeighborSolicit { target: LB_IP6, source_ll: None },
    }
}

fn na() -> Ipv6NdpRepr {
    Ipv6NdpRepr {
        src: LB_IP6,
        dst: HOST_IP6,
        hop_limit: 255,
        message: NdpRepr::NeighborAdvert {
            router: false,
            solicited: true,
            override_flag: true,
            target: LB_IP6,
            target_ll: Some(LB_MAC),
        },
    }
}

#[test]
fn static_checksums_are_right() {
    assert_eq!(reference_checksum(HOST_IP6, SN_LB, &with_zero_checksum(&NS)), 0x1c0b);
    assert_eq!(reference_checksum(Ipv6Addr::UNSPECIFIED, SN_LB, &with_zero_checksum(&DAD_NS)), 0x4ccf);
    assert_eq!(reference_checksum(LB_IP6, HOST_IP6, &with_zero_checksum(&NA)), 0x8a47);
    // The crate's function agrees, and gives 0 over a correct message.
    assert_eq!(crate::wire::icmpv6_checksum(HOST_IP6, SN_LB, &with_zero_checksum(&NS)), 0x1c0b);
    assert_eq!(crate::wire::icmpv6_checksum(HOST_IP6, SN_LB, &NS[ICMP..]), 0);
}

#[test]
fn solicited_node_of_target() {
    assert_eq!(solicited_node(LB_IP6), SN_LB);
    assert_eq!(solicited_node_mac(LB_IP6), MacAddr(NS[0..6].try_into().unwrap()));
}

#[test]
fn parse_arp_request() {
    let f = Frame::parse(&ARP_REQUEST).unwrap();
    assert_eq!(f.ethernet, EthernetRepr { dst: MacAddr::BROADCAST, src: HOST_MAC, ethertype: EtherType::Arp });
    assert_eq!(
        f.body,
        FrameBody::Arp(ArpRepr {
            operation: Operation::Request,
            sender_mac: HOST_MAC,
            sender_ip: Ipv4Addr::new(192, 0, 2, 1),
            target_mac: MacAddr::ZERO,
            target_ip: Ipv4Addr::new(192, 0, 2, 10),
        })
    );
    // Unpadded (as read from a socket before padding) parses the same.
    assert_eq!(Frame::parse(&ARP_REQUEST[..42]), Ok(f));
}

#[test]
fn emit_arp_request() {
    let FrameBody::Arp(arp) = Frame::parse(&ARP_REQUEST).unwrap().body else { panic!("not ARP") };
    assert_eq!(arp_frame(MacAddr::BROADCAST, HOST_MAC, &arp), ARP_REQUEST);
}

#[test]
fn arp_reply_for_request() {
    let FrameBody::Arp(req) = Frame::parse(&ARP_REQUEST).unwrap().body else { panic!("not ARP") };
    let reply = ArpRepr {
        operation: Operation::Reply,
        sender_mac: LB_MAC,
        sender_ip: req.target_ip,
        target_mac: req.sender_mac,
        target_ip: req.sender_ip,
    };
    let bytes = arp_frame(req.sender_mac, LB_MAC, &reply);
    assert_eq!(bytes.len(), MIN_FRAME_LEN);
    assert_eq!(&bytes[20..22], &[0, 2]);
    assert_eq!(Frame::parse(&bytes).unwrap().body, FrameBody::Arp(reply));
}

#[test]
fn parse_and_emit_ns() {
    let f = Frame::parse(&NS).unwrap();
    assert_eq!(f.ethernet.dst, solicited_node_mac(LB_IP6));
    assert_eq!(f.body, FrameBody::Ndp(ns()));
    assert_eq!(ndp_frame(solicited_node_mac(LB_IP6), HOST_MAC, &ns()), NS);
}

#[test]
fn parse_and_emit_dad_ns() {
    assert_eq!(Frame::parse(&DAD_NS).unwrap().body, FrameBody::Ndp(dad()));
    assert_eq!(ndp_frame(solicited_node_mac(LB_IP6), LB_MAC, &dad()), DAD_NS);
}

#[test]
fn parse_and_emit_na() {
    assert_eq!(Frame::parse(&NA).unwrap().body, FrameBody::Ndp(na()));
    assert_eq!(ndp_frame(HOST_MAC, LB_MAC, &na()), NA);
}

#[test]
fn ns_checks() {
    let mut b = NS;
    b[HOP] = 254;
    assert_eq!(Frame::parse(&b), Err(WireError::HopLimit(254)));

    let mut b = NS;
    b[ICMP + 2] ^= 1;
    assert_eq!(Frame::parse(&b), Err(WireError::Checksum));

    let mut b = NS;
    b[ICMP + 1] = 1;
    refill(&mut b);
    assert_eq!(Frame::parse(&b), Err(WireError::IcmpCode(1)));

    let mut b = NS;
    b[ICMP + 8] = 0xff; // target ff01:db8::10
    refill(&mut b);
    assert_eq!(Frame::parse(&b), Err(WireError::MulticastTarget));

    let mut b = NS;
    b[ICMP + 25] = 0; // option length 0
    refill(&mut b);
    assert_eq!(Frame::parse(&b), Err(WireError::OptionZeroLength));

    let mut b = NS;
    b[ICMP + 25] = 2; // option claims 16 bytes, 8 remain
    refill(&mut b);
    assert_eq!(Frame::parse(&b), Err(WireError::OptionTruncated));

    // DAD with a source link-layer option: NS with src ::.
    let mut b = NS;
    b[22..38].fill(0);
    refill(&mut b);
    assert_eq!(Frame::parse(&b), Err(WireError::UnspecifiedSourceWithLinkLayer));

    // DAD to a destination that is not solicited-node.
    let mut b = DAD_NS;
    b[38..54].copy_from_slice(&LB_IP6.octets());
    refill(&mut b);
    assert_eq!(Frame::parse(&b), Err(WireError::UnspecifiedSourceNotSolicitedNode));

    // ICMP shorter than 24 octets.
    let mut b = DAD_NS[..70].to_vec();
    b[19] = 16;
    assert_eq!(Frame::parse(&b), Err(WireError::Truncated));

    // IPv6 payload length past the frame.
    let mut b = NS;
    b[19] = 0x40;
    assert_eq!(Frame::parse(&b), Err(WireError::Truncated));
}

#[test]
fn na_checks() {
    // Solicited NA to all-nodes.
    let mut b = NA;
    b[38..54].copy_from_slice(&Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).octets());
    refill(&mut b);
    assert_eq!(Frame::parse(&b), Err(WireError::SolicitedToMulticast));
    // Unsolicited NA to all-nodes is fine.
    b[ICMP + 4] = 0x20;
    refill(&mut b);
    let FrameBody::Ndp(n) = Frame::parse(&b).unwrap().body else { panic!("not NDP") };
    assert!(matches!(n.message, NdpRepr::NeighborAdvert { solicited: false, override_flag: true, .. }));
}

#[test]
fn unknown_options_skipped() {
    // NS with a nonce option (type 14, length 1) before the source link-layer option.
    let mut b = NS[..ICMP + 24].to_vec();
    b.extend_from_slice(&[14, 1, 1, 2, 3, 4, 5, 6]);
    b.extend_from_slice(&NS[ICMP + 24..]);
    b[19] = 40;
    refill(&mut b);
    assert_eq!(Frame::parse(&b).unwrap().body, FrameBody::Ndp(ns()));
}

#[test]
fn other_bodies() {
    let mut b = ARP_REQUEST;
    b[12] = 0x08;
    b[13] = 0x00;
    assert_eq!(Frame::parse(&b).unwrap().body, FrameBody::Other(EtherType::Ipv4));
    // IPv6 carrying UDP.
    let mut b = NS;
    b[20] = 17;
    assert_eq!(Frame::parse(&b).unwrap().body, FrameBody::Other(EtherType::Ipv6));
    // ICMPv6 echo request.
    let mut b = NS;
    b[ICMP] = 128;
    assert_eq!(Frame::parse(&b).unwrap().body, FrameBody::Other(EtherType::Ipv6));
    assert_eq!(Frame::parse(&NS[..10]), Err(WireError::Truncated));
    let mut b = ARP_REQUEST;
    b[15] = 6;
    assert_eq!(Frame::parse(&b), Err(WireError::ArpHardwareType(6)));
}

/// Gratuitous ARP for 192.0.2.10 at 02:00:00:00:00:10, broadcast.
static ARP_ANNOUNCEMENT: [u8; 60] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x10, 0x08, 0x06, // Ethernet
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet/IPv4, request
    0x02, 0x00, 0x00, 0x00, 0x00, 0x10, 192, 0, 2, 10, // sender
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 192, 0, 2, 10, // target: the same address
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
];

#[test]
fn gratuitous_arp() {
    let g = ArpRepr::announcement(LB_MAC, Ipv4Addr::new(192, 0, 2, 10));
    assert_eq!(arp_frame(MacAddr::BROADCAST, LB_MAC, &g), ARP_ANNOUNCEMENT);
    assert_eq!(Frame::parse(&ARP_ANNOUNCEMENT).unwrap().body, FrameBody::Arp(g));
}

#[test]
fn unsolicited_na() {
    let na = Ipv6NdpRepr::unsolicited_advert(LB_MAC, LB_IP6);
    let all_nodes_mac = MacAddr::from_ipv6_multicast(crate::wire::ALL_NODES);
    assert_eq!(all_nodes_mac, MacAddr([0x33, 0x33, 0, 0, 0, 1]));
    let bytes = ndp_frame(all_nodes_mac, LB_MAC, &na);
    // Same as the solicited NA but for destination, S flag and checksum.
    let mut expected = NA;
    expected[0..6].copy_from_slice(&all_nodes_mac.0);
    expected[38..54].copy_from_slice(&crate::wire::ALL_NODES.octets());
    expected[ICMP + 4] = 0x20;
    expected[ICMP + 2..ICMP + 4].fill(0);
    let c = reference_checksum(LB_IP6, crate::wire::ALL_NODES, &expected[ICMP..]);
    expected[ICMP + 2..ICMP + 4].copy_from_slice(&c.to_be_bytes());
    assert_eq!(bytes, expected);
    assert_eq!(Frame::parse(&bytes).unwrap().body, FrameBody::Ndp(na));
}

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn unicast6() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 16]>().prop_map(|mut o| {
        if o[0] == 0xff {
            o[0] = 0xfe;
        }
        Ipv6Addr::from(o)
    })
}

/// Valid NS/NA: everything parse would accept.
fn ndp() -> impl Strategy<Value = Ipv6NdpRepr> {
    let ns = (unicast6(), any::<bool>(), unicast6(), proptest::option::of(mac()), any::<[u8; 16]>()).prop_map(
        |(src, dad, target, source_ll, dst)| {
            if dad {
                Ipv6NdpRepr {
                    src: Ipv6Addr::UNSPECIFIED,
                    dst: solicited_node(target),
                    hop_limit: 255,
                    message: NdpRepr::NeighborSolicit { target, source_ll: None },
                }
            } else {
                Ipv6NdpRepr {
                    src,
                    dst: dst.into(),
                    hop_limit: 255,
                    message: NdpRepr::NeighborSolicit { target, source_ll },
                }
            }
        },
    );
    let na = (unicast6(), any::<[u8; 16]>(), any::<[bool; 3]>(), unicast6(), proptest::option::of(mac())).prop_map(
        |(src, dst, [router, solicited, override_flag], target, target_ll)| {
            let dst = Ipv6Addr::from(dst);
            Ipv6NdpRepr {
                src,
                dst,
                hop_limit: 255,
                message: NdpRepr::NeighborAdvert {
                    router,
                    solicited: solicited && !dst.is_multicast(),
                    override_flag,
                    target,
                    target_ll,
                },
            }
        },
    );
    prop_oneof![ns, na]
}

fn arp() -> impl Strategy<Value = ArpRepr> {
    (any::<u16>(), mac(), any::<[u8; 4]>(), mac(), any::<[u8; 4]>()).prop_map(|(op, sm, si, tm, ti)| ArpRepr {
        operation: Operation::from(op),
        sender_mac: sm,
        sender_ip: si.into(),
        target_mac: tm,
        target_ip: ti.into(),
    })
}

proptest! {
    #[test]
    fn ndp_round_trip(n in ndp(), dst in mac(), src in mac()) {
        let bytes = ndp_frame(dst, src, &n);
        let f = Frame::parse(&bytes).unwrap();
        prop_assert_eq!(f.body, FrameBody::Ndp(n));
        prop_assert_eq!(f.ethernet, EthernetRepr { dst, src, ethertype: EtherType::Ipv6 });
        prop_assert_eq!(f.emit(), bytes);
    }

    #[test]
    fn arp_round_trip(a in arp(), dst in mac(), src in mac()) {
        let bytes = arp_frame(dst, src, &a);
        let f = Frame::parse(&bytes).unwrap();
        prop_assert_eq!(f.body, FrameBody::Arp(a));
        prop_assert_eq!(f.emit(), bytes);
    }

    #[test]
    fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        if let Ok(f) = Frame::parse(&bytes) && !matches!(f.body, FrameBody::Other(_)) {
            prop_assert_eq!(Frame::parse(&f.emit()), Ok(f));
        }
    }

    /// Mutations of real frames reach the deeper checks that random bytes rarely do.
    #[test]
    fn mutated_frames_never_panic(which in 0usize..4, edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6), cut in any::<usize>()) {
        let mut b = [&ARP_REQUEST[..], &NS[..], &DAD_NS[..], &NA[..]][which].to_vec();
        for (at, v) in edits {
            let i = at % b.len();
            b[i] = v;
        }
        b.truncate(cut % (b.len() + 1));
        if let Ok(f) = Frame::parse(&b) && !matches!(f.body, FrameBody::Other(_)) {
            prop_assert_eq!(Frame::parse(&f.emit()), Ok(f));
        }
    }
}
