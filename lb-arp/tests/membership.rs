//! SWIM membership among simulated speakers: virtual time, a LAN with
//! latency, loss and partitions, datagrams only between the instances.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lb_arp::membership::{GossipKey, Membership, MembershipConfig, MembershipEvent, Timing};
use lb_core::l2::Interfaces;

/// (deliver at, sequence, from, to, datagram)
type InFlight = (Instant, u64, usize, usize, Vec<u8>);

struct Net {
    start: Instant,
    now: Instant,
    nodes: Vec<Option<Membership>>,
    addrs: Vec<SocketAddr>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    latency: Duration,
    /// Per mille of datagrams lost.
    loss: u32,
    cut: BTreeSet<usize>,
    rng: u64,
    events: Vec<(Duration, usize, MembershipEvent)>,
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1 + u8::try_from(i).expect("few")], 7946))
}

fn config(i: usize, n: usize, started: u64, key: Option<&[u8]>) -> MembershipConfig {
    MembershipConfig {
        name: format!("node-{i}"),
        addr: addr(i),
        seeds: (0..n).map(addr).collect(),
        key: key.map(GossipKey::new),
        timing: Timing::default(),
        started,
        rng_seed: started ^ (i as u64) << 32,
    }
}

impl Net {
    fn new(n: usize) -> Self {
        let start = Instant::now();
        let mut net = Net {
            start,
            now: start,
            nodes: Vec::new(),
            addrs: (0..n).map(addr).collect(),
            queue: BinaryHeap::new(),
            seq: 0,
            latency: Duration::from_micros(200),
            loss: 0,
            cut: BTreeSet::new(),
            rng: 0x9e37_79b9_7f4a_7c15,
            events: Vec::new(),
        };
        for i in 0..n {
            net.boot(i, 1_000_000, None);
        }
        net
    }

    fn boot(&mut self, i: usize, started: u64, key: Option<&[u8]>) {
        let mut m = Membership::new(config(i, self.addrs.len(), started, key));
        m.start(self.now);
        if self.nodes.len() <= i {
            self.nodes.resize_with(i + 1, || None);
        }
        self.nodes[i] = Some(m);
        self.flush(i);
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn flush(&mut self, i: usize) {
        let Some(m) = self.nodes[i].as_mut() else { return };
        let mut out = Vec::new();
        while let Some(t) = m.poll_transmit() {
            out.push(t);
        }
        while let Some(e) = m.poll_event() {
            self.events.push((self.now - self.start, i, e));
        }
        for t in out {
            let Some(to) = self.addrs.iter().position(|a| *a == t.to) else { continue };
            if self.cut.contains(&i) != self.cut.contains(&to) {
                continue;
            }
            if self.random() % 1000 < u64::from(self.loss) {
                continue;
            }
            self.seq += 1;
            self.queue.push(Reverse((self.now + self.latency, self.seq, i, to, t.data)));
        }
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next_dgram = self.queue.peek().map(|Reverse((at, ..))| *at);
            let next_timer = self.nodes.iter().flatten().filter_map(Membership::poll_timeout).min();
            let Some(next) = [next_dgram, next_timer].into_iter().flatten().min() else { break };
            if next > end {
                break;
            }
            self.now = next;
            // Datagrams first, then timers (as the driver does).
            while let Some(Reverse((at, ..))) = self.queue.peek() {
                if *at > self.now {
                    break;
                }
                let Some(Reverse((_, _, from, to, data))) = self.queue.pop() else { break };
                if let Some(m) = self.nodes[to].as_mut() {
                    m.handle_datagram(self.now, self.addrs[from], &data);
                    self.flush(to);
                }
            }
            for i in 0..self.nodes.len() {
                if let Some(m) = self.nodes[i].as_mut()
                    && m.poll_timeout().is_some_and(|t| t <= self.now)
                {
                    m.handle_timeout(self.now);
                    self.flush(i);
                }
            }
        }
        self.now = end;
    }

    fn node(&self, i: usize) -> &Membership {
        self.nodes[i].as_ref().expect("running")
    }

    fn live(&self, i: usize) -> Vec<String> {
        self.node(i).live().into_iter().collect()
    }

    fn first(&self, since: Duration, pred: impl Fn(usize, &MembershipEvent) -> bool) -> Option<Duration> {
        self.events.iter().filter(|(t, i, e)| *t >= since && pred(*i, e)).map(|(t, ..)| *t - since).min()
    }
}

