//! FRR (zebra + bgpd, 8.4) in a namespace: config builder, daemons,
//! `vtysh` queries.
//!
//! Each instance has its own directory (mode 755, owned by `frr:frr`, as
//! the daemons drop privileges) holding configs, pid files, the zserv
//! socket (`-z`) and the vty sockets (`--vty_socket`); `-P 0` disables the
//! vty TCP port. zebra runs too: without it bgpd drops IPv6 UPDATEs with a
//! link-local next hop, and it installs learnt routes (ECMP included) into
//! the namespace's FIB. Graceful restart is off unless asked for (FRR
//! advertises it by default, which keeps a killed FRR's routes at its peers
//! for 120 s).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use super::{Daemon, Netns, Route, TempDir, normalize_prefix, run_with_timeout, wait_for};

/// One `neighbor` of `router bgp`.
#[derive(Debug, Clone)]
pub struct FrrNeighbor {
    pub address: IpAddr,
    /// `None`: `remote-as internal`.
    pub remote_as: Option<u32>,
    pub password: Option<String>,
    /// Seconds; keepalive is a third. Default 9.
    pub hold_time: u16,
    pub passive: bool,
    pub ipv4: bool,
    pub ipv6: bool,
    pub multihop: Option<u8>,
    /// `update-source`.
    pub update_source: Option<IpAddr>,
    /// Raw `neighbor ADDR …` lines, without the `neighbor ADDR` part.
    pub extra: Vec<String>,
}

impl FrrNeighbor {
    /// Active, the address family of `address` activated, hold time 9,
    /// connect retry 1 s, advertisement interval 0.
    pub fn new(address: IpAddr, remote_as: u32) -> Self {
        Self {
            address,
            remote_as: Some(remote_as),
            password: None,
            hold_time: 9,
            passive: false,
            ipv4: address.is_ipv4(),
            ipv6: address.is_ipv6(),
            multihop: None,
            update_source: None,
            extra: Vec::new(),
        }
    }

    pub fn internal(address: IpAddr) -> Self {
        Self { remote_as: None, ..Self::new(address, 0) }
    }

    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_string());
        self
    }

    pub fn hold_time(mut self, seconds: u16) -> Self {
        self.hold_time = seconds;
        self
    }

    pub fn passive(mut self) -> Self {
        self.passive = true;
        self
    }

    pub fn families(mut self, ipv4: bool, ipv6: bool) -> Self {
        self.ipv4 = ipv4;
        self.ipv6 = ipv6;
        self
    }

    pub fn multihop(mut self, ttl: u8) -> Self {
        self.multihop = Some(ttl);
        self
    }

    pub fn update_source(mut self, address: IpAddr) -> Self {
        self.update_source = Some(address);
        self
    }

    pub fn extra(mut self, line: &str) -> Self {
        self.extra.push(line.to_string());
        self
    }
}

/// A bgpd config.
#[derive(Debug, Clone)]
pub struct FrrConfig {
    pub router_id: Ipv4Addr,
    pub local_as: u32,
    pub neighbors: Vec<FrrNeighbor>,
    /// `maximum-paths` (eBGP and iBGP) per family; default 8 (ECMP on).
    pub maximum_paths: u8,
    /// Prefixes announced with `network` (no import check).
    pub networks: Vec<String>,
    pub graceful_restart: bool,
    /// Raw lines inside `router bgp`, before the address families.
    pub extra: String,
}

impl FrrConfig {
    pub fn new(router_id: Ipv4Addr, local_as: u32) -> Self {
        Self {
            router_id,
            local_as,
            neighbors: Vec::new(),
            maximum_paths: 8,
            networks: Vec::new(),
            graceful_restart: false,
            extra: String::new(),
        }
    }

    pub fn neighbor(mut self, neighbor: FrrNeighbor) -> Self {
        self.neighbors.push(neighbor);
        self
    }

    pub fn network(mut self, prefix: &str) -> Self {
        self.networks.push(prefix.to_string());
        self
    }

    pub fn maximum_paths(mut self, n: u8) -> Self {
        self.maximum_paths = n;
        self
    }

    pub fn graceful_restart(mut self, on: bool) -> Self {
        self.graceful_restart = on;
        self
    }

    pub fn extra(mut self, lines: &str) -> Self {
        self.extra.push_str(lines);
        self.extra.push('\n');
        self
    }

