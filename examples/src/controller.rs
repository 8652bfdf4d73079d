//! `lb controller`: the allocation half in a cluster (Services get their
//! IPs, status, annotation and Events).

use std::process::ExitCode;

use lb_k8s::roles::controller::{self, ControllerOptions, Progress};

/// The Lease the replicas elect their leader on.
const LEASE: &str = "lb-controller";

#[derive(clap::Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    cluster: crate::cluster::ClusterArgs,
    /// Run alone, without the Lease `lb-controller` that lets one of several replicas write.
    #[arg(long = "no-leader-election")]
    no_leader_election: bool,
}

pub fn run(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    crate::standalone::init_logs();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let client = controller::connect().await?;
        let published = crate::cluster::serve_http(args.cluster.listen).await;
        let (progress, _) = tokio::sync::watch::channel(Progress::default());
        let namespace = args.cluster.namespace.clone();
        let options = ControllerOptions {
            namespace: args.cluster.namespace,
            load_balancer_class: args.cluster.lb_class,
            memberlist_secret: Some(args.cluster.memberlist_secret),
        };
        let (leader_tx, leader) = tokio::sync::watch::channel(args.no_leader_election);
        // Alone, the sender stays here so the leadership never ends.
        let mut alone = None;
        if args.no_leader_election {
            alone = Some(leader_tx);
        } else {
            // The Pod's name (downward API) identifies the replica; else host and process.
            let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
                let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
                format!("{}-{}", host.trim(), std::process::id())
            });
            let lease_client = client.clone();
            tokio::spawn(async move {
                lb_k8s::drivers::lease::run(lease_client, &namespace, LEASE, &identity, Default::default(), leader_tx)
                    .await;
            });
        }
        let _alone = alone;
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            result = controller::run_led(client, options, progress, leader, published) => result?,
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
