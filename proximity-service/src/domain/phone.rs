//! Phone number.

use super::text::bounded_text;
use super::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A phone number: trimmed, 3..=32 characters of digits, blanks and `+ - ( ) . /`, with at least
/// three digits (`+49 30 1234-567`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    /// Longest accepted value, in characters.
    pub const MAX_CHARS: usize = 32;

    /// Validates a phone number; the error names the field `phone`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let t = bounded_text("phone", s, Self::MAX_CHARS)?;
        if let Some(c) = t
            .chars()
            .find(|c| !(c.is_ascii_digit() || " +-()./".contains(*c)))
        {
            return Err(DomainError::new(
                "phone",
                format!("may contain only digits, blanks and + - ( ) . /, found {c:?}"),
            ));
        }
        if t.chars().filter(char::is_ascii_digit).count() < 3 {
            return Err(DomainError::new("phone", "must contain at least 3 digits"));
        }
        Ok(Self(t.to_owned()))
    }

    /// The phone number as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Phone {
    type Error = DomainError;
    fn try_from(v: String) -> Result<Self, Self::Error> {
        Self::parse(&v)
    }
}

impl From<Phone> for String {
    fn from(v: Phone) -> String {
        v.0
    }
}
