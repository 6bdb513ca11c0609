//! The auditors' tools, as a library the `loan audit` commands are thin shells around.
//!
//! Auditors ask four questions of the event log, and each module answers one:
//!
//! * [`export`] — give me the history (all of it, a range, or one customer with all their
//!   loans) as JSON lines with a manifest, each commit exactly as stored so its hash chain
//!   can be recomputed away from our systems;
//! * [`verify`] — has anyone altered it? Recomputes every link of every aggregate's hash
//!   chain, names the first broken one, and compares the result with a manifest;
//! * [`history`] — what happened to this loan (or customer) and who did it, with the
//!   reasons of automated decisions, sensitive values masked unless revealed;
//! * [`timeline`] — what was a loan's state, and the portfolio's delinquency, on a past
//!   business date, as the system knew it then or as we know it now;
//! * [`import`] — put this export into an embedded store I can query: verified first,
//!   then written at its original positions with its exact bytes.
//!
//! Everything reads the log through [`log::LogReader`], from a live JetStream stream, an
//! export file or an embedded SQLite store, so every answer can be reproduced offline
//! from an export.

pub mod export;
pub mod history;
pub mod import;
pub mod log;
pub mod timeline;
pub mod verify;

pub use loan_engine::{MasterKey, Vault};

// Dev-dependencies of the integration tests and the example; the unit-test target links them too.
#[cfg(test)]
use {loan_testkit as _, tempfile as _, tokio as _};

/// Why an audit could not be answered. Tampering is not an error: it is the answer of
/// [`verify`].
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the event stream cannot be read: {0}")]
    Stream(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}, line {line}: {reason}")]
    Format {
        what: String,
        line: u64,
        reason: String,
    },
    #[error("position {position}: {reason}")]
    Corrupt { position: u64, reason: String },
    #[error(transparent)]
    Store(#[from] loan_store::StoreError),
    #[error("{0}")]
    Invalid(String),
}

impl AuditError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        AuditError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn stream(context: &str, error: impl std::fmt::Display) -> Self {
        AuditError::Stream(format!("{context}: {error}"))
    }
}
