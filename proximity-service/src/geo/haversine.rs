//! Great-circle distance (haversine) in metres.
//!
//! Every distance in the service — index search, brute-force reference, tests — is computed by
//! [`Origin::distance_m`], so the three agree bit for bit and a place is either within the radius
//! for all of them or for none.

use crate::domain::Coordinates;

/// Mean Earth radius in metres (IUGG), as the issue specifies.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Haversine distance from `a` to `b` in metres.
pub fn distance_m(a: Coordinates, b: Coordinates) -> f64 {
    Origin::new(a).distance_m(b.lat_deg(), b.lng_deg())
}

/// A search centre with its trigonometry precomputed, to measure many distances from it.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    lat_rad: f64,
    lng_deg: f64,
    cos_lat: f64,
}

impl Origin {
    /// Precomputes the centre `c`.
    pub fn new(c: Coordinates) -> Self {
        Self::from_degrees(c.lat_deg(), c.lng_deg())
    }

    pub(crate) fn from_degrees(lat_deg: f64, lng_deg: f64) -> Self {
        let lat_rad = lat_deg.to_radians();
        Self {
            lat_rad,
            lng_deg,
            cos_lat: lat_rad.cos(),
        }
    }

    /// Haversine distance in metres from the origin to `(lat_deg, lng_deg)`.
    #[inline]
    pub fn distance_m(&self, lat_deg: f64, lng_deg: f64) -> f64 {
        distance_from_h(self.h(lat_deg, lng_deg))
    }

    /// The haversine term `h = sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2)`; the distance is a
    /// monotonic function of it ([`distance_from_h`]), which lets a filter reject far points
    /// before the `sqrt`/`asin`.
    #[inline]
    pub fn h(&self, lat_deg: f64, lng_deg: f64) -> f64 {
        let lat2 = lat_deg.to_radians();
        let dlat = lat2 - self.lat_rad;
        // sin² is 2π-periodic in dlng, so the antimeridian needs no special case.
        let dlng = (lng_deg - self.lng_deg).to_radians();
        let s_lat = (dlat * 0.5).sin();
        let s_lng = (dlng * 0.5).sin();
        s_lat * s_lat + self.cos_lat * lat2.cos() * s_lng * s_lng
    }
}

/// The distance in metres for a haversine term `h` (see [`Origin::h`]).
#[inline]
pub fn distance_from_h(h: f64) -> f64 {
    2.0 * EARTH_RADIUS_M * h.clamp(0.0, 1.0).sqrt().asin()
}

/// An `h` above which every distance exceeds `radius_m` (with a relative margin of 1e-9, far
/// above the rounding of `sqrt`/`asin`), for cheap rejection.
pub fn h_bound(radius_m: f64) -> f64 {
    let s = (radius_m / (2.0 * EARTH_RADIUS_M))
        .min(std::f64::consts::FRAC_PI_2)
        .sin();
    (s * s) * (1.0 + 1e-9) + 1e-300
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(lat: f64, lng: f64) -> Coordinates {
        Coordinates::parse(lat, lng).unwrap()
    }

    #[test]
    fn known_distances() {
        // One degree of arc along the equator or a meridian.
        let deg = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
        assert!((distance_m(c(0.0, 0.0), c(0.0, 1.0)) - deg).abs() < 1e-6);
        assert!((distance_m(c(0.0, 0.0), c(1.0, 0.0)) - deg).abs() < 1e-6);
        // Across the antimeridian and over the pole.
        assert!((distance_m(c(0.0, 179.5), c(0.0, -179.5)) - deg).abs() < 1e-6);
        assert!((distance_m(c(89.5, 0.0), c(89.5, 180.0)) - deg).abs() < 1e-6);
        assert!(distance_m(c(10.0, 180.0), c(10.0, -180.0)) < 1e-6);
        // Berlin – Paris ≈ 877.5 km.
        let d = distance_m(c(52.5200, 13.4050), c(48.8566, 2.3522));
        assert!((d - 877_464.0).abs() < 1_000.0, "{d}");
        // Antipodes: half the circumference.
        let half = EARTH_RADIUS_M * std::f64::consts::PI;
        assert!((distance_m(c(0.0, 0.0), c(0.0, 180.0)) - half).abs() < 1e-6);
    }
}
