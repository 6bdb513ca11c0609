//! Backdated repayments are allocated as of their value date, and reversals void a
//! payment from its value date — each as ONE set of events carrying the net restatement.
//! Every expected figure below is computed by hand in the comments.
//!
//! Terms: 12,000.00 at 12% a year over 12 months, equal principal, grace 5 days, penalty
//! 0.05% a day on overdue principal; disbursed 2026-01-10, first due 2026-02-10.
//! Monthly rate 1%: installment 1 = 1,000.00 + 120.00, installment 2 = 1,000.00 + 110.00,
//! installment 3 = 1,000.00 + 100.00, ... Penalty on 1,000.00 is 0.50 a day.

use loan_domain::loan::{LoanEvent, LoanStatus};
use loan_domain::schedule::RepaymentMethod;
use loan_domain::servicing::{AgingBucket, PositionDelta, Split};
use loan_domain::{DomainError, Money};

use crate::support::{
    LoanScenario, LoanTerms, Stage, date, drive_to_with, event_names, money, rate,
};

fn terms() -> LoanTerms {
    LoanTerms {
        principal: money("12000.00"),
        annual_rate: rate("0.12"),
        term_months: 12,
        method: RepaymentMethod::EqualPrincipal,
        grace_days: 5,
        daily_penalty_rate: rate("0.0005"),
        ..LoanTerms::default()
    }
}

/// Disbursed, installment 1 (1,120.00) paid on its due date 2026-02-10 as `pay-1`.
fn repaying() -> LoanScenario {
    let s = drive_to_with(Stage::Repaying, terms());
    assert_eq!(
        s.installment_total(1),
        money("1120.00"),
        "hand-computed installment 1"
    );
    assert_eq!(
        s.installment_total(2),
        money("1110.00"),
        "hand-computed installment 2"
    );
    s
}

fn delta(
    installment: u32,
    principal: &str,
    interest: &str,
    penalty_paid: &str,
    penalty_accrued: &str,
) -> PositionDelta {
    PositionDelta {
        installment,
        principal_paid: money(principal),
        interest_paid: money(interest),
        penalty_paid: money(penalty_paid),
        penalty_accrued: money(penalty_accrued),
    }
}

fn split(installment: u32, penalty: &str, interest: &str, principal: &str) -> Split {
    Split {
        installment,
        penalty: money(penalty),
        interest: money(interest),
        principal: money(principal),
    }
}

fn recorded(events: &[LoanEvent]) -> (&Vec<Split>, &Vec<PositionDelta>) {
    match &events[0] {
        LoanEvent::RepaymentRecorded {
            allocation,
            restatement,
            ..
        } => (allocation, restatement),
        other => panic!("expected repayment_recorded first, got {other:?}"),
    }
}

#[test]
fn a_backdated_repayment_is_allocated_as_of_its_value_date_and_cures_in_one_commit() {
    let mut s = repaying();
    // 2026-03-20: installment 2 (due 03-10) is 10 days past due, beyond the 5 grace days.
    // Penalty days 03-16..=03-20 = 5 × 0.50 = 2.50.
    s.on(date(2026, 3, 20));
    let events = s.run(&s.evaluate(date(2026, 3, 20)));
    assert_eq!(
        event_names(&events),
        [
            "penalty_accrued",
            "aging_bucket_changed",
            "loan_status_changed"
        ]
    );
    assert_eq!(s.account().position[1].penalty_accrued, money("2.50"));
    assert_eq!(s.loan.status(), Some(LoanStatus::Overdue));

    // 2026-03-22: the bank reports a payment of 1,110.00 that arrived on 03-12, inside the
    // grace period: as of 03-12 no penalty had accrued, so it pays interest 110.00 and
    // principal 1,000.00 of installment 2, and the 2.50 penalty is restated away.
    s.on(date(2026, 3, 22));
    let events = s.run(&s.repay("pay-2-late", money("1110.00"), date(2026, 3, 12)));
    assert_eq!(
        event_names(&events),
        [
            "repayment_recorded",
            "aging_bucket_changed",
            "loan_status_changed"
        ],
        "one commit"
    );
    let (allocation, restatement) = recorded(&events);
    assert_eq!(allocation, &vec![split(2, "0.00", "110.00", "1000.00")]);
    assert_eq!(
        restatement,
        &vec![delta(2, "1000.00", "110.00", "0.00", "-2.50")]
    );
    assert!(matches!(
        events[1],
        LoanEvent::AgingBucketChanged {
            from: AgingBucket::Dpd1To30,
            to: AgingBucket::Current,
            ..
        }
    ));
    assert!(matches!(
        events[2],
        LoanEvent::LoanStatusChanged {
            from: LoanStatus::Overdue,
            to: LoanStatus::Repaying,
            days_past_due: 0,
            ..
        }
    ));
    assert_eq!(
        s.account().position_date,
        date(2026, 3, 20),
        "a backdated payment does not move the book date back"
    );
    s.assert_replay_matches("after the backdated payment");
}

