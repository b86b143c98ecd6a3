//! Business identifier.

use super::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A business id: a positive `i64` (a database `BIGINT` primary key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct BusinessId(i64);

impl BusinessId {
    /// Validates an id; the error names the field `id`.
    pub fn parse(v: i64) -> Result<Self, DomainError> {
        if v <= 0 {
            return Err(DomainError::new(
                "id",
                format!("must be a positive integer, got {v}"),
            ));
        }
        Ok(Self(v))
    }

    /// The raw id.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl FromStr for BusinessId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v: i64 = s
            .trim()
            .parse()
            .map_err(|_| DomainError::new("id", format!("not an integer id: {s:?}")))?;
        Self::parse(v)
    }
}

impl TryFrom<i64> for BusinessId {
    type Error = DomainError;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        Self::parse(v)
    }
}

impl From<BusinessId> for i64 {
    fn from(v: BusinessId) -> i64 {
        v.0
    }
}

impl fmt::Display for BusinessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
