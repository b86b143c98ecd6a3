//! `POST /v1/businesses`, `GET|PUT|DELETE /v1/businesses/{id}`.
//!
//! Writes need a bearer key, go to the primary, and then (1) update this
//! instance's index at once, (2) overwrite the cache entry, (3) return the WAL
//! position in `X-Consistency-Token` (Postgres) so the writer's next read sees
//! its write. Other instances pick the write up from the change feed.
//! The write and steps (1)–(2) run in a task of their own ([`detached`]): axum
//! drops a handler whose client hangs up, and a write that commits must still
//! update the index and the cache. (Should the process die in between, the
//! change feed corrects the cache: see `sync`.)
//! Reads go cache → replica (or primary, for read-your-writes) → fill cache.

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::schema::{self, RateLimited};
use crate::consistency::{Client, TOKEN_HEADER};
use crate::domain::{
    Address, Business, BusinessId, BusinessName, Category, Hours, NewBusiness, Phone, RawBusiness,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{known_key, Bearer, ClientAddr, IdPath, JsonObject};
use crate::state::AppState;
use crate::store::{BusinessRecord, Lsn, NewRecord, PlaceRow, Written};

/// A business.
// `Business` in the OpenAPI document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Business)]
pub struct BusinessBody {
    #[schema(minimum = 1)]
    pub id: i64,
    pub name: String,
    pub category: String,
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    pub lng: f64,
    #[schema(required = true)]
    pub address: Option<String>,
    #[schema(required = true)]
    pub phone: Option<String>,
    #[schema(required = true)]
    pub hours: Option<String>,
}

/// A business to create, or the new content of one to replace.
// The request body as the OpenAPI document states it. `parse_business` reads the JSON object
// field by field instead (so every error names its field); a test in `openapi.rs` checks that
// this struct has exactly the fields of `FIELDS`, required exactly when the parser needs them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessInput {
    #[schema(schema_with = schema::business_name)]
    pub name: String,
    #[schema(schema_with = schema::category)]
    pub category: String,
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    pub lng: f64,
    #[schema(schema_with = schema::address)]
    pub address: Option<String>,
    #[schema(schema_with = schema::phone)]
    pub phone: Option<String>,
    #[schema(schema_with = schema::hours)]
    pub hours: Option<String>,
}

/// The `{id}` of `/v1/businesses/{id}`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct IdParam {
    /// Business id.
    #[param(minimum = 1)]
    pub id: i64,
}

/// The headers `GET /v1/businesses/{id}` reads.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ReadHeaders {
    #[param(rename = "X-Consistency-Token", schema_with = schema::consistency_token)]
    pub consistency_token: Option<String>,
}

impl From<&Business> for BusinessBody {
    fn from(b: &Business) -> Self {
        BusinessBody {
            id: b.id.get(),
            name: b.name.as_str().to_owned(),
            category: b.category.as_str().to_owned(),
            lat: b.coordinates.lat_deg(),
            lng: b.coordinates.lng_deg(),
            address: b.address.as_ref().map(|a| a.as_str().to_owned()),
            phone: b.phone.as_ref().map(|p| p.as_str().to_owned()),
            hours: b.hours.as_ref().map(|h| h.as_str().to_owned()),
        }
    }
}

pub const FIELDS: [&str; 7] = [
    "name", "category", "lat", "lng", "address", "phone", "hours",
];

fn string_field(
    body: &Map<String, Value>,
    name: &'static str,
    max_chars: usize,
    required: bool,
) -> Result<Option<String>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) if required => Err(ApiError::validation(name, "is required")),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n > max_chars {
                return Err(ApiError::validation(
                    name,
                    format!("must be at most {max_chars} characters, got {n}"),
                ));
            }
            Ok(Some(s.clone()))
        }
        Some(_) => Err(ApiError::validation(name, "must be a string")),
    }
}

fn number_field(body: &Map<String, Value>, name: &'static str) -> Result<f64, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Err(ApiError::validation(name, "is required")),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|v| v.is_finite())
            .ok_or_else(|| ApiError::validation(name, "must be a finite number")),
        Some(_) => Err(ApiError::validation(name, "must be a number")),
    }
}

/// Parses a create/replace body into a validated [`NewBusiness`]; every
/// error names its field. Unknown fields are rejected (they are usually typos).
pub fn parse_business(body: &Map<String, Value>) -> Result<NewBusiness, ApiError> {
    if let Some(unknown) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::Validation {
            field: unknown.clone(),
            message: format!("unknown field; expected one of {}", FIELDS.join(", ")),
        });
    }
    let raw = RawBusiness {
        name: string_field(body, "name", BusinessName::MAX_CHARS, true)?.unwrap_or_default(),
        category: string_field(body, "category", Category::MAX_CHARS, true)?.unwrap_or_default(),
        lat: number_field(body, "lat")?,
        lng: number_field(body, "lng")?,
        address: string_field(body, "address", Address::MAX_CHARS, false)?,
        phone: string_field(body, "phone", Phone::MAX_CHARS, false)?,
        hours: string_field(body, "hours", Hours::MAX_CHARS, false)?,
    };
    NewBusiness::parse(&raw).map_err(|e| ApiError::validation(e.field, e.message))
}

