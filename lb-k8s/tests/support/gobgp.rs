//! GoBGP (`gobgpd` 3.x) in a namespace: TOML config, daemon, `gobgp` CLI
//! queries and route injection.
//!
//! gobgpd's gRPC API listens on `127.0.0.1:<api_port>` inside its
//! namespace (a per-process counter from 50051, so two gobgpd in one
//! namespace do not collide); every CLI call runs inside the namespace.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use super::{Daemon, Netns, Route, TempDir, normalize_prefix, run_with_timeout, wait_for};

/// One `[[neighbors]]` entry.
#[derive(Debug, Clone)]
pub struct GobgpNeighbor {
    pub address: IpAddr,
    pub remote_as: u32,
    /// TCP MD5 key (`auth-password`).
    pub password: Option<String>,
    /// `passive-mode = true`: never connect, only accept.
    pub passive: bool,
    pub ipv4: bool,
    pub ipv6: bool,
    /// Seconds (keepalive is a third). Default 9.
    pub hold_time: u16,
    pub local_address: Option<IpAddr>,
    /// eBGP multihop TTL.
    pub multihop: Option<u8>,
}

impl GobgpNeighbor {
    /// Active, IPv4 and IPv6 unicast, hold time 9, connect retry 1.
    pub fn new(address: IpAddr, remote_as: u32) -> Self {
        Self {
            address,
            remote_as,
            password: None,
            passive: false,
            ipv4: true,
            ipv6: true,
            hold_time: 9,
            local_address: None,
            multihop: None,
        }
    }

    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_string());
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

    pub fn hold_time(mut self, seconds: u16) -> Self {
        self.hold_time = seconds;
        self
    }

    pub fn local_address(mut self, address: IpAddr) -> Self {
        self.local_address = Some(address);
        self
    }

    pub fn multihop(mut self, ttl: u8) -> Self {
        self.multihop = Some(ttl);
        self
    }
}

/// A gobgpd TOML config.
#[derive(Debug, Clone)]
pub struct GobgpConfig {
    pub router_id: Ipv4Addr,
    pub local_as: u32,
    /// BGP listen port; 179 by default, `-1` to not listen.
    pub listen_port: i32,
    pub neighbors: Vec<GobgpNeighbor>,
    /// Raw TOML appended (policies, more sections).
    pub extra: String,
}

impl GobgpConfig {
    pub fn new(router_id: Ipv4Addr, local_as: u32) -> Self {
        Self { router_id, local_as, listen_port: 179, neighbors: Vec::new(), extra: String::new() }
    }

    pub fn neighbor(mut self, neighbor: GobgpNeighbor) -> Self {
        self.neighbors.push(neighbor);
        self
    }

    pub fn listen_port(mut self, port: i32) -> Self {
        self.listen_port = port;
        self
    }

    pub fn render(&self) -> String {
        let mut c = String::new();
        let _ = writeln!(
            c,
            "[global.config]\n  as = {}\n  router-id = \"{}\"\n  port = {}\n",
            self.local_as, self.router_id, self.listen_port
        );
        for n in &self.neighbors {
            let _ = writeln!(
                c,
                "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}",
                n.address, n.remote_as
            );
            if let Some(p) = &n.password {
                let _ = writeln!(c, "    auth-password = \"{p}\"");
            }
            let _ = writeln!(
                c,
                "  [neighbors.timers.config]\n    connect-retry = 1\n    hold-time = {}\n    keepalive-interval = {}\n    idle-hold-time-after-reset = 1",
                n.hold_time,
                (n.hold_time / 3).max(1)
            );
            if n.passive || n.local_address.is_some() {
                c.push_str("  [neighbors.transport.config]\n");
                if n.passive {
                    c.push_str("    passive-mode = true\n");
                }
                if let Some(a) = n.local_address {
                    let _ = writeln!(c, "    local-address = \"{a}\"");
                }
            }
            if let Some(ttl) = n.multihop {
                let _ = writeln!(c, "  [neighbors.ebgp-multihop.config]\n    enabled = true\n    multihop-ttl = {ttl}");
            }
            for (on, name) in [(n.ipv4, "ipv4-unicast"), (n.ipv6, "ipv6-unicast")] {
                if on {
                    let _ = writeln!(
                        c,
                        "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{name}\""
                    );
                }
            }
            c.push('\n');
        }
        c.push_str(&self.extra);
        c
    }
}

