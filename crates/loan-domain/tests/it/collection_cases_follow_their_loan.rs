//! Collection cases: the system opens a case only for a loan past due, collectors work
//! it, the system resolves it only the way the loan shows; every refusal names why and
//! produces no event.

use chrono::NaiveDate;
use loan_domain::collection::{
    self, CollectionCase, CollectionCaseCommand, CollectionCaseEvent, ContactChannel,
    ContactOutcome, OpenCollectionCase, RecordContactAttempt, RecordPromiseToPay, Resolution,
    ResolveCollectionCase,
};
use loan_domain::loan::Loan;
use loan_domain::{CollectionCaseId, CommandKind, DomainError, LendingRules, Role};
use uuid::Uuid;

use crate::support::{
    Stage, actor, actor_lacking, context, date, day, drive_to, loan_id, money, plus_days,
};

fn case_id() -> CollectionCaseId {
    CollectionCaseId(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_ca5e))
}

fn open() -> CollectionCaseCommand {
    CollectionCaseCommand::Open(OpenCollectionCase {
        case_id: case_id(),
        loan_id: loan_id(),
        team: "collections".into(),
        reason: "installment 1 unpaid".into(),
    })
}

fn contact(on: NaiveDate) -> CollectionCaseCommand {
    CollectionCaseCommand::RecordContactAttempt(RecordContactAttempt {
        case_id: case_id(),
        channel: ContactChannel::Phone,
        outcome: ContactOutcome::Reached,
        note: Some("promised to pay on Friday".into()),
        attempted_on: on,
    })
}

fn promise(amount: &str, pay_by: NaiveDate) -> CollectionCaseCommand {
    CollectionCaseCommand::RecordPromiseToPay(RecordPromiseToPay {
        case_id: case_id(),
        amount: money(amount),
        pay_by,
        note: None,
    })
}

fn resolve(resolution: Resolution) -> CollectionCaseCommand {
    CollectionCaseCommand::Resolve(ResolveCollectionCase {
        case_id: case_id(),
        resolution,
        reason: "the loan moved on".into(),
    })
}

/// 2 days after the first due date (2026-02-10), nothing paid: 2 days past due.
fn in_arrears() -> NaiveDate {
    date(2026, 2, 12)
}

/// A case opened on `in_arrears()` for a disbursed loan that pays nothing.
fn open_case() -> CollectionCase {
    let loan = drive_to(Stage::Disbursed).loan;
    let events = decide(
        &CollectionCase::NotOpened,
        &open(),
        Some(&loan),
        Role::System,
        in_arrears(),
    )
    .expect("opens");
    CollectionCase::replay(&events)
}

fn decide(
    case: &CollectionCase,
    command: &CollectionCaseCommand,
    loan: Option<&Loan>,
    role: Role,
    today: NaiveDate,
) -> Result<Vec<CollectionCaseEvent>, DomainError> {
    let rules = LendingRules::default();
    let actor = actor(&[role]);
    collection::decide(case, command, loan, &context(&actor, today, &rules))
}

fn rule(error: &DomainError) -> &'static str {
    match error {
        DomainError::RuleViolated { rule, .. } => rule,
        other => other.code(),
    }
}

#[test]
fn a_case_opens_only_for_a_loan_in_servicing_that_is_past_due() {
    // (loan stage, business date, expected: Ok(days past due) or the refusal's rule/code)
    let cases: [(Stage, NaiveDate, Result<u32, &str>); 8] = [
        (Stage::Disbursed, in_arrears(), Ok(2)),
        (
            Stage::Disbursed,
            date(2026, 2, 10),
            Err("loan_not_past_due"),
        ),
        (Stage::Repaying, date(2026, 2, 12), Err("loan_not_past_due")),
        (Stage::Overdue, day::overdue_evaluated(), Ok(10)),
        (Stage::Lead, in_arrears(), Err("loan_not_in_servicing")),
        (Stage::Signed, in_arrears(), Err("loan_not_in_servicing")),
        (Stage::PaidOff, in_arrears(), Err("loan_not_in_servicing")),
        (
            Stage::WrittenOff,
            in_arrears(),
            Err("loan_not_in_servicing"),
        ),
    ];
    for (stage, today, expected) in cases {
        let loan = drive_to(stage).loan;
        let got = decide(
            &CollectionCase::NotOpened,
            &open(),
            Some(&loan),
            Role::System,
            today,
        );
        match (expected, got) {
            (Ok(days), Ok(events)) => {
                let [
                    CollectionCaseEvent::CollectionCaseOpened {
                        days_past_due,
                        overdue_amount,
                        opened_on,
                        team,
                        ..
                    },
                ] = events.as_slice()
                else {
                    panic!("{stage:?}: one opening event, got {events:?}");
                };
                assert_eq!(*days_past_due, days, "{stage:?}");
                assert!(overdue_amount.is_positive(), "{stage:?}: arrears recorded");
                assert_eq!(*opened_on, today);
                assert_eq!(team, "collections");
            }
            (Err(expected), Err(error)) => assert_eq!(rule(&error), expected, "{stage:?}"),
            (expected, got) => panic!("{stage:?} on {today}: expected {expected:?}, got {got:?}"),
        }
    }
    let missing = decide(
        &CollectionCase::NotOpened,
        &open(),
        None,
        Role::System,
        in_arrears(),
    );
    assert_eq!(missing.map_err(|e| e.code()), Err("not_found"));
}

