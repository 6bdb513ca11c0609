//! Why a command was refused.
//!
//! One enum for the whole domain boundary. Each variant carries what a caller needs to
//! fix the request: the offending field, the state and command of a refused transition,
//! the roles that would have been allowed. [`DomainError::code`] is the stable code that
//! services put on the wire; it never changes for an existing variant.

use crate::access::Role;
use crate::money::MoneyError;

/// A refused command. Refusals never produce events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field of the command is out of range or badly formed.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },

    /// The command is not allowed in the aggregate's current state.
    #[error("command {command} is not allowed in state {state}")]
    InvalidTransition {
        state: &'static str,
        command: &'static str,
    },

    /// The caller holds none of the roles allowed to issue the command.
    #[error("command {command} requires one of the roles {}", join_roles(.required))]
    Forbidden {
        command: &'static str,
        required: Vec<Role>,
    },

    /// The aggregate (or one the command depends on) does not exist.
    #[error("{kind} {id} does not exist")]
    NotFound { kind: &'static str, id: String },

    /// The aggregate already exists (e.g. registering the same customer id twice).
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: &'static str, id: String },

    /// A business rule refuses the command (overpayment, unverified identity, missing
    /// documents, ...). `field` names the input that would have to change, if any.
    #[error("{message}")]
    RuleViolated {
        rule: &'static str,
        field: Option<String>,
        message: String,
    },

    /// Arithmetic that would overflow the supported range.
    #[error("arithmetic overflow while computing {context}")]
    Overflow { context: &'static str },
}

fn join_roles(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|role| role.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl DomainError {
    /// The stable error code put on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::Validation { .. } => "validation_failed",
            DomainError::InvalidTransition { .. } => "invalid_transition",
            DomainError::Forbidden { .. } => "forbidden",
            DomainError::NotFound { .. } => "not_found",
            DomainError::AlreadyExists { .. } => "already_exists",
            DomainError::RuleViolated { .. } => "rule_violated",
            DomainError::Overflow { .. } => "validation_failed",
        }
    }

    /// The offending input field, when one can be named.
    pub fn field(&self) -> Option<&str> {
        match self {
            DomainError::Validation { field, .. } => Some(field),
            DomainError::RuleViolated { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn rule(rule: &'static str, field: Option<&str>, message: impl Into<String>) -> Self {
        DomainError::RuleViolated {
            rule,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    /// Wraps a money error as a validation failure of `field`.
    pub fn money(field: &str, error: MoneyError) -> Self {
        match error {
            MoneyError::Overflow => DomainError::Overflow { context: "amounts" },
            other => DomainError::validation(field, other.to_string()),
        }
    }
}
