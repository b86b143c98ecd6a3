//! Redis cache of business objects (the JSON the API returns), by id.
//!
//! - **Read**: `GET {prefix}biz:{id}`; a miss reads the database and fills the
//!   entry with `SET NX EX ttl`, so a slow reader holding an old row never
//!   overwrites what a writer stored meanwhile.
//! - **Write**: the writer overwrites the entry with the new object (or a
//!   tombstone after a delete) with a TTL, so readers on every instance see
//!   the write at once and a racing reader cannot re-insert a stale row.
//!   Entries carry the change-feed sequence of the write that stored them
//!   (`{seq}|{json}`; fills carry 0) and a small script only overwrites an
//!   entry with a newer one, so of two writes to one id whose handlers finish
//!   in the opposite order of their commits, the later commit stays cached.
//! - **Change feed**: every instance, for every change it applies from the
//!   feed, deletes the entry of that id unless it holds that change's write or
//!   a newer one (`{seq}|` at or above the change's sequence). So an entry a
//!   writer failed to overwrite — its client hung up before the handler ran
//!   its post-commit step, or the process died between commit and cache
//!   update — is gone within one feed poll on any live instance, not at the
//!   TTL. Failures here are handled like a write's (below).
//! - **Redis down**: every call has a short timeout and failures open a
//!   circuit for one second, during which the cache is skipped entirely (reads
//!   go to the database; nothing fails). A background task reconnects and
//!   pings every second; `/readyz` reports the cache `degraded` meanwhile.
//!   A write that could not update its entry remembers the id; when Redis is
//!   back, those entries are deleted before the cache is used again, so no
//!   stale object outlives an outage.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::configuration::RedisSettings;
use crate::metrics::{CacheOutcome, Metrics};

/// Stored in place of a deleted business.
const TOMBSTONE: &str = "\u{0}deleted";
/// Sets `KEYS[1]` to `ARGV[1] .. '|' .. ARGV[2]` with TTL `ARGV[3]` unless it
/// holds an entry of a newer write (a larger sequence prefix).
const STORE_SCRIPT: &str = "local cur = redis.call('GET', KEYS[1]) \
    if cur then \
      local s = tonumber(string.match(cur, '^(%d+)|')) \
      if s and s > tonumber(ARGV[1]) then return 0 end \
    end \
    redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', ARGV[3]) \
    return 1";

/// Deletes `KEYS[1]` unless it holds an entry of the write at sequence
/// `ARGV[1]` or a newer one. Fills (`0|`) and unsequenced entries go.
const INVALIDATE_SCRIPT: &str = "local cur = redis.call('GET', KEYS[1]) \
    if not cur then return 0 end \
    local s = tonumber(string.match(cur, '^(%d+)|')) \
    if s and s >= tonumber(ARGV[1]) then return 0 end \
    redis.call('DEL', KEYS[1]) \
    return 1";
/// Scripts per pipeline in [`Cache::invalidate_older`].
const INVALIDATE_CHUNK: usize = 200;

/// The value of an entry without its sequence prefix.
fn entry_value(entry: &str) -> &str {
    match entry.split_once('|') {
        Some((seq, value)) if !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()) => value,
        _ => entry,
    }
}

/// Upper bound on any single Redis call.
const CALL_TIMEOUT: Duration = Duration::from_millis(150);
/// How long the cache is skipped after a failure.
const OPEN_CIRCUIT: Duration = Duration::from_secs(1);

/// What a cache lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The business's JSON.
    Hit(String),
    /// The business was deleted.
    Deleted,
    /// Not cached (or the cache is unavailable).
    Miss,
}

/// Health of the cache for `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheStatus {
    /// No Redis configured.
    Disabled,
    Up,
    Down,
}

struct Inner {
    conn: RwLock<Option<ConnectionManager>>,
    prefix: String,
    ttl_secs: u64,
    healthy: AtomicBool,
    /// Milliseconds since `epoch` until which the circuit is open.
    open_until_ms: AtomicU64,
    epoch: Instant,
    metrics: Arc<Metrics>,
    /// Ids whose entry a write failed to update (`None`: too many, flush all).
    pending: Mutex<Option<HashSet<i64>>>,
    /// Set while `pending` holds ids: reads skip the cache until they are purged.
    dirty: AtomicBool,
}

