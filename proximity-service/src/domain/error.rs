//! The one error type of the domain: which field was rejected and why.

use std::fmt;

/// A value was rejected while parsing it into a domain type.
///
/// `field` is the name of the input field as the outside world spells it (`lat`, `radius`,
/// `cursor` …), so the HTTP layer can answer `{"error": {"field": …}}` and the importer can say
/// which column of which line was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainError {
    /// The input field that was rejected (e.g. `"lat"`).
    pub field: &'static str,
    /// A human-readable reason, without the field name.
    pub message: String,
}

impl DomainError {
    /// Builds an error for `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for DomainError {}
