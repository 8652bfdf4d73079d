//! `lb standalone` against real routers: BIRD 2, FRR, GoBGP and ExaBGP, each in a
//! network namespace of its own, with `lb` in another (or several, as
//! nodes), linked by veth pairs. Every check is made from the router's own
//! CLI. Needs root (namespaces); skips with a message without it.

#[path = "../../lb-k8s/tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::{
    Bird, BirdConfig, BirdNeighbor, Daemon, Exabgp, ExabgpConfig, Frr, FrrConfig, FrrNeighbor, Gobgp, GobgpConfig,
    GobgpNeighbor, Netns, Route, Segment, TempDir, next_hops, paths, wait_for,
};

const WAIT: Duration = Duration::from_secs(20);

fn ip(s: &str) -> IpAddr {
    s.parse().expect("IP")
}

/// One node running `lb standalone`, with its files in a temp dir.
struct Node {
    ns: Netns,
    dir: TempDir,
    lb: Option<Daemon>,
    name: String,
}

impl Node {
    fn new(name: &str) -> Self {
        Self {
            ns: Netns::new().expect("namespace"),
            dir: TempDir::new().expect("temp dir"),
            lb: None,
            name: name.into(),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Replaces a file the way editors do (write aside, rename over).
    fn write(&self, name: &str, text: &str) {
        let tmp = self.file(&format!(".{name}.tmp"));
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, self.file(name)).expect("rename");
    }

    fn start(&mut self, config: &str, services: &str, extra: &[&str]) {
        self.write("config.yaml", config);
        self.write("services.yaml", services);
        let (c, s, log) = (self.file("config.yaml"), self.file("services.yaml"), self.file("lb.log"));
        let mut argv = vec![
            env!("CARGO_BIN_EXE_lb"),
            "standalone",
            "--config",
            c.to_str().expect("utf-8"),
            "--services",
            s.to_str().expect("utf-8"),
            "--node",
            &self.name,
        ];
        argv.extend_from_slice(extra);
        let mut cmd = self.ns.command(argv[0]);
        cmd.args(&argv[1..]).env("LB_LOG", "debug");
        self.lb = Some(Daemon::spawn("lb", &mut cmd, log).expect("start lb"));
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.file("lb.log")).unwrap_or_default()
    }

    /// `GET path` on lb's HTTP endpoint, from inside the namespace.
    fn get(&self, path: &str) -> Result<String, String> {
        let path = path.to_string();
        self.ns.run(move || {
            let mut s = TcpStream::connect("127.0.0.1:7472").map_err(|e| format!("connect: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
            write!(s, "GET {path} HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
            let mut out = String::new();
            s.read_to_string(&mut out).map_err(|e| e.to_string())?;
            Ok(out.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default())
        })
    }

    fn status(&self) -> Result<serde_json::Value, String> {
        serde_json::from_str(&self.get("/status")?).map_err(|e| e.to_string())
    }

    /// SIGTERM, then wait for the process to end.
    fn terminate(&mut self) {
        if let Some(lb) = self.lb.as_mut() {
            lb.signal(Signal::SIGTERM);
            let _ = wait_for(Duration::from_secs(10), || match lb.check_alive() {
                Ok(()) => Err("still running".into()),
                Err(_) => Ok(()),
            });
        }
    }
}

fn config(peers: &str, pool: &str, advertisement: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: pool}}\nspec:\n  addresses: [{pool}]\n---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: adv}}\nspec:\n  ipAddressPools: [pool]\n{advertisement}\n{peers}"
    )
}

fn peer(name: &str, my_asn: u32, peer_asn: u32, address: &str, extra: &str) -> String {
    format!(
        "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: {name}}}\nspec:\n  myASN: {my_asn}\n  peerASN: {peer_asn}\n  peerAddress: \"{address}\"\n  holdTime: 3s\n  keepaliveTime: 1s\n  connectTime: 1s\n{extra}\n"
    )
}

fn service(name: &str, annotations: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n  annotations: {{{annotations}}}\nspec:\n  type: LoadBalancer\n  ports: [{{port: 80}}]\n"
    )
}

fn find(routes: &[Route], prefix: &str) -> Result<Route, String> {
    paths(routes, prefix).first().map(|r| (*r).clone()).ok_or_else(|| format!("{prefix} not in {routes:?}"))
}

