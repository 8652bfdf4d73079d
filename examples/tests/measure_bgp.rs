//! Measurements of `lb standalone` against BIRD, with gobgpd as the
//! baseline in the same run. Not part of the test suite (needs root and
//! takes a while); run with
//!
//! ```sh
//! cargo test --release -p lb-examples --test measure_bgp -- --ignored --nocapture
//! ```
//!
//! - service latency: a Service written to the services file until its
//!   route is in BIRD's table (BIRD's own millisecond route timestamp), and
//!   a Service deleted until BIRD no longer has it (polled every 2 ms);
//! - 10,000 routes: from BIRD's session reaching Established to its
//!   10,000th route (BIRD's timestamps), for `lb` and for gobgpd sending the
//!   same 10,000 prefixes to the same BIRD; peak RSS of both.

#[path = "../../lb-k8s/tests/support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use support::{
    Bird, BirdConfig, BirdNeighbor, Daemon, Gobgp, GobgpConfig, Netns, Segment, TempDir, host_prefixes_v6, now_unix_ms,
    parse_utc_ms, peak_rss_kib, wait_for,
};

const ROUTES: u32 = 10_000;
const ROUNDS: usize = 3;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("IP")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// When BIRD's protocol `name` last changed state (ms since the epoch).
fn protocol_since_ms(bird: &Bird, name: &str) -> u64 {
    let out = bird.birdc(&format!("show protocols {name}")).expect("show protocols");
    let line = out.lines().find(|l| l.starts_with(name)).expect("protocol line");
    let f: Vec<&str> = line.split_whitespace().collect();
    parse_utc_ms(f[4], f[5]).unwrap_or_else(|| panic!("timestamp in {line:?}"))
}

/// The latest route timestamp among `name`'s routes, once it has `count`.
fn last_route_ms(bird: &Bird, name: &str, count: usize) -> u64 {
    let routes = wait_for(Duration::from_secs(60), || {
        let r = bird.routes_from(name)?;
        if r.len() >= count { Ok(r) } else { Err(format!("{} of {count} routes", r.len())) }
    })
    .expect("all routes");
    routes.iter().filter_map(|r| r.since_ms).max().expect("timestamps")
}

fn services_v6(n: u32) -> String {
    let mut s = String::with_capacity(n as usize * 200);
    for i in 0..n {
        let _ = write!(
            s,
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: default}}\nspec: {{type: LoadBalancer, ipFamilies: [IPv6], ports: [{{port: 80}}]}}\n"
        );
    }
    s
}

