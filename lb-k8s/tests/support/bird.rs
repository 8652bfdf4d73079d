//! BIRD 2 in a namespace: config builder, daemon, `birdc` queries.
//!
//! The generated config has fast timers (`connect delay time 1; connect
//! retry time 1; error wait time 1, 5;`), `graceful restart off` (so
//! withdrawals are immediate), millisecond ISO time formats and no kernel
//! protocol unless asked: BIRD only learns and announces, it installs
//! nothing. BIRD runs in the foreground (`-f`) with `TZ=UTC`, so route
//! timestamps parse to Unix milliseconds.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::{Daemon, Netns, Route, TempDir, normalize_prefix, parse_utc_ms, run_with_timeout, wait_for};

/// What a BGP channel exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BirdExport {
    /// `export none;` (a pure receiver).
    None,
    /// `export all;` (BIRD as a route source).
    All,
    /// `export filter { BODY };` with a raw BIRD filter body, e.g.
    /// `bgp_community.add((65000,100)); accept;`.
    Filter(String),
}

/// One `protocol bgp` block.
#[derive(Debug, Clone)]
pub struct BirdNeighbor {
    /// The protocol name (`birdc show protocols NAME`): letters, digits,
    /// `_`, not a BIRD keyword (`router`, `bgp`, `table`, `filter`, … fail
    /// to parse).
    pub name: String,
    pub address: IpAddr,
    /// `None`: internal (iBGP, the local AS).
    pub remote_as: Option<u32>,
    /// `local ADDR as …` (source address).
    pub local_address: Option<IpAddr>,
    /// TCP MD5 key.
    pub password: Option<String>,
    /// `multihop TTL;`
    pub multihop: Option<u8>,
    /// Seconds; BIRD's minimum is 3. Default 9.
    pub hold_time: u16,
    /// Default 1 s. BIRD 2.0.12 sometimes holds back its first UPDATE
    /// after Established until its next KEEPALIVE tick (seen: 2.3 s with
    /// the default hold/3 = 3 s), so a short keepalive speeds tests up.
    /// `None`: BIRD's default, hold time / 3.
    pub keepalive_time: Option<u16>,
    /// `passive on;`: wait for the peer to connect.
    pub passive: bool,
    pub ipv4: bool,
    pub ipv6: bool,
    /// `import all;` when true (default), else `import none;`.
    pub import: bool,
    pub export: BirdExport,
    /// `next hop address` for the IPv6 channel (needed to carry IPv6
    /// routes over an IPv4 session).
    pub ipv6_next_hop: Option<Ipv6Addr>,
    /// `next hop address` for the IPv4 channel.
    pub ipv4_next_hop: Option<Ipv4Addr>,
    /// Raw lines added inside the `protocol bgp` block.
    pub extra: String,
}

impl BirdNeighbor {
    /// An eBGP neighbor with the address family of `address` enabled,
    /// `import all; export none;`, hold time 9, keepalive 1, active.
    pub fn new(name: &str, address: IpAddr, remote_as: u32) -> Self {
        Self {
            name: name.to_string(),
            address,
            remote_as: Some(remote_as),
            local_address: None,
            password: None,
            multihop: None,
            hold_time: 9,
            keepalive_time: Some(1),
            passive: false,
            ipv4: address.is_ipv4(),
            ipv6: address.is_ipv6(),
            import: true,
            export: BirdExport::None,
            ipv6_next_hop: None,
            ipv4_next_hop: None,
            extra: String::new(),
        }
    }