/// BIRD as the router at 192.0.2.1, AS 64501, with one neighbor.
fn bird(router: &Netns, neighbor: BirdNeighbor) -> Bird {
    Bird::start(router, &BirdConfig::new(Ipv4Addr::new(192, 0, 2, 1), 64501).neighbor(neighbor)).expect("bird")
}

/// A router namespace linked to one node namespace: router .1, node .11.
fn pair(node: &Node) -> Netns {
    let router = Netns::new().expect("namespace");
    Netns::link(&router, &node.ns, &["192.0.2.1/24", "2001:db8::1/64"], &["192.0.2.11/24", "2001:db8::11/64"])
        .expect("link");
    router
}

#[test]
fn ebgp_to_bird_routes_follow_services_and_config_live_and_stop_sends_cease() {
    support::skip_unless_root!();
    let mut node = Node::new("node-a");
    let router = pair(&node);
    let bird = bird(&router, BirdNeighbor::new("lb", ip("192.0.2.11"), 64500).passive());
    let adv = "  communities: [\"64500:100\", \"large:64500:1:2\"]";
    let cfg = config(&peer("bird", 64500, 64501, "192.0.2.1", ""), "203.0.113.0/28", adv);
    node.start(&cfg, &service("web", ""), &[]);

    bird.wait_established("lb", WAIT).expect("session");
    let route = wait_for(WAIT, || find(&bird.routes()?, "203.0.113.0/32")).expect("route");
    assert_eq!(route.next_hops, vec![ip("192.0.2.11")], "{route}");
    assert_eq!(route.as_path, vec![64500], "{route}");
    assert_eq!(route.communities, vec![(64500, 100)], "{route}");
    assert_eq!(route.large_communities, vec![(64500, 1, 2)], "{route}");
    let since = bird.birdc("show protocols lb").expect("protocols");

    // A Service added appears; one deleted is withdrawn.
    node.write("services.yaml", &format!("{}{}", service("web", ""), service("api", "")));
    wait_for(WAIT, || find(&bird.routes()?, "203.0.113.1/32")).expect("added");
    node.write("services.yaml", &service("api", ""));
    wait_for(WAIT, || match find(&bird.routes()?, "203.0.113.0/32") {
        Ok(_) => Err("still there".into()),
        Err(_) => Ok(()),
    })
    .expect("withdrawn");
    assert!(find(&bird.routes().expect("routes"), "203.0.113.1/32").is_ok(), "api keeps its address");

    // A config change (another community) applies on the same session.
    let adv2 = "  communities: [\"64500:100\", \"64500:200\", \"large:64500:1:2\"]";
    node.write("config.yaml", &config(&peer("bird", 64500, 64501, "192.0.2.1", ""), "203.0.113.0/28", adv2));
    wait_for(WAIT, || {
        let r = find(&bird.routes()?, "203.0.113.1/32")?;
        if r.communities == vec![(64500, 100), (64500, 200)] { Ok(()) } else { Err(r.to_string()) }
    })
    .expect("new community");
    let now = bird.birdc("show protocols lb").expect("protocols");
    assert!(same_session(&since, &now), "no session reset: {since} then {now}");

    // An invalid change is refused and changes nothing.
    node.write(
        "config.yaml",
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: x}\nspec: {addresses: [nonsense]}\n",
    );
    wait_for(WAIT, || if node.log().contains("configStale") { Ok(()) } else { Err("no configStale".into()) })
        .expect("refused");
    assert!(find(&bird.routes().expect("routes"), "203.0.113.1/32").is_ok(), "last good state stays");
    let status = node.status().expect("status");
    assert_eq!(status["configStale"], true, "{status}");
    assert_eq!(status["sessions"][0]["state"], "Established", "{status}");
    let metrics = node.get("/metrics").expect("metrics");
    assert!(metrics.contains("metallb_bgp_session_up{peer=\"192.0.2.1:179\"} 1"), "{metrics}");
    assert!(metrics.contains("metallb_k8s_client_config_stale_bool 1"), "{metrics}");

    // SIGHUP re-reads the files: the invalid config is still refused.
    node.lb.as_ref().expect("running").signal(Signal::SIGHUP);
    wait_for(WAIT, || if node.log().contains("reloadRequested") { Ok(()) } else { Err("no reload".into()) })
        .expect("SIGHUP");
    wait_for(WAIT, || {
        let stale = node.log().matches("configStale").count();
        if stale >= 2 { Ok(()) } else { Err(format!("{stale} configStale")) }
    })
    .expect("refused again");

    // Stopping lb: BIRD gets a Cease and drops the routes at once (its last
    // error says so; a hold expiry would read "Hold timer expired").
    node.terminate();
    wait_for(WAIT, || if bird.routes()?.is_empty() { Ok(()) } else { Err("routes left".into()) }).expect("gone");
    let proto = bird.birdc("show protocols all lb").expect("protocols");
    assert!(proto.contains("Administrative shutdown"), "{proto}");
}

