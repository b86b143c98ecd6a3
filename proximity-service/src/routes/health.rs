//! `GET /healthz` (the process is alive) and `GET /readyz` (can it serve?).
//!
//! `/readyz` answers 200 with `"status": "ready"` when every dependency is up,
//! 200 with `"degraded"` when the service still serves but something is down
//! (a replica, the cache, or the primary: reads go on, writes get 503), and
//! 503 with `"unavailable"` when no database answers at all, and 503 with `"draining"` once
//! shutdown has begun (so the load balancer stops sending before the process stops).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::cache::CacheStatus;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::StoreHealth;

#[derive(Debug, Serialize, ToSchema)]
pub struct Alive {
    pub status: Liveness,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    Ok,
}

/// `GET /healthz`.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    responses((status = 200, description = "Alive.", body = Alive))
)]
pub async fn healthz() -> Json<Alive> {
    Json(Alive {
        status: Liveness::Ok,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub status: ReadinessStatus,
    #[schema(value_type = Object)]
    pub database: StoreHealth,
    pub cache: CacheStatus,
    #[schema(value_type = Object)]
    pub index: IndexStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadinessStatus {
    Ready,
    Degraded,
    Unavailable,
    Draining,
}

#[derive(Debug, Serialize)]
pub struct IndexStatus {
    pub places: usize,
    pub last_seq: i64,
}

/// `GET /readyz`.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready or degraded.", body = Readiness),
        (status = 503, description = "No database answers, or the instance is shutting down.", body = Readiness),
    )
)]
pub async fn readyz(
    State(state): State<AppState>,
) -> Result<(StatusCode, Json<Readiness>), ApiError> {
    let database = state.store.health().await?;
    let cache = state.cache.status();
    let any_db = database.primary.up || database.replicas.iter().any(|r| r.up);
    let all_up =
        database.primary.up && database.replicas.iter().all(|r| r.up) && cache != CacheStatus::Down;
    let (code, status) = if state.draining.load(Ordering::Acquire) {
        (StatusCode::SERVICE_UNAVAILABLE, ReadinessStatus::Draining)
    } else if !any_db {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            ReadinessStatus::Unavailable,
        )
    } else if all_up {
        (StatusCode::OK, ReadinessStatus::Ready)
    } else {
        (StatusCode::OK, ReadinessStatus::Degraded)
    };
    Ok((
        code,
        Json(Readiness {
            status,
            database,
            cache,
            index: IndexStatus {
                places: state.index.len(),
                last_seq: state.index.last_seq(),
            },
        }),
    ))
}
