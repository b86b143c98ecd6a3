//! Middleware wrapped around the routes: request metrics, the rate limit, the bounds on API
//! requests in flight and on their duration, and the answer to a handler that panicked.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use tower::load_shed::error::Overloaded;
use tower::timeout::error::Elapsed;
use tower::BoxError;

use crate::error::ApiError;
use crate::extract::known_key;
use crate::ratelimit::ClientKey;
use crate::state::AppState;

pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Unexpected(anyhow::anyhow!("a request handler panicked")).into_response()
}

/// Records latency and status per matched route.
pub async fn track_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    // `MatchedPath` is an `Arc<str>` inside: cloning it does not allocate.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let response = next.run(req).await;
    state.metrics.observe_request(
        method.as_str(),
        route.as_ref().map_or("unmatched", |r| r.as_str()),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Token bucket per API key (when the request carries a configured one) or
/// per client address. See [`crate::ratelimit`].
pub async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    if state.limiter.exempt(addr) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let key = match known_key(&parts.headers, &state.keys) {
        Some(token) => ClientKey::ApiKey(token.to_owned()),
        None => addr.map(ClientKey::Addr).unwrap_or(ClientKey::Unknown),
    };
    if let Err(retry_after) = state.limiter.check(key) {
        return ApiError::RateLimited { retry_after }.into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// The answer when the bounds on API requests (see `startup::router`) reject one: our 503
/// JSON with `Retry-After`, at once.
pub async fn overloaded(e: BoxError) -> ApiError {
    if e.is::<Overloaded>() {
        ApiError::Unavailable("too many requests in flight; retry shortly".to_owned())
    } else if e.is::<Elapsed>() {
        ApiError::Unavailable("the request was not answered in time".to_owned())
    } else {
        ApiError::Unexpected(anyhow::anyhow!(e).context("request middleware"))
    }
}
