//! The loan aggregate: the lifecycle state machine from lead to closure.
//!
//! ```text
//! lead ──submit──▶ review ──approve──▶ (approved) ──sign──▶ signed ──disburse──▶ disbursed
//!  │                │  └──reject──▶ rejected                  │                    │ repay
//!  └──withdraw──────┴──────────────▶ withdrawn ◀──withdraw────┘                    ▼
//!                          overdue ◀──evaluate / money events──▶ repaying ──settle──▶ paid_off
//!                             └──write off──▶ written_off          (a reversal can reopen paid_off)
//! ```
//!
//! [`decide`] checks the caller's role, then the state, then the payload, and returns the
//! events; [`evolve`] applies one event and never fails. Money commands (repayment,
//! reversal, delinquency evaluation) recompute the position with [`crate::servicing`] and
//! record the net change, plus any aging-bucket and status change, in the same commit.

mod command;
mod event;

pub use command::*;
pub use event::*;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::access::{CommandKind, Role};
use crate::customer::{Customer, Profile};
use crate::error::DomainError;
use crate::ids::{CustomerId, LoanId};
use crate::money::{Currency, Money, Rate};
use crate::policy::{self, AutomatedDecision, Outcome, RuleResult};
use crate::schedule::{MAX_TERM_MONTHS, Schedule, ScheduleTerms, build_schedule};
use crate::servicing::{
    self, AgingBucket, InstallmentPosition, Outstanding, Payment, PenaltyTerms, Position,
    PositionDelta,
};
use crate::{Context, RuleVersions, text};

/// Highest annual rate a contract may carry (the legal ceiling the lender observes).
pub const MAX_ANNUAL_RATE: Decimal = Decimal::from_parts(36, 0, 0, false, 2);
/// Highest daily penalty rate.
pub const MAX_DAILY_PENALTY_RATE: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
/// Longest grace period.
pub const MAX_GRACE_DAYS: u32 = 30;
/// The first due date must fall 1..=62 days after the disbursement value date: every
/// period, the first included, accrues one full month of interest.
pub const MAX_FIRST_PERIOD_DAYS: i64 = 62;

/// One logged follow-up with the prospect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FollowUp {
    pub note: String,
    pub next_follow_up_on: Option<NaiveDate>,
    pub logged_on: NaiveDate,
}

/// Where the review stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Pending,
    /// The policy referred the application to a person.
    Referred,
    Approved {
        approved_amount: Money,
        annual_rate: Rate,
        term_months: u32,
        approver: Approver,
    },
}

/// The application part of a loan, from lead to decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Application {
    pub loan_id: LoanId,
    pub customer_id: CustomerId,
    pub channel: String,
    pub purpose: LoanPurpose,
    pub requested_amount: Money,
    pub currency: Currency,
    pub term_months: u32,
    pub captured_on: NaiveDate,
    pub officer_id: Option<String>,
    pub follow_ups: Vec<FollowUp>,
    pub documents: Vec<DocumentKind>,
    pub verdict: Verdict,
    pub automated_decisions: Vec<AutomatedDecision>,
    /// Reasons of a rejection or withdrawal.
    pub closing_reasons: Vec<String>,
}

/// A disbursed loan's book: contract, schedule, payments and the recorded position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Account {
    pub application: Application,
    pub contract: Contract,
    pub payout_reference: String,
    pub disbursed_on: NaiveDate,
    pub schedule: Schedule,
    pub rules: RuleVersions,
    /// Payments that count, in recording order.
    pub payments: Vec<Payment>,
    pub reversed_references: Vec<String>,
    /// Recorded position, one entry per installment, as of `position_date`.
    pub position: Vec<InstallmentPosition>,
    /// The date the book has been brought to by the last money event.
    pub position_date: NaiveDate,
    /// Aging bucket as of `position_date`.
    pub bucket: AgingBucket,
    pub written_off_on: Option<NaiveDate>,
}

impl Account {
    fn penalty_terms(&self) -> PenaltyTerms {
        PenaltyTerms {
            grace_days: self.contract.grace_days,
            daily_penalty_rate: self.contract.daily_penalty_rate,
        }
    }

    /// Recomputes the position as of `as_of` with the given payments.
    pub fn position_as_of(
        &self,
        payments: &[Payment],
        as_of: NaiveDate,
    ) -> Result<Position, servicing::ServicingError> {
        servicing::compute_position(&self.schedule, self.penalty_terms(), payments, as_of)
    }

