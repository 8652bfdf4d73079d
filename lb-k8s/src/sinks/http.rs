//! The HTTP endpoints of a running node: `/metrics` (Prometheus text) and
//! `/status` (JSON), both rendered from the latest published [`Snapshot`].
//!
//! Rendering runs on the blocking pool from an `Arc` of the snapshot: a
//! large cluster's `/status` costs its reader, never the sessions'
//! keepalives or a reload, which take no lock a reader holds.
//!
//! Clients cannot exhaust the process: at most [`MAX_CONNECTIONS`] are
//! served at once (more wait in the kernel's backlog, unaccepted, holding
//! no descriptor of ours), each serves one request, its headers must
//! arrive within [`HEADER_TIMEOUT`] and the whole exchange end within
//! [`CONNECTION_TIMEOUT`]; idle and slow clients are closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::warn;

use super::{metrics, status};
use crate::view::Snapshot;

/// The latest snapshot, as the node publishes it.
pub type Snapshots = watch::Receiver<Arc<Snapshot>>;

/// Renderings running at once: one core's worth at most, whatever the
/// number of clients, so the sessions' workers always have CPU left.
static RENDERING: Semaphore = Semaphore::const_new(1);

async fn rendered(snapshots: Snapshots, render: fn(Arc<Snapshot>) -> String, content_type: &'static str) -> Response {
    let Ok(_turn) = RENDERING.acquire().await else { return StatusCode::SERVICE_UNAVAILABLE.into_response() };
    let snapshot = snapshots.borrow().clone();
    match tokio::task::spawn_blocking(move || render(snapshot)).await {
        Ok(body) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn status_text(snapshot: Arc<Snapshot>) -> String {
    status::render_text(&snapshot)
}

/// The routes, over the published snapshots. `/healthz` answers while the
/// process serves; `/readyz` once a configuration is loaded (for the
/// controller: its sources all listed once).
pub fn router(snapshots: Snapshots) -> Router {
    let for_metrics = snapshots.clone();
    let for_ready = snapshots.clone();
    Router::new()
        .route("/metrics", get(move || rendered(for_metrics.clone(), metrics::render, metrics::CONTENT_TYPE)))
        .route("/status", get(move || rendered(snapshots.clone(), status_text, "application/json")))
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = for_ready.borrow().config.loaded;
                async move {
                    if ready { (StatusCode::OK, "ready\n") } else { (StatusCode::SERVICE_UNAVAILABLE, "not ready\n") }
                }
            }),
        )
}

/// Binds `addr`; serve with [`serve`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Connections served at once: Prometheus and an operator's curl need a
/// handful; more leaves room for a burst while bounding the descriptors a
/// flood of idle clients can hold (far below the usual 1,024 to 20,000).
pub const MAX_CONNECTIONS: usize = 512;

/// A client must have sent its request's headers this long after connecting.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(3);

/// A connection is closed this long after it was accepted, answered or not
/// (a client that does not read its `/status`).
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// How much the HTTP server gives its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
            connection_timeout: CONNECTION_TIMEOUT,
        }
    }
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, snapshots: Snapshots) -> std::io::Result<()> {
    serve_with(listener, snapshots, Limits::default()).await
}

/// [`serve`] with other limits.
pub async fn serve_with(listener: TcpListener, snapshots: Snapshots, limits: Limits) -> std::io::Result<()> {
    let service = TowerToHyperService::new(router(snapshots));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return Ok(()) };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, say: wait for some to be freed rather
                // than spin; the listener stays.
                warn!(error = %e, "accepting an HTTP connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = service.clone();
        tokio::spawn(async move {
            let mut http = http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(false);
            let connection = http.serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(limits.connection_timeout, connection).await;
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// Waits for the server to close `stream` (a read of 0 bytes).
    async fn closed(stream: &mut TcpStream) {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the server closes an idle connection")
            .unwrap_or(0);
        assert_eq!(n, 0, "no answer to a request never sent");
    }

    #[tokio::test]
    async fn idle_clients_are_closed_and_a_full_server_still_answers_after() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_publish, snapshots) = watch::channel(Arc::new(Snapshot::default()));
        let limits = Limits {
            max_connections: 2,
            header_timeout: Duration::from_millis(200),
            connection_timeout: Duration::from_secs(60),
        };
        let server = tokio::spawn(serve_with(listener, snapshots, limits));

        // Three clients that say nothing, one of them half a request: the
        // first two take the server's slots, the third waits unaccepted.
        let mut idle = Vec::new();
        for _ in 0..3 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        idle[1].write_all(b"GET /status HTTP/1.1\r\nHost: lb\r\n").await.unwrap();
        // Each is closed in turn, the third once a slot is free.
        for stream in &mut idle {
            closed(stream).await;
        }

        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"GET /status HTTP/1.1\r\nHost: lb\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("\"configLoaded\""), "{answer}");
        server.abort();
    }
}
