//! Layer 2 on a real segment: three "node" namespaces running `lb
//! standalone` and a "client" namespace on one bridge, documentation
//! ranges only. The client asks with the real tools (`arping`, `ndisc6`)
//! and its own neighbour table. Correctness is asserted; times are
//! printed (the figures in the README come from `scripts/measure_l2.sh`).
//! Needs root (namespaces); skips with a message without it.

#[path = "../../lb-k8s/tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::{Daemon, Netns, Segment, TempDir, skip_unless_root, wait_for};

const VIP: &str = "192.0.2.200";
const VIP6: &str = "2001:db8::200";
const WAIT: Duration = Duration::from_secs(15);

const CONFIG: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: v4}\nspec: {addresses: [192.0.2.200/32]}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: v6}\nspec: {addresses: [\"2001:db8::200/128\"]}\n---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec: {ipAddressPools: [v4, v6]}\n";

const SERVICES: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default, annotations: {metallb.io/address-pool: v4}}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web6, namespace: default, annotations: {metallb.io/address-pool: v6}}\nspec: {type: LoadBalancer, ipFamilies: [IPv6], ports: [{port: 80}]}\n";

fn nodes_yaml(n: usize) -> String {
    (1..=n)
        .map(|i| {
            format!(
                "---\napiVersion: v1\nkind: Node\nmetadata: {{name: node-{i}}}\nstatus: {{addresses: [{{type: InternalIP, address: 192.0.2.1{i}}}]}}\n"
            )
        })
        .collect()
}

struct L2Node {
    name: String,
    ns: Netns,
    ifname: String,
    mac: String,
    dir: TempDir,
    lb: Option<Daemon>,
    key: Option<PathBuf>,
}

