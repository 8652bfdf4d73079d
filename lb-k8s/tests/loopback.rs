//! Two of our own speakers over loopback: one connects, one accepts. No
//! root and no router needed; the interop tests check the same against
//! BIRD, FRR and GoBGP.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lb_bgp::adj_rib_out::RouteAttributes;
use lb_bgp::session::{RemoteAs, SessionConfig, State};
use lb_bgp::wire::Prefix;
use lb_k8s::drivers::bgp::socket;
use lb_k8s::drivers::bgp::{PeerHandle, PeerShared, PeerSpec, Routes, StopReason};

fn spec(name: &str, remote: SocketAddr, local_asn: u32, peer_asn: u32, passive: bool) -> PeerSpec {
    let mut session =
        SessionConfig::new(local_asn, RemoteAs::Fixed(peer_asn), Ipv4Addr::new(192, 0, 2, local_asn as u8));
    session.passive = passive;
    session.hold_time = 3;
    session.connect_retry = Duration::from_millis(200);
    PeerSpec {
        name: name.into(),
        remote,
        source: None,
        interface: None,
        md5_key: Some(b"loopback-secret".to_vec()),
        ttl: 1,
        connect_timeout: Duration::from_secs(2),
        session,
    }
}

fn routes(n: u32) -> Routes {
    (0..n)
        .map(|i| {
            let ip = IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(203, 0, 113, 0)) + i));
            (Prefix::new(ip, 32).expect("prefix"), RouteAttributes { communities: vec![1], ..Default::default() })
        })
        .collect()
}

async fn wait(shared: &Arc<PeerShared>, what: &str, f: impl Fn(&PeerShared) -> bool) {
    for _ in 0..200 {
        if f(shared) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what}: {:?}", shared.status());
}

#[tokio::test]
async fn active_and_passive_establish_with_md5_and_exchange_routes() {
    let listener = socket::listen("127.0.0.1:0".parse().expect("addr")).expect("listen");
    let port = listener.local_addr().expect("local").port();
    socket::set_md5_key(&listener, IpAddr::from([127, 0, 0, 1]), Some(b"loopback-secret")).expect("md5");

    // The passive side knows the active one by address; the listener hands it the connection.
    let passive = PeerHandle::spawn(
        spec("active-side", "127.0.0.1:179".parse().expect("addr"), 64501, 64500, true),
        Arc::new(Routes::new()),
    );
    let active = PeerHandle::spawn(
        spec("passive-side", SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port), 64500, 64501, false),
        Arc::new(routes(3)),
    );
    let (stream, _) = listener.accept().await.expect("accept");
    passive.accepted(stream);

    let a = active.shared().clone();
    let p = passive.shared().clone();
    wait(&a, "active established", |s| s.status().state == State::Established).await;
    wait(&p, "passive established", |s| s.status().state == State::Established).await;
    wait(&a, "UPDATEs sent", |s| s.status().stats.sent.update >= 1).await;
    assert_eq!(a.status().peer_asn, Some(64501));
    assert_eq!(a.status().routes, 3);

    // Routes change on the live session: no new connection.
    active.set_routes(Arc::new(routes(5)));
    wait(&a, "more UPDATEs", |s| s.status().stats.sent.update >= 2).await;
    assert_eq!(a.status().connects, 1);

    // Stopping one side: it sends a Cease, the other sees the session go down.
    active.stop(StopReason::Shutdown(Some("maintenance".into()))).await;
    assert_eq!(a.status().stats.sent.notification, 1);
    wait(&p, "passive down", |s| s.status().state != State::Established).await;
    let err = p.status().last_error.unwrap_or_default();
    assert!(err.contains("received NOTIFICATION") && err.contains("maintenance"), "{err}");
    passive.stop(StopReason::Deconfigured).await;
}

#[tokio::test]
async fn a_silent_address_keeps_retrying_without_errors_escaping() {
    // Nothing listens on this port: connects are refused and retried.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = probe.local_addr().expect("addr").port();
    drop(probe);
    let mut s = spec("nobody", SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port), 64500, 64501, false);
    s.md5_key = None;
    let peer = PeerHandle::spawn(s, Arc::new(routes(1)));
    let shared = peer.shared().clone();
    wait(&shared, "an attempt failed", |s| s.status().last_error.is_some()).await;
    assert_ne!(shared.status().state, State::Established);
    peer.stop(StopReason::Shutdown(None)).await;
    assert_eq!(shared.status().stats.sent.notification, 0, "no session, no Cease");
}

#[tokio::test]
async fn both_sides_connecting_at_once_resolve_the_collision_and_keep_one_session() {
    for round in 0..5 {
        let la = socket::listen("127.0.0.1:0".parse().expect("addr")).expect("listen");
        let lb = socket::listen("127.0.0.1:0".parse().expect("addr")).expect("listen");
        let (pa, pb) = (la.local_addr().expect("a").port(), lb.local_addr().expect("b").port());
        let mut sa = spec("b", SocketAddr::new(IpAddr::from([127, 0, 0, 1]), pb), 64500, 64501, false);
        let mut sb = spec("a", SocketAddr::new(IpAddr::from([127, 0, 0, 1]), pa), 64501, 64500, false);
        sa.md5_key = None;
        sb.md5_key = None;
        let a = PeerHandle::spawn(sa, Arc::new(routes(2)));
        let b = PeerHandle::spawn(sb, Arc::new(routes(3)));
        // Each listener hands what it accepts to its own side, as the speaker does.
        let mut accepted = 0;
        let (sa_shared, sb_shared) = (a.shared().clone(), b.shared().clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let established = || {
            [&sa_shared, &sb_shared]
                .map(|s| (s.status().state == State::Established, s.status().stats.times_established))
        };
        // Until both are established and stay so, on the same sessions, for
        // half a second; accepting all along, as a speaker does.
        let mut stable_since: Option<(tokio::time::Instant, [(bool, u64); 2])> = None;
        loop {
            tokio::select! {
                Ok((s, _)) = la.accept() => { a.accepted(s); accepted += 1; }
                Ok((s, _)) = lb.accept() => { b.accepted(s); accepted += 1; }
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            let now = established();
            match stable_since {
                Some((since, then)) if then == now && now.iter().all(|(up, _)| *up) => {
                    if since.elapsed() >= Duration::from_millis(500) {
                        break;
                    }
                }
                _ => stable_since = Some((tokio::time::Instant::now(), now)),
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: {:?} {:?}",
                sa_shared.status(),
                sb_shared.status()
            );
        }
        // One session each, almost always. §6.8 itself allows more: when one
        // side's connection is established before the other's second
        // connection completes, the first keeps its established one, the
        // second keeps the one its identifier wins, and both start again.
        for shared in [&sa_shared, &sb_shared] {
            let sessions = shared.status().stats.times_established;
            assert!((1..=3).contains(&sessions), "round {round}: {sessions} sessions");
        }
        eprintln!(
            "round {round}: {accepted} accepted, connections a {} b {}, sessions a {} b {}",
            sa_shared.status().connects,
            sb_shared.status().connects,
            sa_shared.status().stats.times_established,
            sb_shared.status().stats.times_established
        );
        a.stop(StopReason::Shutdown(None)).await;
        b.stop(StopReason::Shutdown(None)).await;
    }
}
