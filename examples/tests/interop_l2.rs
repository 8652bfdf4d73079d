//! Layer 2 on a real segment: three "node" namespaces running `lb
//! standalone` and a "client" namespace on one bridge, documentation
//! ranges only. The client asks with the real tools (`arping`, `ndisc6`)
//! and its own neighbour table. Correctness is asserted; times are
//! printed (the figures in the README come from `scripts/measure_l2.sh`).
//! Needs root (namespaces); skips with a message without it.

mod l2_cluster;
#[path = "../../lb-k8s/tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use l2_cluster::{Cluster, VIP, VIP6, WAIT};
use nix::sys::signal::Signal;
use support::{skip_unless_root, wait_for};

#[test]
fn the_owner_alone_answers_and_a_killed_owner_is_replaced_without_the_client_asking() {
    skip_unless_root!();
    let mut cluster = Cluster::new(3, &[]);
    cluster.start_all();
    let owner = cluster.agreed_owner(VIP);
    let o = cluster.index_of(&owner);
    // arping: replies from the owner's MAC, and only from it.
    let macs = wait_for(WAIT, || {
        let m = cluster.arp_answers(VIP);
        if m.is_empty() { Err("no answer".to_string()) } else { Ok(m) }
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(macs, vec![cluster.nodes[o].mac.clone()], "{}", cluster.logs());
    // ndisc6 likewise for the IPv6 Service.
    let owner6 = cluster.agreed_owner(VIP6);
    let o6 = cluster.index_of(&owner6);
    assert_eq!(cluster.ndp_answer(VIP6).as_deref(), Some(cluster.nodes[o6].mac.as_str()), "{}", cluster.logs());
    // Requests for other IPs get nothing.
    assert!(cluster.arp_answers("192.0.2.201").is_empty());

    // The client learns the owner (ping fails: nothing serves the IP here,
    // but the kernel resolves it first).
    cluster.talk_to(VIP);
    assert_eq!(cluster.neighbour(VIP).as_deref(), Some(cluster.nodes[o].mac.as_str()));

    // SIGKILL of the owner: another node takes over, and the client's
    // entry moves to it by the gratuitous ARP alone.
    let killed = Instant::now();
    cluster.nodes[o].kill(Signal::SIGKILL);
    let new_mac = wait_for(WAIT, || match cluster.neighbour(VIP) {
        Some(m) if m != cluster.nodes[o].mac => Ok(m),
        other => Err(format!("client entry still {other:?}")),
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    println!("takeover seen in the client's neighbour table after {:?}", killed.elapsed());
    let new_owner = cluster.agreed_owner(VIP);
    let n = cluster.index_of(&new_owner);
    assert_ne!(n, o);
    assert_eq!(new_mac, cluster.nodes[n].mac);
    assert_eq!(cluster.arp_answers(VIP), vec![cluster.nodes[n].mac.clone()]);

    // The killed node comes back: the IP stays where it is.
    cluster.nodes[o].start();
    wait_for(WAIT, || cluster.nodes[o].owner(VIP).map(drop)).unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(cluster.agreed_owner(VIP), new_owner, "sticky: no second move");
    assert_eq!(cluster.arp_answers(VIP), vec![cluster.nodes[n].mac.clone()]);
}

#[test]
fn sigterm_hands_over_and_a_healed_partition_leaves_one_answer() {
    skip_unless_root!();
    let mut cluster = Cluster::new(3, &[]);
    cluster.start_all();
    let owner = cluster.agreed_owner(VIP);
    let o = cluster.index_of(&owner);
    assert_eq!(
        wait_for(WAIT, || {
            let m = cluster.arp_answers(VIP);
            if m.is_empty() { Err("no answer".to_string()) } else { Ok(m) }
        })
        .expect("answers"),
        vec![cluster.nodes[o].mac.clone()]
    );
    cluster.talk_to(VIP);

    // SIGTERM: handed over, the client's entry follows.
    let stopped = Instant::now();
    cluster.nodes[o].kill(Signal::SIGTERM);
    let new_mac = wait_for(WAIT, || match cluster.neighbour(VIP) {
        Some(m) if m != cluster.nodes[o].mac => Ok(m),
        other => Err(format!("client entry still {other:?}")),
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    println!("handover seen in the client's neighbour table after {:?}", stopped.elapsed());
    assert!(cluster.nodes[o].log().contains("layer2Handover"), "{}", cluster.nodes[o].log());
    let holder = cluster.agreed_owner(VIP);
    let h = cluster.index_of(&holder);
    assert_eq!(new_mac, cluster.nodes[h].mac);

    // A partition: the holder's bridge port down for a few seconds. Both
    // sides answer meanwhile; after the heal exactly one does.
    let holder_port = cluster.port_of(&cluster.segment, h, &cluster.nodes[h].ifname);
    cluster.segment.switch().ip(&["link", "set", &holder_port, "down"]).expect("down");
    // The others notice and one of them takes over.
    let others: Vec<usize> = (0..3).filter(|i| *i != h && cluster.nodes[*i].lb.is_some()).collect();
    wait_for(WAIT, || {
        let owners: Vec<String> = others.iter().map(|i| cluster.nodes[*i].owner(VIP)).collect::<Result<_, _>>()?;
        if owners.iter().all(|w| *w != holder) { Ok(()) } else { Err(format!("{owners:?}")) }
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    std::thread::sleep(Duration::from_secs(2));
    cluster.segment.switch().ip(&["link", "set", &holder_port, "up"]).expect("up");
    let winner = cluster.agreed_owner(VIP);
    let w = cluster.index_of(&winner);
    let answers = wait_for(WAIT, || {
        let m = cluster.arp_answers(VIP);
        if m.len() == 1 { Ok(m) } else { Err(format!("answers from {m:?}")) }
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(answers, vec![cluster.nodes[w].mac.clone()]);
    wait_for(WAIT, || match cluster.neighbour(VIP) {
        Some(m) if m == cluster.nodes[w].mac => Ok(()),
        other => Err(format!("client entry {other:?}")),
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
}

#[test]
fn a_node_with_the_wrong_key_is_not_admitted_and_disturbs_nobody() {
    skip_unless_root!();
    let mut cluster = Cluster::new(3, &[Some("right key"), Some("right key"), Some("wrong key")]);
    cluster.start_all();
    let owner = wait_for(WAIT, || {
        let a = cluster.nodes[0].owner(VIP)?;
        let b = cluster.nodes[1].owner(VIP)?;
        if a == b { Ok(a) } else { Err(format!("{a} / {b}")) }
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_ne!(owner, "node-3");
    let o = cluster.index_of(&owner);
    wait_for(WAIT, || {
        let s = cluster.nodes[0].status()?;
        let dropped = s["layer2"]["gossip"]["unauthenticated"].as_u64().unwrap_or(0);
        if dropped > 0 { Ok(()) } else { Err("nothing dropped yet".into()) }
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let members = cluster.nodes[0].status().expect("status")["layer2"]["members"].to_string();
    assert!(!members.contains("node-3"), "{members}");
    // node-3 hears only datagrams it cannot verify: it claims nothing.
    assert_eq!(cluster.arp_answers(VIP), vec![cluster.nodes[o].mac.clone()], "{}", cluster.logs());
}

#[test]
fn an_owner_whose_interface_loses_carrier_hands_its_ips_over() {
    skip_unless_root!();
    // Gossip on one segment, Services on another: the owner stays alive
    // and talking while its Service interface loses carrier.
    let config = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: v4}\nspec: {addresses: [198.51.100.200/32]}\n---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec: {ipAddressPools: [v4], interfaces: [eth1]}\n";
    let services = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n";
    let vip = "198.51.100.200";
    let mut cluster = Cluster::with(3, &[], config, services, &l2_cluster::nodes_yaml(3));
    let ports = cluster.split_segments();
    cluster.start_all();
    let owner = cluster.agreed_owner(vip);
    let o = cluster.index_of(&owner);
    assert_eq!(ports[o].0, "eth1");
    cluster.talk_to(vip);
    assert_eq!(cluster.neighbour(vip).as_deref(), Some(ports[o].1.as_str()));

    let segment = cluster.service_segment.take().expect("service segment");
    let port = cluster.port_of(&segment, o, &ports[o].0);
    let cut = Instant::now();
    segment.switch().ip(&["link", "set", &port, "down"]).expect("carrier off");
    let new_mac = wait_for(WAIT, || match cluster.neighbour(vip) {
        Some(m) if m != ports[o].1 => Ok(m),
        other => Err(format!("client entry still {other:?}")),
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    println!("carrier loss to the client's new entry: {:?}", cut.elapsed());
    let holder = cluster.agreed_owner(vip);
    let h = cluster.index_of(&holder);
    assert_ne!(h, o, "the owner without carrier is passed over, though alive");
    assert_eq!(new_mac, ports[h].1);
    let members = cluster.nodes[h].status().expect("status")["layer2"]["members"].to_string();
    assert!(members.contains(&format!("\"name\":\"{owner}\",\"state\":\"alive\"")), "{members}");
    drop(segment);
}
