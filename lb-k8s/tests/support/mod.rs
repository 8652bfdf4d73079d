//! Interop test harness: network namespaces and real routers.
//!
//! Integration tests that talk BGP to BIRD 2, FRR or GoBGP include this
//! module with `mod support;` and get:
//!
//! - [`netns`]: [`Netns`] (a named network namespace, deleted on drop),
//!   veth links between two namespaces, a [`Segment`] (one L2 bridge for
//!   several namespaces), commands and threads inside a namespace.
//! - [`bird`], [`frr`], [`gobgp`]: a config builder and a running router per
//!   daemon, each in a namespace and its own temporary directory, killed and
//!   reaped on drop, with queries parsed into [`Route`].
//! - [`mrt`]: a TABLE_DUMP_V2 writer, to inject many routes into GoBGP fast.
//! - Here: [`Route`], [`wait_for`], [`peak_rss_kib`], [`TempDir`],
//!   [`skip_unless_root!`] and prefix generators.
//!
//! Expected flow of a test:
//!
//! ```ignore
//! #[test]
//! fn bird_to_gobgp() {
//!     support::skip_unless_root!();
//!     let (a, b) = (Netns::new().unwrap(), Netns::new().unwrap());
//!     Netns::link(&a, &b, &["192.0.2.1/24"], &["192.0.2.2/24"]).unwrap();
//!     let bird = Bird::start(&a, &BirdConfig::new(...)).unwrap();
//!     let gobgp = Gobgp::start(&b, &GobgpConfig::new(...)).unwrap();
//!     wait_for(Duration::from_secs(10), || gobgp.routes_v4()...).unwrap();
//! }   // routers, then namespaces, are torn down here, also on panic
//! ```
//!
//! Guarantees: every name (namespace, temp dir, API port) is unique per
//! process and counter, so tests run in parallel (threads of one `cargo test`
//! process or processes of nextest). Leftovers of killed test processes
//! (namespaces and temp dirs whose creator PID is gone) are swept on the
//! first use of [`Netns::available`]. Every external command has a timeout,
//! so a frozen router cannot hang a test. On a panic, each router prints the
//! tail of its log to stderr while it is dropped; set `LBT_KEEP=1` to keep
//! the temp dirs. Our own binaries run under the same guard with
//! [`Netns::daemon`] (a [`Daemon`]); in-process speakers with
//! [`Netns::run`] / [`Netns::spawn`].
//!
//! Router behaviour worth knowing when writing tests (BIRD 2.0.12, FRR
//! 8.4.4, GoBGP 3.10.0, measured here):
//!
//! - GoBGP stays Idle for a hard-coded 5 s after any session drop that was
//!   not an admin reset, refusing connections meanwhile
//!   (`idle-hold-time-after-reset` only applies to `gobgp neighbor reset`):
//!   prefer BIRD or FRR as the peer in reconnect tests.
//! - GoBGP sends IPv6 routes added with `rib add -a ipv6` with next hop
//!   `::` unless given `nexthop ADDR`.
//! - FRR lists a received path a moment before best-path selection marks
//!   it: wait for `best`, not only for presence.
//! - BIRD may hold its first UPDATE after Established until its next
//!   KEEPALIVE tick (hence the 1 s keepalive default here); a BIRD that
//!   got "connection refused" waits its error wait time (1 s, doubling to
//!   5 s) before retrying: start the passive side first.
//! - BIRD prints `from ADDR` in `show route` only when the peer is not the
//!   next hop; [`Bird::routes`] fills [`Route::from`] from its config.
//! - BIRD protocol names must not be keywords (`router`, `bgp`, …).
//! - The root namespace of the test machine may itself use documentation
//!   addresses (192.0.2.2 is on the host's eth0 here): assert on namespace
//!   identity, not on an address being absent from the host.

#![allow(dead_code, unused_imports, unused_macros)]

pub mod bird;
pub mod exabgp;
pub mod frr;
pub mod gobgp;
pub mod mrt;
pub mod netns;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use bird::{Bird, BirdConfig, BirdExport, BirdNeighbor};
pub use exabgp::{Exabgp, ExabgpConfig};
pub use frr::{Frr, FrrConfig, FrrNeighbor};
pub use gobgp::{Gobgp, GobgpConfig, GobgpNeighbor};
pub use netns::{Netns, Segment};

/// Returns from the calling test when network namespaces cannot be
/// created here (not root), saying so: a `skipped` line on the terminal
/// (written past the test harness's capture, so it shows beside the
/// test's `ok`), and a line in the file `LBT_SKIP_LOG` names, which
/// `scripts/test.sh` counts in its summary. With `LBT_REQUIRE_NETNS=1` in
/// the environment (CI, where we are root) it panics instead, so the
/// interop tests cannot be skipped silently.
///
/// Use as the first statement of a test: `support::skip_unless_root!();`.
/// Needs the harness mounted as `mod support;` at the test crate's root.
macro_rules! skip_unless_root {
    () => {
        if let Err(why) = $crate::support::Netns::available() {
            if std::env::var_os("LBT_REQUIRE_NETNS").is_some() {
                panic!("LBT_REQUIRE_NETNS is set but {why}");
            }
            $crate::support::report_skip(&why);
            return;
        }
    };
}
pub(crate) use skip_unless_root;

