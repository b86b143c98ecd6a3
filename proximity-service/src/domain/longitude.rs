//! Longitude in degrees.

use super::{degrees, DomainError};
use serde::{Deserialize, Serialize};

/// A longitude in degrees: finite, within `-180..=180`, quantised to 1e-7 degree.
///
/// `-180` and `180` are both accepted and denote the same meridian; distances treat them alike.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Longitude(f64);

impl Longitude {
    /// Largest accepted magnitude, in degrees.
    const MAX: f64 = 180.0;

    /// Validates a longitude in degrees; the error names the field `lng`.
    pub fn parse(deg: f64) -> Result<Self, DomainError> {
        degrees::parse("lng", deg, Self::MAX).map(Self)
    }

    /// Parses a decimal string such as `"13.405"`.
    pub fn parse_str(s: &str) -> Result<Self, DomainError> {
        degrees::parse_str("lng", s, Self::MAX).map(Self)
    }

    /// The longitude in degrees.
    pub fn degrees(self) -> f64 {
        self.0
    }

    /// The longitude as an integer number of 1e-7 degrees (lossless).
    pub fn e7(self) -> i32 {
        degrees::to_e7(self.0)
    }

    /// Inverse of [`Longitude::e7`]; `None` when out of range.
    pub fn from_e7(e7: i32) -> Option<Self> {
        degrees::from_e7(e7, Self::MAX).map(Self)
    }
}

impl TryFrom<f64> for Longitude {
    type Error = DomainError;
    fn try_from(v: f64) -> Result<Self, Self::Error> {
        Self::parse(v)
    }
}

impl From<Longitude> for f64 {
    fn from(v: Longitude) -> f64 {
        v.0
    }
}
