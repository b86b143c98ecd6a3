//! Keeps the in-memory [`PlaceIndex`] in step with the database.
//!
//! 1. **Full load** at start: one consistent snapshot of every place (rows
//!    streamed, the index built once with `from_places`) together with the
//!    change-feed position it corresponds to.
//! 2. **Change feed**: every `sync_interval` (200 ms by default) each instance
//!    asks for `changes` rows after its position and applies them (upsert the
//!    business's current row, or remove it if gone). Writers append to
//!    `changes` in the same transaction as the write, in commit order, so
//!    every instance reflects every committed write, from any instance,
//!    within one poll interval plus the query time.
//!
//! The instance that made a write also applies it at once (see
//! `routes::businesses`), so its own index never lags its own writes.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::{BusinessId, Category, Coordinates, DomainError};
use crate::geo::{NearbyPage, NearbyQuery, Place, PlaceIndex};
use crate::metrics::Metrics;
use crate::store::{PlaceRow, Repository};

/// Changes fetched per poll.
const BATCH: i64 = 10_000;

/// Converts a database row into an index entry.
pub fn place_from_row(row: PlaceRow) -> Result<Place, DomainError> {
    Ok(Place {
        id: BusinessId::parse(row.id)?,
        name: row.name,
        category: Category::parse(&row.category)?,
        coordinates: Coordinates::parse(row.lat, row.lng)?,
    })
}

/// The index shared by every request, plus the feed position it reflects.
pub struct SharedIndex {
    index: PlaceIndex,
    last_seq: AtomicI64,
}

impl SharedIndex {
    pub fn new(index: PlaceIndex, seq: i64) -> SharedIndex {
        SharedIndex {
            index,
            last_seq: AtomicI64::new(seq),
        }
    }

    /// Runs a nearby query.
    pub fn search(&self, query: &NearbyQuery) -> Result<NearbyPage, DomainError> {
        self.index.search(query)
    }

    /// Upserts (`Some`) or removes (`None`) business `id`.
    pub fn apply(&self, id: i64, row: Option<PlaceRow>) {
        apply_one(&self.index, id, row);
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn approx_bytes(&self) -> usize {
        self.index.approx_bytes()
    }

    /// The last change-feed sequence applied.
    pub fn last_seq(&self) -> i64 {
        self.last_seq.load(Ordering::Relaxed)
    }
}

fn apply_one(index: &PlaceIndex, id: i64, row: Option<PlaceRow>) {
    let Ok(bid) = BusinessId::parse(id) else {
        return;
    };
    match row.map(place_from_row) {
        Some(Ok(place)) => {
            index.upsert(place);
        }
        Some(Err(e)) => {
            tracing::warn!(id, error = %e, "skipping an invalid row from the change feed");
            index.remove(bid);
        }
        None => {
            index.remove(bid);
        }
    }
}

/// Loads every place from `store` into a fresh index. Rows are converted on
/// a blocking thread while the store is still streaming the next ones.
pub async fn load(store: &dyn Repository) -> anyhow::Result<SharedIndex> {
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<PlaceRow>>(4);
    let convert = tokio::task::spawn_blocking(move || {
        let mut places = Vec::new();
        let mut invalid = 0usize;
        while let Some(chunk) = rx.blocking_recv() {
            places.reserve(chunk.len());
            for row in chunk {
                match place_from_row(row) {
                    Ok(p) => places.push(p),
                    Err(_) => invalid += 1,
                }
            }
        }
        (places, invalid)
    });
    let seq = store.snapshot(tx).await;
    let (places, invalid) = convert.await?;
    let seq = seq?;
    let fetched = started.elapsed();
    let index = tokio::task::spawn_blocking(move || PlaceIndex::from_places(places)).await?;
    tracing::info!(
        places = index.len(),
        invalid,
        seq,
        fetch_ms = fetched.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "loaded the index"
    );
    Ok(SharedIndex::new(index, seq))
}

/// Applies one batch of changes; returns how many there were.
pub async fn poll_once(store: &dyn Repository, index: &SharedIndex) -> anyhow::Result<usize> {
    let from = index.last_seq();
    let changes = store.changes_since(from, BATCH).await?;
    let n = changes.len();
    if let Some(last) = changes.last().map(|c| c.seq) {
        for c in changes {
            apply_one(&index.index, c.id, c.row);
        }
        index.last_seq.store(last, Ordering::Relaxed);
    }
    Ok(n)
}

/// Follows the change feed until the task is aborted.
pub fn spawn_follower(
    store: Arc<dyn Repository>,
    index: Arc<SharedIndex>,
    interval: Duration,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_ok = Instant::now();
        let mut failing = false;
        loop {
            match poll_once(store.as_ref(), &index).await {
                Ok(n) => {
                    last_ok = Instant::now();
                    if failing {
                        tracing::info!("change feed reachable again");
                        failing = false;
                    }
                    metrics
                        .sync_last_seq
                        .store(index.last_seq(), Ordering::Relaxed);
                    metrics.sync_lag_seconds.set(0.0);
                    if n as i64 == BATCH {
                        continue; // more waiting: no sleep
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %format!("{e:#}"), "polling the change feed failed");
                        failing = true;
                    }
                    metrics
                        .sync_lag_seconds
                        .set(last_ok.elapsed().as_secs_f64());
                }
            }
            tokio::time::sleep(interval).await;
        }
    })
}
