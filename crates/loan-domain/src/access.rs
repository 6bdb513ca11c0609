//! Who may do what: roles, the acting user, and the permission table.
//!
//! Every command names the roles allowed to issue it ([`crate::CommandKind::allowed_roles`]).
//! The table lives here, in the domain, so the NATS service, the embedded engine and the
//! documentation all read the same rule. A caller holding none of the roles is refused
//! with [`crate::DomainError::Forbidden`] before any state is examined.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A role a caller can hold. Roles are granted upstream (identity provider); the engine
/// only checks them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Front-line staff who register customers and keep their contact data current.
    CustomerService,
    /// Originates and follows up leads, collects documents, signs contracts.
    LoanOfficer,
    /// Leads a team of officers; routes leads.
    SalesManager,
    /// Decides applications up to the senior-approval threshold.
    Underwriter,
    /// Decides applications of any amount.
    SeniorUnderwriter,
    /// Moves money: disbursements, repayments, reversals.
    Finance,
    /// Owns credit risk: delinquency evaluation, write-offs, credit assessments.
    RiskManager,
    /// Works overdue loans.
    Collector,
    /// Automated processes (payment gateway, daily sweep, decision engine).
    System,
    /// Handles data subject requests; the only role that may erase a customer's personal
    /// data (kept apart from the credit and servicing roles on purpose).
    DataProtectionOfficer,
}

impl Role {
    pub const ALL: [Role; 10] = [
        Role::CustomerService,
        Role::LoanOfficer,
        Role::SalesManager,
        Role::Underwriter,
        Role::SeniorUnderwriter,
        Role::Finance,
        Role::RiskManager,
        Role::Collector,
        Role::System,
        Role::DataProtectionOfficer,
    ];

    /// Stable snake_case name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::CustomerService => "customer_service",
            Role::LoanOfficer => "loan_officer",
            Role::SalesManager => "sales_manager",
            Role::Underwriter => "underwriter",
            Role::SeniorUnderwriter => "senior_underwriter",
            Role::Finance => "finance",
            Role::RiskManager => "risk_manager",
            Role::Collector => "collector",
            Role::System => "system",
            Role::DataProtectionOfficer => "data_protection_officer",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller of a command, as the upstream service vouches for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// Stable id of the user or service (e.g. an employee number or `svc:payment-gateway`).
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
    /// Roles the caller holds.
    pub roles: Vec<Role>,
}

impl Actor {
    pub fn new(id: impl Into<String>, roles: impl IntoIterator<Item = Role>) -> Self {
        Actor {
            id: id.into(),
            roles: roles.into_iter().collect(),
        }
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|role| self.has(*role))
    }
}

/// Every command the engine accepts. The name is the stable wire name; the NATS subject
/// and the permission check both derive from it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    RegisterCustomer,
    UpdateContact,
    UpdateEmployment,
    UpdateFinancials,
    RecordCreditAssessment,
    VerifyIdentity,
    EraseCustomer,
    CaptureLead,
    AssignOfficer,
    LogFollowUp,
    SubmitForReview,
    ApproveApplication,
    RejectApplication,
    DecideAutomatically,
    SignContract,
    DisburseLoan,
    RecordRepayment,
    ReverseRepayment,
    EvaluateDelinquency,
    WriteOffLoan,
    WithdrawApplication,
    OpenCollectionCase,
    RecordContactAttempt,
    RecordPromiseToPay,
    ResolveCollectionCase,
}

/// The aggregate type a command addresses.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AggregateType {
    Customer,
    Loan,
    CollectionCase,
}

impl AggregateType {
    pub const ALL: [AggregateType; 3] = [
        AggregateType::Customer,
        AggregateType::Loan,
        AggregateType::CollectionCase,
    ];

    /// Stable snake_case name (subjects, stored envelopes, tables).
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateType::Customer => "customer",
            AggregateType::Loan => "loan",
            AggregateType::CollectionCase => "collection_case",
        }
    }

    /// The aggregate type named `name` (its [`AggregateType::as_str`]).
    pub fn parse(name: &str) -> Option<AggregateType> {
        AggregateType::ALL
            .into_iter()
            .find(|aggregate| aggregate.as_str() == name)
    }
}

impl CommandKind {
    pub const ALL: [CommandKind; 25] = [
        CommandKind::RegisterCustomer,
        CommandKind::UpdateContact,
        CommandKind::UpdateEmployment,
        CommandKind::UpdateFinancials,
        CommandKind::RecordCreditAssessment,
        CommandKind::VerifyIdentity,
        CommandKind::EraseCustomer,
        CommandKind::CaptureLead,
        CommandKind::AssignOfficer,
        CommandKind::LogFollowUp,
        CommandKind::SubmitForReview,
        CommandKind::ApproveApplication,
        CommandKind::RejectApplication,
        CommandKind::DecideAutomatically,
        CommandKind::SignContract,
        CommandKind::DisburseLoan,
        CommandKind::RecordRepayment,
        CommandKind::ReverseRepayment,
        CommandKind::EvaluateDelinquency,
        CommandKind::WriteOffLoan,
        CommandKind::WithdrawApplication,
        CommandKind::OpenCollectionCase,
        CommandKind::RecordContactAttempt,
        CommandKind::RecordPromiseToPay,
        CommandKind::ResolveCollectionCase,
    ];