    /// What a payment value-dated `value_date` must be to settle the loan now.
    pub fn payoff_amount(&self, value_date: NaiveDate) -> Result<Money, servicing::ServicingError> {
        servicing::payoff_amount(
            &self.schedule,
            self.penalty_terms(),
            &self.payments,
            value_date,
        )
    }

    /// Days past due as of the position date, from the recorded position.
    pub fn days_past_due(&self) -> u32 {
        servicing::days_past_due(&self.schedule, &self.position, self.position_date)
    }

    pub fn outstanding(&self) -> Outstanding {
        servicing::outstanding(&self.schedule, &self.position)
    }

    /// The status the book implies (for a loan that is not written off).
    fn implied_status(
        &self,
        positions: &[InstallmentPosition],
        payments: &[Payment],
        as_of: NaiveDate,
    ) -> LoanStatus {
        if servicing::all_paid(&self.schedule, positions) {
            LoanStatus::PaidOff
        } else if servicing::in_arrears_beyond_grace(
            &self.schedule,
            positions,
            self.contract.grace_days,
            as_of,
        ) {
            LoanStatus::Overdue
        } else if payments.is_empty() {
            LoanStatus::Disbursed
        } else {
            LoanStatus::Repaying
        }
    }
}

/// The loan aggregate. Matched exhaustively; rebuilt from events by [`Loan::replay`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", content = "loan", rename_all = "snake_case")]
pub enum Loan {
    #[default]
    NotCaptured,
    Lead(Box<Application>),
    Review(Box<Application>),
    Rejected(Box<Application>),
    Withdrawn(Box<Application>),
    Signed(Box<Application>, Box<Contract>),
    Disbursed(Box<Account>),
    Repaying(Box<Account>),
    Overdue(Box<Account>),
    PaidOff(Box<Account>),
    WrittenOff(Box<Account>),
}

impl Loan {
    /// `None` before the lead is captured.
    pub fn status(&self) -> Option<LoanStatus> {
        Some(match self {
            Loan::NotCaptured => return None,
            Loan::Lead(_) => LoanStatus::Lead,
            Loan::Review(_) => LoanStatus::Review,
            Loan::Rejected(_) => LoanStatus::Rejected,
            Loan::Withdrawn(_) => LoanStatus::Withdrawn,
            Loan::Signed(..) => LoanStatus::Signed,
            Loan::Disbursed(_) => LoanStatus::Disbursed,
            Loan::Repaying(_) => LoanStatus::Repaying,
            Loan::Overdue(_) => LoanStatus::Overdue,
            Loan::PaidOff(_) => LoanStatus::PaidOff,
            Loan::WrittenOff(_) => LoanStatus::WrittenOff,
        })
    }

    /// Status name for messages; `not_captured` before the first event.
    pub fn status_name(&self) -> &'static str {
        self.status().map_or("not_captured", LoanStatus::as_str)
    }

    pub fn application(&self) -> Option<&Application> {
        match self {
            Loan::NotCaptured => None,
            Loan::Lead(a)
            | Loan::Review(a)
            | Loan::Rejected(a)
            | Loan::Withdrawn(a)
            | Loan::Signed(a, _) => Some(a),
            Loan::Disbursed(acc)
            | Loan::Repaying(acc)
            | Loan::Overdue(acc)
            | Loan::PaidOff(acc)
            | Loan::WrittenOff(acc) => Some(&acc.application),
        }
    }

    pub fn account(&self) -> Option<&Account> {
        match self {
            Loan::Disbursed(acc)
            | Loan::Repaying(acc)
            | Loan::Overdue(acc)
            | Loan::PaidOff(acc)
            | Loan::WrittenOff(acc) => Some(acc),
            _ => None,
        }
    }

    /// Rebuilds a loan from its events.
    pub fn replay<'e>(events: impl IntoIterator<Item = &'e LoanEvent>) -> Loan {
        events.into_iter().fold(Loan::NotCaptured, evolve)
    }

    fn with_account_status(account: Box<Account>, status: LoanStatus) -> Loan {
        match status {
            LoanStatus::Repaying => Loan::Repaying(account),
            LoanStatus::Overdue => Loan::Overdue(account),
            LoanStatus::PaidOff => Loan::PaidOff(account),
            LoanStatus::WrittenOff => Loan::WrittenOff(account),
            _ => Loan::Disbursed(account),
        }
    }
}

// ---------------------------------------------------------------------------------------
// decide
// ---------------------------------------------------------------------------------------

