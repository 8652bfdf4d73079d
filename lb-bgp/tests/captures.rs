//! Messages captured from BIRD 2, GoBGP and FRR (see fixtures/README.md):
//! every one decodes, re-encodes to an equal message, and says what the
//! routers were configured to say.

use std::net::Ipv4Addr;

use bytes::BytesMut;
use lb_bgp::wire::open::Capability;
use lb_bgp::wire::{CeaseSubcode, Context, Framer, Message, NotificationError, Prefix};

fn messages(file: &str) -> Vec<Message> {
    let path = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
    let hex = std::fs::read_to_string(&path).expect("fixture");
    let hex = hex.trim();
    let bytes: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect();
    let ctx = Context { four_octet_asn: true, extended_messages: false };
    let mut framer = Framer::new();
    framer.push(&bytes);
    let mut out = Vec::new();
    while let Some(frame) = framer.next_frame(&ctx) {
        let frame = frame.expect("valid frame");
        let msg = Message::decode(&frame, &ctx).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut again = BytesMut::new();
        msg.encode(&ctx, &mut again);
        assert_eq!(Message::decode(&again, &ctx).as_ref(), Ok(&msg), "{file}: re-encoding changes {msg:?}");
        out.push(msg);
    }
    assert_eq!(framer.buffered(), 0, "{file}: trailing bytes");
    out
}

fn prefix(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').expect("prefix");
    Prefix::new(a.parse().expect("addr"), l.parse().expect("len")).expect("valid")
}

#[test]
fn bird_speaks_as_configured() {
    for file in ["bird-to-gobgp.hex", "bird-to-frr.hex"] {
        let msgs = messages(file);
        let Some(Message::Open(open)) = msgs.first() else { panic!("{file}: starts with OPEN") };
        assert_eq!((open.asn(), open.hold_time, open.bgp_id), (64512, 9, Ipv4Addr::new(192, 0, 2, 1)));
        assert!(open.has(&Capability::FourOctetAsn(64512)));
        let updates: Vec<_> = msgs
            .iter()
            .filter_map(|m| match m {
                Message::Update(u) => Some(u),
                _ => None,
            })
            .collect();
        let v4 = updates.iter().find(|u| !u.nlri.is_empty()).expect("an IPv4 announcement");
        assert_eq!(v4.nlri, [prefix("203.0.113.11/32"), prefix("203.0.113.10/32")]);
        assert_eq!(v4.attributes.communities, [(65000 << 16) | 100]);
        assert_eq!(v4.attributes.large_communities, [[64512, 1, 2]]);
        assert_eq!(v4.attributes.next_hop, Some(Ipv4Addr::new(192, 0, 2, 1)));
        let v6 = updates.iter().find_map(|u| u.attributes.mp_reach.as_ref()).expect("an IPv6 announcement");
        assert_eq!(v6.nlri, [prefix("2001:db8:1::10/128")]);
        let Some(Message::Notification(n)) = msgs.last() else { panic!("{file}: ends with NOTIFICATION") };
        assert_eq!(
            (n.error, n.shutdown_message()),
            (NotificationError::Cease(CeaseSubcode::AdministrativeShutdown), Some("capture done"))
        );
    }
}

#[test]
fn gobgp_and_frr_decode() {
    for file in ["gobgp-to-bird.hex", "frr-to-bird.hex"] {
        let msgs = messages(file);
        let Some(Message::Open(open)) = msgs.first() else { panic!("{file}: starts with OPEN") };
        assert_eq!((open.asn(), open.bgp_id), (64513, Ipv4Addr::new(192, 0, 2, 2)));
        let announced = msgs.iter().any(|m| matches!(m, Message::Update(u) if u.nlri == [prefix("198.51.100.0/24")]));
        assert!(announced, "{file}: announces 198.51.100.0/24: {msgs:?}");
        assert!(msgs.iter().any(|m| matches!(m, Message::Keepalive)));
    }
}

/// Our encoder writes KEEPALIVE and NOTIFICATION back byte for byte, and
/// UPDATEs too where the router chose the canonical form. BIRD and FRR put
/// MP_REACH_NLRI first with a 2-octet length, FRR gives AS_PATH a 2-octet
/// length, and BIRD and GoBGP pack all capabilities in one OPEN parameter:
/// all valid, all decoded, written back in our one canonical form.
#[test]
fn byte_exact_where_the_encoding_is_canonical() {
    let ctx = Context { four_octet_asn: true, extended_messages: false };
    let mut exact_updates = 0;
    for file in ["bird-to-gobgp.hex", "bird-to-frr.hex", "gobgp-to-bird.hex", "frr-to-bird.hex"] {
        let path = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
        let hex = std::fs::read_to_string(&path).expect("fixture");
        let hex = hex.trim();
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect();
        let mut framer = Framer::new();
        framer.push(&bytes);
        while let Some(frame) = framer.next_frame(&ctx) {
            let frame = frame.expect("frame");
            let msg = Message::decode(&frame, &ctx).expect("valid");
            let mut again = BytesMut::new();
            msg.encode(&ctx, &mut again);
            let exact = again.as_ref() == frame.as_ref();
            match frame[18] {
                3 | 4 => assert!(exact, "{file}: {msg:?}"),
                2 => exact_updates += usize::from(exact),
                _ => {}
            }
        }
    }
    assert!(exact_updates >= 3, "{exact_updates}");
}
