//! Self-test of the interop harness (`tests/support`) against real routers
//! only: BIRD, FRR and GoBGP talk to each other in network namespaces.
//!
//! Needs root (skips with a message otherwise) and `bird`, `gobgpd`,
//! `/usr/lib/frr/{zebra,bgpd}` installed.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use support::{
    Bird, BirdConfig, BirdExport, BirdNeighbor, Frr, FrrConfig, FrrNeighbor, Gobgp, GobgpConfig, GobgpNeighbor, Netns,
    SESSION_TIMEOUT, Segment, holds_for, next_hops, paths, prefixes, wait_for,
};

const ROUTES: Duration = Duration::from_secs(10);

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

/// Two namespaces joined by a veth: A = 192.0.2.1, 2001:db8::1; B = .2, ::2.
fn pair() -> (Netns, Netns) {
    let a = Netns::new().expect("netns a");
    let b = Netns::new().expect("netns b");
    Netns::link(&a, &b, &["192.0.2.1/24", "2001:db8::1/64"], &["192.0.2.2/24", "2001:db8::2/64"]).expect("link");
    (a, b)
}

#[test]
fn netns_link_and_in_namespace_threads() {
    support::skip_unless_root!();
    let (a, b) = pair();
    assert!(a.ip(&["-br", "addr", "show", "eth0"]).unwrap().contains("192.0.2.1/24"));
    // A listener in B (the address exists only there), reached from a
    // tokio runtime on a thread inside A, over IPv4 and IPv6 (no DAD wait).
    let listener = b.run(|| std::net::TcpListener::bind("[::]:0").expect("bind in b"));
    let port = listener.local_addr().unwrap().port();
    let accepter = std::thread::spawn(move || {
        for _ in 0..2 {
            let (_s, peer) = listener.accept().expect("accept");
            let from = peer.ip().to_canonical();
            assert!(from == ip("192.0.2.1") || from == ip("2001:db8::1"), "{peer}");
        }
    });
    a.run(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            for (dst, src) in [("192.0.2.2", "192.0.2.1"), ("2001:db8::2", "2001:db8::1")] {
                let s = tokio::net::TcpStream::connect((ip(dst), port)).await.expect("connect from a");
                assert_eq!(s.local_addr().unwrap().ip(), ip(src));
            }
        });
    });
    accepter.join().unwrap();
    // Threads see the namespace, the test thread stays where it was.
    let inode = |p: &str| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap();
    let ns_a = inode(a.path().to_str().unwrap());
    assert_eq!(a.run(|| inode("/proc/thread-self/ns/net")), ns_a);
    assert_eq!(a.spawn(move || inode("/proc/thread-self/ns/net")).join().unwrap(), ns_a);
    assert_ne!(inode("/proc/thread-self/ns/net"), ns_a);
    // Commands inside.
    let out = b.exec(&["ip", "-br", "addr", "show", "eth0"]).unwrap();
    assert!(out.contains("2001:db8::2/64"), "{out}");
    // Refuses non-documentation addresses.
    assert!(a.add_addr("lo", "10.1.2.3/32").is_err());
    a.add_addr("lo", "203.0.113.7/32").unwrap();
}

/// Drop guards clean up on a panic: namespaces deleted, daemons killed.
#[test]
fn cleanup_on_panic() {
    support::skip_unless_root!();
    let seen = std::sync::Mutex::new((String::new(), 0u32, 0u32));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let (a, _b) = pair();
        let tmp = support::TempDir::new().unwrap();
        let sleeper = a.daemon("sleep", &["sleep", "60"], tmp.join("sleep.log")).unwrap();
        let bird = Bird::start(&a, &BirdConfig::new(v4("192.0.2.1"), 65001)).unwrap();
        assert!(a.pids().contains(&sleeper.pid().unwrap()));
        *seen.lock().unwrap() = (a.name().to_string(), sleeper.pid().unwrap(), bird.pid().unwrap());
        panic!("deliberate panic to test cleanup");
    }));
    assert!(result.is_err());
    let (name, sleep_pid, bird_pid) = seen.lock().unwrap().clone();
    assert!(!std::path::Path::new("/run/netns").join(&name).exists(), "{name} left behind");
    for pid in [sleep_pid, bird_pid] {
        // Reaped children have no /proc entry (a zombie would).
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "pid {pid} still exists");
    }
}

