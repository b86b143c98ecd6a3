//! Longitude in degrees.

use super::latitude::{quantise, DEGREE_SCALE};
use super::DomainError;
use serde::{Deserialize, Serialize};

/// A longitude in degrees: finite, within `-180..=180`, quantised to 1e-7 degree.
///
/// `-180` and `180` are both accepted and denote the same meridian; distances treat them alike.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Longitude(f64);

impl Longitude {
    /// Validates a longitude in degrees; the error names the field `lng`.
    pub fn parse(deg: f64) -> Result<Self, DomainError> {
        if !deg.is_finite() {
            return Err(DomainError::new("lng", "must be a finite number"));
        }
        if !(-180.0..=180.0).contains(&deg) {
            return Err(DomainError::new(
                "lng",
                format!("must be between -180 and 180 degrees, got {deg}"),
            ));
        }
        Ok(Self(quantise(deg)))
    }

    /// Parses a decimal string such as `"13.405"`.
    pub fn parse_str(s: &str) -> Result<Self, DomainError> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| DomainError::new("lng", format!("not a number: {s:?}")))?;
        Self::parse(v)
    }

    /// The longitude in degrees.
    pub fn degrees(self) -> f64 {
        self.0
    }

    /// The longitude as an integer number of 1e-7 degrees (lossless).
    pub fn e7(self) -> i32 {
        (self.0 * DEGREE_SCALE).round() as i32
    }

    /// Inverse of [`Longitude::e7`]; `None` when out of range.
    pub fn from_e7(e7: i32) -> Option<Self> {
        let deg = f64::from(e7) / DEGREE_SCALE;
        (-180.0..=180.0).contains(&deg).then_some(Self(deg))
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
