//! Search radius in metres.

use super::DomainError;
use serde::{Deserialize, Serialize};

/// A search radius in metres: finite, `> 0` and `<= RadiusM::MAX_M`. Default 5000 m.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct RadiusM(f64);

impl RadiusM {
    /// Largest accepted radius (50 km).
    pub const MAX_M: f64 = 50_000.0;
    /// Radius used when the client gives none.
    pub const DEFAULT_M: f64 = 5_000.0;

    /// Validates a radius in metres; the error names the field `radius`.
    pub fn parse(m: f64) -> Result<Self, DomainError> {
        if !m.is_finite() {
            return Err(DomainError::new("radius", "must be a finite number"));
        }
        if m <= 0.0 {
            return Err(DomainError::new(
                "radius",
                format!("must be greater than 0 metres, got {m}"),
            ));
        }
        if m > Self::MAX_M {
            return Err(DomainError::new(
                "radius",
                format!("must be at most {} metres, got {m}", Self::MAX_M),
            ));
        }
        Ok(Self(m))
    }

    /// Parses a decimal string such as `"1500"`.
    pub fn parse_str(s: &str) -> Result<Self, DomainError> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| DomainError::new("radius", format!("not a number: {s:?}")))?;
        Self::parse(v)
    }

    /// The radius in metres.
    pub fn metres(self) -> f64 {
        self.0
    }
}

impl Default for RadiusM {
    fn default() -> Self {
        Self(Self::DEFAULT_M)
    }
}

impl TryFrom<f64> for RadiusM {
    type Error = DomainError;
    fn try_from(v: f64) -> Result<Self, Self::Error> {
        Self::parse(v)
    }
}

impl From<RadiusM> for f64 {
    fn from(v: RadiusM) -> f64 {
        v.0
    }
}
