//! A point on the Earth.

use super::{DomainError, Latitude, Longitude};
use serde::{Deserialize, Serialize};

/// A validated point: latitude and longitude in degrees (WGS84, quantised to 1e-7 degree).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coordinates {
    lat: Latitude,
    lng: Longitude,
}

impl Coordinates {
    /// Combines an already validated latitude and longitude.
    pub fn new(lat: Latitude, lng: Longitude) -> Self {
        Self { lat, lng }
    }

    /// Validates raw degrees; the error names `lat` or `lng`.
    pub fn parse(lat: f64, lng: f64) -> Result<Self, DomainError> {
        Ok(Self::new(Latitude::parse(lat)?, Longitude::parse(lng)?))
    }

    /// The latitude.
    pub fn lat(self) -> Latitude {
        self.lat
    }

    /// The longitude.
    pub fn lng(self) -> Longitude {
        self.lng
    }

    /// Latitude in degrees.
    pub fn lat_deg(self) -> f64 {
        self.lat.degrees()
    }

    /// Longitude in degrees.
    pub fn lng_deg(self) -> f64 {
        self.lng.degrees()
    }
}

/// The georust point of these coordinates (`x` = longitude, `y` = latitude, degrees).
impl From<Coordinates> for geo::Point<f64> {
    fn from(c: Coordinates) -> Self {
        geo::Point::new(c.lng_deg(), c.lat_deg())
    }
}

/// A georust point as validated coordinates; the error names `lat` or `lng`.
impl TryFrom<geo::Point<f64>> for Coordinates {
    type Error = DomainError;
    fn try_from(p: geo::Point<f64>) -> Result<Self, DomainError> {
        Coordinates::parse(p.y(), p.x())
    }
}

#[cfg(test)]
mod geo_tests {
    use super::*;

    #[test]
    fn georust_points_convert_both_ways_and_are_validated() {
        let c = Coordinates::parse(48.8566, 2.3522).unwrap();
        let p: geo::Point<f64> = c.into();
        assert_eq!((p.x(), p.y()), (c.lng_deg(), c.lat_deg()));
        assert_eq!(Coordinates::try_from(p).unwrap(), c);
        assert_eq!(
            Coordinates::try_from(geo::Point::new(2.0, 91.0))
                .unwrap_err()
                .field,
            "lat"
        );
    }
}