#[test]
fn ibgp_four_octet_asn_with_md5_ipv6_and_aggregation() {
    support::skip_unless_root!();
    let mut node = Node::new("node-a");
    let router = pair(&node);
    let asn = 4_200_000_001;
    let bird = Bird::start(
        &router,
        &BirdConfig::new(Ipv4Addr::new(192, 0, 2, 1), asn)
            .neighbor(BirdNeighbor::internal("lb4", ip("192.0.2.11")).password("s3cret").passive())
            .neighbor(BirdNeighbor::internal("lb6", ip("2001:db8::11")).password("s3cret").passive()),
    )
    .expect("bird");
    let password = "  password: s3cret";
    let peers = format!(
        "{}{}",
        peer("bird4", asn, asn, "192.0.2.1", password),
        peer("bird6", asn, asn, "2001:db8::1", password)
    );
    let adv = "  localPref: 150\n  aggregationLength: 30\n  aggregationLengthV6: 124\n  communities: [\"65535:65281\"]";
    let svc = service("web", "metallb.io/loadBalancerIPs: \"203.0.113.5,2001:db8:ff::5\"")
        .replace("  ports:", "  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv4, IPv6]\n  ports:");
    node.start(&config(&peers, "203.0.113.0/28, \"2001:db8:ff::/120\"", adv), &svc, &[]);

    bird.wait_established("lb4", WAIT).expect("IPv4 session with MD5");
    bird.wait_established("lb6", WAIT).expect("IPv6 session with MD5");
    let v4 = wait_for(WAIT, || find(&bird.routes()?, "203.0.113.4/30")).expect("aggregated IPv4 route");
    assert_eq!(v4.local_pref, Some(150), "{v4}");
    assert!(v4.as_path.is_empty(), "iBGP: empty AS path: {v4}");
    assert_eq!(v4.communities, vec![(65535, 65281)], "{v4}");
    assert_eq!(v4.next_hops, vec![ip("192.0.2.11")], "{v4}");
    let v6 = wait_for(WAIT, || find(&bird.routes()?, "2001:db8:ff::/124")).expect("aggregated IPv6 route");
    assert_eq!(v6.local_pref, Some(150), "{v6}");
    assert!(v6.next_hops.contains(&ip("2001:db8::11")), "global next hop: {v6}");
    // The peer is on-link: the link-local address of our interface rides along.
    let raw = bird.birdc("show route all 2001:db8:ff::/124").expect("show route");
    let next_hop = raw.lines().find(|l| l.contains("BGP.next_hop")).unwrap_or_default();
    assert!(next_hop.contains("2001:db8::11") && next_hop.contains("fe80::"), "{raw}");
    assert!(bird.routes().expect("routes").iter().all(|r| r.prefix != "203.0.113.5/32"), "only the aggregate");
}

#[test]
fn wrong_md5_password_never_establishes() {
    support::skip_unless_root!();
    let mut node = Node::new("node-a");
    let router = pair(&node);
    let bird = bird(&router, BirdNeighbor::new("lb", ip("192.0.2.11"), 64500).password("right").passive());
    node.start(
        &config(&peer("bird", 64500, 64501, "192.0.2.1", "  password: wrong"), "203.0.113.0/28", ""),
        &service("web", ""),
        &[],
    );
    // Our SYNs reach the router and its kernel drops them for their
    // signature: proof that we tried, before asserting that it failed.
    wait_for(WAIT, || match router.counter("TcpExtTCPMD5Failure")? {
        0 => Err("no segment with a wrong signature yet".into()),
        n => Ok(n),
    })
    .expect("lb connects with its (wrong) key");
    assert!(!bird.is_established("lb"), "a wrong key must not establish");
    let status = node.status().expect("status");
    assert_ne!(status["sessions"][0]["state"], "Established", "{status}");
    assert!(bird.routes().expect("routes").is_empty());
}