fn lb_config(pool: &str, peer: &str, my_asn: u32, peer_asn: u32) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: pool}}\nspec: {{addresses: [\"{pool}\"]}}\n---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: adv}}\n---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: bird}}\nspec: {{myASN: {my_asn}, peerASN: {peer_asn}, peerAddress: \"{peer}\", holdTime: 9s, connectTime: 1s}}\n"
    )
}

fn start_lb(ns: &Netns, dir: &TempDir, config: &str, services: &str) -> Daemon {
    std::fs::write(dir.join("config.yaml"), config).expect("write");
    std::fs::write(dir.join("services.yaml"), services).expect("write");
    let (c, s) = (dir.join("config.yaml"), dir.join("services.yaml"));
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_lb"));
    cmd.args(["standalone", "--node", "n1", "--config"]).arg(c).arg("--services").arg(s).env("LB_LOG", "warn");
    Daemon::spawn("lb", &mut cmd, dir.join("lb.log")).expect("lb")
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture, as root"]
fn measure() {
    support::skip_unless_root!();
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build; pass --release for meaningful figures");
    }
    let mut report = String::new();

    // 1. Service added / deleted until BIRD has / has not the route.
    {
        let (router, node) = (Netns::new().expect("ns"), Netns::new().expect("ns"));
        Netns::link(&router, &node, &["192.0.2.1/24"], &["192.0.2.11/24"]).expect("link");
        let bird = Bird::start(
            &router,
            &BirdConfig::new(Ipv4Addr::new(192, 0, 2, 1), 64501)
                .neighbor(BirdNeighbor::new("lb", ip("192.0.2.11"), 64500).passive()),
        )
        .expect("bird");
        let dir = TempDir::new().expect("dir");
        let svc = |name: &str| {
            format!(
                "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n"
            )
        };
        let _lb = start_lb(&node, &dir, &lb_config("203.0.113.0/24", "192.0.2.1", 64500, 64501), &svc("base"));
        bird.wait_established("lb", Duration::from_secs(20)).expect("session");
        wait_for(Duration::from_secs(20), || if bird.routes()?.len() == 1 { Ok(()) } else { Err("no".into()) })
            .expect("base route");
        let (mut added, mut deleted) = (Vec::new(), Vec::new());
        for round in 0..7 {
            // Let the previous change settle, so each sample stands alone.
            std::thread::sleep(Duration::from_millis(300));
            let with = format!("{}{}", svc("base"), svc("probe"));
            let tmp = dir.join(".services.tmp");
            std::fs::write(&tmp, &with).expect("write");
            let t0 = now_unix_ms();
            std::fs::rename(&tmp, dir.join("services.yaml")).expect("rename");
            let route = wait_for(Duration::from_secs(10), || {
                bird.routes()?.into_iter().find(|r| r.prefix == "203.0.113.1/32").ok_or_else(|| "absent".to_string())
            })
            .expect("probe route");
            added.push(route.since_ms.expect("BIRD timestamp").saturating_sub(t0) as f64);

            std::thread::sleep(Duration::from_millis(300));
            std::fs::write(&tmp, svc("base")).expect("write");
            let start = Instant::now();
            std::fs::rename(&tmp, dir.join("services.yaml")).expect("rename");
            loop {
                let out = bird.birdc("show route 203.0.113.1/32").unwrap_or_default();
                if !out.contains("203.0.113.1/32") {
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(10), "round {round}: not withdrawn");
                std::thread::sleep(Duration::from_millis(2));
            }
            deleted.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        let _ = writeln!(
            report,
            "service added -> route in BIRD: median {:.0} ms (samples {added:?})\nservice deleted -> route gone from BIRD: median {:.1} ms (polled every 2 ms; samples {:?})",
            median(added.clone()),
            median(deleted.clone()),
            deleted.iter().map(|d| (d * 10.0).round() / 10.0).collect::<Vec<_>>()
        );
    }

    // 2. 10,000 routes to one BIRD, from lb and from gobgpd.
    let prefixes = host_prefixes_v6("2001:db8:1::".parse().expect("v6"), ROUTES);
    let (mut lb_ms, mut gob_ms, mut lb_rss, mut gob_rss) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let segment = Segment::new().expect("segment");
        let router = Netns::new().expect("ns");
        let lb_ns = Netns::new().expect("ns");
        let gob_ns = Netns::new().expect("ns");
        segment.attach(&router, &["2001:db8::1/64"]).expect("attach");
        segment.attach(&lb_ns, &["2001:db8::11/64"]).expect("attach");
        segment.attach(&gob_ns, &["2001:db8::12/64"]).expect("attach");
        let bird = Bird::start(
            &router,
            &BirdConfig::new(Ipv4Addr::new(192, 0, 2, 1), 64501)
                .neighbor(BirdNeighbor::new("lb", ip("2001:db8::11"), 65001).passive())
                .neighbor(BirdNeighbor::new("gob", ip("2001:db8::12"), 65002).passive()),
        )
        .expect("bird");

        // gobgpd: routes injected first, the neighbor added afterwards, so
        // that the whole table is there when the session comes up.
        let gobgp = Gobgp::start(&gob_ns, &GobgpConfig::new(Ipv4Addr::new(192, 0, 2, 12), 65002)).expect("gobgp");
        let nh6: Ipv6Addr = "2001:db8::12".parse().expect("v6");
        gobgp.inject_routes(&prefixes, Ipv4Addr::new(192, 0, 2, 12), nh6).expect("inject");
        gobgp.cli(&["neighbor", "add", "2001:db8::1", "as", "64501"]).expect("neighbor add");
        bird.wait_established("gob", Duration::from_secs(30)).expect("gobgp session");
        let last = last_route_ms(&bird, "gob", ROUTES as usize);
        gob_ms.push(last.saturating_sub(protocol_since_ms(&bird, "gob")) as f64);
        gob_rss.push(peak_rss_kib(gobgp.pid().expect("pid")).expect("rss") as f64 / 1024.0);

        // lb: allocates the 10,000 Services at start, then connects.
        let dir = TempDir::new().expect("dir");
        let lb =
            start_lb(&lb_ns, &dir, &lb_config("2001:db8:1::/112", "2001:db8::1", 65001, 64501), &services_v6(ROUTES));
        bird.wait_established("lb", Duration::from_secs(60)).expect("lb session");
        let last = last_route_ms(&bird, "lb", ROUTES as usize);
        lb_ms.push(last.saturating_sub(protocol_since_ms(&bird, "lb")) as f64);
        lb_rss.push(peak_rss_kib(lb.pid().expect("pid")).expect("rss") as f64 / 1024.0);
    }
    let (l, g) = (median(lb_ms.clone()), median(gob_ms.clone()));
    let (lr, gr) = (median(lb_rss.clone()), median(gob_rss.clone()));
    let _ = writeln!(
        report,
        "{ROUTES} routes, Established -> last route in BIRD: lb median {l:.0} ms {lb_ms:?}, gobgpd median {g:.0} ms {gob_ms:?} (lb takes {:.2}x gobgpd's time)\npeak RSS: lb median {lr:.1} MiB {lb_rss:?}, gobgpd median {gr:.1} MiB {gob_rss:?} (lb uses {:.2}x gobgpd's memory)",
        l / g.max(1.0),
        lr / gr.max(0.001),
    );
    println!("\n{report}");
}
