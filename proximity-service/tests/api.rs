//! The API suite: one test binary, so Postgres (primary + replica) and Redis
//! start once. Submodules live in `tests/api/`.
//!
//! - `inprocess`: the router driven with `tower::ServiceExt::oneshot` on the
//!   embedded SQLite store (validation, auth, limits).
//! - `crud`: the real server on port 0 against a fresh Postgres database
//!   (primary + replica) and Redis: round trips, replicas, read-your-writes,
//!   two instances on one database.
//! - `faults`: dedicated servers that the tests stop: replica and Redis killed
//!   under read load, primary stopped under writes.
//! - `cache`: two instances, one Redis: a write whose client hung up mid-commit, and one
//!   whose writer never updated the cache, are both served fresh soon after; a read that
//!   fills the cache skips a replica lagging beyond `replica_max_lag_ms`.
//! - `cli`: `import` and `serve --seed-geonames` on both stores.
//! - `feed`: change-feed retention (pruned past an instance → it reloads).
//! - `hostile`: stalled connections far beyond the connection cap, requests beyond the
//!   in-flight limit, against the real server.
//! - `load`: bulk import and the full index load from Postgres (size from
//!   `PROXIMITY_LOAD_TEST_PLACES`).

mod api {
    pub mod helpers;

    mod cache;
    mod cli;
    mod crud;
    mod faults;
    mod feed;
    mod hostile;
    mod inprocess;
    mod load;
}
