//! The layer 2 driver against the real tools: two namespaces joined by a
//! veth pair, the driver on its own thread in the "node" namespace,
//! `arping`, `ndisc6` and the kernel's neighbour table in the "client" one.
//!
//! The node's end of the pair is renamed `veth0`, a name MetalLB's default
//! exclusions cover: IPs whose advertisement names it are answered on it
//! anyway, IPs that name no interface are not. The node has no address of
//! its own in 192.0.2.0/24 or 2001:db8::/64: every answer comes from the
//! driver. Frames never leave the two namespaces.
//!
//! Waits are on the driver's events (it says when it has applied a
//! change); a "no answer" is the tool's own timeout.

mod support;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lb_arp::interfaces::{Exclusions, Unselectable};
use lb_arp::wire::MacAddr;
use lb_k8s::drivers::l2::{self, L2Config, L2Event, L2Handle, L2Status, Ownership};
use support::{Netns, output_with_timeout, wait_for};
use tokio::sync::{mpsc, watch};

const VIP4: &str = "192.0.2.10";
const VIP6: &str = "2001:db8::10";
const NODE_IF: &str = "veth0";

/// Two namespaces, the driver running in one of them; stopped and joined on
/// drop, before the namespaces are deleted.
struct Bed {
    client: Netns,
    client_if: String,
    node_mac: MacAddr,
    client_mac: MacAddr,
    desired: watch::Sender<Arc<Ownership>>,
    _peers: watch::Sender<Arc<BTreeSet<MacAddr>>>,
    stop: watch::Sender<bool>,
    handle: Option<L2Handle>,
    events: mpsc::Receiver<L2Event>,
    runtime: tokio::runtime::Runtime,
    node: Netns,
}

impl Drop for Bed {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn mac_of(ns: &Netns, ifname: &str) -> MacAddr {
    let out = ns.ip(&["-j", "link", "show", ifname]).expect("ip link");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let text = v[0]["address"].as_str().expect("address");
    let octets: Vec<u8> = text.split(':').map(|o| u8::from_str_radix(o, 16).expect("hex")).collect();
    MacAddr(octets.try_into().expect("6 octets"))
}

fn ips(entries: &[(&str, &[&str])]) -> Arc<Ownership> {
    Arc::new(
        entries
            .iter()
            .map(|(ip, ifs)| (ip.parse().expect("IP"), ifs.iter().map(ToString::to_string).collect()))
            .collect(),
    )
}

impl Bed {
    /// The namespaces, the link (node `veth0`, client with 192.0.2.1/24
    /// and 2001:db8::1/64) and the driver, owning nothing yet.
    fn new(exclusions: Exclusions) -> Self {
        let (node, client) = (Netns::new().expect("netns"), Netns::new().expect("netns"));
        let (node_if, client_if) =
            Netns::link(&node, &client, &[], &["192.0.2.1/24", "2001:db8::1/64"]).expect("veth pair");
        node.ip(&["link", "set", &node_if, "down"]).expect("down");
        node.ip(&["link", "set", &node_if, "name", NODE_IF]).expect("rename");
        node.ip(&["link", "set", NODE_IF, "up"]).expect("up");
        let (node_mac, client_mac) = (mac_of(&node, NODE_IF), mac_of(&client, &client_if));

        let (desired, desired_rx) = watch::channel(Arc::new(Ownership::new()));
        let (peers, peers_rx) = watch::channel(Arc::new(BTreeSet::new()));
        let (stop, stop_rx) = watch::channel(false);
        let mut config = L2Config::new(desired_rx, peers_rx, stop_rx);
        config.exclusions = exclusions;
        // The driver's thread inherits the namespace of the thread that spawns it.
        let mut handle = node.run(move || l2::spawn(config)).expect("driver");
        let events = handle.take_events().expect("events");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let mut bed = Self {
            client,
            client_if,
            node_mac,
            client_mac,
            desired,
            _peers: peers,
            stop,
            handle: Some(handle),
            events,
            runtime,
            node,
        };
        bed.wait_status("the first interface listing", |s| s.ready);
        bed
    }

    fn status(&self) -> Arc<L2Status> {
        self.handle.as_ref().expect("running").status()
    }