#[test]
fn bird_restart_gets_the_table_again_and_a_frozen_bird_is_declared_down() {
    support::skip_unless_root!();
    let mut node = Node::new("node-a");
    let router = pair(&node);
    // BIRD active this time: it connects to us too, and we do not listen,
    // so our connection carries the session.
    let mut bird = bird(&router, BirdNeighbor::new("lb", ip("192.0.2.11"), 64500));
    let svcs = format!("{}{}", service("a", ""), service("b", ""));
    node.start(&config(&peer("bird", 64500, 64501, "192.0.2.1", ""), "203.0.113.0/28", ""), &svcs, &[]);
    wait_for(WAIT, || if bird.routes()?.len() == 2 { Ok(()) } else { Err("not yet".into()) }).expect("routes");

    bird.restart().expect("restart");
    wait_for(WAIT, || if bird.routes()?.len() == 2 { Ok(()) } else { Err("not yet".into()) })
        .expect("the full table again after a restart");

    bird.freeze();
    let frozen = Instant::now();
    wait_for(WAIT, || {
        let s = node.status()?;
        if s["sessions"][0]["state"] != "Established" { Ok(()) } else { Err(s.to_string()) }
    })
    .expect("down at hold expiry");
    let took = frozen.elapsed();
    assert!(took >= Duration::from_secs(2), "not before the 3 s hold time: {took:?}");
    assert!(node.log().contains("Hold Timer Expired") || node.log().contains("hold"), "{}", node.log());
    bird.thaw();
    wait_for(WAIT, || {
        let s = node.status()?;
        if s["sessions"][0]["state"] == "Established" { Ok(()) } else { Err(s.to_string()) }
    })
    .expect("reconnects after the thaw");
    wait_for(WAIT, || if bird.routes()?.len() == 2 { Ok(()) } else { Err("not yet".into()) }).expect("routes back");
}

#[test]
fn two_nodes_give_frr_ecmp_paths_and_endpoints_decide() {
    support::skip_unless_root!();
    let segment = Segment::new().expect("segment");
    let router = Netns::new().expect("namespace");
    segment.attach(&router, &["192.0.2.1/24"]).expect("attach router");
    let mut a = Node::new("node-a");
    let mut b = Node::new("node-b");
    segment.attach(&a.ns, &["192.0.2.11/24"]).expect("attach a");
    segment.attach(&b.ns, &["192.0.2.12/24"]).expect("attach b");
    let frr = Frr::start(
        &router,
        &FrrConfig::new(Ipv4Addr::new(192, 0, 2, 1), 64501)
            .neighbor(FrrNeighbor::new(ip("192.0.2.11"), 64500))
            .neighbor(FrrNeighbor::new(ip("192.0.2.12"), 64500))
            .maximum_paths(4),
    )
    .expect("frr");
    let cfg = config(&peer("frr", 64500, 64501, "192.0.2.1", ""), "203.0.113.0/28", "");
    let svc = service("web", "").replace("  ports:", "  externalTrafficPolicy: Local\n  ports:");
    let slice = |node: &str| {
        format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-1\n  namespace: default\n  labels: {{kubernetes.io/service-name: web}}\naddressType: IPv4\nendpoints:\n- addresses: [10.0.0.1]\n  conditions: {{ready: true}}\n  nodeName: {node}\n- addresses: [10.0.0.2]\n  conditions: {{ready: true}}\n  nodeName: node-b\n"
        )
    };
    for n in [&mut a, &mut b] {
        n.write("endpoints.yaml", &slice("node-a"));
        let eps = n.file("endpoints.yaml");
        n.start(&cfg, &svc, &["--endpoints", eps.to_str().expect("utf-8")]);
    }
    wait_for(WAIT, || {
        let hops = next_hops(&frr.routes()?, "203.0.113.0/32");
        if hops == vec![ip("192.0.2.11"), ip("192.0.2.12")] { Ok(()) } else { Err(format!("{hops:?}")) }
    })
    .expect("two paths, one per node");
    let fib = wait_for(WAIT, || {
        let hops = router.fib_next_hops("203.0.113.0/32")?;
        if hops.len() == 2 { Ok(hops) } else { Err(format!("{hops:?}")) }
    })
    .expect("ECMP in the router's FIB");
    assert_eq!(fib.len(), 2);

    // Local traffic policy: node-a's endpoint is gone, node-a withdraws.
    let only_b = slice("node-b");
    a.write("endpoints.yaml", &only_b);
    b.write("endpoints.yaml", &only_b);
    wait_for(WAIT, || {
        let hops = next_hops(&frr.routes()?, "203.0.113.0/32");
        if hops == vec![ip("192.0.2.12")] { Ok(()) } else { Err(format!("{hops:?}")) }
    })
    .expect("only node-b announces");
}

