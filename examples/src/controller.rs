//! `lb controller`: the allocation half in a cluster (Services get their
//! IPs, status, annotation and Events).

use std::process::ExitCode;

use lb_k8s::roles::controller::{self, ControllerOptions, Progress};

#[derive(clap::Args)]
pub struct ControllerArgs {
    /// The namespace holding the configuration (metallb.io objects, the legacy ConfigMap `config`).
    #[arg(long, default_value = "metallb-system")]
    namespace: String,
    /// Only Services with this spec.loadBalancerClass; without it, only Services without a class.
    #[arg(long = "lb-class")]
    lb_class: Option<String>,
}

pub fn run(args: ControllerArgs) -> anyhow::Result<ExitCode> {
    crate::standalone::init_logs();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let client = controller::connect().await?;
        let (progress, _) = tokio::sync::watch::channel(Progress::default());
        let options = ControllerOptions { namespace: args.namespace, load_balancer_class: args.lb_class };
        tokio::select! {
            result = controller::run(client, options, progress) => result?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
