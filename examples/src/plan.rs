//! `lb plan`: allocate addresses for Service manifests, as the controller
//! would, and print the result.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use lb_core::{Namespace, Service, manifest};
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

    let mut allocator = Allocator::new(loaded.config).with_load_balancer_class(args.lb_class.clone());
    allocator.set_namespaces(namespaces);
    let results = allocator.allocate_all(&services);
    let plan = Plan {
        services: services
            .iter()
            .zip(results)
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
