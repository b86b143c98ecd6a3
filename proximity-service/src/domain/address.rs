//! A postal address.

use super::text::bounded_text;
use super::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A postal address: trimmed, 1..=300 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Address(String);

impl Address {
    /// Longest accepted value, in characters.
    pub const MAX_CHARS: usize = 300;

    /// Validates the value; the error names the field `address`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Ok(Self(
            bounded_text("address", s, Self::MAX_CHARS)?.to_owned(),
        ))
    }

    /// The value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Address {
    type Error = DomainError;
    fn try_from(v: String) -> Result<Self, Self::Error> {
        Self::parse(&v)
    }
}

impl From<Address> for String {
    fn from(v: Address) -> String {
        v.0
    }
}
