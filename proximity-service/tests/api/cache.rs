//! Cache freshness when a write's post-commit step never ran on the writer: two instances on
//! one Postgres (primary + replica) and one Redis.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::helpers::{business, eventually, pg_settings, spawn_with, TestApp, API_KEY};

/// Well below the cache TTL (300 s): the time both instances get to serve the new name.
const SETTLE: Duration = Duration::from_secs(5);

async fn name_on(app: &TestApp, id: i64) -> Option<String> {
    let r = app.get(id).await;
    if r.status() != 200 {
        return None;
    }
    let body: Value = r.json().await.ok()?;
    body["name"].as_str().map(str::to_owned)
}

async fn primary_name(pool: &sqlx::PgPool, id: i64) -> String {
    sqlx::query_scalar("SELECT name FROM businesses WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .expect("row")
}

/// Two instances, one business created through `a` and read (so cached) through both.
async fn two_instances_with_a_cached_business(
) -> (TestApp, TestApp, harness::TestDb, harness::TestRedis, i64) {
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
    let created = a.create(&business("Old name", 60.17, 24.94)).await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    for app in [&a, &b] {
        let seen = eventually(SETTLE, || async { name_on(app, id).await.is_some() }).await;
        assert!(seen.is_some(), "both instances serve the new business");
        assert_eq!(name_on(app, id).await.as_deref(), Some("Old name"));
    }
    (a, b, db, redis, id)
}

async fn assert_both_serve(a: &TestApp, b: &TestApp, id: i64, name: &str) {
    for (which, app) in [("first", a), ("second", b)] {
        let took = eventually(SETTLE, || async {
            name_on(app, id).await.as_deref() == Some(name)
        })
        .await;
        assert!(
            took.is_some(),
            "the {which} instance still serves {:?} {SETTLE:?} after the commit of {name:?} \
             (a stale cache entry, which would live until the TTL)",
            name_on(app, id).await
        );
    }
}

/// The client sends a `PUT` and hangs up while its commit is in flight (a deferred trigger
/// makes the commit take 1.5 s); the write commits anyway. Both instances must serve the new
/// name soon after, and the writer itself must have stored the new object in Redis: its
/// post-commit step ran although the client was gone.
#[tokio::test]
async fn cache_is_updated_after_a_write_whose_client_hung_up() {
    let (a, b, db, redis, id) = two_instances_with_a_cached_business().await;
    let pool = sqlx::PgPool::connect(&db.primary_url).await.unwrap();
    for sql in [
        "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.name LIKE 'Hung up%' THEN PERFORM pg_sleep(1.5); END IF; RETURN NULL; END $$",
        "CREATE CONSTRAINT TRIGGER slow_commit AFTER UPDATE ON businesses \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }

    let body =
        json!({"name": "Hung up", "category": "cafe", "lat": 60.17, "lng": 24.94}).to_string();
    let host = a.address.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&host).await.unwrap();
    let request = format!(
        "PUT /v1/businesses/{id} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {API_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    // A client that times out: it gives up while the commit is in flight.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(conn);

    let committed = eventually(SETTLE, || async {
        primary_name(&pool, id).await == "Hung up"
    })
    .await;
    assert!(
        committed.is_some(),
        "the write commits although its client left"
    );
    assert_both_serve(&a, &b, id, "Hung up").await;

    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut rc = client.get_multiplexed_async_connection().await.unwrap();
    let entry: Option<String> = redis::cmd("GET")
        .arg(format!("{}biz:{id}", redis.prefix))
        .query_async(&mut rc)
        .await
        .unwrap();
    let entry = entry.expect("the business is cached");
    let (seq, json) = entry.split_once('|').expect("a sequenced entry");
    assert!(
        seq.parse::<i64>().unwrap() > 0 && json.contains("Hung up"),
        "the writer stored the new object at its write's sequence (not a later fill): {entry}"
    );
    pool.close().await;
}

/// A write whose writer died between its commit and its cache update (here: made with SQL, as
/// the service writes, by no instance at all). The change feed must correct the cache on every
/// instance.
#[tokio::test]
async fn cache_follows_the_change_feed_when_the_writer_never_updated_it() {
    let (a, b, db, _redis, id) = two_instances_with_a_cached_business().await;
    let pool = sqlx::PgPool::connect(&db.primary_url).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(726354)")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE businesses SET name = 'Written by a dead writer', updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("INSERT INTO changes (business_id) VALUES ($1)")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_both_serve(&a, &b, id, "Written by a dead writer").await;
    pool.close().await;
}

/// A replica whose replay is paused falls further behind than `replica_max_lag_ms` (1 s by
/// default): a read that fills the cache must then come from the primary, not cache the
/// replica's old row for the TTL.
#[tokio::test]
async fn cache_is_not_filled_from_a_replica_lagging_beyond_the_bound() {
    let cluster = harness::PgCluster::start().await.expect("cluster");
    let db = cluster.create_database("maxlag").await.expect("db");
    let redis = harness::redis().await.expect("redis");
    let settings = || {
        pg_settings(
            &db.primary_url,
            std::slice::from_ref(&db.replica_url),
            Some(&redis),
        )
    };
    assert_eq!(settings().database.replica_max_lag_ms, 1000, "the default");
    let a = spawn_with(settings()).await;
    let b = spawn_with(settings()).await;
    let created = a.create(&business("Before", 10.0, 10.0)).await;
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let replica = sqlx::PgPool::connect(&db.replica_url).await.unwrap();
    let replica_name = || async {
        sqlx::query_scalar::<_, String>("SELECT name FROM businesses WHERE id = $1")
            .bind(id)
            .fetch_optional(&replica)
            .await
            .unwrap()
    };
    let replayed = eventually(SETTLE, || async {
        replica_name().await.as_deref() == Some("Before")
    })
    .await;
    assert!(replayed.is_some(), "the replica replays the insert");
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&replica)
        .await
        .unwrap();
    let put = a
        .client
        .put(a.url(&format!("/v1/businesses/{id}")))
        .bearer_auth(API_KEY)
        .json(&business("After", 10.0, 10.0))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    // Well past the bound, and the entry gone (as at its TTL), so B reads the database.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        replica_name().await.as_deref(),
        Some("Before"),
        "replay is paused"
    );
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut rc = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}biz:{id}", redis.prefix);
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut rc)
        .await
        .unwrap();

    assert_eq!(
        name_on(&b, id).await.as_deref(),
        Some("After"),
        "a replica lagging beyond replica_max_lag_ms answered a read that fills the cache"
    );
    let entry: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut rc)
        .await
        .unwrap();
    assert!(entry.is_some_and(|e| e.contains("After")));

    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&replica)
        .await
        .unwrap();
    replica.close().await;
}
