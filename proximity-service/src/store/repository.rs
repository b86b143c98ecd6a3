//! What every store speaks: the [`Repository`] trait, its records ([`BusinessRecord`],
//! [`NewRecord`], [`PlaceRow`], [`Change`]), errors and health, and the helpers both
//! implementations share. It imports neither implementation.

use std::fmt;
use std::str::FromStr;

use futures::future::BoxFuture;
use serde::Serialize;

use crate::domain::{Business, BusinessId, NewBusiness, RawBusiness};

/// How a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database needed (e.g. the primary for a write) cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// The write conflicts with existing data.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;
pub type StoreFuture<'a, T> = BoxFuture<'a, StoreResult<T>>;

/// A Postgres WAL position (`pg_lsn`), compared numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl FromStr for Lsn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (hi, lo) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a WAL position (X/Y)"))?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| format!("{s:?}: bad high word"))?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| format!("{s:?}: bad low word"))?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// A stored business as a plain row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct BusinessRecord {
    pub id: i64,
    pub name: String,
    pub category: String,
    pub lat: f64,
    pub lng: f64,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub hours: Option<String>,
}

/// The columns of a write. Built only from validated domain values.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    pub(crate) id: Option<i64>,
    pub(crate) name: String,
    pub(crate) category: String,
    pub(crate) lat: f64,
    pub(crate) lng: f64,
    pub(crate) address: Option<String>,
    pub(crate) phone: Option<String>,
    pub(crate) hours: Option<String>,
}

impl NewRecord {
    /// A row for `new`; `id` is kept when importing data that has its own ids.
    pub fn from_domain(new: &NewBusiness, id: Option<BusinessId>) -> NewRecord {
        NewRecord {
            id: id.map(|i| i.get()),
            name: new.name.as_str().to_owned(),
            category: new.category.as_str().to_owned(),
            lat: new.coordinates.lat_deg(),
            lng: new.coordinates.lng_deg(),
            address: new.address.as_ref().map(|a| a.as_str().to_owned()),
            phone: new.phone.as_ref().map(|p| p.as_str().to_owned()),
            hours: new.hours.as_ref().map(|h| h.as_str().to_owned()),
        }
    }
}

impl BusinessRecord {
    /// Parses a row back into the domain type (rows were validated on the
    /// way in; a failure here means the database was edited by hand).
    pub fn into_domain(self) -> anyhow::Result<Business> {
        let id = self.id;
        let invalid = |e: crate::domain::DomainError| {
            anyhow::anyhow!("business {id} in the database is invalid: {e}")
        };
        let raw = RawBusiness {
            name: self.name,
            category: self.category,
            lat: self.lat,
            lng: self.lng,
            address: self.address,
            phone: self.phone,
            hours: self.hours,
        };
        Ok(NewBusiness::parse(&raw)
            .map_err(invalid)?
            .with_id(BusinessId::parse(id).map_err(invalid)?))
    }
}

/// A row as the index needs it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PlaceRow {
    pub id: i64,
    pub name: String,
    pub category: String,
    pub lat: f64,
    pub lng: f64,
}

/// Rows per chunk sent by [`Repository::snapshot`].
pub const SNAPSHOT_CHUNK: usize = 16_384;

/// Where [`Repository::snapshot`] sends its rows.
pub type RowSink = tokio::sync::mpsc::Sender<Vec<PlaceRow>>;

/// Streams `rows` into `sink` in chunks.
pub(crate) async fn forward_rows<S>(mut rows: S, sink: &RowSink, what: &str) -> StoreResult<()>
where
    S: futures::Stream<Item = Result<PlaceRow, sqlx::Error>> + Unpin,
{
    use futures::TryStreamExt;
    let mut chunk = Vec::with_capacity(SNAPSHOT_CHUNK);
    while let Some(row) = rows.try_next().await.map_err(|e| map_err(what, e))? {
        chunk.push(row);
        if chunk.len() == SNAPSHOT_CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(SNAPSHOT_CHUNK));
            sink.send(full)
                .await
                .map_err(|_| anyhow::anyhow!("{what}: the receiver went away"))?;
        }
    }
    if !chunk.is_empty() {
        sink.send(chunk)
            .await
            .map_err(|_| anyhow::anyhow!("{what}: the receiver went away"))?;
    }
    Ok(())
}

/// One entry of the change feed: the business's current row, or `None` when
/// it no longer exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub seq: i64,
    pub id: i64,
    pub row: Option<PlaceRow>,
}

/// A `changes` row left-joined with its business: `(seq, business_id, name,
/// category, lat, lng)`, the business columns all `NULL` once it is deleted.
pub(crate) type ChangeRow = (
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<f64>,
    Option<f64>,
);

/// The query of [`Repository::changes_since`] (binds `seq`, then `limit`;
/// SQLite reads `$N` as the N-th parameter too).
pub(crate) const CHANGES_SINCE_SQL: &str =
    "SELECT c.seq, c.business_id, b.name, b.category, b.lat, b.lng \
     FROM changes c LEFT JOIN businesses b ON b.id = c.business_id \
     WHERE c.seq > $1 ORDER BY c.seq LIMIT $2";

