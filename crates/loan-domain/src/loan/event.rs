//! Facts about a loan: past tense, stable snake_case names, enough figures that applying
//! them never needs today's rules (money events carry the net position change they
//! caused, and the versions of the rules that computed it).

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::RuleVersions;
use crate::ids::{CustomerId, LoanId};
use crate::loan::command::{DocumentKind, LoanPurpose};
use crate::money::{Currency, Money, Rate};
use crate::policy::AutomatedDecision;
use crate::schedule::{RepaymentMethod, Schedule};
use crate::servicing::{AgingBucket, Outstanding, PositionDelta, Split};

/// The lifecycle status of a loan.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LoanStatus {
    Lead,
    Review,
    Signed,
    Disbursed,
    Repaying,
    Overdue,
    Rejected,
    Withdrawn,
    PaidOff,
    WrittenOff,
}

impl LoanStatus {
    pub const ALL: [LoanStatus; 10] = [
        LoanStatus::Lead,
        LoanStatus::Review,
        LoanStatus::Signed,
        LoanStatus::Disbursed,
        LoanStatus::Repaying,
        LoanStatus::Overdue,
        LoanStatus::Rejected,
        LoanStatus::Withdrawn,
        LoanStatus::PaidOff,
        LoanStatus::WrittenOff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LoanStatus::Lead => "lead",
            LoanStatus::Review => "review",
            LoanStatus::Signed => "signed",
            LoanStatus::Disbursed => "disbursed",
            LoanStatus::Repaying => "repaying",
            LoanStatus::Overdue => "overdue",
            LoanStatus::Rejected => "rejected",
            LoanStatus::Withdrawn => "withdrawn",
            LoanStatus::PaidOff => "paid_off",
            LoanStatus::WrittenOff => "written_off",
        }
    }

    /// No command changes a loan in a terminal status, except that a reversal can reopen
    /// a paid-off loan.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            LoanStatus::Rejected
                | LoanStatus::Withdrawn
                | LoanStatus::PaidOff
                | LoanStatus::WrittenOff
        )
    }
}

impl std::fmt::Display for LoanStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who approved an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Approver {
    /// A person with the underwriting role (the actor of the event).
    Underwriter { note: Option<String> },
    /// The automated decision policy of the given version.
    Policy { rule_set_version: String },
}

/// The signed terms of a loan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    pub principal: Money,
    pub currency: Currency,
    pub annual_rate: Rate,
    pub term_months: u32,
    pub method: RepaymentMethod,
    pub first_due_date: NaiveDate,
    pub grace_days: u32,
    pub daily_penalty_rate: Rate,
    pub signed_on: NaiveDate,
}

/// A fact about a loan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LoanEvent {
    LeadCaptured {
        loan_id: LoanId,
        customer_id: CustomerId,
        channel: String,
        purpose: LoanPurpose,
        requested_amount: Money,
        currency: Currency,
        term_months: u32,
        captured_on: NaiveDate,
    },
    OfficerAssigned {
        officer_id: String,
        previous_officer_id: Option<String>,
    },
    FollowUpLogged {
        note: String,
        next_follow_up_on: Option<NaiveDate>,
        logged_on: NaiveDate,
    },
    SubmittedForReview {
        documents: Vec<DocumentKind>,
        submitted_on: NaiveDate,
    },
    /// The decision policy ran: its version, inputs, outcome and every rule's finding.
    AutomatedDecisionMade {
        decision: AutomatedDecision,
        decided_on: NaiveDate,
    },
    ApplicationApproved {
        approved_amount: Money,
        annual_rate: Rate,
        term_months: u32,
        approver: Approver,
        approved_on: NaiveDate,
    },
    ApplicationRejected {
        reasons: Vec<String>,
        rejected_on: NaiveDate,
    },
    ApplicationWithdrawn {
        reason: String,
        withdrawn_on: NaiveDate,
    },
    ContractSigned {
        contract: Contract,
    },
    /// Money left the lender; the schedule is fixed from here on.
    LoanDisbursed {
        payout_reference: String,
        value_date: NaiveDate,
        schedule: Schedule,
        rules: RuleVersions,
    },
    /// A repayment and the restatement it causes (allocations of later payments can move
    /// when it is backdated), as one fact.
    RepaymentRecorded {
        payment_reference: String,
        amount: Money,
        value_date: NaiveDate,
        /// How this payment was allocated.
        allocation: Vec<Split>,
        /// Net change of the loan's position, this payment included.
        restatement: Vec<PositionDelta>,
        /// The date the loan's book is brought to (never earlier than before).
        position_date: NaiveDate,
        rules: RuleVersions,
    },
    /// A payment voided from its value date, with the restatement it causes.
    RepaymentReversed {
        payment_reference: String,
        amount: Money,
        value_date: NaiveDate,
        reason: String,
        restatement: Vec<PositionDelta>,
        position_date: NaiveDate,
        rules: RuleVersions,
    },
    /// Penalty accrued through `as_of` (net change per installment).
    PenaltyAccrued {
        as_of: NaiveDate,
        restatement: Vec<PositionDelta>,
        rules: RuleVersions,
    },
    AgingBucketChanged {
        as_of: NaiveDate,
        from: AgingBucket,
        to: AgingBucket,
        days_past_due: u32,
    },
    /// A status change caused by money or time (overdue, cured, paid off, reopened).
    LoanStatusChanged {
        as_of: NaiveDate,
        from: LoanStatus,
        to: LoanStatus,
        days_past_due: u32,
    },
    LoanWrittenOff {
        reason: String,
        as_of: NaiveDate,
        days_past_due: u32,
        outstanding: Outstanding,
        written_off_on: NaiveDate,
    },
}

