//! Network namespaces, veth links and a shared L2 segment.
//!
//! A [`Netns`] is `lbt-<pid>-<n>`, has `lo` up and IPv6 DAD off (so
//! link-local and global addresses are usable at once), and on drop kills
//! every process inside it and deletes it. Interfaces the harness creates
//! are named `eth0`, `eth1`, … per namespace.
//!
//! Test addresses must come from the documentation ranges (192.0.2.0/24,
//! 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) or be link-local:
//! [`Netns::link`], [`Segment::attach`] and [`Netns::add_addr`] refuse
//! anything else, so a test can never shadow a real network. Route prefixes
//! that routers only announce are not checked.

use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

use super::{Daemon, kill_pid, run, unique_name};

const NETNS_DIR: &str = "/run/netns";

/// A network namespace owned by the test, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
    next_if: AtomicU32,
}

impl Netns {
    /// `Ok` when namespaces can be created here (we are root and `ip`
    /// works), else why not. Probed once per process; the first call also
    /// sweeps namespaces and temp dirs left by dead test processes.
    pub fn available() -> Result<(), String> {
        static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
        PROBE
            .get_or_init(|| {
                sweep_stale();
                let probe = unique_name("lbt");
                run(Command::new("ip").args(["netns", "add", &probe]))
                    .map_err(|e| format!("cannot create network namespaces (root needed): {e}"))?;
                run(Command::new("ip").args(["netns", "del", &probe])).map(drop)
            })
            .clone()
    }