#[test]
fn gobgp_receives_ipv4_and_ipv6() {
    support::skip_unless_root!();
    let mut node = Node::new("node-a");
    let router = pair(&node);
    let gobgp = Gobgp::start(
        &router,
        &GobgpConfig::new(Ipv4Addr::new(192, 0, 2, 1), 65001)
            .neighbor(GobgpNeighbor::new(ip("192.0.2.11"), 4_200_000_000))
            .neighbor(GobgpNeighbor::new(ip("2001:db8::11"), 4_200_000_000)),
    )
    .expect("gobgp");
    let peers = format!(
        "{}{}",
        peer("gobgp4", 4_200_000_000, 65001, "192.0.2.1", ""),
        peer("gobgp6", 4_200_000_000, 65001, "2001:db8::1", "")
    );
    let svc = service("web", "").replace("  ports:", "  ipFamilyPolicy: RequireDualStack\n  ports:");
    node.start(&config(&peers, "203.0.113.0/28, \"2001:db8:ff::/120\"", "  communities: [\"65001:7\"]"), &svc, &[]);
    let v4 = wait_for(WAIT, || find(&gobgp.routes_v4()?, "203.0.113.0/32")).expect("IPv4 route");
    assert_eq!(v4.as_path, vec![4_200_000_000], "4-octet AS: {v4}");
    assert_eq!(v4.communities, vec![(65001, 7)], "{v4}");
    let v6 = wait_for(WAIT, || find(&gobgp.routes_v6()?, "2001:db8:ff::/128")).expect("IPv6 route");
    assert!(v6.next_hops.contains(&ip("2001:db8::11")), "{v6}");
}

#[test]
fn ttl_one_stops_at_a_router_until_ebgp_multihop_and_a_removed_peer_gets_a_cease() {
    support::skip_unless_root!();
    // node (192.0.2.11) -- middle router (forwarding) -- BIRD (198.51.100.2)
    let mut node = Node::new("node-a");
    let middle = Netns::new().expect("namespace");
    let far = Netns::new().expect("namespace");
    Netns::link(&node.ns, &middle, &["192.0.2.11/24"], &["192.0.2.1/24"]).expect("link");
    Netns::link(&middle, &far, &["198.51.100.1/24"], &["198.51.100.2/24"]).expect("link");
    middle.enable_forwarding().expect("forwarding");
    node.ns.ip(&["route", "add", "198.51.100.0/24", "via", "192.0.2.1"]).expect("route");
    far.ip(&["route", "add", "192.0.2.0/24", "via", "198.51.100.1"]).expect("route");
    let bird = Bird::start(
        &far,
        &BirdConfig::new(Ipv4Addr::new(198, 51, 100, 2), 64501)
            .neighbor(BirdNeighbor::new("lb", ip("192.0.2.11"), 64500).multihop(2).passive()),
    )
    .expect("bird");

    // Directly connected eBGP: TTL 1, so the SYN dies at the middle router.
    let direct = config(&peer("far", 64500, 64501, "198.51.100.2", ""), "203.0.113.0/28", "");
    node.start(&direct, &service("web", ""), &[]);
    // The SYN dies at the middle router, which says so (ICMP time
    // exceeded): proof that we tried, before asserting that it failed.
    wait_for(WAIT, || match middle.counter("IcmpOutTimeExcds")? {
        0 => Err("no TTL expired at the middle router yet".into()),
        n => Ok(n),
    })
    .expect("lb connects with TTL 1");
    assert!(!bird.is_established("lb"), "TTL 1 must not cross a router");

    // ebgpMultiHop: TTL 255; the changed peer restarts and establishes.
    let multihop = config(&peer("far", 64500, 64501, "198.51.100.2", "  ebgpMultiHop: true"), "203.0.113.0/28", "");
    node.write("config.yaml", &multihop);
    bird.wait_established("lb", WAIT).expect("multihop session");
    let route = wait_for(WAIT, || find(&bird.routes()?, "203.0.113.0/32")).expect("route");
    assert_eq!(route.next_hops, vec![ip("192.0.2.11")], "{route}");

    // The peer removed from the configuration: Cease, routes gone at once.
    node.write("config.yaml", &config("", "203.0.113.0/28", ""));
    wait_for(WAIT, || if bird.routes()?.is_empty() { Ok(()) } else { Err("routes left".into()) }).expect("gone");
    let proto = bird.birdc("show protocols all lb").expect("protocols");
    assert!(proto.to_lowercase().contains("de-configured"), "Cease / Peer De-configured: {proto}");
}