/// (a) BIRD in A announces three /32s (IPv4 session) and a /128 (IPv6
/// session) to GoBGP in B over eBGP.
#[test]
fn bird_announces_to_gobgp() {
    support::skip_unless_root!();
    let (a, b) = pair();
    let v4_prefixes = ["203.0.113.1/32", "203.0.113.2/32", "203.0.113.3/32"];
    let bird = Bird::start(
        &a,
        &BirdConfig::new(v4("192.0.2.1"), 65001)
            .static_routes(v4_prefixes)
            .static_route("2001:db8:ff::1/128")
            .neighbor(BirdNeighbor::new("gob4", ip("192.0.2.2"), 65002).export(BirdExport::All))
            .neighbor(BirdNeighbor::new("gob6", ip("2001:db8::2"), 65002).export(BirdExport::All)),
    )
    .unwrap();
    let gobgp = Gobgp::start(
        &b,
        &GobgpConfig::new(v4("192.0.2.2"), 65002)
            .neighbor(GobgpNeighbor::new(ip("192.0.2.1"), 65001).families(true, false))
            .neighbor(GobgpNeighbor::new(ip("2001:db8::1"), 65001).families(false, true)),
    )
    .unwrap();
    bird.wait_established("gob4", SESSION_TIMEOUT).unwrap();
    bird.wait_established("gob6", SESSION_TIMEOUT).unwrap();
    gobgp.wait_established(ip("192.0.2.1"), SESSION_TIMEOUT).unwrap();

    let routes = wait_for(ROUTES, || {
        let r = gobgp.routes()?;
        if r.len() == 4 { Ok(r) } else { Err(format!("{} routes: {:?}", r.len(), prefixes(&r))) }
    })
    .unwrap();
    let mut want: Vec<String> = v4_prefixes.iter().map(|s| s.to_string()).collect();
    want.push("2001:db8:ff::1/128".into());
    want.sort();
    assert_eq!(prefixes(&routes), want);
    for r in &routes {
        assert_eq!(r.as_path, [65001], "{r}");
        assert!(r.best, "{r}");
        let hop = if r.is_ipv6() { ip("2001:db8::1") } else { ip("192.0.2.1") };
        assert_eq!(r.next_hops, [hop], "{r}");
        assert!(r.since_ms.is_some_and(|t| t + 60_000 > support::now_unix_ms()), "{r}");
    }
    // BIRD's own view of its statics.
    assert_eq!(bird.count_routes("protocol lbt_static4").unwrap(), 3);
    assert!(support::peak_rss_kib(bird.pid().unwrap()).unwrap() > 100);
}

