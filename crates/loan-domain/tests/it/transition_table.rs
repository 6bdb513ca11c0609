//! The full transition tables of both aggregates: every state × every command, each with a
//! payload that is valid for that situation, so that the only reason for a refusal is the
//! state (or, where the code says so deliberately, a rule such as "already approved").

use loan_domain::customer::{
    CustomerCommand, EraseCustomer, Financials, Sensitive, UpdateContact, UpdateEmployment,
    UpdateFinancials,
};
use loan_domain::loan::{LoanCommand, LoanStatus};
use loan_domain::pii::PhoneNumber;
use loan_domain::{CommandKind, DomainError, Role};

use crate::support::{
    CustomerScenario, LoanScenario, LoanTerms, Stage, actor, actor_for, actor_lacking,
    credit_assessment_command, customer_id, date, day, drive_to, drive_to_with, event_names,
    loan_id, minus_days, money, plus_days, register_command, verify_identity_command,
};

/// The 14 loan commands, in the order of the table's columns.
const LOAN_COMMANDS: [CommandKind; 14] = [
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
];

/// What one cell of the table expects.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Accepted with exactly these event types, ending in this stage.
    Yes(&'static [&'static str], Stage),
    /// `InvalidTransition { state: <status name>, command: <command name> }`.
    No,
    /// `AlreadyExists { kind: "loan", id: <loan id> }`.
    Exists,
    /// `RuleViolated { rule, .. }`.
    Rule(&'static str),
    /// `NotFound { kind, .. }`.
    NotFound(&'static str),
}

use Expect::{Exists, No, NotFound, Rule, Yes};

const MONEY_IN: &[&str] = &["repayment_recorded", "loan_status_changed"];
const TURNS_OVERDUE: &[&str] = &[
    "penalty_accrued",
    "aging_bucket_changed",
    "loan_status_changed",
];
const WITHDRAWN: Expect = Yes(&["application_withdrawn"], Stage::Withdrawn);

/// Rows: the state the command meets. Columns: [`LOAN_COMMANDS`].
#[rustfmt::skip]
const LOAN_TABLE: [(Stage, [Expect; 14]); 12] = [
    // capture_lead, assign_officer, log_follow_up, submit_for_review, approve_application,
    // reject_application, decide_automatically, sign_contract, disburse_loan,
    // record_repayment, reverse_repayment, evaluate_delinquency, write_off_loan,
    // withdraw_application
    (Stage::NotCaptured, [
        Yes(&["lead_captured"], Stage::Lead),
        No, No, No, No, No, No, No, No, No, No, No, No, No,
    ]),
    (Stage::Lead, [
        Exists,
        Yes(&["officer_assigned"], Stage::Lead),
        Yes(&["follow_up_logged"], Stage::Lead),
        Yes(&["submitted_for_review"], Stage::Review),
        No, No, No, No, No, No, No, No, No,
        WITHDRAWN,
    ]),
    (Stage::Review, [
        Exists,
        Yes(&["officer_assigned"], Stage::Review),
        Yes(&["follow_up_logged"], Stage::Review),
        No,
        Yes(&["application_approved"], Stage::ReviewApproved),
        Yes(&["application_rejected"], Stage::Rejected),
        Yes(&["automated_decision_made", "application_approved"], Stage::ReviewApproved),
        Rule("not_approved"),
        No, No, No, No, No,
        WITHDRAWN,
    ]),
    (Stage::ReviewApproved, [
        Exists,
        Yes(&["officer_assigned"], Stage::ReviewApproved),
        Yes(&["follow_up_logged"], Stage::ReviewApproved),
        No,
        Rule("already_approved"),
        Rule("already_approved"),
        Rule("already_approved"),
        Yes(&["contract_signed"], Stage::Signed),
        No, No, No, No, No,
        WITHDRAWN,
    ]),
    (Stage::Signed, [
        Exists, No, No, No, No, No, No, No,
        Yes(&["loan_disbursed"], Stage::Disbursed),
        No, No, No, No,
        WITHDRAWN,
    ]),
    (Stage::Disbursed, [
        Exists, No, No, No, No, No, No, No, No,
        // installment 1 paid on its due date
        Yes(MONEY_IN, Stage::Repaying),
        // there is no payment to reverse yet
        NotFound("payment"),
        // 2026-02-20: installment 1 is 10 days late, grace is 5
        Yes(TURNS_OVERDUE, Stage::Overdue),
        No, No,
    ]),
    (Stage::Repaying, [
        Exists, No, No, No, No, No, No, No, No,
        // installment 2 paid on its due date
        Yes(&["repayment_recorded"], Stage::Repaying),
        // reversing the only payment: nothing is late on 2026-02-10
        Yes(&["repayment_reversed", "loan_status_changed"], Stage::Disbursed),
        // 2026-03-20: installment 2 is 10 days late
        Yes(TURNS_OVERDUE, Stage::Overdue),
        No, No,
    ]),
    (Stage::Overdue, [
        Exists, No, No, No, No, No, No, No, No,
        // installment 2 with its penalty, and 100.00 towards installment 3: cured
        Yes(&["repayment_recorded", "aging_bucket_changed", "loan_status_changed"], Stage::Repaying),
        // reversing installment 1: now 38 days past due, still overdue
        Yes(&["repayment_reversed", "aging_bucket_changed"], Stage::Overdue),
        // five more days of penalty, same bucket
        Yes(&["penalty_accrued"], Stage::Overdue),
        Yes(&["loan_written_off"], Stage::WrittenOff),
        No,
    ]),
    (Stage::PaidOff, [
        Exists, No, No, No, No, No, No, No, No,
        No,
        // a reversal reopens a paid-off loan
        Yes(&["repayment_reversed", "loan_status_changed"], Stage::Disbursed),
        No, No, No,
    ]),
    (Stage::WrittenOff, [Exists, No, No, No, No, No, No, No, No, No, No, No, No, No]),
    (Stage::Rejected, [Exists, No, No, No, No, No, No, No, No, No, No, No, No, No]),
    (Stage::Withdrawn, [Exists, No, No, No, No, No, No, No, No, No, No, No, No, No]),
];

/// The business date the table's commands are issued on, for a loan in `stage`.
fn table_today(stage: Stage) -> chrono::NaiveDate {
    match stage {
        Stage::NotCaptured
        | Stage::Lead
        | Stage::Review
        | Stage::ReviewApproved
        | Stage::Rejected
        | Stage::Withdrawn => date(2026, 1, 6),
        Stage::Signed => day::disbursed(),
        Stage::Disbursed => date(2026, 2, 20),
        Stage::Repaying => day::overdue_evaluated(),
        Stage::Overdue => date(2026, 3, 25),
        Stage::PaidOff => date(2026, 1, 25),
        Stage::WrittenOff => date(2026, 7, 1),
    }
}

/// The given loan driven to `stage`, on the date the table's commands are issued.
fn given(stage: Stage) -> LoanScenario {
    let mut s = drive_to(stage);
    s.on(table_today(stage));
    s
}

/// A payload of `kind` that is valid for a loan in `stage`.
fn payload(s: &LoanScenario, kind: CommandKind) -> LoanCommand {
    match kind {
        CommandKind::CaptureLead => s.capture_lead(),
        CommandKind::AssignOfficer => s.assign_officer("officer-042"),
        CommandKind::LogFollowUp => s.log_follow_up(),
        CommandKind::SubmitForReview => s.submit_for_review(),
        CommandKind::ApproveApplication => s.approve(),
        CommandKind::RejectApplication => s.reject(),
        CommandKind::DecideAutomatically => s.decide_automatically(),
        CommandKind::SignContract => s.sign(),
        CommandKind::DisburseLoan => s.disburse(s.today),
        CommandKind::RecordRepayment => {
            let (amount, value_date) = match s.stage() {
                Stage::Disbursed => (s.installment_total(1), LoanScenario::due_date(1)),
                Stage::Repaying => (s.installment_total(2), LoanScenario::due_date(2)),
                Stage::Overdue => {
                    let amount = s
                        .installment_total(2)
                        .checked_add(money("100.00"))
                        .expect("small amounts");
                    (amount, s.today)
                }
                _ => (money("100.00"), s.today),
            };
            s.repay("pay-table", amount, value_date)
        }
        CommandKind::ReverseRepayment => {
            let reference = s
                .loan
                .account()
                .and_then(|acc| acc.payments.first())
                .map_or_else(|| "pay-1".to_owned(), |p| p.reference.clone());
            s.reverse(&reference)
        }
        CommandKind::EvaluateDelinquency => s.evaluate(s.today),
        CommandKind::WriteOffLoan => s.write_off(),
        CommandKind::WithdrawApplication => s.withdraw(),
        other => panic!("test bug: {other} is not a loan command"),
    }
}

fn check_cell(s: &LoanScenario, kind: CommandKind, expect: Expect) {
    let command = payload(s, kind);
    assert_eq!(command.kind(), kind, "test bug: payload kind");
    let before = s.loan.clone();
    let when = s.when(&command, &actor_for(kind));
    match expect {
        Yes(events, stage) => {
            let after = when.then_events(events);
            assert_eq!(Stage::of(&after), stage, "{}: resulting stage", when.label);
            assert_eq!(after.status(), stage.status(), "{}: status", when.label);
            assert_eq!(
                after.application().map(|a| a.loan_id),
                Some(loan_id()),
                "{}: the loan keeps its id",
                when.label
            );
        }
        No => when.then_refused(&DomainError::InvalidTransition {
            state: s.loan.status_name(),
            command: kind.name(),
        }),
        Exists => when.then_refused(&DomainError::AlreadyExists {
            kind: "loan",
            id: loan_id().to_string(),
        }),
        Rule(rule) => match when.then_refused_with() {
            DomainError::RuleViolated { rule: got, .. } => {
                assert_eq!(*got, rule, "{}: rule", when.label);
            }
            other => panic!("{}: expected rule {rule}, got {other:?}", when.label),
        },
        NotFound(kind_name) => match when.then_refused_with() {
            DomainError::NotFound { kind: got, .. } => {
                assert_eq!(*got, kind_name, "{}: not found kind", when.label);
            }
            other => panic!(
                "{}: expected {kind_name} not found, got {other:?}",
                when.label
            ),
        },
    }
    assert_eq!(
        s.loan, before,
        "decide must not change the state it is given"
    );
}

#[test]
fn the_table_covers_every_stage_and_every_loan_command() {
    let stages: Vec<Stage> = LOAN_TABLE.iter().map(|(stage, _)| *stage).collect();
    assert_eq!(stages, Stage::ALL, "one row per stage, in order");
    let loan_kinds: Vec<CommandKind> = CommandKind::ALL
        .into_iter()
        .filter(|k| k.aggregate() == loan_domain::AggregateType::Loan)
        .collect();
    assert_eq!(loan_kinds, LOAN_COMMANDS, "one column per loan command");
    let statuses: Vec<Option<LoanStatus>> = Stage::ALL.iter().map(|s| s.status()).collect();
    for status in LoanStatus::ALL {
        assert!(
            statuses.contains(&Some(status)),
            "no row reaches status {status}"
        );
    }
}

#[test]
fn every_stage_meets_every_loan_command_as_the_table_says() {
    for (stage, row) in LOAN_TABLE {
        let s = given(stage);
        for (kind, expect) in LOAN_COMMANDS.into_iter().zip(row) {
            check_cell(&s, kind, expect);
        }
    }
}

#[test]
fn every_role_allowed_to_issue_an_accepted_command_can_issue_it_alone() {
    for (stage, row) in LOAN_TABLE {
        let s = given(stage);
        for (kind, expect) in LOAN_COMMANDS.into_iter().zip(row) {
            let Yes(events, _) = expect else { continue };
            let command = payload(&s, kind);
            for role in kind.allowed_roles() {
                s.when(&command, &actor(&[*role])).then_events(events);
            }
        }
    }
}

#[test]
fn terminal_statuses_accept_nothing_but_a_reversal_of_a_paid_off_loan() {
    for (stage, row) in LOAN_TABLE {
        let Some(status) = stage.status() else {
            continue;
        };
        let accepted: Vec<CommandKind> = LOAN_COMMANDS
            .into_iter()
            .zip(row)
            .filter(|(_, e)| matches!(e, Yes(..)))
            .map(|(k, _)| k)
            .collect();
        if status.is_terminal() {
            let allowed: &[CommandKind] = if status == LoanStatus::PaidOff {
                &[CommandKind::ReverseRepayment]
            } else {
                &[]
            };
            assert_eq!(accepted, allowed, "{status} is terminal");
        } else {
            assert!(!accepted.is_empty(), "{status} is not terminal");
        }
    }
}

#[test]
fn every_loan_command_is_forbidden_to_an_actor_without_its_roles_in_every_stage() {
    let nobody = actor(&[]);
    for stage in Stage::ALL {
        let s = given(stage);
        for kind in LOAN_COMMANDS {
            let command = payload(&s, kind);
            let forbidden = DomainError::Forbidden {
                command: kind.name(),
                required: kind.allowed_roles().to_vec(),
            };
            s.when(&command, &actor_lacking(kind))
                .then_refused(&forbidden);
            s.when(&command, &nobody).then_refused(&forbidden);
        }
    }
}

#[test]
fn approving_above_the_senior_threshold_needs_a_senior_underwriter() {
    let terms = LoanTerms {
        principal: money("250000.00"),
        ..LoanTerms::default()
    };
    let mut s = drive_to_with(Stage::Review, terms);
    // A customer who earns enough for the policy to approve 250,000 on its own.
    let mut customer = CustomerScenario::onboarded();
    customer.run(&CustomerCommand::UpdateFinancials(UpdateFinancials {
        customer_id: customer_id(),
        financials: Financials {
            monthly_income: money("100000.00"),
            monthly_debt_payments: money("2000.00"),
            total_assets: money("500000.00"),
            total_liabilities: money("100000.00"),
        },
    }));
    s.customer = customer.customer;
    s.on(day::decided());

    // The policy never approves above the threshold on its own: it refers to a person.
    let decide = s.decide_automatically();
    let after = s
        .when(&decide, &actor(&[Role::System]))
        .then_events(&["automated_decision_made"]);
    assert!(matches!(
        after.application().map(|a| &a.verdict),
        Some(loan_domain::loan::Verdict::Referred)
    ));
    s.execute(&decide, &actor(&[Role::System]))
        .expect("referred");
    match s.when(&decide, &actor(&[Role::System])).then_refused_with() {
        DomainError::RuleViolated { rule, .. } => assert_eq!(*rule, "already_referred"),
        other => panic!("expected already_referred, got {other:?}"),
    }

    let approve = s.approve();
    s.when(&approve, &actor(&[Role::Underwriter]))
        .then_refused(&DomainError::Forbidden {
            command: "approve_application",
            required: vec![Role::SeniorUnderwriter],
        });
    let after = s
        .when(&approve, &actor(&[Role::SeniorUnderwriter]))
        .then_events(&["application_approved"]);
    assert_eq!(Stage::of(&after), Stage::ReviewApproved);
}

#[test]
fn repeated_commands_are_accepted_without_new_events() {
    // Assigning the officer already assigned.
    let mut s = given(Stage::Lead);
    s.run(&s.assign_officer("officer-042"));
    s.when(
        &s.assign_officer("officer-042"),
        &actor(&[Role::SalesManager]),
    )
    .then_events(&[]);

    // Recording the same payment (reference, amount, value date) again.
    let s = given(Stage::Repaying);
    let again = s.repay("pay-1", s.installment_total(1), day::first_due());
    s.when(&again, &actor(&[Role::Finance])).then_events(&[]);
    // ...but not with another amount.
    let changed = s.repay("pay-1", money("1.00"), day::first_due());
    match s
        .when(&changed, &actor(&[Role::Finance]))
        .then_refused_with()
    {
        DomainError::RuleViolated { rule, .. } => assert_eq!(*rule, "payment_reference_reused"),
        other => panic!("expected payment_reference_reused, got {other:?}"),
    }

    // Reversing a reversed payment again; reusing its reference is refused.
    let mut s = given(Stage::Repaying);
    s.run(&s.reverse("pay-1"));
    s.when(&s.reverse("pay-1"), &actor(&[Role::Finance]))
        .then_events(&[]);
    let reuse = s.repay("pay-1", money("10.00"), s.today);
    match s.when(&reuse, &actor(&[Role::Finance])).then_refused_with() {
        DomainError::RuleViolated { rule, .. } => assert_eq!(*rule, "payment_reference_reversed"),
        other => panic!("expected payment_reference_reversed, got {other:?}"),
    }

    // Evaluating a date the book has already reached.
    let s = given(Stage::Overdue);
    s.when(
        &s.evaluate(day::overdue_evaluated()),
        &actor(&[Role::System]),
    )
    .then_events(&[]);
}

#[test]
fn the_setup_calendar_lands_where_the_table_assumes() {
    let s = given(Stage::Overdue);
    let acc = s.account();
    assert_eq!(acc.disbursed_on, day::disbursed());
    assert_eq!(acc.position_date, day::overdue_evaluated());
    assert_eq!(acc.days_past_due(), 10, "installment 2 was due 2026-03-10");
    assert_eq!(
        acc.schedule.installments.first().map(|i| i.due_date),
        Some(day::first_due())
    );
    assert_eq!(
        acc.schedule.installments.get(1).map(|i| i.due_date),
        Some(LoanScenario::due_date(2))
    );
    let events = event_names(&drive_to(Stage::WrittenOff).events);
    assert_eq!(
        events,
        [
            "lead_captured",
            "submitted_for_review",
            "application_approved",
            "contract_signed",
            "loan_disbursed",
            "repayment_recorded",
            "loan_status_changed",
            "penalty_accrued",
            "aging_bucket_changed",
            "loan_status_changed",
            "penalty_accrued",
            "aging_bucket_changed",
            "loan_written_off",
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Customer
// ---------------------------------------------------------------------------------------

const CUSTOMER_COMMANDS: [CommandKind; 7] = [
    CommandKind::RegisterCustomer,
    CommandKind::UpdateContact,
    CommandKind::UpdateEmployment,
    CommandKind::UpdateFinancials,
    CommandKind::RecordCreditAssessment,
    CommandKind::VerifyIdentity,
    CommandKind::EraseCustomer,
];

#[derive(Debug, Clone, Copy)]
enum CustomerExpect {
    /// Accepted with exactly this event, ending in this status.
    Yes(&'static str, &'static str),
    /// Accepted with no event (idempotent repeat).
    Same,
    NotFound,
    Exists,
    No,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CustomerStage {
    Unregistered,
    Registered,
    /// Registered with the identity verified.
    Verified,
    /// Verified, then erased.
    Erased,
}

fn erase_command() -> EraseCustomer {
    EraseCustomer {
        customer_id: customer_id(),
        reason: "data subject request DSR-42".into(),
    }
}

fn given_customer(stage: CustomerStage) -> CustomerScenario {
    let mut s = match stage {
        CustomerStage::Unregistered => CustomerScenario::unregistered(),
        CustomerStage::Registered => CustomerScenario::registered(),
        CustomerStage::Verified => {
            let mut s = CustomerScenario::registered();
            s.run(&CustomerCommand::VerifyIdentity(verify_identity_command(
                s.today,
            )));
            s
        }
        CustomerStage::Erased => {
            let mut s = given_customer(CustomerStage::Verified);
            s.run(&CustomerCommand::Erase(erase_command()));
            s
        }
    };
    s.today = plus_days(s.today, 3);
    s
}

fn customer_payload(s: &CustomerScenario, kind: CommandKind) -> CustomerCommand {
    match kind {
        CommandKind::RegisterCustomer => CustomerCommand::Register(register_command()),
        CommandKind::UpdateContact => CustomerCommand::UpdateContact(UpdateContact {
            customer_id: customer_id(),
            phone: Some(PhoneNumber::parse("13912345678").expect("valid phone")),
            region: Some("310000".into()),
        }),
        CommandKind::UpdateEmployment => CustomerCommand::UpdateEmployment(UpdateEmployment {
            customer_id: customer_id(),
            employer: Some("Globex Ltd.".into()),
        }),
        CommandKind::UpdateFinancials => CustomerCommand::UpdateFinancials(UpdateFinancials {
            customer_id: customer_id(),
            financials: Financials {
                monthly_income: money("25000.00"),
                monthly_debt_payments: money("1500.00"),
                total_assets: money("600000.00"),
                total_liabilities: money("90000.00"),
            },
        }),
        CommandKind::RecordCreditAssessment => {
            CustomerCommand::RecordCreditAssessment(credit_assessment_command(720, s.today))
        }
        CommandKind::VerifyIdentity => {
            CustomerCommand::VerifyIdentity(verify_identity_command(s.today))
        }
        CommandKind::EraseCustomer => CustomerCommand::Erase(erase_command()),
        other => panic!("test bug: {other} is not a customer command"),
    }
}

#[rustfmt::skip]
const CUSTOMER_TABLE: [(CustomerStage, [CustomerExpect; 7]); 4] = {
    use CustomerExpect::{Exists, No, NotFound, Same, Yes};
    const R: &str = "registered";
    [
        // register, update_contact, update_employment, update_financials,
        // record_credit_assessment, verify_identity, erase_customer
        (CustomerStage::Unregistered,
            [Yes("customer_registered", R), NotFound, NotFound, NotFound, NotFound, NotFound,
             NotFound]),
        (CustomerStage::Registered,
            [Exists, Yes("contact_updated", R), Yes("employment_updated", R),
             Yes("financials_updated", R), Yes("credit_assessed", R), Yes("identity_verified", R),
             Yes("customer_erased", "erased")]),
        // Verifying again is an idempotent no-op.
        (CustomerStage::Verified,
            [Exists, Yes("contact_updated", R), Yes("employment_updated", R),
             Yes("financials_updated", R), Yes("credit_assessed", R), Same,
             Yes("customer_erased", "erased")]),
        // Erased is final; erasing again is an idempotent no-op.
        (CustomerStage::Erased,
            [Exists, No, No, No, No, No, Same]),
    ]
};

#[test]
fn every_customer_state_meets_every_customer_command_as_the_table_says() {
    let kinds: Vec<CommandKind> = CommandKind::ALL
        .into_iter()
        .filter(|k| k.aggregate() == loan_domain::AggregateType::Customer)
        .collect();
    assert_eq!(kinds, CUSTOMER_COMMANDS, "one column per customer command");

    for (stage, row) in CUSTOMER_TABLE {
        let s = given_customer(stage);
        for (kind, expect) in CUSTOMER_COMMANDS.into_iter().zip(row) {
            let command = customer_payload(&s, kind);
            let label = format!("{kind} on a {stage:?} customer");
            let result = s.decide_as(&command, &actor_for(kind));
            match (expect, result) {
                (CustomerExpect::Same, Ok(events)) => {
                    assert_eq!(events, vec![], "{label}: no events");
                    for role in kind.allowed_roles() {
                        assert_eq!(
                            s.decide_as(&command, &actor(&[*role])),
                            Ok(vec![]),
                            "{label} by {role}"
                        );
                    }
                }
                (CustomerExpect::Yes(name, status), Ok(events)) => {
                    let names: Vec<&str> = events.iter().map(|e| e.type_name()).collect();
                    assert_eq!(names, [name], "{label}: events");
                    let mut all = s.events.clone();
                    all.extend(events.iter().cloned());
                    let after = events
                        .iter()
                        .fold(s.customer.clone(), loan_domain::customer::evolve);
                    assert_eq!(
                        loan_domain::customer::Customer::replay(&all),
                        after,
                        "{label}: replay"
                    );
                    assert_eq!(after.status(), status, "{label}: status after");
                    // Every role allowed may issue it alone.
                    for role in kind.allowed_roles() {
                        assert_eq!(
                            s.decide_as(&command, &actor(&[*role])).map(|e| e.len()),
                            Ok(1),
                            "{label} by {role}"
                        );
                    }
                }
                (expect, Ok(events)) => panic!(
                    "{label}: expected {expect:?}, got events {:?}",
                    events.iter().map(|e| e.type_name()).collect::<Vec<_>>()
                ),
                (CustomerExpect::Yes(name, _), Err(e)) => {
                    panic!("{label}: expected {name}, refused with {e:?}")
                }
                (CustomerExpect::Same, Err(e)) => {
                    panic!("{label}: expected no events, refused with {e:?}")
                }
                (CustomerExpect::NotFound, Err(e)) => assert_eq!(
                    e,
                    DomainError::NotFound {
                        kind: "customer",
                        id: customer_id().to_string()
                    },
                    "{label}"
                ),
                (CustomerExpect::Exists, Err(e)) => assert_eq!(
                    e,
                    DomainError::AlreadyExists {
                        kind: "customer",
                        id: customer_id().to_string()
                    },
                    "{label}"
                ),
                (CustomerExpect::No, Err(e)) => assert_eq!(
                    e,
                    DomainError::InvalidTransition {
                        state: s.customer.status(),
                        command: kind.name()
                    },
                    "{label}"
                ),
            }
            assert_eq!(
                loan_domain::customer::Customer::replay(&s.events),
                s.customer,
                "{label}: replaying the events so far differs from the state"
            );
            // Authorization comes first, whatever the state.
            let forbidden = DomainError::Forbidden {
                command: kind.name(),
                required: kind.allowed_roles().to_vec(),
            };
            assert_eq!(
                s.decide_as(&command, &actor_lacking(kind)),
                Err(forbidden.clone()),
                "{label} without its roles"
            );
            assert_eq!(
                s.decide_as(&command, &actor(&[])),
                Err(forbidden),
                "{label} by an actor with no roles"
            );
        }
    }
}

#[test]
fn customer_updates_that_change_nothing_produce_no_events() {
    let s = given_customer(CustomerStage::Registered);
    let profile = s.customer.profile().expect("registered").clone();
    let same = [
        CustomerCommand::UpdateContact(UpdateContact {
            customer_id: customer_id(),
            phone: profile.phone.known().cloned(),
            region: Some(profile.region.clone()),
        }),
        CustomerCommand::UpdateEmployment(UpdateEmployment {
            customer_id: customer_id(),
            employer: profile.employer.clone(),
        }),
        CustomerCommand::UpdateFinancials(UpdateFinancials {
            customer_id: customer_id(),
            financials: profile.financials,
        }),
    ];
    for command in same {
        assert_eq!(
            s.decide_as(&command, &actor_for(command.kind())),
            Ok(vec![]),
            "{} with the current values",
            command.kind()
        );
    }
}

#[test]
fn the_onboarded_customer_is_verified_and_assessed() {
    let s = CustomerScenario::onboarded();
    let profile = s.customer.profile().expect("registered");
    assert!(profile.identity_verified());
    assert_eq!(profile.credit_score(), Some(760));
    let national_id = profile.national_id.known().expect("not erased");
    assert_eq!(national_id.birth_date(), profile.birth_date);
    assert_eq!(national_id.gender(), profile.gender);
    assert_eq!(
        profile.phone.known().map(|p| p.expose()),
        Some("13812345678")
    );
    let names: Vec<&str> = s.events.iter().map(|e| e.type_name()).collect();
    assert_eq!(
        names,
        [
            "customer_registered",
            "identity_verified",
            "credit_assessed"
        ]
    );
}

#[test]
fn identity_cannot_be_verified_before_registration() {
    let s = given_customer(CustomerStage::Registered);
    let registered_on = s.customer.profile().expect("registered").registered_on;
    let early = verify_identity_command(minus_days(registered_on, 1));
    match s
        .decide_as(
            &CustomerCommand::VerifyIdentity(early),
            &actor_for(CommandKind::VerifyIdentity),
        )
        .expect_err("refused")
    {
        DomainError::Validation { field, .. } => assert_eq!(field, "verified_on"),
        other => panic!("expected validation_failed on verified_on, got {other:?}"),
    }
    // On the registration day itself it is fine.
    let same_day = verify_identity_command(registered_on);
    assert_eq!(
        s.decide_as(
            &CustomerCommand::VerifyIdentity(same_day),
            &actor_for(CommandKind::VerifyIdentity),
        )
        .map(|events| events.len()),
        Ok(1)
    );
}

#[test]
fn erasure_forgets_the_sensitive_values_and_refuses_new_lending() {
    let mut customer = given_customer(CustomerStage::Verified);
    let events = customer.run(&CustomerCommand::Erase(erase_command()));
    assert_eq!(
        events.iter().map(|e| e.type_name()).collect::<Vec<_>>(),
        ["customer_erased"]
    );
    let profile = customer.customer.profile().expect("still has a profile");
    assert_eq!(profile.national_id, Sensitive::Erased);
    assert_eq!(profile.bank_card, Sensitive::Erased);
    assert_eq!(profile.phone, Sensitive::Erased);
    assert_eq!(profile.erased_on, Some(customer.today));
    assert_eq!(profile.national_id.to_string(), "erased");
    assert!(profile.identity_verified(), "the rest of the profile stays");
    assert_eq!(
        loan_domain::customer::Customer::replay(&customer.events),
        customer.customer
    );

    // The loan about to be disbursed: refused for an erased customer.
    let mut s = given(Stage::Signed);
    s.customer = customer.customer.clone();
    match s
        .when(&s.disburse(s.today), &actor(&[Role::Finance]))
        .then_refused_with()
    {
        DomainError::RuleViolated { rule, .. } => assert_eq!(*rule, "customer_erased"),
        other => panic!("expected customer_erased, got {other:?}"),
    }
    // A new lead too.
    let mut s = given(Stage::NotCaptured);
    s.customer = customer.customer.clone();
    match s
        .when(&s.capture_lead(), &actor(&[Role::LoanOfficer]))
        .then_refused_with()
    {
        DomainError::RuleViolated { rule, .. } => assert_eq!(*rule, "customer_erased"),
        other => panic!("expected customer_erased, got {other:?}"),
    }
    // Servicing a disbursed loan goes on.
    let mut s = given(Stage::Disbursed);
    s.customer = customer.customer;
    s.when(
        &s.repay(
            "pay-after-erasure",
            s.installment_total(1),
            LoanScenario::due_date(1),
        ),
        &actor(&[Role::Finance]),
    )
    .then_events(MONEY_IN);
}