/// The clients a request belongs to (for read-your-writes).
fn clients(key: Option<&str>, addr: Option<SocketAddr>) -> Vec<Client> {
    let mut out = Vec::with_capacity(2);
    if let Some(k) = key {
        out.push(Client::Key(k.to_owned()));
    }
    if let Some(a) = addr {
        out.push(Client::Addr(a.ip()));
    }
    out
}

fn record_write(
    state: &AppState,
    key: &str,
    addr: Option<SocketAddr>,
    lsn: Option<Lsn>,
    response: &mut Response,
) {
    if let Some(lsn) = lsn {
        state.consistency.record(&clients(Some(key), addr), lsn);
        if let Ok(v) = HeaderValue::from_str(&lsn.to_string()) {
            response.headers_mut().insert(TOKEN_HEADER, v);
        }
    }
}

fn into_business(record: BusinessRecord) -> Result<Business, ApiError> {
    Ok(record.into_domain()?)
}

/// Applies a committed write to this instance's index and the shared cache.
async fn after_write(state: &AppState, seq: i64, id: BusinessId, business: Option<&Business>) {
    let row = business.map(|b| PlaceRow {
        id: b.id.get(),
        name: b.name.as_str().to_owned(),
        category: b.category.as_str().to_owned(),
        lat: b.coordinates.lat_deg(),
        lng: b.coordinates.lng_deg(),
    });
    state.index.apply(seq, id.get(), row);
    let json = business
        .map(|b| serde_json::to_string(&BusinessBody::from(b)).expect("business serialises"));
    state.cache.store(id.get(), seq, json.as_deref()).await;
}

/// Runs a write and its post-commit steps to completion even if the request is dropped: the
/// work is a spawned task the handler awaits, and dropping the handler (a client that hung up)
/// drops only the wait, not the task.
async fn detached<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, ApiError>> + Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(ApiError::Unavailable("the service is shutting down".into())),
    }
}

fn json_response(status: StatusCode, json: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json,
    )
        .into_response()
}

/// `POST /v1/businesses` → 201 + `Location`.
#[utoipa::path(
    post,
    path = "/v1/businesses",
    operation_id = "createBusiness",
    security(("bearerAuth" = [])),
    request_body(content = BusinessInput, content_type = "application/json"),
    responses(
        (status = 201, description = "Created.", body = BusinessBody, headers(
            ("Location" = String),
            ("X-Consistency-Token" = String, description = "WAL position of this write; send it back on reads to see the write even from a lagging replica (Postgres only).")
        )),
        (status = 400, description = "An invalid field (named in `field`) or malformed JSON.", body = ErrorBody),
        (status = 401, description = "Missing or malformed Authorization header.", body = ErrorBody),
        (status = 403, description = "Unknown API key.", body = ErrorBody),
        (status = 413, description = "Body too large.", body = ErrorBody),
        (status = 415, description = "Body is not application/json.", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, description = "The primary database cannot take writes.", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Bearer(key): Bearer,
    ClientAddr(addr): ClientAddr,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let new = parse_business(&body)?;
    let (business, lsn) = detached({
        let state = state.clone();
        async move {
            let Written { value, lsn, seq } = state
                .store
                .create(NewRecord::from_domain(&new, None))
                .await?;
            let business = into_business(value)?;
            after_write(&state, seq, business.id, Some(&business)).await;
            Ok((business, lsn))
        }
    })
    .await?;
    let json = serde_json::to_string(&BusinessBody::from(&business)).expect("serialises");
    let mut response = json_response(StatusCode::CREATED, json);
    let location = format!("/v1/businesses/{}", business.id);
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("ascii location"),
    );
    record_write(&state, &key, addr, lsn, &mut response);
    Ok(response)
}