    /// The command named `name` on aggregate type `aggregate` (wire names, as in the NATS
    /// subject `<prefix>.cmd.<aggregate>.<command>` and the HTTP path
    /// `/commands/<aggregate>/<command>`); `None` for anything else.
    pub fn named(aggregate: &str, name: &str) -> Option<CommandKind> {
        CommandKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name && kind.aggregate().as_str() == aggregate)
    }

    /// Stable snake_case wire name.
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::RegisterCustomer => "register_customer",
            CommandKind::UpdateContact => "update_contact",
            CommandKind::UpdateEmployment => "update_employment",
            CommandKind::UpdateFinancials => "update_financials",
            CommandKind::RecordCreditAssessment => "record_credit_assessment",
            CommandKind::VerifyIdentity => "verify_identity",
            CommandKind::EraseCustomer => "erase_customer",
            CommandKind::CaptureLead => "capture_lead",
            CommandKind::AssignOfficer => "assign_officer",
            CommandKind::LogFollowUp => "log_follow_up",
            CommandKind::SubmitForReview => "submit_for_review",
            CommandKind::ApproveApplication => "approve_application",
            CommandKind::RejectApplication => "reject_application",
            CommandKind::DecideAutomatically => "decide_automatically",
            CommandKind::SignContract => "sign_contract",
            CommandKind::DisburseLoan => "disburse_loan",
            CommandKind::RecordRepayment => "record_repayment",
            CommandKind::ReverseRepayment => "reverse_repayment",
            CommandKind::EvaluateDelinquency => "evaluate_delinquency",
            CommandKind::WriteOffLoan => "write_off_loan",
            CommandKind::WithdrawApplication => "withdraw_application",
            CommandKind::OpenCollectionCase => "open_collection_case",
            CommandKind::RecordContactAttempt => "record_contact_attempt",
            CommandKind::RecordPromiseToPay => "record_promise_to_pay",
            CommandKind::ResolveCollectionCase => "resolve_collection_case",
        }
    }

    pub fn aggregate(self) -> AggregateType {
        match self {
            CommandKind::RegisterCustomer
            | CommandKind::UpdateContact
            | CommandKind::UpdateEmployment
            | CommandKind::UpdateFinancials
            | CommandKind::RecordCreditAssessment
            | CommandKind::VerifyIdentity
            | CommandKind::EraseCustomer => AggregateType::Customer,
            CommandKind::OpenCollectionCase
            | CommandKind::RecordContactAttempt
            | CommandKind::RecordPromiseToPay
            | CommandKind::ResolveCollectionCase => AggregateType::CollectionCase,
            _ => AggregateType::Loan,
        }
    }

    /// Roles allowed to issue the command. Approval above the senior threshold further
    /// requires [`Role::SeniorUnderwriter`] (checked by the loan aggregate, which knows the amount).
    pub fn allowed_roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            CommandKind::RegisterCustomer
            | CommandKind::UpdateContact
            | CommandKind::UpdateEmployment => &[CustomerService, LoanOfficer],
            CommandKind::UpdateFinancials => &[CustomerService, LoanOfficer, Underwriter],
            CommandKind::RecordCreditAssessment => &[Underwriter, RiskManager, System],
            CommandKind::VerifyIdentity => &[CustomerService, Underwriter, System],
            CommandKind::EraseCustomer => &[DataProtectionOfficer],
            CommandKind::CaptureLead => &[LoanOfficer, CustomerService, System],
            CommandKind::AssignOfficer => &[SalesManager, System],
            CommandKind::LogFollowUp => &[LoanOfficer, SalesManager],
            CommandKind::SubmitForReview | CommandKind::SignContract => &[LoanOfficer],
            CommandKind::ApproveApplication | CommandKind::RejectApplication => {
                &[Underwriter, SeniorUnderwriter]
            }
            CommandKind::DecideAutomatically => &[System, Underwriter],
            CommandKind::DisburseLoan | CommandKind::ReverseRepayment => &[Finance],
            CommandKind::RecordRepayment => &[Finance, System],
            CommandKind::EvaluateDelinquency => &[System, RiskManager],
            CommandKind::WriteOffLoan => &[RiskManager],
            CommandKind::WithdrawApplication => &[LoanOfficer, CustomerService],
            // The automation opens and resolves cases; collectors work them.
            CommandKind::OpenCollectionCase | CommandKind::ResolveCollectionCase => &[System],
            CommandKind::RecordContactAttempt | CommandKind::RecordPromiseToPay => &[Collector],
        }
    }

    /// Refuses the command unless the actor holds one of its roles.
    pub fn authorize(self, actor: &Actor) -> Result<(), crate::DomainError> {
        if actor.has_any(self.allowed_roles()) {
            Ok(())
        } else {
            Err(crate::DomainError::Forbidden {
                command: self.name(),
                required: self.allowed_roles().to_vec(),
            })
        }
    }
}

impl std::fmt::Display for CommandKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_types_parse_back_from_their_names_and_every_command_names_one() {
        for aggregate in AggregateType::ALL {
            assert_eq!(AggregateType::parse(aggregate.as_str()), Some(aggregate));
        }
        assert_eq!(
            AggregateType::parse("collection_case"),
            Some(AggregateType::CollectionCase)
        );
        assert_eq!(AggregateType::parse("Loan"), None);
        assert_eq!(AggregateType::parse(""), None);
        for aggregate in AggregateType::ALL {
            assert!(
                CommandKind::ALL
                    .iter()
                    .any(|kind| kind.aggregate() == aggregate),
                "no command addresses {aggregate:?}"
            );
        }
    }
}