    /// An iBGP neighbor (`neighbor ADDR as LOCAL_AS`, `direct`).
    pub fn internal(name: &str, address: IpAddr) -> Self {
        Self { remote_as: None, ..Self::new(name, address, 0) }
    }

    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_string());
        self
    }

    pub fn multihop(mut self, ttl: u8) -> Self {
        self.multihop = Some(ttl);
        self
    }

    pub fn hold_time(mut self, seconds: u16) -> Self {
        self.hold_time = seconds;
        self
    }

    pub fn keepalive_time(mut self, seconds: Option<u16>) -> Self {
        self.keepalive_time = seconds;
        self
    }

    pub fn passive(mut self) -> Self {
        self.passive = true;
        self
    }

    pub fn local_address(mut self, address: IpAddr) -> Self {
        self.local_address = Some(address);
        self
    }

    /// Which channels to open.
    pub fn families(mut self, ipv4: bool, ipv6: bool) -> Self {
        self.ipv4 = ipv4;
        self.ipv6 = ipv6;
        self
    }

    pub fn import(mut self, import: bool) -> Self {
        self.import = import;
        self
    }

    pub fn export(mut self, export: BirdExport) -> Self {
        self.export = export;
        self
    }

    pub fn ipv6_next_hop(mut self, address: Ipv6Addr) -> Self {
        self.ipv6_next_hop = Some(address);
        self
    }

    pub fn ipv4_next_hop(mut self, address: Ipv4Addr) -> Self {
        self.ipv4_next_hop = Some(address);
        self
    }

    pub fn extra(mut self, lines: &str) -> Self {
        self.extra.push_str(lines);
        self.extra.push('\n');
        self
    }
}

/// A whole `bird.conf`.
#[derive(Debug, Clone)]
pub struct BirdConfig {
    pub router_id: Ipv4Addr,
    pub local_as: u32,
    pub neighbors: Vec<BirdNeighbor>,
    /// Prefixes of a `protocol static` with `blackhole` routes (one
    /// protocol per family: `lbt_static4`, `lbt_static6`), announced by
    /// neighbors whose export lets them through.
    pub static_routes: Vec<String>,
    /// Add `protocol kernel` (`export all; merge paths on`) per family, to
    /// install learnt routes (with ECMP) into the namespace's FIB.
    pub kernel_export: bool,
    /// Raw top-level config (filters, functions, more protocols).
    pub extra: String,
}

impl BirdConfig {
    pub fn new(router_id: Ipv4Addr, local_as: u32) -> Self {
        Self {
            router_id,
            local_as,
            neighbors: Vec::new(),
            static_routes: Vec::new(),
            kernel_export: false,
            extra: String::new(),
        }
    }

    pub fn neighbor(mut self, neighbor: BirdNeighbor) -> Self {
        self.neighbors.push(neighbor);
        self
    }

    /// Announce `prefix` (a blackhole static route).
    pub fn static_route(mut self, prefix: &str) -> Self {
        self.static_routes.push(prefix.to_string());
        self
    }

    pub fn static_routes<S: AsRef<str>>(mut self, prefixes: impl IntoIterator<Item = S>) -> Self {
        self.static_routes.extend(prefixes.into_iter().map(|p| p.as_ref().to_string()));
        self
    }

    pub fn kernel_export(mut self) -> Self {
        self.kernel_export = true;
        self
    }

    pub fn extra(mut self, text: &str) -> Self {
        self.extra.push_str(text);
        self.extra.push('\n');
        self
    }

