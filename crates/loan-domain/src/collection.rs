//! The collection case aggregate: the collections team's file on one loan in arrears,
//! from opening to resolution.
//!
//! ```text
//! not_opened ──open (system)──▶ open ──resolve (system)──▶ resolved
//!                                │ ▲
//!                                └─┘ record_contact_attempt, record_promise_to_pay (collector)
//! ```
//!
//! A case is opened by the automation when a loan is more than N days past due and is
//! resolved by it when the loan is cured (no arrears any more), paid off or written off.
//! Collectors work the open case: they record every contact attempt and every promise to
//! pay. The case never changes the loan: it records what the collections team did about
//! it. Why a separate aggregate rather than loan events: collectors' work does not contend
//! with the loan's money commands (no optimistic-concurrency conflicts with repayments),
//! and the loan's history stays the history of money and lifecycle.
//!
//! [`decide`] checks role, then state, then payload, and also checks the system's claims
//! against the loan it is given (loaded by the caller): a case is opened only for a loan
//! in servicing that is past due on the business date, and the resolution must be what
//! the loan shows (cured: not past due; paid off; written off).

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::access::CommandKind;
use crate::error::DomainError;
use crate::ids::{CollectionCaseId, CustomerId, LoanId};
use crate::loan::{Account, Loan};
use crate::money::{Currency, Money};
use crate::servicing;
use crate::{Context, text};

/// The latest a promise to pay may fall, in days after the day it is recorded.
pub const MAX_PROMISE_DAYS: i64 = 90;

/// How a collector tried to reach the borrower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactChannel {
    Phone,
    Sms,
    Email,
    Letter,
    Visit,
}

/// What came of a contact attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactOutcome {
    /// The borrower was reached.
    Reached,
    NoAnswer,
    /// A message was left (voicemail, with a relative, at the door).
    LeftMessage,
    WrongNumber,
    /// The borrower was reached and refused to pay.
    Refused,
}

/// Why a case was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The loan has no arrears any more.
    Cured,
    /// The loan was settled in full.
    PaidOff,
    /// The loan was written off: collections on this case end.
    WrittenOff,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Cured => "cured",
            Resolution::PaidOff => "paid_off",
            Resolution::WrittenOff => "written_off",
        }
    }
}

/// `open_collection_case` (system): open a case for a loan in arrears.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenCollectionCase {
    pub case_id: CollectionCaseId,
    pub loan_id: LoanId,
    /// The team the case is assigned to, e.g. `collections`.
    pub team: String,
    /// Why the case is opened, with the figures used.
    pub reason: String,
}

/// `record_contact_attempt` (collector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordContactAttempt {
    pub case_id: CollectionCaseId,
    pub channel: ContactChannel,
    pub outcome: ContactOutcome,
    #[serde(default)]
    pub note: Option<String>,
    /// Not in the future, not before the case was opened.
    pub attempted_on: NaiveDate,
}

/// `record_promise_to_pay` (collector): the borrower promised to pay `amount` by `pay_by`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordPromiseToPay {
    pub case_id: CollectionCaseId,
    /// Positive, in the loan's currency.
    pub amount: Money,
    /// Today up to [`MAX_PROMISE_DAYS`] days ahead.
    pub pay_by: NaiveDate,
    #[serde(default)]
    pub note: Option<String>,
}

/// `resolve_collection_case` (system).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveCollectionCase {
    pub case_id: CollectionCaseId,
    pub resolution: Resolution,
    /// Why, with the figures used.
    pub reason: String,
}

/// A command addressed to a collection case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectionCaseCommand {
    Open(OpenCollectionCase),
    RecordContactAttempt(RecordContactAttempt),
    RecordPromiseToPay(RecordPromiseToPay),
    Resolve(ResolveCollectionCase),
}

impl CollectionCaseCommand {
    pub fn kind(&self) -> CommandKind {
        match self {
            CollectionCaseCommand::Open(_) => CommandKind::OpenCollectionCase,
            CollectionCaseCommand::RecordContactAttempt(_) => CommandKind::RecordContactAttempt,
            CollectionCaseCommand::RecordPromiseToPay(_) => CommandKind::RecordPromiseToPay,
            CollectionCaseCommand::Resolve(_) => CommandKind::ResolveCollectionCase,
        }
    }