#[test]
fn the_same_payment_on_its_recording_date_would_have_paid_penalty_first() {
    let mut s = repaying();
    s.on(date(2026, 3, 22));
    // Value date 03-22: penalty through 03-21 = days 03-16..=03-21 = 6 × 0.50 = 3.00 is paid
    // first, then interest 110.00, leaving 997.00 for principal: 3.00 principal still
    // overdue, 12 days past due, so the loan goes overdue in the same commit.
    let events = s.run(&s.repay("pay-2", money("1110.00"), date(2026, 3, 22)));
    let (allocation, _) = recorded(&events);
    assert_eq!(allocation, &vec![split(2, "3.00", "110.00", "997.00")]);
    assert_eq!(
        event_names(&events),
        [
            "repayment_recorded",
            "aging_bucket_changed",
            "loan_status_changed"
        ]
    );
    assert_eq!(s.loan.status(), Some(LoanStatus::Overdue));
    assert_eq!(s.account().days_past_due(), 12);
}

#[test]
fn a_backdated_payment_reallocates_a_later_one_with_the_net_change_only() {
    let mut s = repaying();
    // 03-20: 500.00 value-dated 03-20. Penalty through 03-19 (4 days × 0.50 = 2.00), interest
    // 110.00, principal 388.00 of installment 2. End of 03-20: 612.00 principal overdue,
    // penalty accrued that day 612 × 0.0005 = 0.306, total 2.306 → 2.31 accrued, 2.00 paid.
    s.on(date(2026, 3, 20));
    let events = s.run(&s.repay("pay-2", money("500.00"), date(2026, 3, 20)));
    assert_eq!(
        recorded(&events).0,
        &vec![split(2, "2.00", "110.00", "388.00")]
    );
    assert_eq!(
        s.loan.status(),
        Some(LoanStatus::Overdue),
        "10 days past due after the partial payment"
    );
    assert_eq!(s.account().position[1].penalty_accrued, money("2.31"));

    // 03-21: 1,110.00 value-dated 03-09 (before installment 2 was even due) pays all of
    // installment 2 (interest 110.00, principal 1,000.00). Reapplied after it, pay-2 goes to
    // installment 3: interest 100.00, principal 400.00. Net change, one event:
    //   installment 2: principal +612.00, interest 0, penalty paid -2.00, accrued -2.31
    //   installment 3: principal +400.00, interest +100.00
    s.on(date(2026, 3, 21));
    let events = s.run(&s.repay("pay-early", money("1110.00"), date(2026, 3, 9)));
    let (allocation, restatement) = recorded(&events);
    assert_eq!(allocation, &vec![split(2, "0.00", "110.00", "1000.00")]);
    assert_eq!(
        restatement,
        &vec![
            delta(2, "612.00", "0.00", "-2.00", "-2.31"),
            delta(3, "400.00", "100.00", "0.00", "0.00")
        ]
    );
    assert_eq!(
        event_names(&events),
        [
            "repayment_recorded",
            "aging_bucket_changed",
            "loan_status_changed"
        ]
    );
    assert_eq!(s.loan.status(), Some(LoanStatus::Repaying));
    s.assert_replay_matches("after the restatement");

    // Reversing the backdated payment restores exactly the position before it.
    let before_reversal = s.account().position.clone();
    let events = s.run(&s.reverse("pay-early"));
    assert_eq!(
        event_names(&events),
        [
            "repayment_reversed",
            "aging_bucket_changed",
            "loan_status_changed"
        ]
    );
    match &events[0] {
        LoanEvent::RepaymentReversed { restatement, .. } => assert_eq!(
            restatement,
            &vec![
                delta(2, "-612.00", "0.00", "2.00", "2.31"),
                delta(3, "-400.00", "-100.00", "0.00", "0.00")
            ]
        ),
        other => panic!("expected repayment_reversed, got {other:?}"),
    }
    assert_ne!(s.account().position, before_reversal);
    assert_eq!(s.account().position[1].principal_paid, money("388.00"));
    assert_eq!(s.loan.status(), Some(LoanStatus::Overdue));
}

#[test]
fn reversing_the_only_payment_returns_a_paid_off_loan_to_disbursed() {
    let mut s = drive_to_with(Stage::Disbursed, terms());
    s.on(date(2026, 2, 1));
    let payoff = s.account().payoff_amount(date(2026, 2, 1)).expect("quote");
    // Settling early pays all scheduled interest (no rebate): 12,000 + 120 + 110 + ... + 10 = 12,780.
    assert_eq!(payoff, money("12780.00"));
    let events = s.run(&s.repay("payoff", payoff, date(2026, 2, 1)));
    assert_eq!(
        event_names(&events),
        ["repayment_recorded", "loan_status_changed"]
    );
    assert_eq!(s.loan.status(), Some(LoanStatus::PaidOff));

    let events = s.run(&s.reverse("payoff"));
    assert_eq!(
        event_names(&events),
        ["repayment_reversed", "loan_status_changed"]
    );
    assert!(matches!(
        events[1],
        LoanEvent::LoanStatusChanged {
            from: LoanStatus::PaidOff,
            to: LoanStatus::Disbursed,
            ..
        }
    ));
    assert!(
        s.account()
            .position
            .iter()
            .all(|p| p.principal_paid.is_zero() && p.interest_paid.is_zero())
    );
    assert_eq!(s.loan.status(), Some(LoanStatus::Disbursed));
}