    /// Waits for the driver's status to satisfy `f`.
    fn wait_status(&mut self, what: &str, f: impl Fn(&L2Status) -> bool) -> Arc<L2Status> {
        let mut rx = self.handle.as_ref().expect("running").subscribe();
        let found = self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    let status = rx.borrow_and_update().clone();
                    if f(&status) {
                        return Some(status);
                    }
                    if rx.changed().await.is_err() {
                        return None;
                    }
                }
            })
            .await
        });
        found.ok().flatten().unwrap_or_else(|| panic!("{what}: status {:#?}", self.status()))
    }

    /// Waits for an event matching `f`, skipping others; the match.
    fn wait_event(&mut self, what: &str, f: impl Fn(&L2Event) -> bool) -> L2Event {
        let events = &mut self.events;
        let found = self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), async {
                let mut seen = Vec::new();
                while let Some(e) = events.recv().await {
                    if f(&e) {
                        return Ok(e);
                    }
                    seen.push(e);
                }
                Err(seen)
            })
            .await
        });
        match found {
            Ok(Ok(event)) => event,
            Ok(Err(seen)) => panic!("{what}: the driver stopped; events: {seen:#?}"),
            Err(_) => panic!("{what}: no such event within 10 s; status {:#?}", self.status()),
        }
    }

    /// Owns `entries` (replacing what was owned) and waits until the driver
    /// has applied it.
    fn own(&mut self, entries: &[(&str, &[&str])]) {
        let want = ips(entries);
        self.desired.send_replace(want.clone());
        self.wait_status("the new ownership", |s| {
            s.ips.keys().copied().collect::<BTreeSet<IpAddr>>() == want.keys().copied().collect()
        });
    }

    /// `arping -c COUNT -i IF IP` from the client: whether it was answered,
    /// and its output.
    fn arping(&self, ip: &str, count: u32) -> (bool, String) {
        let mut cmd = self.client.command("arping");
        cmd.args(["-c", &count.to_string(), "-i", &self.client_if, ip]);
        let out = output_with_timeout(&mut cmd, Duration::from_secs(20)).expect("arping");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    }

    /// `ndisc6 -r TRIES IP IF` from the client: whether it was answered, and its output.
    fn ndisc6(&self, ip: &str, tries: u32) -> (bool, String) {
        let mut cmd = self.client.command("ndisc6");
        cmd.args(["-r", &tries.to_string(), ip, &self.client_if]);
        let out = output_with_timeout(&mut cmd, Duration::from_secs(20)).expect("ndisc6");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    }

    fn assert_answered(&self, ip: &str) {
        let (ok, out) = if ip.contains(':') { self.ndisc6(ip, 2) } else { self.arping(ip, 3) };
        assert!(ok, "{ip} not answered: {out}");
        let mac = self.node_mac.to_string();
        assert!(out.to_lowercase().contains(&mac), "{ip} answered, but not from {mac}: {out}");
    }

    fn assert_unanswered(&self, ip: &str) {
        let (ok, out) = if ip.contains(':') { self.ndisc6(ip, 2) } else { self.arping(ip, 2) };
        assert!(!ok, "{ip} answered: {out}");
    }
}

/// Whether the node's `veth0` is in the Ethernet multicast group `mac`.
fn joined(node: &Netns, mac: &str) -> bool {
    node.ip(&["maddr", "show", "dev", NODE_IF]).expect("ip maddr").contains(mac)
}

#[test]
fn arping_and_ndisc6_are_answered_from_the_nodes_veth_for_owned_ips_only() {
    support::skip_unless_root!();
    let mut bed = Bed::new(Exclusions::default());
    bed.own(&[(VIP4, &[NODE_IF]), (VIP6, &[NODE_IF])]);
    let status = bed.status();
    assert_eq!(status.ips[&VIP4.parse::<IpAddr>().expect("IP")].interfaces, BTreeSet::from([NODE_IF.to_string()]));
    assert_eq!(status.interfaces[NODE_IF].mac, bed.node_mac);

    bed.assert_answered(VIP4);
    bed.assert_answered(VIP6);
    // The solicited-node group of 2001:db8::10 is joined on the interface.
    assert!(joined(&bed.node, "33:33:ff:00:00:10"));
    let counters =
        bed.wait_status("counted", |s| s.ips[&VIP4.parse::<IpAddr>().expect("IP")].counters.responses_sent >= 3);
    let c = counters.ips[&VIP4.parse::<IpAddr>().expect("IP")].counters;
    assert!(c.requests_received >= 3 && c.gratuitous_sent >= 2, "{c:?}");

    // Not ours: no answer.
    bed.assert_unanswered("192.0.2.99");
    bed.assert_unanswered("2001:db8::99");
}

