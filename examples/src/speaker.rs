//! `lb speaker`: one node's announcements in a cluster (BGP and layer 2),
//! run as a DaemonSet on the host network.

use std::process::ExitCode;

use lb_k8s::roles::controller::{self, Progress};
use lb_k8s::roles::speaker::{self, SpeakerOptions};

#[derive(clap::Args)]
pub struct SpeakerArgs {
    /// This node's name (the downward API's spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    node: String,
    #[command(flatten)]
    cluster: crate::cluster::ClusterArgs,
    /// This speaker's Pod, the owner of its ServiceL2Status and ServiceBGPStatus objects.
    #[arg(long, env = "POD_NAME")]
    pod: Option<String>,
    /// Label selector of the speaker Pods, whose IPs seed the layer 2 gossip.
    #[arg(long = "speaker-selector", default_value = "app.kubernetes.io/name=lb,app.kubernetes.io/component=speaker")]
    speaker_selector: String,
    #[command(flatten)]
    layer2: crate::standalone::Layer2Args,
}

pub fn run(args: SpeakerArgs) -> anyhow::Result<ExitCode> {
    crate::standalone::init_logs();
    anyhow::ensure!(!args.node.is_empty(), "--node (or NODE_NAME) is empty");
    let layer2 = args.layer2.settings()?;
    let options = SpeakerOptions {
        node: args.node,
        namespace: args.cluster.namespace,
        load_balancer_class: args.cluster.lb_class,
        pod: args.pod,
        speaker_selector: args.speaker_selector,
        memberlist_secret: args.cluster.memberlist_secret,
        layer2,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let result = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let client = controller::connect().await?;
        let published = crate::cluster::serve_http(args.cluster.listen).await;
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