    /// bgpd.conf text; `log_file` is where bgpd logs.
    pub fn render(&self, log_file: &Path) -> String {
        let mut c = String::from("frr defaults traditional\nhostname lbt\n");
        let _ = writeln!(c, "log file {} informational\n!", log_file.display());
        let _ = writeln!(c, "router bgp {}", self.local_as);
        let _ = writeln!(c, " bgp router-id {}", self.router_id);
        c.push_str(" no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n no bgp network import-check\n");
        c.push_str(" bgp bestpath as-path multipath-relax\n bgp log-neighbor-changes\n");
        if !self.graceful_restart {
            c.push_str(" bgp graceful-restart-disable\n");
        }
        for n in &self.neighbors {
            let a = n.address;
            match n.remote_as {
                Some(asn) => {
                    let _ = writeln!(c, " neighbor {a} remote-as {asn}");
                }
                None => {
                    let _ = writeln!(c, " neighbor {a} remote-as internal");
                }
            }
            let _ = writeln!(c, " neighbor {a} timers {} {}", (n.hold_time / 3).max(1), n.hold_time);
            let _ = writeln!(c, " neighbor {a} timers connect 1");
            let _ = writeln!(c, " neighbor {a} advertisement-interval 0");
            if let Some(p) = &n.password {
                let _ = writeln!(c, " neighbor {a} password {p}");
            }
            if n.passive {
                let _ = writeln!(c, " neighbor {a} passive");
            }
            if let Some(ttl) = n.multihop {
                let _ = writeln!(c, " neighbor {a} ebgp-multihop {ttl}");
            }
            if let Some(src) = n.update_source {
                let _ = writeln!(c, " neighbor {a} update-source {src}");
            }
            for line in &n.extra {
                let _ = writeln!(c, " neighbor {a} {line}");
            }
        }
        c.push_str(&self.extra);
        for (v6, family) in [(false, "ipv4"), (true, "ipv6")] {
            let _ = writeln!(c, " address-family {family} unicast");
            let _ = writeln!(c, "  maximum-paths {0}\n  maximum-paths ibgp {0}", self.maximum_paths);
            for p in self.networks.iter().filter(|p| p.contains(':') == v6) {
                let _ = writeln!(c, "  network {p}");
            }
            for n in self.neighbors.iter().filter(|n| if v6 { n.ipv6 } else { n.ipv4 }) {
                let _ = writeln!(c, "  neighbor {} activate", n.address);
            }
            c.push_str(" exit-address-family\n");
        }
        c.push_str("!\n");
        c
    }
}

/// Running zebra + bgpd: both killed and reaped on drop.
#[derive(Debug)]
pub struct Frr {
    bgpd: Daemon,
    zebra: Daemon,
    ns_name: String,
    config: FrrConfig,
    dir: TempDir,
}

impl Frr {
    /// Writes the configs, starts zebra then bgpd in `ns`, waits until
    /// vtysh reaches bgpd.
    pub fn start(ns: &Netns, config: &FrrConfig) -> Result<Self, String> {
        let dir = TempDir::new()?;
        let (zebra, bgpd) = Self::spawn(ns.name(), &dir, config)?;
        let mut frr = Self { bgpd, zebra, ns_name: ns.name().to_string(), config: config.clone(), dir };
        frr.wait_ready()?;
        Ok(frr)
    }

    fn spawn(ns_name: &str, dir: &TempDir, config: &FrrConfig) -> Result<(Daemon, Daemon), String> {
        let d = dir.path();
        std::fs::write(dir.join("zebra.conf"), "hostname lbt\n").map_err(|e| format!("write zebra.conf: {e}"))?;
        std::fs::write(dir.join("bgpd.conf"), config.render(&dir.join("bgpd.log")))
            .map_err(|e| format!("write bgpd.conf: {e}"))?;
        let zserv = dir.join("zserv.api");
        let _ = std::fs::remove_file(&zserv);
        dir.give_to("frr:frr")?;
        let daemon = |name: &str| -> Result<Daemon, String> {
            let mut cmd = std::process::Command::new("ip");
            cmd.args(["netns", "exec", ns_name])
                .arg(format!("/usr/lib/frr/{name}"))
                .arg("-f")
                .arg(dir.join(&format!("{name}.conf")))
                .arg("-i")
                .arg(dir.join(&format!("{name}.pid")))
                .arg("-z")
                .arg(&zserv)
                .arg("--vty_socket")
                .arg(d)
                .args(["-P", "0"]);
            Daemon::spawn(name, &mut cmd, dir.join(&format!("{name}.out")))
        };
        let mut zebra = daemon("zebra")?;
        wait_for(Duration::from_secs(10), || {
            zebra.check_alive()?;
            if zserv.exists() { Ok(()) } else { Err("no zserv socket yet".to_string()) }
        })?;
        let bgpd = daemon("bgpd")?;
        Ok((zebra, bgpd))
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        wait_for(Duration::from_secs(15), || {
            self.zebra.check_alive()?;
            self.bgpd.check_alive()?;
            self.vtysh("show bgp summary json").map(drop)
        })
        .map_err(|e| format!("frr did not start: {e}\nbgpd.conf:\n{}", self.config.render(&self.dir.join("bgpd.log"))))
    }