/// Decides a loan command. `customer` is the loan's customer, loaded by the caller (needed
/// by lead capture, automated decisions and disbursement; `None` if it does not exist).
pub fn decide(
    loan: &Loan,
    command: &LoanCommand,
    customer: Option<&Customer>,
    ctx: &Context<'_>,
) -> Result<Vec<LoanEvent>, DomainError> {
    let kind = command.kind();
    kind.authorize(ctx.actor)?;
    let invalid = || DomainError::InvalidTransition {
        state: loan.status_name(),
        command: kind.name(),
    };
    let today = ctx.today;

    match command {
        LoanCommand::CaptureLead(c) => {
            let Loan::NotCaptured = loan else {
                return Err(DomainError::AlreadyExists {
                    kind: "loan",
                    id: c.loan_id.to_string(),
                });
            };
            registered(customer, c.customer_id)?;
            let channel = text::label("channel", &c.channel)?;
            positive("requested_amount", c.requested_amount)?;
            term("term_months", c.term_months)?;
            Ok(vec![LoanEvent::LeadCaptured {
                loan_id: c.loan_id,
                customer_id: c.customer_id,
                channel,
                purpose: c.purpose,
                requested_amount: c.requested_amount,
                currency: c.currency.clone(),
                term_months: c.term_months,
                captured_on: today,
            }])
        }
        LoanCommand::AssignOfficer(c) => {
            let app = open_application(loan).ok_or_else(invalid)?;
            let officer_id = text::label("officer_id", &c.officer_id)?;
            if app.officer_id.as_deref() == Some(officer_id.as_str()) {
                return Ok(vec![]);
            }
            Ok(vec![LoanEvent::OfficerAssigned {
                officer_id,
                previous_officer_id: app.officer_id.clone(),
            }])
        }
        LoanCommand::LogFollowUp(c) => {
            open_application(loan).ok_or_else(invalid)?;
            let note = text::required("note", &c.note, 2000)?;
            if let Some(next) = c.next_follow_up_on {
                if next < today {
                    return Err(DomainError::validation(
                        "next_follow_up_on",
                        format!("{next} is before today ({today})"),
                    ));
                }
            }
            Ok(vec![LoanEvent::FollowUpLogged {
                note,
                next_follow_up_on: c.next_follow_up_on,
                logged_on: today,
            }])
        }
        LoanCommand::SubmitForReview(c) => {
            let Loan::Lead(app) = loan else {
                return Err(invalid());
            };
            let missing: Vec<&str> = DocumentKind::required_for(app.purpose)
                .iter()
                .filter(|required| !c.documents.contains(required))
                .map(|kind| kind.as_str())
                .collect();
            if !missing.is_empty() {
                return Err(DomainError::rule(
                    "missing_documents",
                    Some("documents"),
                    format!("missing required documents: {}", missing.join(", ")),
                ));
            }
            let mut documents = c.documents.clone();
            documents.sort();
            documents.dedup();
            Ok(vec![LoanEvent::SubmittedForReview {
                documents,
                submitted_on: today,
            }])
        }
        LoanCommand::ApproveApplication(c) => {
            let app = undecided_review(loan, kind).ok_or_else(invalid)??;
            positive("approved_amount", c.approved_amount)?;
            if c.approved_amount > app.requested_amount {
                return Err(DomainError::validation(
                    "approved_amount",
                    format!(
                        "{} is more than the requested {}",
                        c.approved_amount, app.requested_amount
                    ),
                ));
            }
            annual_rate("annual_rate", c.annual_rate)?;
            term("term_months", c.term_months)?;
            if c.approved_amount > ctx.rules.senior_approval_threshold
                && !ctx.actor.has(Role::SeniorUnderwriter)
            {
                return Err(DomainError::Forbidden {
                    command: kind.name(),
                    required: vec![Role::SeniorUnderwriter],
                });
            }
            let note = text::optional("note", c.note.as_deref(), 2000)?;
            Ok(vec![LoanEvent::ApplicationApproved {
                approved_amount: c.approved_amount,
                annual_rate: c.annual_rate,
                term_months: c.term_months,
                approver: Approver::Underwriter { note },
                approved_on: today,
            }])
        }
        LoanCommand::RejectApplication(c) => {
            undecided_review(loan, kind).ok_or_else(invalid)??;
            if c.reasons.is_empty() {
                return Err(DomainError::validation(
                    "reasons",
                    "give at least one reason",
                ));
            }
            let reasons = c
                .reasons
                .iter()
                .enumerate()
                .map(|(i, reason)| text::required(&format!("reasons[{i}]"), reason, 500))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(vec![LoanEvent::ApplicationRejected {
                reasons,
                rejected_on: today,
            }])
        }
        LoanCommand::DecideAutomatically(_) => {
            let app = undecided_review(loan, kind).ok_or_else(invalid)??;
            if app.verdict == Verdict::Referred {
                return Err(DomainError::rule(
                    "already_referred",
                    None,
                    "the policy already referred this application to a person",
                ));
            }
            let profile = registered(customer, app.customer_id)?;
            Ok(automated_decision(app, profile, ctx))
        }
        LoanCommand::SignContract(c) => {
            let Loan::Review(app) = loan else {
                return Err(invalid());
            };
            let Verdict::Approved {
                approved_amount,
                annual_rate: approved_rate,
                term_months: approved_term,
                ..
            } = &app.verdict
            else {
                return Err(DomainError::rule(
                    "not_approved",
                    None,
                    "the application has not been approved",
                ));
            };
            positive("principal", c.principal)?;
            if c.principal > *approved_amount {
                return Err(DomainError::rule(
                    "above_approved_amount",
                    Some("principal"),
                    format!(
                        "principal {} is more than the approved {approved_amount}",
                        c.principal
                    ),
                ));
            }
            let differences = [
                (
                    "annual_rate",
                    c.annual_rate != *approved_rate,
                    format!(
                        "annual rate {} differs from the approved {approved_rate}",
                        c.annual_rate
                    ),
                ),
                (
                    "term_months",
                    c.term_months != *approved_term,
                    format!(
                        "term of {} months differs from the approved {approved_term}",
                        c.term_months
                    ),
                ),
            ];
            if let Some((field, _, message)) =
                differences.into_iter().find(|(_, differs, _)| *differs)
            {
                return Err(DomainError::rule(
                    "terms_differ_from_approval",
                    Some(field),
                    message,
                ));
            }
            if c.grace_days > MAX_GRACE_DAYS {
                return Err(DomainError::validation(
                    "grace_days",
                    format!("{} is more than {MAX_GRACE_DAYS}", c.grace_days),
                ));
            }
            c.daily_penalty_rate
                .within(Decimal::ZERO, MAX_DAILY_PENALTY_RATE)
                .map_err(|e| DomainError::money("daily_penalty_rate", e))?;
            if c.first_due_date <= today {
                return Err(DomainError::validation(
                    "first_due_date",
                    format!("{} is not after today ({today})", c.first_due_date),
                ));
            }
            let contract = Contract {
                principal: c.principal,
                currency: app.currency.clone(),
                annual_rate: c.annual_rate,
                term_months: c.term_months,
                method: c.method,
                first_due_date: c.first_due_date,
                grace_days: c.grace_days,
                daily_penalty_rate: c.daily_penalty_rate,
                signed_on: today,
            };
            schedule_for(&contract)?;
            Ok(vec![LoanEvent::ContractSigned { contract }])
        }
        LoanCommand::DisburseLoan(c) => {
            let Loan::Signed(app, contract) = loan else {
                return Err(invalid());
            };
            let profile = registered(customer, app.customer_id)?;
            if !profile.identity_verified() {
                return Err(DomainError::rule(
                    "identity_not_verified",
                    None,
                    format!(
                        "customer {} has not had their identity verified",
                        app.customer_id
                    ),
                ));
            }
            let payout_reference = text::required("payout_reference", &c.payout_reference, 64)?;
            not_future("value_date", c.value_date, today)?;
            if c.value_date < contract.signed_on {
                return Err(DomainError::validation(
                    "value_date",
                    format!("{} is before the contract was signed", c.value_date),
                ));
            }
            let first_period = (contract.first_due_date - c.value_date).num_days();
            if !(1..=MAX_FIRST_PERIOD_DAYS).contains(&first_period) {
                return Err(DomainError::rule(
                    "first_period_out_of_range",
                    Some("value_date"),
                    format!(
                        "the first due date {} must fall 1 to {MAX_FIRST_PERIOD_DAYS} days after the value date {}",
                        contract.first_due_date, c.value_date
                    ),
                ));
            }
            Ok(vec![LoanEvent::LoanDisbursed {
                payout_reference,
                value_date: c.value_date,
                schedule: schedule_for(contract)?,
                rules: RuleVersions::current(),
            }])
        }
        LoanCommand::RecordRepayment(c) => {
            let account = match loan {
                Loan::Disbursed(acc) | Loan::Repaying(acc) | Loan::Overdue(acc) => acc,
                _ => return Err(invalid()),
            };
            let reference = text::required("payment_reference", &c.payment_reference, 64)?;
            positive("amount", c.amount)?;
            not_future("value_date", c.value_date, today)?;
            if c.value_date < account.disbursed_on {
                return Err(DomainError::validation(
                    "value_date",
                    format!("{} is before the disbursement", c.value_date),
                ));
            }
            if let Some(existing) = account.payments.iter().find(|p| p.reference == reference) {
                return if existing.amount == c.amount && existing.value_date == c.value_date {
                    Ok(vec![]) // the same payment again: already recorded
                } else {
                    Err(DomainError::rule(
                        "payment_reference_reused",
                        Some("payment_reference"),
                        format!(
                            "payment {reference} was already recorded with a different amount or value date"
                        ),
                    ))
                };
            }
            if account.reversed_references.contains(&reference) {
                return Err(DomainError::rule(
                    "payment_reference_reversed",
                    Some("payment_reference"),
                    format!(
                        "payment {reference} was reversed; a new payment needs a new reference"
                    ),
                ));
            }
            let payment = Payment {
                reference: reference.clone(),
                amount: c.amount,
                value_date: c.value_date,
            };
            let mut payments = account.payments.clone();
            payments.push(payment);
            let position_date = account.position_date.max(c.value_date);
            let restated = match restate(loan, account, &payments, position_date) {
                Err(DomainError::RuleViolated {
                    rule: "overpayment",
                    field,
                    message,
                }) => {
                    let quote = account
                        .payoff_amount(c.value_date)
                        .map(|q| format!("; the payoff amount on {} is {q}", c.value_date))
                        .unwrap_or_default();
                    return Err(DomainError::RuleViolated {
                        rule: "overpayment",
                        field,
                        message: format!("{message}{quote}"),
                    });
                }
                other => other?,
            };
            let allocation = restated
                .position
                .allocations
                .iter()
                .find(|(index, _)| *index == payments.len() - 1)
                .map(|(_, splits)| splits.clone())
                .unwrap_or_default();
            let mut events = vec![LoanEvent::RepaymentRecorded {
                payment_reference: reference,
                amount: c.amount,
                value_date: c.value_date,
                allocation,
                restatement: restated.restatement,
                position_date,
                rules: account.rules.clone(),
            }];
            events.extend(restated.consequences);
            Ok(events)
        }
        LoanCommand::ReverseRepayment(c) => {
            let account = match loan {
                Loan::Disbursed(acc)
                | Loan::Repaying(acc)
                | Loan::Overdue(acc)
                | Loan::PaidOff(acc) => acc,
                _ => return Err(invalid()),
            };
            let reference = text::required("payment_reference", &c.payment_reference, 64)?;
            let reason = text::required("reason", &c.reason, 500)?;
            let Some(reversed) = account.payments.iter().find(|p| p.reference == reference) else {
                if account.reversed_references.contains(&reference) {
                    return Ok(vec![]); // already reversed
                }
                return Err(DomainError::NotFound {
                    kind: "payment",
                    id: reference,
                });
            };
            let payments: Vec<Payment> = account
                .payments
                .iter()
                .filter(|p| p.reference != reference)
                .cloned()
                .collect();
            let restated = restate(loan, account, &payments, account.position_date)?;
            let mut events = vec![LoanEvent::RepaymentReversed {
                payment_reference: reference,
                amount: reversed.amount,
                value_date: reversed.value_date,
                reason,
                restatement: restated.restatement,
                position_date: account.position_date,
                rules: account.rules.clone(),
            }];
            events.extend(restated.consequences);
            Ok(events)
        }
        LoanCommand::EvaluateDelinquency(c) => {
            let account = match loan {
                Loan::Disbursed(acc) | Loan::Repaying(acc) | Loan::Overdue(acc) => acc,
                _ => return Err(invalid()),
            };
            not_future("as_of", c.as_of, today)?;
            if c.as_of <= account.position_date {
                return Ok(vec![]); // the book is already at or past this date
            }
            let restated = restate(loan, account, &account.payments, c.as_of)?;
            let mut events = Vec::new();
            if !restated.restatement.is_empty() {
                events.push(LoanEvent::PenaltyAccrued {
                    as_of: c.as_of,
                    restatement: restated.restatement,
                    rules: account.rules.clone(),
                });
            }
            events.extend(restated.consequences);
            Ok(events)
        }
        LoanCommand::WriteOffLoan(c) => {
            let Loan::Overdue(account) = loan else {
                return Err(invalid());
            };
            let reason = text::required("reason", &c.reason, 500)?;
            Ok(vec![LoanEvent::LoanWrittenOff {
                reason,
                as_of: account.position_date,
                days_past_due: account.days_past_due(),
                outstanding: account.outstanding(),
                written_off_on: today,
            }])
        }
        LoanCommand::WithdrawApplication(c) => {
            match loan {
                Loan::Lead(_) | Loan::Review(_) | Loan::Signed(..) => {}
                _ => return Err(invalid()),
            }
            let reason = text::required("reason", &c.reason, 500)?;
            Ok(vec![LoanEvent::ApplicationWithdrawn {
                reason,
                withdrawn_on: today,
            }])
        }
    }
}

