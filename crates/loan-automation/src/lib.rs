//! Automation rules as process managers.
//!
//! Lending teams run on rules that fire on the calendar and on events. Here each rule is a
//! process manager: it reads the event stream (its own durable JetStream consumer) and
//! the clock, keeps its own state, and acts **only** by sending commands through the
//! command service (NATS request/reply, as the system actor) or by publishing
//! notifications on `<prefix>.notify.<kind>` for an SMS / e-mail / app gateway. It never
//! writes the event log or the read models itself.
//!
//! Module map: [`rules`] (the pure rule logic: portfolio and day in, actions with reasons
//! out), [`portfolio`] (the state the rules read, folded from the stream with the
//! domain's own `evolve`), [`calendar`] (business days), [`outbox`] (progress and the
//! outbox in PostgreSQL schema `automation`: the exactly-once story), [`worker`] (the
//! I/O shell: consume, run the days, send).
//!
//! Rules in this version: the daily delinquency sweep, due reminders, the follow-up watch,
//! collections (opening and resolving collection cases), lead routing, risk alerts
//! (overdue-rate crossings per segment, credit score drops) and the daily report (also
//! kept as the read model `automation.daily_reports`) (docs/automation.md).

pub mod calendar;
pub mod outbox;
pub mod portfolio;
pub mod rules;
pub mod worker;

pub use calendar::BusinessCalendar;
/// The clock is an input: the system clock in the binary, a manual one in tests and the demo.
pub use loan_engine::clock;
pub use rules::{Action, Effect, Rule, RuleConfig};
pub use worker::{DispatchReport, Worker, WorkerConfig, run, sweep};

/// Why the automation worker stopped or could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AutomationError {
    /// A setting is invalid (weekend days, manager mapping, ...).
    #[error("configuration: {0}")]
    Config(String),
    #[error("cannot connect to NATS at {url}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    /// A NATS or JetStream operation failed (transient: retried by the run loop).
    #[error("NATS: {context}: {message}")]
    Nats { context: String, message: String },
    #[error("event store: {0}")]
    Store(#[from] loan_store::StoreError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("schema migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("encoding: {0}")]
    Encoding(#[from] serde_json::Error),
}

impl AutomationError {
    pub(crate) fn nats(context: impl Into<String>, error: impl std::fmt::Display) -> Self {
        AutomationError::Nats {
            context: context.into(),
            message: error.to_string(),
        }
    }
}

// Dev-dependencies of the integration tests; the unit-test target links them too.
#[cfg(test)]
use {loan_command_service as _, loan_testkit as _};
