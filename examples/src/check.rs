//! `lb check-config`: one line per object when valid, one per error when not.

use std::path::PathBuf;
use std::process::ExitCode;

use lb_core::addr::Family;
use lb_core::config::{Config, PeerAsn, Resource, SourcedResource};
use lb_core::manifest::escape;

use crate::files;

pub fn run(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    match files::load_config(paths)? {
        Err(errors) => {
            files::print_errors(&errors);
            eprintln!("{} error(s)", errors.len());
            Ok(ExitCode::FAILURE)
        }
        Ok(loaded) => {
            for r in &loaded.resources {
                println!("{}", escape(&summary(r, &loaded.config)));
            }
            for s in &loaded.skipped {
                println!("{}", escape(&format!("{}: {}: skipped (not MetalLB configuration)", s.file, s.object)));
            }
            // Valid as far as the files tell: the Secrets are elsewhere.
            for u in &loaded.unchecked_secrets {
                let note = format!(
                    "note: {}: {}: {}: Secret {} is not checked (no Secret in the files)",
                    u.file, u.object, u.field, u.secret
                );
                eprintln!("{}", escape(&note));
            }
            eprintln!("configuration is valid: {} object(s)", loaded.resources.len());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(items: &[String], empty: &str) -> String {
    if items.is_empty() { empty.to_string() } else { items.join(",") }
}

/// `FILE: KIND/NAME: what it configures`.
fn summary(r: &SourcedResource, config: &Config) -> String {
    let meta = r.resource.metadata();
    let object = format!("{}/{}", r.resource.kind(), meta.name);
    let place = if r.origin.legacy.is_some() {
        format!("{}: {} -> {object}", r.origin.file, r.origin.object)
    } else {
        format!("{}: {object}", r.origin.file)
    };
    let what = match &r.resource {
        Resource::IpAddressPool(_) => config.pool(&meta.name).map(|p| {
            let mut s = format!(
                "{} block(s), {} IPv4 and {} IPv6 addresses",
                p.blocks.len(),
                p.total_text(Family::V4),
                p.total_text(Family::V6)
            );
            s.push_str(if p.auto_assign { ", autoAssign" } else { ", no autoAssign" });
            if p.avoid_buggy_ips {
                s.push_str(", avoidBuggyIPs");
            }
            if let Some(a) = &p.allocation {
                match a.priority {
                    Some(prio) => s.push_str(&format!(", serviceAllocation priority {prio}")),
                    None => s.push_str(", serviceAllocation"),
                }
            }
            s
        }),
        Resource::L2Advertisement(_) => config.l2_advertisements.iter().find(|a| a.name == meta.name).map(|a| {
            format!(
                "layer 2 for pools [{}] on {} on interfaces [{}]",
                a.pools.join(","),
                nodes(a.node_selectors.len()),
                list(&a.interfaces, "all")
            )
        }),
        Resource::BgpAdvertisement(_) => config.bgp_advertisements.iter().find(|a| a.name == meta.name).map(|a| {
            let communities: Vec<String> = a.communities.iter().map(ToString::to_string).collect();
            let mut s = format!(
                "BGP for pools [{}] as /{} and /{}, to peers [{}] from {}",
                a.pools.join(","),
                a.aggregation_length,
                a.aggregation_length_v6,
                list(&a.peers, "all"),
                nodes(a.node_selectors.len())
            );
            if let Some(lp) = a.local_pref {
                s.push_str(&format!(", localPref {lp}"));
            }
            if !communities.is_empty() {
                s.push_str(&format!(", communities [{}]", communities.join(",")));
            }
            s
        }),
        Resource::BgpPeer(_) => config.peers.iter().find(|p| p.name == meta.name).map(|p| {
            let peer_as = match p.peer_asn {
                PeerAsn::Fixed(asn) => format!("AS{asn}"),
                PeerAsn::Internal => "internal AS".into(),
                PeerAsn::External => "external AS".into(),
            };
            let address = p.address.map_or_else(|| p.interface.clone().unwrap_or_default(), |a| a.to_string());
            let mut s = format!(
                "AS{} to {peer_as} at {address} port {}, {}, hold {:?} keepalive {:?}, from {}",
                p.my_asn,
                p.port,
                if p.is_ibgp() { "iBGP" } else { "eBGP" },
                p.hold_time,
                p.keepalive_time,
                nodes(p.node_selectors.len())
            );
            if let Some(local) = p.local_asn {
                s.push_str(&format!(", speaking as AS{local} (localASN)"));
            }
            if p.password.is_some() {
                s.push_str(", TCP MD5");
            }
            if let Some(bfd) = &p.bfd_profile {
                s.push_str(&format!(", BFD {bfd}"));
            }
            s
        }),
        Resource::Community(o) => Some(format!("{} alias(es)", o.spec.communities.len())),
        Resource::BfdProfile(_) => config.bfd_profiles.iter().find(|b| b.name == meta.name).map(|b| {
            format!(
                "receive {}ms transmit {}ms multiplier {}",
                b.receive_interval, b.transmit_interval, b.detect_multiplier
            )
        }),
        _ => None,
    };
    format!("{place}: {}", what.unwrap_or_else(|| "ok".into()))
}

fn nodes(selectors: usize) -> String {
    if selectors == 0 { "all nodes".into() } else { format!("nodes matching {selectors} selector(s)") }
}