/// (b) BIRD announces to FRR with a community and a large community set by
/// its export filter; FRR shows them and the next hop.
#[test]
fn bird_announces_to_frr_with_communities() {
    support::skip_unless_root!();
    let (a, b) = pair();
    let filter = "bgp_community.add((65000,100)); bgp_large_community.add((65000,1,2)); accept;";
    let bird = Bird::start(
        &a,
        &BirdConfig::new(v4("192.0.2.1"), 65001)
            .static_routes(["203.0.113.10/32", "203.0.113.11/32", "2001:db8:ff::10/128"])
            .neighbor(
                BirdNeighbor::new("frr", ip("192.0.2.2"), 65002)
                    .families(true, true)
                    .ipv6_next_hop("2001:db8::1".parse().unwrap())
                    .export(BirdExport::Filter(filter.into())),
            ),
    )
    .unwrap();
    let frr = Frr::start(
        &b,
        &FrrConfig::new(v4("192.0.2.2"), 65002).neighbor(FrrNeighbor::new(ip("192.0.2.1"), 65001).families(true, true)),
    )
    .unwrap();
    frr.wait_established(ip("192.0.2.1"), SESSION_TIMEOUT).unwrap();
    bird.wait_established("frr", SESSION_TIMEOUT).unwrap();
    let routes = wait_for(ROUTES, || {
        // FRR lists a path before its best-path run marks it: wait for both.
        let r = frr.routes()?;
        if r.len() == 3 && r.iter().all(|r| r.best) { Ok(r) } else { Err(format!("{r:?}")) }
    })
    .unwrap();
    for r in &routes {
        assert_eq!(r.communities, [(65000, 100)], "{r}");
        assert_eq!(r.large_communities, [(65000, 1, 2)], "{r}");
        assert_eq!(r.as_path, [65001], "{r}");
        assert_eq!(r.from, Some(ip("192.0.2.1")), "{r}");
        assert!(r.best, "{r}");
    }
    let r = paths(&routes, "203.0.113.10/32");
    assert_eq!(r[0].next_hops, [ip("192.0.2.1")]);
    let r6 = paths(&routes, "2001:db8:ff::10/128");
    assert_eq!(r6[0].next_hops[0], ip("2001:db8::1"), "{}", r6[0]);
    assert_eq!(frr.count_prefixes(false).unwrap(), 2);
    // zebra installed the route into B's FIB.
    wait_for(ROUTES, || match b.fib_next_hops("203.0.113.10/32")? {
        h if h == [ip("192.0.2.1")] => Ok(()),
        h => Err(format!("fib: {h:?}")),
    })
    .unwrap();
}

/// (c) MD5: matching keys establish.
#[test]
fn md5_session_establishes_with_matching_keys() {
    support::skip_unless_root!();
    let (a, b) = pair();
    let bird = Bird::start(
        &a,
        &BirdConfig::new(v4("192.0.2.1"), 65001)
            .static_route("203.0.113.5/32")
            .neighbor(BirdNeighbor::new("gob", ip("192.0.2.2"), 65002).password("s3cr3t").export(BirdExport::All)),
    )
    .unwrap();
    let gobgp = Gobgp::start(
        &b,
        &GobgpConfig::new(v4("192.0.2.2"), 65002)
            .neighbor(GobgpNeighbor::new(ip("192.0.2.1"), 65001).password("s3cr3t").families(true, false)),
    )
    .unwrap();
    gobgp.wait_established(ip("192.0.2.1"), SESSION_TIMEOUT).unwrap();
    bird.wait_established("gob", SESSION_TIMEOUT).unwrap();
    wait_for(ROUTES, || {
        let r = gobgp.routes_v4()?;
        if r.len() == 1 { Ok(()) } else { Err(format!("{r:?}")) }
    })
    .unwrap();
}

/// (c) MD5: a wrong key never establishes (the kernel drops the segments).
#[test]
fn md5_session_fails_with_wrong_key() {
    support::skip_unless_root!();
    let (a, b) = pair();
    let bird = Bird::start(
        &a,
        &BirdConfig::new(v4("192.0.2.1"), 65001)
            .neighbor(BirdNeighbor::new("gob", ip("192.0.2.2"), 65002).password("s3cr3t")),
    )
    .unwrap();
    let gobgp = Gobgp::start(
        &b,
        &GobgpConfig::new(v4("192.0.2.2"), 65002)
            .neighbor(GobgpNeighbor::new(ip("192.0.2.1"), 65001).password("wrong").families(true, false)),
    )
    .unwrap();
    holds_for(Duration::from_secs(3), || {
        let (s1, s2) = (bird.bgp_state("gob")?, gobgp.neighbor_state(ip("192.0.2.1"))?);
        if s1 == "Established" || s2 == "established" { Err(format!("bird {s1}, gobgp {s2}")) } else { Ok(()) }
    })
    .unwrap();
}

/// Two node namespaces on the segment: .11 and .12 (and ::11, ::12).
fn two_nodes(seg: &Segment) -> (Netns, Netns) {
    let n1 = Netns::new().expect("netns n1");
    let n2 = Netns::new().expect("netns n2");
    seg.attach(&n1, &["192.0.2.11/24", "2001:db8::11/64"]).expect("attach n1");
    seg.attach(&n2, &["192.0.2.12/24", "2001:db8::12/64"]).expect("attach n2");
    (n1, n2)
}

