//! `GET /v1/search/nearby`: answered from the in-memory index, never the
//! database.
//!
//! Known parameters are parsed strictly (a bad or repeated one is a 400 naming
//! it); unknown parameters are ignored.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa::IntoParams;

use super::schema::{self, RateLimited};
use crate::domain::{
    Category, Coordinates, Cursor, IndexKind, Latitude, Limit, Longitude, RadiusM,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::QueryPairs;
use crate::geo::{NearbyPage, NearbyQuery};
use crate::state::AppState;

/// The query parameters as the OpenAPI document states them. [`parse_query`] reads them from
/// [`QueryPairs`] instead (a repeated or malformed one is a 400 naming it); a test checks that
/// it reads exactly these names.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NearbyParams {
    #[param(minimum = -90, maximum = 90)]
    pub lat: f64,
    #[param(minimum = -180, maximum = 180)]
    pub lng: f64,
    #[param(schema_with = schema::radius)]
    pub radius: Option<f64>,
    #[param(schema_with = schema::limit)]
    pub limit: Option<u32>,
    #[param(schema_with = schema::cursor)]
    pub cursor: Option<String>,
    #[param(schema_with = schema::category_filter)]
    pub category: Option<String>,
    #[param(schema_with = schema::index_kind)]
    pub index: Option<String>,
}

fn invalid(e: crate::domain::DomainError) -> ApiError {
    ApiError::validation(e.field, e.message)
}

/// Parses the query string into a validated query.
pub fn parse_query(q: &QueryPairs, default_index: IndexKind) -> Result<NearbyQuery, ApiError> {
    let lat = Latitude::parse_str(q.required("lat")?).map_err(invalid)?;
    let lng = Longitude::parse_str(q.required("lng")?).map_err(invalid)?;
    let radius = match q.single("radius")? {
        Some(s) => RadiusM::parse_str(s).map_err(invalid)?,
        None => RadiusM::default(),
    };
    let limit = match q.single("limit")? {
        Some(s) => Limit::parse_str(s).map_err(invalid)?,
        None => Limit::default(),
    };
    let category = q
        .single("category")?
        .map(|s| {
            if s.chars().count() > Category::MAX_CHARS {
                return Err(ApiError::validation(
                    "category",
                    format!("must be at most {} characters", Category::MAX_CHARS),
                ));
            }
            Category::parse(s).map_err(invalid)
        })
        .transpose()?;
    let cursor = q
        .single("cursor")?
        .map(|s| Cursor::parse(s).map_err(invalid))
        .transpose()?;
    let index = match q.single("index")? {
        Some(s) => s.parse::<IndexKind>().map_err(invalid)?,
        None => default_index,
    };
    Ok(NearbyQuery {
        center: Coordinates::new(lat, lng),
        radius,
        limit,
        category,
        after: cursor,
        index,
    })
}

/// `GET /v1/search/nearby`.
#[utoipa::path(
    get,
    path = "/v1/search/nearby",
    operation_id = "searchNearby",
    summary = "Places within `radius` metres of (lat, lng), nearest first.",
    params(NearbyParams),
    responses(
        (status = 200, description = "One page of results; as a GeoJSON FeatureCollection of Points (properties `id`, `name`, `category`, `distance_m`; members `total`, `next_cursor`) when the request accepts `application/geo+json`.",
            content(
                (NearbyPage = "application/json"),
                (Object = "application/geo+json"),
            )
        ),
        (status = 400, description = "An invalid parameter (named in `field`).", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, description = "More requests in flight than the server takes, or not answered in time.", body = ErrorBody),
    )
)]
pub async fn nearby(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let query = parse_query(&query, state.default_index)?;
    let page = state
        .index
        .search(&query)
        .map_err(|e| ApiError::validation(e.field, e.message))?;
    if accepts_geojson(&headers) {
        return Ok((
            [(header::CONTENT_TYPE, GEOJSON)],
            feature_collection(&page).to_string(),
        )
            .into_response());
    }
    // `NearbyPage` serialises to exactly the documented response shape.
    Ok(Json(page).into_response())
}

/// The GeoJSON media type (RFC 7946).
const GEOJSON: &str = "application/geo+json";

/// Whether the request asks for GeoJSON (and not JSON first): `Accept` lists
/// `application/geo+json` before any `application/json`.
fn accepts_geojson(headers: &HeaderMap) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let pos = |t: &str| {
        accept
            .split(',')
            .position(|m| m.split(';').next().unwrap_or("").trim() == t)
    };
    match (pos(GEOJSON), pos("application/json")) {
        (Some(g), Some(j)) => g < j,
        (Some(_), None) => true,
        _ => false,
    }
}

/// A page as a GeoJSON FeatureCollection, written by georust's `geojson` from `geo` points.
pub fn feature_collection(page: &NearbyPage) -> geojson::FeatureCollection {
    let features = page
        .results
        .iter()
        .map(|h| {
            let point = geo::Point::new(h.lng, h.lat);
            let mut properties = serde_json::Map::new();
            properties.insert("id".into(), h.id.get().into());
            properties.insert("name".into(), h.name.clone().into());
            properties.insert("category".into(), h.category.as_str().into());
            properties.insert("distance_m".into(), h.distance_m.into());
            geojson::Feature {
                bbox: None,
                geometry: Some(geojson::Geometry::new(geojson::Value::from(&point))),
                id: None,
                properties: Some(properties),
                foreign_members: None,
            }
        })
        .collect();
    let mut members = serde_json::Map::new();
    members.insert("total".into(), page.total.into());
    members.insert(
        "next_cursor".into(),
        page.next_cursor
            .as_ref()
            .map_or(serde_json::Value::Null, |c| serde_json::json!(c)),
    );
    geojson::FeatureCollection {
        bbox: None,
        features,
        foreign_members: Some(members),
    }
}
