//! `lb`: the bare-metal load balancer's command line.
//!
//! - `lb check-config FILE...`: validate MetalLB configuration;
//! - `lb convert FILE`: legacy ConfigMap to `metallb.io` resources;
//! - `lb plan --config FILE... --services FILE... [--nodes FILE...]`: which IP
//!   each Service gets, and what each node announces;
//! - `lb standalone --config FILE... --services FILE... --node NAME`: run the
//!   allocator and this node's BGP speaker over files;
//! - `lb controller`: the allocator in a cluster;
//! - `lb speaker`: one node's announcements in a cluster (BGP and layer 2).

mod check;
mod cluster;
mod controller;
mod convert;
mod files;
mod plan;
mod speaker;
mod standalone;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "lb", version, about = "A bare-metal load balancer that speaks MetalLB's configuration")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate configuration files (legacy ConfigMap and metallb.io resources, in any mix).
    CheckConfig {
        /// YAML files, each with one or more documents.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Convert a legacy MetalLB ConfigMap to the equivalent metallb.io resources (YAML on stdout).
    Convert {
        /// A YAML file holding the ConfigMap; metallb.io resources in it are passed through,
        /// other objects are left out (and named on stderr).
        file: PathBuf,
    },
    /// Show which addresses the Services in the manifests get, and (with --nodes) what each node announces.
    Plan(plan::PlanArgs),
    /// Run the allocator and this node's BGP speaker, with files as the source of truth.
    Standalone(standalone::StandaloneArgs),
    /// Run the allocator in a Kubernetes cluster: Services get IPs, status, annotation and Events.
    Controller(controller::ControllerArgs),
    /// Announce this node's Services in a Kubernetes cluster (BGP and layer 2), as a DaemonSet.
    Speaker(speaker::SpeakerArgs),
}

/// Output format of `plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CheckConfig { files } => check::run(&files),
        Command::Convert { file } => convert::run(&file),
        Command::Plan(args) => plan::run(&args),
        Command::Standalone(args) => standalone::run(args),
        Command::Controller(args) => controller::run(args),
        Command::Speaker(args) => speaker::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lb: {e:#}");
            ExitCode::FAILURE
        }
    }
}