/// A BIRD node announcing 203.0.113.100/32 and 2001:db8:ff::100/128 to the
/// router at .1 / ::1.
fn node_bird(ns: &Netns, router_id: &str) -> Bird {
    Bird::start(
        ns,
        &BirdConfig::new(v4(router_id), 65001)
            .static_routes(["203.0.113.100/32", "2001:db8:ff::100/128"])
            .neighbor(BirdNeighbor::new("rtr", ip("192.0.2.1"), 64512).export(BirdExport::All))
            .neighbor(BirdNeighbor::new("rtr6", ip("2001:db8::1"), 64512).export(BirdExport::All)),
    )
    .expect("bird node")
}

/// (d) ECMP: two nodes behind one bridge, FRR router with maximum-paths:
/// two paths in BGP, two next hops in the kernel FIB.
#[test]
fn ecmp_two_nodes_to_frr() {
    support::skip_unless_root!();
    let seg = Segment::new().unwrap();
    let r = Netns::new().unwrap();
    seg.attach(&r, &["192.0.2.1/24", "2001:db8::1/64"]).unwrap();
    let (n1, n2) = two_nodes(&seg);
    let (b1, b2) = (node_bird(&n1, "192.0.2.11"), node_bird(&n2, "192.0.2.12"));
    let frr = Frr::start(
        &r,
        &FrrConfig::new(v4("192.0.2.1"), 64512)
            .neighbor(FrrNeighbor::new(ip("192.0.2.11"), 65001))
            .neighbor(FrrNeighbor::new(ip("192.0.2.12"), 65001))
            .neighbor(FrrNeighbor::new(ip("2001:db8::11"), 65001))
            .neighbor(FrrNeighbor::new(ip("2001:db8::12"), 65001)),
    )
    .unwrap();
    for n in ["192.0.2.11", "192.0.2.12", "2001:db8::11", "2001:db8::12"] {
        frr.wait_established(ip(n), SESSION_TIMEOUT).unwrap();
    }
    for (bird, proto) in [(&b1, "rtr"), (&b1, "rtr6"), (&b2, "rtr"), (&b2, "rtr6")] {
        bird.wait_established(proto, SESSION_TIMEOUT).unwrap();
    }
    let want4 = vec![ip("192.0.2.11"), ip("192.0.2.12")];
    let routes = wait_for(ROUTES, || {
        let r = frr.routes()?;
        let hops = next_hops(&r, "203.0.113.100/32");
        let best = paths(&r, "203.0.113.100/32").iter().filter(|p| p.best).count();
        if hops == want4 && best == 1 && paths(&r, "2001:db8:ff::100/128").len() == 2 {
            Ok(r)
        } else {
            Err(format!("{r:?}"))
        }
    })
    .unwrap();
    let v6_globals: Vec<IpAddr> = paths(&routes, "2001:db8:ff::100/128").iter().map(|p| p.next_hops[0]).collect();
    assert!(v6_globals.contains(&ip("2001:db8::11")) && v6_globals.contains(&ip("2001:db8::12")), "{v6_globals:?}");
    wait_for(ROUTES, || match r.fib_next_hops("203.0.113.100/32")? {
        h if h == want4 => Ok(()),
        h => Err(format!("fib: {h:?}")),
    })
    .unwrap();
}