fn names(n: &[usize]) -> Vec<String> {
    n.iter().map(|i| format!("node-{i}")).collect()
}

fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
    list.iter().map(|s| s.parse().expect("IP")).collect()
}

fn eth0() -> Interfaces {
    Interfaces { usable: BTreeSet::from(["eth0".to_string()]), default_usable: true }
}

#[test]
fn members_started_together_hear_each_other_before_claiming() {
    let mut net = Net::new(3);
    net.run_for(Duration::from_secs(1));
    for i in 0..3 {
        assert_eq!(net.live(i), names(&[0, 1, 2]), "node-{i}");
        assert!(net.node(i).is_ready());
    }
    let ready: Vec<_> = net
        .events
        .iter()
        .filter_map(|(_, i, e)| match e {
            MembershipEvent::Ready { heard_everyone, .. } => Some((*i, *heard_everyone)),
            _ => None,
        })
        .collect();
    assert_eq!(ready.len(), 3);
    assert!(ready.iter().all(|(_, heard)| *heard), "ready because everyone reported, not by the deadline: {ready:?}");
    // Claims and MACs travel.
    let now = net.now;
    if let Some(m) = net.nodes[0].as_mut() {
        m.set_local(now, ips(&["192.0.2.100", "2001:db8::100"]), eth0(), BTreeSet::from([[2, 0, 0, 0, 0, 1]]));
    }
    net.flush(0);
    net.run_for(Duration::from_millis(300));
    for i in 1..3 {
        let claims = net.node(i).claims();
        assert_eq!(
            claims.answering.get(&"192.0.2.100".parse().expect("IP")),
            Some(&BTreeSet::from(["node-0".to_string()]))
        );
        assert_eq!(claims.interfaces.get("node-0"), Some(&eth0()));
        assert_eq!(net.node(i).peer_macs(), BTreeSet::from([[2, 0, 0, 0, 0, 1]]));
    }
}

#[test]
fn members_started_moments_apart_find_each_other() {
    // node-1 and node-2 greet before node-0 listens: their first greetings are lost.
    let mut net = Net::new(0);
    net.addrs = (0..3).map(addr).collect();
    net.nodes.resize_with(3, || None);
    net.boot(1, 1_000_000, None);
    net.boot(2, 1_000_000, None);
    net.run_for(Duration::from_millis(50));
    net.boot(0, 1_000_000, None);
    net.run_for(Duration::from_secs(1));
    for i in 0..3 {
        assert_eq!(net.live(i), names(&[0, 1, 2]), "node-{i}");
    }
}

#[test]
fn a_dead_member_is_declared_down_well_inside_half_a_second_and_its_claims_dropped() {
    let mut net = Net::new(3);
    net.run_for(Duration::from_secs(1));
    let now = net.now;
    if let Some(m) = net.nodes[2].as_mut() {
        m.set_local(now, ips(&["192.0.2.100"]), eth0(), BTreeSet::new());
    }
    net.flush(2);
    net.run_for(Duration::from_millis(500));
    assert!(!net.node(0).claims().answering.is_empty());
    let mut worst = Duration::ZERO;
    for round in 0..20u64 {
        // Kill node-2 at a different phase of the probe cycle each time.
        net.run_for(Duration::from_millis(7 * round));
        let killed = net.now - net.start;
        net.nodes[2] = None;
        net.run_for(Duration::from_secs(2));
        for i in 0..2 {
            let t = net
                .first(killed, |n, e| n == i && matches!(e, MembershipEvent::MemberDown { name } if name == "node-2"))
                .expect("declared down");
            worst = worst.max(t);
            assert_eq!(net.live(i), names(&[0, 1]));
            assert!(net.node(i).claims().answering.is_empty(), "a dead member's claims are dropped");
        }
        net.boot(2, 2_000_000 + round * 1_000_000, None);
        net.run_for(Duration::from_secs(1));
        assert_eq!(net.live(0), names(&[0, 1, 2]), "restarted node-2 rejoins (round {round})");
    }
    // Virtual time: the protocol's own bound, not the machine's speed.
    assert!(worst < Duration::from_millis(500), "worst detection {worst:?}");
}

