//! The gossip decoder fed arbitrary datagrams, with and without a key:
//! never a panic, and without the key nothing is admitted.
#![no_main]

use std::time::{Duration, Instant};

use lb_arp::membership::report::Report;
use lb_arp::membership::{GossipKey, Membership, MembershipConfig, Timing, envelope};
use libfuzzer_sys::fuzz_target;

fn member(key: Option<&[u8]>) -> Membership {
    Membership::new(MembershipConfig {
        name: "node-a".into(),
        addr: "192.0.2.1:7946".parse().expect("addr"),
        seeds: vec!["192.0.2.2:7946".parse().expect("addr")],
        key: key.map(GossipKey::new),
        timing: Timing::default(),
        started: 1,
        rng_seed: 1,
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = Report::decode(data);
    let start = Instant::now();
    let from = "192.0.2.2:7946".parse().expect("addr");
    // Unkeyed: the datagram as it is, and wrapped so foca's decoder sees it.
    let mut open = member(None);
    open.start(start);
    open.handle_datagram(start, from, data);
    open.handle_datagram(start, from, &envelope::seal(None, data));
    open.handle_timeout(start + Duration::from_secs(3));
    let _ = open.claims();
    // Keyed: nothing forged gets past the tag.
    let mut keyed = member(Some(b"key"));
    keyed.start(start);
    keyed.handle_datagram(start, from, data);
    keyed.handle_datagram(start, from, &envelope::seal(None, data));
    assert_eq!(keyed.members().len(), 0, "an unauthenticated datagram admitted a member");
    assert_eq!(keyed.stats().datagrams_received, keyed.stats().unauthenticated + keyed.stats().malformed);
});