    pub fn case_id(&self) -> CollectionCaseId {
        match self {
            CollectionCaseCommand::Open(c) => c.case_id,
            CollectionCaseCommand::RecordContactAttempt(c) => c.case_id,
            CollectionCaseCommand::RecordPromiseToPay(c) => c.case_id,
            CollectionCaseCommand::Resolve(c) => c.case_id,
        }
    }
}

/// A fact about a collection case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CollectionCaseEvent {
    CollectionCaseOpened {
        case_id: CollectionCaseId,
        loan_id: LoanId,
        customer_id: CustomerId,
        team: String,
        currency: Currency,
        /// Days past due of the loan on `opened_on`.
        days_past_due: u32,
        /// Arrears (principal, interest and penalty of installments due before
        /// `opened_on`, unpaid) on `opened_on`.
        overdue_amount: Money,
        reason: String,
        opened_on: NaiveDate,
    },
    ContactAttempted {
        channel: ContactChannel,
        outcome: ContactOutcome,
        note: Option<String>,
        attempted_on: NaiveDate,
    },
    PromiseToPayRecorded {
        amount: Money,
        pay_by: NaiveDate,
        note: Option<String>,
        promised_on: NaiveDate,
    },
    CollectionCaseResolved {
        resolution: Resolution,
        reason: String,
        /// Days past due of the loan on `resolved_on` (0 when cured).
        days_past_due: u32,
        resolved_on: NaiveDate,
    },
}

impl CollectionCaseEvent {
    /// Stable event type name, as stored.
    pub fn type_name(&self) -> &'static str {
        match self {
            CollectionCaseEvent::CollectionCaseOpened { .. } => "collection_case_opened",
            CollectionCaseEvent::ContactAttempted { .. } => "contact_attempted",
            CollectionCaseEvent::PromiseToPayRecorded { .. } => "promise_to_pay_recorded",
            CollectionCaseEvent::CollectionCaseResolved { .. } => "collection_case_resolved",
        }
    }

    /// The business date of the fact.
    pub fn business_date(&self) -> NaiveDate {
        match self {
            CollectionCaseEvent::CollectionCaseOpened { opened_on, .. } => *opened_on,
            CollectionCaseEvent::ContactAttempted { attempted_on, .. } => *attempted_on,
            CollectionCaseEvent::PromiseToPayRecorded { promised_on, .. } => *promised_on,
            CollectionCaseEvent::CollectionCaseResolved { resolved_on, .. } => *resolved_on,
        }
    }
}

/// One contact attempt on file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContactAttempt {
    pub channel: ContactChannel,
    pub outcome: ContactOutcome,
    pub note: Option<String>,
    pub attempted_on: NaiveDate,
}

/// One promise to pay on file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PromiseToPay {
    pub amount: Money,
    pub pay_by: NaiveDate,
    pub note: Option<String>,
    pub promised_on: NaiveDate,
}

/// Everything on a case's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CaseFile {
    pub case_id: CollectionCaseId,
    pub loan_id: LoanId,
    pub customer_id: CustomerId,
    pub team: String,
    pub currency: Currency,
    pub opened_on: NaiveDate,
    pub days_past_due_at_opening: u32,
    pub overdue_amount_at_opening: Money,
    pub reason: String,
    pub contact_attempts: Vec<ContactAttempt>,
    pub promises: Vec<PromiseToPay>,
    pub resolution: Option<Resolution>,
    pub resolved_on: Option<NaiveDate>,
}

/// The collection case aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", content = "case", rename_all = "snake_case")]
pub enum CollectionCase {
    #[default]
    NotOpened,
    Open(Box<CaseFile>),
    /// Final.
    Resolved(Box<CaseFile>),
}

impl CollectionCase {
    pub fn status(&self) -> &'static str {
        match self {
            CollectionCase::NotOpened => "not_opened",
            CollectionCase::Open(_) => "open",
            CollectionCase::Resolved(_) => "resolved",
        }
    }

    pub fn file(&self) -> Option<&CaseFile> {
        match self {
            CollectionCase::Open(file) | CollectionCase::Resolved(file) => Some(file),
            CollectionCase::NotOpened => None,
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self, CollectionCase::Open(_))
    }

    /// Rebuilds a case from its events.
    pub fn replay<'e>(events: impl IntoIterator<Item = &'e CollectionCaseEvent>) -> Self {
        events.into_iter().fold(CollectionCase::NotOpened, evolve)
    }
}

