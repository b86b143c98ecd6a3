//! `GET /openapi.json`: the OpenAPI document, derived by utoipa from each handler's
//! `#[utoipa::path]` (its path, parameters and responses sit on the handler) and from the types
//! the handlers return (`BusinessBody`, `NearbyPage`, `Readiness`, `ErrorBody` …), with the
//! domain's limits reaching it through [`super::schema`]. Built once, served from a cache.
//!
//! utoipa 5 writes OpenAPI 3.1; the service has always published 3.0.3 (clients and the
//! schemathesis fuzz read it), so [`to_openapi_3_0`] rewrites the few 3.1 spellings utoipa uses
//! (`type: [T, "null"]`, numeric `exclusiveMinimum`, `license.identifier`) into their 3.0 form.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::schema::RateLimited;
use super::{businesses, health, metrics, search};

/// The API as utoipa derives it (OpenAPI 3.1; see [`document`] for what is served).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "proximity-service",
        description = "Nearby search over an in-memory geohash/H3 index, and business CRUD. \
                       Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`."
    ),
    paths(
        search::nearby,
        businesses::create,
        businesses::get,
        businesses::replace,
        businesses::delete,
        health::healthz,
        health::readyz,
        metrics::metrics,
        openapi,
    ),
    components(responses(RateLimited)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Adds the `bearerAuth` scheme the write operations name.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("One of the keys in PROXIMITY_API_KEYS."))
                    .build(),
            ),
        );
    }
}

/// The document served at `/openapi.json` (OpenAPI 3.0.3).
pub fn document() -> Value {
    let derived = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
    to_openapi_3_0(derived)
}

/// [`document`], serialised once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| document().to_string());

/// Rewrites a utoipa (OpenAPI 3.1) document into OpenAPI 3.0.3.
pub fn to_openapi_3_0(mut doc: Value) -> Value {
    downgrade(&mut doc);
    if let Some(license) = doc
        .pointer_mut("/info/license")
        .and_then(Value::as_object_mut)
    {
        license.remove("identifier");
    }
    doc["openapi"] = Value::from("3.0.3");
    doc
}

fn downgrade(value: &mut Value) {
    match value {
        Value::Object(map) => {
            nullable_type(map);
            for bound in ["exclusiveMinimum", "exclusiveMaximum"] {
                exclusive_bound(map, bound);
            }
            map.values_mut().for_each(downgrade);
        }
        Value::Array(items) => items.iter_mut().for_each(downgrade),
        _ => {}
    }
}

/// `"type": ["string", "null"]` → `"type": "string", "nullable": true`.
fn nullable_type(map: &mut Map<String, Value>) {
    let Some(Value::Array(types)) = map.get("type") else {
        return;
    };
    let mut types: Vec<Value> = types.clone();
    let before = types.len();
    types.retain(|t| t != "null");
    if let [single] = types.as_slice() {
        let single = single.clone();
        map.insert("type".into(), single);
        if before > 1 {
            map.insert("nullable".into(), Value::Bool(true));
        }
    }
}