#[test]
fn a_restarted_member_hears_the_claims_of_the_others_before_it_is_ready() {
    let mut net = Net::new(3);
    net.run_for(Duration::from_secs(1));
    let now = net.now;
    if let Some(m) = net.nodes[1].as_mut() {
        m.set_local(now, ips(&["192.0.2.100"]), eth0(), BTreeSet::new());
    }
    net.flush(1);
    net.run_for(Duration::from_millis(300));
    net.nodes[0] = None;
    net.run_for(Duration::from_secs(1));
    net.boot(0, 5_000_000, None);
    let booted = net.now - net.start;
    net.run_for(Duration::from_secs(3));
    let ready = net.first(booted, |n, e| n == 0 && matches!(e, MembershipEvent::Ready { heard_everyone: true, .. }));
    assert!(
        ready.is_some(),
        "ready once everyone reported: {:?}",
        net.events.iter().filter(|(_, n, _)| *n == 0).collect::<Vec<_>>()
    );
    assert_eq!(
        net.node(0).claims().answering.get(&"192.0.2.100".parse().expect("IP")),
        Some(&BTreeSet::from(["node-1".to_string()]))
    );
}

#[test]
fn a_clean_leave_is_seen_at_once() {
    let mut net = Net::new(3);
    net.run_for(Duration::from_secs(1));
    let now = net.now;
    if let Some(m) = net.nodes[2].as_mut() {
        m.leave(now);
    }
    net.flush(2);
    let left = net.now - net.start;
    net.run_for(Duration::from_millis(200));
    for i in 0..2 {
        let t = net.first(left, |n, e| n == i && matches!(e, MembershipEvent::MemberDown { name } if name == "node-2"));
        assert!(t.is_some_and(|t| t < Duration::from_millis(10)), "node-{i}: {t:?}");
    }
}

#[test]
fn a_member_with_the_wrong_key_is_not_admitted_and_disturbs_nobody() {
    let mut net = Net::new(0);
    net.addrs = (0..3).map(addr).collect();
    net.boot(0, 1_000_000, Some(b"right"));
    net.boot(1, 1_000_000, Some(b"right"));
    net.boot(2, 1_000_000, Some(b"wrong"));
    net.run_for(Duration::from_secs(3));
    assert_eq!(net.live(0), names(&[0, 1]));
    assert_eq!(net.live(1), names(&[0, 1]));
    assert_eq!(net.live(2), names(&[2]));
    assert!(net.node(0).stats().unauthenticated > 0);
    assert!(net.node(2).stats().unauthenticated > 0);
    assert!(net.first(Duration::ZERO, |n, e| n < 2 && matches!(e, MembershipEvent::MemberDown { .. })).is_none());
    // The outsider hears only what it cannot verify: it claims nothing.
    assert!(net.node(0).is_ready() && net.node(1).is_ready());
    assert!(!net.node(2).is_ready(), "locked out");
    assert!(net.first(Duration::ZERO, |n, e| n == 2 && *e == MembershipEvent::KeyMismatch).is_some());
}

#[test]
fn a_healed_partition_joins_up_again() {
    let mut net = Net::new(3);
    net.run_for(Duration::from_secs(1));
    let now = net.now;
    if let Some(m) = net.nodes[0].as_mut() {
        m.set_local(now, ips(&["192.0.2.100"]), eth0(), BTreeSet::from([[2, 0, 0, 0, 0, 1]]));
    }
    net.flush(0);
    net.run_for(Duration::from_millis(300));
    net.cut.insert(0);
    net.run_for(Duration::from_secs(3));
    assert_eq!(net.live(0), names(&[0]));
    assert_eq!(net.live(1), names(&[1, 2]));
    // Across the partition the other side's MACs are still no conflict.
    assert!(net.node(1).peer_macs().contains(&[2, 0, 0, 0, 0, 1]), "node-0's MAC remembered");
    net.cut.clear();
    net.run_for(Duration::from_secs(3));
    for i in 0..3 {
        assert_eq!(net.live(i), names(&[0, 1, 2]), "node-{i} after the heal");
    }
}

#[test]
fn one_percent_loss_for_ten_minutes_accuses_nobody() {
    let mut net = Net::new(3);
    net.run_for(Duration::from_secs(1));
    net.loss = 10;
    let since = net.now - net.start;
    net.run_for(Duration::from_secs(600));
    let downs: Vec<_> =
        net.events.iter().filter(|(t, _, e)| *t >= since && matches!(e, MembershipEvent::MemberDown { .. })).collect();
    assert!(downs.is_empty(), "false accusations: {downs:?}");
}
