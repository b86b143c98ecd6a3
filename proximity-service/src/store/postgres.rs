//! Postgres: writes on the primary, reads on streaming replicas.
//!
//! - **Routing**: reads rotate over the replicas that answered their last
//!   probe; a replica that fails a read is marked down and the next one (and
//!   finally the primary) is tried. A monitor task probes every database every
//!   250 ms and records each replica's `pg_last_wal_replay_lsn()` and lag.
//! - **Read-your-writes**: after each write commits, the primary's
//!   `pg_current_wal_lsn()` is returned with the result. A read that carries
//!   that position only goes to a replica whose replayed position is at least
//!   as far, else to the primary.
//! - **Staleness bound**: a business read (whose answer fills the cache for
//!   its TTL) skips replicas whose measured replay lag exceeds
//!   `replica_max_lag_ms` (1 s by default), so a replica minutes behind is
//!   not cached for minutes; the primary answers instead.
//! - **Primary down**: writes fail with [`StoreError::Unavailable`] (HTTP 503);
//!   reads carry on from the replicas.
//! - **Change feed**: each write takes a transaction-scoped advisory lock
//!   before appending to `changes`, so `seq` order equals commit order.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::FutureExt;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::ConnectOptions;

use super::repository::{
    forward_rows, map_err, BusinessRecord, Change, ChangeRow, DbStatus, Lsn, NewRecord, PlaceRow,
    Repository, RowSink, StoreError, StoreFuture, StoreHealth, StoreResult, Written,
    CHANGES_SINCE_SQL,
};
use crate::configuration::DatabaseSettings;

/// Key of the advisory lock serialising change-feed appends.
const CHANGE_FEED_LOCK: i64 = 726_354;
/// Rows per statement in [`PgStore::bulk_upsert`].
const BULK_CHUNK: usize = 5_000;

struct Db {
    name: String,
    pool: PgPool,
    up: AtomicBool,
    /// Last replayed (replica) or current (primary) WAL position seen.
    lsn: AtomicU64,
    lag: Mutex<(Option<f64>, Option<u64>)>,
}

impl Db {
    fn new(name: String, pool: PgPool) -> Arc<Db> {
        Arc::new(Db {
            name,
            pool,
            up: AtomicBool::new(true),
            lsn: AtomicU64::new(0),
            lag: Mutex::new((None, None)),
        })
    }

    fn status(&self) -> DbStatus {
        let (lag_seconds, lag_bytes) = *self.lag.lock().expect("lag lock");
        DbStatus {
            name: self.name.clone(),
            up: self.up.load(Ordering::Relaxed),
            lag_seconds,
            lag_bytes,
        }
    }
}

/// The Postgres store.
pub struct PgStore {
    primary: Arc<Db>,
    replicas: Vec<Arc<Db>>,
    next: AtomicUsize,
    /// Replay lag beyond which a replica does not answer business reads.
    max_lag_secs: f64,
    monitor: tokio::task::JoinHandle<()>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.monitor.abort();
    }
}

fn pool(
    url: &str,
    settings: &DatabaseSettings,
    acquire_timeout: Duration,
) -> anyhow::Result<(String, PgPool)> {
    let options: PgConnectOptions = url
        .parse()
        .context("parsing a Postgres URL (value not shown: it may hold a password)")?;
    let options = options.disable_statement_logging();
    let name = format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    );
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(0)
        .acquire_timeout(acquire_timeout)
        .idle_timeout(Duration::from_secs(60))
        .connect_lazy_with(options);
    Ok((name, pool))
}

