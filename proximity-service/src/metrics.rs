//! Hand-written Prometheus metrics (text exposition format 0.0.4).
//!
//! Lock-free on the hot path: every route's histogram is created once (the
//! set of routes is fixed by the router), and observations are atomic adds.
//! Exposed series:
//! - `http_request_duration_seconds{method,route}` histogram,
//! - `http_requests_total{method,route,status}` counter,
//! - `cache_requests_total{result="hit"|"miss"|"error"}` and `cache_hit_ratio`,
//! - `replica_lag_seconds{replica}` and `replica_up{replica}`, `primary_up`,
//! - `index_places`, `index_bytes`, `sync_last_seq`, `sync_lag_seconds`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// One latency histogram.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }
}

struct RouteMetrics {
    latency: Histogram,
    /// Request count per status code 100..=599 (index `code - 100`).
    statuses: Box<[AtomicU64]>,
}

impl Default for RouteMetrics {
    fn default() -> Self {
        RouteMetrics {
            latency: Histogram::default(),
            statuses: (100..600).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// Methods get their own route table, so a lookup needs no allocation.
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "OTHER",
];

fn method_index(method: &str) -> usize {
    METHODS
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len() - 1)
}

type RouteTable = RwLock<HashMap<String, Arc<RouteMetrics>>>;

/// A gauge stored as `f64` bits.
#[derive(Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// All the service's metrics.
#[derive(Default)]
pub struct Metrics {
    routes: [RouteTable; METHODS.len()],
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    cache_errors: AtomicU64,
    /// Replica name → (lag seconds, up).
    replicas: RwLock<Vec<(String, f64, bool)>>,
    pub primary_up: Gauge,
    pub index_places: Gauge,
    pub index_bytes: Gauge,
    pub sync_last_seq: AtomicI64,
    pub sync_lag_seconds: Gauge,
    /// 1 when `/readyz` would answer 200 (not draining, some database reachable).
    pub ready: Gauge,
}

/// Cache lookup outcomes counted by [`Metrics::cache`].
#[derive(Debug, Clone, Copy)]
pub enum CacheOutcome {
    Hit,
    Miss,
    Error,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    fn route(&self, method: &str, route: &str) -> Arc<RouteMetrics> {
        let table = &self.routes[method_index(method)];
        if let Some(r) = table.read().expect("metrics lock").get(route) {
            return r.clone();
        }
        table
            .write()
            .expect("metrics lock")
            .entry(route.to_owned())
            .or_default()
            .clone()
    }

    /// Records one finished request. `route` is the matched route template
    /// (never the raw path, so cardinality stays bounded).
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let r = self.route(method, route);
        r.latency.observe(elapsed);
        if let Some(c) = (status as usize)
            .checked_sub(100)
            .and_then(|i| r.statuses.get(i))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn cache(&self, outcome: CacheOutcome) {
        let c = match outcome {
            CacheOutcome::Hit => &self.cache_hits,
            CacheOutcome::Miss => &self.cache_misses,
            CacheOutcome::Error => &self.cache_errors,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Replaces the replica lag table (called by the store's health monitor).
    pub fn set_replicas(&self, replicas: Vec<(String, f64, bool)>) {
        *self.replicas.write().expect("metrics lock") = replicas;
    }

    /// Renders the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let mut routes: Vec<((&str, String), Arc<RouteMetrics>)> = Vec::new();
        for (i, table) in self.routes.iter().enumerate() {
            for (route, m) in table.read().expect("metrics lock").iter() {
                routes.push(((METHODS[i], route.clone()), m.clone()));
            }
        }
        routes.sort_by(|a, b| a.0.cmp(&b.0));

        out.push_str("# HELP http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for ((method, route), m) in &routes {
            let h = &m.latency;
            let labels = format!("method=\"{}\",route=\"{}\"", esc(method), esc(route));
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "http_request_duration_seconds_sum{{{labels}}} {sum}");
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }

        out.push_str("# HELP http_requests_total Requests by route and status.\n");
        out.push_str("# TYPE http_requests_total counter\n");
        for ((method, route), m) in &routes {
            for (i, n) in m.statuses.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {n}",
                        esc(method),
                        esc(route),
                        i + 100
                    );
                }
            }
        }

        let hits = self.cache_hits.load(Ordering::Relaxed);
        let misses = self.cache_misses.load(Ordering::Relaxed);
        let errors = self.cache_errors.load(Ordering::Relaxed);
        out.push_str("# HELP cache_requests_total Business cache lookups by result.\n");
        out.push_str("# TYPE cache_requests_total counter\n");
        let _ = writeln!(out, "cache_requests_total{{result=\"hit\"}} {hits}");
        let _ = writeln!(out, "cache_requests_total{{result=\"miss\"}} {misses}");
        let _ = writeln!(out, "cache_requests_total{{result=\"error\"}} {errors}");
        let total = hits + misses + errors;
        let ratio = if total == 0 {
            0.0
        } else {
            hits as f64 / total as f64
        };
        out.push_str("# HELP cache_hit_ratio Hits over all lookups since start.\n");
        out.push_str("# TYPE cache_hit_ratio gauge\n");
        let _ = writeln!(out, "cache_hit_ratio {ratio}");

