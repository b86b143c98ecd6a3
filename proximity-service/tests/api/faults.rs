//! Dependencies dying under load, on dedicated servers the tests stop.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proximity_service::configuration::Secret;
use serde_json::Value;

use super::helpers::{business, eventually, pg_settings, spawn_with, API_KEY};

async fn readyz(app: &super::helpers::TestApp) -> Value {
    app.client
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Kill the replica, then Redis, while readers hammer the API: no read fails.
#[tokio::test]
async fn reads_survive_losing_the_replica_then_redis() {
    let cluster = harness::PgCluster::start().await.expect("cluster");
    let db = cluster.create_database("faults").await.expect("db");
    let redis = harness::RedisServer::start().await.expect("redis");
    let mut settings = pg_settings(&db.primary_url, std::slice::from_ref(&db.replica_url), None);
    settings.redis.url = Some(Secret::new(redis.url()));
    settings.redis.prefix = "faults:".into();
    let app = Arc::new(spawn_with(settings).await);

    let mut ids = Vec::new();
    for i in 0..20 {
        let r: Value = app
            .create(&business(
                &format!("B{i}"),
                45.0 + f64::from(i) * 0.001,
                7.0,
            ))
            .await
            .json()
            .await
            .unwrap();
        ids.push(r["id"].as_i64().unwrap());
    }
    let ids = Arc::new(ids);

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut readers = Vec::new();
    for r in 0..4 {
        let (app, ids, stop, ok, failures) = (
            app.clone(),
            ids.clone(),
            stop.clone(),
            ok.clone(),
            failures.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut i = r;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let id = ids[i % ids.len()];
                let by_id = app.get(id).await;
                let status = by_id.status();
                if status != 200 {
                    let body = by_id.text().await.unwrap_or_default();
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("GET {id}: {status} {body}"));
                    continue;
                }
                let search = app
                    .client
                    .get(app.url("/v1/search/nearby?lat=45&lng=7&radius=5000"))
                    .send()
                    .await
                    .unwrap();
                if search.status() != 200 {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("search: {}", search.status()));
                    continue;
                }
                ok.fetch_add(2, Ordering::Relaxed);
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.stop_replica().await.expect("stop replica");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    redis.stop().await.expect("stop redis");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let ready = readyz(&app).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["cache"], "down", "{ready}");
    assert_eq!(ready["database"]["replicas"][0]["up"], false, "{ready}");
    assert_eq!(ready["database"]["primary"]["up"], true, "{ready}");

    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "failed reads: {failures:?}");
    assert!(
        ok.load(Ordering::Relaxed) > 100,
        "too few reads to mean anything"
    );

    // Writes still work without the replica and the cache.
    let r = app.create(&business("after", 45.0, 7.0)).await;
    assert_eq!(r.status(), 201);
    let after: Value = r.json().await.unwrap();

    // Both come back: the service notices by itself and is ready again.
    cluster.start_replica().await.expect("restart replica");
    redis.restart().await.expect("restart redis");
    let recovered = eventually(Duration::from_secs(15), || async {
        readyz(&app).await["status"] == "ready"
    })
    .await;
    assert!(
        recovered.is_some(),
        "not ready again: {}",
        readyz(&app).await
    );
    let got = app.get(after["id"].as_i64().unwrap()).await;
    assert_eq!(got.status(), 200);
}

