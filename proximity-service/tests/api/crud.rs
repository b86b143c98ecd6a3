//! The real server against Postgres (primary + replica) and Redis.

use std::time::Duration;

use serde_json::{json, Value};

use super::helpers::{
    business, eventually, pg_count, pg_settings, spawn_app, spawn_embedded, spawn_with, API_KEY,
};

#[tokio::test]
async fn crud_round_trip_through_postgres_and_the_cache() {
    let (app, db) = spawn_app().await;
    let created = app.create(&business("Kahvila", 60.1699, 24.9384)).await;
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        created.headers().contains_key("x-consistency-token"),
        "Postgres writes return their WAL position"
    );
    let body: Value = created.json().await.unwrap();
    let id = body["id"].as_i64().unwrap();
    assert_eq!(location, format!("/v1/businesses/{id}"));
    assert_eq!(body["lat"], 60.1699);
    assert_eq!(body["category"], "cafe");

    // Read twice: the second comes from Redis.
    for _ in 0..2 {
        let got = app.get(id).await;
        assert_eq!(got.status(), 200);
        let got: Value = got.json().await.unwrap();
        assert_eq!(got, body);
    }
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains("cache_requests_total{result=\"hit\"} 0"),
        "expected a cache hit:\n{metrics}"
    );

    // Replace: the cache entry is overwritten, not served stale.
    let replaced = app
        .client
        .put(app.url(&location))
        .bearer_auth(API_KEY)
        .json(&json!({"name": "Kahvila 2", "category": "cafe", "lat": 60.17, "lng": 24.94}))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), 200);
    let got: Value = app.get(id).await.json().await.unwrap();
    assert_eq!(got["name"], "Kahvila 2");
    assert_eq!(got["phone"], Value::Null);

    let deleted = app
        .client
        .delete(app.url(&location))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(app.get(id).await.status(), 404);
    assert_eq!(pg_count(&db.primary_url).await, 0);

    // Rejected writes store nothing in Postgres either.
    let bad = app
        .create(&json!({"name": "x", "category": "c", "lat": 91, "lng": 0}))
        .await;
    assert_eq!(bad.status(), 400);
    let bad: Value = bad.json().await.unwrap();
    assert_eq!(bad["error"]["field"], "lat");
    assert_eq!(pg_count(&db.primary_url).await, 0);

    let ready: Value = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["cache"], "up");
    assert_eq!(ready["database"]["replicas"][0]["up"], true);
}

/// Replica replay paused: the writer still reads its write (routed to the
/// primary by its WAL position), while a client without that position reads
/// the lagging replica.
#[tokio::test]
async fn read_your_writes_while_the_replica_lags() {
    let cluster = harness::PgCluster::start().await.expect("cluster");
    let db = cluster.create_database("ryw").await.expect("db");
    let replicas = vec![db.replica_url.clone()];
    // Read-your-writes is under test here, not the staleness bound: let B use the paused replica.
    let settings = || {
        let mut s = pg_settings(&db.primary_url, &replicas, None);
        s.database.replica_max_lag_ms = 600_000;
        s
    };
    let a = spawn_with(settings()).await;
    let b = spawn_with(settings()).await;

    let created: Value = a
        .create(&business("v1", 10.0, 10.0))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().unwrap();
    let replica = sqlx::PgPool::connect(&db.replica_url).await.unwrap();
    let on_replica = |name: &'static str| {
        let replica = replica.clone();
        async move {
            let n: Option<String> = sqlx::query_scalar("SELECT name FROM businesses WHERE id = $1")
                .bind(id)
                .fetch_optional(&replica)
                .await
                .unwrap();
            n.as_deref() == Some(name)
        }
    };
    assert!(
        eventually(Duration::from_secs(10), || on_replica("v1"))
            .await
            .is_some(),
        "the replica never replayed the insert"
    );

    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&replica)
        .await
        .unwrap();
    let put = a
        .client
        .put(a.url(&format!("/v1/businesses/{id}")))
        .bearer_auth(API_KEY)
        .json(&business("v2", 10.0, 10.0))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let token = put.headers()["x-consistency-token"]
        .to_str()
        .unwrap()
        .to_owned();

    // The writer reads its write at once.
    let got: Value = a.get(id).await.json().await.unwrap();
    assert_eq!(got["name"], "v2");
    // The replica really lags...
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(on_replica("v1").await, "replay should be paused");
    // ...and instance B, which knows nothing of the write, reads it from there.
    let got: Value = b.get(id).await.json().await.unwrap();
    assert_eq!(got["name"], "v1", "B should read the (lagging) replica");
    // With the token, B reads the write too.
    let got: Value = b
        .client
        .get(b.url(&format!("/v1/businesses/{id}")))
        .header("x-consistency-token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["name"], "v2");
    // A malformed token is a 400 naming the header.
    let bad = b
        .client
        .get(b.url(&format!("/v1/businesses/{id}")))
        .header("x-consistency-token", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&replica)
        .await
        .unwrap();
    assert!(eventually(Duration::from_secs(10), || on_replica("v2"))
        .await
        .is_some());
    replica.close().await;
    a.stop().await;
    b.stop().await;
}