/// The outcome of recomputing a book: the net change and the events it implies.
struct Restated {
    position: Position,
    restatement: Vec<PositionDelta>,
    /// Aging bucket and status changes, in that order.
    consequences: Vec<LoanEvent>,
}

fn restate(
    loan: &Loan,
    account: &Account,
    payments: &[Payment],
    as_of: NaiveDate,
) -> Result<Restated, DomainError> {
    let position = account
        .position_as_of(payments, as_of)
        .map_err(|error| match error {
            servicing::ServicingError::Overpayment { .. } => {
                DomainError::rule("overpayment", Some("amount"), error.to_string())
            }
            servicing::ServicingError::Money(_) => DomainError::Overflow {
                context: "the loan position",
            },
        })?;
    let restatement = servicing::diff(&account.schedule, &account.position, &position.installments)
        .map_err(|_| DomainError::Overflow {
            context: "the restatement",
        })?;
    let days_past_due = servicing::days_past_due(&account.schedule, &position.installments, as_of);
    let mut consequences = Vec::new();
    let bucket = AgingBucket::for_days_past_due(days_past_due);
    if bucket != account.bucket {
        consequences.push(LoanEvent::AgingBucketChanged {
            as_of,
            from: account.bucket,
            to: bucket,
            days_past_due,
        });
    }
    let from = loan.status().unwrap_or(LoanStatus::Disbursed);
    let to = account.implied_status(&position.installments, payments, as_of);
    if to != from {
        consequences.push(LoanEvent::LoanStatusChanged {
            as_of,
            from,
            to,
            days_past_due,
        });
    }
    Ok(Restated {
        position,
        restatement,
        consequences,
    })
}