/// Stop the primary: writes get a clean 503, reads go on from the replica,
/// and every acknowledged write is there after the restart.
#[tokio::test]
async fn writes_503_while_the_primary_is_down_and_nothing_acknowledged_is_lost() {
    let cluster = harness::PgCluster::start().await.expect("cluster");
    let db = cluster.create_database("primary").await.expect("db");
    let app = spawn_with(pg_settings(
        &db.primary_url,
        std::slice::from_ref(&db.replica_url),
        None,
    ))
    .await;

    let mut acked = Vec::new();
    for i in 0..10 {
        let r = app
            .create(&business(&format!("A{i}"), 1.0, 1.0 + f64::from(i) * 0.001))
            .await;
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        acked.push(body["id"].as_i64().unwrap());
    }
    // Let the replica catch up before the primary goes away.
    let replica = sqlx::PgPool::connect(&db.replica_url).await.unwrap();
    assert!(eventually(Duration::from_secs(10), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM businesses")
            .fetch_one(&replica)
            .await
            .unwrap();
        n == 10
    })
    .await
    .is_some());
    replica.close().await;

    cluster.stop_primary().await.expect("stop primary");

    for _ in 0..3 {
        let r = app.create(&business("lost", 1.0, 1.0)).await;
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key("retry-after"));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unavailable");
    }
    let r = app
        .client
        .delete(app.url(&format!("/v1/businesses/{}", acked[0])))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);

    // Reads go on.
    for id in &acked {
        let r = app.get(*id).await;
        assert_eq!(r.status(), 200, "GET {id} with the primary down");
    }
    let page = app.search("lat=1&lng=1&radius=5000").await;
    assert_eq!(page["total"], 10);
    let ready = readyz(&app).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["database"]["primary"]["up"], false, "{ready}");

    // An instance started while the primary is down loads its index from
    // the replica and serves reads; its writes are 503 too.
    let late = spawn_with(pg_settings(
        &db.primary_url,
        std::slice::from_ref(&db.replica_url),
        None,
    ))
    .await;
    assert_eq!(late.search("lat=1&lng=1&radius=5000").await["total"], 10);
    assert_eq!(late.get(acked[3]).await.status(), 200);
    assert_eq!(late.create(&business("late", 1.0, 1.0)).await.status(), 503);
    late.stop().await;

    cluster.start_primary().await.expect("restart primary");
    let took = eventually(Duration::from_secs(15), || async {
        app.create(&business("back", 1.0, 1.0)).await.status() == 201
    })
    .await;
    assert!(
        took.is_some(),
        "writes did not resume after the primary came back"
    );

    let pool = sqlx::PgPool::connect(&db.primary_url).await.unwrap();
    let stored: Vec<i64> = sqlx::query_scalar("SELECT id FROM businesses ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    for id in &acked {
        assert!(stored.contains(id), "acknowledged write {id} was lost");
    }
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM businesses WHERE name = 'lost'")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(names.is_empty(), "a write answered 503 was stored");
    pool.close().await;
}

/// Redis refuses `SET` for a while (an ACL change) but still answers `GET`,
/// so a write cannot overwrite the cached object: the old object must never
/// be served, while `SET` is refused or after.
#[tokio::test]
async fn a_write_that_cannot_update_the_cache_never_leaves_it_stale() {
    let db = harness::postgres().await.expect("postgres");
    let redis = harness::RedisServer::start().await.expect("redis");
    let mut settings = pg_settings(&db.primary_url, std::slice::from_ref(&db.replica_url), None);
    settings.redis.url = Some(Secret::new(redis.url()));
    settings.redis.prefix = "stale:".into();
    let app = spawn_with(settings).await;

    let created: Value = app
        .create(&business("v1", 5.0, 5.0))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().unwrap();
    let key = format!("stale:biz:{id}");
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let cached: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        cached.unwrap().contains("\"v1\""),
        "the create filled the cache"
    );

    let acl = |rule: &'static str| {
        let mut conn = conn.clone();
        async move {
            let _: () = redis::cmd("ACL")
                .arg("SETUSER")
                .arg("default")
                .arg(rule)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    };
    acl("-set").await;
    let put = app
        .client
        .put(app.url(&format!("/v1/businesses/{id}")))
        .bearer_auth(API_KEY)
        .json(&business("v2", 5.0, 5.0))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    // Redis answers reads and may still hold v1: the service must not serve it.
    for _ in 0..20 {
        let got: Value = app.get(id).await.json().await.unwrap();
        assert_eq!(got["name"], "v2", "served the stale cached object");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    acl("+set").await;
    // Afterwards no stale entry is left and the cache is used again.
    let clean = eventually(Duration::from_secs(10), || {
        let mut conn = conn.clone();
        let key = key.clone();
        async move {
            let v: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            !v.is_some_and(|v| v.contains("\"v1\""))
        }
    })
    .await;
    assert!(clean.is_some(), "the stale entry was never purged");
    assert!(eventually(Duration::from_secs(5), || async {
        readyz(&app).await["cache"] == "up"
    })
    .await
    .is_some());
    let got: Value = app.get(id).await.json().await.unwrap();
    assert_eq!(got["name"], "v2");
    app.stop().await;
}
