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
//! 3. **Retention**: once a minute each instance deletes feed rows older than
//!    the retention (1 day) and the store records the highest deleted
//!    sequence; an instance whose position is below it reloads fully (step 1)
//!    instead of missing the deleted changes.
//!
//! 4. **Cache**: the ids of every applied batch are invalidated in Redis unless
//!    their entry already holds that change or a newer one
//!    ([`Cache::invalidate_older`]), so every instance corrects an entry the
//!    writer never updated (a hung-up client, a writer that died). A reload
//!    cannot tell which ids changed, so it has the cache purged.
//!
//! The instance that made a write also applies it at once (see
//! `routes::businesses`), so its own index never lags its own writes. Those
//! local applications are ordered by the write's feed sequence
//! ([`SharedIndex::apply`]): two writes to one id whose handlers finish in the
//! opposite order of their commits, or a handler that finishes after the feed
//! already applied a newer row, never leave the older row in the index.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use crate::cache::Cache;
use crate::domain::{BusinessId, Category, Coordinates, DomainError};
use crate::geo::{NearbyPage, NearbyQuery, Place, PlaceIndex};
use crate::metrics::Metrics;
use crate::store::{Change, PlaceRow, Repository};

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
    /// Replaced wholesale by a reload; the lock is held only to clone the
    /// (cheap, `Arc`-backed) handle.
    index: RwLock<PlaceIndex>,
    last_seq: AtomicI64,
    /// Feed sequence of the newest local write applied per id, for writes
    /// the feed has not reached yet (entries at or below `last_seq` are
    /// dropped). Its lock also serialises local applications with feed batches.
    ahead: Mutex<HashMap<i64, i64>>,
}

impl SharedIndex {
    pub fn new(index: PlaceIndex, seq: i64) -> SharedIndex {
        SharedIndex {
            index: RwLock::new(index),
            last_seq: AtomicI64::new(seq),
            ahead: Mutex::new(HashMap::new()),
        }
    }