    pub fn bgpd_pid(&self) -> Option<u32> {
        self.bgpd.pid()
    }

    pub fn zebra_pid(&self) -> Option<u32> {
        self.zebra.pid()
    }

    pub fn config(&self) -> &FrrConfig {
        &self.config
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bgpd.log")).unwrap_or_default()
    }

    /// `vtysh --vty_socket DIR -c COMMAND`; stdout. vtysh prints errors such
    /// as `% Unknown command` on stdout with status 0: those are `Err`.
    pub fn vtysh(&self, command: &str) -> Result<String, String> {
        self.vtysh_many(&[command])
    }

    /// Several `-c` commands in one vtysh session, e.g.
    /// `["configure terminal", "router bgp 65000", "neighbor … shutdown"]`.
    pub fn vtysh_many(&self, commands: &[&str]) -> Result<String, String> {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.ns_name, "vtysh", "--vty_socket"]).arg(self.dir.path());
        for c in commands {
            cmd.arg("-c").arg(c);
        }
        let out = run_with_timeout(&mut cmd, Duration::from_secs(10))?;
        if out.lines().any(|l| l.starts_with('%')) {
            return Err(format!("vtysh {commands:?}: {}", out.trim()));
        }
        Ok(out)
    }

    fn vtysh_json(&self, command: &str) -> Result<Value, String> {
        let out = self.vtysh(command)?;
        serde_json::from_str(&out).map_err(|e| format!("vtysh {command}: bad json: {e}: {out}"))
    }

    /// `bgpState` of `address` in `show bgp neighbors json` (`Established`,
    /// `Active`, `Connect`, `Idle`, `OpenSent`, `OpenConfirm`).
    pub fn neighbor_state(&self, address: IpAddr) -> Result<String, String> {
        let v = self.vtysh_json("show bgp neighbors json")?;
        let map = v.as_object().ok_or("show bgp neighbors json: not an object")?;
        map.iter()
            .find(|(k, _)| k.parse::<IpAddr>().is_ok_and(|a| a == address))
            .and_then(|(_, n)| n["bgpState"].as_str().map(str::to_string))
            .ok_or_else(|| format!("no neighbor {address} in show bgp neighbors json"))
    }

    pub fn is_established(&self, address: IpAddr) -> bool {
        self.neighbor_state(address).is_ok_and(|s| s == "Established")
    }

    pub fn wait_established(&self, address: IpAddr, timeout: Duration) -> Result<(), String> {
        wait_for(timeout, || match self.neighbor_state(address)? {
            s if s == "Established" => Ok(()),
            s => Err(format!("frr neighbor {address}: {s}")),
        })
    }

    /// The BGP table, both families, one [`Route`] per path, with
    /// communities (`show bgp ipv4|ipv6 unicast json detail`).
    pub fn routes(&self) -> Result<Vec<Route>, String> {
        let mut r = self.routes_v4()?;
        r.extend(self.routes_v6()?);
        Ok(r)
    }

    pub fn routes_v4(&self) -> Result<Vec<Route>, String> {
        parse_bgp_json(&self.vtysh_json("show bgp ipv4 unicast json detail")?)
    }

    pub fn routes_v6(&self) -> Result<Vec<Route>, String> {
        parse_bgp_json(&self.vtysh_json("show bgp ipv6 unicast json detail")?)
    }

    /// Number of prefixes in a family's BGP table (cheap: no detail).
    pub fn count_prefixes(&self, ipv6: bool) -> Result<usize, String> {
        let af = if ipv6 { "ipv6" } else { "ipv4" };
        // Not `summary json`'s ribCount: it counts table nodes, not prefixes.
        let v = self.vtysh_json(&format!("show bgp {af} unicast statistics json"))?;
        let key = if ipv6 { "ipv6Unicast" } else { "ipv4Unicast" };
        v[key][0]["totalPrefixes"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("no totalPrefixes in {v}"))
    }

    /// Kills bgpd and zebra (no NOTIFICATION) and starts both again.
    pub fn restart(&mut self) -> Result<(), String> {
        self.bgpd.stop();
        self.zebra.stop();
        let (zebra, bgpd) = Self::spawn(&self.ns_name, &self.dir, &self.config)?;
        self.zebra = zebra;
        self.bgpd = bgpd;
        self.wait_ready()
    }

    /// SIGSTOP bgpd (its peers' hold timers run out).
    pub fn freeze(&self) {
        self.bgpd.signal(Signal::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.bgpd.signal(Signal::SIGCONT);
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        self.thaw();
        if std::thread::panicking() {
            eprintln!("--- bgpd.log tail ---\n{}", super::tail(&self.dir.join("bgpd.log"), 30));
        }
    }
}

