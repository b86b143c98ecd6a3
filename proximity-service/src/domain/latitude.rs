//! Latitude in degrees.

use super::{degrees, DomainError};
use serde::{Deserialize, Serialize};

/// A latitude in degrees: finite, within `-90..=90`, quantised to 1e-7 degree.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Latitude(f64);

impl Latitude {
    /// Largest accepted magnitude, in degrees.
    const MAX: f64 = 90.0;

    /// Validates a latitude in degrees; the error names the field `lat`.
    pub fn parse(deg: f64) -> Result<Self, DomainError> {
        degrees::parse("lat", deg, Self::MAX).map(Self)
    }

    /// Parses a decimal string such as `"52.52"`.
    pub fn parse_str(s: &str) -> Result<Self, DomainError> {
        degrees::parse_str("lat", s, Self::MAX).map(Self)
    }

    /// The latitude in degrees.
    pub fn degrees(self) -> f64 {
        self.0
    }

    /// The latitude as an integer number of 1e-7 degrees (lossless).
    pub fn e7(self) -> i32 {
        degrees::to_e7(self.0)
    }

    /// Inverse of [`Latitude::e7`]; `None` when out of range.
    pub fn from_e7(e7: i32) -> Option<Self> {
        degrees::from_e7(e7, Self::MAX).map(Self)
    }
}

impl TryFrom<f64> for Latitude {
    type Error = DomainError;
    fn try_from(v: f64) -> Result<Self, Self::Error> {
        Self::parse(v)
    }
}

impl From<Latitude> for f64 {
    fn from(v: Latitude) -> f64 {
        v.0
    }
}