/// (d) ECMP seen by a BIRD router: `show route all` lists both paths.
#[test]
fn ecmp_two_nodes_to_bird() {
    support::skip_unless_root!();
    let seg = Segment::new().unwrap();
    let r = Netns::new().unwrap();
    seg.attach(&r, &["192.0.2.1/24", "2001:db8::1/64"]).unwrap();
    let (n1, n2) = two_nodes(&seg);
    // The router is passive and up first: BIRD nodes connecting to a
    // closed port would sit out their error wait time (1 s, then longer).
    let router = Bird::start(
        &r,
        &BirdConfig::new(v4("192.0.2.1"), 64512)
            .kernel_export()
            .neighbor(BirdNeighbor::new("n1", ip("192.0.2.11"), 65001).passive())
            .neighbor(BirdNeighbor::new("n2", ip("192.0.2.12"), 65001).passive())
            .neighbor(BirdNeighbor::new("n1v6", ip("2001:db8::11"), 65001).passive())
            .neighbor(BirdNeighbor::new("n2v6", ip("2001:db8::12"), 65001).passive()),
    )
    .unwrap();
    let _nodes = (node_bird(&n1, "192.0.2.11"), node_bird(&n2, "192.0.2.12"));
    let routes = wait_for(ROUTES, || {
        let r = router.routes()?;
        if paths(&r, "203.0.113.100/32").len() == 2 && paths(&r, "2001:db8:ff::100/128").len() == 2 {
            Ok(r)
        } else {
            Err(format!("{r:?}"))
        }
    })
    .unwrap();
    assert_eq!(next_hops(&routes, "203.0.113.100/32"), [ip("192.0.2.11"), ip("192.0.2.12")]);
    let p = paths(&routes, "203.0.113.100/32");
    assert_eq!(p.iter().filter(|p| p.best).count(), 1);
    let mut from: Vec<_> = p.iter().map(|p| p.from).collect();
    from.sort();
    assert_eq!(from, [Some(ip("192.0.2.11")), Some(ip("192.0.2.12"))]);
    let hops6 = next_hops(&routes, "2001:db8:ff::100/128");
    assert!(hops6.contains(&ip("2001:db8::11")) && hops6.contains(&ip("2001:db8::12")), "{hops6:?}");
    assert_eq!(router.count_routes("protocol n1").unwrap(), 1);
    // `kernel_export` (merge paths on) installs both as one ECMP route.
    wait_for(ROUTES, || match r.fib_next_hops("203.0.113.100/32")? {
        h if h == [ip("192.0.2.11"), ip("192.0.2.12")] => Ok(()),
        h => Err(format!("fib: {h:?}")),
    })
    .unwrap();
}

/// BIRD lifecycle against FRR: reconfigure adds a route, freeze lets FRR's
/// hold timer expire (routes withdrawn), thaw and restart bring the session
/// back. (Against GoBGP each reconnect costs 5 s more: gobgpd stays Idle for
/// a hard-coded 5 s after any non-administrative session drop.)
#[test]
fn bird_reconfigure_freeze_restart() {
    support::skip_unless_root!();
    let (a, b) = pair();
    let base = BirdConfig::new(v4("192.0.2.1"), 65001)
        .static_route("203.0.113.1/32")
        .neighbor(BirdNeighbor::new("frr", ip("192.0.2.2"), 65002).hold_time(3).export(BirdExport::All));
    let mut bird = Bird::start(&a, &base).unwrap();
    let frr = Frr::start(
        &b,
        &FrrConfig::new(v4("192.0.2.2"), 65002).neighbor(FrrNeighbor::new(ip("192.0.2.1"), 65001).hold_time(3)),
    )
    .unwrap();
    let count = |n: usize| {
        wait_for(ROUTES, || match frr.count_prefixes(false)? {
            c if c == n => Ok(()),
            c => Err(format!("{c} routes, want {n}")),
        })
    };
    count(1).unwrap();
    let t = Instant::now();

    bird.reconfigure(&base.clone().static_route("203.0.113.2/32")).unwrap();
    count(2).unwrap();
    let reconfigured = t.elapsed();

    bird.freeze();
    wait_for(ROUTES, || match frr.neighbor_state(ip("192.0.2.1"))? {
        s if s != "Established" => Ok(()),
        s => Err(s),
    })
    .unwrap();
    let down = t.elapsed();
    count(0).unwrap();
    bird.thaw();
    frr.wait_established(ip("192.0.2.1"), SESSION_TIMEOUT).unwrap();
    count(2).unwrap();
    let back = t.elapsed();

    let restarted_s = support::now_unix_ms() / 1000;
    bird.restart().unwrap();
    bird.wait_established("frr", SESSION_TIMEOUT).unwrap();
    // FRR re-learnt both routes (the restart used the reconfigured config).
    wait_for(ROUTES, || {
        let r = frr.routes_v4()?;
        let fresh = r.iter().filter(|r| r.since_ms.is_some_and(|t| t / 1000 >= restarted_s)).count();
        if fresh == 2 { Ok(()) } else { Err(format!("{fresh} re-learnt: {r:?}")) }
    })
    .unwrap();
    eprintln!(
        "reconfigured at {reconfigured:?}, frozen session down at {down:?} (hold 3 s), back at {back:?}, restarted by {:?}",
        t.elapsed()
    );
}