/// `PUT /v1/businesses/{id}` → 200 with the new object, 404 if absent.
#[utoipa::path(
    put,
    path = "/v1/businesses/{id}",
    operation_id = "replaceBusiness",
    security(("bearerAuth" = [])),
    params(IdParam),
    request_body(content = BusinessInput, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced.", body = BusinessBody, headers(
            ("X-Consistency-Token" = String, description = "WAL position of this write; send it back on reads to see the write even from a lagging replica (Postgres only).")
        )),
        (status = 400, description = "An invalid field, id, or malformed JSON.", body = ErrorBody),
        (status = 401, description = "Missing or malformed Authorization header.", body = ErrorBody),
        (status = 403, description = "Unknown API key.", body = ErrorBody),
        (status = 404, description = "No such business.", body = ErrorBody),
        (status = 413, description = "Body too large.", body = ErrorBody),
        (status = 415, description = "Body is not application/json.", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, description = "The primary database cannot take writes.", body = ErrorBody),
    )
)]
pub async fn replace(
    State(state): State<AppState>,
    Bearer(key): Bearer,
    IdPath(id): IdPath,
    ClientAddr(addr): ClientAddr,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let new = parse_business(&body)?;
    let (business, lsn) = detached({
        let state = state.clone();
        async move {
            let written = state
                .store
                .update(id.get(), NewRecord::from_domain(&new, None))
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("business {id} does not exist")))?;
            let business = into_business(written.value)?;
            after_write(&state, written.seq, id, Some(&business)).await;
            Ok((business, written.lsn))
        }
    })
    .await?;
    let json = serde_json::to_string(&BusinessBody::from(&business)).expect("serialises");
    let mut response = json_response(StatusCode::OK, json);
    record_write(&state, &key, addr, lsn, &mut response);
    Ok(response)
}

/// `DELETE /v1/businesses/{id}` → 204, 404 if absent.
#[utoipa::path(
    delete,
    path = "/v1/businesses/{id}",
    operation_id = "deleteBusiness",
    security(("bearerAuth" = [])),
    params(IdParam),
    responses(
        (status = 204, description = "Deleted.", headers(
            ("X-Consistency-Token" = String, description = "WAL position of this write; send it back on reads to see the write even from a lagging replica (Postgres only).")
        )),
        (status = 400, description = "Invalid id.", body = ErrorBody),
        (status = 401, description = "Missing or malformed Authorization header.", body = ErrorBody),
        (status = 403, description = "Unknown API key.", body = ErrorBody),
        (status = 404, description = "No such business.", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, description = "The primary database cannot take writes.", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Bearer(key): Bearer,
    IdPath(id): IdPath,
    ClientAddr(addr): ClientAddr,
) -> Result<Response, ApiError> {
    let lsn = detached({
        let state = state.clone();
        async move {
            let written = state
                .store
                .delete(id.get())
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("business {id} does not exist")))?;
            after_write(&state, written.seq, id, None).await;
            Ok(written.lsn)
        }
    })
    .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    record_write(&state, &key, addr, lsn, &mut response);
    Ok(response)
}

/// `GET /v1/businesses/{id}` → 200 or 404. Public.
#[utoipa::path(
    get,
    path = "/v1/businesses/{id}",
    operation_id = "getBusiness",
    params(IdParam, ReadHeaders),
    responses(
        (status = 200, description = "The business.", body = BusinessBody),
        (status = 400, description = "Invalid id or token.", body = ErrorBody),
        (status = 404, description = "No such business.", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, description = "No database can answer.", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    headers: HeaderMap,
    ClientAddr(addr): ClientAddr,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("business {id} does not exist"));
    let token = match headers.get(TOKEN_HEADER) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<Lsn>().ok())
                .ok_or_else(|| {
                    ApiError::validation(
                        "X-Consistency-Token",
                        "must be a WAL position as returned by a write (e.g. 0/16B3748)",
                    )
                })?,
        ),
    };
    // A key on a read only counts for read-your-writes if it is a real key,
    // parsed exactly as on writes (which accept any case of `Bearer`).
    let key = known_key(&headers, &state.keys);
    let required = state.consistency.required(&clients(key, addr)).max(token);

    // The cache never holds an entry older than an acknowledged write: each
    // write overwrites its entry (even if its client hung up: `detached`), a
    // write that could not reach Redis keeps the cache switched off until that
    // entry is purged, and every instance drops the entries of the changes it
    // applies from the feed unless they hold that change (see `cache`).
    match state.cache.get(id.get()).await {
        crate::cache::Lookup::Hit(json) => return Ok(json_response(StatusCode::OK, json)),
        crate::cache::Lookup::Deleted => return Err(not_found()),
        crate::cache::Lookup::Miss => {}
    }
    let record = state.store.get(id.get(), required).await?;
    match record {
        Some(record) => {
            let business = into_business(record)?;
            let json = serde_json::to_string(&BusinessBody::from(&business)).expect("serialises");
            state.cache.fill(id.get(), Some(&json)).await;
            Ok(json_response(StatusCode::OK, json))
        }
        None => {
            state.cache.fill(id.get(), None).await;
            Err(not_found())
        }
    }
}
