//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`
//! (a committed write survives a crash). One writer connection (SQLite
//! serialises writers anyway; a single connection avoids `SQLITE_BUSY`
//! upgrades) and a pool of read-only connections.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use futures::FutureExt;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};

use super::repository::{
    forward_rows, map_err, BusinessRecord, Change, ChangeRow, DbStatus, Lsn, NewRecord, PlaceRow,
    Repository, RowSink, StoreFuture, StoreHealth, Written, CHANGES_SINCE_SQL,
};

/// Rows per INSERT statement (8 bound values each; SQLite allows 32766).
const BULK_CHUNK: usize = 1_000;

/// The SQLite store.
pub struct SqliteStore {
    name: String,
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    pub async fn open(path: &Path) -> anyhow::Result<SqliteStore> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the data directory {}", dir.display()))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("opening the embedded store {}", path.display()))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_lazy_with(options);
        Ok(SqliteStore {
            name: path.display().to_string(),
            writer,
            reader,
        })
    }
}

const RETURNING: &str = "RETURNING id, name, category, lat, lng, address, phone, hours";

impl Repository for SqliteStore {
    fn migrate(&self) -> StoreFuture<'_, ()> {
        async move {
            sqlx::migrate!("./migrations/sqlite")
                .run(&self.writer)
                .await
                .context("running the SQLite migrations")?;
            Ok(())
        }
        .boxed()
    }

    fn create(&self, new: NewRecord) -> StoreFuture<'_, Written<BusinessRecord>> {
        async move {
            let what = "inserting a business";
            let mut tx = self.writer.begin().await.map_err(|e| map_err(what, e))?;
            let row = sqlx::query_as::<_, BusinessRecord>(&format!(
                "INSERT INTO businesses (name, category, lat, lng, address, phone, hours) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) {RETURNING}"
            ))
            .bind(&new.name)
            .bind(&new.category)
            .bind(new.lat)
            .bind(new.lng)
            .bind(&new.address)
            .bind(&new.phone)
            .bind(&new.hours)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| map_err(what, e))?;
            let seq: i64 =
                sqlx::query_scalar("INSERT INTO changes (business_id) VALUES (?) RETURNING seq")
                    .bind(row.id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| map_err(what, e))?;
            tx.commit().await.map_err(|e| map_err(what, e))?;
            Ok(Written {
                value: row,
                lsn: None,
                seq,
            })
        }
        .boxed()
    }

    fn update(&self, id: i64, new: NewRecord) -> StoreFuture<'_, Option<Written<BusinessRecord>>> {
        async move {
            let what = "updating a business";
            let mut tx = self.writer.begin().await.map_err(|e| map_err(what, e))?;
            let row = sqlx::query_as::<_, BusinessRecord>(&format!(
                "UPDATE businesses SET name = ?, category = ?, lat = ?, lng = ?, address = ?, \
                 phone = ?, hours = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') \
                 WHERE id = ? {RETURNING}"
            ))
            .bind(&new.name)
            .bind(&new.category)
            .bind(new.lat)
            .bind(new.lng)
            .bind(&new.address)
            .bind(&new.phone)
            .bind(&new.hours)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| map_err(what, e))?;
            let Some(row) = row else {
                return Ok(None);
            };
            let seq: i64 =
                sqlx::query_scalar("INSERT INTO changes (business_id) VALUES (?) RETURNING seq")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| map_err(what, e))?;
            tx.commit().await.map_err(|e| map_err(what, e))?;
            Ok(Some(Written {
                value: row,
                lsn: None,
                seq,
            }))
        }
        .boxed()
    }

    fn delete(&self, id: i64) -> StoreFuture<'_, Option<Written<()>>> {
        async move {
            let what = "deleting a business";
            let mut tx = self.writer.begin().await.map_err(|e| map_err(what, e))?;
            let n = sqlx::query("DELETE FROM businesses WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| map_err(what, e))?
                .rows_affected();
            if n == 0 {
                return Ok(None);
            }
            let seq: i64 =
                sqlx::query_scalar("INSERT INTO changes (business_id) VALUES (?) RETURNING seq")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| map_err(what, e))?;
            tx.commit().await.map_err(|e| map_err(what, e))?;
            Ok(Some(Written {
                value: (),
                lsn: None,
                seq,
            }))
        }
        .boxed()
    }

    fn get(&self, id: i64, _after: Option<Lsn>) -> StoreFuture<'_, Option<BusinessRecord>> {
        async move {
            sqlx::query_as::<_, BusinessRecord>(
                "SELECT id, name, category, lat, lng, address, phone, hours \
                 FROM businesses WHERE id = ?",
            )
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(|e| map_err("reading a business", e))
        }
        .boxed()
    }

    fn count(&self) -> StoreFuture<'_, i64> {
        async move {
            sqlx::query_scalar("SELECT count(*) FROM businesses")
                .fetch_one(&self.reader)
                .await
                .map_err(|e| map_err("counting businesses", e))
        }
        .boxed()
    }

    fn bulk_upsert(&self, rows: Vec<NewRecord>) -> StoreFuture<'_, u64> {
        async move {
            let what = "bulk-inserting businesses";
            let mut tx = self.writer.begin().await.map_err(|e| map_err(what, e))?;
            let mut written = 0u64;
            for chunk in rows.chunks(BULK_CHUNK) {
                let mut qb: QueryBuilder<'_, Sqlite> = QueryBuilder::new(
                    "INSERT INTO businesses (id, name, category, lat, lng, address, phone, hours) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.id)
                        .push_bind(&r.name)
                        .push_bind(&r.category)
                        .push_bind(r.lat)
                        .push_bind(r.lng)
                        .push_bind(&r.address)
                        .push_bind(&r.phone)
                        .push_bind(&r.hours);
                });
                qb.push(
                    " ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                     category = excluded.category, lat = excluded.lat, lng = excluded.lng, \
                     address = excluded.address, phone = excluded.phone, hours = excluded.hours, \
                     updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') RETURNING id",
                );
                let ids: Vec<i64> = qb
                    .build_query_scalar()
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| map_err(what, e))?;
                if ids.is_empty() {
                    continue;
                }
                let mut feed: QueryBuilder<'_, Sqlite> =
                    QueryBuilder::new("INSERT INTO changes (business_id) ");
                feed.push_values(&ids, |mut b, id| {
                    b.push_bind(*id);
                });
                feed.build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err(what, e))?;
                written += ids.len() as u64;
            }
            tx.commit().await.map_err(|e| map_err(what, e))?;
            Ok(written)
        }
        .boxed()
    }

    fn snapshot(&self, sink: RowSink) -> StoreFuture<'_, i64> {
        async move {
            let what = "loading every place";
            // One read transaction = one WAL snapshot for both queries.
            let mut tx = self.reader.begin().await.map_err(|e| map_err(what, e))?;
            let seq: i64 = sqlx::query_scalar(
                "SELECT max(COALESCE((SELECT max(seq) FROM changes), 0), \
                 (SELECT pruned_through FROM feed_meta WHERE id = 1))",
            )
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| map_err(what, e))?;
            {
                let rows = sqlx::query_as::<_, PlaceRow>(
                    "SELECT id, name, category, lat, lng FROM businesses",
                )
                .fetch(&mut *tx);
                forward_rows(rows, &sink, what).await?;
            }
            tx.commit().await.map_err(|e| map_err(what, e))?;
            Ok(seq)
        }
        .boxed()
    }

    fn changes_since(&self, seq: i64, limit: i64) -> StoreFuture<'_, Vec<Change>> {
        async move {
            let rows = sqlx::query_as::<_, ChangeRow>(CHANGES_SINCE_SQL)
                .bind(seq)
                .bind(limit)
                .fetch_all(&self.reader)
                .await
                .map_err(|e| map_err("polling the change feed", e))?;
            Ok(rows.into_iter().map(Change::from).collect())
        }
        .boxed()
    }

    fn pruned_through(&self) -> StoreFuture<'_, i64> {
        async move {
            sqlx::query_scalar("SELECT pruned_through FROM feed_meta WHERE id = 1")
                .fetch_one(&self.reader)
                .await
                .map_err(|e| map_err("reading the change-feed retention", e))
        }
        .boxed()
    }

    fn prune_changes(&self, older_than: Duration) -> StoreFuture<'_, u64> {
        async move {
            let what = "pruning the change feed";
            let mut tx = self.writer.begin().await.map_err(|e| map_err(what, e))?;
            // A write first, so this transaction holds the write lock throughout.
            sqlx::query("UPDATE feed_meta SET pruned_through = pruned_through WHERE id = 1")
                .execute(&mut *tx)
                .await
                .map_err(|e| map_err(what, e))?;
            let modifier = format!("-{} seconds", older_than.as_secs_f64());
            let upto: Option<i64> = sqlx::query_scalar(
                "SELECT max(seq) FROM changes \
                 WHERE changed_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)",
            )
            .bind(modifier)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| map_err(what, e))?;
            let Some(upto) = upto else {
                return Ok(0);
            };
            let n = sqlx::query("DELETE FROM changes WHERE seq <= ?")
                .bind(upto)
                .execute(&mut *tx)
                .await
                .map_err(|e| map_err(what, e))?
                .rows_affected();
            sqlx::query(
                "UPDATE feed_meta SET pruned_through = max(pruned_through, ?) WHERE id = 1",
            )
            .bind(upto)
            .execute(&mut *tx)
            .await
            .map_err(|e| map_err(what, e))?;
            tx.commit().await.map_err(|e| map_err(what, e))?;
            Ok(n)
        }
        .boxed()
    }

    fn health(&self) -> StoreFuture<'_, StoreHealth> {
        async move {
            let up = sqlx::query("SELECT 1").execute(&self.reader).await.is_ok();
            Ok(StoreHealth {
                backend: "sqlite",
                primary: DbStatus {
                    name: self.name.clone(),
                    up,
                    lag_seconds: None,
                    lag_bytes: None,
                },
                replicas: Vec::new(),
            })
        }
        .boxed()
    }
}
