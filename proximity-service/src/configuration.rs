//! Layered configuration: built-in defaults, then an optional YAML file, then
//! environment variables (`PROXIMITY_*`, plus the conventional `DATABASE_URL`,
//! `DATABASE_REPLICA_URLS`, `REDIS_URL`).
//!
//! Secrets (database URLs, which may carry passwords, and API keys) are wrapped
//! in [`Secret`], whose `Debug`/`Display` never print the value.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `PROXIMITY_CONFIG` | YAML file read before the env vars | none |
//! | `PROXIMITY_LISTEN` | listen address | `127.0.0.1:8080` |
//! | `DATABASE_URL` / `PROXIMITY_DATABASE_URL` | Postgres primary | none → embedded SQLite |
//! | `DATABASE_REPLICA_URLS` / `PROXIMITY_DATABASE_REPLICA_URLS` | comma-separated replicas | none |
//! | `PROXIMITY_DATA_DIR` | embedded store directory | `$XDG_DATA_HOME/proximity-service` |
//! | `REDIS_URL` / `PROXIMITY_REDIS_URL` | Redis cache | none → no cache |
//! | `PROXIMITY_REDIS_PREFIX` | key prefix | `proximity:` |
//! | `PROXIMITY_CACHE_TTL_SECS` | cache TTL | `300` |
//! | `PROXIMITY_API_KEYS` | comma-separated write keys | none (writes refused) |
//! | `PROXIMITY_RATE_LIMIT_ENABLED` | token bucket on/off | `true` |
//! | `PROXIMITY_RATE_LIMIT_RPS` | refill rate per client | `50` |
//! | `PROXIMITY_RATE_LIMIT_BURST` | bucket size | `100` |
//! | `PROXIMITY_RATE_LIMIT_EXEMPT_LOOPBACK` | loopback clients bypass the bucket | `true` |
//! | `PROXIMITY_MAX_BODY_BYTES` | request body limit | `65536` |
//! | `PROXIMITY_SYNC_INTERVAL_MS` | change-feed poll period | `200` |
//! | `PROXIMITY_CHANGES_RETENTION_SECS` | change-feed rows kept for | `86400` |
//! | `PROXIMITY_DB_MAX_CONNECTIONS` | per pool | `16` |
//! | `PROXIMITY_DB_ACQUIRE_TIMEOUT_MS` | pool acquire timeout | `2000` |
//! | `PROXIMITY_HEADER_READ_TIMEOUT_MS` | a connection that has not sent a whole request head this long after the server began waiting for one (new, or idle between keep-alive requests) is closed | `10000` |
//! | `PROXIMITY_REQUEST_TIMEOUT_MS` | an API request not answered within this is answered 503 | `30000` |
//! | `PROXIMITY_MAX_CONNECTIONS` | open client connections; beyond it a stalled (else the oldest idle) one is closed | `4096` |
//! | `PROXIMITY_MAX_IN_FLIGHT` | API requests handled at once; beyond it a fast 503 | `512` |
//! | `PROXIMITY_SHUTDOWN_DRAIN_MS` | after SIGTERM, `/readyz` is 503 and serving goes on this long | `0` |
//! | `PROXIMITY_SHUTDOWN_DEADLINE_MS` | then requests in progress get this long before the process stops | `10000` |

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// A value that must never be printed (passwords, API keys).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The wrapped value; call sites that need it say so explicitly.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Everything the service reads at start-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub api_keys: Vec<Secret<String>>,
    pub rate_limit: RateLimitSettings,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// How often every instance polls the change feed, milliseconds.
    pub sync_interval_ms: u64,
    /// Change-feed rows older than this are deleted, seconds.
    pub changes_retention_secs: u64,
    pub server: ServerSettings,
}