/// GoBGP as a route source: MRT injection of many routes, received by BIRD.
#[test]
fn gobgp_injects_many_routes_to_bird() {
    support::skip_unless_root!();
    let (a, b) = pair();
    let gobgp = Gobgp::start(
        &b,
        &GobgpConfig::new(v4("192.0.2.2"), 65002).neighbor(GobgpNeighbor::new(ip("192.0.2.1"), 65001)),
    )
    .unwrap();
    let bird = Bird::start(
        &a,
        &BirdConfig::new(v4("192.0.2.1"), 65001)
            .neighbor(BirdNeighbor::new("gob", ip("192.0.2.2"), 65002).families(true, true)),
    )
    .unwrap();
    bird.wait_established("gob", SESSION_TIMEOUT).unwrap();
    let mut routes = support::host_prefixes_v4(v4("10.0.0.0"), 10_000);
    routes.extend(support::host_prefixes_v6("2001:db8:1::".parse().unwrap(), 100));
    let t = Instant::now();
    gobgp.inject_routes(&routes, v4("192.0.2.2"), "2001:db8::2".parse::<Ipv6Addr>().unwrap()).unwrap();
    let injected = t.elapsed();
    assert_eq!(gobgp.count_prefixes(false).unwrap(), 10_000);
    assert_eq!(gobgp.count_prefixes(true).unwrap(), 100);
    wait_for(ROUTES, || match bird.count_routes("protocol gob").unwrap_or(0) {
        10_100 => Ok(()),
        n => Err(format!("{n} routes at bird")),
    })
    .unwrap();
    eprintln!("injected 10,100 routes in {injected:?}, all at BIRD after {:?}", t.elapsed());
    let r = bird.routes_from("gob").unwrap();
    let one = paths(&r, "10.0.7.207/32");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].as_path, [65002]);
    assert_eq!(one[0].next_hops, [ip("192.0.2.2")]);
    let six = paths(&r, "2001:db8:1::63/128");
    assert_eq!(six[0].next_hops[0], ip("2001:db8::2"), "{}", six[0]);
    // Single routes through the CLI, with attributes.
    gobgp.add_route("203.0.113.9/32", &["community", "65002:7", "large-community", "65002:1:1"]).unwrap();
    let r = wait_for(ROUTES, || {
        let r = bird.routes_v4()?;
        let p: Vec<_> = paths(&r, "203.0.113.9/32").into_iter().cloned().collect();
        if p.is_empty() { Err("not yet".into()) } else { Ok(p) }
    })
    .unwrap();
    assert_eq!(r[0].communities, [(65002, 7)]);
    assert_eq!(r[0].large_communities, [(65002, 1, 1)]);
    gobgp.del_route("203.0.113.9/32").unwrap();
    wait_for(ROUTES, || {
        if paths(&bird.routes_v4()?, "203.0.113.9/32").is_empty() { Ok(()) } else { Err("still there".into()) }
    })
    .unwrap();
}

