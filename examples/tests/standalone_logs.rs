//! `lb standalone`'s log says what changed, not what stayed: a reload that
//! changes nothing is one line. Loopback only, no root, no peers.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Lb(Child);

impl Drop for Lb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const CONFIG: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: pool}\nspec: {addresses: [192.0.2.0/28]}\n---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\nspec: {interfaces: [lb-none0]}\n";

fn services(n: usize) -> String {
    (0..n)
        .map(|i| format!("---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: default}}\nspec: {{type: LoadBalancer}}\n"))
        .collect()
}

/// Replaces a file as editors do: written aside, renamed over.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log).unwrap_or_default().lines().map(str::to_string).collect()
}

/// Waits until the log has `n` lines with `event`; returns the whole log.
fn wait_for(log: &Path, event: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all = lines(log);
        if all.iter().filter(|l| l.contains(&format!("\"event\":\"{event}\""))).count() >= n {
            return all;
        }
        assert!(Instant::now() < deadline, "no {n} × {event} in:\n{}", all.join("\n"));
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_reload_that_changes_nothing_is_one_line() {
    let dir = std::env::temp_dir().join(format!("lb-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (config, svc, log): (PathBuf, PathBuf, PathBuf) =
        (dir.join("config.yaml"), dir.join("services.yaml"), dir.join("lb.log"));
    std::fs::write(&config, CONFIG).expect("config");
    std::fs::write(&svc, services(5)).expect("services");
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let _lb = Lb(Command::new(env!("CARGO_BIN_EXE_lb"))
        .args(["standalone", "--node", "n1", "--listen", &format!("127.0.0.1:{port}"), "--config"])
        .arg(&config)
        .arg("--services")
        .arg(&svc)
        .stdout(Stdio::from(std::fs::File::create(&log).expect("log")))
        .spawn()
        .expect("lb"));
    let first = wait_for(&log, "configLoaded", 1);

    // The same files written again and again.
    for round in 2..=6 {
        replace(&svc, &services(5));
        wait_for(&log, "configLoaded", round);
    }
    let after = lines(&log);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(after.len() - first.len(), 5, "one line per reload:\n{}", after[first.len()..].join("\n"));
}
