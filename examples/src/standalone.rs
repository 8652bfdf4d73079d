//! `lb standalone`: the allocator and this node's BGP speaker in one
//! process, with files as the source of truth.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use lb_k8s::roles::standalone::{self, Listen, Options};
use lb_k8s::sources::files::FileSources;

#[derive(clap::Args)]
pub struct StandaloneArgs {
    /// Configuration files (legacy ConfigMap and/or metallb.io resources;
    /// Secrets for passwordSecret may be among them).
    #[arg(long, num_args = 1.., required = true)]
    config: Vec<PathBuf>,
    /// Service manifests.
    #[arg(long, num_args = 1.., required = true)]
    services: Vec<PathBuf>,
    /// This node's name.
    #[arg(long)]
    node: String,
    /// Node manifests: labels, conditions and addresses.
    #[arg(long, num_args = 1..)]
    nodes: Vec<PathBuf>,
    /// EndpointSlice manifests; without them every Service counts as served on this node.
    #[arg(long, num_args = 1..)]
    endpoints: Vec<PathBuf>,
    /// Namespace manifests, for serviceAllocation.namespaceSelectors.
    #[arg(long, num_args = 1..)]
    namespaces: Vec<PathBuf>,
    /// Address for /metrics and /status [default: 127.0.0.1:7472, and
    /// running on without them if it is taken].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Also handle Services with this spec.loadBalancerClass.
    #[arg(long = "lb-class")]
    lb_class: Option<String>,
    /// Keep assignments in this file across restarts (JSON), so a restart
    /// never moves a Service even if the files changed meanwhile.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Also accept BGP connections from configured peers on this address
    /// (e.g. `0.0.0.0:179` or `[::]:179`), besides connecting to them.
    #[arg(long = "bgp-listen")]
    bgp_listen: Option<SocketAddr>,
    #[command(flatten)]
    layer2: Layer2Args,
}

/// How layer 2 runs (`lb standalone`, `lb speaker`).
#[derive(clap::Args)]
pub struct Layer2Args {
    /// UDP port of the layer 2 gossip among the nodes (standalone: each
    /// node's InternalIP in --nodes; speaker: the speaker Pods), MetalLB's
    /// memberlist port.
    #[arg(long = "memberlist-port", default_value_t = 7946)]
    memberlist_port: u16,
    /// A file holding the shared gossip key (as MetalLB's `memberlist`
    /// Secret, which the speaker reads without it): gossip without it is
    /// dropped and counted.
    #[arg(long = "memberlist-key-file")]
    memberlist_key_file: Option<PathBuf>,
    /// Interface name prefixes layer 2 does not answer on unless an
    /// L2Advertisement names the interface [default: MetalLB's list:
    /// docker, cni, veth, lo, flannel, cali, cilium, lxc, kube-ipvs, ...].
    #[arg(long = "exclude-interfaces", value_delimiter = ',')]
    exclude_interfaces: Option<Vec<String>>,
}

impl Layer2Args {
    /// The settings, with the key file read.
    pub fn settings(self) -> anyhow::Result<standalone::Layer2Settings> {
        let memberlist_key = self.memberlist_key_file.as_deref().map(read_memberlist_key).transpose()?;
        Ok(standalone::Layer2Settings {
            memberlist_port: self.memberlist_port,
            memberlist_key,
            exclude_interfaces: self.exclude_interfaces,
        })
    }
}

/// JSON lines on stdout, level from `LB_LOG` (default `info`).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .init();
}

/// The gossip key in `path` (surrounding white space dropped), not empty.
fn read_memberlist_key(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let key = std::fs::read(path).with_context(|| format!("reading --memberlist-key-file {}", path.display()))?;
    let key = key.trim_ascii().to_vec();
    anyhow::ensure!(!key.is_empty(), "--memberlist-key-file {} is empty", path.display());
    Ok(key)
}

pub fn run(args: StandaloneArgs) -> anyhow::Result<ExitCode> {
    init_logs();
    let layer2 = args.layer2.settings()?;
    let options = Options {
        sources: FileSources {
            config: args.config,
            services: args.services,
            nodes: args.nodes,
            endpoints: args.endpoints,
            namespaces: args.namespaces,
        },
        node: args.node,
        load_balancer_class: args.lb_class,
        state: args.state,
        bgp_listen: args.bgp_listen,
        layer2,
    };
    // Two workers: a reload or a large /status occupies one while the BGP
    // sessions' keepalives go on on the other.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let listen = match args.listen {
        Some(addr) => Listen::Given(addr),
        None => Listen::Default(SocketAddr::from(([127, 0, 0, 1], 7472))),
    };
    let result = runtime.block_on(standalone::run(options, listen));
    // The peers have had their Cease; a reload given up for the stop may
    // still be parsing on the blocking pool: do not wait for it.
    runtime.shutdown_background();
    result?;
    Ok(ExitCode::SUCCESS)
}