/// Two instances on one database: a write through either is in the other's
/// search results within 1 s.
#[tokio::test]
async fn every_instance_sees_every_write_within_a_second() {
    let db = harness::postgres().await.expect("postgres");
    let redis = harness::redis().await.expect("redis");
    let settings = || {
        pg_settings(
            &db.primary_url,
            std::slice::from_ref(&db.replica_url),
            Some(&redis),
        )
    };
    let a = spawn_with(settings()).await;
    let b = spawn_with(settings()).await;
    let ids_near = |app: &super::helpers::TestApp, q: &'static str| {
        let client = app.client.clone();
        let url = app.url(&format!("/v1/search/nearby?{q}"));
        async move {
            let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };

    let created: Value = a
        .create(&business("Cross", -12.0, 130.0))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().unwrap();
    let took = eventually(Duration::from_secs(1), || async {
        ids_near(&b, "lat=-12&lng=130&radius=100")
            .await
            .contains(&id)
    })
    .await;
    assert!(took.is_some(), "B did not see A's insert within 1 s");

    let moved = b
        .client
        .put(b.url(&format!("/v1/businesses/{id}")))
        .bearer_auth(API_KEY)
        .json(&business("Cross", 12.0, -130.0))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), 200);
    let took = eventually(Duration::from_secs(1), || async {
        ids_near(&a, "lat=12&lng=-130&radius=100")
            .await
            .contains(&id)
            && ids_near(&a, "lat=-12&lng=130&radius=100").await.is_empty()
    })
    .await;
    assert!(took.is_some(), "A did not see B's move within 1 s");

    let deleted = a
        .client
        .delete(a.url(&format!("/v1/businesses/{id}")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let took = eventually(Duration::from_secs(1), || async {
        ids_near(&b, "lat=12&lng=-130&radius=100").await.is_empty()
    })
    .await;
    assert!(took.is_some(), "B did not see A's delete within 1 s");
    // B's cached copy was replaced by the delete too.
    assert_eq!(b.get(id).await.status(), 404);
    a.stop().await;
    b.stop().await;
}

/// The embedded default keeps its data across restarts, and a restarted
/// instance loads it into its index.
#[tokio::test]
async fn the_embedded_store_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_embedded(dir.path()).await;
    let created: Value = app
        .create(&business("Durable", 48.85, 2.35))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().unwrap();
    assert!(
        !app.create(&business("x", 1.0, 1.0))
            .await
            .headers()
            .contains_key("x-consistency-token"),
        "SQLite has no WAL positions to hand out"
    );
    app.stop().await;
    assert!(dir.path().join("places.db").exists());

    let app = spawn_embedded(dir.path()).await;
    let got: Value = app.get(id).await.json().await.unwrap();
    assert_eq!(got["name"], "Durable");
    let page = app.search("lat=48.85&lng=2.35&radius=10").await;
    assert_eq!(page["results"][0]["id"], id);
    app.stop().await;
}