#[test]
fn an_ip_removed_from_the_desired_set_is_no_longer_answered() {
    support::skip_unless_root!();
    let mut bed = Bed::new(Exclusions::default());
    // A third IP stays on the interface, so its socket stays open.
    let stays = "192.0.2.11";
    bed.own(&[(VIP4, &[NODE_IF]), (VIP6, &[NODE_IF]), (stays, &[NODE_IF])]);
    bed.assert_answered(VIP4);
    bed.own(&[(stays, &[NODE_IF])]);
    bed.wait_event("withdrawn", |e| matches!(e, L2Event::Withdrawn { ip } if ip.to_string() == VIP4));
    bed.assert_unanswered(VIP4);
    bed.assert_unanswered(VIP6);
    bed.assert_answered(stays);
    assert!(!joined(&bed.node, "33:33:ff:00:00:10"), "the solicited-node group is left");
}

#[test]
fn an_ip_naming_no_interface_is_not_answered_on_an_excluded_veth_unless_the_exclusions_allow_it() {
    support::skip_unless_root!();
    let mut bed = Bed::new(Exclusions::default());
    bed.own(&[(VIP4, &[])]);
    let event = bed.wait_event("announced", |e| matches!(e, L2Event::Announced { .. }));
    assert_eq!(event, L2Event::Announced { ip: VIP4.parse().expect("IP"), interfaces: BTreeSet::new() });
    bed.assert_unanswered(VIP4);
    drop(bed);

    let mut bed = Bed::new(Exclusions::none());
    bed.own(&[(VIP4, &[])]);
    bed.assert_answered(VIP4);
}

#[test]
fn a_link_that_goes_down_and_up_is_answered_on_again_without_a_restart() {
    support::skip_unless_root!();
    let mut bed = Bed::new(Exclusions::default());
    bed.own(&[(VIP4, &[NODE_IF]), (VIP6, &[NODE_IF])]);
    bed.assert_answered(VIP4);

    // The node's own end down, then up.
    bed.node.set_link(NODE_IF, false).expect("down");
    let down = bed.wait_event("down", |e| matches!(e, L2Event::InterfaceDown { .. }));
    assert_eq!(down, L2Event::InterfaceDown { interface: NODE_IF.to_string(), reason: Some(Unselectable::Down) });
    bed.wait_status("answered nowhere", |s| s.ips.values().all(|ip| ip.interfaces.is_empty()));
    bed.node.set_link(NODE_IF, true).expect("up");
    bed.wait_event("up", |e| matches!(e, L2Event::InterfaceUp { interface, .. } if interface == NODE_IF));
    bed.wait_status("answered again", |s| s.ips.values().all(|ip| !ip.interfaces.is_empty()));
    bed.assert_answered(VIP4);
    bed.assert_answered(VIP6);

    // Carrier loss: the client's end down takes the node's LOWER_UP away.
    let cut = Instant::now();
    bed.client.set_link(&bed.client_if, false).expect("client down");
    let down = bed.wait_event("no carrier", |e| matches!(e, L2Event::InterfaceDown { .. }));
    eprintln!("carrier loss seen {:?} after `ip link set down` returned", cut.elapsed());
    assert_eq!(down, L2Event::InterfaceDown { interface: NODE_IF.to_string(), reason: Some(Unselectable::NoCarrier) });
    bed.client.set_link(&bed.client_if, true).expect("client up");
    bed.wait_event("carrier back", |e| matches!(e, L2Event::InterfaceUp { .. }));
    bed.assert_answered(VIP4);
}