/// Above this many pending ids, recovery flushes every key of the prefix.
const MAX_PENDING: usize = 100_000;

/// The business cache; cheap to clone. `Cache::disabled()` is a no-op cache.
#[derive(Clone)]
pub struct Cache {
    inner: Option<Arc<Inner>>,
}

impl Cache {
    /// A cache that never stores anything (no Redis configured).
    pub fn disabled() -> Cache {
        Cache { inner: None }
    }

    /// A cache backed by Redis at `settings.url`; connects in the background,
    /// so a Redis that is down at start-up only makes the cache `down`.
    pub fn connect(settings: &RedisSettings, metrics: Arc<Metrics>) -> anyhow::Result<Cache> {
        let Some(url) = &settings.url else {
            return Ok(Cache::disabled());
        };
        let client = redis::Client::open(url.expose().as_str())
            .map_err(|e| anyhow::anyhow!("invalid REDIS_URL (value not shown): {e}"))?;
        let inner = Arc::new(Inner {
            conn: RwLock::new(None),
            prefix: settings.prefix.clone(),
            ttl_secs: settings.ttl_secs.max(1),
            healthy: AtomicBool::new(false),
            open_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            metrics,
            pending: Mutex::new(Some(HashSet::new())),
            dirty: AtomicBool::new(false),
        });
        tokio::spawn(supervise(Arc::downgrade(&inner), client));
        Ok(Cache { inner: Some(inner) })
    }

    pub fn status(&self) -> CacheStatus {
        match &self.inner {
            None => CacheStatus::Disabled,
            Some(i) if i.healthy.load(Ordering::Relaxed) => CacheStatus::Up,
            Some(_) => CacheStatus::Down,
        }
    }

