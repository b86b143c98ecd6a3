//! Opening hours as free text (e.g. `Mo-Fr 08:00-18:00`).

use super::text::bounded_text;
use super::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Opening hours as free text (e.g. `Mo-Fr 08:00-18:00`): trimmed, 1..=200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hours(String);

impl Hours {
    /// Longest accepted value, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Validates the value; the error names the field `hours`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Ok(Self(bounded_text("hours", s, Self::MAX_CHARS)?.to_owned()))
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Hours {
    type Error = DomainError;
    fn try_from(v: String) -> Result<Self, Self::Error> {
        Self::parse(&v)
    }
}

impl From<Hours> for String {
    fn from(v: Hours) -> String {
        v.0
    }
}
