//! Latitude in degrees.

use super::DomainError;
use serde::{Deserialize, Serialize};

/// Coordinates are kept at a resolution of 1e-7 degree (≈ 1.1 cm), like OpenStreetMap.
///
/// Quantising at the edge means every layer (index, database, brute-force reference) sees the
/// very same `f64`, and lets the in-memory index store a coordinate losslessly in an `i32`.
pub const DEGREE_SCALE: f64 = 1e7;

/// Rounds `deg` to the 1e-7 degree grid.
pub(crate) fn quantise(deg: f64) -> f64 {
    (deg * DEGREE_SCALE).round() / DEGREE_SCALE
}

/// A latitude in degrees: finite, within `-90..=90`, quantised to 1e-7 degree.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Latitude(f64);

impl Latitude {
    /// Validates a latitude in degrees; the error names the field `lat`.
    pub fn parse(deg: f64) -> Result<Self, DomainError> {
        if !deg.is_finite() {
            return Err(DomainError::new("lat", "must be a finite number"));
        }
        if !(-90.0..=90.0).contains(&deg) {
            return Err(DomainError::new(
                "lat",
                format!("must be between -90 and 90 degrees, got {deg}"),
            ));
        }
        Ok(Self(quantise(deg)))
    }

    /// Parses a decimal string such as `"52.52"`.
    pub fn parse_str(s: &str) -> Result<Self, DomainError> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| DomainError::new("lat", format!("not a number: {s:?}")))?;
        Self::parse(v)
    }

    /// The latitude in degrees.
    pub fn degrees(self) -> f64 {
        self.0
    }

    /// The latitude as an integer number of 1e-7 degrees (lossless).
    pub fn e7(self) -> i32 {
        (self.0 * DEGREE_SCALE).round() as i32
    }

    /// Inverse of [`Latitude::e7`]; `None` when out of range.
    pub fn from_e7(e7: i32) -> Option<Self> {
        let deg = f64::from(e7) / DEGREE_SCALE;
        (-90.0..=90.0).contains(&deg).then_some(Self(deg))
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
