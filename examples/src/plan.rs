//! `lb plan`: allocate addresses for Service manifests, as the controller
//! would, then (with `--nodes`) plan what every node announces over BGP, as
//! its speaker would, and print the result.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use lb_core::endpoints::{EndpointSlice, Endpoints};
use lb_core::planner::{self, AssignedService, BgpPlan, World};
use lb_core::{Namespace, Node, Service, manifest};
use lb_ipam::Allocator;
use serde::Serialize;

use crate::{Output, files};

#[derive(clap::Args)]
pub struct PlanArgs {
    /// Configuration files (legacy ConfigMap and/or metallb.io resources).
    #[arg(long, num_args = 1.., required = true)]
    config: Vec<PathBuf>,
    /// Service manifests (multi-document YAML or a List).
    #[arg(long, num_args = 1.., required = true)]
    services: Vec<PathBuf>,
    /// Namespace manifests, for serviceAllocation.namespaceSelectors.
    #[arg(long, num_args = 1..)]
    namespaces: Vec<PathBuf>,
    /// Node manifests: plan the BGP announcements of each of these nodes.
    #[arg(long, num_args = 1..)]
    nodes: Vec<PathBuf>,
    /// EndpointSlice (or Endpoints) manifests; without them every Service
    /// counts as served on every node.
    #[arg(long, num_args = 1..)]
    endpoints: Vec<PathBuf>,
    /// Also handle Services with this spec.loadBalancerClass.
    #[arg(long = "lb-class")]
    lb_class: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: Output,
}

#[derive(Serialize)]
struct Plan {
    services: Vec<ServiceResult>,
    pools: Vec<PoolResult>,
    nodes: Vec<NodeResult>,
}

#[derive(Serialize)]
struct NodeResult {
    node: String,
    bgp: Vec<PeerResult>,
}

