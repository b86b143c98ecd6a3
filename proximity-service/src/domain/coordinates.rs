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
