//! ExaBGP 4.2 in a namespace, as an oracle: it writes every UPDATE it
//! receives as a JSON line, and its capabilities can be turned off one by
//! one (a peer without 4-octet ASNs or extended messages, say).

use std::net::IpAddr;
use std::path::PathBuf;

use serde_json::Value;

use super::{Daemon, Netns, TempDir};

/// One passive neighbor of ExaBGP.
#[derive(Debug, Clone)]
pub struct ExabgpConfig {
    pub router_id: std::net::Ipv4Addr,
    pub local_address: IpAddr,
    pub local_as: u32,
    pub neighbor: IpAddr,
    pub peer_as: u32,
    /// Announce the 4-octet ASN capability (RFC 6793).
    pub asn4: bool,
    /// Announce extended messages (RFC 8654).
    pub extended_message: bool,
}

/// A running ExaBGP.
#[derive(Debug)]
pub struct Exabgp {
    _daemon: Daemon,
    updates: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

impl Exabgp {
    pub fn start(ns: &Netns, config: &ExabgpConfig) -> Result<Self, String> {
        let dir = TempDir::new()?;
        let updates = dir.join("updates.jsonl");
        // ExaBGP hands received messages to a helper process on its stdin.
        let helper = dir.join("receive.sh");
        std::fs::write(
            &helper,
            format!("#!/bin/sh\nwhile read -r line; do printf '%s\\n' \"$line\" >> '{}'; done\n", updates.display()),
        )
        .map_err(|e| e.to_string())?;
        std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        let family = if config.neighbor.is_ipv4() { "ipv4 unicast" } else { "ipv6 unicast" };
        let onoff = |b: bool| if b { "enable" } else { "disable" };
        let text = format!(
            "process receive {{\n  run {helper};\n  encoder json;\n}}\n\
             neighbor {neighbor} {{\n  router-id {rid};\n  local-address {local};\n  local-as {las};\n  peer-as {pas};\n  passive;\n  hold-time 9;\n\
             \x20 capability {{\n    asn4 {asn4};\n    extended-message {ext};\n  }}\n  family {{\n    {family};\n  }}\n\
             \x20 api {{\n    processes [ receive ];\n    receive {{ parsed; update; notification; }}\n  }}\n}}\n",
            helper = helper.display(),
            neighbor = config.neighbor,
            rid = config.router_id,
            local = config.local_address,
            las = config.local_as,
            pas = config.peer_as,
            asn4 = onoff(config.asn4),
            ext = onoff(config.extended_message),
        );
        let conf = dir.join("exabgp.conf");
        std::fs::write(&conf, text).map_err(|e| e.to_string())?;
        let mut cmd = ns.command("exabgp");
        cmd.arg(&conf)
            .env("exabgp_daemon_user", "root")
            .env("exabgp_daemon_drop", "false")
            .env("exabgp_cli_enable", "false")
            .env("exabgp_tcp_bind", config.local_address.to_string())
            .env("exabgp_log_destination", "stdout");
        let log = dir.join("exabgp.log");
        let daemon = Daemon::spawn("exabgp", &mut cmd, log.clone())?;
        Ok(Self { _daemon: daemon, updates, log, _dir: dir })
    }

    /// Every JSON message received so far.
    pub fn messages(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.updates).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// The prefixes announced and not withdrawn since, in the order seen.
    pub fn routes(&self) -> std::collections::BTreeSet<String> {
        let mut routes = std::collections::BTreeSet::new();
        for m in self.messages() {
            let Some(update) = m.pointer("/neighbor/message/update") else { continue };
            for (kind, add) in [("withdraw", false), ("announce", true)] {
                let Some(families) = update.get(kind).and_then(Value::as_object) else { continue };
                for family in families.values() {
                    // announce: {family: {next-hop: [{nlri}]}}; withdraw: {family: [{nlri}]}.
                    let lists: Vec<&Value> = match family {
                        Value::Array(_) => vec![family],
                        Value::Object(by_next_hop) => by_next_hop.values().collect(),
                        _ => vec![],
                    };
                    for nlri in lists.iter().filter_map(|l| l.as_array()).flatten() {
                        let Some(prefix) = nlri.get("nlri").and_then(Value::as_str) else { continue };
                        if add {
                            routes.insert(prefix.to_string());
                        } else {
                            routes.remove(prefix);
                        }
                    }
                }
            }
        }
        routes
    }

    /// The end of ExaBGP's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(3000);
        text.get(start..).unwrap_or_default().to_string()
    }

    /// NOTIFICATIONs ExaBGP received or sent, as it reports them.
    pub fn notifications(&self) -> Vec<Value> {
        self.messages().into_iter().filter(|m| m.get("type").and_then(Value::as_str) == Some("notification")).collect()
    }
}