impl From<ChangeRow> for Change {
    fn from((seq, id, name, category, lat, lng): ChangeRow) -> Change {
        Change {
            seq,
            id,
            row: match (name, category, lat, lng) {
                (Some(name), Some(category), Some(lat), Some(lng)) => Some(PlaceRow {
                    id,
                    name,
                    category,
                    lat,
                    lng,
                }),
                _ => None,
            },
        }
    }
}

/// The result of a write, with the WAL position a later read must reach to
/// see it (Postgres only) and the change-feed sequence of the write (which
/// orders it against every other write, see [`crate::sync::SharedIndex::apply`]).
#[derive(Debug, Clone)]
pub struct Written<T> {
    pub value: T,
    pub lsn: Option<Lsn>,
    pub seq: i64,
}

/// Up/down of one database, for `/readyz` and `/metrics`.
#[derive(Debug, Clone, Serialize)]
pub struct DbStatus {
    pub name: String,
    pub up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoreHealth {
    pub backend: &'static str,
    pub primary: DbStatus,
    pub replicas: Vec<DbStatus>,
}

/// Durable storage of businesses.
pub trait Repository: Send + Sync + 'static {
    /// Applies the schema migrations (idempotent).
    fn migrate(&self) -> StoreFuture<'_, ()>;
    /// Inserts a business; its id is assigned by the database.
    fn create(&self, new: NewRecord) -> StoreFuture<'_, Written<BusinessRecord>>;
    /// Replaces every field of business `id`; `None` when it does not exist.
    fn update(&self, id: i64, new: NewRecord) -> StoreFuture<'_, Option<Written<BusinessRecord>>>;
    /// Deletes business `id`; `None` when it did not exist.
    fn delete(&self, id: i64) -> StoreFuture<'_, Option<Written<()>>>;
    /// Reads business `id` from a database that has replayed at least `after`.
    fn get(&self, id: i64, after: Option<Lsn>) -> StoreFuture<'_, Option<BusinessRecord>>;
    /// Number of businesses (on the primary).
    fn count(&self) -> StoreFuture<'_, i64>;
    /// Inserts (or, for rows with an existing id, replaces) many rows in one
    /// transaction; returns how many were written.
    fn bulk_upsert(&self, rows: Vec<NewRecord>) -> StoreFuture<'_, u64>;
    /// Streams every place to `sink` in chunks of [`SNAPSHOT_CHUNK`] rows (from
    /// one consistent snapshot) and returns the change-feed position that
    /// snapshot corresponds to. Stops early, with an error, if `sink` closes.
    fn snapshot(&self, sink: RowSink) -> StoreFuture<'_, i64>;
    /// Changes after `seq`, oldest first, at most `limit`.
    fn changes_since(&self, seq: i64, limit: i64) -> StoreFuture<'_, Vec<Change>>;
    /// The highest change-feed sequence deleted by [`Repository::prune_changes`].
    fn pruned_through(&self) -> StoreFuture<'_, i64>;
    /// Deletes change-feed rows older than `older_than`; returns how many.
    fn prune_changes(&self, older_than: std::time::Duration) -> StoreFuture<'_, u64>;
    /// Current health of every database behind the store.
    fn health(&self) -> StoreFuture<'_, StoreHealth>;
}

/// Whether a sqlx error means "the database is unreachable" rather than a bug.
pub(crate) fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            // Postgres SQLSTATEs (five characters): 57P01 admin_shutdown,
            // 57P02 crash_shutdown, 57P03 cannot_connect_now, 08xxx connection
            // exceptions, 25006 read-only transaction (a replica), 53300
            // too_many_connections. SQLite result codes (shorter, numeric):
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6) with their extended codes.
            if code.len() < 5 {
                return code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
            }
            code.starts_with("57P") || code.starts_with("08") || code == "25006" || code == "53300"
        }
        sqlx::Error::Protocol(msg) => msg.contains("closed") || msg.contains("terminat"),
        _ => false,
    }
}

/// Maps a sqlx error from `what` to a [`StoreError`].
pub(crate) fn map_err(what: &str, e: sqlx::Error) -> StoreError {
    if is_unavailable(&e) {
        StoreError::Unavailable(format!("{what}: database unavailable"))
    } else {
        StoreError::Unexpected(anyhow::Error::new(e).context(what.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_round_trips_and_orders() {
        let a: Lsn = "0/16B3748".parse().unwrap();
        let b: Lsn = "1/0".parse().unwrap();
        assert!(a < b);
        assert_eq!(a.to_string(), "0/16B3748");
        assert_eq!(b.0, 1 << 32);
        assert!("nope".parse::<Lsn>().is_err());
        assert!("0/XYZ".parse::<Lsn>().is_err());
    }
}