impl PgStore {
    /// Builds the pools (lazily connecting) and checks the primary answers.
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<PgStore> {
        let url = settings
            .url
            .as_ref()
            .context("no primary database URL configured")?;
        let (name, primary_pool) = pool(url.expose(), settings, settings.acquire_timeout())?;
        let reachable = match sqlx::query("SELECT 1").execute(&primary_pool).await {
            Ok(_) => true,
            Err(e)
                if !settings.replica_urls.is_empty() && super::repository::is_unavailable(&e) =>
            {
                tracing::warn!(
                    primary = %name,
                    "the primary is unreachable at start: serving reads from the replicas; \
                     writes answer 503 until it is back"
                );
                false
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("connecting to the primary database {name}")))
            }
        };
        let primary = Db::new(name, primary_pool);
        primary.up.store(reachable, Ordering::Relaxed);
        let mut replicas = Vec::new();
        for url in &settings.replica_urls {
            // A dead replica must be skipped quickly, so its pool gives up sooner.
            let timeout = settings.acquire_timeout().min(Duration::from_millis(500));
            let (name, pool) = pool(url.expose(), settings, timeout)?;
            replicas.push(Db::new(name, pool));
        }
        let monitor = tokio::spawn(monitor(primary.clone(), replicas.clone()));
        Ok(PgStore {
            primary,
            replicas,
            next: AtomicUsize::new(0),
            max_lag_secs: settings.replica_max_lag_ms as f64 / 1000.0,
            monitor,
        })
    }

    async fn current_lsn(&self) -> Option<Lsn> {
        let text: Result<String, _> = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
            .fetch_one(&self.primary.pool)
            .await;
        text.ok().and_then(|t| t.parse().ok())
    }

    async fn write_tx(
        &self,
        what: &str,
    ) -> StoreResult<sqlx::Transaction<'static, sqlx::Postgres>> {
        let mut tx = self.primary.pool.begin().await.map_err(|e| {
            self.primary.up.store(false, Ordering::Relaxed);
            map_err(what, e)
        })?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CHANGE_FEED_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(|e| map_err(what, e))?;
        Ok(tx)
    }

    /// [`Self::read_candidates`] without the replicas lagging more than the
    /// configured maximum (a lag not measured yet does not exclude one).
    fn fresh_candidates(&self, after: Option<Lsn>) -> Vec<Arc<Db>> {
        let mut candidates = self.read_candidates(after);
        candidates.retain(|r| {
            let (lag, _) = *r.lag.lock().expect("lag lock");
            lag.is_none_or(|l| l <= self.max_lag_secs)
        });
        candidates
    }

    /// The replicas to try for a read needing `after`, in rotation order.
    fn read_candidates(&self, after: Option<Lsn>) -> Vec<Arc<Db>> {
        let n = self.replicas.len();
        if n == 0 {
            return Vec::new();
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.replicas[(start + i) % n])
            .filter(|r| r.up.load(Ordering::Relaxed))
            .filter(|r| after.is_none_or(|a| r.lsn.load(Ordering::Relaxed) >= a.0))
            .cloned()
            .collect()
    }
}

/// `rows` without the earlier rows of a repeated explicit id, in order: the
/// last row wins, as on SQLite (Postgres refuses to upsert one row twice in
/// a statement).
fn last_row_per_id(rows: Vec<NewRecord>) -> Vec<NewRecord> {
    let mut last = std::collections::HashMap::new();
    for (i, id) in rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, r.id?)))
    {
        last.insert(id, i);
    }
    if last.len() == rows.iter().filter(|r| r.id.is_some()).count() {
        return rows;
    }
    rows.into_iter()
        .enumerate()
        .filter(|(i, r)| r.id.is_none_or(|id| last[&id] == *i))
        .map(|(_, r)| r)
        .collect()
}

const SELECT_BUSINESS: &str =
    "SELECT id, name, category, lat, lng, address, phone, hours FROM businesses WHERE id = $1";

