//! The pure domain core of the loan lifecycle engine.
//!
//! Three aggregates, [`customer::Customer`], [`loan::Loan`] and
//! [`collection::CollectionCase`], each with a synchronous
//! `decide(&state, &command, &Context) -> Result<Vec<Event>, DomainError>` and a total
//! `evolve(state, &event) -> state`. Everything from outside (the acting user, today's
//! date, the customer a loan belongs to, the configured rules) arrives as an argument:
//! this crate performs no I/O, reads no clock and draws no random numbers, so every
//! test and every replay is deterministic.
//!
//! Module map, top-down: [`access`] (roles and the permission table), [`customer`],
//! [`loan`] (the lifecycle state machine), [`collection`] (collection cases on loans in
//! arrears), [`servicing`] (allocation, penalty, days past
//! due: the money engine), [`schedule`] (repayment schedules), [`policy`] (risk grade,
//! value tier, automated decisions), [`money`] and [`pii`] (value types).

pub mod access;
pub mod collection;
pub mod customer;
pub mod error;
pub mod ids;
pub mod loan;
pub mod money;
pub mod pii;
pub mod policy;
pub mod schedule;
pub mod servicing;
mod text;

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use access::{Actor, AggregateType, CommandKind, Role};
pub use error::DomainError;
pub use ids::{CollectionCaseId, CustomerId, LoanId};
pub use money::{Currency, Money, Rate};

/// What a command is decided against, besides the aggregate's own state.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Who sends the command.
    pub actor: &'a Actor,
    /// The business date at which the command is recorded (from the caller's clock, in the
    /// lender's time zone). Value dates after it are refused as being in the future.
    pub today: NaiveDate,
    /// Configured rules (decision policy, approval limits).
    pub rules: &'a LendingRules,
}

/// Configuration of the lending rules a command service runs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LendingRules {
    pub policy: policy::DecisionPolicy,
    /// Approvals of a principal above this need the `senior_underwriter` role.
    pub senior_approval_threshold: Money,
}

impl Default for LendingRules {
    fn default() -> Self {
        LendingRules {
            policy: policy::DecisionPolicy::standard(),
            senior_approval_threshold: Money::parse("200000.00").expect("constant amount"),
        }
    }
}

/// Versions of the rules that produced a money event, recorded in the event so replaying
/// old history reproduces the figures reported then, even after a rule changes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleVersions {
    pub schedule: String,
    pub rounding: String,
    pub day_count: String,
    pub allocation: String,
    pub penalty: String,
}

impl RuleVersions {
    /// The rules this build of the engine applies.
    pub fn current() -> Self {
        RuleVersions {
            schedule: schedule::SCHEDULE_CALCULATOR.into(),
            rounding: money::ROUNDING_RULE.into(),
            day_count: schedule::DAY_COUNT.into(),
            allocation: servicing::ALLOCATION_RULE.into(),
            penalty: servicing::PENALTY_RULE.into(),
        }
    }
}

// Dev-dependencies of the integration tests; the unit-test target links them too.
#[cfg(test)]
use {proptest as _, rust_decimal_macros as _, serde_json as _};
