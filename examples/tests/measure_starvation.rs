//! Measures how late `lb standalone`'s KEEPALIVEs get while `/status` is
//! hammered: 10,000 Services, 300 clients asking for `/status` without a
//! pause for 20 s, and a BGP peer (this test, on loopback) with a 9 s hold
//! time, so a KEEPALIVE is due every 3 s. Prints the largest gap between
//! two KEEPALIVEs and how far past 3 s it is.
//!
//! `cargo test --release -p lb-examples --test measure_starvation -- --ignored --nocapture`
//! (`LB_BIN=path/to/lb` measures another build). No root needed: loopback only.
//! With `LOAD=reload` the load is reloads instead: the services file is
//! rewritten twice a second, each time a full reload (`SERVICES=100000`
//! for a large one).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lb_bgp::session::{RemoteAs, Session, SessionConfig, State};

const CLIENTS: usize = 300;

fn services_count() -> usize {
    std::env::var("SERVICES").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000)
}
const HAMMER: Duration = Duration::from_secs(20);

struct Lb(Child);

impl Drop for Lb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn get_status(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    if write!(s, "GET /status HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut body = Vec::new();
    s.read_to_end(&mut body).is_ok() && body.starts_with(b"HTTP/1.1 200")
}

#[test]
#[ignore = "a measurement: run it on purpose, in release mode"]
fn keepalives_while_status_is_hammered() {
    let dir = std::env::temp_dir().join(format!("lb-starvation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let router = TcpListener::bind("127.0.0.1:0").expect("router listener");
    let router_port = router.local_addr().expect("addr").port();
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let config = format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: pool}}\nspec: {{addresses: [\"2001:db8::/104\"]}}\n---\n\
         apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: adv}}\nspec: {{ipAddressPools: [pool]}}\n---\n\
         apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: router}}\nspec: {{myASN: 64512, peerASN: 64513, peerAddress: 127.0.0.1, peerPort: {router_port}, holdTime: 9s, routerID: 192.0.2.11}}\n"
    );
    let count = services_count();
    let reloads = std::env::var("LOAD").is_ok_and(|l| l == "reload");
    let services: String = (0..count)
        .map(|i| format!("---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: default}}\nspec: {{type: LoadBalancer, ipFamilies: [IPv6], ports: [{{port: 80}}]}}\n"))
        .collect();
    let (config_path, services_path): (PathBuf, PathBuf) = (dir.join("config.yaml"), dir.join("services.yaml"));
    std::fs::write(&config_path, config).expect("config");
    std::fs::write(&services_path, services).expect("services");
    let bin = std::env::var("LB_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lb").to_string());
    let _lb = Lb(Command::new(&bin)
        .args(["standalone", "--node", "node-a", "--listen", &http.to_string(), "--config"])
        .arg(&config_path)
        .arg("--services")
        .arg(&services_path)
        .env("LB_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start lb"));

    // The router: a passive session of our own BGP library on the accepted connection.
    let (mut stream, _) = router.accept().expect("lb connects");
    stream.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
    let local = stream.local_addr().expect("addr");
    let mut config = SessionConfig::new(64513, RemoteAs::Fixed(64512), "192.0.2.1".parse().expect("id"));
    config.passive = true;
    config.hold_time = 9;
    let mut session = Session::new(config);
    let start = Instant::now();
    session.start(start);
    session.handle_connected(start, local);

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    let mut hammer_started: Option<Instant> = None;
    let mut keepalives: Vec<Instant> = Vec::new();
    let mut seen = 0;
    let mut buf = vec![0u8; 65536];
    loop {
        let now = Instant::now();
        match stream.read(&mut buf) {
            Ok(0) => panic!("lb closed the session"),
            Ok(n) => session.handle_bytes(now, &buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
        if session.poll_timeout().is_some_and(|t| t <= now) {
            session.handle_timeout(now);
        }
        let mut out = Vec::new();
        let _ = session.poll_transmit(&mut out);
        stream.write_all(&out).expect("write");
        while session.poll_event().is_some() {}
        assert_ne!(session.state(), State::Idle, "the session went down");
        let received = session.stats().received.keepalive;
        if received > seen {
            seen = received;
            keepalives.push(now);
        }
        // Established and the table sent: hammer /status.
        if hammer_started.is_none() && session.state() == State::Established && session.stats().received.update > 0 {
            hammer_started = Some(now);
            if reloads {
                let (stop, answered, services_path) = (stop.clone(), answered.clone(), services_path.clone());
                clients.push(std::thread::spawn(move || {
                    let text = std::fs::read_to_string(&services_path).expect("services");
                    let tmp = services_path.with_extension("tmp");
                    while !stop.load(Ordering::Relaxed) {
                        std::fs::write(&tmp, &text).expect("write");
                        std::fs::rename(&tmp, &services_path).expect("rename");
                        answered.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }));
            }
            for _ in 0..if reloads { 0 } else { CLIENTS } {
                let (stop, answered) = (stop.clone(), answered.clone());
                clients.push(std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if get_status(http) {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
            }
        }
        if hammer_started.is_some_and(|t| now.duration_since(t) >= HAMMER) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let since = hammer_started.expect("hammered");
    let during: Vec<Instant> = keepalives.into_iter().filter(|t| *t >= since).collect();
    let mut gaps: Vec<Duration> = during.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.insert(0, during.first().map_or(HAMMER, |t| *t - since));
    let worst = gaps.iter().max().copied().unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let load = if reloads {
        format!("the services file rewritten {} times", answered.load(Ordering::Relaxed))
    } else {
        format!("{CLIENTS} clients on /status: {} answers", answered.load(Ordering::Relaxed))
    };
    println!(
        "{count} Services, {} s of {load}; {} KEEPALIVEs, largest gap {:.2}s, {:.2}s late (one due every 3 s)",
        HAMMER.as_secs(),
        during.len(),
        worst.as_secs_f64(),
        worst.as_secs_f64() - 3.0
    );
}
