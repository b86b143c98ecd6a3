//! Extractors whose rejections are *our* JSON errors (axum's defaults answer
//! plain text).
//!
//! - [`QueryPairs`]: the raw query string as name/value pairs; handlers parse
//!   the parameters they know (strictly) and ignore the rest.
//! - [`JsonObject`]: a JSON object body: `Content-Type: application/json`
//!   (else 415), at most the configured size (else 413), well-formed (else 400).
//! - [`IdPath`]: a `{id}` path segment parsed into a [`BusinessId`] (else 400).
//! - [`Bearer`]: an `Authorization: Bearer <key>` header checked against the
//!   configured keys (401 missing/malformed, 403 unknown).

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::domain::BusinessId;
use crate::error::ApiError;

/// The query string as decoded `(name, value)` pairs, in order.
#[derive(Debug, Clone, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// The value of `name`; a 400 if it is given more than once.
    pub fn single(&self, name: &'static str) -> Result<Option<&str>, ApiError> {
        let mut found = None;
        for (k, v) in &self.0 {
            if k == name {
                if found.is_some() {
                    return Err(ApiError::validation(name, "must be given at most once"));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found)
    }

    /// Like [`QueryPairs::single`], but absent is a 400.
    pub fn required(&self, name: &'static str) -> Result<&str, ApiError> {
        self.single(name)?
            .ok_or_else(|| ApiError::validation(name, "is required"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(pairs) =
            axum::extract::Query::<Vec<(String, String)>>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::BadRequest {
                    code: "invalid_query",
                    message: format!("malformed query string: {}", e.body_text()),
                })?;
        Ok(QueryPairs(pairs))
    }
}

/// A JSON object body.
#[derive(Debug, Clone)]
pub struct JsonObject(pub Map<String, Value>);

fn is_json(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// The configured body limit, read from the router state.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl<S> FromRequest<S> for JsonObject
where
    S: Send + Sync,
    BodyLimit: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let BodyLimit(limit) = BodyLimit::from_ref(state);
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            return Err(ApiError::UnsupportedMediaType(
                "the body must be JSON with Content-Type: application/json".to_owned(),
            ));
        }
        if let Some(len) = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > limit as u64 {
                return Err(ApiError::PayloadTooLarge { limit });
            }
        }
        let body = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|e| {
                // `to_bytes` wraps http-body-util's `LengthLimitError`.
                let mut too_large = false;
                let mut cur: Option<&dyn std::error::Error> = Some(&e);
                while let Some(err) = cur {
                    too_large |= err.to_string().contains("length limit exceeded");
                    cur = err.source();
                }
                if too_large {
                    ApiError::PayloadTooLarge { limit }
                } else {
                    ApiError::BadRequest {
                        code: "invalid_body",
                        message: "could not read the request body".to_owned(),
                    }
                }
            })?;
        parse_object(&body).map(JsonObject)
    }
}

/// Parses `body` as a JSON object.
pub fn parse_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest {
        code: "malformed_json",
        message: format!("the body is not valid JSON: {e}"),
    })?;
    match value {
        Value::Object(map) => match first_repeated_key(body) {
            // `Map` kept only the last value: an ambiguous body, refused.
            Some(key) => Err(ApiError::validation(key, "is given more than once")),
            None => Ok(map),
        },
        _ => Err(ApiError::BadRequest {
            code: "malformed_json",
            message: "the body must be a JSON object".to_owned(),
        }),
    }
}

/// The first top-level key that `body` (a well-formed JSON object) repeats.
fn first_repeated_key(body: &[u8]) -> Option<String> {
    use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut seen = std::collections::HashSet::new();
            let mut repeated = None;
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if repeated.is_none() && !seen.insert(key.clone()) {
                    repeated = Some(key);
                }
            }
            Ok(repeated)
        }
    }
    serde_json::Deserializer::from_slice(body)
        .deserialize_map(Keys)
        .ok()
        .flatten()
}

/// A validated `{id}` path parameter.
#[derive(Debug, Clone, Copy)]
pub struct IdPath(pub BusinessId);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::validation("id", "not a valid path segment"))?;
        raw.parse::<BusinessId>()
            .map(IdPath)
            .map_err(|e| ApiError::validation(e.field, e.message))
    }
}

/// The configured API keys, read from the router state.
#[derive(Clone, Default)]
pub struct ApiKeys(pub std::sync::Arc<Vec<String>>);

impl ApiKeys {
    /// Whether `key` is configured (compared without early exit on the content).
    pub fn contains(&self, key: &str) -> bool {
        self.0.iter().fold(false, |found, k| found | ct_eq(k, key))
    }
}

fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token of an authenticated request.
#[derive(Debug, Clone)]
pub struct Bearer(pub String);

/// The token of an `Authorization: Bearer <token>` header, if well-formed.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || ApiError::Unauthorized("malformed Authorization header".to_owned());
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(Some(token))
}

/// The configured API key a request carries, if any: a read is not refused
/// for a missing, malformed or unknown key, it just is not attributed to one.
pub fn known_key<'a>(headers: &'a HeaderMap, keys: &ApiKeys) -> Option<&'a str> {
    bearer_token(headers)
        .ok()
        .flatten()
        .filter(|token| keys.contains(token))
}

impl<S> FromRequestParts<S> for Bearer
where
    S: Send + Sync,
    ApiKeys: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)?.ok_or_else(|| {
            ApiError::Unauthorized("writes need an Authorization: Bearer <key> header".to_owned())
        })?;
        if ApiKeys::from_ref(state).contains(token) {
            Ok(Bearer(token.to_owned()))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// The client's socket address, when the server was started with connect
/// info (absent in in-process tests).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, authorization.parse().unwrap());
        h
    }

    /// Reads attribute a key (for read-your-writes and the rate limit) under
    /// the same rules writes authenticate it with.
    #[test]
    fn a_read_knows_every_key_spelling_a_write_accepts() {
        let keys = ApiKeys(std::sync::Arc::new(vec!["k1".to_owned()]));
        for accepted in ["Bearer k1", "bearer k1", "BEARER  k1 ", " Bearer k1"] {
            let h = headers(accepted);
            assert_eq!(bearer_token(&h).unwrap(), Some("k1"), "{accepted:?}");
            assert_eq!(known_key(&h, &keys), Some("k1"), "{accepted:?}");
        }
        for other in ["Bearer k2", "Basic k1", "Bearer", "k1"] {
            assert_eq!(known_key(&headers(other), &keys), None, "{other:?}");
        }
        assert_eq!(known_key(&HeaderMap::new(), &keys), None);
    }
}
