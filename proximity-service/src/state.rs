//! [`AppState`]: everything a handler can reach. It sits below the routes and the middleware,
//! which import it; [`crate::startup`] builds it and wires it into the router.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use tokio::sync::Semaphore;

use crate::cache::Cache;
use crate::configuration::Settings;
use crate::consistency::Consistency;
use crate::domain::IndexKind;
use crate::extract::{ApiKeys, BodyLimit};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::store::Repository;
use crate::sync::SharedIndex;

/// Everything a handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub index: Arc<SharedIndex>,
    pub store: Arc<dyn Repository>,
    pub cache: Cache,
    pub metrics: Arc<Metrics>,
    pub limiter: Arc<RateLimiter>,
    pub keys: ApiKeys,
    pub body_limit: BodyLimit,
    pub consistency: Arc<Consistency>,
    pub default_index: IndexKind,
    /// Permits for API requests in flight (`server.max_in_flight`), shared by every route.
    pub in_flight: Arc<Semaphore>,
    /// `server.request_timeout_ms`.
    pub request_timeout: Duration,
    /// Set when shutdown begins: `/readyz` answers 503 from then on.
    pub draining: Arc<AtomicBool>,
}

impl FromRef<AppState> for ApiKeys {
    fn from_ref(s: &AppState) -> ApiKeys {
        s.keys.clone()
    }
}

impl FromRef<AppState> for BodyLimit {
    fn from_ref(s: &AppState) -> BodyLimit {
        s.body_limit
    }
}

impl AppState {
    /// State around an opened store and loaded index.
    pub fn new(
        settings: &Settings,
        store: Arc<dyn Repository>,
        index: Arc<SharedIndex>,
        cache: Cache,
        metrics: Arc<Metrics>,
    ) -> AppState {
        AppState {
            index,
            store,
            cache,
            metrics,
            limiter: Arc::new(RateLimiter::new(settings.rate_limit.clone())),
            keys: ApiKeys(Arc::new(
                settings
                    .api_keys
                    .iter()
                    .map(|k| k.expose().clone())
                    .collect(),
            )),
            body_limit: BodyLimit(settings.max_body_bytes),
            consistency: Arc::new(Consistency::default()),
            default_index: IndexKind::default(),
            in_flight: Arc::new(Semaphore::new(settings.server.max_in_flight)),
            request_timeout: settings.server.request_timeout(),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }
}
