//! Wires the application together: store, index, cache, [`AppState`], router, listener. Tests
//! and production share this one start-up path ([`build`]); in-process tests use [`router`]
//! with `tower::ServiceExt::oneshot`. The state lives in [`crate::state`] and the middleware in
//! [`crate::middleware`], below the routes; this module only assembles them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::timeout::TimeoutLayer;
use tower::ServiceBuilder;

use crate::cache::Cache;
use crate::configuration::{ServerSettings, Settings};
use crate::error;
use crate::metrics::Metrics;
use crate::middleware::{overloaded, panic_response, rate_limit, track_metrics};
use crate::routes;
use crate::server;
use crate::store;
use crate::sync;

pub use crate::state::AppState;

/// The full router over `state`. The API routes answer at most `server.max_in_flight`
/// requests at once, each within `server.request_timeout_ms`, and shed the rest with a fast 503
/// (the health, metrics and document routes are not limited: probes must answer under load).
pub fn router(state: AppState) -> Router {
    let bounded = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(overloaded))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::with_semaphore(
            state.in_flight.clone(),
        ))
        .layer(TimeoutLayer::new(state.request_timeout));
    let api = Router::new()
        .route("/v1/search/nearby", get(routes::search::nearby))
        .route(
            "/v1/businesses",
            axum::routing::post(routes::businesses::create),
        )
        .route(
            "/v1/businesses/{id}",
            get(routes::businesses::get)
                .put(routes::businesses::replace)
                .delete(routes::businesses::delete),
        )
        .route_layer(bounded)
        .route_layer(middleware::from_fn_with_state(state.clone(), rate_limit));
    Router::new()
        .merge(api)
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::metrics::metrics))
        .route("/openapi.json", get(routes::openapi::openapi))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        // Our own extractor enforces the limit with our error; this keeps any
        // other body reader bounded too.
        .layer(DefaultBodyLimit::max(state.body_limit.0))
        .layer(middleware::from_fn_with_state(state.clone(), track_metrics))
        // A bug that panics answers our 500 JSON instead of dropping the connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .with_state(state)
}

/// A built application, listening but not yet serving.
pub struct Application {
    port: u16,
    listener: TcpListener,
    state: AppState,
    server: ServerSettings,
    follower: tokio::task::JoinHandle<()>,
}

/// Opens the store (migrating it), loads the index, starts the change-feed
/// follower and the cache, and binds the listener (port 0 picks a free port).
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let metrics = Metrics::new();
    let store = store::open(&settings.database).await?;
    tracing::info!(
        backend = if settings.database.url.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        replicas = settings.database.replica_urls.len(),
        cache = settings.redis.url.is_some(),
        api_keys = settings.api_keys.len(),
        "store opened"
    );
    let index = Arc::new(sync::load(store.as_ref()).await?);
    let cache = Cache::connect(&settings.redis, metrics.clone())?;
    cache.wait_ready(Duration::from_secs(2)).await;
    let follower = sync::spawn_follower(
        store.clone(),
        index.clone(),
        sync::FollowerSettings {
            interval: settings.sync_interval(),
            retention: Duration::from_secs(settings.changes_retention_secs),
        },
        cache.clone(),
        metrics.clone(),
    );
    let state = AppState::new(&settings, store, index, cache, metrics);
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let port = listener.local_addr()?.port();
    Ok(Application {
        port,
        listener,
        state,
        server: settings.server.clone(),
        follower,
    })
}

impl Application {
    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM (drains, see [`Stop::Drain`]) or ctrl-c (stops at once).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until_stop(shutdown_signal()).await
    }

    /// Serves until `signal` completes, then stops at once ([`Stop::Now`]).
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.run_until_stop(async move {
            signal.await;
            Stop::Now
        })
        .await
    }

    /// Serves until `signal` says how to stop. From then on `/readyz` answers 503; with
    /// [`Stop::Drain`] serving goes on for `server.shutdown_drain_ms`. Then accepting stops and
    /// requests in progress get `server.shutdown_deadline_ms`.
    pub async fn run_until_stop(
        self,
        signal: impl std::future::Future<Output = Stop> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            port,
            listener,
            state,
            server,
            follower,
        } = self;
        let draining = state.draining.clone();
        let drain = server.shutdown_drain();
        let stop = async move {
            let how = signal.await;
            draining.store(true, Ordering::Release);
            if how == Stop::Drain && !drain.is_zero() {
                tracing::info!(?drain, "draining: /readyz answers 503, still serving");
                tokio::time::sleep(drain).await;
            }
        };
        tracing::info!(port, "listening");
        server::serve(listener, router(state), &server, stop).await;
        follower.abort();
        Ok(())
    }
}

/// How serving ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Fail readiness and keep serving for the drain period first (SIGTERM: the orchestrator
    /// is taking the instance out of its load balancer).
    Drain,
    /// Stop accepting at once (ctrl-c at a terminal).
    Now,
}

/// Resolves on SIGTERM ([`Stop::Drain`]) or ctrl-c ([`Stop::Now`]).
pub async fn shutdown_signal() -> Stop {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    let how = tokio::select! {
        _ = ctrl_c => Stop::Now,
        _ = term => Stop::Drain,
    };
    tracing::info!(?how, "shutting down");
    how
}
