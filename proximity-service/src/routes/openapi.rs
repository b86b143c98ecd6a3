//! `GET /openapi.json`: the hand-written OpenAPI 3.0 description of the API.
//!
//! Limits come from the domain types' constants, so the document cannot drift
//! from what the handlers enforce. String fields use a pattern that matches
//! exactly what the domain accepts (at least one non-blank character, no
//! control characters).

use axum::Json;
use serde_json::{json, Value};

use crate::domain::{Address, BusinessName, Category, Hours, Limit, Phone, RadiusM};

/// Text accepted by the domain: no control characters, not blank.
const TEXT_PATTERN: &str =
    "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";
/// Phone numbers: digits, blanks and `+ - ( ) . /`, at least 3 digits.
const PHONE_PATTERN: &str = "^[ +\\-()./]*([0-9][ +\\-()./]*){3,}$";

fn text(max: usize) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": TEXT_PATTERN})
}

fn nullable_text(max: usize) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": TEXT_PATTERN,
           "nullable": true})
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// The document.
pub fn document() -> Value {
    let business_input = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "category", "lat", "lng"],
        "properties": {
            "name": text(BusinessName::MAX_CHARS),
            "category": text(Category::MAX_CHARS),
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "lng": {"type": "number", "minimum": -180, "maximum": 180},
            "address": nullable_text(Address::MAX_CHARS),
            "phone": {"type": "string", "minLength": 3, "maxLength": Phone::MAX_CHARS,
                      "pattern": PHONE_PATTERN, "nullable": true},
            "hours": nullable_text(Hours::MAX_CHARS)
        }
    });
    let id_param = json!({
        "name": "id", "in": "path", "required": true,
        "description": "Business id.",
        "schema": {"type": "integer", "format": "int64", "minimum": 1}
    });
    let bearer = json!([{"bearerAuth": []}]);
    let business_200 = json!({
        "description": "The business.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Business"}}}
    });
    let rate_limited = json!({
        "description": "Rate limit exceeded; retry after the given number of seconds.",
        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    });
    let token_header = json!({
        "description": "WAL position of this write; send it back on reads to see the write \
                        even from a lagging replica (Postgres only).",
        "schema": {"type": "string"}
    });

    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "proximity-service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Nearby search over an in-memory geohash/H3 index, and business CRUD. \
                            Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`."
        },
        "paths": {
            "/v1/search/nearby": {
                "get": {
                    "operationId": "searchNearby",
                    "summary": "Places within `radius` metres of (lat, lng), nearest first.",
                    "parameters": [
                        {"name": "lat", "in": "query", "required": true,
                         "schema": {"type": "number", "minimum": -90, "maximum": 90}},
                        {"name": "lng", "in": "query", "required": true,
                         "schema": {"type": "number", "minimum": -180, "maximum": 180}},
                        {"name": "radius", "in": "query", "required": false,
                         "description": "Metres.",
                         "schema": {"type": "number", "minimum": 0, "exclusiveMinimum": true,
                                    "maximum": RadiusM::MAX_M, "default": RadiusM::DEFAULT_M}},
                        {"name": "limit", "in": "query", "required": false,
                         "schema": {"type": "integer", "minimum": 1, "maximum": Limit::MAX,
                                    "default": Limit::DEFAULT}},
                        {"name": "cursor", "in": "query", "required": false,
                         "description": "`next_cursor` of the previous page of the same query.",
                         "schema": {"type": "string", "minLength": 1, "maxLength": 64,
                                    "pattern": "^[A-Za-z0-9_-]+$"}},
                        {"name": "category", "in": "query", "required": false,
                         "description": "Only places of this category (case-insensitive).",
                         "schema": text(Category::MAX_CHARS)},
                        {"name": "index", "in": "query", "required": false,
                         "schema": {"type": "string", "enum": ["geohash", "h3"],
                                    "default": "geohash"}}
                    ],
                    "responses": {
                        "200": {"description": "One page of results.",
                                "content": {"application/json": {"schema":
                                    {"$ref": "#/components/schemas/NearbyPage"}}}},
                        "400": error_response("An invalid parameter (named in `field`)."),
                        "429": rate_limited
                    }
                }
            },
            "/v1/businesses": {
                "post": {
                    "operationId": "createBusiness",
                    "security": bearer,
                    "requestBody": {"required": true, "content": {"application/json":
                        {"schema": {"$ref": "#/components/schemas/BusinessInput"}}}},
                    "responses": {
                        "201": {
                            "description": "Created.",
                            "headers": {
                                "Location": {"schema": {"type": "string"}},
                                "X-Consistency-Token": token_header
                            },
                            "content": {"application/json": {"schema":
                                {"$ref": "#/components/schemas/Business"}}}
                        },
                        "400": error_response("An invalid field (named in `field`) or malformed JSON."),
                        "401": error_response("Missing or malformed Authorization header."),
                        "403": error_response("Unknown API key."),
                        "413": error_response("Body too large."),
                        "415": error_response("Body is not application/json."),
                        "429": rate_limited,
                        "503": error_response("The primary database cannot take writes.")
                    }
                }
            },
            "/v1/businesses/{id}": {
                "parameters": [id_param],
                "get": {
                    "operationId": "getBusiness",
                    "parameters": [
                        {"name": "X-Consistency-Token", "in": "header", "required": false,
                         "description": "A write's token: read at least that write.",
                         "schema": {"type": "string",
                                    "pattern": "^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$"}}
                    ],
                    "responses": {
                        "200": business_200,
                        "400": error_response("Invalid id or token."),
                        "404": error_response("No such business."),
                        "429": rate_limited,
                        "503": error_response("No database can answer.")
                    }
                },
                "put": {
                    "operationId": "replaceBusiness",
                    "security": bearer,
                    "requestBody": {"required": true, "content": {"application/json":
                        {"schema": {"$ref": "#/components/schemas/BusinessInput"}}}},
                    "responses": {
                        "200": {
                            "description": "Replaced.",
                            "headers": {"X-Consistency-Token": token_header},
                            "content": {"application/json": {"schema":
                                {"$ref": "#/components/schemas/Business"}}}
                        },
                        "400": error_response("An invalid field, id, or malformed JSON."),
                        "401": error_response("Missing or malformed Authorization header."),
                        "403": error_response("Unknown API key."),
                        "404": error_response("No such business."),
                        "413": error_response("Body too large."),
                        "415": error_response("Body is not application/json."),
                        "429": rate_limited,
                        "503": error_response("The primary database cannot take writes.")
                    }
                },
                "delete": {
                    "operationId": "deleteBusiness",
                    "security": bearer,
                    "responses": {
                        "204": {"description": "Deleted.",
                                "headers": {"X-Consistency-Token": token_header}},
                        "400": error_response("Invalid id."),
                        "401": error_response("Missing or malformed Authorization header."),
                        "403": error_response("Unknown API key."),
                        "404": error_response("No such business."),
                        "429": rate_limited,
                        "503": error_response("The primary database cannot take writes.")
                    }
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "responses": {"200": {"description": "Alive.", "content": {"application/json":
                        {"schema": {"type": "object", "required": ["status"],
                                    "properties": {"status": {"type": "string", "enum": ["ok"]}}}}}}}
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "responses": {
                        "200": {"description": "Ready or degraded.", "content": {"application/json":
                            {"schema": {"$ref": "#/components/schemas/Readiness"}}}},
                        "503": {"description": "No database answers.", "content": {"application/json":
                            {"schema": {"$ref": "#/components/schemas/Readiness"}}}}
                    }
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "responses": {"200": {"description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}}}}
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "responses": {"200": {"description": "This document.",
                        "content": {"application/json": {"schema": {"type": "object"}}}}}
                }
            }
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "One of the keys in PROXIMITY_API_KEYS."}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "field": {"type": "string"}
                        }
                    }}
                },
                "BusinessInput": business_input,
                "Business": {
                    "type": "object",
                    "required": ["id", "name", "category", "lat", "lng",
                                 "address", "phone", "hours"],
                    "properties": {
                        "id": {"type": "integer", "format": "int64", "minimum": 1},
                        "name": {"type": "string"},
                        "category": {"type": "string"},
                        "lat": {"type": "number", "minimum": -90, "maximum": 90},
                        "lng": {"type": "number", "minimum": -180, "maximum": 180},
                        "address": {"type": "string", "nullable": true},
                        "phone": {"type": "string", "nullable": true},
                        "hours": {"type": "string", "nullable": true}
                    }
                },
                "NearbyPage": {
                    "type": "object",
                    "required": ["total", "results", "next_cursor"],
                    "properties": {
                        "total": {"type": "integer", "minimum": 0,
                                  "description": "Exact number of places within the radius."},
                        "results": {"type": "array", "maxItems": Limit::MAX, "items": {
                            "type": "object",
                            "required": ["id", "name", "category", "lat", "lng", "distance_m"],
                            "properties": {
                                "id": {"type": "integer", "format": "int64", "minimum": 1},
                                "name": {"type": "string"},
                                "category": {"type": "string"},
                                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                                "lng": {"type": "number", "minimum": -180, "maximum": 180},
                                "distance_m": {"type": "number", "minimum": 0}
                            }
                        }},
                        "next_cursor": {"type": "string", "nullable": true}
                    }
                },
                "Readiness": {
                    "type": "object",
                    "required": ["status", "database", "cache", "index"],
                    "properties": {
                        "status": {"type": "string", "enum": ["ready", "degraded", "unavailable"]},
                        "database": {"type": "object"},
                        "cache": {"type": "string", "enum": ["disabled", "up", "down"]},
                        "index": {"type": "object"}
                    }
                }
            }
        }
    })
}

/// `GET /openapi.json`.
pub async fn openapi() -> Json<Value> {
    Json(document())
}
