//! Commands addressed to a loan: imperative, one struct per wire message.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::access::CommandKind;
use crate::ids::{CustomerId, LoanId};
use crate::money::{Currency, Money, Rate};
use crate::schedule::RepaymentMethod;

/// What the loan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoanPurpose {
    Consumer,
    Business,
}

/// A document attached to an application.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// Required for every application.
    IdCard,
    /// Required for every application.
    CreditReport,
    /// Required for every application.
    IncomeProof,
    /// Required for business loans.
    BusinessLicense,
    BankStatement,
    EmploymentProof,
    CollateralProof,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::IdCard => "id_card",
            DocumentKind::CreditReport => "credit_report",
            DocumentKind::IncomeProof => "income_proof",
            DocumentKind::BusinessLicense => "business_license",
            DocumentKind::BankStatement => "bank_statement",
            DocumentKind::EmploymentProof => "employment_proof",
            DocumentKind::CollateralProof => "collateral_proof",
        }
    }

    /// Documents a review cannot start without, for a loan of `purpose`.
    pub fn required_for(purpose: LoanPurpose) -> &'static [DocumentKind] {
        match purpose {
            LoanPurpose::Consumer => &[
                DocumentKind::IdCard,
                DocumentKind::CreditReport,
                DocumentKind::IncomeProof,
            ],
            LoanPurpose::Business => &[
                DocumentKind::IdCard,
                DocumentKind::CreditReport,
                DocumentKind::IncomeProof,
                DocumentKind::BusinessLicense,
            ],
        }
    }
}

/// `capture_lead`: a prospective borrower asks for a loan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureLead {
    pub loan_id: LoanId,
    pub customer_id: CustomerId,
    /// Acquisition channel of this application, e.g. `app`, `branch`, `broker:acme`.
    pub channel: String,
    pub purpose: LoanPurpose,
    pub requested_amount: Money,
    pub currency: Currency,
    pub term_months: u32,
}

/// `assign_officer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignOfficer {
    pub loan_id: LoanId,
    pub officer_id: String,
}

/// `log_follow_up`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogFollowUp {
    pub loan_id: LoanId,
    pub note: String,
    #[serde(default)]
    pub next_follow_up_on: Option<NaiveDate>,
}

/// `submit_for_review`: lead → review, with the documents collected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitForReview {
    pub loan_id: LoanId,
    pub documents: Vec<DocumentKind>,
}

/// `approve_application`: a person approves, with terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveApplication {
    pub loan_id: LoanId,
    /// At most the requested amount.
    pub approved_amount: Money,
    pub annual_rate: Rate,
    pub term_months: u32,
    #[serde(default)]
    pub note: Option<String>,
}

/// `reject_application`: a person rejects, with reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectApplication {
    pub loan_id: LoanId,
    pub reasons: Vec<String>,
}

/// `decide_automatically`: run the configured decision policy on the application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideAutomatically {
    pub loan_id: LoanId,
}

/// `sign_contract`: approved review → signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignContract {
    pub loan_id: LoanId,
    /// At most the approved amount.
    pub principal: Money,
    /// 0 ..= 0.36.
    pub annual_rate: Rate,
    pub term_months: u32,
    pub method: RepaymentMethod,
    pub first_due_date: NaiveDate,
    /// Days after a due date before the loan counts as overdue and penalty accrues (0 ..= 30).
    pub grace_days: u32,
    /// Penalty per day on overdue principal (0 ..= 0.01).
    pub daily_penalty_rate: Rate,
}

/// `disburse_loan`: signed → disbursed; fixes the repayment schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisburseLoan {
    pub loan_id: LoanId,
    pub payout_reference: String,
    pub value_date: NaiveDate,
}

/// `record_repayment`: value-dated; the same payment reference twice is one payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRepayment {
    pub loan_id: LoanId,
    pub payment_reference: String,
    pub amount: Money,
    pub value_date: NaiveDate,
}

/// `reverse_repayment`: a bounced or mistaken payment is voided from its value date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseRepayment {
    pub loan_id: LoanId,
    pub payment_reference: String,
    pub reason: String,
}

/// `evaluate_delinquency`: bring the loan's book to `as_of` (penalty, bucket, overdue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateDelinquency {
    pub loan_id: LoanId,
    pub as_of: NaiveDate,
}

/// `write_off_loan`: overdue → written off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteOffLoan {
    pub loan_id: LoanId,
    pub reason: String,
}

/// `withdraw_application`: the applicant walks away (lead, review or signed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawApplication {
    pub loan_id: LoanId,
    pub reason: String,
}

/// A command addressed to a loan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoanCommand {
    CaptureLead(CaptureLead),
    AssignOfficer(AssignOfficer),
    LogFollowUp(LogFollowUp),
    SubmitForReview(SubmitForReview),
    ApproveApplication(ApproveApplication),
    RejectApplication(RejectApplication),
    DecideAutomatically(DecideAutomatically),
    SignContract(SignContract),
    DisburseLoan(DisburseLoan),
    RecordRepayment(RecordRepayment),
    ReverseRepayment(ReverseRepayment),
    EvaluateDelinquency(EvaluateDelinquency),
    WriteOffLoan(WriteOffLoan),
    WithdrawApplication(WithdrawApplication),
}

impl LoanCommand {
    pub fn kind(&self) -> CommandKind {
        match self {
            LoanCommand::CaptureLead(_) => CommandKind::CaptureLead,
            LoanCommand::AssignOfficer(_) => CommandKind::AssignOfficer,
            LoanCommand::LogFollowUp(_) => CommandKind::LogFollowUp,
            LoanCommand::SubmitForReview(_) => CommandKind::SubmitForReview,
            LoanCommand::ApproveApplication(_) => CommandKind::ApproveApplication,
            LoanCommand::RejectApplication(_) => CommandKind::RejectApplication,
            LoanCommand::DecideAutomatically(_) => CommandKind::DecideAutomatically,
            LoanCommand::SignContract(_) => CommandKind::SignContract,
            LoanCommand::DisburseLoan(_) => CommandKind::DisburseLoan,
            LoanCommand::RecordRepayment(_) => CommandKind::RecordRepayment,
            LoanCommand::ReverseRepayment(_) => CommandKind::ReverseRepayment,
            LoanCommand::EvaluateDelinquency(_) => CommandKind::EvaluateDelinquency,
            LoanCommand::WriteOffLoan(_) => CommandKind::WriteOffLoan,
            LoanCommand::WithdrawApplication(_) => CommandKind::WithdrawApplication,
        }
    }

    pub fn loan_id(&self) -> LoanId {
        match self {
            LoanCommand::CaptureLead(c) => c.loan_id,
            LoanCommand::AssignOfficer(c) => c.loan_id,
            LoanCommand::LogFollowUp(c) => c.loan_id,
            LoanCommand::SubmitForReview(c) => c.loan_id,
            LoanCommand::ApproveApplication(c) => c.loan_id,
            LoanCommand::RejectApplication(c) => c.loan_id,
            LoanCommand::DecideAutomatically(c) => c.loan_id,
            LoanCommand::SignContract(c) => c.loan_id,
            LoanCommand::DisburseLoan(c) => c.loan_id,
            LoanCommand::RecordRepayment(c) => c.loan_id,
            LoanCommand::ReverseRepayment(c) => c.loan_id,
            LoanCommand::EvaluateDelinquency(c) => c.loan_id,
            LoanCommand::WriteOffLoan(c) => c.loan_id,
            LoanCommand::WithdrawApplication(c) => c.loan_id,
        }
    }
}
