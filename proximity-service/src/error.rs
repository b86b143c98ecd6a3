//! The one error type every handler returns, and its JSON shape.
//!
//! Every error leaves the service as
//! `{"error": {"code": "...", "message": "...", "field": "..."?}}` with the
//! matching status code. Client mistakes are 4xx and name the offending field
//! when there is one; only [`ApiError::Unexpected`] is a 500, and its details
//! are logged, never sent.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A parameter or body field is invalid (400).
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// The request as a whole is malformed (400), e.g. a body that is not JSON.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// No usable `Authorization: Bearer` header (401).
    #[error("{0}")]
    Unauthorized(String),
    /// A well-formed but unknown API key (403).
    #[error("unknown API key")]
    Forbidden,
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405 for a known path with an unsupported method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body exceeds the configured limit (413).
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// A body whose `Content-Type` is not `application/json` (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The client's token bucket is empty (429 + `Retry-After`).
    #[error("rate limit exceeded")]
    RateLimited { retry_after: Duration },
    /// A dependency needed for this request is down (503), e.g. the primary on a write.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected I/O failure (500). Logged with its cause chain.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    /// A 400 naming `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The status code this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } | ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable `code` of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "invalid_parameter",
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Unexpected(_) => "internal",
        }
    }
}

/// Every error answer.
// `Error` in the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    #[schema(inline)]
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Validation { message, .. } => message.clone(),
            ApiError::Unexpected(e) => {
                tracing::error!(error = ?e, "unexpected error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let field = match &self {
            ApiError::Validation { field, .. } => Some(field.clone()),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message,
                field,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        match &self {
            ApiError::RateLimited { retry_after } => {
                let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            ApiError::Unavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::Unauthorized(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"proximity-service\""),
                );
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(msg) => ApiError::Unavailable(msg),
            StoreError::Conflict(msg) => ApiError::BadRequest {
                code: "conflict",
                message: msg,
            },
            StoreError::Unexpected(e) => ApiError::Unexpected(e),
        }
    }
}

/// A fallback handler: unknown paths get our 404 JSON.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".to_owned())
}

/// A fallback for a known path with an unsupported method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