#[test]
fn only_the_system_opens_and_resolves_and_only_collectors_work_a_case() {
    let loan = drive_to(Stage::Disbursed).loan;
    let case = open_case();
    let today = in_arrears();
    let commands = [
        (
            CommandKind::OpenCollectionCase,
            CollectionCase::NotOpened,
            open(),
        ),
        (
            CommandKind::RecordContactAttempt,
            case.clone(),
            contact(today),
        ),
        (
            CommandKind::RecordPromiseToPay,
            case.clone(),
            promise("500.00", today),
        ),
        (
            CommandKind::ResolveCollectionCase,
            case.clone(),
            resolve(Resolution::Cured),
        ),
    ];
    for (kind, state, command) in commands {
        assert_eq!(command.kind(), kind);
        let lacking = actor_lacking(kind);
        let rules = LendingRules::default();
        let refused = collection::decide(
            &state,
            &command,
            Some(&loan),
            &context(&lacking, today, &rules),
        );
        assert!(
            matches!(refused, Err(DomainError::Forbidden { .. })),
            "{kind} by {}: {refused:?}",
            lacking.id
        );
    }
    assert_eq!(
        CommandKind::OpenCollectionCase.allowed_roles(),
        [Role::System]
    );
    assert_eq!(
        CommandKind::ResolveCollectionCase.allowed_roles(),
        [Role::System]
    );
    assert_eq!(
        CommandKind::RecordContactAttempt.allowed_roles(),
        [Role::Collector]
    );
    assert_eq!(
        CommandKind::RecordPromiseToPay.allowed_roles(),
        [Role::Collector]
    );
}

#[test]
fn collectors_record_contact_attempts_and_promises_with_valid_dates_and_amounts() {
    let loan = drive_to(Stage::Disbursed).loan;
    let case = open_case();
    let today = date(2026, 2, 13);
    // (command, expected: Ok(event type) or the refused field)
    let cases: Vec<(CollectionCaseCommand, Result<&str, &str>)> = vec![
        (contact(today), Ok("contact_attempted")),
        (contact(in_arrears()), Ok("contact_attempted")),
        (contact(plus_days(today, 1)), Err("attempted_on")),
        (contact(date(2026, 2, 11)), Err("attempted_on")),
        (
            promise("500.00", plus_days(today, 7)),
            Ok("promise_to_pay_recorded"),
        ),
        (promise("500.00", today), Ok("promise_to_pay_recorded")),
        (
            promise("500.00", plus_days(today, 90)),
            Ok("promise_to_pay_recorded"),
        ),
        (promise("500.00", plus_days(today, 91)), Err("pay_by")),
        (promise("500.00", date(2026, 2, 12)), Err("pay_by")),
        (promise("0.00", plus_days(today, 7)), Err("amount")),
        (promise("-1.00", plus_days(today, 7)), Err("amount")),
    ];
    for (command, expected) in cases {
        let got = decide(&case, &command, Some(&loan), Role::Collector, today);
        match (expected, got) {
            (Ok(event_type), Ok(events)) => {
                assert_eq!(events.len(), 1);
                assert_eq!(events[0].type_name(), event_type);
                let after = collection::evolve(case.clone(), &events[0]);
                assert!(after.is_open(), "working a case keeps it open");
                assert_ne!(after, case, "the file records it");
            }
            (Err(field), Err(error)) => {
                assert_eq!(error.code(), "validation_failed", "{command:?}");
                assert_eq!(error.field(), Some(field), "{command:?}");
            }
            (expected, got) => panic!("{command:?}: expected {expected:?}, got {got:?}"),
        }
    }
}

