//! `lb plan`: allocate addresses for Service manifests, as the controller
//! would, then (with `--nodes`) plan what every node announces over BGP, as
//! its speaker would, and print the result: the pipeline of
//! [`lb_ipam::pipeline::plan_cluster`], files in, the [`ClusterPlan`] out.

use std::path::PathBuf;
use std::process::ExitCode;

use lb_core::Family;
use lb_core::manifest::{self, ManifestFiles, escape};
use lb_core::plan::{ClusterPlan, Observed, peer_label};
use lb_ipam::{Allocator, pipeline};

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

pub fn run(args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let loaded = match files::load_config(&args.config)? {
        Ok(l) => l,
        Err(errors) => {
            files::print_errors(&errors);
            eprintln!("{} configuration error(s); nothing planned", errors.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    let services = files::read_all(&args.services)?;
    let namespaces = files::read_all(&args.namespaces)?;
    let nodes = files::read_all(&args.nodes)?;
    let endpoints = files::read_all(&args.endpoints)?;
    let manifests = manifest::load(&ManifestFiles {
        services: &files::borrow(&services),
        namespaces: &files::borrow(&namespaces),
        nodes: &files::borrow(&nodes),
        endpoints: &files::borrow(&endpoints),
    })?;
    for warning in &manifests.warnings {
        eprintln!("warning: {}", escape(&warning.to_string()));
    }
    let observed = Observed::new(loaded.config, manifests);

    let mut allocator = Allocator::new(observed.config.clone()).with_load_balancer_class(args.lb_class.clone());
    let node_names: Vec<&str> = observed.nodes.iter().map(|n| n.name.as_str()).collect();
    let plan = pipeline::plan_cluster(&mut allocator, &observed, &node_names);
    match args.output {
        Output::Json => println!("{}", serde_json::to_string(&plan)?),
        Output::Table => print!("{}", table(&plan, &observed.config)),
    }
    Ok(ExitCode::SUCCESS)
}

fn table(plan: &ClusterPlan, config: &lb_core::Config) -> String {
    let mut rows = vec![["SERVICE".to_string(), "IPS".into(), "POOL".into(), "ERROR".into()]];
    for s in &plan.services {
        let ips: Vec<String> = s.ips.iter().map(ToString::to_string).collect();
        rows.push([
            s.service.to_string(),
            if ips.is_empty() { "-".into() } else { ips.join(",") },
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
            // Exact, all of IPv6 included (2^128 holds in no u128).
            config.pool(&p.name).map_or_else(|| p.ipv6_total.to_string(), |pool| pool.total_text(Family::V6)),
        ]);
    }
    out.push_str(&render(&rows));
    if !plan.nodes.is_empty() {
        let mut rows =
            vec![["NODE".to_string(), "PEER".into(), "PREFIX".into(), "LOCAL PREF".into(), "COMMUNITIES".into()]];
        for node in &plan.nodes {
            for peer in &node.bgp {
                let label = peer_label(peer);
                if peer.routes.is_empty() {
                    rows.push([node.node.clone(), label.clone(), "-".into(), "-".into(), "-".into()]);
                }
                for (prefix, attrs) in &peer.routes {
                    let communities: Vec<String> = attrs
                        .standard_communities()
                        .chain(attrs.large_communities().map(|c| format!("large:{c}")))
                        .collect();
                    rows.push([
                        node.node.clone(),
                        label.clone(),
                        prefix.to_string(),
                        attrs.local_pref.map_or_else(|| "-".into(), |l| l.to_string()),
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

/// Every cell with control characters escaped: names and errors echo what
/// the files held, and must not drive the terminal.
fn escaped<const N: usize>(rows: &[[String; N]]) -> Vec<[String; N]> {
    rows.iter().map(|row| row.clone().map(|cell| escape(&cell).into_owned())).collect()
}

fn column_widths<const N: usize>(rows: &[[String; N]]) -> Vec<usize> {
    (0..N).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect()
}

fn render<const N: usize>(rows: &[[String; N]]) -> String {
    let rows = &escaped(rows);
    let widths = column_widths(rows);
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
