//! Real-component test harness for the whole workspace.
//!
//! Every test in this repository talks to real servers, started here from the packages that
//! `scripts/setup` installs: a Postgres primary with a streaming replica, Redis, and the moto
//! AWS emulator. Each is started once per test binary, on a free 127.0.0.1 port, the first time
//! a test asks for it; each test then gets isolated state (its own database, its own Redis key
//! prefix, an emulator reset while it holds the emulator).
//!
//! Every process started here is watched by a small reaper that kills it and removes its
//! temporary directory as soon as the test process is gone, however it ended.
//!
//! Environment overrides, for running against servers you already have:
//! `TEST_DATABASE_URL` (a Postgres server URL whose user may `CREATE DATABASE`; optional
//! `TEST_DATABASE_REPLICA_URL`), `TEST_REDIS_URL`, and `AWS_ENDPOINT_URL` (an emulator).

mod emulator;
mod paths;
mod postgres;
mod process;
mod redis_server;
mod registry;
pub mod twin;

pub use emulator::{emulator, Emulator, EmulatorGuard};
pub use paths::{suite_cache, suite_venv};
pub use postgres::{postgres, PgCluster, TestDb};
pub use process::free_port;
pub use redis_server::{redis, RedisServer, TestRedis};
pub use registry::Registry;

/// A name unique within this test process, for databases, key prefixes and similar.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