/// A running gobgpd: killed and reaped on drop.
#[derive(Debug)]
pub struct Gobgp {
    daemon: Daemon,
    ns_name: String,
    api_port: u16,
    config: GobgpConfig,
    dir: TempDir,
}

impl Gobgp {
    /// Writes the TOML, starts gobgpd in `ns`, waits until its API answers.
    pub fn start(ns: &Netns, config: &GobgpConfig) -> Result<Self, String> {
        static NEXT_PORT: AtomicU16 = AtomicU16::new(50051);
        let api_port = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        let dir = TempDir::new()?;
        let daemon = Self::spawn(ns.name(), &dir, config, api_port)?;
        let mut g = Self { daemon, ns_name: ns.name().to_string(), api_port, config: config.clone(), dir };
        g.wait_ready()?;
        Ok(g)
    }

    fn spawn(ns_name: &str, dir: &TempDir, config: &GobgpConfig, api_port: u16) -> Result<Daemon, String> {
        let conf = dir.join("gobgpd.toml");
        std::fs::write(&conf, config.render()).map_err(|e| format!("write gobgpd.toml: {e}"))?;
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", ns_name, "gobgpd", "-t", "toml", "-f"])
            .arg(&conf)
            .arg("-p")
            .arg("--api-hosts")
            .arg(format!("127.0.0.1:{api_port}"))
            .arg("--pprof-disable");
        Daemon::spawn("gobgpd", &mut cmd, dir.join("gobgpd.log"))
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        wait_for(Duration::from_secs(10), || {
            self.daemon.check_alive()?;
            self.cli(&["global"]).map(drop)
        })
        .map_err(|e| format!("gobgpd did not start: {e}\nconfig:\n{}", self.config.render()))
    }

    pub fn pid(&self) -> Option<u32> {
        self.daemon.pid()
    }

    pub fn api_port(&self) -> u16 {
        self.api_port
    }

