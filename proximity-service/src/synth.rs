//! Deterministic synthetic data for benchmarks: places and queries around real cities.
//!
//! Both generators are pure functions of `(cities, n, seed)`: the same inputs give the same
//! output on every machine and every version (the generator is our own SplitMix64, not a
//! library RNG whose stream may change).
//!
//! - [`places`]: each place picks a city with probability proportional to its population (cities
//!   with unknown population count as 1 000), then a gaussian offset whose standard deviation
//!   grows with the city, `σ = clamp(300 m · (population / 1000)^0.4, 200 m, 15 km)` — a village
//!   spreads over a few hundred metres, a metropolis over tens of kilometres. The category comes
//!   from [`CATEGORIES`]; the name is `"<Category> <n>"`.
//! - [`queries`]: centres drawn the same way (people search where people are), radius drawn
//!   uniformly from [`QUERY_RADII_M`].

use crate::domain::{BusinessId, BusinessName, Category, Coordinates, NewBusiness, RadiusM};
use crate::geo::haversine::EARTH_RADIUS_M;
use crate::geo::Place;
use crate::import::City;

/// The categories of synthetic places.
pub const CATEGORIES: [&str; 20] = [
    "restaurant",
    "cafe",
    "bar",
    "hotel",
    "supermarket",
    "pharmacy",
    "bank",
    "fuel",
    "school",
    "hospital",
    "gym",
    "bakery",
    "bookshop",
    "clothes",
    "hairdresser",
    "parking",
    "museum",
    "park",
    "cinema",
    "post_office",
];

/// Radii of synthetic queries, in metres.
pub const QUERY_RADII_M: [f64; 5] = [500.0, 1000.0, 2000.0, 5000.0, 20_000.0];

/// SplitMix64: tiny, fast, and stable forever.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Two independent standard normal samples (Box–Muller).
    fn normal2(&mut self) -> (f64, f64) {
        let u1 = 1.0 - self.unit(); // (0, 1]
        let u2 = self.unit();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        (r * t.cos(), r * t.sin())
    }
}

/// Population-weighted city picker.
struct Picker<'a> {
    cities: &'a [City],
    cumulative: Vec<f64>,
}

impl<'a> Picker<'a> {
    fn new(cities: &'a [City]) -> Self {
        let mut acc = 0.0;
        let cumulative = cities
            .iter()
            .map(|c| {
                acc += weight(c);
                acc
            })
            .collect();
        Self { cities, cumulative }
    }

    fn pick(&self, rng: &mut Rng) -> &'a City {
        let total = *self.cumulative.last().expect("at least one city");
        let x = rng.unit() * total;
        let i = self.cumulative.partition_point(|&c| c <= x);
        &self.cities[i.min(self.cities.len() - 1)]
    }
}

fn weight(c: &City) -> f64 {
    if c.population == 0 {
        1000.0
    } else {
        c.population as f64
    }
}

/// Spread (σ, metres) of places around a city.
fn sigma_m(c: &City) -> f64 {
    (300.0 * (weight(c) / 1000.0).powf(0.4)).clamp(200.0, 15_000.0)
}

/// A point scattered around `c`.
fn scatter(c: &City, rng: &mut Rng) -> Coordinates {
    let s = sigma_m(c);
    let (n, e) = rng.normal2();
    let (north_m, east_m) = (n * s, e * s);
    let lat0 = c.coordinates.lat_deg();
    let lat = (lat0 + (north_m / EARTH_RADIUS_M).to_degrees()).clamp(-90.0, 90.0);
    let cos = lat.to_radians().cos().max(1e-6);
    let mut lng = c.coordinates.lng_deg() + (east_m / (EARTH_RADIUS_M * cos)).to_degrees();
    lng = (lng + 180.0).rem_euclid(360.0) - 180.0;
    Coordinates::parse(lat, lng).expect("clamped and wrapped into range")
}

fn label(cat: &str) -> String {
    let mut s = cat.replace('_', " ");
    if let Some(first) = s.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    s
}