async fn fetch_business(pool: &PgPool, id: i64) -> Result<Option<BusinessRecord>, sqlx::Error> {
    sqlx::query_as::<_, BusinessRecord>(SELECT_BUSINESS)
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// One consistent snapshot of every place from `pool`, streamed to `sink`.
async fn snapshot_from(pool: &PgPool, sink: &RowSink) -> StoreResult<i64> {
    let what = "loading every place";
    let mut tx = pool.begin().await.map_err(unexpected(what))?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(unexpected(what))?;
    let seq: i64 = sqlx::query_scalar(
        "SELECT GREATEST(COALESCE((SELECT max(seq) FROM changes), 0), \
         (SELECT pruned_through FROM feed_meta WHERE id = 1))",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(unexpected(what))?;
    {
        let rows =
            sqlx::query_as::<_, PlaceRow>("SELECT id, name, category, lat, lng FROM businesses")
                .fetch(&mut *tx);
        forward_rows(rows, sink, what).await?;
    }
    tx.commit().await.map_err(unexpected(what))?;
    Ok(seq)
}

/// Probes every database every 250 ms.
async fn monitor(primary: Arc<Db>, replicas: Vec<Arc<Db>>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let probe = tokio::time::timeout(
            Duration::from_secs(2),
            sqlx::query_scalar::<_, String>("SELECT pg_current_wal_lsn()::text")
                .fetch_one(&primary.pool),
        )
        .await;
        let primary_lsn = match probe {
            Ok(Ok(text)) => {
                primary.up.store(true, Ordering::Relaxed);
                let lsn = text.parse::<Lsn>().ok();
                if let Some(l) = lsn {
                    primary.lsn.store(l.0, Ordering::Relaxed);
                }
                lsn
            }
            _ => {
                primary.up.store(false, Ordering::Relaxed);
                None
            }
        };
        for r in &replicas {
            let probe = tokio::time::timeout(
                Duration::from_secs(2),
                sqlx::query_as::<_, (Option<String>, Option<f64>)>(
                    "SELECT pg_last_wal_replay_lsn()::text, \
                     CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
                     ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 END",
                )
                .fetch_one(&r.pool),
            )
            .await;
            match probe {
                Ok(Ok((lsn, lag))) => {
                    r.up.store(true, Ordering::Relaxed);
                    // A server that is not in recovery reports NULL: it is
                    // a primary, so it has everything.
                    let lsn = match lsn.and_then(|t| t.parse::<Lsn>().ok()) {
                        Some(l) => l,
                        None => Lsn(u64::MAX),
                    };
                    r.lsn.store(lsn.0, Ordering::Relaxed);
                    let bytes = primary_lsn.map(|p| p.0.saturating_sub(lsn.0));
                    *r.lag.lock().expect("lag lock") = (Some(lag.unwrap_or(0.0).max(0.0)), bytes);
                }
                _ => {
                    r.up.store(false, Ordering::Relaxed);
                }
            }
        }
    }
}

fn unexpected(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| map_err(what, e)
}

impl Repository for PgStore {
    fn migrate(&self) -> StoreFuture<'_, ()> {
        async move {
            if !self.primary.up.load(Ordering::Relaxed) {
                // Started with the primary down (see `connect`): the schema
                // is whatever the primary last had; migrate on the next start.
                tracing::warn!("skipping migrations: the primary is unreachable");
                return Ok(());
            }
            sqlx::migrate!("./migrations/postgres")
                .run(&self.primary.pool)
                .await
                .context("running the Postgres migrations")?;
            Ok(())
        }
        .boxed()
    }

    fn create(&self, new: NewRecord) -> StoreFuture<'_, Written<BusinessRecord>> {
        async move {
            let what = "inserting a business";
            let mut tx = self.write_tx(what).await?;
            let row = sqlx::query_as::<_, BusinessRecord>(
                "INSERT INTO businesses (name, category, lat, lng, address, phone, hours) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 RETURNING id, name, category, lat, lng, address, phone, hours",
            )
            .bind(&new.name)
            .bind(&new.category)
            .bind(new.lat)
            .bind(new.lng)
            .bind(&new.address)
            .bind(&new.phone)
            .bind(&new.hours)
            .fetch_one(&mut *tx)
            .await
            .map_err(unexpected(what))?;
            let seq: i64 =
                sqlx::query_scalar("INSERT INTO changes (business_id) VALUES ($1) RETURNING seq")
                    .bind(row.id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(unexpected(what))?;
            tx.commit().await.map_err(unexpected(what))?;
            Ok(Written {
                value: row,
                lsn: self.current_lsn().await,
                seq,
            })
        }
        .boxed()
    }

    fn update(&self, id: i64, new: NewRecord) -> StoreFuture<'_, Option<Written<BusinessRecord>>> {
        async move {
            let what = "updating a business";
            let mut tx = self.write_tx(what).await?;
            let row = sqlx::query_as::<_, BusinessRecord>(
                "UPDATE businesses SET name = $2, category = $3, lat = $4, lng = $5, \
                 address = $6, phone = $7, hours = $8, updated_at = now() WHERE id = $1 \
                 RETURNING id, name, category, lat, lng, address, phone, hours",
            )
            .bind(id)
            .bind(&new.name)
            .bind(&new.category)
            .bind(new.lat)
            .bind(new.lng)
            .bind(&new.address)
            .bind(&new.phone)
            .bind(&new.hours)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unexpected(what))?;
            let Some(row) = row else {
                return Ok(None);
            };
            let seq: i64 =
                sqlx::query_scalar("INSERT INTO changes (business_id) VALUES ($1) RETURNING seq")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(unexpected(what))?;
            tx.commit().await.map_err(unexpected(what))?;
            Ok(Some(Written {
                value: row,
                lsn: self.current_lsn().await,
                seq,
            }))
        }
        .boxed()
    }

    fn delete(&self, id: i64) -> StoreFuture<'_, Option<Written<()>>> {
        async move {
            let what = "deleting a business";
            let mut tx = self.write_tx(what).await?;
            let deleted = sqlx::query("DELETE FROM businesses WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(unexpected(what))?
                .rows_affected();
            if deleted == 0 {
                return Ok(None);
            }
            let seq: i64 =
                sqlx::query_scalar("INSERT INTO changes (business_id) VALUES ($1) RETURNING seq")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(unexpected(what))?;
            tx.commit().await.map_err(unexpected(what))?;
            Ok(Some(Written {
                value: (),
                lsn: self.current_lsn().await,
                seq,
            }))
        }
        .boxed()
    }

    fn get(&self, id: i64, after: Option<Lsn>) -> StoreFuture<'_, Option<BusinessRecord>> {
        async move {
            let what = "reading a business";
            for r in self.fresh_candidates(after) {
                match fetch_business(&r.pool, id).await {
                    Ok(row) => return Ok(row),
                    Err(e) if super::repository::is_unavailable(&e) => {
                        tracing::warn!(replica = %r.name, "replica read failed; trying the next");
                        r.up.store(false, Ordering::Relaxed);
                    }
                    // E.g. a query cancelled by a recovery conflict: the next
                    // replica or the primary can answer this read.
                    Err(e) => {
                        tracing::warn!(replica = %r.name, error = %e, "replica read failed; trying the next");
                    }
                }
            }
            match fetch_business(&self.primary.pool, id).await {
                Ok(row) => Ok(row),
                Err(e) if super::repository::is_unavailable(&e) => {
                    self.primary.up.store(false, Ordering::Relaxed);
                    // Last resort: a replica that may not have the client's
                    // latest write, which beats no answer while the primary
                    // is down (it cannot get further ahead anyway).
                    for r in self.read_candidates(None) {
                        if let Ok(row) = fetch_business(&r.pool, id).await {
                            return Ok(row);
                        }
                    }
                    Err(map_err(what, e))
                }
                Err(e) => Err(map_err(what, e)),
            }
        }
        .boxed()
    }

    fn count(&self) -> StoreFuture<'_, i64> {
        async move {
            sqlx::query_scalar("SELECT count(*) FROM businesses")
                .fetch_one(&self.primary.pool)
                .await
                .map_err(unexpected("counting businesses"))
        }
        .boxed()
    }

    fn bulk_upsert(&self, rows: Vec<NewRecord>) -> StoreFuture<'_, u64> {
        async move {
            let what = "bulk-inserting businesses";
            let rows = last_row_per_id(rows);
            let mut tx = self.write_tx(what).await?;
            let mut written = 0u64;
            let mut explicit_ids = false;
            for chunk in rows.chunks(BULK_CHUNK) {
                explicit_ids |= chunk.iter().any(|r| r.id.is_some());
                let ids: Vec<Option<i64>> = chunk.iter().map(|r| r.id).collect();
                let names: Vec<&str> = chunk.iter().map(|r| r.name.as_str()).collect();
                let cats: Vec<&str> = chunk.iter().map(|r| r.category.as_str()).collect();
                let lats: Vec<f64> = chunk.iter().map(|r| r.lat).collect();
                let lngs: Vec<f64> = chunk.iter().map(|r| r.lng).collect();
                let addrs: Vec<Option<&str>> = chunk.iter().map(|r| r.address.as_deref()).collect();
                let phones: Vec<Option<&str>> = chunk.iter().map(|r| r.phone.as_deref()).collect();
                let hours: Vec<Option<&str>> = chunk.iter().map(|r| r.hours.as_deref()).collect();
                let n: i64 = sqlx::query_scalar(
                    "WITH ins AS ( \
                       INSERT INTO businesses (id, name, category, lat, lng, address, phone, hours) \
                       SELECT COALESCE(t.id, nextval(pg_get_serial_sequence('businesses', 'id'))), \
                              t.name, t.category, t.lat, t.lng, t.address, t.phone, t.hours \
                       FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::float8[], $5::float8[], \
                                   $6::text[], $7::text[], $8::text[]) \
                            AS t(id, name, category, lat, lng, address, phone, hours) \
                       ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, \
                          category = EXCLUDED.category, lat = EXCLUDED.lat, lng = EXCLUDED.lng, \
                          address = EXCLUDED.address, phone = EXCLUDED.phone, \
                          hours = EXCLUDED.hours, updated_at = now() \
                       RETURNING id), \
                     feed AS (INSERT INTO changes (business_id) SELECT id FROM ins RETURNING 1) \
                     SELECT count(*) FROM feed",
                )
                .bind(&ids)
                .bind(&names)
                .bind(&cats)
                .bind(&lats)
                .bind(&lngs)
                .bind(&addrs)
                .bind(&phones)
                .bind(&hours)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(db) if db.code().as_deref() == Some("21000") => {
                        StoreError::Conflict("the same id appears twice in one batch".into())
                    }
                    _ => map_err(what, e),
                })?;
                written += n as u64;
            }
            if explicit_ids {
                sqlx::query(
                    "SELECT setval(pg_get_serial_sequence('businesses', 'id'), \
                     GREATEST((SELECT max(id) FROM businesses), 1))",
                )
                .execute(&mut *tx)
                .await
                .map_err(unexpected(what))?;
            }
            tx.commit().await.map_err(unexpected(what))?;
            Ok(written)
        }
        .boxed()
    }

    fn snapshot(&self, sink: RowSink) -> StoreFuture<'_, i64> {
        async move {
            match snapshot_from(&self.primary.pool, &sink).await {
                Err(StoreError::Unavailable(msg)) => {
                    // Primary down: load from a replica instead. Rows already
                    // sent are sent again; the index keeps the last copy of an id.
                    for r in self.read_candidates(None) {
                        tracing::warn!(replica = %r.name, "loading the index from a replica");
                        match snapshot_from(&r.pool, &sink).await {
                            Err(StoreError::Unavailable(_)) => continue,
                            other => return other,
                        }
                    }
                    Err(StoreError::Unavailable(msg))
                }
                other => other,
            }
        }
        .boxed()
    }

    fn changes_since(&self, seq: i64, limit: i64) -> StoreFuture<'_, Vec<Change>> {
        async move {
            let sql = CHANGES_SINCE_SQL;
            let rows = match sqlx::query_as::<_, ChangeRow>(sql)
                .bind(seq)
                .bind(limit)
                .fetch_all(&self.primary.pool)
                .await
            {
                Ok(rows) => rows,
                Err(e) if super::repository::is_unavailable(&e) => {
                    // Primary down: follow a replica, which has every
                    // change the primary shipped before it stopped.
                    let mut found = None;
                    for r in self.read_candidates(None) {
                        if let Ok(rows) = sqlx::query_as::<_, ChangeRow>(sql)
                            .bind(seq)
                            .bind(limit)
                            .fetch_all(&r.pool)
                            .await
                        {
                            found = Some(rows);
                            break;
                        }
                    }
                    found.ok_or_else(|| map_err("polling the change feed", e))?
                }
                Err(e) => return Err(map_err("polling the change feed", e)),
            };
            Ok(rows.into_iter().map(Change::from).collect())
        }
        .boxed()
    }

    fn pruned_through(&self) -> StoreFuture<'_, i64> {
        async move {
            let sql = "SELECT pruned_through FROM feed_meta WHERE id = 1";
            match sqlx::query_scalar(sql).fetch_one(&self.primary.pool).await {
                Ok(v) => Ok(v),
                Err(e) if super::repository::is_unavailable(&e) => {
                    for r in self.read_candidates(None) {
                        if let Ok(v) = sqlx::query_scalar(sql).fetch_one(&r.pool).await {
                            return Ok(v);
                        }
                    }
                    Err(map_err("reading the change-feed retention", e))
                }
                Err(e) => Err(map_err("reading the change-feed retention", e)),
            }
        }
        .boxed()
    }

    fn prune_changes(&self, older_than: Duration) -> StoreFuture<'_, u64> {
        async move {
            let what = "pruning the change feed";
            let mut tx = self.write_tx(what).await?;
            let upto: Option<i64> = sqlx::query_scalar(
                "SELECT max(seq) FROM changes \
                 WHERE changed_at < now() - make_interval(secs => $1)",
            )
            .bind(older_than.as_secs_f64())
            .fetch_one(&mut *tx)
            .await
            .map_err(unexpected(what))?;
            let Some(upto) = upto else {
                return Ok(0);
            };
            let n = sqlx::query("DELETE FROM changes WHERE seq <= $1")
                .bind(upto)
                .execute(&mut *tx)
                .await
                .map_err(unexpected(what))?
                .rows_affected();
            sqlx::query(
                "UPDATE feed_meta SET pruned_through = GREATEST(pruned_through, $1) WHERE id = 1",
            )
            .bind(upto)
            .execute(&mut *tx)
            .await
            .map_err(unexpected(what))?;
            tx.commit().await.map_err(unexpected(what))?;
            Ok(n)
        }
        .boxed()
    }

    fn health(&self) -> StoreFuture<'_, StoreHealth> {
        async move {
            Ok(StoreHealth {
                backend: "postgres",
                primary: self.primary.status(),
                replicas: self.replicas.iter().map(|r| r.status()).collect(),
            })
        }
        .boxed()
    }
}