#[test]
fn with_bgp_listen_a_router_that_connects_to_us_gets_the_routes() {
    support::skip_unless_root!();
    let mut node = Node::new("node-a");
    let router = pair(&node);
    // BIRD connects (not passive); our own attempts go to a port where
    // nothing listens, so only the accepted connection can carry the session.
    let bird = bird(&router, BirdNeighbor::new("lb", ip("192.0.2.11"), 64500).password("k3y"));
    let cfg =
        config(&peer("bird", 64500, 64501, "192.0.2.1", "  peerPort: 1179\n  password: k3y"), "203.0.113.0/28", "");
    node.start(&cfg, &service("web", ""), &["--bgp-listen", "[::]:179"]);
    bird.wait_established("lb", WAIT).expect("session over the accepted connection, with MD5");
    let route = wait_for(WAIT, || find(&bird.routes()?, "203.0.113.0/32")).expect("route");
    assert_eq!(route.next_hops, vec![ip("192.0.2.11")], "plain IPv4 next hop on a dual-stack listener: {route}");
}

#[test]
fn dual_stack_address_family_carries_ipv4_routes_over_an_ipv6_session() {
    support::skip_unless_root!();
    let mut node = Node::new("node-a");
    let router = pair(&node);
    let bird = bird(&router, BirdNeighbor::new("lb", ip("2001:db8::11"), 64500).families(true, true).passive());
    let peers = peer("bird", 64500, 64501, "2001:db8::1", "  dualStackAddressFamily: true");
    let svc = service("web", "").replace("  ports:", "  ipFamilyPolicy: RequireDualStack\n  ports:");
    node.start(&config(&peers, "203.0.113.0/28, \"2001:db8:ff::/120\"", ""), &svc, &[]);
    let v4 = wait_for(WAIT, || find(&bird.routes()?, "203.0.113.0/32")).expect("IPv4 route over IPv6");
    assert_eq!(v4.next_hops, vec![ip("192.0.2.11")], "the interface's IPv4 address: {v4}");
    let v6 = wait_for(WAIT, || find(&bird.routes()?, "2001:db8:ff::/128")).expect("IPv6 route");
    assert!(v6.next_hops.contains(&ip("2001:db8::11")), "{v6}");
}

#[test]
fn with_bgp_listen_both_sides_connecting_settle_on_one_session() {
    support::skip_unless_root!();
    let mut node = Node::new("node-a");
    let router = pair(&node);
    let bird = bird(&router, BirdNeighbor::new("lb", ip("192.0.2.11"), 64500));
    let cfg = config(&peer("bird", 64500, 64501, "192.0.2.1", ""), "203.0.113.0/28", "");
    node.start(&cfg, &service("web", ""), &["--bgp-listen", "0.0.0.0:179"]);
    bird.wait_established("lb", WAIT).expect("one session");
    // It settles: a session that stays up (§6.8 may cost one restart when
    // the two connections' timing is unlucky) and carries the route.
    wait_for(WAIT, || {
        support::holds_for(Duration::from_secs(2), || {
            if bird.is_established("lb") { Ok(()) } else { Err("session dropped".into()) }
        })
    })
    .expect("stable");
    wait_for(WAIT, || find(&bird.routes()?, "203.0.113.0/32")).expect("route");
}