/// `n` synthetic businesses around `cities` (see the module docs). Empty if `cities` is empty.
pub fn places(cities: &[City], n: usize, seed: u64) -> Vec<NewBusiness> {
    if cities.is_empty() {
        return Vec::new();
    }
    let picker = Picker::new(cities);
    let cats: Vec<(Category, String)> = CATEGORIES
        .iter()
        .map(|c| (Category::parse(c).expect("valid category"), label(c)))
        .collect();
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let city = picker.pick(&mut rng);
            let coordinates = scatter(city, &mut rng);
            let (category, label) = &cats[rng.below(cats.len())];
            NewBusiness {
                name: BusinessName::parse(&format!("{label} {}", i + 1)).expect("short name"),
                category: category.clone(),
                coordinates,
                address: None,
                phone: None,
                hours: None,
            }
        })
        .collect()
}

/// [`places`] with ids `1..=n`, ready for [`crate::geo::PlaceIndex::from_places`].
pub fn indexed_places(cities: &[City], n: usize, seed: u64) -> Vec<Place> {
    places(cities, n, seed)
        .into_iter()
        .enumerate()
        .map(|(i, b)| Place {
            id: BusinessId::parse(i as i64 + 1).expect("positive"),
            name: b.name.into(),
            category: b.category,
            coordinates: b.coordinates,
        })
        .collect()
}

/// A synthetic search: centre and radius.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthQuery {
    /// Search centre.
    pub center: Coordinates,
    /// Search radius.
    pub radius: RadiusM,
}

/// `n` synthetic queries (see the module docs). Empty if `cities` is empty.
pub fn queries(cities: &[City], n: usize, seed: u64) -> Vec<SynthQuery> {
    if cities.is_empty() {
        return Vec::new();
    }
    let picker = Picker::new(cities);
    let mut rng = Rng::new(seed ^ 0x0051_5E71_E5A7_C4E5);
    (0..n)
        .map(|_| {
            let city = picker.pick(&mut rng);
            let center = scatter(city, &mut rng);
            let radius = QUERY_RADII_M[rng.below(QUERY_RADII_M.len())];
            SynthQuery {
                center,
                radius: RadiusM::parse(radius).expect("valid radius"),
            }
        })
        .collect()
}

/// A handful of real cities (GeoNames data) for tests and examples when `cities500.json` is not
/// at hand.
pub fn sample_cities() -> Vec<City> {
    [
        (1_850_147, "Tokyo", "JP", 35.6895, 139.69171, 8_336_599),
        (2_950_159, "Berlin", "DE", 52.52437, 13.41053, 3_426_354),
        (
            5_128_581,
            "New York City",
            "US",
            40.71427,
            -74.00597,
            8_804_190,
        ),
        (
            3_448_439,
            "São Paulo",
            "BR",
            -23.5475,
            -46.63611,
            10_021_295,
        ),
        (658_225, "Helsinki", "FI", 60.16952, 24.93545, 558_457),
        (2_193_733, "Auckland", "NZ", -36.84853, 174.76349, 417_910),
        (4_032_402, "Suva", "FJ", -18.14161, 178.44149, 77_366),
        (779_683, "Hammerfest", "NO", 70.66336, 23.68209, 10_287),
    ]
    .into_iter()
    .map(|(id, name, cc, lat, lng, pop)| City {
        geonameid: id,
        name: BusinessName::parse(name).expect("valid name"),
        country_code: cc.to_owned(),
        coordinates: Coordinates::parse(lat, lng).expect("valid coordinates"),
        population: pop,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_seed_dependent() {
        let cities = sample_cities();
        let a = places(&cities, 500, 42);
        assert_eq!(a, places(&cities, 500, 42));
        assert_ne!(a, places(&cities, 500, 43));
        assert_eq!(queries(&cities, 50, 1), queries(&cities, 50, 1));
        assert!(places(&[], 10, 1).is_empty());
    }

    #[test]
    fn places_cluster_around_big_cities() {
        let cities = sample_cities();
        let ps = places(&cities, 4000, 7);
        let near = |c: &City| {
            ps.iter()
                .filter(|p| crate::geo::distance_m(p.coordinates, c.coordinates) < 60_000.0)
                .count()
        };
        let tokyo = near(&cities[0]);
        let suva = near(&cities[6]);
        assert!(tokyo > 20 * suva.max(1), "tokyo {tokyo}, suva {suva}");
        for q in queries(&cities, 200, 3) {
            assert!(QUERY_RADII_M.contains(&q.radius.metres()));
        }
    }

    #[test]
    fn names_are_short() {
        let ps = indexed_places(&sample_cities(), 100, 1);
        assert_eq!(ps[0].id.get(), 1);
        assert!(ps.iter().all(|p| p.name.len() <= 20), "{:?}", ps[0].name);
    }
}