    /// The config text; `log_file` is where BIRD logs.
    pub fn render(&self, log_file: &std::path::Path) -> String {
        let mut c = String::new();
        let _ = writeln!(c, "log \"{}\" all;", log_file.display());
        let _ = writeln!(c, "router id {};", self.router_id);
        c.push_str("timeformat protocol iso long ms;\ntimeformat route iso long ms;\n");
        c.push_str("debug protocols { states };\n");
        c.push_str("protocol device { scan time 10; }\n");
        for (name, v6) in [("lbt_static4", false), ("lbt_static6", true)] {
            let routes: Vec<&String> = self.static_routes.iter().filter(|p| p.contains(':') == v6).collect();
            if routes.is_empty() {
                continue;
            }
            let _ = writeln!(c, "protocol static {name} {{\n  {};", if v6 { "ipv6" } else { "ipv4" });
            for p in routes {
                let _ = writeln!(c, "  route {p} blackhole;");
            }
            c.push_str("}\n");
        }
        if self.kernel_export {
            c.push_str("protocol kernel lbt_kernel4 { ipv4 { import none; export all; }; merge paths on; }\n");
            c.push_str("protocol kernel lbt_kernel6 { ipv6 { import none; export all; }; merge paths on; }\n");
        }
        c.push_str(&self.extra);
        for n in &self.neighbors {
            let _ = writeln!(c, "protocol bgp {} {{", n.name);
            match n.local_address {
                Some(a) => {
                    let _ = writeln!(c, "  local {a} as {};", self.local_as);
                }
                None => {
                    let _ = writeln!(c, "  local as {};", self.local_as);
                }
            }
            let _ = writeln!(c, "  neighbor {} as {};", n.address, n.remote_as.unwrap_or(self.local_as));
            // BIRD takes iBGP peers as multihop unless told they are
            // directly connected (then next hops resolve directly too).
            if n.remote_as.is_none() && n.multihop.is_none() {
                c.push_str("  direct;\n");
            }
            let _ = writeln!(c, "  hold time {};", n.hold_time);
            if let Some(k) = n.keepalive_time {
                let _ = writeln!(c, "  keepalive time {k};");
            }
            c.push_str("  connect delay time 1;\n  connect retry time 1;\n  error wait time 1, 5;\n");
            c.push_str("  graceful restart off;\n");
            if let Some(p) = &n.password {
                let _ = writeln!(c, "  password \"{p}\";");
            }
            if let Some(ttl) = n.multihop {
                let _ = writeln!(c, "  multihop {ttl};");
            }
            if n.passive {
                c.push_str("  passive on;\n");
            }
            c.push_str(&n.extra);
            let export = match &n.export {
                BirdExport::None => "none".to_string(),
                BirdExport::All => "all".to_string(),
                BirdExport::Filter(body) => format!("filter {{ {body} }}"),
            };
            let import = if n.import { "all" } else { "none" };
            for (on, family, next_hop) in [
                (n.ipv4, "ipv4", n.ipv4_next_hop.map(IpAddr::from)),
                (n.ipv6, "ipv6", n.ipv6_next_hop.map(IpAddr::from)),
            ] {
                if !on {
                    continue;
                }
                let _ = write!(c, "  {family} {{ import {import}; export {export};");

                if let Some(nh) = next_hop {
                    let _ = write!(c, " next hop address {nh};");
                }
                c.push_str(" };\n");
            }
            c.push_str("}\n");
        }
        c
    }
}

/// A running BIRD: killed and reaped on drop (its temp dir removed).
#[derive(Debug)]
pub struct Bird {
    daemon: Daemon,
    ns_name: String,
    config: BirdConfig,
    // Dropped after `daemon` (field order): the process dies first.
    dir: TempDir,
}

impl Bird {
    /// Writes the config, starts `bird -f` inside `ns` and waits until its
    /// control socket answers.
    pub fn start(ns: &Netns, config: &BirdConfig) -> Result<Self, String> {
        let dir = TempDir::new()?;
        let daemon = Self::spawn(ns.name(), &dir, config)?;
        let mut bird = Self { daemon, ns_name: ns.name().to_string(), config: config.clone(), dir };
        bird.wait_ready()?;
        Ok(bird)
    }

    fn spawn(ns_name: &str, dir: &TempDir, config: &BirdConfig) -> Result<Daemon, String> {
        let conf = dir.join("bird.conf");
        std::fs::write(&conf, config.render(&dir.join("bird.log"))).map_err(|e| format!("write bird.conf: {e}"))?;
        let ctl = dir.join("bird.ctl");
        let _ = std::fs::remove_file(&ctl);
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", ns_name, "bird", "-f", "-c"])
            .arg(&conf)
            .arg("-s")
            .arg(&ctl)
            .arg("-P")
            .arg(dir.join("bird.pid"))
            .env("TZ", "UTC");
        Daemon::spawn("bird", &mut cmd, dir.join("bird.out"))
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        wait_for(Duration::from_secs(10), || {
            self.daemon.check_alive()?;
            self.birdc_timeout("show status", Duration::from_secs(2)).map(drop)
        })
        .map_err(|e| format!("bird did not start: {e}\nconfig:\n{}", self.config_text()))
    }

