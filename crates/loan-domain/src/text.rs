//! Checks for free-text and label fields of commands.

use crate::error::DomainError;

/// A required free-text field: trimmed, non-empty, at most `max` characters, no control
/// characters.
pub(crate) fn required(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(DomainError::validation(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(DomainError::validation(
            field,
            format!("longer than {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(DomainError::validation(
            field,
            "contains control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// An optional free-text field; blank counts as absent.
pub(crate) fn optional(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, DomainError> {
    match value {
        Some(text) if !text.trim().is_empty() => required(field, text, max).map(Some),
        _ => Ok(None),
    }
}

/// A machine label (channel, source, method, officer id): 1..=64 of `a-z 0-9 _ - . : @`.
pub(crate) fn label(field: &str, value: &str) -> Result<String, DomainError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.:@".contains(&b));
    if !ok {
        return Err(DomainError::validation(
            field,
            "must be 1 to 64 characters of a-z, 0-9, _ - . : @",
        ));
    }
    Ok(value.to_owned())
}