    pub fn config(&self) -> &GobgpConfig {
        &self.config
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.daemon.log()).unwrap_or_default()
    }

    /// Runs `gobgp -u 127.0.0.1 -p PORT ARGS…` in the namespace; its stdout.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        self.cli_timeout(args, Duration::from_secs(10))
    }

    fn cli_timeout(&self, args: &[&str], timeout: Duration) -> Result<String, String> {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.ns_name, "gobgp", "-u", "127.0.0.1", "-p", &self.api_port.to_string()])
            .args(args);
        run_with_timeout(&mut cmd, timeout)
    }

    /// The session state of neighbor `address`, lower case as gobgp prints
    /// it: `idle`, `connect`, `active`, `opensent`, `openconfirm`,
    /// `established`.
    pub fn neighbor_state(&self, address: IpAddr) -> Result<String, String> {
        let out = self.cli(&["neighbor", &address.to_string(), "-j"])?;
        let v: Value = serde_json::from_str(&out).map_err(|e| format!("gobgp neighbor json: {e}: {out}"))?;
        let peer = if let Value::Array(a) = &v { a.first().cloned().unwrap_or(Value::Null) } else { v };
        let state = &peer["state"]["session_state"];
        Ok(match state {
            Value::Number(n) => match n.as_u64() {
                Some(1) => "idle",
                Some(2) => "connect",
                Some(3) => "active",
                Some(4) => "opensent",
                Some(5) => "openconfirm",
                Some(6) => "established",
                _ => "unknown",
            }
            .to_string(),
            Value::String(s) => s.to_lowercase(),
            _ => return Err(format!("no session_state for {address} in {out}")),
        })
    }

    pub fn is_established(&self, address: IpAddr) -> bool {
        self.neighbor_state(address).is_ok_and(|s| s == "established")
    }

    pub fn wait_established(&self, address: IpAddr, timeout: Duration) -> Result<(), String> {
        wait_for(timeout, || match self.neighbor_state(address)? {
            s if s == "established" => Ok(()),
            s => Err(format!("gobgp neighbor {address}: {s}")),
        })
    }

    /// The global RIB, both families, one [`Route`] per path.
    pub fn routes(&self) -> Result<Vec<Route>, String> {
        let mut v4 = self.routes_v4()?;
        v4.extend(self.routes_v6()?);
        Ok(v4)
    }

    pub fn routes_v4(&self) -> Result<Vec<Route>, String> {
        parse_rib_json(&self.cli(&["global", "rib", "-a", "ipv4", "-j"])?)
    }

    pub fn routes_v6(&self) -> Result<Vec<Route>, String> {
        parse_rib_json(&self.cli(&["global", "rib", "-a", "ipv6", "-j"])?)
    }

    /// Routes received from `neighbor` before policy (`adj-in`).
    pub fn adj_in(&self, neighbor: IpAddr, ipv6: bool) -> Result<Vec<Route>, String> {
        let af = if ipv6 { "ipv6" } else { "ipv4" };
        parse_rib_json(&self.cli(&["neighbor", &neighbor.to_string(), "adj-in", "-a", af, "-j"])?)
    }

    /// Number of destinations (prefixes) in the global RIB of a family
    /// (`gobgp global rib summary`).
    pub fn count_prefixes(&self, ipv6: bool) -> Result<usize, String> {
        let af = if ipv6 { "ipv6" } else { "ipv4" };
        let out = self.cli(&["global", "rib", "summary", "-a", af])?;
        // "Table ipv4-unicast\nDestination: 3, Path: 3"
        out.split("Destination:")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("cannot parse rib summary: {out}"))
    }

    /// `gobgp global rib add PREFIX [ATTRS…] -a FAMILY`, e.g.
    /// `add_route("203.0.113.9/32", &["community", "65000:1"])`. An IPv6
    /// route needs `nexthop ADDR` among `attrs` (GoBGP's default is `::`).
    pub fn add_route(&self, prefix: &str, attrs: &[&str]) -> Result<(), String> {
        let prefix = normalize_prefix(prefix)?;
        let af = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let mut args = vec!["global", "rib", "add", &prefix];
        args.extend_from_slice(attrs);
        args.extend_from_slice(&["-a", af]);
        self.cli(&args).map(drop)
    }

    /// `gobgp global rib del PREFIX`.
    pub fn del_route(&self, prefix: &str) -> Result<(), String> {
        let prefix = normalize_prefix(prefix)?;
        let af = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        self.cli(&["global", "rib", "del", &prefix, "-a", af]).map(drop)
    }

    /// Injects many routes at once: writes an MRT TABLE_DUMP_V2 file and
    /// runs `gobgp mrt inject global` (10,000 routes in about a second,
    /// against minutes for one `rib add` per route). IPv4 routes get next
    /// hop `next_hop_v4`, IPv6 routes `next_hop_v6`; ORIGIN IGP, empty
    /// AS_PATH (gobgpd prepends its AS towards eBGP peers). Returns once
    /// the global RIB has grown by the number of prefixes given per family
    /// (so they must be new and distinct).
    ///
    /// The gobgp 3.10 CLI exits before its stream is drained: the last few
    /// hundred routes of a file are lost (a run of 2,000 kept 1,291-1,338;
    /// of 3, none). So the file holds the list followed by repeats of it,
    /// at least 4,096 entries of padding, and injection is retried if the
    /// RIB still falls short. A repeat replaces a path with an identical
    /// one, which GoBGP may re-advertise: for clean measurements inject
    /// before the peer under test connects.
    pub fn inject_routes(
        &self,
        prefixes: &[String],
        next_hop_v4: Ipv4Addr,
        next_hop_v6: Ipv6Addr,
    ) -> Result<(), String> {
        if prefixes.is_empty() {
            return Ok(());
        }
        let n6 = prefixes.iter().filter(|p| p.contains(':')).count();
        let n4 = prefixes.len() - n6;
        let (want4, want6) = (self.count_prefixes(false)? + n4, self.count_prefixes(true)? + n6);
        let now = u32::try_from(super::now_unix_ms() / 1000).unwrap_or(0);
        let copies = 1 + 4096_usize.div_ceil(prefixes.len());
        let dump = super::mrt::table_dump_v2(prefixes, next_hop_v4, next_hop_v6, now, copies)?;
        let file = self.dir.join(&super::unique_name("inject"));
        std::fs::write(&file, dump).map_err(|e| format!("write MRT file: {e}"))?;
        let path = file.to_string_lossy().into_owned();
        let mut last = String::new();
        for _ in 0..3 {
            let res = self.cli_timeout(&["mrt", "inject", "global", &path], Duration::from_secs(120));
            if let Err(e) = res {
                last = e;
                continue;
            }
            let done = wait_for(Duration::from_secs(5), || {
                let (c4, c6) = (self.count_prefixes(false)?, self.count_prefixes(true)?);
                if c4 >= want4 && c6 >= want6 {
                    Ok(())
                } else {
                    Err(format!("global rib has {c4} IPv4 / {c6} IPv6 prefixes, want {want4} / {want6}"))
                }
            });
            match done {
                Ok(()) => {
                    let _ = std::fs::remove_file(&file);
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        let _ = std::fs::remove_file(&file);
        Err(format!("mrt inject: {last}"))
    }

    /// Enables or disables neighbor `address` (`gobgp neighbor ADDR
    /// enable|disable`).
    pub fn set_neighbor_enabled(&self, address: IpAddr, enabled: bool) -> Result<(), String> {
        self.cli(&["neighbor", &address.to_string(), if enabled { "enable" } else { "disable" }]).map(drop)
    }

    /// Kills gobgpd and starts it again with the same config (its RIB is
    /// empty afterwards: re-inject routes).
    pub fn restart(&mut self) -> Result<(), String> {
        self.daemon.stop();
        self.daemon = Self::spawn(&self.ns_name, &self.dir, &self.config, self.api_port)?;
        self.wait_ready()
    }

    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    pub fn freeze(&self) {
        self.daemon.signal(Signal::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.daemon.signal(Signal::SIGCONT);
    }
}

impl Drop for Gobgp {
    fn drop(&mut self) {
        self.thaw();
    }
}

/// Parses `gobgp global rib -j` (or `adj-in -j`): a map from prefix to a
/// list of paths with typed attributes.
pub fn parse_rib_json(out: &str) -> Result<Vec<Route>, String> {
    if out.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_str(out).map_err(|e| format!("gobgp rib json: {e}"))?;
    let map = v.as_object().ok_or("gobgp rib json: not an object")?;
    let mut routes = Vec::new();
    for (prefix, paths) in map {
        let prefix = normalize_prefix(prefix)?;
        for p in paths.as_array().ok_or("gobgp rib json: paths not a list")? {
            let mut r = Route {
                prefix: prefix.clone(),
                best: p["best"].as_bool().unwrap_or(false),
                from: p["neighbor-ip"].as_str().and_then(|a| a.parse().ok()).filter(|a: &IpAddr| !a.is_unspecified()),
                since_ms: p["age"].as_u64().map(|s| s * 1000),
                ..Route::default()
            };
            for a in p["attrs"].as_array().map(Vec::as_slice).unwrap_or_default() {
                match a["type"].as_u64() {
                    Some(2) => {
                        for seg in a["as_paths"].as_array().map(Vec::as_slice).unwrap_or_default() {
                            for asn in seg["asns"].as_array().map(Vec::as_slice).unwrap_or_default() {
                                r.as_path.extend(asn.as_u64().and_then(|n| u32::try_from(n).ok()));
                            }
                        }
                    }
                    Some(3) => r.next_hops.extend(a["nexthop"].as_str().and_then(|s| s.parse::<IpAddr>().ok())),
                    Some(4) => r.med = a["metric"].as_u64().and_then(|n| u32::try_from(n).ok()),
                    Some(5) => r.local_pref = a["value"].as_u64().and_then(|n| u32::try_from(n).ok()),
                    Some(8) => {
                        for c in a["communities"].as_array().map(Vec::as_slice).unwrap_or_default() {
                            if let Some(c) = c.as_u64().and_then(|n| u32::try_from(n).ok()) {
                                r.communities.push(((c >> 16) as u16, (c & 0xffff) as u16));
                            }
                        }
                    }
                    Some(32) => {
                        for c in a["value"].as_array().map(Vec::as_slice).unwrap_or_default() {
                            let n = |k: &str| c[k].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
                            r.large_communities.push((n("ASN"), n("LocalData1"), n("LocalData2")));
                        }
                    }
                    Some(14) => {
                        r.next_hops.extend(a["nexthop"].as_str().and_then(|s| s.parse::<IpAddr>().ok()));
                        for nh in a["nexthops"].as_array().map(Vec::as_slice).unwrap_or_default() {
                            r.next_hops.extend(nh.as_str().and_then(|s| s.parse::<IpAddr>().ok()));
                        }
                    }
                    _ => {}
                }
            }
            routes.push(r);
        }
    }
    routes.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    Ok(routes)
}
