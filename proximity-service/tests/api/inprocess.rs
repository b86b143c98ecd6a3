//! The router in-process (`oneshot`) over a temporary embedded SQLite store:
//! every bad input gets its 4xx with our JSON error naming the field, and a
//! rejected request stores nothing.

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use proximity_service::startup::{router, AppState};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::helpers::{base_settings, business, inprocess_state, API_KEY};

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn send(state: &AppState, req: Request<Body>) -> Reply {
    let resp = router(state.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn write(method: Method, uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {API_KEY}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

fn assert_error(reply: &Reply, status: u16, field: Option<&str>, context: &str) {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{context}: body {}",
        reply.body
    );
    let err = &reply.body["error"];
    assert!(err["code"].is_string(), "{context}: {}", reply.body);
    assert!(err["message"].is_string(), "{context}: {}", reply.body);
    if let Some(field) = field {
        assert_eq!(err["field"], field, "{context}: {}", reply.body);
    }
}

async fn count(state: &AppState) -> i64 {
    state.store.count().await.unwrap()
}

#[tokio::test]
async fn every_bad_search_parameter_is_a_400_naming_it() {
    let (state, _dir) = inprocess_state(base_settings()).await;
    let cases: &[(&str, &str)] = &[
        ("lng=1", "lat"),
        ("lat=1", "lng"),
        ("lat=90.0001&lng=0", "lat"),
        ("lat=-91&lng=0", "lat"),
        ("lat=NaN&lng=0", "lat"),
        ("lat=inf&lng=0", "lat"),
        ("lat=-infinity&lng=0", "lat"),
        ("lat=abc&lng=0", "lat"),
        ("lat=&lng=0", "lat"),
        ("lat=0&lng=180.5", "lng"),
        ("lat=0&lng=-181", "lng"),
        ("lat=0&lng=nan", "lng"),
        ("lat=0&lng=0&radius=0", "radius"),
        ("lat=0&lng=0&radius=-5", "radius"),
        ("lat=0&lng=0&radius=50000.1", "radius"),
        ("lat=0&lng=0&radius=NaN", "radius"),
        ("lat=0&lng=0&radius=1e400", "radius"),
        ("lat=0&lng=0&limit=0", "limit"),
        ("lat=0&lng=0&limit=201", "limit"),
        ("lat=0&lng=0&limit=1.5", "limit"),
        ("lat=0&lng=0&limit=-1", "limit"),
        ("lat=0&lng=0&index=quadtree", "index"),
        ("lat=0&lng=0&index=", "index"),
        ("lat=0&lng=0&cursor=garbage", "cursor"),
        ("lat=0&lng=0&cursor=", "cursor"),
        ("lat=0&lng=0&category=", "category"),
        ("lat=0&lng=0&category=%01x", "category"),
        ("lat=1&lat=2&lng=0", "lat"),
    ];
    for (query, field) in cases {
        let reply = send(&state, get(&format!("/v1/search/nearby?{query}"))).await;
        assert_error(&reply, 400, Some(field), query);
    }
    // Unknown parameters are ignored; defaults apply.
    let reply = send(&state, get("/v1/search/nearby?lat=0&lng=0&foo=bar")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["total"], 0);
    assert_eq!(reply.body["results"], json!([]));
    assert_eq!(reply.body["next_cursor"], Value::Null);
}

#[tokio::test]
async fn every_bad_business_body_is_a_400_naming_the_field_and_stores_nothing() {
    let (state, _dir) = inprocess_state(base_settings()).await;
    let ok = business("Cafe", 60.17, 24.94);
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (without("name"), "name"),
        (with("name", json!("")), "name"),
        (with("name", json!("   ")), "name"),
        (with("name", json!("x".repeat(201))), "name"),
        (with("name", json!(42)), "name"),
        (with("name", json!("a\u{0007}b")), "name"),
        (without("category"), "category"),
        (with("category", json!("")), "category"),
        (with("category", json!("c".repeat(65))), "category"),
        // 40 characters, 80 once lower-cased (`İ` → `i̇`): was stored, then a 500.
        (with("category", json!("İ".repeat(40))), "category"),
        (without("lat"), "lat"),
        (with("lat", json!(90.5)), "lat"),
        (with("lat", json!(-90.5)), "lat"),
        (with("lat", json!("12.5")), "lat"),
        (with("lat", Value::Null), "lat"),
        (without("lng"), "lng"),
        (with("lng", json!(180.01)), "lng"),
        (with("lng", json!(true)), "lng"),
        (with("phone", json!("call me")), "phone"),
        (with("phone", json!("12")), "phone"),
        (with("address", json!("")), "address"),
        (with("hours", json!(["Mo"])), "hours"),
        (with("latitude", json!(1.0)), "latitude"),
    ];
    for (body, field) in &cases {
        let reply = send(
            &state,
            write(Method::POST, "/v1/businesses", body.to_string()),
        )
        .await;
        assert_error(&reply, 400, Some(field), &body.to_string());
    }
    // Malformed JSON, non-objects, numbers JSON cannot hold.
    for raw in [
        "{",
        "[]",
        "\"text\"",
        "",
        "{\"name\":\"a\",\"category\":\"b\",\"lat\":1e400,\"lng\":0}",
    ] {
        let reply = send(&state, write(Method::POST, "/v1/businesses", raw)).await;
        assert_error(&reply, 400, None, raw);
        assert_eq!(reply.body["error"]["code"], "malformed_json", "{raw}");
    }
    // A field given twice is ambiguous (serde would silently keep the last).
    for (raw, field) in [
        (
            r#"{"name":"a","category":"b","lat":1,"lng":2,"name":"c"}"#,
            "name",
        ),
        (
            r#"{"name":"a","category":"b","lat":1,"lng":2,"lat":3}"#,
            "lat",
        ),
    ] {
        let reply = send(&state, write(Method::POST, "/v1/businesses", raw)).await;
        assert_error(&reply, 400, Some(field), raw);
    }
    // Wrong or missing content type.
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut req = Request::post("/v1/businesses")
            .header(header::AUTHORIZATION, format!("Bearer {API_KEY}"));
        if let Some(ct) = ct {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let reply = send(&state, req.body(Body::from(ok.to_string())).unwrap()).await;
        assert_error(&reply, 415, None, &format!("{ct:?}"));
    }
    assert_eq!(
        count(&state).await,
        0,
        "a rejected request stored something"
    );

    // The same body, valid, is accepted (the cases above differ only in the named field).
    let reply = send(
        &state,
        write(Method::POST, "/v1/businesses", ok.to_string()),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(count(&state).await, 1);
}

#[tokio::test]
async fn bad_ids_are_400_and_missing_ones_404() {
    let (state, _dir) = inprocess_state(base_settings()).await;
    for id in ["abc", "0", "-5", "1.5", "99999999999999999999", "%20"] {
        let reply = send(&state, get(&format!("/v1/businesses/{id}"))).await;
        assert_error(&reply, 400, Some("id"), id);
        let reply = send(
            &state,
            write(
                Method::PUT,
                &format!("/v1/businesses/{id}"),
                business("x", 1.0, 1.0).to_string(),
            ),
        )
        .await;
        assert_error(&reply, 400, Some("id"), id);
        let reply = send(
            &state,
            write(Method::DELETE, &format!("/v1/businesses/{id}"), ""),
        )
        .await;
        assert_error(&reply, 400, Some("id"), id);
    }
    let reply = send(&state, get("/v1/businesses/12345")).await;
    assert_error(&reply, 404, None, "missing");
    let reply = send(
        &state,
        write(
            Method::PUT,
            "/v1/businesses/12345",
            business("x", 1.0, 1.0).to_string(),
        ),
    )
    .await;
    assert_error(&reply, 404, None, "put missing");
    let reply = send(&state, write(Method::DELETE, "/v1/businesses/12345", "")).await;
    assert_error(&reply, 404, None, "delete missing");
    let reply = send(&state, get("/nope")).await;
    assert_error(&reply, 404, None, "unknown route");
    let reply = send(
        &state,
        Request::builder()
            .method(Method::PATCH)
            .uri("/v1/businesses/1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_error(&reply, 405, None, "PATCH");
    assert_eq!(count(&state).await, 0);
}

#[tokio::test]
async fn writes_need_a_known_bearer_key() {
    let (state, _dir) = inprocess_state(base_settings()).await;
    let body = business("Cafe", 1.0, 1.0).to_string();
    let cases: &[(Option<&str>, u16)] = &[
        (None, 401),
        (Some("Basic dXNlcjpwYXNz"), 401),
        (Some("Bearer"), 401),
        (Some("Bearer "), 401),
        (Some("Bearer wrong-key"), 403),
        (Some("Bearer test-key-10"), 403),
    ];
    for (auth, status) in cases {
        for (method, uri) in [
            (Method::POST, "/v1/businesses"),
            (Method::PUT, "/v1/businesses/1"),
            (Method::DELETE, "/v1/businesses/1"),
        ] {
            let mut req = Request::builder()
                .method(method.clone())
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, *a);
            }
            let reply = send(&state, req.body(Body::from(body.clone())).unwrap()).await;
            assert_error(&reply, *status, None, &format!("{method} {uri} {auth:?}"));
            if *status == 401 {
                assert!(reply.headers.contains_key(header::WWW_AUTHENTICATE));
            }
        }
    }
    // Auth comes before body validation: an invalid body without a key is still 401.
    let reply = send(
        &state,
        Request::post("/v1/businesses")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{"))
            .unwrap(),
    )
    .await;
    assert_error(&reply, 401, None, "401 before 400");
    assert_eq!(count(&state).await, 0);
}

#[tokio::test]
async fn oversized_bodies_are_413_and_store_nothing() {
    let (state, _dir) = inprocess_state(base_settings()).await;
    let mut body = business("Cafe", 1.0, 1.0);
    body["padding"] = json!("x".repeat(70 * 1024));
    let reply = send(
        &state,
        write(Method::POST, "/v1/businesses", body.to_string()),
    )
    .await;
    assert_error(&reply, 413, None, "70 KiB");
    // Without a Content-Length (chunked), the limit still holds.
    let chunks: Vec<Result<String, std::io::Error>> = vec![
        Ok(body.to_string()[..40_000].to_owned()),
        Ok(body.to_string()[40_000..].to_owned()),
    ];
    let req = Request::post("/v1/businesses")
        .header(header::AUTHORIZATION, format!("Bearer {API_KEY}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let reply = send(&state, req).await;
    assert_error(&reply, 413, None, "streamed");
    assert_eq!(count(&state).await, 0);
}

#[tokio::test]
async fn an_empty_bucket_is_429_with_retry_after() {
    let mut settings = base_settings();
    settings.rate_limit.requests_per_second = 0.5;
    settings.rate_limit.burst = 3.0;
    settings.rate_limit.exempt_loopback = false;
    let (state, _dir) = inprocess_state(settings).await;
    for _ in 0..3 {
        let reply = send(&state, get("/v1/search/nearby?lat=0&lng=0")).await;
        assert_eq!(reply.status, 200);
    }
    let reply = send(&state, get("/v1/search/nearby?lat=0&lng=0")).await;
    assert_error(&reply, 429, None, "4th request");
    let retry: u64 = reply.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // A writer with a key has its own bucket.
    let reply = send(
        &state,
        write(
            Method::POST,
            "/v1/businesses",
            business("Cafe", 1.0, 1.0).to_string(),
        ),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    // Health endpoints are never limited.
    let reply = send(&state, get("/healthz")).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn crud_search_and_pagination_on_the_embedded_store() {
    let (state, _dir) = inprocess_state(base_settings()).await;
    // 25 places on a line north of (60, 25), 100 m apart, plus one far away.
    let mut ids = Vec::new();
    for i in 0..25 {
        let lat = 60.0 + f64::from(i) * 0.0009;
        let reply = send(
            &state,
            write(
                Method::POST,
                "/v1/businesses",
                business(&format!("P{i}"), lat, 25.0).to_string(),
            ),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let id = reply.body["id"].as_i64().unwrap();
        assert_eq!(
            reply.headers[header::LOCATION],
            format!("/v1/businesses/{id}").as_str()
        );
        ids.push(id);
    }
    let reply = send(
        &state,
        write(
            Method::POST,
            "/v1/businesses",
            business("Far", -33.0, 151.0).to_string(),
        ),
    )
    .await;
    assert_eq!(reply.status, 201);

    // Follow cursors: every nearby place exactly once, in distance order.
    let mut seen = Vec::new();
    let mut uri = "/v1/search/nearby?lat=60&lng=25&radius=5000&limit=7".to_owned();
    let mut last_distance = -1.0;
    loop {
        let reply = send(&state, get(&uri)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["total"], 25);
        for hit in reply.body["results"].as_array().unwrap() {
            let d = hit["distance_m"].as_f64().unwrap();
            assert!(d >= last_distance);
            last_distance = d;
            seen.push(hit["id"].as_i64().unwrap());
        }
        match reply.body["next_cursor"].as_str() {
            Some(c) => {
                uri = format!("/v1/search/nearby?lat=60&lng=25&radius=5000&limit=7&cursor={c}")
            }
            None => break,
        }
    }
    assert_eq!(seen, ids, "pages must list every place once, nearest first");
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 25);

    // A cursor from one query is rejected by another.
    let first = send(&state, get("/v1/search/nearby?lat=60&lng=25&limit=2")).await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let reply = send(
        &state,
        get(&format!(
            "/v1/search/nearby?lat=61&lng=25&limit=2&cursor={cursor}"
        )),
    )
    .await;
    assert_error(&reply, 400, Some("cursor"), "foreign cursor");

    // Read, replace, delete.
    let id = ids[3];
    let reply = send(&state, get(&format!("/v1/businesses/{id}"))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["name"], "P3");
    assert_eq!(reply.body["phone"], "+1 555 0100");
    let reply = send(
        &state,
        write(
            Method::PUT,
            &format!("/v1/businesses/{id}"),
            json!({"name": "Moved", "category": "Bar", "lat": -33.0001, "lng": 151.0}).to_string(),
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["category"], "bar");
    assert_eq!(reply.body["address"], Value::Null);
    let reply = send(&state, get("/v1/search/nearby?lat=60&lng=25&radius=5000")).await;
    assert_eq!(reply.body["total"], 24, "the moved place left this area");
    let reply = send(
        &state,
        get("/v1/search/nearby?lat=-33&lng=151&radius=100&category=BAR"),
    )
    .await;
    assert_eq!(reply.body["total"], 1);
    assert_eq!(reply.body["results"][0]["id"], id);
    let reply = send(
        &state,
        write(Method::DELETE, &format!("/v1/businesses/{id}"), ""),
    )
    .await;
    assert_eq!(reply.status, 204);
    let reply = send(&state, get(&format!("/v1/businesses/{id}"))).await;
    assert_eq!(reply.status, 404);
    let reply = send(&state, get("/v1/search/nearby?lat=-33&lng=151&radius=100")).await;
    assert_eq!(reply.body["total"], 1, "only 'Far' is left there");
    assert_eq!(count(&state).await, 25);
}

#[tokio::test]
async fn health_metrics_and_openapi() {
    let (state, _dir) = inprocess_state(base_settings()).await;
    let reply = send(&state, get("/healthz")).await;
    assert_eq!(reply.body, json!({"status": "ok"}));
    let reply = send(&state, get("/readyz")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["status"], "ready");
    assert_eq!(reply.body["cache"], "disabled");
    assert_eq!(reply.body["database"]["backend"], "sqlite");

    send(&state, get("/v1/search/nearby?lat=0&lng=0")).await;
    let resp = router(state.clone())
        .oneshot(get("/metrics"))
        .await
        .unwrap();
    let text = String::from_utf8(
        axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains(
            "http_request_duration_seconds_count{method=\"GET\",route=\"/v1/search/nearby\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("cache_hit_ratio"));
    assert!(text.contains("index_places 0"));
    // What a Prometheus scraper reads: every line parses, types are declared, and the process
    // metrics operators expect are there with plausible values.
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("a valid Prometheus text exposition");
    let value = |name: &str| -> f64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"));
        match s.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name} is not a plain sample"),
        }
    };
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_open_fds") >= 3.0);
    assert!(value("process_max_fds") >= value("process_open_fds"));
    assert!(value("process_cpu_seconds_total") > 0.0);
    let started = value("process_start_time_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        started > now - 3600.0 && started <= now + 1.0,
        "{started} vs {now}"
    );
    assert_eq!(value("index_places"), 0.0);
    for declared in [
        "http_request_duration_seconds",
        "http_requests_total",
        "replica_lag_seconds",
    ] {
        assert!(scrape.docs.contains_key(declared), "no HELP for {declared}");
    }
    assert_eq!(value("ready"), 1.0);
    // The shipped alert rules name only metrics this exposes.
    let rules: serde_json::Value = serde_norway::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../manifests/prometheus-alerts.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    let exported: std::collections::BTreeSet<&str> = scrape
        .samples
        .iter()
        .map(|s| s.metric.as_str())
        .chain(scrape.docs.keys().map(String::as_str))
        .collect();
    let mut alerts = 0;
    for rule in rules["groups"][0]["rules"].as_array().unwrap() {
        let expr = rule["expr"].as_str().unwrap();
        let names = promql_metric_names(expr);
        assert!(!names.is_empty(), "{expr}");
        for n in names {
            assert!(
                exported.contains(n.as_str()),
                "alert {} names {n}, which /metrics lacks",
                rule["alert"]
            );
        }
        alerts += 1;
    }
    assert_eq!(alerts, 6);
    let buckets = scrape
        .samples
        .iter()
        .find(|s| s.metric == "http_request_duration_seconds")
        .expect("the latency histogram");
    assert!(matches!(
        buckets.value,
        prometheus_parse::Value::Histogram(_)
    ));

    let reply = send(&state, get("/openapi.json")).await;
    assert_eq!(reply.body["openapi"], "3.0.3");
    let paths = reply.body["paths"].as_object().unwrap();
    for p in [
        "/v1/search/nearby",
        "/v1/businesses",
        "/v1/businesses/{id}",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "{p}");
    }
    let radius = &reply.body["paths"]["/v1/search/nearby"]["get"]["parameters"][2]["schema"];
    assert_eq!(radius["maximum"], 50000.0);
}

/// Writes between pages do not break pagination: every place that stays put
/// is listed exactly once, and no id is listed twice.
#[tokio::test]
async fn pagination_survives_concurrent_writes() {
    let (state, _dir) = inprocess_state(base_settings()).await;
    let mut stable = Vec::new();
    for i in 0..40 {
        let lat = -10.0 + f64::from(i) * 0.0005;
        let reply = send(
            &state,
            write(
                Method::POST,
                "/v1/businesses",
                business(&format!("S{i}"), lat, 100.0).to_string(),
            ),
        )
        .await;
        stable.push(reply.body["id"].as_i64().unwrap());
    }
    let base = "/v1/search/nearby?lat=-10&lng=100&radius=10000&limit=6";
    let mut uri = base.to_owned();
    let mut seen = Vec::new();
    let mut page = 0;
    loop {
        let reply = send(&state, get(&uri)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        seen.extend(
            reply.body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].as_i64().unwrap()),
        );
        // Between pages: new places nearer and farther than the cursor,
        // and a short-lived one that is created and deleted.
        page += 1;
        for (j, lat) in [-10.0001, -10.015, -10.0002].into_iter().enumerate() {
            let reply = send(
                &state,
                write(
                    Method::POST,
                    "/v1/businesses",
                    business(&format!("N{page}-{j}"), lat, 100.0).to_string(),
                ),
            )
            .await;
            assert_eq!(reply.status, 201);
            if j == 2 {
                let id = reply.body["id"].as_i64().unwrap();
                let reply = send(
                    &state,
                    write(Method::DELETE, &format!("/v1/businesses/{id}"), ""),
                )
                .await;
                assert_eq!(reply.status, 204);
            }
        }
        match reply.body["next_cursor"].as_str() {
            Some(c) => uri = format!("{base}&cursor={c}"),
            None => break,
        }
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an id was listed twice");
    for id in &stable {
        assert_eq!(
            seen.iter().filter(|s| *s == id).count(),
            1,
            "stable place {id} not listed exactly once"
        );
    }
}

/// The metric names a PromQL expression reads: identifiers outside label matchers (`{…}`),
/// ranges (`[…]`) and `by (…)` groupings, that are not function calls.
fn promql_metric_names(expr: &str) -> Vec<String> {
    let mut cleaned = String::new();
    let mut depth = 0i32;
    for c in expr.chars() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ if depth > 0 => {}
            c => cleaned.push(c),
        }
    }
    while let Some(i) = cleaned.find("by (") {
        let end = cleaned[i..].find(')').map_or(cleaned.len(), |j| i + j + 1);
        cleaned.replace_range(i..end, " ");
    }
    let mut names = Vec::new();
    let chars: Vec<char> = cleaned.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_alphabetic() || chars[i] == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if next != Some(&'(') && !matches!(word.as_str(), "by" | "and" | "or" | "unless") {
                names.push(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Points leave as GeoJSON when asked (`Accept: application/geo+json`): a FeatureCollection
/// that georust's `geojson` reads back, each Point at its place's `[lng, lat]`, with the same
/// results, order and paging members as the JSON answer.
#[tokio::test]
async fn nearby_results_export_as_geojson_when_asked() {
    let (state, _dir) = inprocess_state(base_settings()).await;
    for (i, (lat, lng)) in [(48.8566, 2.3522), (48.8606, 2.3376), (48.853, 2.3499)]
        .into_iter()
        .enumerate()
    {
        let reply = send(
            &state,
            write(
                Method::POST,
                "/v1/businesses",
                business(&format!("P{i}"), lat, lng).to_string(),
            ),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }
    let uri = "/v1/search/nearby?lat=48.8566&lng=2.3522&radius=5000&limit=2";
    let json = send(&state, get(uri)).await;
    assert_eq!(json.status, StatusCode::OK);
    let resp = router(state.clone())
        .oneshot(
            Request::get(uri)
                .header(
                    header::ACCEPT,
                    "application/geo+json, application/json;q=0.5",
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/geo+json");
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let fc: geojson::FeatureCollection = String::from_utf8(bytes.to_vec())
        .unwrap()
        .parse::<geojson::GeoJson>()
        .unwrap()
        .try_into()
        .unwrap();
    let results = json.body["results"].as_array().unwrap();
    assert_eq!(fc.features.len(), results.len());
    for (f, r) in fc.features.iter().zip(results) {
        let p: geo::Point<f64> = f.geometry.clone().unwrap().value.try_into().unwrap();
        assert_eq!(
            (p.x(), p.y()),
            (r["lng"].as_f64().unwrap(), r["lat"].as_f64().unwrap())
        );
        assert_eq!(f.property("id").unwrap(), &r["id"]);
        assert_eq!(f.property("distance_m").unwrap(), &r["distance_m"]);
    }
    let members = fc.foreign_members.unwrap();
    assert_eq!(members["total"], json.body["total"]);
    assert_eq!(members["next_cursor"], json.body["next_cursor"]);
    // JSON stays the default.
    assert!(json.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
}
