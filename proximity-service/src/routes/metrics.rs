//! `GET /metrics`: Prometheus text format.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text format.", body = String, content_type = "text/plain")
    )
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.metrics.index_places.set(state.index.len() as f64);
    state
        .metrics
        .index_bytes
        .set(state.index.approx_bytes() as f64);
    let draining = state.draining.load(std::sync::atomic::Ordering::Acquire);
    let mut ready = false;
    if let Ok(health) = state.store.health().await {
        ready = !draining && (health.primary.up || health.replicas.iter().any(|r| r.up));
        state
            .metrics
            .primary_up
            .set(if health.primary.up { 1.0 } else { 0.0 });
        state.metrics.set_replicas(
            health
                .replicas
                .iter()
                .map(|r| (r.name.clone(), r.lag_seconds.unwrap_or(0.0), r.up))
                .collect(),
        );
    }
    state.metrics.ready.set(if ready { 1.0 } else { 0.0 });
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