/// `"exclusiveMinimum": 0` → `"minimum": 0, "exclusiveMinimum": true` (likewise for maximum).
fn exclusive_bound(map: &mut Map<String, Value>, key: &str) {
    let Some(bound @ Value::Number(_)) = map.get(key).cloned() else {
        return;
    };
    let inclusive = if key == "exclusiveMinimum" {
        "minimum"
    } else {
        "maximum"
    };
    map.insert(inclusive.into(), bound);
    map.insert(key.into(), Value::Bool(true));
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    responses((status = 200, description = "This document.", body = Object))
)]
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keywords and spellings OpenAPI 3.0 does not have; `to_openapi_3_0` must leave none.
    fn assert_3_0(value: &Value, at: &str) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let here = format!("{at}/{k}");
                    match k.as_str() {
                        "type" => {
                            assert!(v.is_string() || at.ends_with("/properties"), "{here}: {v}")
                        }
                        "exclusiveMinimum" | "exclusiveMaximum" => {
                            assert!(v.is_boolean() || at.ends_with("/properties"), "{here}: {v}")
                        }
                        "const" | "examples" | "prefixItems" | "contentMediaType" | "$schema"
                        | "identifier" | "webhooks" | "jsonSchemaDialect" => {
                            assert!(at.ends_with("/properties"), "{here}: 3.1 only")
                        }
                        _ => {}
                    }
                    if k == "type" && v == "null" {
                        panic!("{here}: a null type");
                    }
                    assert_3_0(v, &here);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    assert_3_0(v, &format!("{at}/{i}"));
                }
            }
            _ => {}
        }
    }

    #[test]
    fn the_served_document_is_openapi_3_0() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.0.3");
        assert_3_0(&doc, "");
        // The cached bytes are the same document.
        assert_eq!(serde_json::from_str::<Value>(&DOCUMENT).unwrap(), doc);
    }

    fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
        &doc["components"]["schemas"][name]
    }

    #[test]
    fn every_documented_search_parameter_is_read_by_the_handler() {
        use crate::domain::IndexKind;
        use crate::extract::QueryPairs;
        let doc = document();
        let params = doc["paths"]["/v1/search/nearby"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let names: Vec<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["lat", "lng", "radius", "limit", "cursor", "category", "index"]
        );
        for name in names {
            // `parse_query` reads a parameter it knows exactly once: a repeat is a 400 naming it.
            let pairs = [("lat", "1"), ("lng", "2"), (name, "x"), (name, "x")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()));
            match search::parse_query(&QueryPairs(pairs.to_vec()), IndexKind::default()) {
                Err(crate::error::ApiError::Validation { field, .. }) => assert_eq!(field, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_business_input_schema_has_the_fields_the_handler_reads() {
        let doc = document();
        let input = schema(&doc, "BusinessInput");
        let mut documented: Vec<&str> = input["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        documented.sort_unstable();
        let mut fields = businesses::FIELDS.to_vec();
        fields.sort_unstable();
        assert_eq!(documented, fields);
        assert_eq!(input["additionalProperties"], false);
        // A field is documented as required exactly when leaving it out is a 400 naming it.
        let full = serde_json::json!({"name": "n", "category": "c", "lat": 1.0, "lng": 2.0,
                                      "address": "a", "phone": "123", "hours": "h"});
        let mut required: Vec<&str> = businesses::FIELDS
            .into_iter()
            .filter(|f| {
                let mut body = full.as_object().unwrap().clone();
                body.remove(*f);
                matches!(businesses::parse_business(&body),
                         Err(crate::error::ApiError::Validation { field, .. }) if field == *f)
            })
            .collect();
        required.sort_unstable();
        let mut documented: Vec<&str> = input["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        documented.sort_unstable();
        assert_eq!(documented, required);
    }

    #[test]
    fn a_page_holds_at_most_the_largest_limit() {
        let doc = document();
        assert_eq!(
            schema(&doc, "NearbyPage")["properties"]["results"]["maxItems"],
            crate::domain::Limit::MAX
        );
    }

    #[test]
    fn nullable_and_exclusive_bounds_are_rewritten() {
        let doc = to_openapi_3_0(serde_json::json!({
            "openapi": "3.1.0",
            "info": {"license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
            "a": {"type": ["string", "null"], "maxLength": 3},
            "b": {"type": ["integer"]},
            "c": {"type": "number", "exclusiveMinimum": 0, "maximum": 5},
        }));
        assert_eq!(
            doc,
            serde_json::json!({
                "openapi": "3.0.3",
                "info": {"license": {"name": "Apache-2.0"}},
                "a": {"type": "string", "nullable": true, "maxLength": 3},
                "b": {"type": "integer"},
                "c": {"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 5},
            })
        );
    }
}
