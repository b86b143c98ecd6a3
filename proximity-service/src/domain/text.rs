//! The check every free-text field shares.

use super::error::DomainError;

/// Trims `s` and checks it is 1..=`max_chars` characters without control characters.
pub(super) fn bounded_text<'a>(
    field: &'static str,
    s: &'a str,
    max_chars: usize,
) -> Result<&'a str, DomainError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(DomainError::new(field, "must not be empty"));
    }
    let n = t.chars().count();
    if n > max_chars {
        return Err(DomainError::new(
            field,
            format!("must be at most {max_chars} characters, got {n}"),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(DomainError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(t)
}