    pub fn pid(&self) -> Option<u32> {
        self.daemon.pid()
    }

    pub fn config(&self) -> &BirdConfig {
        &self.config
    }

    /// The rendered config as written.
    pub fn config_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("bird.conf")).unwrap_or_default()
    }

    pub fn ctl(&self) -> PathBuf {
        self.dir.join("bird.ctl")
    }

    /// BIRD's own log file (`log … all` plus protocol state changes).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bird.log")).unwrap_or_default()
    }

    /// Runs a `birdc` command (e.g. `show route count`); the output without
    /// the `BIRD x.y ready.` banner. BIRD's in-band errors (syntax error,
    /// `…: no such protocol`) are returned as `Err`.
    pub fn birdc(&self, command: &str) -> Result<String, String> {
        self.birdc_timeout(command, Duration::from_secs(5))
    }

    fn birdc_timeout(&self, command: &str, timeout: Duration) -> Result<String, String> {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &self.ns_name, "birdc", "-s"]).arg(self.ctl()).args(command.split_whitespace());
        let out = run_with_timeout(&mut cmd, timeout)?;
        let body: Vec<&str> = out.lines().filter(|l| !(l.starts_with("BIRD ") && l.ends_with(" ready."))).collect();
        let body = body.join("\n");
        let first = body.lines().next().unwrap_or("");
        if first.starts_with("syntax error") || first.contains("no such") || first.starts_with("Unable to connect") {
            return Err(format!("birdc {command}: {body}"));
        }
        Ok(body)
    }

    /// `BGP state:` of protocol `name` (`Established`, `Active`, `Idle`,
    /// `Connect`, `OpenSent`, …; `Down` when the protocol is disabled).
    pub fn bgp_state(&self, name: &str) -> Result<String, String> {
        let out = self.birdc(&format!("show protocols all {name}"))?;
        if let Some(line) = out.lines().find(|l| l.trim_start().starts_with("BGP state:")) {
            return Ok(line.trim_start()["BGP state:".len()..].trim().to_string());
        }
        // A disabled/down protocol prints no BGP section.
        out.lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().nth(3))
            .map(|s| if s == "down" { "Down".to_string() } else { s.to_string() })
            .ok_or_else(|| format!("no state for {name} in: {out}"))
    }

    pub fn is_established(&self, name: &str) -> bool {
        self.bgp_state(name).is_ok_and(|s| s == "Established")
    }

    /// Waits until protocol `name` is Established.
    pub fn wait_established(&self, name: &str, timeout: Duration) -> Result<(), String> {
        wait_for(timeout, || match self.bgp_state(name)? {
            s if s == "Established" => Ok(()),
            s => Err(format!("bird protocol {name}: {s}")),
        })
    }

    /// All routes in all tables (`show route all`), one per path.
    pub fn routes(&self) -> Result<Vec<Route>, String> {
        self.parse_routes(&self.birdc("show route all")?)
    }

    /// Routes learnt from (or originated by) protocol `name`.
    pub fn routes_from(&self, name: &str) -> Result<Vec<Route>, String> {
        self.parse_routes(&self.birdc(&format!("show route all protocol {name}"))?)
    }

    /// Routes of the given family only.
    pub fn routes_v4(&self) -> Result<Vec<Route>, String> {
        self.parse_routes(&self.birdc("show route all table master4")?)
    }

    pub fn routes_v6(&self) -> Result<Vec<Route>, String> {
        self.parse_routes(&self.birdc("show route all table master6")?)
    }

    /// Parses `show route all` output; `from` is filled in from the
    /// neighbor config when BIRD omits it (it prints `from ADDR` only when
    /// the peer differs from the next hop).
    fn parse_routes(&self, out: &str) -> Result<Vec<Route>, String> {
        let mut routes = parse_show_route_all(out)?;
        for r in routes.iter_mut().filter(|r| r.from.is_none()) {
            let n = self.config.neighbors.iter().find(|n| r.protocol.as_deref() == Some(n.name.as_str()));
            r.from = n.map(|n| n.address);
        }
        Ok(routes)
    }

    /// `show route count [ARGS]`: the number of routes (paths) listed,
    /// e.g. `count_routes("protocol peer1")`, `count_routes("")` for all.
    pub fn count_routes(&self, args: &str) -> Result<usize, String> {
        let out = self.birdc(&format!("show route count {args}"))?;
        parse_route_count(&out).ok_or_else(|| format!("cannot parse route count from: {out}"))
    }

    /// Rewrites the config and applies it with `birdc configure`.
    pub fn reconfigure(&mut self, config: &BirdConfig) -> Result<(), String> {
        let conf = self.dir.join("bird.conf");
        std::fs::write(&conf, config.render(&self.dir.join("bird.log")))
            .map_err(|e| format!("write bird.conf: {e}"))?;
        let out = self.birdc("configure")?;
        if out.contains("Reconfigured") || out.contains("Reconfiguration in progress") {
            self.config = config.clone();
            Ok(())
        } else {
            Err(format!("birdc configure: {out}"))
        }
    }

    /// Kills BIRD (no NOTIFICATION: the socket just closes) and starts it
    /// again with the same config; waits for the control socket.
    pub fn restart(&mut self) -> Result<(), String> {
        self.daemon.stop();
        self.daemon = Self::spawn(&self.ns_name, &self.dir, &self.config)?;
        self.wait_ready()
    }

    /// Kills BIRD; queries fail until [`Bird::restart`].
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// SIGSTOP: BIRD stops sending keepalives; its peers' hold timers run.
    /// Do not query a frozen BIRD (birdc would time out).
    pub fn freeze(&self) {
        self.daemon.signal(Signal::SIGSTOP);
    }

    /// SIGCONT after [`Bird::freeze`].
    pub fn thaw(&self) {
        self.daemon.signal(Signal::SIGCONT);
    }

    /// Disables / enables protocol `name` (`birdc disable|enable NAME`):
    /// a clean session shutdown with a Cease NOTIFICATION.
    pub fn set_protocol_enabled(&self, name: &str, enabled: bool) -> Result<(), String> {
        self.birdc(&format!("{} {name}", if enabled { "enable" } else { "disable" })).map(drop)
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        // A frozen BIRD would ignore nothing but SIGKILL; thaw anyway so
        // nothing lingers stopped if the kill races with reaping.
        self.thaw();
        if std::thread::panicking() {
            eprintln!("--- bird.log tail ({}) ---\n{}", self.dir.path().display(), tail_str(&self.log(), 30));
        }
    }
}

