//! Business category.

use super::text::bounded_text;
use super::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A category such as `cafe` or `city`: trimmed, lower-cased, 1..=64 characters, no control
/// characters. Two spellings that differ only in case or surrounding blanks are the same category.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Category(String);

impl Category {
    /// Longest accepted category, in characters.
    pub const MAX_CHARS: usize = 64;

    /// Validates and normalises a category; the error names the field `category`.
    ///
    /// The bound holds for the lower-cased form too (some letters lower-case to two
    /// characters, e.g. `İ` → `i̇`), so a stored category always parses again.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let lower = bounded_text("category", s, Self::MAX_CHARS)?.to_lowercase();
        let n = lower.chars().count();
        if n > Self::MAX_CHARS {
            return Err(DomainError::new(
                "category",
                format!(
                    "must be at most {} characters once lower-cased, got {n}",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Self(lower))
    }

    /// The normalised category.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Category {
    type Error = DomainError;
    fn try_from(v: String) -> Result<Self, Self::Error> {
        Self::parse(&v)
    }
}

impl TryFrom<&str> for Category {
    type Error = DomainError;
    fn try_from(v: &str) -> Result<Self, Self::Error> {
        Self::parse(v)
    }
}

impl From<Category> for String {
    fn from(v: Category) -> String {
        v.0
    }
}

impl AsRef<str> for Category {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