fn automated_decision(app: &Application, profile: &Profile, ctx: &Context<'_>) -> Vec<LoanEvent> {
    let applicant = policy::Applicant {
        credit_score: profile.credit_score(),
        monthly_income: profile.financials.monthly_income,
        monthly_debt_payments: profile.financials.monthly_debt_payments,
    };
    let mut decision = policy::evaluate(
        &ctx.rules.policy,
        applicant,
        app.requested_amount,
        app.term_months,
        ctx.today,
    );
    if decision.outcome == Outcome::Approve
        && app.requested_amount > ctx.rules.senior_approval_threshold
    {
        decision.outcome = Outcome::Refer;
        decision.offered_annual_rate = None;
        decision.reasons.push(RuleResult {
            rule: "senior_approval_threshold".into(),
            passed: false,
            detail: format!(
                "requested {} is above the senior approval threshold {}",
                app.requested_amount, ctx.rules.senior_approval_threshold
            ),
        });
    }
    let follow_up = match (decision.outcome, decision.offered_annual_rate) {
        (Outcome::Approve, Some(rate)) => Some(LoanEvent::ApplicationApproved {
            approved_amount: app.requested_amount,
            annual_rate: rate,
            term_months: app.term_months,
            approver: Approver::Policy {
                rule_set_version: decision.rule_set_version.clone(),
            },
            approved_on: ctx.today,
        }),
        (Outcome::Reject, _) => Some(LoanEvent::ApplicationRejected {
            reasons: decision
                .reasons
                .iter()
                .filter(|r| !r.passed)
                .map(|r| format!("{}: {}", r.rule, r.detail))
                .collect(),
            rejected_on: ctx.today,
        }),
        _ => None,
    };
    let mut events = vec![LoanEvent::AutomatedDecisionMade {
        decision,
        decided_on: ctx.today,
    }];
    events.extend(follow_up);
    events
}