#[test]
fn the_payoff_quote_settles_an_overdue_loan_and_a_cent_more_is_refused() {
    let mut s = drive_to_with(Stage::Overdue, terms());
    s.on(date(2026, 3, 25));
    let payoff = s.account().payoff_amount(date(2026, 3, 25)).expect("quote");
    // Remaining principal 11,000 + interest 110+100+...+10 (= 660) + penalty on installment 2
    // through 03-24: days 03-16..=03-24 = 9 × 0.50 = 4.50 → 11,664.50.
    assert_eq!(payoff, money("11664.50"));
    let too_much = s.repay(
        "too-much",
        Money::parse("11664.51").unwrap(),
        date(2026, 3, 25),
    );
    match s.decide_as(&too_much, &crate::support::actor_for(too_much.kind())) {
        Err(DomainError::RuleViolated {
            rule: "overpayment",
            field,
            message,
        }) => {
            assert_eq!(field.as_deref(), Some("amount"));
            assert!(
                message.contains("by 0.01")
                    && message.contains("payoff amount on 2026-03-25 is 11664.50"),
                "{message}"
            );
        }
        other => panic!("expected an overpayment refusal, got {other:?}"),
    }
    let events = s.run(&s.repay("payoff", payoff, date(2026, 3, 25)));
    assert_eq!(event_names(&events).last(), Some(&"loan_status_changed"));
    assert_eq!(s.loan.status(), Some(LoanStatus::PaidOff));
}

#[test]
fn a_backdated_payment_that_would_make_a_later_one_an_overpayment_is_refused() {
    let mut s = drive_to_with(Stage::Disbursed, terms());
    s.on(date(2026, 2, 1));
    s.run(&s.repay("payoff", money("12780.00"), date(2026, 2, 1)));
    assert_eq!(s.loan.status(), Some(LoanStatus::PaidOff));
    // A paid-off loan takes no further repayment at all.
    let refused = s.decide_as(
        &s.repay("late-news", money("100.00"), date(2026, 1, 20)),
        &crate::support::actor_for(loan_domain::CommandKind::RecordRepayment),
    );
    assert!(
        matches!(
            refused,
            Err(DomainError::InvalidTransition {
                state: "paid_off",
                command: "record_repayment"
            })
        ),
        "{refused:?}"
    );

    // On a repaying loan, a backdated payment that would leave the later payoff with an excess is refused, naming it.
    let mut s = drive_to_with(Stage::Disbursed, terms());
    s.on(date(2026, 2, 1));
    s.run(&s.repay("part", money("12000.00"), date(2026, 2, 1)));
    let backdated = s.repay("older", money("1000.00"), date(2026, 1, 15));
    match s.decide_as(&backdated, &crate::support::actor_for(backdated.kind())) {
        Err(DomainError::RuleViolated {
            rule: "overpayment",
            message,
            ..
        }) => {
            assert!(message.contains("payment part value-dated 2026-02-01 exceeds everything outstanding on that date by 220.00"), "{message}");
        }
        other => panic!("expected an overpayment refusal naming the later payment, got {other:?}"),
    }
}

#[test]
fn an_installment_due_today_is_next_due_not_overdue_and_arrears_are_reported_apart() {
    use loan_domain::servicing::{next_due, overdue_amount};
    let s = repaying();
    let account = s.account();
    let on = |d| {
        account
            .position_as_of(&account.payments, d)
            .expect("position")
            .installments
    };
    // On 03-10 installment 2 (1,110.00) is due today: next due, no arrears.
    let due_day = date(2026, 3, 10);
    let next = next_due(&account.schedule, &on(due_day), due_day).expect("a next installment");
    assert_eq!(
        (next.installment, next.due_date, next.amount),
        (2, due_day, money("1110.00"))
    );
    assert_eq!(
        overdue_amount(&account.schedule, &on(due_day), due_day).total(),
        money("0.00")
    );
    // On 03-11 it is in arrears (without penalty yet: grace is 5 days) and installment 3 is next.
    let day_after = date(2026, 3, 11);
    let arrears = overdue_amount(&account.schedule, &on(day_after), day_after);
    assert_eq!(
        (arrears.principal, arrears.interest, arrears.penalty),
        (money("1000.00"), money("110.00"), money("0.00"))
    );
    assert_eq!(
        next_due(&account.schedule, &on(day_after), day_after).map(|n| n.installment),
        Some(3)
    );
}