impl LoanEvent {
    /// Stable event type name, as stored.
    pub fn type_name(&self) -> &'static str {
        match self {
            LoanEvent::LeadCaptured { .. } => "lead_captured",
            LoanEvent::OfficerAssigned { .. } => "officer_assigned",
            LoanEvent::FollowUpLogged { .. } => "follow_up_logged",
            LoanEvent::SubmittedForReview { .. } => "submitted_for_review",
            LoanEvent::AutomatedDecisionMade { .. } => "automated_decision_made",
            LoanEvent::ApplicationApproved { .. } => "application_approved",
            LoanEvent::ApplicationRejected { .. } => "application_rejected",
            LoanEvent::ApplicationWithdrawn { .. } => "application_withdrawn",
            LoanEvent::ContractSigned { .. } => "contract_signed",
            LoanEvent::LoanDisbursed { .. } => "loan_disbursed",
            LoanEvent::RepaymentRecorded { .. } => "repayment_recorded",
            LoanEvent::RepaymentReversed { .. } => "repayment_reversed",
            LoanEvent::PenaltyAccrued { .. } => "penalty_accrued",
            LoanEvent::AgingBucketChanged { .. } => "aging_bucket_changed",
            LoanEvent::LoanStatusChanged { .. } => "loan_status_changed",
            LoanEvent::LoanWrittenOff { .. } => "loan_written_off",
        }
    }

    /// The business date of the fact (value date, as-of date, or the day it happened).
    pub fn business_date(&self) -> Option<NaiveDate> {
        match self {
            LoanEvent::LeadCaptured { captured_on, .. } => Some(*captured_on),
            LoanEvent::OfficerAssigned { .. } => None,
            LoanEvent::FollowUpLogged { logged_on, .. } => Some(*logged_on),
            LoanEvent::SubmittedForReview { submitted_on, .. } => Some(*submitted_on),
            LoanEvent::AutomatedDecisionMade { decided_on, .. } => Some(*decided_on),
            LoanEvent::ApplicationApproved { approved_on, .. } => Some(*approved_on),
            LoanEvent::ApplicationRejected { rejected_on, .. } => Some(*rejected_on),
            LoanEvent::ApplicationWithdrawn { withdrawn_on, .. } => Some(*withdrawn_on),
            LoanEvent::ContractSigned { contract } => Some(contract.signed_on),
            LoanEvent::LoanDisbursed { value_date, .. }
            | LoanEvent::RepaymentRecorded { value_date, .. }
            | LoanEvent::RepaymentReversed { value_date, .. } => Some(*value_date),
            LoanEvent::PenaltyAccrued { as_of, .. }
            | LoanEvent::AgingBucketChanged { as_of, .. }
            | LoanEvent::LoanStatusChanged { as_of, .. } => Some(*as_of),
            LoanEvent::LoanWrittenOff { written_off_on, .. } => Some(*written_off_on),
        }
    }
}
