//! What `lb controller` and `lb speaker` are both told.

/// The flags both cluster components take.
#[derive(clap::Args)]
pub struct ClusterArgs {
    /// The namespace holding the configuration (metallb.io objects, the legacy ConfigMap `config`)
    /// and the memberlist Secret.
    #[arg(long, default_value = "metallb-system")]
    pub namespace: String,
    /// Only Services with this spec.loadBalancerClass; without it, only Services without a class.
    #[arg(long = "lb-class")]
    pub lb_class: Option<String>,
    /// Address for /metrics, /status, /healthz and /readyz (MetalLB's metrics port).
    #[arg(long, default_value = "0.0.0.0:7472")]
    pub listen: std::net::SocketAddr,
    /// The Secret holding the gossip key (key `secretkey`), as MetalLB's.
    #[arg(long = "memberlist-secret", default_value = "memberlist")]
    pub memberlist_secret: String,
}

/// Serves `/metrics`, `/status`, `/healthz` and `/readyz` on `listen`
/// (a failure to bind is logged: the component runs without them) from
/// the snapshots sent on the returned channel.
pub async fn serve_http(
    listen: std::net::SocketAddr,
) -> tokio::sync::watch::Sender<std::sync::Arc<lb_k8s::view::Snapshot>> {
    let (published, snapshots) = tokio::sync::watch::channel(std::sync::Arc::new(lb_k8s::view::Snapshot::default()));
    match lb_k8s::sinks::http::bind(listen).await {
        Ok(listener) => {
            tracing::info!(event = "listening", address = %listen, "serving /metrics, /status, /healthz and /readyz");
            tokio::spawn(lb_k8s::sinks::http::serve(listener, snapshots));
        }
        Err(e) => {
            tracing::error!(event = "listenFailed", address = %listen, error = %e, "no /metrics, /healthz or /readyz")
        }
    }
    published
}