    fn current(&self) -> PlaceIndex {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn ahead(&self) -> MutexGuard<'_, HashMap<i64, i64>> {
        self.ahead.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Swaps in a freshly loaded index (after the feed was pruned past us).
    fn replace(&self, fresh: SharedIndex) {
        let mut ahead = self.ahead();
        let seq = fresh.last_seq();
        *self.index.write().unwrap_or_else(|e| e.into_inner()) = fresh.current();
        self.last_seq.store(seq, Ordering::Relaxed);
        ahead.retain(|_, s| *s > seq);
    }

    /// Applies a batch of feed changes (oldest first) and advances the position.
    fn apply_changes(&self, changes: Vec<Change>) {
        let Some(last) = changes.last().map(|c| c.seq) else {
            return;
        };
        let mut ahead = self.ahead();
        let current = self.current();
        for c in changes {
            // A local write of this id with a later sequence is already in
            // the index; the row read with this older change may predate it.
            if ahead.get(&c.id).is_some_and(|&s| s > c.seq) {
                continue;
            }
            apply_one(&current, c.id, c.row);
        }
        self.last_seq.store(last, Ordering::Relaxed);
        ahead.retain(|_, s| *s > last);
    }

    /// Runs a nearby query.
    pub fn search(&self, query: &NearbyQuery) -> Result<NearbyPage, DomainError> {
        self.current().search(query)
    }

    /// Applies this instance's own write, committed at feed sequence `seq`:
    /// upserts (`Some`) or removes (`None`) business `id`, unless a newer
    /// write of `id` was applied already (a concurrent write whose handler
    /// finished first, or the feed, which applies the current row).
    pub fn apply(&self, seq: i64, id: i64, row: Option<PlaceRow>) {
        let mut ahead = self.ahead();
        if seq <= self.last_seq() {
            return;
        }
        match ahead.get(&id) {
            Some(&newer) if newer >= seq => return,
            _ => {
                ahead.insert(id, seq);
            }
        }
        apply_one(&self.current(), id, row);
    }

    pub fn len(&self) -> usize {
        self.current().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn approx_bytes(&self) -> usize {
        self.current().approx_bytes()
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

/// What [`poll_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// Applied this many changes.
    Applied(usize),
    /// The feed was pruned past this instance's position: it reloaded fully.
    Reloaded,
}

/// Applies one batch of changes, or reloads the whole index if changes it
/// has not seen were pruned from the feed.
pub async fn poll_once(store: &dyn Repository, index: &SharedIndex) -> anyhow::Result<Polled> {
    poll_and_invalidate(store, index, &Cache::disabled()).await
}

/// [`poll_once`], then invalidates the cache entries of what changed.
pub async fn poll_and_invalidate(
    store: &dyn Repository,
    index: &SharedIndex,
    cache: &Cache,
) -> anyhow::Result<Polled> {
    let from = index.last_seq();
    let changes = store.changes_since(from, BATCH).await?;
    // Read after the changes: a prune that ran in between shows up here.
    if store.pruned_through().await? > from {
        tracing::warn!(
            position = from,
            "the change feed was pruned past this instance; reloading the index"
        );
        let fresh = load(store).await?;
        index.replace(fresh);
        cache.invalidate_all();
        return Ok(Polled::Reloaded);
    }
    let n = changes.len();
    let mut newest: HashMap<i64, i64> = HashMap::with_capacity(n);
    for c in &changes {
        newest.insert(c.id, c.seq); // oldest first: the last one wins
    }
    index.apply_changes(changes);
    let newest: Vec<(i64, i64)> = newest.into_iter().collect();
    cache.invalidate_older(&newest).await;
    Ok(Polled::Applied(n))
}

/// How the follower polls and prunes the change feed.
#[derive(Debug, Clone, Copy)]
pub struct FollowerSettings {
    /// Poll period.
    pub interval: Duration,
    /// Changes older than this are deleted (by whichever instance gets there first).
    pub retention: Duration,
}

/// How often each instance tries to prune the feed.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Follows the change feed until the task is aborted.
pub fn spawn_follower(
    store: Arc<dyn Repository>,
    index: Arc<SharedIndex>,
    settings: FollowerSettings,
    cache: Cache,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_ok = Instant::now();
        let mut failing = false;
        let mut last_prune = Instant::now();
        loop {
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = Instant::now();
                match store.prune_changes(settings.retention).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, "pruned the change feed"),
                    Err(e) => tracing::debug!(error = %e, "pruning the change feed failed"),
                }
            }
            match poll_and_invalidate(store.as_ref(), &index, &cache).await {
                Ok(polled) => {
                    last_ok = Instant::now();
                    if failing {
                        tracing::info!("change feed reachable again");
                        failing = false;
                    }
                    metrics
                        .sync_last_seq
                        .store(index.last_seq(), Ordering::Relaxed);
                    metrics.sync_lag_seconds.set(0.0);
                    if polled == Polled::Applied(BATCH as usize) {
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
            tokio::time::sleep(settings.interval).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, name: &str) -> Option<PlaceRow> {
        Some(PlaceRow {
            id,
            name: name.to_owned(),
            category: "cafe".to_owned(),
            lat: 60.17,
            lng: 24.94,
        })
    }

    fn name_of(index: &SharedIndex, id: i64) -> Option<String> {
        index
            .current()
            .get(BusinessId::parse(id).unwrap())
            .map(|p| p.name)
    }

    fn change(seq: i64, id: i64, name: Option<&str>) -> Change {
        Change {
            seq,
            id,
            row: name.and_then(|n| row(id, n)),
        }
    }

    #[test]
    fn local_writes_finishing_out_of_commit_order_keep_the_newest() {
        let index = SharedIndex::new(PlaceIndex::new(), 0);
        // Write 2 commits after write 1 but its handler applies first.
        index.apply(2, 1, row(1, "second"));
        index.apply(1, 1, row(1, "first"));
        assert_eq!(name_of(&index, 1).as_deref(), Some("second"));
        // A delete that finished first is not undone by an older upsert.
        index.apply(4, 2, None);
        index.apply(3, 2, row(2, "resurrected"));
        assert_eq!(name_of(&index, 2), None);
    }

    #[test]
    fn a_local_write_the_feed_already_passed_is_not_reapplied() {
        let index = SharedIndex::new(PlaceIndex::new(), 0);
        // The feed applied seq 3..=5 with the current row (written at seq 5).
        index.apply_changes(vec![
            change(3, 1, Some("fifth")),
            change(5, 1, Some("fifth")),
        ]);
        // The handler of the write at seq 3 finishes only now.
        index.apply(3, 1, row(1, "third"));
        assert_eq!(name_of(&index, 1).as_deref(), Some("fifth"));
    }

    #[test]
    fn a_feed_row_read_before_a_newer_local_write_does_not_replace_it() {
        let index = SharedIndex::new(PlaceIndex::new(), 0);
        index.apply(7, 1, row(1, "seventh"));
        // A poll whose rows were read before write 7 committed.
        index.apply_changes(vec![change(6, 1, Some("sixth"))]);
        assert_eq!(name_of(&index, 1).as_deref(), Some("seventh"));
        index.apply_changes(vec![change(7, 1, Some("seventh"))]);
        assert_eq!(name_of(&index, 1).as_deref(), Some("seventh"));
        assert!(
            index.ahead().is_empty(),
            "entries the feed passed are dropped"
        );
        assert_eq!(index.last_seq(), 7);
    }
}
