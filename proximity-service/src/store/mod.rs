//! Durable storage of businesses behind one [`Repository`] trait, with two
//! implementations: [`postgres::PgStore`] (primary + read replicas,
//! read-your-writes through WAL positions) and [`sqlite::SqliteStore`] (the
//! embedded default: one WAL-mode file).
//!
//! Every write also appends to the `changes` table in the same transaction;
//! [`crate::sync`] polls it so every instance's in-memory index follows the
//! database.
//!
//! The store speaks in plain records ([`BusinessRecord`], [`NewRecord`]); the
//! only way to build a `NewRecord` is from validated domain values, so nothing
//! unvalidated reaches SQL.

pub mod postgres;
mod repository;
pub mod sqlite;

use std::sync::Arc;

use crate::configuration::DatabaseSettings;

pub use repository::{
    BusinessRecord, Change, DbStatus, Lsn, NewRecord, PlaceRow, Repository, RowSink, StoreError,
    StoreFuture, StoreHealth, StoreResult, Written, SNAPSHOT_CHUNK,
};

/// Opens the store the settings describe: Postgres when a primary URL is
/// configured, else the embedded SQLite file. Runs the migrations.
pub async fn open(settings: &DatabaseSettings) -> anyhow::Result<Arc<dyn Repository>> {
    let store: Arc<dyn Repository> = match &settings.url {
        Some(_) => Arc::new(postgres::PgStore::connect(settings).await?),
        None => Arc::new(sqlite::SqliteStore::open(&settings.sqlite_path()?).await?),
    };
    store.migrate().await?;
    Ok(store)
}
