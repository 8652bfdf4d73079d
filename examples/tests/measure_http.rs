//! Measures what a flood of idle HTTP clients costs `lb standalone`: the
//! descriptors it holds while 3,000 clients connect to its HTTP port and
//! say nothing, and whether a configuration change still applies meanwhile.
//!
//! `cargo test --release -p lb-examples --test measure_http -- --ignored --nocapture`
//! (`LB_BIN=path/to/lb` measures another build). Loopback only, no root.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CLIENTS: usize = 3000;

struct Lb(Child);

impl Drop for Lb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

fn config(pool: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: pool}}\nspec: {{addresses: [{pool}]}}\n---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: l2}}\nspec: {{interfaces: [lb-none0]}}\n"
    )
}

#[test]
#[ignore = "a measurement: run it on purpose, in release mode"]
fn idle_clients_against_descriptors() {
    let dir = std::env::temp_dir().join(format!("lb-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cfg, svc, log) = (dir.join("config.yaml"), dir.join("services.yaml"), dir.join("lb.log"));
    std::fs::write(&cfg, config("192.0.2.0/28")).expect("config");
    std::fs::write(
        &svc,
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec: {type: LoadBalancer}\n",
    )
    .expect("services");
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let bin = std::env::var("LB_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lb").to_string());
    let lb = Lb(Command::new(bin)
        .args(["standalone", "--node", "n1", "--listen", &format!("127.0.0.1:{port}"), "--config"])
        .arg(&cfg)
        .arg("--services")
        .arg(&svc)
        .stdout(Stdio::from(std::fs::File::create(&log).expect("log")))
        .spawn()
        .expect("lb"));
    let pid = lb.0.id();
    let loaded = |n: usize| std::fs::read_to_string(&log).unwrap_or_default().matches("configLoaded").count() >= n;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !loaded(1) {
        assert!(Instant::now() < deadline, "lb did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = descriptors(pid);

    let mut idle = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => idle.push(s),
            Err(e) => {
                println!("connect failed after {} clients: {e}", idle.len());
                break;
            }
        }
    }
    // Let lb accept what it will.
    let mut held = descriptors(pid);
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(20));
        held = held.max(descriptors(pid));
    }

    // A configuration change while the clients sit there.
    std::fs::write(&cfg, config("198.51.100.0/28")).expect("config");
    let applied_by = Instant::now() + Duration::from_secs(10);
    let mut applied = false;
    while Instant::now() < applied_by {
        if loaded(2) {
            applied = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(idle);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{CLIENTS} idle clients: lb held {held} descriptors (before them: {before}); a configuration change {}",
        if applied { "applied" } else { "was not applied within 10 s" }
    );
}