        out.push_str("# HELP primary_up Whether the primary database answered its last probe.\n");
        out.push_str("# TYPE primary_up gauge\n");
        let _ = writeln!(out, "primary_up {}", self.primary_up.get());
        out.push_str("# HELP replica_lag_seconds Replay lag of each read replica.\n");
        out.push_str("# TYPE replica_lag_seconds gauge\n");
        let replicas = self.replicas.read().expect("metrics lock").clone();
        for (name, lag, _) in &replicas {
            let _ = writeln!(
                out,
                "replica_lag_seconds{{replica=\"{}\"}} {lag}",
                esc(name)
            );
        }
        out.push_str("# HELP replica_up Whether each replica answered its last probe.\n");
        out.push_str("# TYPE replica_up gauge\n");
        for (name, _, up) in &replicas {
            let _ = writeln!(
                out,
                "replica_up{{replica=\"{}\"}} {}",
                esc(name),
                u8::from(*up)
            );
        }
        out.push_str("# HELP index_places Places in the in-memory index.\n");
        out.push_str("# TYPE index_places gauge\n");
        let _ = writeln!(out, "index_places {}", self.index_places.get());
        out.push_str("# HELP index_bytes Approximate heap bytes of the in-memory index.\n");
        out.push_str("# TYPE index_bytes gauge\n");
        let _ = writeln!(out, "index_bytes {}", self.index_bytes.get());
        out.push_str("# HELP sync_last_seq Last change-feed sequence applied to the index.\n");
        out.push_str("# TYPE sync_last_seq gauge\n");
        let _ = writeln!(
            out,
            "sync_last_seq {}",
            self.sync_last_seq.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP sync_lag_seconds Seconds since the change feed was last polled successfully.\n",
        );
        out.push_str("# TYPE sync_lag_seconds gauge\n");
        let _ = writeln!(out, "sync_lag_seconds {}", self.sync_lag_seconds.get());
        out.push_str(
            "# HELP ready Whether /readyz answers 200 (not draining, a database reachable).\n",
        );
        out.push_str("# TYPE ready gauge\n");
        let _ = writeln!(out, "ready {}", self.ready.get());
        process_metrics(&mut out);
        out
    }
}

/// The standard `process_*` metrics (as the Prometheus client libraries export them), from
/// `/proc/self` where the system has it; nothing elsewhere.
fn process_metrics(out: &mut String) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name (which may hold spaces) in `(…)`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // proc_pid_stat(5): utime and stime are fields 14 and 15, starttime 22, vsize 23
    // (1-based, with pid and comm first, so index - 3 here).
    let num = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<f64>().ok());
    let ticks = clock_ticks_per_second();
    if let (Some(u), Some(s)) = (num(14), num(15)) {
        out.push_str(
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n",
        );
        out.push_str("# TYPE process_cpu_seconds_total counter\n");
        let _ = writeln!(out, "process_cpu_seconds_total {}", (u + s) / ticks);
    }
    if let Some(rss) = status_kb("VmRSS") {
        out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n");
        out.push_str("# TYPE process_resident_memory_bytes gauge\n");
        let _ = writeln!(out, "process_resident_memory_bytes {rss}");
    }
    if let Some(vsize) = num(23) {
        out.push_str("# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n");
        out.push_str("# TYPE process_virtual_memory_bytes gauge\n");
        let _ = writeln!(out, "process_virtual_memory_bytes {vsize}");
    }
    if let (Some(start), Some(boot)) = (num(22), boot_time()) {
        out.push_str("# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n");
        out.push_str("# TYPE process_start_time_seconds gauge\n");
        let _ = writeln!(out, "process_start_time_seconds {}", boot + start / ticks);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        out.push_str("# HELP process_open_fds Number of open file descriptors.\n");
        out.push_str("# TYPE process_open_fds gauge\n");
        let _ = writeln!(out, "process_open_fds {}", fds.count());
    }
    if let Some(max) = max_fds() {
        out.push_str("# HELP process_max_fds Maximum number of open file descriptors.\n");
        out.push_str("# TYPE process_max_fds gauge\n");
        let _ = writeln!(out, "process_max_fds {max}");
    }
}

/// The unit of the CPU times in `/proc/self/stat`: USER_HZ, which the kernel fixes at 100 on
/// every architecture the service runs on (x86-64, arm64).
fn clock_ticks_per_second() -> f64 {
    100.0
}

/// A `kB` line of `/proc/self/status` (`VmRSS`, `VmSize`), in bytes.
fn status_kb(key: &str) -> Option<f64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim_start_matches(':').split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb * 1024.0)
}

/// Boot time in seconds since the epoch (`btime` of `/proc/stat`).
fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The soft limit of open files (`/proc/self/limits`).
fn max_fds() -> Option<u64> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_ratio_is_computed() {
        let m = Metrics::default();
        m.observe_request("GET", "/v1/search/nearby", 200, Duration::from_micros(50));
        m.observe_request("GET", "/v1/search/nearby", 200, Duration::from_millis(3));
        m.observe_request("GET", "/v1/search/nearby", 400, Duration::from_secs(5));
        m.cache(CacheOutcome::Hit);
        m.cache(CacheOutcome::Hit);
        m.cache(CacheOutcome::Hit);
        m.cache(CacheOutcome::Miss);
        let text = m.render();
        let labels = "method=\"GET\",route=\"/v1/search/nearby\"";
        assert!(text.contains(&format!(
            "http_request_duration_seconds_bucket{{{labels},le=\"0.0001\"}} 1"
        )));
        assert!(text.contains(&format!(
            "http_request_duration_seconds_bucket{{{labels},le=\"0.005\"}} 2"
        )));
        assert!(text.contains(&format!(
            "http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 3"
        )));
        assert!(text.contains(&format!("http_requests_total{{{labels},status=\"400\"}} 1")));
        assert!(text.contains("cache_hit_ratio 0.75"), "{text}");
    }
}
