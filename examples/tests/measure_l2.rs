//! Layer 2 measurements (ignored by default; `scripts/measure_l2.sh` runs
//! them as root and the README quotes them). Each prints its figures; none
//! asserts a time.
//!
//! - failover: SIGKILL of the owner's `lb` to the client's first answer
//!   from the new owner, `RUNS` times (default 20): median and maximum;
//! - handover: the same with SIGTERM;
//! - takeover of 1,000 IPs by one node: the owner's death to the last
//!   first announcement of the 1,000, seen by the client;
//! - responder against the kernel: ARP requests at fixed rates, answered
//!   share and latency, `lb` and the Linux kernel side by side;
//! - false takeovers: `MINUTES` (default 10) with 1 % random loss on the
//!   bridge and both cores busy: ownership changes counted.

mod l2_cluster;
#[path = "../../lb-k8s/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use l2_cluster::{Cluster, Prober, VIP, WAIT};
use nix::sys::signal::Signal;
use support::{skip_unless_root, wait_for};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Kills the owner `runs` times with `signal`; the client's first answer
/// from another MAC after the signal, each time.
fn failovers(signal: Signal, runs: u64) -> Vec<Duration> {
    let mut cluster = Cluster::new(3, &[]);
    cluster.start_all();
    let vip: Ipv4Addr = VIP.parse().expect("IP");
    let mut times = Vec::new();
    for run in 0..runs {
        let owner = cluster.agreed_owner(VIP);
        let o = cluster.index_of(&owner);
        let old_mac = cluster.nodes[o].mac.clone();
        let prober = Prober::start(&cluster.client, &cluster.client_if, Some(vip), Duration::from_millis(1), u64::MAX);
        std::thread::sleep(Duration::from_millis(100));
        let t0 = Instant::now();
        cluster.nodes[o].kill(signal);
        let others: Vec<usize> = (0..cluster.nodes.len()).filter(|i| *i != o).collect();
        wait_for(WAIT, || {
            let owners: Vec<String> = others.iter().map(|i| cluster.nodes[*i].owner(VIP)).collect::<Result<_, _>>()?;
            if owners.iter().all(|w| *w != owner) { Ok(()) } else { Err(format!("{owners:?}")) }
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        std::thread::sleep(Duration::from_millis(300));
        let (_, replies) = prober.stop();
        let first = replies.iter().find(|r| r.at > t0 && !r.announcement && r.mac != old_mac).map(|r| r.at - t0);
        match first {
            Some(t) => {
                println!("run {run}: {signal:?} of {owner}: first answer from the new owner after {}", ms(t));
                times.push(t);
            }
            None => println!("run {run}: no answer from a new owner seen"),
        }
        // Back, and settled, before the next run.
        cluster.nodes[o].start();
        wait_for(WAIT, || cluster.nodes[o].owner(VIP).map(drop)).unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        std::thread::sleep(Duration::from_millis(500));
    }
    times
}

fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{name}: {} runs, median {}, p90 {}, max {}",
        times.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        ms(times.last().copied().unwrap_or_default())
    );
}

#[test]
#[ignore = "measurement: scripts/measure_l2.sh"]
fn failover_after_sigkill() {
    skip_unless_root!();
    report("failover (SIGKILL)", failovers(Signal::SIGKILL, env_or("RUNS", 20)));
}

#[test]
#[ignore = "measurement: scripts/measure_l2.sh"]
fn handover_after_sigterm() {
    skip_unless_root!();
    report("handover (SIGTERM)", failovers(Signal::SIGTERM, env_or("RUNS", 20)));
}