fn tail_str(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Parses `show route count` output: `3 of 3 routes for 3 networks in
/// table master4` or a `Total: N of M routes …` line.
fn parse_route_count(out: &str) -> Option<usize> {
    let line =
        out.lines().find(|l| l.starts_with("Total:")).or_else(|| out.lines().rev().find(|l| l.contains(" routes ")))?;
    line.trim_start_matches("Total:").split_whitespace().next()?.parse().ok()
}

/// Parses `birdc show route all` into one [`Route`] per path.
pub fn parse_show_route_all(out: &str) -> Result<Vec<Route>, String> {
    let mut routes: Vec<Route> = Vec::new();
    let mut prefix = String::new();
    // Next hops from `via` lines of the current path, used when it has no
    // BGP.next_hop.
    let mut via: Vec<IpAddr> = Vec::new();
    let mut have_bgp_nh = false;
    let finish = |routes: &mut Vec<Route>, via: &mut Vec<IpAddr>, have_bgp_nh: bool| match routes.last_mut() {
        Some(r) if !have_bgp_nh => r.next_hops.append(via),
        _ => via.clear(),
    };
    for line in out.lines() {
        if line.trim().is_empty() || line.starts_with("Table ") {
            continue;
        }
        if let Some(attr) = line.strip_prefix('\t') {
            let Some(r) = routes.last_mut() else { continue };
            let attr = attr.trim();
            if let Some(rest) = attr.strip_prefix("via ") {
                if let Some(a) = rest.split_whitespace().next().and_then(|a| a.parse().ok()) {
                    via.push(a);
                }
            } else if let Some((key, value)) = attr.split_once(':') {
                let value = value.trim();
                match key {
                    "BGP.next_hop" => {
                        have_bgp_nh = true;
                        r.next_hops = value.split_whitespace().filter_map(|a| a.parse().ok()).collect();
                    }
                    "BGP.as_path" => {
                        r.as_path = value
                            .split(|c: char| c.is_whitespace() || c == '{' || c == '}' || c == ',')
                            .filter_map(|a| a.parse().ok())
                            .collect();
                    }
                    "BGP.local_pref" => r.local_pref = value.parse().ok(),
                    "BGP.med" => r.med = value.parse().ok(),
                    "BGP.community" => r.communities = parse_tuples(value)?,
                    "BGP.large_community" => r.large_communities = parse_tuples(value)?,
                    _ => {}
                }
            }
            continue;
        }
        // A path header: `PREFIX TYPE [PROTO DATE TIME (from ADDR)] * (PREF) …`
        // or, for a further path to the same prefix, spaces instead of PREFIX.
        finish(&mut routes, &mut via, have_bgp_nh);
        have_bgp_nh = false;
        let rest = if line.starts_with(' ') {
            line.trim_start()
        } else {
            let (p, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            prefix = normalize_prefix(p)?;
            rest.trim_start()
        };
        let mut route = Route { prefix: prefix.clone(), ..Route::default() };
        let (head, bracket) = rest.split_once('[').unwrap_or((rest, ""));
        if let Some(gw) = head.split_whitespace().skip_while(|w| *w != "via").nth(1) {
            via.extend(gw.parse::<IpAddr>().ok());
        }
        let (inside, after) = bracket.split_once(']').unwrap_or((bracket, ""));
        let words: Vec<&str> = inside.split_whitespace().collect();
        if let [proto, date, time, ..] = words.as_slice() {
            route.protocol = Some((*proto).to_string());
            route.since_ms = parse_utc_ms(date, time);
        }
        if let Some(i) = words.iter().position(|w| *w == "from") {
            route.from = words.get(i + 1).and_then(|a| a.parse().ok());
        }
        route.best = after.trim_start().starts_with('*');
        routes.push(route);
    }
    finish(&mut routes, &mut via, have_bgp_nh);
    Ok(routes)
}

/// `(65000,100) (65000,101)` or `(65000, 1, 2) …` into tuples.
fn parse_tuples<T: FromTuple>(value: &str) -> Result<Vec<T>, String> {
    value
        .split('(')
        .filter_map(|s| s.split_once(')').map(|(inner, _)| inner))
        .map(|inner| {
            let nums: Result<Vec<u32>, _> = inner.split(',').map(|n| n.trim().parse::<u32>()).collect();
            nums.ok().and_then(|n| T::from_nums(&n)).ok_or_else(|| format!("bad community ({inner}) in {value:?}"))
        })
        .collect()
}

trait FromTuple: Sized {
    fn from_nums(n: &[u32]) -> Option<Self>;
}

impl FromTuple for (u16, u16) {
    fn from_nums(n: &[u32]) -> Option<Self> {
        match n {
            [a, b] => Some((u16::try_from(*a).ok()?, u16::try_from(*b).ok()?)),
            _ => None,
        }
    }
}

impl FromTuple for (u32, u32, u32) {
    fn from_nums(n: &[u32]) -> Option<Self> {
        match n {
            [a, b, c] => Some((*a, *b, *c)),
            _ => None,
        }
    }
}