/// The book of a loan in servicing (disbursed, repaying, overdue), if it is one.
pub fn in_servicing(loan: &Loan) -> Option<&Account> {
    match loan {
        Loan::Disbursed(account) | Loan::Repaying(account) | Loan::Overdue(account) => {
            Some(account)
        }
        _ => None,
    }
}

/// Days past due and arrears of a loan in servicing on `day`, computed by the servicing
/// engine from the schedule and the payments that count.
pub fn arrears_on(account: &Account, day: NaiveDate) -> Result<(u32, Money), DomainError> {
    let position = account
        .position_as_of(&account.payments, day)
        .map_err(|_| DomainError::Overflow {
            context: "the loan's position",
        })?;
    let days = servicing::days_past_due(&account.schedule, &position.installments, day);
    let overdue = servicing::overdue_amount(&account.schedule, &position.installments, day);
    Ok((days, overdue.total()))
}

/// Decides a collection case command. `loan` is the case's loan (the command's loan for
/// an opening), loaded by the caller; `None` if it does not exist.
pub fn decide(
    case: &CollectionCase,
    command: &CollectionCaseCommand,
    loan: Option<&Loan>,
    ctx: &Context<'_>,
) -> Result<Vec<CollectionCaseEvent>, DomainError> {
    let kind = command.kind();
    kind.authorize(ctx.actor)?;
    let refuse = || DomainError::InvalidTransition {
        state: case.status(),
        command: kind.name(),
    };
    match (case, command) {
        (CollectionCase::NotOpened, CollectionCaseCommand::Open(c)) => {
            let team = text::label("team", &c.team)?;
            let reason = text::required("reason", &c.reason, 512)?;
            let loan = loan.ok_or_else(|| DomainError::NotFound {
                kind: "loan",
                id: c.loan_id.to_string(),
            })?;
            let account = in_servicing(loan).ok_or_else(|| {
                DomainError::rule(
                    "loan_not_in_servicing",
                    Some("loan_id"),
                    format!(
                        "loan {} is {}: only a disbursed, repaying or overdue loan can be in collections",
                        c.loan_id,
                        loan.status_name()
                    ),
                )
            })?;
            let (days_past_due, overdue_amount) = arrears_on(account, ctx.today)?;
            if days_past_due == 0 {
                return Err(DomainError::rule(
                    "loan_not_past_due",
                    Some("loan_id"),
                    format!("loan {} is not past due on {}", c.loan_id, ctx.today),
                ));
            }
            Ok(vec![CollectionCaseEvent::CollectionCaseOpened {
                case_id: c.case_id,
                loan_id: c.loan_id,
                customer_id: account.application.customer_id,
                team,
                currency: account.contract.currency.clone(),
                days_past_due,
                overdue_amount,
                reason,
                opened_on: ctx.today,
            }])
        }
        (
            CollectionCase::Open(file) | CollectionCase::Resolved(file),
            CollectionCaseCommand::Open(_),
        ) => Err(DomainError::AlreadyExists {
            kind: "collection_case",
            id: file.case_id.to_string(),
        }),
        (CollectionCase::NotOpened, _) => Err(DomainError::NotFound {
            kind: "collection_case",
            id: command.case_id().to_string(),
        }),
        (CollectionCase::Resolved(file), CollectionCaseCommand::Resolve(c)) => {
            // Resolving again the same way changes nothing; another way is refused.
            if file.resolution == Some(c.resolution) {
                text::required("reason", &c.reason, 512)?;
                Ok(vec![])
            } else {
                Err(refuse())
            }
        }
        (CollectionCase::Resolved(_), _) => Err(refuse()),
        (CollectionCase::Open(file), CollectionCaseCommand::RecordContactAttempt(c)) => {
            let note = text::optional("note", c.note.as_deref(), 512)?;
            if c.attempted_on > ctx.today {
                return Err(DomainError::validation(
                    "attempted_on",
                    format!(
                        "{} is in the future (today is {})",
                        c.attempted_on, ctx.today
                    ),
                ));
            }
            if c.attempted_on < file.opened_on {
                return Err(DomainError::validation(
                    "attempted_on",
                    format!(
                        "{} is before the case was opened ({})",
                        c.attempted_on, file.opened_on
                    ),
                ));
            }
            Ok(vec![CollectionCaseEvent::ContactAttempted {
                channel: c.channel,
                outcome: c.outcome,
                note,
                attempted_on: c.attempted_on,
            }])
        }
        (CollectionCase::Open(_), CollectionCaseCommand::RecordPromiseToPay(c)) => {
            let note = text::optional("note", c.note.as_deref(), 512)?;
            if !c.amount.is_positive() {
                return Err(DomainError::validation("amount", "must be positive"));
            }
            let ahead = (c.pay_by - ctx.today).num_days();
            if !(0..=MAX_PROMISE_DAYS).contains(&ahead) {
                return Err(DomainError::validation(
                    "pay_by",
                    format!(
                        "{} must fall between today ({}) and {MAX_PROMISE_DAYS} days ahead",
                        c.pay_by, ctx.today
                    ),
                ));
            }
            Ok(vec![CollectionCaseEvent::PromiseToPayRecorded {
                amount: c.amount,
                pay_by: c.pay_by,
                note,
                promised_on: ctx.today,
            }])
        }
        (CollectionCase::Open(file), CollectionCaseCommand::Resolve(c)) => {
            let reason = text::required("reason", &c.reason, 512)?;
            let loan = loan.ok_or_else(|| DomainError::NotFound {
                kind: "loan",
                id: file.loan_id.to_string(),
            })?;
            let mismatch = |shows: String| {
                DomainError::rule(
                    "resolution_does_not_match_loan",
                    Some("resolution"),
                    format!(
                        "cannot resolve as {}: loan {} {shows} on {}",
                        c.resolution.as_str(),
                        file.loan_id,
                        ctx.today
                    ),
                )
            };
            let days_past_due = match (c.resolution, loan) {
                (Resolution::PaidOff, Loan::PaidOff(_)) => 0,
                (Resolution::WrittenOff, Loan::WrittenOff(account)) => account.days_past_due(),
                (Resolution::Cured, loan) => match in_servicing(loan) {
                    Some(account) => match arrears_on(account, ctx.today)? {
                        (0, _) => 0,
                        (days, _) => return Err(mismatch(format!("is {days} days past due"))),
                    },
                    None => return Err(mismatch(format!("is {}", loan.status_name()))),
                },
                (_, loan) => return Err(mismatch(format!("is {}", loan.status_name()))),
            };
            Ok(vec![CollectionCaseEvent::CollectionCaseResolved {
                resolution: c.resolution,
                reason,
                days_past_due,
                resolved_on: ctx.today,
            }])
        }
    }
}