/// Says that the current test is skipped, and why (see [`skip_unless_root`]).
pub fn report_skip(why: &str) {
    use std::io::Write as _;
    let test = std::thread::current().name().unwrap_or("an interop test").to_string();
    let line = format!("skipped: {test}: {why}\n");
    // `std::io::stderr()` is not captured by the test harness; `eprintln!` is.
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(path) = std::env::var_os("LBT_SKIP_LOG")
        && let Ok(mut log) = std::fs::OpenOptions::new().create(true).append(true).open(path)
    {
        let _ = log.write_all(line.as_bytes());
    }
}

/// How long one external command (birdc, vtysh, gobgp, ip) may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Default deadline for a BGP session to come up in tests.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(15);

/// A unique name `{prefix}-{pid}-{n}` for this process.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// One path to one prefix as a router shows it (one entry per path: an
/// ECMP prefix learnt from two peers gives two `Route`s, see [`paths`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// Canonical `addr/len`, e.g. `203.0.113.1/32`, `2001:db8::1/128`.
    pub prefix: String,
    /// Next hops of this path: the BGP next hop and, where the router shows
    /// them, more (BIRD's merged multipath, FRR's link-local).
    pub next_hops: Vec<IpAddr>,
    /// AS numbers of the AS_PATH, sequences and sets flattened.
    pub as_path: Vec<u32>,
    /// Standard communities `(asn, value)`.
    pub communities: Vec<(u16, u16)>,
    /// Large communities `(global, local1, local2)`.
    pub large_communities: Vec<(u32, u32, u32)>,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    /// Whether the router selected this path as best.
    pub best: bool,
    /// The peer the path came from (`None` for local routes).
    pub from: Option<IpAddr>,
    /// BIRD only: the protocol that holds the path (`gob4`, `lbt_static4`).
    pub protocol: Option<String>,
    /// When the router last changed this path, ms since the Unix epoch.
    /// Millisecond precision from BIRD, seconds from GoBGP and FRR.
    pub since_ms: Option<u64>,
}

impl Route {
    pub fn is_ipv6(&self) -> bool {
        self.prefix.contains(':')
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} via {:?} path {:?}", self.prefix, self.next_hops, self.as_path)?;
        if !self.communities.is_empty() {
            write!(f, " comm {:?}", self.communities)?;
        }
        if !self.large_communities.is_empty() {
            write!(f, " large {:?}", self.large_communities)?;
        }
        if let Some(lp) = self.local_pref {
            write!(f, " lp {lp}")?;
        }
        if self.best {
            write!(f, " best")?;
        }
        Ok(())
    }
}

/// The paths to `prefix` among `routes` (any spelling that parses).
pub fn paths<'a>(routes: &'a [Route], prefix: &str) -> Vec<&'a Route> {
    let want = normalize_prefix(prefix).unwrap_or_else(|_| prefix.to_string());
    routes.iter().filter(|r| r.prefix == want).collect()
}

/// All distinct next hops of all paths to `prefix`, sorted.
pub fn next_hops(routes: &[Route], prefix: &str) -> Vec<IpAddr> {
    let mut hops: Vec<IpAddr> = paths(routes, prefix).iter().flat_map(|r| r.next_hops.iter().copied()).collect();
    hops.sort();
    hops.dedup();
    hops
}

/// The sorted, deduplicated prefixes of `routes`.
pub fn prefixes(routes: &[Route]) -> Vec<String> {
    let mut p: Vec<String> = routes.iter().map(|r| r.prefix.clone()).collect();
    p.sort();
    p.dedup();
    p
}

