//! The HTTP endpoints of a running node: `/metrics` (Prometheus text) and
//! `/status` (JSON), both rendered from the latest published [`Snapshot`].
//!
//! Rendering runs on the blocking pool from an `Arc` of the snapshot: a
//! large cluster's `/status` costs its reader, never the sessions'
//! keepalives or a reload, which take no lock a reader holds.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{metrics, status};
use crate::view::Snapshot;

/// The latest snapshot, as the node publishes it.
pub type Snapshots = watch::Receiver<Arc<Snapshot>>;

async fn rendered(snapshots: Snapshots, render: fn(Arc<Snapshot>) -> String, content_type: &'static str) -> Response {
    let snapshot = snapshots.borrow().clone();
    match tokio::task::spawn_blocking(move || render(snapshot)).await {
        Ok(body) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn status_text(snapshot: Arc<Snapshot>) -> String {
    serde_json::to_string_pretty(&status::render(&snapshot)).unwrap_or_default()
}

/// The routes, over the published snapshots.
pub fn router(snapshots: Snapshots) -> Router {
    let for_metrics = snapshots.clone();
    Router::new()
        .route("/metrics", get(move || rendered(for_metrics.clone(), metrics::render, metrics::CONTENT_TYPE)))
        .route("/status", get(move || rendered(snapshots.clone(), status_text, "application/json")))
}

/// Binds `addr`; serve with [`serve`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, snapshots: Snapshots) -> std::io::Result<()> {
    axum::serve(listener, router(snapshots)).await
}
