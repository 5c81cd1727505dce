//! The proxy's admin HTTP server: the shared `/metrics`, `/healthz` and `/readyz`
//! ([`fjord_common::admin`]) plus the topology.
//!
//! `GET /topology` shows the routing in force with each shard's reachability;
//! `POST /topology/reload` re-reads the topology (the cluster file, or etcd) and answers what happened, or why the file
//! was refused.

use crate::proxy::Proxy;
use crate::topology::{Reloaded, Source, TopologyHandle};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Serialize)]
struct TopologyView {
    version: u64,
    nodes: Vec<NodeView>,
    shards: Vec<ShardView>,
    /// Slots in motion: the move `fjord-admin reshard` recorded, if one is under way.
    moving: Option<MoveView>,
    /// Where the topology comes from.
    store: StoreView,
}

#[derive(Serialize)]
struct StoreView {
    /// The cluster file's path or the etcd address.
    source: String,
    /// False while etcd cannot be read (the topology shown stays in force meanwhile).
    up: bool,
    /// Why it cannot be read.
    error: Option<String>,
}

#[derive(Serialize)]
struct MoveView {
    from: String,
    to: String,
    /// Every slot of the move; those handed over already show in `to`'s slots.
    slots: String,
    /// Those still to go.
    pending: String,
    epoch: u64,
}

#[derive(Serialize)]
struct NodeView {
    id: String,
    announce: String,
    listen: String,
    slots: String,
}

#[derive(Serialize)]
struct ShardView {
    id: String,
    addr: String,
    slots: String,
    up: bool,
}

#[derive(Serialize)]
struct ReloadView {
    result: &'static str,
    version: u64,
    problems: Vec<String>,
}

/// Serves the admin endpoints on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, proxy: Arc<Proxy>, shutdown: watch::Receiver<bool>) {
    let topology = Router::new()
        .route("/topology", get(show))
        .route("/topology/reload", post(reload))
        .with_state(Arc::clone(&proxy.topology));
    let app = fjord_common::admin::router(proxy).merge(topology);
    fjord_common::admin::serve(listener, app, shutdown).await
}

async fn show(State(topology): State<Arc<TopologyHandle>>) -> Json<TopologyView> {
    let routing = topology.load();
    let t = &routing.topology;
    Json(TopologyView {
        version: t.version,
        nodes: t
            .nodes
            .iter()
            .map(|n| NodeView {
                id: n.endpoint.id.clone(),
                announce: format!("{}:{}", n.endpoint.host, n.endpoint.port),
                listen: n.endpoint.listen.to_string(),
                slots: n.slots.to_string(),
            })
            .collect(),
        shards: t
            .shards
            .iter()
            .zip(&routing.backends)
            .map(|(s, b)| ShardView {
                id: s.id.clone(),
                addr: s.addr.clone(),
                slots: s.slots.to_string(),
                up: b.is_up(),
            })
            .collect(),
        store: match topology.source() {
            Source::File(path) => StoreView {
                source: path.display().to_string(),
                up: true,
                error: None,
            },
            Source::Store(store) => {
                let error = store.down();
                StoreView {
                    source: store.url().to_string(),
                    up: error.is_none(),
                    error,
                }
            }
        },
        moving: t.moving.as_ref().map(|m| MoveView {
            from: t.shards[m.from].id.clone(),
            to: t.shards[m.to].id.clone(),
            slots: m.slots.to_string(),
            pending: m.slots.intersect(&t.shards[m.from].slots).to_string(),
            epoch: m.epoch,
        }),
    })
}

async fn reload(State(topology): State<Arc<TopologyHandle>>) -> (StatusCode, Json<ReloadView>) {
    match topology.reload().await {
        Ok(Reloaded::Unchanged { version }) => (
            StatusCode::OK,
            Json(ReloadView {
                result: "unchanged",
                version,
                problems: vec![],
            }),
        ),
        Ok(Reloaded::Changed { to, .. }) => (
            StatusCode::OK,
            Json(ReloadView {
                result: "changed",
                version: to,
                problems: vec![],
            }),
        ),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(ReloadView {
                result: "refused",
                version: topology.load().topology.version,
                problems: e.problems.iter().map(|p| p.to_string()).collect(),
            }),
        ),
    }
}
