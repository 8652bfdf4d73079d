//! Embedding the pure crates: configuration in, addresses and routes out,
//! with no I/O of their own. Another load balancer, or a test, can drive
//! them with its own sources and its own BGP speaker.
//!
//! `cargo run -p lb-examples --example embed`

use lb_core::manifest::{self, ManifestFiles};
use lb_core::plan::Observed;
use lb_ipam::{Allocator, pipeline};

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
    // The observed world: here from texts, for another embedder from its own sources.
    let manifests = manifest::load(&ManifestFiles { services: &[("services.yaml", SERVICES)], ..Default::default() })?;
    let observed = Observed::new(config.clone(), manifests);

    // Allocation (what the controller does), then what one node's speaker
    // should tell each peer. Keep the allocator across changes.
    let mut allocator = Allocator::new(config);
    let plan = pipeline::plan_cluster(&mut allocator, &observed, &["node-a"]);
    for service in &plan.services {
        let ips: Vec<String> = service.ips.iter().map(ToString::to_string).collect();
        println!("{} gets {}", service.service, ips.join(","));
    }
    for peer in &plan.nodes[0].bgp {
        for (prefix, attrs) in &peer.routes {
            let communities: Vec<String> = attrs.communities.iter().map(ToString::to_string).collect();
            println!("{} -> {prefix} communities {}", peer.peer, communities.join(","));
        }
    }
    // The same value, as `lb plan -o json` prints it.
    println!("{}", serde_json::to_string(&plan)?);
    Ok(())
}
