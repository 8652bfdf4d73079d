//! `lb speaker`: one node's announcements in a cluster (BGP and layer 2),
//! run as a DaemonSet on the host network.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use lb_k8s::roles::controller::{self, Progress};
use lb_k8s::roles::speaker::{self, SpeakerOptions};
use lb_k8s::roles::standalone::Layer2Settings;

#[derive(clap::Args)]
pub struct SpeakerArgs {
    /// This node's name (the downward API's spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    node: String,
    /// The namespace holding the configuration, the speaker Pods and the memberlist Secret.
    #[arg(long, default_value = "metallb-system")]
    namespace: String,
    /// Only Services with this spec.loadBalancerClass; without it, only Services without a class.
    #[arg(long = "lb-class")]
    lb_class: Option<String>,
    /// Address for /metrics, /status, /healthz and /readyz (MetalLB's metrics port).
    #[arg(long, default_value = "0.0.0.0:7472")]
    listen: std::net::SocketAddr,
    /// This speaker's Pod, the owner of its ServiceL2Status and ServiceBGPStatus objects.
    #[arg(long, env = "POD_NAME")]
    pod: Option<String>,
    /// Label selector of the speaker Pods, whose IPs seed the layer 2 gossip.
    #[arg(long = "speaker-selector", default_value = "app.kubernetes.io/name=lb,app.kubernetes.io/component=speaker")]
    speaker_selector: String,
    /// The Secret holding the gossip key (key `secretkey`), as MetalLB's.
    #[arg(long = "memberlist-secret", default_value = "memberlist")]
    memberlist_secret: String,
    /// UDP port of the layer 2 gossip (MetalLB's memberlist port).
    #[arg(long = "memberlist-port", default_value_t = 7946)]
    memberlist_port: u16,
    /// A file holding the gossip key, instead of the memberlist Secret.
    #[arg(long = "memberlist-key-file")]
    memberlist_key_file: Option<PathBuf>,
    /// Interface name prefixes layer 2 does not answer on unless an
    /// L2Advertisement names the interface [default: MetalLB's list].
    #[arg(long = "exclude-interfaces", value_delimiter = ',')]
    exclude_interfaces: Option<Vec<String>>,
}

pub fn run(args: SpeakerArgs) -> anyhow::Result<ExitCode> {
    crate::standalone::init_logs();
    anyhow::ensure!(!args.node.is_empty(), "--node (or NODE_NAME) is empty");
    let memberlist_key = match &args.memberlist_key_file {
        Some(path) => {
            let key =
                std::fs::read(path).with_context(|| format!("reading --memberlist-key-file {}", path.display()))?;
            let key = key.trim_ascii().to_vec();
            anyhow::ensure!(!key.is_empty(), "--memberlist-key-file {} is empty", path.display());
            Some(key)
        }
        None => None,
    };
    let options = SpeakerOptions {
        node: args.node,
        namespace: args.namespace,
        load_balancer_class: args.lb_class,
        pod: args.pod,
        speaker_selector: args.speaker_selector,
        memberlist_secret: args.memberlist_secret,
        layer2: Layer2Settings {
            memberlist_port: args.memberlist_port,
            memberlist_key,
            exclude_interfaces: args.exclude_interfaces,
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let result = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let client = controller::connect().await?;
        let (published, snapshots) =
            tokio::sync::watch::channel(std::sync::Arc::new(lb_k8s::view::Snapshot::default()));
        match lb_k8s::sinks::http::bind(args.listen).await {
            Ok(listener) => {
                tracing::info!(event = "listening", address = %args.listen, "serving /metrics, /status, /healthz and /readyz");
                tokio::spawn(lb_k8s::sinks::http::serve(listener, snapshots));
            }
            Err(e) => tracing::error!(event = "listenFailed", address = %args.listen, error = %e, "no /metrics, /healthz or /readyz"),
        }
        let (progress, _) = tokio::sync::watch::channel(Progress::default());
        let stop = async {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        };
        speaker::run(client, options, progress, published, stop).await?;
        Ok::<_, anyhow::Error>(())
    });
    runtime.shutdown_background();
    result?;
    Ok(ExitCode::SUCCESS)
}
