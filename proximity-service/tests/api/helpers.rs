//! Shared test helpers: spawn the real application on port 0, or build the
//! router in-process over a temporary embedded store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proximity_service::cache::Cache;
use proximity_service::configuration::{Secret, Settings};
use proximity_service::metrics::Metrics;
use proximity_service::startup::{self, AppState};
use proximity_service::{store, sync};
use serde_json::{json, Value};

pub const API_KEY: &str = "test-key-1";

/// A running instance.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn create(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/businesses"))
            .bearer_auth(API_KEY)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, id: i64) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/v1/businesses/{id}")))
            .send()
            .await
            .expect("request")
    }

    pub async fn search(&self, query: &str) -> Value {
        let r = self
            .client
            .get(self.url(&format!("/v1/search/nearby?{query}")))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200);
        r.json().await.expect("json")
    }

    /// Stops serving (graceful) and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Settings for tests: port 0, one key, fast change feed, no rate limit.
pub fn base_settings() -> Settings {
    let mut s = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        api_keys: vec![Secret::new(API_KEY.to_owned())],
        sync_interval_ms: 100,
        ..Settings::default()
    };
    s.database.acquire_timeout_ms = 1000;
    s.database.max_connections = 8;
    s
}

/// Settings on a Postgres test database (primary + replica) and, if given, Redis.
pub fn pg_settings(
    primary: &str,
    replicas: &[String],
    redis: Option<&harness::TestRedis>,
) -> Settings {
    let mut s = base_settings();
    s.database.url = Some(Secret::new(primary.to_owned()));
    s.database.replica_urls = replicas.iter().map(|r| Secret::new(r.clone())).collect();
    if let Some(r) = redis {
        s.redis.url = Some(Secret::new(r.url.clone()));
        s.redis.prefix = r.prefix.clone();
    }
    s
}

/// Starts the application with `settings` on a free port.
pub async fn spawn_with(settings: Settings) -> TestApp {
    let app = startup::build(settings).await.expect("build app");
    let port = app.port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

/// The real application on a fresh Postgres database (primary + replica) and Redis.
pub async fn spawn_app() -> (TestApp, harness::TestDb) {
    let db = harness::postgres().await.expect("postgres");
    let redis = harness::redis().await.expect("redis");
    let settings = pg_settings(
        &db.primary_url,
        std::slice::from_ref(&db.replica_url),
        Some(&redis),
    );
    (spawn_with(settings).await, db)
}

/// The real application on the embedded store in `dir`.
pub async fn spawn_embedded(dir: &std::path::Path) -> TestApp {
    let mut settings = base_settings();
    settings.database.data_dir = Some(dir.to_path_buf());
    spawn_with(settings).await
}

/// In-process state over a temporary SQLite store (keep the dir alive).
pub async fn inprocess_state(settings: Settings) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings;
    settings.database.data_dir = Some(dir.path().to_path_buf());
    let store = store::open(&settings.database).await.expect("store");
    let index = Arc::new(sync::load(store.as_ref()).await.expect("index"));
    let state = AppState::new(&settings, store, index, Cache::disabled(), Metrics::new());
    (state, dir)
}

/// A valid create body around (lat, lng).
pub fn business(name: &str, lat: f64, lng: f64) -> Value {
    json!({"name": name, "category": "cafe", "lat": lat, "lng": lng,
           "address": "1 Main St", "phone": "+1 555 0100", "hours": "Mo-Fr 08:00-18:00"})
}

/// Polls `f` until it returns true or `timeout` passes; returns the time taken.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if f().await {
            return Some(started.elapsed());
        }
        if started.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Rows in `businesses` of a Postgres database.
pub async fn pg_count(url: &str) -> i64 {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM businesses")
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;
    n
}
