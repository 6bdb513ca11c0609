//! Replies to commands, and the stable error codes.
//!
//! [`ErrorReply::from_domain`] is the one place where a domain refusal becomes what a
//! caller sees; services add their own codes (`conflict`, `unavailable`, ...) for
//! failures outside the domain. Codes never change meaning once published.

use loan_domain::{AggregateType, DomainError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::EventEnvelope;

/// Stable error codes. Callers branch on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is not JSON, too large, or too deeply nested. Do not retry unchanged.
    Malformed,
    /// A field has the wrong type, an unknown name, or a value out of range.
    ValidationFailed,
    /// The command is not allowed in the aggregate's current state.
    InvalidTransition,
    /// The caller lacks a role the command requires.
    Forbidden,
    /// The aggregate (or one it depends on) does not exist.
    NotFound,
    /// The aggregate already exists.
    AlreadyExists,
    /// A business rule refuses the command (overpayment, missing documents, ...).
    RuleViolated,
    /// Concurrent writers kept changing the aggregate; retrying later may succeed.
    Conflict,
    /// The command id was already used with a different payload.
    IdempotencyMismatch,
    /// No command is published on that subject.
    UnknownCommand,
    /// A dependency (the event store) is unavailable; the outcome is unknown unless
    /// retried with the same command id.
    Unavailable,
    /// A bug; reported and logged, nothing was written.
    Internal,
}

impl ErrorCode {
    /// Whether resending the same command (same id) may succeed.
    pub fn retryable(self) -> bool {
        matches!(self, ErrorCode::Conflict | ErrorCode::Unavailable)
    }
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorReply {
    pub code: ErrorCode,
    /// A sentence for people; never contains sensitive values.
    pub message: String,
    /// Path of the offending input field (e.g. `payload.amount`), when one can be named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ErrorReply {
    pub fn new(code: ErrorCode, message: impl Into<String>, field: Option<String>) -> Self {
        ErrorReply {
            code,
            message: message.into(),
            field,
        }
    }

    /// The mapping from domain refusals to wire errors. Fields named by the domain are
    /// payload fields, so they are reported as `payload.<field>`.
    pub fn from_domain(error: &DomainError) -> Self {
        let code = match error {
            DomainError::Validation { .. } | DomainError::Overflow { .. } => {
                ErrorCode::ValidationFailed
            }
            DomainError::InvalidTransition { .. } => ErrorCode::InvalidTransition,
            DomainError::Forbidden { .. } => ErrorCode::Forbidden,
            DomainError::NotFound { .. } => ErrorCode::NotFound,
            DomainError::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            DomainError::RuleViolated { .. } => ErrorCode::RuleViolated,
        };
        ErrorReply {
            code,
            message: error.to_string(),
            field: error.field().map(|field| format!("payload.{field}")),
        }
    }
}

/// The reply to a command request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum CommandReply {
    /// The command was applied (or had already been applied: same command id). `events`
    /// may be empty when the command changed nothing (e.g. the same payment twice).
    Ok {
        aggregate_type: AggregateType,
        aggregate_id: Uuid,
        version: u64,
        events: Vec<EventEnvelope>,
    },
    Error {
        error: ErrorReply,
    },
}

impl CommandReply {
    pub fn error(code: ErrorCode, message: impl Into<String>, field: Option<String>) -> Self {
        CommandReply::Error {
            error: ErrorReply::new(code, message, field),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_fields_are_reported_under_payload() {
        let reply = ErrorReply::from_domain(&DomainError::validation(
            "amount",
            "must be positive, got 0.00",
        ));
        assert_eq!(reply.code, ErrorCode::ValidationFailed);
        assert_eq!(reply.field.as_deref(), Some("payload.amount"));
        let reply = ErrorReply::from_domain(&DomainError::InvalidTransition {
            state: "lead",
            command: "disburse_loan",
        });
        assert_eq!(reply.code, ErrorCode::InvalidTransition);
        assert_eq!(
            reply.message,
            "command disburse_loan is not allowed in state lead"
        );
        assert_eq!(reply.field, None);
    }
}