#[test]
fn a_case_resolves_only_as_the_loan_shows_and_then_is_final() {
    let case = open_case();
    let cured = {
        let mut s = drive_to(Stage::Disbursed);
        s.on(date(2026, 2, 13));
        let first = s.installment_total(1);
        let pay = s.repay("PAY-CURE", first, date(2026, 2, 13));
        s.run(&pay);
        s.loan
    };
    let still_overdue = drive_to(Stage::Overdue).loan;
    let paid_off = drive_to(Stage::PaidOff).loan;
    let written_off = drive_to(Stage::WrittenOff).loan;
    let later = date(2026, 2, 14);
    let overdue_on = day::overdue_evaluated();
    // (loan, business date, resolution, expected: Ok(days past due recorded) or the
    // refusal's rule)
    type Case<'l> = (
        &'l Loan,
        NaiveDate,
        Resolution,
        Result<Option<u32>, &'static str>,
    );
    let cases: [Case<'_>; 8] = [
        (&cured, later, Resolution::Cured, Ok(Some(0))),
        (
            &still_overdue,
            overdue_on,
            Resolution::Cured,
            Err("resolution_does_not_match_loan"),
        ),
        (
            &still_overdue,
            overdue_on,
            Resolution::PaidOff,
            Err("resolution_does_not_match_loan"),
        ),
        (&paid_off, later, Resolution::PaidOff, Ok(Some(0))),
        (
            &paid_off,
            later,
            Resolution::Cured,
            Err("resolution_does_not_match_loan"),
        ),
        (&written_off, later, Resolution::WrittenOff, Ok(None)),
        (
            &written_off,
            later,
            Resolution::PaidOff,
            Err("resolution_does_not_match_loan"),
        ),
        (
            &cured,
            later,
            Resolution::WrittenOff,
            Err("resolution_does_not_match_loan"),
        ),
    ];
    for (loan, later, resolution, expected) in cases {
        let got = decide(&case, &resolve(resolution), Some(loan), Role::System, later);
        match (expected, got) {
            (Ok(days), Ok(events)) => {
                let [
                    CollectionCaseEvent::CollectionCaseResolved {
                        resolution: recorded,
                        days_past_due,
                        resolved_on,
                        ..
                    },
                ] = events.as_slice()
                else {
                    panic!("{resolution:?}: one resolution event, got {events:?}");
                };
                assert_eq!(*recorded, resolution);
                if let Some(days) = days {
                    assert_eq!(*days_past_due, days);
                }
                assert_eq!(*resolved_on, later);
                let resolved = collection::evolve(case.clone(), &events[0]);
                assert_eq!(resolved.status(), "resolved");
                // Final: the same resolution again changes nothing; anything else is refused.
                assert_eq!(
                    decide(
                        &resolved,
                        &resolve(resolution),
                        Some(loan),
                        Role::System,
                        later
                    ),
                    Ok(vec![])
                );
                for (command, role) in [
                    (contact(later), Role::Collector),
                    (promise("10.00", later), Role::Collector),
                    (
                        resolve(if resolution == Resolution::Cured {
                            Resolution::PaidOff
                        } else {
                            Resolution::Cured
                        }),
                        Role::System,
                    ),
                ] {
                    let refused = decide(&resolved, &command, Some(loan), role, later);
                    assert_eq!(refused.map_err(|e| e.code()), Err("invalid_transition"));
                }
                let reopened = decide(&resolved, &open(), Some(loan), Role::System, later);
                assert_eq!(reopened.map_err(|e| e.code()), Err("already_exists"));
            }
            (Err(expected), Err(error)) => {
                assert_eq!(rule(&error), expected, "{resolution:?}");
                assert_eq!(error.field(), Some("resolution"));
            }
            (expected, got) => panic!("{resolution:?}: expected {expected:?}, got {got:?}"),
        }
    }
    let unknown = decide(
        &CollectionCase::NotOpened,
        &contact(later),
        None,
        Role::Collector,
        later,
    );
    assert_eq!(unknown.map_err(|e| e.code()), Err("not_found"));
}

#[test]
fn evolve_is_total_and_replay_rebuilds_the_file() {
    let case = open_case();
    let file = case.file().expect("open case has a file").clone();
    assert_eq!(file.loan_id, loan_id());
    assert_eq!(file.days_past_due_at_opening, 2);
    // An event that does not fit leaves the state unchanged.
    let stray = CollectionCaseEvent::ContactAttempted {
        channel: ContactChannel::Sms,
        outcome: ContactOutcome::NoAnswer,
        note: None,
        attempted_on: in_arrears(),
    };
    assert_eq!(
        collection::evolve(CollectionCase::NotOpened, &stray),
        CollectionCase::NotOpened
    );
    let worked = collection::evolve(case.clone(), &stray);
    assert_eq!(worked.file().map(|f| f.contact_attempts.len()), Some(1));
}