#[test]
fn the_clients_neighbour_table_learns_a_new_ip_from_the_gratuitous_arp_alone() {
    support::skip_unless_root!();
    let mut bed = Bed::new(Exclusions::default());
    // By default (arp_accept=0) Linux only updates neighbour entries it
    // already has from a gratuitous ARP; arp_accept=1 lets one create an
    // entry, which is how a router on the segment learns a new owner
    // without asking. Nothing here sends the client an ARP request or
    // makes it ask: the entry can only come from the announcement.
    let knob = format!("net.ipv4.conf.{}.arp_accept=1", bed.client_if);
    bed.client.exec(&["sysctl", "-q", "-w", &knob]).expect("arp_accept");
    let vip = "192.0.2.20";
    let neigh = |bed: &Bed| bed.client.ip(&["neigh", "show", vip, "dev", &bed.client_if]).expect("ip neigh");
    assert!(neigh(&bed).trim().is_empty(), "no entry before: {}", neigh(&bed));

    bed.own(&[(vip, &[NODE_IF])]);
    let mac = bed.node_mac.to_string();
    let entry = wait_for(Duration::from_secs(5), || {
        let out = neigh(&bed);
        if out.contains(&mac) { Ok(out) } else { Err(out) }
    })
    .expect("the announcement creates the entry");
    assert!(entry.contains(&format!("lladdr {mac}")), "{entry}");
}

#[test]
fn another_host_using_an_owned_ip_is_reported_as_a_conflict() {
    support::skip_unless_root!();
    let mut bed = Bed::new(Exclusions::default());
    let vip = "192.0.2.30";
    bed.own(&[(vip, &[NODE_IF])]);
    // The client takes the address itself and asks for its neighbour from it.
    bed.client.add_addr(&bed.client_if, "192.0.2.30/24").expect("address");
    let mut cmd = bed.client.command("arping");
    cmd.args(["-c", "1", "-S", vip, "-i", &bed.client_if, "192.0.2.1"]);
    let _ = output_with_timeout(&mut cmd, Duration::from_secs(10)).expect("arping");

    let event = bed.wait_event("conflict", |e| matches!(e, L2Event::Conflict { .. }));
    assert_eq!(
        event,
        L2Event::Conflict { ip: vip.parse().expect("IP"), interface: NODE_IF.to_string(), mac: bed.client_mac }
    );
    let status = bed.wait_status("stood down", |s| {
        s.ips.values().next().is_some_and(|ip| ip.stood_down.contains(NODE_IF) && ip.interfaces.is_empty())
    });
    let ip = &status.ips[&vip.parse::<IpAddr>().expect("IP")];
    assert_eq!(ip.counters.conflicts, 1);
}

#[test]
fn a_new_mac_on_the_interface_is_announced_at_once() {
    support::skip_unless_root!();
    let mut bed = Bed::new(Exclusions::default());
    bed.own(&[(VIP4, &[NODE_IF])]);
    // Past the announcements that follow owning (at once, +100 ms, +500 ms,
    // +1 s, +2 s: 10 frames), so only a new one can carry the new MAC.
    let vip: IpAddr = VIP4.parse().expect("IP");
    bed.wait_status("the first announcements", |s| s.ips[&vip].counters.gratuitous_sent == 10);
    // The client knows the IP at the old MAC (an existing entry, which a
    // gratuitous ARP updates whatever arp_accept says).
    let old = bed.node_mac.to_string();
    bed.client.ip(&["neigh", "replace", VIP4, "lladdr", &old, "dev", &bed.client_if, "nud", "stale"]).expect("entry");

    let new = "02:00:00:00:00:42";
    bed.node.ip(&["link", "set", NODE_IF, "address", new]).expect("new MAC");
    bed.wait_status("the new MAC", |s| s.interfaces.get(NODE_IF).is_some_and(|i| i.mac.to_string() == new));
    let entry = wait_for(Duration::from_secs(5), || {
        let out = bed.client.ip(&["neigh", "show", VIP4, "dev", &bed.client_if]).expect("ip neigh");
        if out.contains(new) { Ok(out) } else { Err(out) }
    })
    .expect("the announcement from the new MAC updates the entry");
    assert!(entry.contains(&format!("lladdr {new}")), "{entry}");
    bed.node_mac = MacAddr([0x02, 0, 0, 0, 0, 0x42]);
    bed.assert_answered(VIP4);
}
