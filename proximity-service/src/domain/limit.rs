//! Page size.

use super::DomainError;
use serde::{Deserialize, Serialize};

/// Number of results per page: `1..=200`, default 20.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Limit(u32);

impl Limit {
    /// Largest page.
    pub const MAX: u32 = 200;
    /// Page size used when the client gives none.
    pub const DEFAULT: u32 = 20;

    /// Validates a page size; the error names the field `limit`.
    pub fn parse(n: i64) -> Result<Self, DomainError> {
        if n < 1 || n > i64::from(Self::MAX) {
            return Err(DomainError::new(
                "limit",
                format!("must be between 1 and {}, got {n}", Self::MAX),
            ));
        }
        Ok(Self(n as u32))
    }

    /// Parses a decimal integer string.
    pub fn parse_str(s: &str) -> Result<Self, DomainError> {
        let v: i64 = s
            .trim()
            .parse()
            .map_err(|_| DomainError::new("limit", format!("not an integer: {s:?}")))?;
        Self::parse(v)
    }

    /// The page size.
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

impl TryFrom<i64> for Limit {
    type Error = DomainError;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        Self::parse(v)
    }
}

impl From<Limit> for u32 {
    fn from(v: Limit) -> u32 {
        v.0
    }
}