    /// Waits up to `timeout` for the first connection (used at start-up and in tests).
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.status() {
                CacheStatus::Disabled | CacheStatus::Up => return true,
                CacheStatus::Down if Instant::now() >= deadline => return false,
                CacheStatus::Down => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn usable(&self) -> Option<(&Inner, ConnectionManager)> {
        let inner = self.inner.as_deref()?;
        if !inner.healthy.load(Ordering::Relaxed) || inner.dirty.load(Ordering::Relaxed) {
            return None;
        }
        let now_ms = inner.epoch.elapsed().as_millis() as u64;
        if now_ms < inner.open_until_ms.load(Ordering::Relaxed) {
            return None;
        }
        let conn = inner.conn.read().expect("cache lock").clone()?;
        Some((inner, conn))
    }

    fn key(inner: &Inner, id: i64) -> String {
        format!("{}biz:{id}", inner.prefix)
    }

    /// Looks `id` up; any failure is a miss.
    pub async fn get(&self, id: i64) -> Lookup {
        let Some((inner, mut conn)) = self.usable() else {
            return Lookup::Miss;
        };
        let cmd = redis::cmd("GET").arg(Self::key(inner, id)).clone();
        let result: Result<Option<String>, ()> = call(inner, &mut conn, &cmd).await;
        let outcome = match result {
            Ok(Some(v)) if entry_value(&v) == TOMBSTONE => (Lookup::Deleted, CacheOutcome::Hit),
            Ok(Some(v)) => (Lookup::Hit(entry_value(&v).to_owned()), CacheOutcome::Hit),
            Ok(None) => (Lookup::Miss, CacheOutcome::Miss),
            Err(()) => (Lookup::Miss, CacheOutcome::Error),
        };
        inner.metrics.cache(outcome.1);
        outcome.0
    }

    /// Fills a missing entry after a database read (never overwrites).
    pub async fn fill(&self, id: i64, json: Option<&str>) {
        let Some((inner, mut conn)) = self.usable() else {
            return;
        };
        let cmd = redis::cmd("SET")
            .arg(Self::key(inner, id))
            .arg(format!("0|{}", json.unwrap_or(TOMBSTONE)))
            .arg("NX")
            .arg("EX")
            .arg(inner.ttl_secs)
            .clone();
        let _: Result<Option<String>, ()> = call(inner, &mut conn, &cmd).await;
    }

    /// Stores the value the write at feed sequence `seq` produced (`None`: the
    /// business was deleted), unless the entry holds a newer write's value.
    pub async fn store(&self, id: i64, seq: i64, json: Option<&str>) {
        let Some(inner) = self.inner.as_deref() else {
            return;
        };
        // A write always tries, even with the circuit open: a stale entry is
        // worse than a slow write.
        let conn = inner.conn.read().expect("cache lock").clone();
        let stored = match conn {
            Some(mut conn) => {
                let cmd = redis::cmd("EVAL")
                    .arg(STORE_SCRIPT)
                    .arg(1)
                    .arg(Self::key(inner, id))
                    .arg(seq)
                    .arg(json.unwrap_or(TOMBSTONE))
                    .arg(inner.ttl_secs)
                    .clone();
                let r: Result<i64, ()> = call(inner, &mut conn, &cmd).await;
                r.is_ok()
            }
            None => false,
        };
        if !stored {
            remember_pending(inner, [id]);
        }
    }

    /// For changes `(id, seq)` applied from the change feed: deletes each id's
    /// entry unless it holds the write at `seq` or a newer one, so an entry
    /// its writer never updated does not outlive the next feed poll. Like a
    /// write, tries even with the circuit open; ids it could not reach are
    /// purged before the cache is used again.
    pub async fn invalidate_older(&self, changes: &[(i64, i64)]) {
        let Some(inner) = self.inner.as_deref() else {
            return;
        };
        if changes.is_empty() {
            return;
        }
        let conn = inner.conn.read().expect("cache lock").clone();
        let Some(mut conn) = conn else {
            remember_pending(inner, changes.iter().map(|&(id, _)| id));
            return;
        };
        for (i, chunk) in changes.chunks(INVALIDATE_CHUNK).enumerate() {
            let mut pipe = redis::pipe();
            for &(id, seq) in chunk {
                pipe.cmd("EVAL")
                    .arg(INVALIDATE_SCRIPT)
                    .arg(1)
                    .arg(Self::key(inner, id))
                    .arg(seq)
                    .ignore();
            }
            let done = tokio::time::timeout(CALL_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
            let failed = match done {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("timed out".to_owned()),
            };
            if let Some(why) = failed {
                // Redis is failing: leave the rest to the purge rather than
                // wait a timeout per chunk (the follower is waiting).
                trip(inner, &why);
                let rest = &changes[i * INVALIDATE_CHUNK..];
                remember_pending(inner, rest.iter().map(|&(id, _)| id));
                return;
            }
        }
    }

    /// Forgets every entry (before the cache is used again): for when this
    /// instance cannot tell which ids changed, e.g. the feed was pruned past it.
    pub fn invalidate_all(&self) {
        if let Some(inner) = self.inner.as_deref() {
            *inner.pending.lock().expect("cache lock") = None;
            inner.dirty.store(true, Ordering::Relaxed);
        }
    }
}

/// Remembers ids whose entries may be stale; reads skip the cache until they are purged.
fn remember_pending(inner: &Inner, ids: impl IntoIterator<Item = i64>) {
    let mut pending = inner.pending.lock().expect("cache lock");
    inner.dirty.store(true, Ordering::Relaxed);
    if let Some(set) = pending.as_mut() {
        set.extend(ids);
        if set.len() > MAX_PENDING {
            *pending = None;
        }
    }
}

async fn call<T: redis::FromRedisValue>(
    inner: &Inner,
    conn: &mut ConnectionManager,
    cmd: &redis::Cmd,
) -> Result<T, ()> {
    match tokio::time::timeout(CALL_TIMEOUT, cmd.query_async::<T>(conn)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            trip(inner, &e.to_string());
            Err(())
        }
        Err(_) => {
            trip(inner, "timed out");
            Err(())
        }
    }
}

fn trip(inner: &Inner, why: &str) {
    if inner.healthy.swap(false, Ordering::Relaxed) {
        tracing::warn!(
            error = why,
            "redis cache unavailable; serving from the database"
        );
    }
    let until = inner.epoch.elapsed() + OPEN_CIRCUIT;
    inner
        .open_until_ms
        .store(until.as_millis() as u64, Ordering::Relaxed);
}

/// Connects, then pings every second, for as long as the cache exists.
async fn supervise(weak: std::sync::Weak<Inner>, client: redis::Client) {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_millis(500))
        .set_response_timeout(CALL_TIMEOUT)
        .set_number_of_retries(1)
        .set_max_delay(500);
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let existing = inner.conn.read().expect("cache lock").clone();
        match existing {
            None => {
                match tokio::time::timeout(
                    Duration::from_secs(2),
                    ConnectionManager::new_with_config(client.clone(), config.clone()),
                )
                .await
                {
                    Ok(Ok(mut conn)) => {
                        if purge_pending(&inner, &mut conn).await {
                            *inner.conn.write().expect("cache lock") = Some(conn);
                            inner.healthy.store(true, Ordering::Relaxed);
                            inner.open_until_ms.store(0, Ordering::Relaxed);
                            tracing::info!("connected to redis");
                        }
                    }
                    _ => inner.healthy.store(false, Ordering::Relaxed),
                }
            }
            Some(mut conn) => {
                let ping = redis::cmd("PING");
                let ok: Result<String, ()> = call(&inner, &mut conn, &ping).await;
                if ok.is_ok()
                    && purge_pending(&inner, &mut conn).await
                    && !inner.healthy.swap(true, Ordering::Relaxed)
                {
                    inner.open_until_ms.store(0, Ordering::Relaxed);
                    tracing::info!("redis cache is back");
                }
            }
        }
        drop(inner);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Deletes the entries writes could not update; `false` if Redis failed.
async fn purge_pending(inner: &Inner, conn: &mut ConnectionManager) -> bool {
    let pending = inner
        .pending
        .lock()
        .expect("cache lock")
        .replace(HashSet::new());
    let ok = match &pending {
        Some(ids) if ids.is_empty() => true,
        Some(ids) => {
            let ids: Vec<i64> = ids.iter().copied().collect();
            let mut ok = true;
            for chunk in ids.chunks(1000) {
                let mut cmd = redis::cmd("DEL");
                for id in chunk {
                    cmd.arg(Cache::key(inner, *id));
                }
                let r: Result<i64, ()> = call(inner, conn, &cmd).await;
                ok &= r.is_ok();
            }
            ok
        }
        None => flush_prefix(inner, conn).await,
    };
    if ok {
        let current = inner.pending.lock().expect("cache lock");
        if current.as_ref().is_some_and(|s| s.is_empty()) {
            inner.dirty.store(false, Ordering::Relaxed);
        }
    } else {
        // Put them back (merged with any added meanwhile) for the next try.
        let mut current = inner.pending.lock().expect("cache lock");
        *current = match (pending, current.take()) {
            (Some(mut a), Some(b)) => {
                a.extend(b);
                Some(a)
            }
            _ => None,
        };
    }
    ok
}

async fn flush_prefix(inner: &Inner, conn: &mut ConnectionManager) -> bool {
    let pattern = format!("{}biz:*", inner.prefix);
    let mut cursor: u64 = 0;
    loop {
        let cmd = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .clone();
        let Ok((next, keys)): Result<(u64, Vec<String>), ()> = call(inner, conn, &cmd).await else {
            return false;
        };
        if !keys.is_empty() {
            let r: Result<i64, ()> = call(inner, conn, redis::cmd("DEL").arg(&keys)).await;
            if r.is_err() {
                return false;
            }
        }
        if next == 0 {
            return true;
        }
        cursor = next;
    }
}