/// FRR as a route source (`network`), GoBGP as the receiver, one session
/// per family; FRR with MD5 towards GoBGP.
#[test]
fn frr_announces_to_gobgp() {
    support::skip_unless_root!();
    let (a, b) = pair();
    let frr = Frr::start(
        &a,
        &FrrConfig::new(v4("192.0.2.1"), 65001)
            .network("203.0.113.20/32")
            .network("2001:db8:ff::20/128")
            .neighbor(FrrNeighbor::new(ip("192.0.2.2"), 65002).password("k3y"))
            .neighbor(FrrNeighbor::new(ip("2001:db8::2"), 65002)),
    )
    .unwrap();
    let gobgp = Gobgp::start(
        &b,
        &GobgpConfig::new(v4("192.0.2.2"), 65002)
            .neighbor(GobgpNeighbor::new(ip("192.0.2.1"), 65001).password("k3y").families(true, false))
            .neighbor(GobgpNeighbor::new(ip("2001:db8::1"), 65001).families(false, true)),
    )
    .unwrap();
    frr.wait_established(ip("192.0.2.2"), SESSION_TIMEOUT).unwrap();
    frr.wait_established(ip("2001:db8::2"), SESSION_TIMEOUT).unwrap();
    let routes = wait_for(ROUTES, || {
        let r = gobgp.routes()?;
        if r.len() == 2 { Ok(r) } else { Err(format!("{r:?}")) }
    })
    .unwrap();
    assert_eq!(prefixes(&routes), ["2001:db8:ff::20/128", "203.0.113.20/32"]);
    assert_eq!(next_hops(&routes, "203.0.113.20/32"), [ip("192.0.2.1")]);
    assert!(next_hops(&routes, "2001:db8:ff::20/128").contains(&ip("2001:db8::1")));
    assert!(routes.iter().all(|r| r.as_path == [65001] && r.from.is_some()));
    // FRR's own view of its local routes.
    let local = frr.routes().unwrap();
    assert_eq!(local.len(), 2);
    assert!(local.iter().all(|r| r.best && r.from.is_none() && r.as_path.is_empty()), "{local:?}");
    assert!(support::peak_rss_kib(frr.bgpd_pid().unwrap()).unwrap() > 1000);
}

/// Parsers against captured router output (no root needed).
#[test]
fn bird_show_route_parser() {
    let out = [
        "Table master4:",
        "203.0.113.100/32     unicast [n1 2026-11-22 17:47:50.595] * (100) [AS65001i]",
        "\tvia 192.0.2.11 on eth0",
        "\tType: BGP univ",
        "\tBGP.origin: IGP",
        "\tBGP.as_path: 65001 {65003 65004}",
        "\tBGP.next_hop: 192.0.2.11",
        "\tBGP.local_pref: 100",
        "\tBGP.community: (65000,100) (65000,101)",
        "\tBGP.large_community: (65000, 1, 2)",
        "                     unicast [n2 2026-11-22 17:47:51.000 from 192.0.2.12] (100) [AS65001i]",
        "\tvia 192.0.2.12 on eth0",
        "\tType: BGP univ",
        "\tBGP.next_hop: 192.0.2.12",
        "203.0.113.2/32       blackhole [s4 2026-11-22 17:47:44.494] * (200)",
        "\tType: static univ",
        "",
        "Table master6:",
        "2001:db8:ff::1/128   unicast [r6 2026-11-22 17:47:44.494] * (100) [AS65002i]",
        "\tvia 2001:db8::2 on eth0",
        "\tBGP.next_hop: 2001:db8::2 fe80::1",
    ]
    .join("\n");
    let r = support::bird::parse_show_route_all(&out).unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!(r[0].prefix, "203.0.113.100/32");
    assert_eq!(r[0].as_path, [65001, 65003, 65004]);
    assert_eq!(r[0].communities, [(65000, 100), (65000, 101)]);
    assert_eq!(r[0].large_communities, [(65000, 1, 2)]);
    assert_eq!(r[0].since_ms, Some(1_795_369_670_595));
    assert!(r[0].best && !r[1].best);
    assert_eq!(r[1].prefix, "203.0.113.100/32");
    assert_eq!(r[1].from, Some(ip("192.0.2.12")));
    assert_eq!(next_hops(&r, "203.0.113.100/32"), [ip("192.0.2.11"), ip("192.0.2.12")]);
    assert!(r[2].next_hops.is_empty() && r[2].local_pref.is_none());
    assert_eq!(r[3].next_hops, [ip("2001:db8::2"), ip("fe80::1")]);
    assert_eq!(support::parse_utc_ms("1970-01-01", "00:00:01.5"), Some(1500));
}
