//! Business name.

use super::text::bounded_text;
use super::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A business name: trimmed, 1..=200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BusinessName(String);

impl BusinessName {
    /// Longest accepted name, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Validates a name; the error names the field `name`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Ok(Self(bounded_text("name", s, Self::MAX_CHARS)?.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BusinessName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for BusinessName {
    type Error = DomainError;
    fn try_from(v: String) -> Result<Self, Self::Error> {
        Self::parse(&v)
    }
}

impl From<BusinessName> for String {
    fn from(v: BusinessName) -> String {
        v.0
    }
}

impl AsRef<str> for BusinessName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