/// Over real TCP: with the defaults, loopback clients are never limited (a
/// local benchmark is not throttled); with the exemption off, the client's
/// address gets a bucket and an empty one answers 429 + Retry-After.
#[tokio::test]
async fn rate_limit_by_client_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = super::helpers::base_settings();
    settings.database.data_dir = Some(dir.path().to_path_buf());
    settings.rate_limit.burst = 5.0;
    settings.rate_limit.requests_per_second = 1.0;
    let exempt = spawn_with(settings.clone()).await;
    for _ in 0..50 {
        let r = exempt
            .client
            .get(exempt.url("/v1/search/nearby?lat=0&lng=0"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    exempt.stop().await;

    settings.rate_limit.exempt_loopback = false;
    let limited = spawn_with(settings).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let r = limited
            .client
            .get(limited.url("/v1/search/nearby?lat=0&lng=0"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(retry >= 1);
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
    }
    assert_eq!(&statuses[..5], &[200; 5]);
    assert!(statuses[5..].contains(&429), "{statuses:?}");
    // Health checks are never limited.
    let r = limited
        .client
        .get(limited.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    limited.stop().await;
}

/// Two writes to one id whose handlers update Redis in the opposite order of
/// their commits: the later commit must stay cached (a plain `SET` would
/// leave the older object there for the whole TTL).
#[tokio::test]
async fn cache_keeps_the_newest_write_when_updates_arrive_out_of_order() {
    use proximity_service::cache::{Cache, Lookup};
    use proximity_service::configuration::{RedisSettings, Secret};

    let redis = harness::redis().await.expect("redis");
    let settings = RedisSettings {
        url: Some(Secret::new(redis.url.clone())),
        prefix: redis.prefix.clone(),
        ttl_secs: 60,
    };
    let cache = Cache::connect(&settings, proximity_service::metrics::Metrics::new()).unwrap();
    assert!(cache.wait_ready(Duration::from_secs(5)).await);

    cache.store(1, 8, Some(r#"{"name":"second"}"#)).await;
    cache.store(1, 7, Some(r#"{"name":"first"}"#)).await;
    assert_eq!(
        cache.get(1).await,
        Lookup::Hit(r#"{"name":"second"}"#.into())
    );

    // A delete that finished first is not undone by an older update.
    cache.store(2, 10, None).await;
    cache.store(2, 9, Some(r#"{"name":"stale"}"#)).await;
    assert_eq!(cache.get(2).await, Lookup::Deleted);

    // A newer write replaces the entry; a reader's fill never does.
    cache.store(1, 11, Some(r#"{"name":"third"}"#)).await;
    cache
        .fill(1, Some(r#"{"name":"from a lagging replica"}"#))
        .await;
    assert_eq!(
        cache.get(1).await,
        Lookup::Hit(r#"{"name":"third"}"#.into())
    );
    // A fill of an absent entry is served as is.
    cache.fill(3, Some(r#"{"name":"filled"}"#)).await;
    assert_eq!(
        cache.get(3).await,
        Lookup::Hit(r#"{"name":"filled"}"#.into())
    );
}

/// A replica that answers a read with an error (here: a database without the
/// schema; in production e.g. a query cancelled by a recovery conflict) is
/// skipped for that read like a replica that is down: the primary answers.
#[tokio::test]
async fn a_replica_read_error_falls_back_to_the_primary() {
    let db = harness::postgres().await.expect("postgres");
    let unmigrated = harness::postgres().await.expect("postgres");
    let app = spawn_with(pg_settings(
        &db.primary_url,
        std::slice::from_ref(&unmigrated.primary_url),
        None,
    ))
    .await;
    let created: Value = app
        .create(&business("Kahvila", 60.17, 24.94))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().unwrap();
    // Let the monitor probe the "replica" (it reports no replay position, so
    // it counts as fully caught up and is chosen for reads).
    tokio::time::sleep(Duration::from_millis(600)).await;
    for _ in 0..3 {
        let got = app.get(id).await;
        assert_eq!(got.status(), 200);
        let got: Value = got.json().await.unwrap();
        assert_eq!(got["name"], "Kahvila");
    }
    app.stop().await;
}
