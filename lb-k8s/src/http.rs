//! The HTTP endpoints of a running speaker: `/metrics` (Prometheus text)
//! and `/status` (JSON).

use std::net::SocketAddr;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::metrics;
use crate::standalone::{SharedView, lock, status_json};

/// The routes, over the shared view.
pub fn router(view: SharedView) -> Router {
    let metrics_view = view.clone();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let text = metrics::render(&lock(&metrics_view));
                async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text) }
            }),
        )
        .route(
            "/status",
            get(move || {
                let body = serde_json::to_string_pretty(&status_json(&lock(&view))).unwrap_or_default();
                async move { ([(header::CONTENT_TYPE, "application/json")], body).into_response() }
            }),
        )
}

/// Binds `addr`; serve with [`serve`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, view: SharedView) -> std::io::Result<()> {
    axum::serve(listener, router(view)).await
}
