//! The admin HTTP server both binaries run: `/metrics`, `/healthz`, `/readyz`.
//!
//! `/healthz` answers while the process runs. `/readyz` answers 200 when the process should
//! get traffic and 503 with the reason otherwise. `/metrics` samples the gauges that are read
//! off the process's state, then renders every series. A binary adds its own routes (the
//! proxy's topology endpoints) to the same router.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::Registry;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What the admin server needs from a process.
pub trait Observed: Send + Sync + 'static {
    fn registry(&self) -> &Registry;
    /// Sets the gauges that are sampled rather than kept up to date (keys, disk, clients).
    fn sample(&self);
    /// `Ok` when the process should get traffic, else why not.
    fn ready(&self) -> Result<(), String>;
}

/// The shared endpoints, for `state`.
pub fn router<S: Observed>(state: Arc<S>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready::<S>))
        .route("/metrics", get(metrics::<S>))
        .with_state(state)
}

async fn ready<S: Observed>(State(state): State<Arc<S>>) -> (StatusCode, String) {
    match state.ready() {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

async fn metrics<S: Observed>(State(state): State<Arc<S>>) -> impl IntoResponse {
    state.sample();
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        crate::metrics::render(state.registry()),
    )
}

/// Serves `app` on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, app: Router, mut shutdown: watch::Receiver<bool>) {
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(error = %e, "admin server failed");
    }
}
