//! A layer 2 test bed: three "node" namespaces running `lb standalone`
//! and a "client" namespace on one bridge (documentation ranges only), the
//! client asking with `arping`, `ndisc6`, its neighbour table, or a raw
//! socket of its own ([`Prober`]). Shared by the interop tests and the
//! measurements.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::support::{Daemon, Netns, Segment, TempDir, wait_for};

mod prober;
#[allow(unused_imports)]
pub use prober::{Prober, Reply, Sent};

pub const VIP: &str = "192.0.2.200";
pub const VIP6: &str = "2001:db8::200";
pub const WAIT: Duration = Duration::from_secs(15);

pub const CONFIG: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: v4}\nspec: {addresses: [192.0.2.200/32]}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: v6}\nspec: {addresses: [\"2001:db8::200/128\"]}\n---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec: {ipAddressPools: [v4, v6]}\n";

pub const SERVICES: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default, annotations: {metallb.io/address-pool: v4}}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web6, namespace: default, annotations: {metallb.io/address-pool: v6}}\nspec: {type: LoadBalancer, ipFamilies: [IPv6], ports: [{port: 80}]}\n";

pub fn nodes_yaml(n: usize) -> String {
    (1..=n)
        .map(|i| {
            format!(
                "---\napiVersion: v1\nkind: Node\nmetadata: {{name: node-{i}}}\nstatus: {{addresses: [{{type: InternalIP, address: 192.0.2.1{i}}}]}}\n"
            )
        })
        .collect()
}

pub struct L2Node {
    pub name: String,
    pub ns: Netns,
    pub ifname: String,
    pub mac: String,
    pub dir: TempDir,
    pub lb: Option<Daemon>,
    pub key: Option<PathBuf>,
}

impl L2Node {
    pub fn start(&mut self) {
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("lb.log")).unwrap_or_default()
    }

    pub fn kill(&mut self, signal: Signal) {
        if let Some(mut lb) = self.lb.take() {
            lb.signal(signal);
            let _ = wait_for(Duration::from_secs(10), || match lb.check_alive() {
                Ok(()) => Err("still running".into()),
                Err(_) => Ok(()),
            });
        }
    }

    pub fn status(&self) -> Result<serde_json::Value, String> {
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
    pub fn owner(&self, ip: &str) -> Result<String, String> {
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

pub struct Cluster {
    pub segment: Segment,
    pub client: Netns,
    pub client_if: String,
    pub nodes: Vec<L2Node>,
    /// A second segment for the Services (see [`Cluster::split_segments`]).
    pub service_segment: Option<Segment>,
}

pub fn mac_of(ns: &Netns, ifname: &str) -> String {
    let out = ns.ip(&["-br", "link", "show", ifname]).expect("ip link");
    out.split_whitespace().nth(2).expect("a MAC").to_lowercase()
}

impl Cluster {
    pub fn new(n: usize, keys: &[Option<&str>]) -> Self {
        Self::with(n, keys, CONFIG, SERVICES, &nodes_yaml(n))
    }

    /// `n` nodes with these files.
    pub fn with(n: usize, keys: &[Option<&str>], config: &str, services: &str, nodes_file: &str) -> Self {
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
            std::fs::write(dir.join("config.yaml"), config).expect("write");
            std::fs::write(dir.join("services.yaml"), services).expect("write");
            std::fs::write(dir.join("nodes.yaml"), nodes_file).expect("write");
            let key = keys.get(i - 1).copied().flatten().map(|k| {
                let path = dir.join("memberlist.key");
                std::fs::write(&path, k).expect("write");
                path
            });
            nodes.push(L2Node { name: format!("node-{i}"), ns, ifname, mac, dir, lb: None, key });
        }
        Self { segment, client, client_if, nodes, service_segment: None }
    }

    /// Services on a segment of their own: every node gets a second
    /// interface there (198.51.100.1N/24; the gossip stays on the first),
    /// and the client moves to it (198.51.100.1). Returns each node's
    /// interface name and MAC on it.
    pub fn split_segments(&mut self) -> Vec<(String, String)> {
        let services = Segment::new().expect("segment");
        self.client_if = services.attach(&self.client, &["198.51.100.1/24"]).expect("attach client");
        let mut ports = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let ifname = services.attach(&node.ns, &[&format!("198.51.100.1{}/24", i + 1)]).expect("attach node");
            ports.push((ifname.clone(), mac_of(&node.ns, &ifname)));
        }
        self.service_segment = Some(services);
        ports
    }

    /// The bridge port (in `segment`'s switch namespace) of `ifname` in
    /// node `i`: its veth peer index ("2: eth0@if7: ...") is the port's
    /// index there.
    pub fn port_of(&self, segment: &Segment, i: usize, ifname: &str) -> String {
        let theirs = self.nodes[i].ns.ip(&["-o", "link", "show", ifname]).expect("link");
        let index = theirs.split("@if").nth(1).and_then(|r| r.split(':').next()).expect("a veth peer").to_string();
        segment
            .switch()
            .ip(&["-o", "link", "show"])
            .expect("links")
            .lines()
            .find(|l| l.starts_with(&format!("{index}:")))
            .and_then(|l| l.split(':').nth(1))
            .map(|n| n.trim().split('@').next().unwrap_or_default().to_string())
            .expect("a bridge port")
    }

    pub fn start_all(&mut self) {
        for node in &mut self.nodes {
            node.start();
        }
    }

    pub fn index_of(&self, name: &str) -> usize {
        self.nodes.iter().position(|n| n.name == name).expect("a node")
    }

    /// The MACs that answered three ARP requests for `ip`.
    pub fn arp_answers(&self, ip: &str) -> Vec<String> {
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
    pub fn ndp_answer(&self, ip: &str) -> Option<String> {
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
    pub fn talk_to(&self, ip: &str) {
        let target = format!("{ip}:9");
        self.client.run(move || {
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
            let _ = socket.send_to(b"hello", target.as_str());
        });
        wait_for(WAIT, || self.neighbour(ip).ok_or_else(|| "not resolved".to_string())).expect("resolved");
    }

    /// The client's neighbour entry for `ip` (its MAC), if any.
    pub fn neighbour(&self, ip: &str) -> Option<String> {
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
    pub fn agreed_owner(&self, ip: &str) -> String {
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

    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let status = n.status().map(|s| s["layer2"].to_string()).unwrap_or_else(|e| e);
                format!("--- {} ---\n{}\nstatus: {status}\n", n.name, n.log())
            })
            .collect()
    }
}