#[derive(Serialize)]
struct PeerResult {
    /// The peer's address (or `name` for a peer reached by interface).
    peer: String,
    routes: Vec<RouteResult>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RouteResult {
    prefix: String,
    local_pref: Option<u32>,
    communities: Vec<String>,
    large_communities: Vec<String>,
}

impl NodeResult {
    fn new(plan: &BgpPlan) -> Self {
        let bgp = plan
            .peers
            .iter()
            .map(|p| PeerResult {
                peer: p.address.map_or_else(|| p.peer.clone(), |a| a.to_string()),
                routes: p
                    .routes
                    .iter()
                    .map(|(prefix, attrs)| RouteResult {
                        prefix: prefix.to_string(),
                        local_pref: attrs.local_pref,
                        communities: attrs.standard_communities().collect(),
                        large_communities: attrs.large_communities().collect(),
                    })
                    .collect(),
            })
            .collect();
        Self { node: plan.node.clone(), bgp }
    }
}

#[derive(Serialize)]
struct ServiceResult {
    service: String,
    ips: Vec<String>,
    pool: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PoolResult {
    name: String,
    ipv4_total: u128,
    ipv4_in_use: u128,
    ipv6_total: u128,
    ipv6_in_use: u128,
}

pub fn run(args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let loaded = match files::load_config(&args.config)? {
        Ok(l) => l,
        Err(errors) => {
            files::print_errors(&errors);
            eprintln!("{} configuration error(s); nothing planned", errors.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut services: Vec<Service> = Vec::new();
    for (name, text) in files::read_all(&args.services)? {
        services.extend(manifest::services(&text).with_context(|| format!("{name}: cannot read Services"))?);
    }
    let mut namespaces: Vec<Namespace> = Vec::new();
    for (name, text) in files::read_all(&args.namespaces)? {
        namespaces.extend(manifest::namespaces(&text).with_context(|| format!("{name}: cannot read Namespaces"))?);
    }

    let mut nodes: Vec<Node> = Vec::new();
    for (name, text) in files::read_all(&args.nodes)? {
        nodes.extend(manifest::nodes(&text).with_context(|| format!("{name}: cannot read Nodes"))?);
    }
    let mut slices: Vec<EndpointSlice> = Vec::new();
    for (name, text) in files::read_all(&args.endpoints)? {
        slices.extend(manifest::endpoint_slices(&text).with_context(|| format!("{name}: cannot read EndpointSlices"))?);
    }
    let endpoints = (!args.endpoints.is_empty()).then(|| Endpoints::new(slices));

    let config = loaded.config;
    let mut allocator = Allocator::new(config.clone()).with_load_balancer_class(args.lb_class.clone());
    allocator.set_namespaces(namespaces);
    let results = allocator.allocate_all(&services);
    let ips: Vec<Vec<std::net::IpAddr>> = results
        .iter()
        .map(|r| r.as_ref().ok().and_then(Option::as_ref).map_or_else(Vec::new, |(a, _)| a.to_vec()))
        .collect();
    let assigned: Vec<AssignedService<'_>> = services
        .iter()
        .zip(&ips)
        .filter(|(_, ips)| !ips.is_empty())
        .map(|(service, ips)| AssignedService { service, ips })
        .collect();
    let world = World { config: &config, services: &assigned, endpoints: endpoints.as_ref(), nodes: &nodes };
    let node_results: Vec<NodeResult> =
        nodes.iter().map(|n| NodeResult::new(&planner::plan_bgp(&world, &n.name))).collect();
    let plan = Plan {
        services: services
            .iter()
            .zip(results.iter().cloned())
            .filter_map(|(s, r)| match r {
                Ok(None) => None,
                Ok(Some((addresses, pool))) => Some(ServiceResult {
                    service: s.key.to_string(),
                    ips: addresses.iter().map(|ip| ip.to_string()).collect(),
                    pool: Some(pool),
                    error: None,
                }),
                Err(e) => Some(ServiceResult {
                    service: s.key.to_string(),
                    ips: Vec::new(),
                    pool: None,
                    error: Some(e.to_string()),
                }),
            })
            .collect(),
        pools: allocator
            .pool_stats()
            .into_iter()
            .map(|p| PoolResult {
                name: p.name,
                ipv4_total: p.ipv4_total,
                ipv4_in_use: p.ipv4_in_use,
                ipv6_total: p.ipv6_total,
                ipv6_in_use: p.ipv6_in_use,
            })
            .collect(),
        nodes: node_results,
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string(&plan)?),
        Output::Table => print!("{}", table(&plan)),
    }
    Ok(ExitCode::SUCCESS)
}

fn table(plan: &Plan) -> String {
    let mut rows = vec![["SERVICE".to_string(), "IPS".into(), "POOL".into(), "ERROR".into()]];
    for s in &plan.services {
        rows.push([
            s.service.clone(),
            if s.ips.is_empty() { "-".into() } else { s.ips.join(",") },
            s.pool.clone().unwrap_or_else(|| "-".into()),
            s.error.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    let mut out = render(&rows);
    out.push('\n');
    let mut rows = vec![[
        "POOL".to_string(),
        "IPV4 IN USE".into(),
        "IPV4 TOTAL".into(),
        "IPV6 IN USE".into(),
        "IPV6 TOTAL".into(),
    ]];
    for p in &plan.pools {
        rows.push([
            p.name.clone(),
            p.ipv4_in_use.to_string(),
            p.ipv4_total.to_string(),
            p.ipv6_in_use.to_string(),
            p.ipv6_total.to_string(),
        ]);
    }
    out.push_str(&render(&rows));
    if !plan.nodes.is_empty() {
        let mut rows =
            vec![["NODE".to_string(), "PEER".into(), "PREFIX".into(), "LOCAL PREF".into(), "COMMUNITIES".into()]];
        for node in &plan.nodes {
            for peer in &node.bgp {
                if peer.routes.is_empty() {
                    rows.push([node.node.clone(), peer.peer.clone(), "-".into(), "-".into(), "-".into()]);
                }
                for r in &peer.routes {
                    let communities: Vec<String> = r
                        .communities
                        .iter()
                        .cloned()
                        .chain(r.large_communities.iter().map(|c| format!("large:{c}")))
                        .collect();
                    rows.push([
                        node.node.clone(),
                        peer.peer.clone(),
                        r.prefix.clone(),
                        r.local_pref.map_or_else(|| "-".into(), |l| l.to_string()),
                        if communities.is_empty() { "-".into() } else { communities.join(",") },
                    ]);
                }
            }
            if node.bgp.is_empty() {
                rows.push([node.node.clone(), "-".into(), "-".into(), "-".into(), "-".into()]);
            }
        }
        out.push('\n');
        out.push_str(&render(&rows));
    }
    out
}

fn column_widths<const N: usize>(rows: &[[String; N]]) -> Vec<usize> {
    (0..N).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect()
}

fn render<const N: usize>(rows: &[[String; N]]) -> String {
    let widths = column_widths(rows);
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