/// Applies a recorded event. Total: an event that does not fit the state (which `decide`
/// never produces) leaves the state unchanged.
pub fn evolve(case: CollectionCase, event: &CollectionCaseEvent) -> CollectionCase {
    use CollectionCaseEvent as E;
    match (case, event) {
        (
            CollectionCase::NotOpened,
            E::CollectionCaseOpened {
                case_id,
                loan_id,
                customer_id,
                team,
                currency,
                days_past_due,
                overdue_amount,
                reason,
                opened_on,
            },
        ) => CollectionCase::Open(Box::new(CaseFile {
            case_id: *case_id,
            loan_id: *loan_id,
            customer_id: *customer_id,
            team: team.clone(),
            currency: currency.clone(),
            opened_on: *opened_on,
            days_past_due_at_opening: *days_past_due,
            overdue_amount_at_opening: *overdue_amount,
            reason: reason.clone(),
            contact_attempts: Vec::new(),
            promises: Vec::new(),
            resolution: None,
            resolved_on: None,
        })),
        (CollectionCase::Open(mut file), event) => match event {
            E::CollectionCaseOpened { .. } => CollectionCase::Open(file),
            E::ContactAttempted {
                channel,
                outcome,
                note,
                attempted_on,
            } => {
                file.contact_attempts.push(ContactAttempt {
                    channel: *channel,
                    outcome: *outcome,
                    note: note.clone(),
                    attempted_on: *attempted_on,
                });
                CollectionCase::Open(file)
            }
            E::PromiseToPayRecorded {
                amount,
                pay_by,
                note,
                promised_on,
            } => {
                file.promises.push(PromiseToPay {
                    amount: *amount,
                    pay_by: *pay_by,
                    note: note.clone(),
                    promised_on: *promised_on,
                });
                CollectionCase::Open(file)
            }
            E::CollectionCaseResolved {
                resolution,
                resolved_on,
                ..
            } => {
                file.resolution = Some(*resolution);
                file.resolved_on = Some(*resolved_on);
                CollectionCase::Resolved(file)
            }
        },
        (case, _) => case,
    }
}