impl L2Node {
    fn start(&mut self) {
        let f = |n: &str| self.dir.join(n).to_str().expect("utf-8").to_string();
        let (c, s, n, state) = (f("config.yaml"), f("services.yaml"), f("nodes.yaml"), f("state.json"));
        let mut argv: Vec<String> =
            ["standalone", "--config", &c, "--services", &s, "--nodes", &n, "--node", &self.name, "--state", &state]
                .iter()
                .map(ToString::to_string)
                .collect();
        if let Some(key) = &self.key {
            argv.push("--memberlist-key-file".into());
            argv.push(key.to_str().expect("utf-8").into());
        }
        let mut cmd = self.ns.command(env!("CARGO_BIN_EXE_lb"));
        cmd.args(&argv).env("LB_LOG", "info");
        self.lb = Some(Daemon::spawn("lb", &mut cmd, self.dir.join("lb.log")).expect("start lb"));
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("lb.log")).unwrap_or_default()
    }

    fn kill(&mut self, signal: Signal) {
        if let Some(mut lb) = self.lb.take() {
            lb.signal(signal);
            let _ = wait_for(Duration::from_secs(10), || match lb.check_alive() {
                Ok(()) => Err("still running".into()),
                Err(_) => Ok(()),
            });
        }
    }

    fn status(&self) -> Result<serde_json::Value, String> {
        let body = self.ns.run(|| {
            let mut s = TcpStream::connect("127.0.0.1:7472").map_err(|e| format!("connect: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
            write!(s, "GET /status HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
            let mut out = String::new();
            s.read_to_string(&mut out).map_err(|e| e.to_string())?;
            Ok::<_, String>(out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
        })?;
        serde_json::from_str(&body).map_err(|e| e.to_string())
    }

    /// The owner of `ip` by this node's plan, once it is ready.
    fn owner(&self, ip: &str) -> Result<String, String> {
        let s = self.status()?;
        let l2 = &s["layer2"];
        if l2["ready"] != true {
            return Err("not ready".into());
        }
        l2["ips"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["ip"] == ip)
            .and_then(|e| e["owner"].as_str().map(String::from))
            .ok_or_else(|| format!("{ip} has no owner in {l2}"))
    }
}

struct Cluster {
    segment: Segment,
    client: Netns,
    client_if: String,
    nodes: Vec<L2Node>,
}

fn mac_of(ns: &Netns, ifname: &str) -> String {
    let out = ns.ip(&["-br", "link", "show", ifname]).expect("ip link");
    out.split_whitespace().nth(2).expect("a MAC").to_lowercase()
}

impl Cluster {
    fn new(n: usize, keys: &[Option<&str>]) -> Self {
        let segment = Segment::new().expect("segment");
        let client = Netns::new().expect("namespace");
        let client_if = segment.attach(&client, &["192.0.2.1/24", "2001:db8::1/64"]).expect("attach client");
        let mut nodes = Vec::new();
        for i in 1..=n {
            let ns = Netns::new().expect("namespace");
            let ifname = segment
                .attach(&ns, &[&format!("192.0.2.1{i}/24"), &format!("2001:db8::1{i}/64")])
                .expect("attach node");
            let mac = mac_of(&ns, &ifname);
            let dir = TempDir::new().expect("temp dir");
            std::fs::write(dir.join("config.yaml"), CONFIG).expect("write");
            std::fs::write(dir.join("services.yaml"), SERVICES).expect("write");
            std::fs::write(dir.join("nodes.yaml"), nodes_yaml(n)).expect("write");
            let key = keys.get(i - 1).copied().flatten().map(|k| {
                let path = dir.join("memberlist.key");
                std::fs::write(&path, k).expect("write");
                path
            });
            nodes.push(L2Node { name: format!("node-{i}"), ns, ifname, mac, dir, lb: None, key });
        }
        Self { segment, client, client_if, nodes }
    }

    fn start_all(&mut self) {
        for node in &mut self.nodes {
            node.start();
        }
    }

    fn index_of(&self, name: &str) -> usize {
        self.nodes.iter().position(|n| n.name == name).expect("a node")
    }

    /// The MACs that answered three ARP requests for `ip`.
    fn arp_answers(&self, ip: &str) -> Vec<String> {
        let out = self.client.command("arping").args(["-c", "3", "-w", "3", "-I", &self.client_if, ip]).output();
        let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        if std::env::var_os("LBT_DEBUG").is_some() {
            eprintln!("arping: {text}");
        }
        // Debian's arping: "60 bytes from MAC (IP): ..."; iputils':
        // "Unicast reply from IP [MAC] ...".
        let mut macs: Vec<String> = text
            .lines()
            .filter_map(|l| {
                if let Some((_, rest)) = l.split_once(" bytes from ") {
                    rest.split_whitespace().next().map(String::from)
                } else if l.contains("reply from") {
                    l.split('[').nth(1).and_then(|r| r.split(']').next()).map(String::from)
                } else {
                    None
                }
            })
            .map(|m| m.to_lowercase())
            .collect();
        macs.sort();
        macs.dedup();
        macs
    }

    /// The MAC that answered a Neighbor Solicitation for `ip`.
    fn ndp_answer(&self, ip: &str) -> Option<String> {
        let out = self.client.command("ndisc6").args(["-r", "2", ip, &self.client_if]).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if std::env::var_os("LBT_DEBUG").is_some() {
            eprintln!("ndisc6: {text} {}", String::from_utf8_lossy(&out.stderr));
        }
        text.lines()
            .find(|l| l.contains("Target link-layer address"))
            .and_then(|l| l.split_once("address:").map(|(_, m)| m.trim().to_lowercase()))
    }

    /// Sends `ip` a datagram from the client, so that the client's kernel
    /// resolves it (nothing listens there: only the neighbour entry matters).
    fn talk_to(&self, ip: &str) {
        let target = format!("{ip}:9");
        self.client.run(move || {
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
            let _ = socket.send_to(b"hello", target.as_str());
        });
        wait_for(WAIT, || self.neighbour(ip).ok_or_else(|| "not resolved".to_string())).expect("resolved");
    }

    /// The client's neighbour entry for `ip` (its MAC), if any.
    fn neighbour(&self, ip: &str) -> Option<String> {
        let out = self.client.ip(&["neigh", "show", ip, "dev", &self.client_if]);
        if std::env::var_os("LBT_DEBUG").is_some() {
            eprintln!("neigh: {out:?} all: {:?}", self.client.ip(&["neigh"]));
        }
        let out = out.ok()?;
        let mut words = out.split_whitespace();
        words.by_ref().find(|w| *w == "lladdr")?;
        words.next().map(str::to_lowercase)
    }

    /// Waits until every running node agrees on the owner of `ip`.
    fn agreed_owner(&self, ip: &str) -> String {
        wait_for(WAIT, || {
            let owners: Vec<String> =
                self.nodes.iter().filter(|n| n.lb.is_some()).map(|n| n.owner(ip)).collect::<Result<_, _>>()?;
            match owners.split_first() {
                Some((first, rest)) if rest.iter().all(|o| o == first) => Ok(first.clone()),
                _ => Err(format!("owners differ: {owners:?}")),
            }
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let status = n.status().map(|s| s["layer2"].to_string()).unwrap_or_else(|e| e);
                format!("--- {} ---\n{}\nstatus: {status}\n", n.name, n.log())
            })
            .collect()
    }
}

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
    // The holder's bridge port: its eth0's peer index ("2: eth0@if7: ...")
    // is the port's index in the switch namespace.
    let theirs = cluster.nodes[h].ns.ip(&["-o", "link", "show", &cluster.nodes[h].ifname]).expect("link");
    let port_index = theirs.split("@if").nth(1).and_then(|r| r.split(':').next()).expect("a veth peer").to_string();
    let holder_port = cluster
        .segment
        .switch()
        .ip(&["-o", "link", "show"])
        .expect("links")
        .lines()
        .find(|l| l.starts_with(&format!("{port_index}:")))
        .and_then(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default().to_string())
        .expect("the holder's bridge port");
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