fn open_application(loan: &Loan) -> Option<&Application> {
    match loan {
        Loan::Lead(app) | Loan::Review(app) => Some(app),
        _ => None,
    }
}

/// `None` if the loan is not in review; `Some(Err)` if the review was already approved.
fn undecided_review(loan: &Loan, kind: CommandKind) -> Option<Result<&Application, DomainError>> {
    let Loan::Review(app) = loan else { return None };
    if let Verdict::Approved { .. } = app.verdict {
        return Some(Err(DomainError::rule(
            "already_approved",
            None,
            format!(
                "the application is already approved; {} is no longer possible (withdraw it instead)",
                kind.name()
            ),
        )));
    }
    Some(Ok(app))
}

/// The loan's customer, for new lending (capture, automated decision, disbursement): an
/// erased customer is refused (`customer_erased`); servicing never asks.
fn registered(customer: Option<&Customer>, id: CustomerId) -> Result<&Profile, DomainError> {
    match customer.and_then(Customer::profile) {
        Some(profile) if profile.customer_id == id && customer.is_some_and(Customer::is_erased) => {
            Err(DomainError::rule(
                "customer_erased",
                None,
                format!("customer {id} has been erased; no new lending"),
            ))
        }
        Some(profile) if profile.customer_id == id => Ok(profile),
        _ => Err(DomainError::NotFound {
            kind: "customer",
            id: id.to_string(),
        }),
    }
}