#[test]
fn with_bgp_listen_frr_connecting_too_settles_on_one_session() {
    support::skip_unless_root!();
    let mut node = Node::new("node-a");
    let router = pair(&node);
    let frr = Frr::start(
        &router,
        &FrrConfig::new(Ipv4Addr::new(192, 0, 2, 1), 64501).neighbor(FrrNeighbor::new(ip("192.0.2.11"), 64500)),
    )
    .expect("frr");
    let cfg = config(&peer("frr", 64500, 64501, "192.0.2.1", ""), "203.0.113.0/28", "");
    node.start(&cfg, &service("web", ""), &["--bgp-listen", "[::]:179"]);
    frr.wait_established(ip("192.0.2.11"), WAIT).expect("one session");
    wait_for(WAIT, || {
        support::holds_for(Duration::from_secs(2), || {
            if frr.is_established(ip("192.0.2.11")) { Ok(()) } else { Err("session dropped".into()) }
        })
    })
    .expect("stable");
    wait_for(WAIT, || find(&frr.routes()?, "203.0.113.0/32")).expect("route");
}

#[test]
fn graceful_restart_keeps_the_routes_while_lb_is_down() {
    support::skip_unless_root!();
    let mut node = Node::new("node-a");
    let router = pair(&node);
    let bird =
        bird(&router, BirdNeighbor::new("lb", ip("192.0.2.11"), 64500).extra("  graceful restart on;\n").passive());
    let cfg = config(&peer("bird", 64500, 64501, "192.0.2.1", "  enableGracefulRestart: true"), "203.0.113.0/28", "");
    node.start(&cfg, &service("web", ""), &[]);
    wait_for(WAIT, || find(&bird.routes()?, "203.0.113.0/32")).expect("route");

    // lb dies without a word (no Cease): BIRD keeps the route, as stale.
    node.lb.as_mut().expect("running").stop();
    wait_for(WAIT, || if bird.is_established("lb") { Err("still up".into()) } else { Ok(()) }).expect("down");
    support::holds_for(Duration::from_secs(2), || find(&bird.routes()?, "203.0.113.0/32").map(drop))
        .expect("kept through the restart");

    // Back: the session returns and the route is fresh again (End-of-RIB).
    node.start(&cfg, &service("web", ""), &[]);
    bird.wait_established("lb", WAIT).expect("back");
    wait_for(WAIT, || {
        let raw = bird.birdc("show route all 203.0.113.0/32")?;
        if raw.contains("stale") { Err(raw) } else { find(&bird.routes()?, "203.0.113.0/32").map(drop) }
    })
    .expect("refreshed");
}

#[test]
fn frr_receives_ipv6_with_global_and_link_local_next_hops() {
    support::skip_unless_root!();
    let mut node = Node::new("node-a");
    let router = pair(&node);
    let frr = Frr::start(
        &router,
        &FrrConfig::new(Ipv4Addr::new(192, 0, 2, 1), 64501)
            .neighbor(FrrNeighbor::new(ip("2001:db8::11"), 64500).families(false, true)),
    )
    .expect("frr");
    let cfg =
        config(&peer("frr", 64500, 64501, "2001:db8::1", ""), "\"2001:db8:ff::/120\"", "  communities: [\"64500:6\"]");
    let svc = service("web", "").replace("  ports:", "  ipFamilies: [IPv6]\n  ports:");
    node.start(&cfg, &svc, &[]);
    let route = wait_for(WAIT, || {
        let r = find(&frr.routes()?, "2001:db8:ff::/128")?;
        if r.best { Ok(r) } else { Err(format!("not best yet: {r}")) }
    })
    .expect("IPv6 route, selected");
    assert!(route.next_hops.contains(&ip("2001:db8::11")), "{route}");
    assert_eq!(route.communities, vec![(64500, 6)], "{route}");
    // Installed in the kernel: FRR resolved the next hop (the link-local one on-link).
    wait_for(WAIT, || {
        let hops = router.fib_next_hops("2001:db8:ff::/128")?;
        if hops.is_empty() { Err("not in the FIB".into()) } else { Ok(()) }
    })
    .expect("in the FIB");
}