#[test]
#[ignore = "measurement: scripts/measure_l2.sh"]
fn takeover_of_1000_ips() {
    skip_unless_root!();
    // node-1 preferred for every IP, so node-2 takes all 1,000 at once.
    let config = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: v4}\nspec: {addresses: [198.51.100.0/24, 203.0.113.0/24]}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: v6}\nspec: {addresses: [\"2001:db8:1::/120\", \"2001:db8:2::/120\"]}\n---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec:\n  ipAddressPools: [v4, v6]\n  preferredNodeSelectors: [{weight: 100, preference: {matchLabels: {first: \"yes\"}}}]\n";
    let mut services = String::new();
    for i in 0..1000 {
        let (pool, family) = if i < 512 { ("v4", "IPv4") } else { ("v6", "IPv6") };
        services.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: default, annotations: {{metallb.io/address-pool: {pool}}}}}\nspec: {{type: LoadBalancer, ipFamilies: [{family}], ports: [{{port: 80}}]}}\n"
        ));
    }
    let nodes = "apiVersion: v1\nkind: Node\nmetadata: {name: node-1, labels: {first: \"yes\"}}\nstatus: {addresses: [{type: InternalIP, address: 192.0.2.11}]}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: node-2}\nstatus: {addresses: [{type: InternalIP, address: 192.0.2.12}]}\n";
    let mut cluster = Cluster::with(2, &[], config, &services, nodes);
    cluster.start_all();
    wait_for(WAIT, || {
        let s = cluster.nodes[1].status()?;
        let owned = s["layer2"]["ownedPerNode"]["node-1"].as_u64().unwrap_or(0);
        if owned == 1000 && s["layer2"]["ready"] == true { Ok(()) } else { Err(format!("node-1 owns {owned}")) }
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let prober = Prober::start(&cluster.client, &cluster.client_if, None, Duration::from_millis(1), 0);
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    cluster.nodes[0].kill(Signal::SIGKILL);
    let new_mac = cluster.nodes[1].mac.clone();
    wait_for(WAIT, || {
        let owned = cluster.nodes[1].status()?["layer2"]["ownedPerNode"]["node-2"].as_u64().unwrap_or(0);
        if owned == 1000 { Ok(()) } else { Err(format!("node-2 owns {owned}")) }
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    std::thread::sleep(Duration::from_secs(1));
    let (_, replies) = prober.stop();
    let mut first: BTreeMap<IpAddr, Duration> = BTreeMap::new();
    for r in replies.iter().filter(|r| r.at > t0 && r.announcement && r.mac == new_mac) {
        first.entry(r.ip).or_insert(r.at - t0);
    }
    let mut times: Vec<Duration> = first.values().copied().collect();
    times.sort();
    println!(
        "takeover of 1,000 IPs: {} announced by the new owner; first after {}, last after {}",
        times.len(),
        ms(times.first().copied().unwrap_or_default()),
        ms(times.last().copied().unwrap_or_default())
    );
}

/// Requests at `rate` per second for one second to `target`: the share
/// answered and the latency percentiles of the answers.
fn flood(cluster: &Cluster, target: Ipv4Addr, rate: u64) -> (f64, Duration, Duration) {
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let prober = Prober::start(&cluster.client, &cluster.client_if, Some(target), interval, rate);
    std::thread::sleep(Duration::from_millis(1300));
    let (sent, replies) = prober.stop();
    // An answer belongs to the latest request with its tag sent before it.
    let mut latencies = Vec::new();
    let mut by_tag: BTreeMap<Ipv4Addr, Vec<Instant>> = BTreeMap::new();
    for s in &sent {
        by_tag.entry(s.tag).or_default().push(s.at);
    }
    let mut answered = 0usize;
    for r in replies.iter().filter(|r| !r.announcement && r.ip == IpAddr::V4(target)) {
        let Some(tag) = r.tag else { continue };
        if let Some(sends) = by_tag.get(&tag)
            && let Some(at) = sends.iter().rev().find(|t| **t <= r.at)
        {
            answered += 1;
            latencies.push(r.at - *at);
        }
    }
    latencies.sort();
    let share = answered as f64 / sent.len().max(1) as f64;
    (share, percentile(&latencies, 0.5), percentile(&latencies, 0.99))
}

#[test]
#[ignore = "measurement: scripts/measure_l2.sh"]
fn responder_against_the_kernel() {
    skip_unless_root!();
    let config = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: v4}\nspec: {addresses: [192.0.2.200/32]}\n---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\n";
    let services = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n";
    let mut cluster = Cluster::with(1, &[], config, services, &l2_cluster::nodes_yaml(1));
    cluster.start_all();
    cluster.agreed_owner(VIP);
    let kernel: Ipv4Addr = "192.0.2.11".parse().expect("IP");
    let vip: Ipv4Addr = VIP.parse().expect("IP");
    println!("rate/s  | kernel answered  p50  p99 | lb answered  p50  p99");
    for rate in [1_000, 5_000, 10_000, 20_000, 50_000, 100_000] {
        let (ks, k50, k99) = flood(&cluster, kernel, rate);
        let (ls, l50, l99) = flood(&cluster, vip, rate);
        println!(
            "{rate:>7} | {:>6.2} % {:>9} {:>9} | {:>6.2} % {:>9} {:>9}",
            ks * 100.0,
            format!("{:.0} µs", k50.as_secs_f64() * 1e6),
            format!("{:.0} µs", k99.as_secs_f64() * 1e6),
            ls * 100.0,
            format!("{:.0} µs", l50.as_secs_f64() * 1e6),
            format!("{:.0} µs", l99.as_secs_f64() * 1e6)
        );
    }
}

#[test]
#[ignore = "measurement: scripts/measure_l2.sh"]
fn false_takeovers_under_loss_and_load() {
    skip_unless_root!();
    let minutes = env_or("MINUTES", 10);
    let mut cluster = Cluster::new(3, &[]);
    cluster.start_all();
    let owner = cluster.agreed_owner(VIP);
    let switch = cluster.segment.switch();
    for rule in [
        "add table bridge loss",
        "add chain bridge loss lossy { type filter hook forward priority 0; }",
        "add rule bridge loss lossy numgen random mod 100 < 1 drop",
    ] {
        let mut args = vec!["nft"];
        args.extend(rule.split(' '));
        switch.exec(&args).expect("nft");
    }
    // Both cores busy, at normal priority, for the whole run.
    let busy: Vec<std::process::Child> = (0..2)
        .map(|_| std::process::Command::new("sh").args(["-c", "while :; do :; done"]).spawn().expect("busy loop"))
        .collect();
    let before: Vec<usize> = cluster.nodes.iter().map(|n| n.log().matches("\"serviceAnnounced\"").count()).collect();
    let downs_before: Vec<usize> = cluster.nodes.iter().map(|n| n.log().matches("\"memberDown\"").count()).collect();
    std::thread::sleep(Duration::from_secs(60 * minutes));
    for mut b in busy {
        let _ = b.kill();
        let _ = b.wait();
    }
    let announced: usize =
        cluster.nodes.iter().zip(&before).map(|(n, b)| n.log().matches("\"serviceAnnounced\"").count() - b).sum();
    let downs: usize =
        cluster.nodes.iter().zip(&downs_before).map(|(n, b)| n.log().matches("\"memberDown\"").count() - b).sum();
    let now = cluster.agreed_owner(VIP);
    let health: Vec<u64> = cluster
        .nodes
        .iter()
        .filter_map(|n| n.status().ok())
        .map(|s| s["layer2"]["gossip"]["localHealthScore"].as_u64().unwrap_or(0))
        .collect();
    println!(
        "false takeovers: {minutes} min, 1 % loss, both cores busy: {announced} ownership changes, {downs} members declared down, owner {owner} -> {now}, health scores now {health:?}"
    );
}