/// What a client can hold of the server: every limit a public endpoint needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// A connection that has not sent a complete request head this long after the server began
    /// waiting for one is closed, milliseconds. hyper starts this timer whenever it waits for a
    /// head: on a new connection and between requests on a keep-alive one, so it is also the
    /// keep-alive idle timeout.
    pub header_read_timeout_ms: u64,
    /// An API request (search, businesses) not answered within this is answered 503.
    pub request_timeout_ms: u64,
    /// Open client connections at most. A connection accepted beyond it closes one with no
    /// request in progress: the oldest that never sent a whole request (stalled), else the
    /// oldest idle one; when every one is busy, accepting pauses until one ends.
    pub max_connections: usize,
    /// API requests handled at once at most; beyond it a request is answered 503 at once.
    pub max_in_flight: usize,
    /// After SIGTERM, `/readyz` answers 503 at once and the server goes on serving (and
    /// accepting) this long, milliseconds: the time a load balancer needs to stop sending
    /// (readiness probe period × failure threshold, the target's deregistration).
    pub shutdown_drain_ms: u64,
    /// Then accepting stops, idle connections close, and requests in progress get this long
    /// before the remaining connections are closed, milliseconds.
    pub shutdown_deadline_ms: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_connections: 4096,
            max_in_flight: 512,
            shutdown_drain_ms: 0,
            shutdown_deadline_ms: 10_000,
        }
    }
}

impl ServerSettings {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn shutdown_drain(&self) -> Duration {
        Duration::from_millis(self.shutdown_drain_ms)
    }

    pub fn shutdown_deadline(&self) -> Duration {
        Duration::from_millis(self.shutdown_deadline_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Postgres primary; `None` selects the embedded SQLite store.
    pub url: Option<Secret<String>>,
    /// Postgres streaming replicas used for reads.
    pub replica_urls: Vec<Secret<String>>,
    /// Directory of the embedded store (`places.db`).
    pub data_dir: Option<PathBuf>,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    /// Replicas whose measured replay lag exceeds this are skipped for business reads (which
    /// fill the cache for its TTL); the primary answers instead.
    pub replica_max_lag_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    pub url: Option<Secret<String>>,
    pub prefix: String,
    pub ttl_secs: u64,
}

/// Token-bucket rate limit per API key (writes and authenticated reads) or
/// per client address.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Tokens added per second.
    pub requests_per_second: f64,
    /// Bucket capacity.
    pub burst: f64,
    /// Clients on 127.0.0.0/8 or ::1 are not limited (so a local benchmark is
    /// never throttled). Set to `false` to limit them too.
    pub exempt_loopback: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            database: DatabaseSettings::default(),
            redis: RedisSettings::default(),
            api_keys: Vec::new(),
            rate_limit: RateLimitSettings::default(),
            max_body_bytes: 64 * 1024,
            sync_interval_ms: 200,
            changes_retention_secs: 86_400,
            server: ServerSettings::default(),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: None,
            replica_urls: Vec::new(),
            data_dir: None,
            max_connections: 16,
            acquire_timeout_ms: 2000,
            replica_max_lag_ms: 1000,
        }
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: None,
            prefix: "proximity:".to_owned(),
            ttl_secs: 300,
        }
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            enabled: true,
            requests_per_second: 50.0,
            burst: 100.0,
            exempt_loopback: true,
        }
    }
}

impl DatabaseSettings {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }

    /// Path of the embedded SQLite file.
    pub fn sqlite_path(&self) -> anyhow::Result<PathBuf> {
        let dir = match &self.data_dir {
            Some(dir) => dir.clone(),
            None => default_data_dir()?,
        };
        Ok(dir.join("places.db"))
    }
}

/// `$XDG_DATA_HOME/proximity-service`, else `~/.local/share/proximity-service`.
pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("proximity-service"));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .context("neither XDG_DATA_HOME nor HOME is set; set PROXIMITY_DATA_DIR")?;
    Ok(PathBuf::from(home).join(".local/share/proximity-service"))
}