/// A 4-octet local AS towards a peer that has neither 4-octet ASNs nor
/// extended messages: every UPDATE carries AS_TRANS in AS_PATH and the
/// real AS in AS4_PATH (RFC 6793), and must still fit in 4,096 octets.
/// With 2,000 routes the UPDATEs are full, so a size budget computed for
/// another encoding overflows them and the peer resets the session.
#[test]
fn a_two_octet_peer_without_extended_messages_gets_every_route_of_a_four_octet_as() {
    support::skip_unless_root!();
    const ROUTES: usize = 2000;
    let mut node = Node::new("node-a");
    let router = pair(&node);
    let exabgp = Exabgp::start(
        &router,
        &ExabgpConfig {
            router_id: Ipv4Addr::new(192, 0, 2, 1),
            local_address: ip("2001:db8::1"),
            local_as: 64501,
            neighbor: ip("2001:db8::11"),
            peer_as: 23456,
            asn4: false,
            extended_message: false,
        },
    )
    .expect("exabgp");
    let services: String = (0..ROUTES)
        .map(|i| {
            format!("---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: default}}\nspec: {{type: LoadBalancer, ipFamilies: [IPv6], ports: [{{port: 80}}]}}\n")
        })
        .collect();
    // Without the 4-octet capability the peer knows us as AS_TRANS (23456).
    let peers = peer("exabgp", 4_200_000_001, 64501, "2001:db8::1", "  routerID: 192.0.2.11");
    // With one community the UPDATEs of 236 /128s fill the 4,096 octets
    // exactly as a 4-octet session would count them: the AS4_PATH a
    // 2-octet one needs on top must come out of the NLRI.
    let advertisement = "  communities: [\"64512:100\"]";
    node.start(&config(&peers, "2001:db8:100::/116", advertisement), &services, &[]);
    let routes = wait_for(Duration::from_secs(60), || {
        let routes = exabgp.routes();
        if routes.len() == ROUTES { Ok(routes) } else { Err(format!("{} of {ROUTES} routes", routes.len())) }
    })
    .unwrap_or_else(|e| {
        let log = node.log();
        let tail = log.get(log.len().saturating_sub(3000)..).unwrap_or_default().to_string();
        panic!("{e}; notifications: {:?}\nexabgp: {}\nlb: {tail}", exabgp.notifications(), exabgp.log_tail())
    });
    assert!(routes.contains("2001:db8:100::/128") && routes.contains("2001:db8:100::7cf/128"), "{routes:?}");
    assert!(exabgp.notifications().is_empty(), "no session reset: {:?}", exabgp.notifications());
}

/// `localASN` (MetalLB 0.16): the session speaks as that AS, in its OPEN
/// and its AS_PATH, and BIRD, configured for that AS, accepts it; `myASN`
/// appears nowhere on the wire.
#[test]
fn local_asn_replaces_my_asn_on_the_session() {
    support::skip_unless_root!();
    let mut node = Node::new("node-a");
    let router = pair(&node);
    let bird = bird(&router, BirdNeighbor::new("lb", ip("192.0.2.11"), 64999).passive());
    let cfg = config(&peer("bird", 64500, 64501, "192.0.2.1", "  localASN: 64999"), "203.0.113.0/28", "");
    node.start(&cfg, &service("web", ""), &[]);
    bird.wait_established("lb", WAIT).expect("BIRD expects AS 64999 and gets it");
    let route = wait_for(WAIT, || find(&bird.routes()?, "203.0.113.0/32")).expect("route");
    assert_eq!(route.as_path, vec![64999], "{route}");
}

/// Whether two `show protocols` lines show one session: Established both
/// times, and the same "Since". BIRD derives that wall-clock time from its
/// monotonic clock at each display, so it may differ by a millisecond or
/// so; a reset would move it by the reconnect, seconds.
fn same_session(before: &str, after: &str) -> bool {
    fn since_ms(text: &str) -> Option<i64> {
        let line = text.lines().find(|l| l.starts_with("lb "))?;
        if !line.contains("Established") {
            return None;
        }
        let time = line.split_whitespace().find(|w| w.matches(':').count() == 2)?;
        let (hms, ms) = time.split_once('.').unwrap_or((time, "0"));
        let mut parts = hms.split(':').map(|p| p.parse::<i64>().ok());
        let (h, m, sec) = (parts.next()??, parts.next()??, parts.next()??);
        Some(((h * 60 + m) * 60 + sec) * 1000 + ms.parse::<i64>().ok()?)
    }
    matches!((since_ms(before), since_ms(after)), (Some(a), Some(b)) if (a - b).abs() <= 50)
}
