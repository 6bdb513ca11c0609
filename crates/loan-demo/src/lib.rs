//! The demo lending book: a seeded synthetic population run for months of simulated time
//! through the real command path.
//!
//! `loan demo` (the project's main job) needs a book that looks like a lender's: a few
//! thousand customers from several channels and regions with plausible incomes, debts and
//! credit scores; applications through the automated decision policy (approved, referred
//! to a person, rejected, withdrawn); contracts with both repayment methods; then month
//! after month on-time, late, partial, backdated and reversed repayments, loans going
//! overdue, curing, being written off or paid off early; a few customers erased.
//!
//! Nothing is written behind the engine's back: every step is a command envelope sent
//! through a [`CommandPath`] — the embedded engine in one process, or the NATS command
//! service — and must be accepted. The same seed gives the same customers, loans and
//! command ids, so the printed figures repeat run after run.
//!
//! * [`people`]: who the borrowers are and what they ask for;
//! * [`borrowing`]: what a borrower pays, asked of the domain's servicing functions;
//! * [`simulation`]: the calendar that plays every story day by day.

pub mod borrowing;
pub mod people;
pub mod simulation;

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use loan_contract::CommandReply;
use loan_domain::{CommandKind, Money};
use loan_engine::Engine;
use loan_store::EventStore;
use uuid::Uuid;

pub use simulation::run;

/// The size and shape of the book.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Same seed, same book.
    pub seed: u64,
    /// Customers onboarded (each applies for one loan).
    pub customers: usize,
    /// First simulated business date.
    pub start: NaiveDate,
    /// Months of simulated time (customers arrive during the first 60%).
    pub months: u32,
    /// Aggregates whose steps of a day run concurrently.
    pub concurrency: usize,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            seed: 2026,
            customers: 2000,
            start: NaiveDate::from_ymd_opt(2025, 1, 2).unwrap_or_default(),
            months: 18,
            concurrency: 32,
        }
    }
}

/// Where the demo's commands go: the same envelope and reply as over NATS.
pub trait CommandPath: Send + Sync {
    /// Sends one command of `kind` (the envelope as JSON bytes), received at `now`.
    fn send(
        &self,
        kind: CommandKind,
        body: Vec<u8>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = CommandReply> + Send;
}

/// The engine itself (embedded mode): decode → load → decide → one commit → reply.
impl<S: EventStore> CommandPath for Engine<S> {
    async fn send(&self, kind: CommandKind, body: Vec<u8>, now: DateTime<Utc>) -> CommandReply {
        self.execute(kind, &body, now).await
    }
}

/// What the simulation did, counted as it went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub seed: u64,
    pub start: NaiveDate,
    /// The day after the last simulated day (the natural report date).
    pub end: NaiveDate,
    pub commands: u64,
    pub customers: u64,
    pub applications: u64,
    pub approved_automatically: u64,
    pub referred: u64,
    pub approved_manually: u64,
    pub rejected: u64,
    pub withdrawn: u64,
    pub disbursed_loans: u64,
    pub disbursed: Money,
    pub repayments: u64,
    pub repaid: Money,
    pub late_payments: u64,
    pub partial_payments: u64,
    pub backdated_payments: u64,
    pub reversed_payments: u64,
    pub cured: u64,
    pub paid_off: u64,
    pub written_off: u64,
    pub evaluations: u64,
    pub erased: u64,
    /// A customer worth looking at (a loan that went overdue and was cured).
    pub showcase: Option<Uuid>,
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("invalid demo configuration: {0}")]
    Config(&'static str),
    #[error("could not encode a command: {0}")]
    Encode(String),
    /// Every demo command is meant to be valid: a refusal is a bug worth seeing.
    #[error("{command} for {aggregate} on {on} was refused: {code}: {message}")]
    Refused {
        command: CommandKind,
        on: NaiveDate,
        aggregate: Uuid,
        code: String,
        message: String,
    },
    #[error("unexpected reply: {0}")]
    Unexpected(String),
}

// Dev-dependency of the integration tests; the unit-test target links it too.
#[cfg(test)]
use tokio as _;