    /// Creates a fresh namespace with `lo` up.
    pub fn new() -> Result<Self, String> {
        Self::available()?;
        let name = unique_name("lbt");
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Self { name, next_if: AtomicU32::new(0) };
        ns.ip(&["link", "set", "lo", "up"])?;
        ns.exec(&["sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`, the handle `setns` takes.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    /// A command running `program` inside the namespace
    /// (`ip netns exec <name> program`); add arguments and spawn it.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Starts `argv` inside the namespace as a [`Daemon`] (killed and
    /// reaped on drop) with stdout and stderr appended to `log`, e.g. our
    /// `lb standalone` binary.
    pub fn daemon(&self, name: &str, argv: &[&str], log: PathBuf) -> Result<Daemon, String> {
        let (program, args) = argv.split_first().ok_or("empty command")?;
        Daemon::spawn(name, self.command(program).args(args), log)
    }

    /// Runs `argv` inside the namespace; its stdout, or an error.
    pub fn exec(&self, argv: &[&str]) -> Result<String, String> {
        let (program, args) = argv.split_first().ok_or("empty command")?;
        run(self.command(program).args(args))
    }

    /// A kernel counter of this namespace's network stack, as `nstat`
    /// names it (`IcmpOutTimeExcds`, `TcpExtTCPMD5Failure`, …): proof that
    /// a packet reached the namespace and what became of it, for tests
    /// that must show something was tried before asserting it failed.
    pub fn counter(&self, name: &str) -> Result<u64, String> {
        // -a: absolute values, -z: print zeros, -s: leave nstat's history alone.
        let out = self.exec(&["nstat", "-azs", name])?;
        out.lines()
            .find_map(|l| {
                let mut fields = l.split_whitespace();
                (fields.next() == Some(name)).then(|| fields.next()?.parse().ok()).flatten()
            })
            .ok_or_else(|| format!("no counter {name} in: {out}"))
    }

    /// `ip -n <name> args…`.
    pub fn ip(&self, args: &[&str]) -> Result<String, String> {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// A fresh interface name for this namespace: `eth0`, `eth1`, ….
    fn next_ifname(&self) -> String {
        format!("eth{}", self.next_if.fetch_add(1, Ordering::Relaxed))
    }

    /// Creates a veth pair from `a` to `b`, puts `a_addrs` / `b_addrs`
    /// (`addr/len`) on the two ends (IPv6 with `nodad`) and brings both up.
    /// Returns the interface names in `a` and in `b`.
    pub fn link(a: &Netns, b: &Netns, a_addrs: &[&str], b_addrs: &[&str]) -> Result<(String, String), String> {
        for addr in a_addrs.iter().chain(b_addrs) {
            check_test_addr(addr)?;
        }
        let (if_a, if_b) = (a.next_ifname(), b.next_ifname());
        run(Command::new("ip")
            .args(["link", "add", &if_a, "netns", &a.name, "type", "veth", "peer", "name", &if_b, "netns", &b.name]))?;
        // Up first, then addresses: an IPv6 address added while the link is
        // down loses the first neighbor solicitation after the link comes
        // up (the first connection then waits 1 s for the ND retransmit).
        a.ip(&["link", "set", &if_a, "up"])?;
        b.ip(&["link", "set", &if_b, "up"])?;
        for (ns, ifname, addrs) in [(a, &if_a, a_addrs), (b, &if_b, b_addrs)] {
            for addr in addrs {
                ns.add_addr(ifname, addr)?;
            }
        }
        Ok((if_a, if_b))
    }

    /// Adds `addr/len` to `ifname` (e.g. a service /32 on `lo`); IPv6
    /// without duplicate address detection.
    pub fn add_addr(&self, ifname: &str, addr: &str) -> Result<(), String> {
        check_test_addr(addr)?;
        let mut args = vec!["addr", "add", addr, "dev", ifname];
        if addr.contains(':') {
            args.push("nodad");
        }
        self.ip(&args).map(drop)
    }

    /// Removes `addr/len` from `ifname`.
    pub fn del_addr(&self, ifname: &str, addr: &str) -> Result<(), String> {
        self.ip(&["addr", "del", addr, "dev", ifname]).map(drop)
    }

    /// `ip link set IF up|down` (e.g. to cut a session without a FIN).
    pub fn set_link(&self, ifname: &str, up: bool) -> Result<(), String> {
        self.ip(&["link", "set", ifname, if up { "up" } else { "down" }]).map(drop)
    }

    /// Turns on IPv4 and IPv6 forwarding in the namespace.
    pub fn enable_forwarding(&self) -> Result<(), String> {
        self.exec(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]).map(drop)
    }

    /// Runs `f` on a new thread that has entered this namespace (so its
    /// sockets live here) and returns its value; a panic in `f` is
    /// re-raised here. `f` may borrow: the thread is scoped. Build a tokio
    /// current-thread runtime inside `f` for async code.
    pub fn run<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let path = self.path();
        std::thread::scope(|s| {
            let thread = s.spawn(move || {
                enter(&path).unwrap_or_else(|e| panic!("{e}"));
                f()
            });
            thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Like [`Netns::run`] but returns at once with the thread's handle,
    /// for a speaker that runs while the test thread queries routers.
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let path = self.path();
        let name = self.name.clone();
        std::thread::Builder::new()
            .name(format!("in-{name}"))
            .spawn(move || {
                enter(&path).unwrap_or_else(|e| panic!("{e}"));
                f()
            })
            .unwrap_or_else(|e| panic!("spawn thread for {name}: {e}"))
    }

    /// Gateways of the kernel route to exactly `prefix` in this namespace
    /// (`ip -j route show PREFIX`; both for a single path and ECMP
    /// `nexthop` lists), sorted. Empty when there is no such route.
    pub fn fib_next_hops(&self, prefix: &str) -> Result<Vec<IpAddr>, String> {
        let family = if prefix.contains(':') { "-6" } else { "-4" };
        let out = self.ip(&[family, "-j", "route", "show", "exact", prefix])?;
        let v: serde_json::Value = serde_json::from_str(if out.trim().is_empty() { "[]" } else { &out })
            .map_err(|e| format!("ip -j route: {e}"))?;
        let mut hops: Vec<IpAddr> = Vec::new();
        for r in v.as_array().map(Vec::as_slice).unwrap_or_default() {
            hops.extend(r["gateway"].as_str().and_then(|g| g.parse::<IpAddr>().ok()));
            for nh in r["nexthops"].as_array().map(Vec::as_slice).unwrap_or_default() {
                hops.extend(nh["gateway"].as_str().and_then(|g| g.parse::<IpAddr>().ok()));
            }
        }
        hops.sort();
        Ok(hops)
    }

    /// PIDs of the processes whose network namespace this is.
    pub fn pids(&self) -> Vec<u32> {
        run(Command::new("ip").args(["netns", "pids", &self.name]))
            .map(|out| out.split_whitespace().filter_map(|p| p.parse().ok()).collect())
            .unwrap_or_default()
    }

    /// SIGKILLs every process inside (never this test process).
    pub fn kill_all(&self) {
        kill_in(&self.name);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        kill_in(&self.name);
        if let Err(e) = run(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("warning: {e}");
        }
    }
}

/// Moves the calling thread into the namespace at `path`.
pub fn enter(path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns {}: {e}", path.display()))
}

fn kill_in(name: &str) {
    let me = std::process::id();
    if let Ok(out) = run(Command::new("ip").args(["netns", "pids", name])) {
        for pid in out.split_whitespace().filter_map(|p| p.parse::<u32>().ok()).filter(|&p| p != me) {
            kill_pid(pid, nix::sys::signal::Signal::SIGCONT);
            kill_pid(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Removes `lbt-<pid>-<n>` namespaces and temp dirs whose creating process
/// is gone (a test binary killed by a timeout cannot run its drops).
fn sweep_stale() {
    let dead = |name: &str| -> bool {
        let mut parts = name.split('-');
        match (parts.next(), parts.next().and_then(|p| p.parse::<u32>().ok())) {
            (Some("lbt"), Some(pid)) => pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists(),
            _ => false,
        }
    };
    if let Ok(entries) = std::fs::read_dir(NETNS_DIR) {
        for name in entries.flatten().filter_map(|e| e.file_name().into_string().ok()).filter(|n| dead(n)) {
            kill_in(&name);
            let _ = run(Command::new("ip").args(["netns", "del", &name]));
        }
    }
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for e in entries.flatten() {
            if e.file_name().to_str().is_some_and(dead) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Refuses interface addresses outside the documentation ranges.
pub fn check_test_addr(addr: &str) -> Result<(), String> {
    let (ip, len) = addr.split_once('/').ok_or_else(|| format!("{addr:?}: want addr/len"))?;
    let ip: IpAddr = ip.parse().map_err(|e| format!("{addr:?}: {e}"))?;
    let _: u8 = len.parse().map_err(|e| format!("{addr:?}: bad length: {e}"))?;
    let ok = match ip {
        IpAddr::V4(v4) => matches!(v4.octets(), [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _]),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] & 0xffc0) == 0xfe80
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{addr}: test addresses must be in 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32 or fe80::/10"
        ))
    }
}

/// One L2 segment: a bridge in a dedicated "switch" namespace, with a
/// veth to each attached namespace. N speaker namespaces and a router
/// namespace attached to one `Segment` share a subnet (ECMP tests).
#[derive(Debug)]
pub struct Segment {
    switch: Netns,
}

impl Segment {
    /// The bridge is `br0` in the switch namespace: no STP, no multicast
    /// snooping (so ND and ARP flood), up.
    pub fn new() -> Result<Self, String> {
        let switch = Netns::new()?;
        switch.ip(&["link", "add", "br0", "type", "bridge", "stp_state", "0", "mcast_snooping", "0"])?;
        switch.ip(&["link", "set", "br0", "up"])?;
        Ok(Self { switch })
    }

    /// Plugs `ns` into the segment with `addrs` on its new interface;
    /// returns that interface's name in `ns`.
    pub fn attach(&self, ns: &Netns, addrs: &[&str]) -> Result<String, String> {
        let (port, ifname) = Netns::link(&self.switch, ns, &[], addrs)?;
        self.switch.ip(&["link", "set", &port, "master", "br0"])?;
        Ok(ifname)
    }

    /// The namespace holding the bridge (for tcpdump/tshark on `br0`).
    pub fn switch(&self) -> &Netns {
        &self.switch
    }
}