/// Parses `addr/len` (or a bare address as a host route) and prints it
/// canonically, host bits as given.
pub fn normalize_prefix(s: &str) -> Result<String, String> {
    let (addr, len) = match s.trim().split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s.trim(), None),
    };
    let addr: IpAddr = addr.parse().map_err(|e| format!("bad prefix {s:?}: {e}"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len: u8 = match len {
        Some(l) => l.parse().map_err(|e| format!("bad prefix length in {s:?}: {e}"))?,
        None => max,
    };
    if len > max {
        return Err(format!("prefix length {len} > {max} in {s:?}"));
    }
    Ok(format!("{addr}/{len}"))
}

/// `n` consecutive IPv4 /32 prefixes from `first` (e.g. `10.0.0.0`), for
/// route-scale tests. Panics if the range wraps.
pub fn host_prefixes_v4(first: Ipv4Addr, n: u32) -> Vec<String> {
    let base = u32::from(first);
    (0..n).map(|i| format!("{}/32", Ipv4Addr::from(base.checked_add(i).expect("IPv4 prefix range wraps")))).collect()
}

/// `n` consecutive IPv6 /128 prefixes from `first`.
pub fn host_prefixes_v6(first: Ipv6Addr, n: u32) -> Vec<String> {
    let base = u128::from(first);
    (0..n).map(|i| format!("{}/128", Ipv6Addr::from(base + u128::from(i)))).collect()
}

/// Polls `probe` every 50 ms until it returns `Ok` or `timeout` passes.
///
/// `probe` returns `Err(what it saw)` while the condition does not hold;
/// the timeout error quotes the last such message, so a failing test says
/// what the router showed instead of just "timed out".
pub fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe() {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!("timed out after {timeout:?}; last seen: {last}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that `probe` keeps returning `Ok` for the whole of `period`
/// (for "must not happen" checks, e.g. a session with a wrong password
/// never establishes). Returns the first `Err` as the failure.
pub fn holds_for(period: Duration, mut probe: impl FnMut() -> Result<(), String>) -> Result<(), String> {
    let start = Instant::now();
    loop {
        probe().map_err(|e| format!("condition broke after {:?}: {e}", start.elapsed()))?;
        if start.elapsed() >= period {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Peak resident set size (VmHWM) of `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> Result<u64, String> {
    proc_status_kib(pid, "VmHWM:")
}

/// Current resident set size (VmRSS) of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    proc_status_kib(pid, "VmRSS:")
}

fn proc_status_kib(pid: u32, key: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let line = status.lines().find(|l| l.starts_with(key)).ok_or_else(|| format!("no {key} in {path}"))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .map_err(|e| format!("{path}: bad {key} line {line:?}: {e}"))
}

/// Milliseconds since the Unix epoch now.
pub fn now_unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A directory `/tmp/lbt-<pid>-<n>`, removed on drop (kept if `LBT_KEEP`
/// is set in the environment).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> Result<Self, String> {
        let path = std::env::temp_dir().join(unique_name("lbt"));
        std::fs::create_dir(&path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// `chmod 755` and `chown -R user:group` (FRR drops privileges to
    /// `frr` and must reach its sockets and pid files).
    pub fn give_to(&self, owner: &str) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", self.path.display()))?;
        run(Command::new("chown").arg("-R").arg(owner).arg(&self.path)).map(drop)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("LBT_KEEP").is_some() {
            eprintln!("kept {}", self.path.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Runs `cmd` to completion with [`COMMAND_TIMEOUT`]; `Ok(stdout)` on exit
/// status 0, else an error with the command line, status and stderr.
pub fn run(cmd: &mut Command) -> Result<String, String> {
    run_with_timeout(cmd, COMMAND_TIMEOUT)
}

/// [`run`] with an explicit timeout; the command is killed when it passes.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<String, String> {
    let out = output_with_timeout(cmd, timeout)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} failed ({}): {}{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

/// Runs `cmd` with stdout and stderr captured, killing it after `timeout`.
pub fn output_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", describe(cmd)))?;
    // Read the pipes on other threads: a command printing more than a pipe
    // buffer (route dumps) would otherwise block before it exits.
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(res) => res.map_err(|e| format!("wait {}: {e}", describe(cmd))),
        Err(_) => {
            kill_pid(id, nix::sys::signal::Signal::SIGKILL);
            Err(format!("{} timed out after {timeout:?}", describe(cmd)))
        }
    }
}

/// `program arg arg …`, for error messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Sends `signal` to `pid`, ignoring errors (the process may be gone).
pub fn kill_pid(pid: u32, signal: nix::sys::signal::Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// A daemon started by the harness: killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Result<Self, String> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("open {}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| format!("dup {}: {e}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", describe(cmd)))?;
        Ok(Self { name: name.to_string(), child: Some(child), log })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Err` with the exit status and log tail if the process has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        let Some(child) = self.child.as_mut() else {
            return Err(format!("{} is stopped", self.name));
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited ({status}); log tail:\n{}", self.name, tail(&self.log, 20))),
            Err(e) => Err(format!("{}: wait: {e}", self.name)),
        }
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(pid) = self.pid() {
            kill_pid(pid, signal);
        }
    }

    /// SIGKILL and reap; a no-op when already stopped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> &Path {
        &self.log
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() && self.child.is_some() {
            eprintln!("--- {} log tail ({}) ---\n{}", self.name, self.log.display(), tail(&self.log, 30));
        }
        self.stop();
    }
}

/// The last `n` lines of a file, or a note that it cannot be read.
pub fn tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("({}: {e})", path.display()),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DD HH:MM:SS[.fff]` (UTC) into ms since the Unix epoch.
pub fn parse_utc_ms(date: &str, time: &str) -> Option<u64> {
    let mut d = date.split('-');
    let (y, mo, da) = (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':');
    let (h, mi, s): (i64, i64, i64) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    let frac = format!("{frac:0<3}");
    let ms: i64 = frac.get(..3)?.parse().ok()?;
    let days = days_from_civil(y, mo, da);
    u64::try_from(((days * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms).ok()
}