fn positive(field: &str, amount: Money) -> Result<(), DomainError> {
    if amount.is_positive() {
        Ok(())
    } else {
        Err(DomainError::validation(
            field,
            format!("must be positive, got {amount}"),
        ))
    }
}

fn term(field: &str, months: u32) -> Result<(), DomainError> {
    if (1..=MAX_TERM_MONTHS).contains(&months) {
        Ok(())
    } else {
        Err(DomainError::validation(
            field,
            format!("{months} is outside 1..={MAX_TERM_MONTHS}"),
        ))
    }
}

fn annual_rate(field: &str, rate: Rate) -> Result<(), DomainError> {
    rate.within(Decimal::ZERO, MAX_ANNUAL_RATE)
        .map(|_| ())
        .map_err(|e| DomainError::money(field, e))
}

fn not_future(field: &str, date: NaiveDate, today: NaiveDate) -> Result<(), DomainError> {
    if date > today {
        return Err(DomainError::validation(
            field,
            format!("{date} is in the future (today is {today})"),
        ));
    }
    Ok(())
}

fn schedule_for(contract: &Contract) -> Result<Schedule, DomainError> {
    build_schedule(&ScheduleTerms {
        principal: contract.principal,
        annual_rate: contract.annual_rate,
        term_months: contract.term_months,
        method: contract.method,
        first_due_date: contract.first_due_date,
    })
    .map_err(|error| {
        DomainError::rule(
            "schedule_not_computable",
            Some("principal"),
            error.to_string(),
        )
    })
}

// ---------------------------------------------------------------------------------------
// evolve
// ---------------------------------------------------------------------------------------

