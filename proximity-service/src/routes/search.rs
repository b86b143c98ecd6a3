//! `GET /v1/search/nearby`: answered from the in-memory index, never the
//! database.
//!
//! Known parameters are parsed strictly (a bad or repeated one is a 400 naming
//! it); unknown parameters are ignored.

use axum::extract::State;
use axum::Json;

use crate::domain::{
    Category, Coordinates, Cursor, IndexKind, Latitude, Limit, Longitude, RadiusM,
};
use crate::error::ApiError;
use crate::extract::QueryPairs;
use crate::geo::{NearbyPage, NearbyQuery};
use crate::state::AppState;

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
pub async fn nearby(
    State(state): State<AppState>,
    query: QueryPairs,
) -> Result<Json<NearbyPage>, ApiError> {
    let query = parse_query(&query, state.default_index)?;
    let page = state
        .index
        .search(&query)
        .map_err(|e| ApiError::validation(e.field, e.message))?;
    // `NearbyPage` serialises to exactly the documented response shape.
    Ok(Json(page))
}