impl Settings {
    /// Defaults, then `file` (or `$PROXIMITY_CONFIG`), then the process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| env.get("PROXIMITY_CONFIG").map(PathBuf::from));
        let mut settings = match file {
            Some(path) => Settings::from_file(&path)?,
            None => Settings::default(),
        };
        settings.apply_env(&env)?;
        Ok(settings)
    }

    /// Reads a YAML file; unknown keys are an error naming the file.
    pub fn from_file(path: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        serde_norway::from_str(&text)
            .with_context(|| format!("parsing config file {}", path.display()))
    }

    /// Applies environment overrides from `env` (a snapshot, so tests can pass their own).
    pub fn apply_env(&mut self, env: &HashMap<String, String>) -> anyhow::Result<()> {
        let get = |names: &[&str]| -> Option<String> {
            names
                .iter()
                .find_map(|n| env.get(*n).filter(|v| !v.trim().is_empty()).cloned())
        };
        fn parse<T: std::str::FromStr>(name: &str, value: &str) -> anyhow::Result<T>
        where
            T::Err: fmt::Display,
        {
            value
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("environment variable {name}={value:?}: {e}"))
        }
        fn list(value: &str) -> Vec<Secret<String>> {
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Secret::new(s.to_owned()))
                .collect()
        }

        if let Some(v) = get(&["PROXIMITY_LISTEN"]) {
            self.listen = parse("PROXIMITY_LISTEN", &v)?;
        }
        if let Some(v) = get(&["PROXIMITY_DATABASE_URL", "DATABASE_URL"]) {
            self.database.url = Some(Secret::new(v));
        }
        if let Some(v) = get(&["PROXIMITY_DATABASE_REPLICA_URLS", "DATABASE_REPLICA_URLS"]) {
            self.database.replica_urls = list(&v);
        }
        if let Some(v) = get(&["PROXIMITY_DATA_DIR"]) {
            self.database.data_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = get(&["PROXIMITY_DB_MAX_CONNECTIONS"]) {
            self.database.max_connections = parse("PROXIMITY_DB_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = get(&["PROXIMITY_DB_ACQUIRE_TIMEOUT_MS"]) {
            self.database.acquire_timeout_ms = parse("PROXIMITY_DB_ACQUIRE_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = get(&["PROXIMITY_REPLICA_MAX_LAG_MS"]) {
            self.database.replica_max_lag_ms = parse("PROXIMITY_REPLICA_MAX_LAG_MS", &v)?;
        }
        if let Some(v) = get(&["PROXIMITY_REDIS_URL", "REDIS_URL"]) {
            self.redis.url = Some(Secret::new(v));
        }
        if let Some(v) = get(&["PROXIMITY_REDIS_PREFIX"]) {
            self.redis.prefix = v;
        }
        if let Some(v) = get(&["PROXIMITY_CACHE_TTL_SECS"]) {
            self.redis.ttl_secs = parse("PROXIMITY_CACHE_TTL_SECS", &v)?;
        }
        if let Some(v) = get(&["PROXIMITY_API_KEYS"]) {
            self.api_keys = list(&v);
        }
        if let Some(v) = get(&["PROXIMITY_RATE_LIMIT_ENABLED"]) {
            self.rate_limit.enabled = parse("PROXIMITY_RATE_LIMIT_ENABLED", &v)?;
        }
        if let Some(v) = get(&["PROXIMITY_RATE_LIMIT_RPS"]) {
            self.rate_limit.requests_per_second = parse("PROXIMITY_RATE_LIMIT_RPS", &v)?;
        }
        if let Some(v) = get(&["PROXIMITY_RATE_LIMIT_BURST"]) {
            self.rate_limit.burst = parse("PROXIMITY_RATE_LIMIT_BURST", &v)?;
        }
        if let Some(v) = get(&["PROXIMITY_RATE_LIMIT_EXEMPT_LOOPBACK"]) {
            self.rate_limit.exempt_loopback = parse("PROXIMITY_RATE_LIMIT_EXEMPT_LOOPBACK", &v)?;
        }
        if let Some(v) = get(&["PROXIMITY_MAX_BODY_BYTES"]) {
            self.max_body_bytes = parse("PROXIMITY_MAX_BODY_BYTES", &v)?;
        }
        if let Some(v) = get(&["PROXIMITY_CHANGES_RETENTION_SECS"]) {
            self.changes_retention_secs = parse("PROXIMITY_CHANGES_RETENTION_SECS", &v)?;
        }
        if let Some(v) = get(&["PROXIMITY_SYNC_INTERVAL_MS"]) {
            self.sync_interval_ms = parse("PROXIMITY_SYNC_INTERVAL_MS", &v)?;
        }
        let server = &mut self.server;
        if let Some(v) = get(&["PROXIMITY_HEADER_READ_TIMEOUT_MS"]) {
            server.header_read_timeout_ms = parse("PROXIMITY_HEADER_READ_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = get(&["PROXIMITY_REQUEST_TIMEOUT_MS"]) {
            server.request_timeout_ms = parse("PROXIMITY_REQUEST_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = get(&["PROXIMITY_MAX_CONNECTIONS"]) {
            server.max_connections = parse("PROXIMITY_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = get(&["PROXIMITY_MAX_IN_FLIGHT"]) {
            server.max_in_flight = parse("PROXIMITY_MAX_IN_FLIGHT", &v)?;
        }
        if let Some(v) = get(&["PROXIMITY_SHUTDOWN_DRAIN_MS"]) {
            server.shutdown_drain_ms = parse("PROXIMITY_SHUTDOWN_DRAIN_MS", &v)?;
        }
        if let Some(v) = get(&["PROXIMITY_SHUTDOWN_DEADLINE_MS"]) {
            server.shutdown_deadline_ms = parse("PROXIMITY_SHUTDOWN_DEADLINE_MS", &v)?;
        }
        self.validate()
    }

    /// Rejects settings that cannot work.
    pub fn validate(&self) -> anyhow::Result<()> {
        let rl = &self.rate_limit;
        if !(rl.requests_per_second.is_finite() && rl.requests_per_second > 0.0) {
            anyhow::bail!("rate_limit.requests_per_second must be a positive number");
        }
        if !(rl.burst.is_finite() && rl.burst >= 1.0) {
            anyhow::bail!("rate_limit.burst must be at least 1");
        }
        if self.max_body_bytes == 0 {
            anyhow::bail!("max_body_bytes must be positive");
        }
        if self.sync_interval_ms == 0 {
            anyhow::bail!("sync_interval_ms must be positive");
        }
        let server = &self.server;
        if server.header_read_timeout_ms == 0 || server.request_timeout_ms == 0 {
            anyhow::bail!("server.header_read_timeout_ms and request_timeout_ms must be positive");
        }
        if server.max_connections == 0 || server.max_in_flight == 0 {
            anyhow::bail!("server.max_connections and max_in_flight must be positive");
        }
        if self.database.max_connections == 0 {
            anyhow::bail!("database.max_connections must be positive");
        }
        if self.database.url.is_none() && !self.database.replica_urls.is_empty() {
            anyhow::bail!("database replica URLs are set but the primary DATABASE_URL is not");
        }
        Ok(())
    }

    pub fn sync_interval(&self) -> Duration {
        Duration::from_millis(self.sync_interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn secrets_never_print() {
        let mut s = Settings::default();
        s.apply_env(&env(&[
            ("DATABASE_URL", "postgres://u:hunter2@db/x"),
            ("PROXIMITY_API_KEYS", "k-one, k-two"),
        ]))
        .unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(!dbg.contains("k-one"), "{dbg}");
        assert_eq!(s.api_keys.len(), 2);
        assert_eq!(s.api_keys[1].expose(), "k-two");
    }

    #[test]
    fn env_overrides_and_errors_name_the_variable() {
        let mut s = Settings::default();
        s.apply_env(&env(&[
            ("PROXIMITY_LISTEN", "0.0.0.0:0"),
            ("DATABASE_URL", "postgres://p"),
            ("DATABASE_REPLICA_URLS", "postgres://r1,postgres://r2"),
            ("PROXIMITY_REPLICA_MAX_LAG_MS", "250"),
        ]))
        .unwrap();
        assert_eq!(s.listen.port(), 0);
        assert_eq!(s.database.replica_urls.len(), 2);
        assert_eq!(s.database.replica_max_lag_ms, 250);
        assert_eq!(Settings::default().database.replica_max_lag_ms, 1000);
        let err = Settings::default()
            .apply_env(&env(&[("PROXIMITY_RATE_LIMIT_RPS", "fast")]))
            .unwrap_err();
        assert!(
            err.to_string().contains("PROXIMITY_RATE_LIMIT_RPS"),
            "{err}"
        );
    }

    #[test]
    fn file_layer_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, "listen: 127.0.0.1:9000\nrate_limit:\n  burst: 5\n").unwrap();
        let s = Settings::from_file(&path).unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.rate_limit.burst, 5.0);
        assert!(s.rate_limit.exempt_loopback);
        std::fs::write(&path, "lisen: 1\n").unwrap();
        let err = format!("{:#}", Settings::from_file(&path).unwrap_err());
        assert!(err.contains("c.yaml") && err.contains("lisen"), "{err}");
    }
}