/// Applies a recorded event. Total: an event that does not fit the state (which `decide`
/// never produces) leaves the state unchanged.
pub fn evolve(loan: Loan, event: &LoanEvent) -> Loan {
    use LoanEvent as E;
    match (loan, event) {
        (
            Loan::NotCaptured,
            E::LeadCaptured {
                loan_id,
                customer_id,
                channel,
                purpose,
                requested_amount,
                currency,
                term_months,
                captured_on,
            },
        ) => Loan::Lead(Box::new(Application {
            loan_id: *loan_id,
            customer_id: *customer_id,
            channel: channel.clone(),
            purpose: *purpose,
            requested_amount: *requested_amount,
            currency: currency.clone(),
            term_months: *term_months,
            captured_on: *captured_on,
            officer_id: None,
            follow_ups: Vec::new(),
            documents: Vec::new(),
            verdict: Verdict::Pending,
            automated_decisions: Vec::new(),
            closing_reasons: Vec::new(),
        })),
        (loan @ (Loan::Lead(_) | Loan::Review(_)), E::OfficerAssigned { officer_id, .. }) => {
            with_open_application(loan, |app| app.officer_id = Some(officer_id.clone()))
        }
        (
            loan @ (Loan::Lead(_) | Loan::Review(_)),
            E::FollowUpLogged {
                note,
                next_follow_up_on,
                logged_on,
            },
        ) => with_open_application(loan, |app| {
            app.follow_ups.push(FollowUp {
                note: note.clone(),
                next_follow_up_on: *next_follow_up_on,
                logged_on: *logged_on,
            })
        }),
        (Loan::Lead(mut app), E::SubmittedForReview { documents, .. }) => {
            app.documents = documents.clone();
            Loan::Review(app)
        }
        (Loan::Review(mut app), E::AutomatedDecisionMade { decision, .. }) => {
            if decision.outcome == Outcome::Refer {
                app.verdict = Verdict::Referred;
            }
            app.automated_decisions.push(decision.clone());
            Loan::Review(app)
        }
        (
            Loan::Review(mut app),
            E::ApplicationApproved {
                approved_amount,
                annual_rate,
                term_months,
                approver,
                ..
            },
        ) => {
            app.verdict = Verdict::Approved {
                approved_amount: *approved_amount,
                annual_rate: *annual_rate,
                term_months: *term_months,
                approver: approver.clone(),
            };
            Loan::Review(app)
        }
        (Loan::Review(mut app), E::ApplicationRejected { reasons, .. }) => {
            app.closing_reasons = reasons.clone();
            Loan::Rejected(app)
        }
        (
            Loan::Lead(mut app) | Loan::Review(mut app) | Loan::Signed(mut app, _),
            E::ApplicationWithdrawn { reason, .. },
        ) => {
            app.closing_reasons = vec![reason.clone()];
            Loan::Withdrawn(app)
        }
        (Loan::Review(app), E::ContractSigned { contract }) => {
            Loan::Signed(app, Box::new(contract.clone()))
        }
        (
            Loan::Signed(app, contract),
            E::LoanDisbursed {
                payout_reference,
                value_date,
                schedule,
                rules,
            },
        ) => Loan::Disbursed(Box::new(Account {
            application: *app,
            contract: *contract,
            payout_reference: payout_reference.clone(),
            disbursed_on: *value_date,
            position: vec![InstallmentPosition::default(); schedule.installments.len()],
            schedule: schedule.clone(),
            rules: rules.clone(),
            payments: Vec::new(),
            reversed_references: Vec::new(),
            position_date: *value_date,
            bucket: AgingBucket::Current,
            written_off_on: None,
        })),
        (
            loan @ (Loan::Disbursed(_) | Loan::Repaying(_) | Loan::Overdue(_) | Loan::PaidOff(_)),
            event,
        ) => evolve_account(loan, event),
        (loan, _) => loan,
    }
}

/// Changes the application of a lead or review, keeping its stage.
fn with_open_application(loan: Loan, change: impl FnOnce(&mut Application)) -> Loan {
    match loan {
        Loan::Lead(mut app) => {
            change(&mut app);
            Loan::Lead(app)
        }
        Loan::Review(mut app) => {
            change(&mut app);
            Loan::Review(app)
        }
        other => other,
    }
}

fn evolve_account(loan: Loan, event: &LoanEvent) -> Loan {
    let status = loan.status().unwrap_or(LoanStatus::Disbursed);
    let (Loan::Disbursed(mut acc)
    | Loan::Repaying(mut acc)
    | Loan::Overdue(mut acc)
    | Loan::PaidOff(mut acc)) = loan
    else {
        return loan;
    };
    let mut status = status;
    match event {
        LoanEvent::RepaymentRecorded {
            payment_reference,
            amount,
            value_date,
            restatement,
            position_date,
            ..
        } => {
            acc.payments.push(Payment {
                reference: payment_reference.clone(),
                amount: *amount,
                value_date: *value_date,
            });
            servicing::apply(&mut acc.position, restatement);
            acc.position_date = acc.position_date.max(*position_date);
        }
        LoanEvent::RepaymentReversed {
            payment_reference,
            restatement,
            position_date,
            ..
        } => {
            acc.payments.retain(|p| p.reference != *payment_reference);
            acc.reversed_references.push(payment_reference.clone());
            servicing::apply(&mut acc.position, restatement);
            acc.position_date = acc.position_date.max(*position_date);
        }
        LoanEvent::PenaltyAccrued {
            as_of, restatement, ..
        } => {
            servicing::apply(&mut acc.position, restatement);
            acc.position_date = acc.position_date.max(*as_of);
        }
        LoanEvent::AgingBucketChanged { as_of, to, .. } => {
            acc.bucket = *to;
            acc.position_date = acc.position_date.max(*as_of);
        }
        LoanEvent::LoanStatusChanged { as_of, to, .. } => {
            status = *to;
            acc.position_date = acc.position_date.max(*as_of);
        }
        LoanEvent::LoanWrittenOff { written_off_on, .. } => {
            acc.written_off_on = Some(*written_off_on);
            status = LoanStatus::WrittenOff;
        }
        _ => {}
    }
    Loan::with_account_status(acc, status)
}