/// Parses `show bgp … json detail` (each prefix: a header object, then
/// one object per path) or plain `show bgp … json` (paths only, without
/// communities).
pub fn parse_bgp_json(v: &Value) -> Result<Vec<Route>, String> {
    let map = v["routes"].as_object().map(|m| m.iter().collect::<Vec<_>>()).unwrap_or_default();
    let mut routes = Vec::new();
    for (prefix, paths) in map {
        let prefix = normalize_prefix(prefix)?;
        for p in paths.as_array().map(Vec::as_slice).unwrap_or_default() {
            if p.get("nexthops").is_none() {
                continue; // the detail header
            }
            let num = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
            let mut r = Route {
                prefix: prefix.clone(),
                best: p["bestpath"].as_bool().or_else(|| p["bestpath"]["overall"].as_bool()).unwrap_or(false),
                local_pref: num(&p["locPrf"]).or_else(|| num(&p["localPref"])),
                med: num(&p["metric"]).or_else(|| num(&p["med"])),
                from: p["peer"]["peerId"]
                    .as_str()
                    .or_else(|| p["peerId"].as_str())
                    .and_then(|a| a.parse().ok())
                    .filter(|a: &IpAddr| !a.is_unspecified()),
                since_ms: p["lastUpdate"]["epoch"].as_u64().map(|s| s * 1000),
                ..Route::default()
            };
            for nh in p["nexthops"].as_array().map(Vec::as_slice).unwrap_or_default() {
                r.next_hops.extend(nh["ip"].as_str().and_then(|s| s.parse::<IpAddr>().ok()));
            }
            if let Some(segs) = p["aspath"]["segments"].as_array() {
                for s in segs {
                    r.as_path
                        .extend(s["list"].as_array().map(Vec::as_slice).unwrap_or_default().iter().filter_map(num));
                }
            } else if let Some(path) = p["path"].as_str().or_else(|| p["aspath"]["string"].as_str()) {
                r.as_path = path
                    .split(|c: char| c.is_whitespace() || c == '{' || c == '}' || c == ',')
                    .filter_map(|a| a.parse().ok())
                    .collect();
            }
            for c in p["community"]["list"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let c = c.as_str().unwrap_or_default();
                r.communities.push(parse_frr_community(c).ok_or_else(|| format!("bad community {c:?}"))?);
            }
            for c in p["largeCommunity"]["list"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let s = c.as_str().unwrap_or_default();
                let n: Vec<u32> = s.split(':').filter_map(|x| x.parse().ok()).collect();
                match n.as_slice() {
                    [a, b, c] => r.large_communities.push((*a, *b, *c)),
                    _ => return Err(format!("bad large community {s:?}")),
                }
            }
            routes.push(r);
        }
    }
    Ok(routes)
}

/// `65000:100` or one of FRR's names for the well-known communities.
fn parse_frr_community(s: &str) -> Option<(u16, u16)> {
    Some(match s {
        "gshut" => (0xffff, 0x0000),
        "acceptOwn" => (0xffff, 0x0001),
        "routeFilterTranslatedv4" => (0xffff, 0x0002),
        "routeFilterv4" => (0xffff, 0x0003),
        "routeFilterTranslatedv6" => (0xffff, 0x0004),
        "routeFilterv6" => (0xffff, 0x0005),
        "llgrStale" => (0xffff, 0x0006),
        "noLlgr" => (0xffff, 0x0007),
        "acceptownNexthop" => (0xffff, 0x0008),
        "blackhole" => (0xffff, 0x029a),
        "noExport" => (0xffff, 0xff01),
        "noAdvertise" => (0xffff, 0xff02),
        "localAs" => (0xffff, 0xff03),
        "noPeer" => (0xffff, 0xff04),
        _ => {
            let (a, b) = s.split_once(':')?;
            (a.parse().ok()?, b.parse().ok()?)
        }
    })
}
