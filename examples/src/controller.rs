//! `lb controller`: the allocation half in a cluster (Services get their
//! IPs, status, annotation and Events).

use std::process::ExitCode;

use lb_k8s::roles::controller::{self, ControllerOptions, Progress};

/// The Lease the replicas elect their leader on.
const LEASE: &str = "lb-controller";

#[derive(clap::Args)]
pub struct ControllerArgs {
    /// The namespace holding the configuration (metallb.io objects, the legacy ConfigMap `config`).
    #[arg(long, default_value = "metallb-system")]
    namespace: String,
    /// Only Services with this spec.loadBalancerClass; without it, only Services without a class.
    #[arg(long = "lb-class")]
    lb_class: Option<String>,
    /// Address for /metrics, /status, /healthz and /readyz (MetalLB's metrics port).
    #[arg(long, default_value = "0.0.0.0:7472")]
    listen: std::net::SocketAddr,
    /// The Secret the speakers' gossip key is kept in (`secretkey`): given a random key when it has none.
    #[arg(long = "memberlist-secret", default_value = "memberlist")]
    memberlist_secret: String,
    /// Run alone, without the Lease `lb-controller` that lets one of several replicas write.
    #[arg(long = "no-leader-election")]
    no_leader_election: bool,
}

pub fn run(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    crate::standalone::init_logs();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let client = controller::connect().await?;
        let (published, snapshots) = tokio::sync::watch::channel(std::sync::Arc::new(lb_k8s::view::Snapshot::default()));
        match lb_k8s::sinks::http::bind(args.listen).await {
            Ok(listener) => {
                tracing::info!(event = "listening", address = %args.listen, "serving /metrics, /status, /healthz and /readyz");
                tokio::spawn(lb_k8s::sinks::http::serve(listener, snapshots));
            }
            Err(e) => tracing::error!(event = "listenFailed", address = %args.listen, error = %e, "no /metrics, /healthz or /readyz"),
        }
        let (progress, _) = tokio::sync::watch::channel(Progress::default());
        let namespace = args.namespace.clone();
        let options = ControllerOptions {
            namespace: args.namespace,
            load_balancer_class: args.lb_class,
            memberlist_secret: Some(args.memberlist_secret),
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
