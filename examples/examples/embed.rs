//! Embedding the pure crates: configuration in, addresses and routes out,
//! with no I/O of their own. Another load balancer, or a test, can drive
//! them with its own sources and its own BGP speaker.
//!
//! `cargo run -p lb-examples --example embed`

use lb_core::planner::{AssignedService, World, plan_bgp};
use lb_core::{Node, manifest};
use lb_ipam::Allocator;

const CONFIG: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: web}
spec: {addresses: [192.0.2.0/28]}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: web}
spec: {ipAddressPools: [web], communities: ["64512:100"]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 198.51.100.1}
"#;

const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: default}
spec: {type: LoadBalancer, ports: [{port: 443}]}
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Configuration: every error at once, each with file, object and field.
    let config = match lb_core::config::load(&[("config.yaml", CONFIG)]) {
        Ok(loaded) => loaded.config,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return Err("invalid configuration".into());
        }
    };
    let services = manifest::services(SERVICES)?;

    // Allocation: what the controller does.
    let mut allocator = Allocator::new(config.clone());
    let results = allocator.allocate_all(&services);
    let ips: Vec<Vec<std::net::IpAddr>> = results
        .iter()
        .map(|r| r.as_ref().ok().and_then(Option::as_ref).map_or_else(Vec::new, |(a, _)| a.to_vec()))
        .collect();
    let assigned: Vec<AssignedService<'_>> =
        services.iter().zip(&ips).map(|(service, ips)| AssignedService { service, ips }).collect();

    // Announcement: what one node's speaker should tell each peer.
    let nodes = [Node::new("node-a")];
    let plan = plan_bgp(&World { config: &config, services: &assigned, endpoints: None, nodes: &nodes }, "node-a");
    for peer in &plan.peers {
        for (prefix, attrs) in &peer.routes {
            let communities: Vec<String> = attrs.communities.iter().map(ToString::to_string).collect();
            println!("{} -> {prefix} communities {}", peer.peer, communities.join(","));
        }
    }
    Ok(())
}
