//! Random servicing histories of a disbursed loan: repayments of random amounts and value
//! dates (backdated ones included), repeats of earlier payments, reversals of random earlier
//! references, delinquency evaluations at random dates and write-off attempts, with the
//! business date only ever moving forward. After every command the book must be sound.

use chrono::NaiveDate;
use loan_domain::loan::{Loan, LoanEvent, LoanStatus};
use loan_domain::schedule::RepaymentMethod;
use loan_domain::servicing::{self, AgingBucket, PenaltyTerms, ServicingError};
use loan_domain::{CommandKind, DomainError, Money};
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::support::{
    LoanScenario, LoanTerms, Stage, actor_for, day, drive_to_with, event_names, minus_days, money,
    plus_days, rate,
};

/// How the amount of a repayment is chosen, once the state it meets is known.
#[derive(Debug, Clone)]
enum Amount {
    /// This many thousandths of everything outstanding on the value date (over 1000:
    /// more than is owed).
    Permille(u32),
    /// The scheduled total of the oldest installment not fully paid.
    NextInstallment,
    /// A fixed amount in cents.
    Cents(u32),
}

#[derive(Debug, Clone)]
enum Op {
    /// A new payment value-dated `back_days` before today (not before the disbursement).
    Repay {
        amount: Amount,
        back_days: u64,
    },
    /// An earlier reference again: with its amount and value date, or with another amount.
    RepeatPayment {
        pick: usize,
        same: bool,
    },
    /// Reverses an earlier reference (counting or already reversed).
    Reverse {
        pick: usize,
    },
    /// Reverses a reference never recorded.
    ReverseUnknown,
    /// Brings the book to `back_days` before today.
    Evaluate {
        back_days: u64,
    },
    WriteOff,
}

#[derive(Debug, Clone)]
struct Step {
    /// Days the business date moves forward before the command.
    advance: u64,
    op: Op,
}

fn terms() -> impl Strategy<Value = LoanTerms> {
    (
        prop_oneof![
            Just("1000.00"),
            Just("12000.00"),
            Just("50000.00"),
            Just("123456.78")
        ],
        prop_oneof![Just("0"), Just("0.12"), Just("0.36")],
        1u32..=18,
        prop_oneof![
            Just(RepaymentMethod::EqualInstallment),
            Just(RepaymentMethod::EqualPrincipal)
        ],
        0u32..=30,
        prop_oneof![Just("0"), Just("0.0005"), Just("0.01")],
    )
        .prop_map(
            |(principal, annual_rate, term_months, method, grace_days, penalty)| LoanTerms {
                principal: money(principal),
                annual_rate: rate(annual_rate),
                term_months,
                method,
                grace_days,
                daily_penalty_rate: rate(penalty),
                ..LoanTerms::default()
            },
        )
}

fn amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        3 => (1u32..=1000).prop_map(Amount::Permille),
        1 => Just(Amount::Permille(1000)),
        1 => (1001u32..=1100).prop_map(Amount::Permille),
        3 => Just(Amount::NextInstallment),
        2 => (1u32..=2_000_000).prop_map(Amount::Cents),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let back = || prop_oneof![3 => Just(0u64), 2 => 1u64..=60];
    prop_oneof![
        6 => (amount(), back()).prop_map(|(amount, back_days)| Op::Repay { amount, back_days }),
        1 => (0usize..64, any::<bool>()).prop_map(|(pick, same)| Op::RepeatPayment { pick, same }),
        2 => (0usize..64).prop_map(|pick| Op::Reverse { pick }),
        1 => Just(Op::ReverseUnknown),
        3 => prop_oneof![Just(0u64), 1u64..=15].prop_map(|back_days| Op::Evaluate { back_days }),
        1 => Just(Op::WriteOff),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        (0u64..=25, op()).prop_map(|(advance, op)| Step { advance, op }),
        1..=30,
    )
}

/// The live scenario plus what the test itself remembers of the history.
struct Run {
    s: LoanScenario,
    /// References that count, in recording order.
    live: Vec<String>,
    /// References reversed, in reversal order.
    reversed: Vec<String>,
    next_reference: u32,
    written_off: bool,
    previous_position_date: NaiveDate,
}

/// What the command is expected to do, decided before it is sent.
#[derive(Debug)]
enum Expected {
    /// Accepted; the events are checked by the caller.
    Accepted,
    /// Accepted with no events.
    Nothing,
    Refused(Refusal),
}

#[derive(Debug)]
enum Refusal {
    InvalidTransition,
    Rule(&'static str),
    PaymentNotFound,
}

impl Run {
    fn new(terms: LoanTerms) -> Self {
        let s = drive_to_with(Stage::Disbursed, terms);
        let previous_position_date = s.account().position_date;
        Run {
            s,
            live: Vec::new(),
            reversed: Vec::new(),
            next_reference: 1,
            written_off: false,
            previous_position_date,
        }
    }

    fn penalty_terms(&self) -> PenaltyTerms {
        let contract = &self.s.account().contract;
        PenaltyTerms {
            grace_days: contract.grace_days,
            daily_penalty_rate: contract.daily_penalty_rate,
        }
    }

    fn status(&self) -> LoanStatus {
        self.s.loan.status().expect("a disbursed loan has a status")
    }

    /// Not before the disbursement.
    fn back_from_today(&self, back_days: u64) -> NaiveDate {
        minus_days(self.s.today, back_days).max(day::disbursed())
    }

    fn all_references(&self) -> Vec<String> {
        self.live.iter().chain(&self.reversed).cloned().collect()
    }

    fn repay_amount(&self, amount: &Amount, value_date: NaiveDate) -> Money {
        let acc = self.s.account();
        let chosen = match amount {
            Amount::Permille(permille) => {
                let owed = servicing::compute_position(
                    &acc.schedule,
                    self.penalty_terms(),
                    &acc.payments,
                    value_date,
                )
                .map(|p| servicing::outstanding(&acc.schedule, &p.installments).total())
                .unwrap_or_else(|e| panic!("the recorded payments no longer compute: {e}"));
                Money::round(owed.amount() * Decimal::from(*permille) / Decimal::from(1000))
            }
            Amount::NextInstallment => acc
                .schedule
                .installments
                .iter()
                .zip(&acc.position)
                .find(|(i, p)| !servicing::fully_paid(i, p))
                .map_or(money("100.00"), |(i, _)| i.total()),
            Amount::Cents(cents) => Money::round(Decimal::new(i64::from(*cents), 2)),
        };
        if chosen.is_positive() {
            chosen
        } else {
            money("0.01")
        }
    }

    /// Builds the command for `op` and what it must do, from the state it meets.
    fn prepare(&mut self, op: &Op) -> (loan_domain::loan::LoanCommand, Expected) {
        let status = self.status();
        let closed = matches!(status, LoanStatus::PaidOff | LoanStatus::WrittenOff);
        match op {
            Op::Repay { amount, back_days } => {
                let value_date = self.back_from_today(*back_days);
                let amount = self.repay_amount(amount, value_date);
                let reference = format!("pay-{}", self.next_reference);
                self.next_reference += 1;
                let command = self.s.repay(&reference, amount, value_date);
                if closed {
                    return (command, Expected::Refused(Refusal::InvalidTransition));
                }
                // Oracle: the payments with this one, recomputed as of the date the book
                // would be brought to.
                let acc = self.s.account();
                let mut payments = acc.payments.clone();
                payments.push(servicing::Payment {
                    reference,
                    amount,
                    value_date,
                });
                let as_of = acc.position_date.max(value_date);
                let expected = match servicing::compute_position(
                    &acc.schedule,
                    self.penalty_terms(),
                    &payments,
                    as_of,
                ) {
                    Ok(_) => Expected::Accepted,
                    Err(ServicingError::Overpayment { .. }) => {
                        Expected::Refused(Refusal::Rule("overpayment"))
                    }
                    Err(e) => panic!("unexpected servicing error {e}"),
                };
                (command, expected)
            }
            Op::RepeatPayment { pick, same } => {
                let references = self.all_references();
                if references.is_empty() {
                    // Nothing to repeat: a payment reference never used is reversed instead.
                    return self.prepare(&Op::ReverseUnknown);
                }
                let reference = references[pick % references.len()].clone();
                let original = self
                    .s
                    .account()
                    .payments
                    .iter()
                    .find(|p| p.reference == reference)
                    .cloned();
                let (amount, value_date, expected) = match (&original, same) {
                    (Some(p), true) => (p.amount, p.value_date, Expected::Nothing),
                    (Some(p), false) => (
                        p.amount.checked_add(money("0.01")).expect("small amount"),
                        p.value_date,
                        Expected::Refused(Refusal::Rule("payment_reference_reused")),
                    ),
                    (None, _) => (
                        money("1.00"),
                        self.s.today,
                        Expected::Refused(Refusal::Rule("payment_reference_reversed")),
                    ),
                };
                let command = self.s.repay(&reference, amount, value_date);
                if closed {
                    return (command, Expected::Refused(Refusal::InvalidTransition));
                }
                (command, expected)
            }
            Op::Reverse { pick } => {
                let references = self.all_references();
                if references.is_empty() {
                    return self.prepare(&Op::ReverseUnknown);
                }
                let reference = references[pick % references.len()].clone();
                let command = self.s.reverse(&reference);
                if status == LoanStatus::WrittenOff {
                    (command, Expected::Refused(Refusal::InvalidTransition))
                } else if self.live.contains(&reference) {
                    (command, Expected::Accepted)
                } else {
                    (command, Expected::Nothing)
                }
            }
            Op::ReverseUnknown => {
                let command = self.s.reverse("never-recorded");
                if status == LoanStatus::WrittenOff {
                    (command, Expected::Refused(Refusal::InvalidTransition))
                } else {
                    (command, Expected::Refused(Refusal::PaymentNotFound))
                }
            }
            Op::Evaluate { back_days } => {
                let as_of = self.back_from_today(*back_days);
                let command = self.s.evaluate(as_of);
                if closed {
                    (command, Expected::Refused(Refusal::InvalidTransition))
                } else if as_of <= self.s.account().position_date {
                    (command, Expected::Nothing)
                } else {
                    (command, Expected::Accepted)
                }
            }
            Op::WriteOff => {
                let command = self.s.write_off();
                if status == LoanStatus::Overdue {
                    (command, Expected::Accepted)
                } else {
                    (command, Expected::Refused(Refusal::InvalidTransition))
                }
            }
        }
    }

    fn step(&mut self, index: usize, step: &Step) {
        self.s.today = plus_days(self.s.today, step.advance);
        let before = self.s.loan.clone();
        let before_status = self.status();
        let before_bucket = self.s.account().bucket;
        let events_before = self.s.events.len();
        let (command, expected) = self.prepare(&step.op);
        let kind = command.kind();
        let label = format!(
            "step {index} ({:?}) on {} in {before_status}: {command:?}",
            step.op, self.s.today
        );
        let result = self.s.execute(&command, &actor_for(kind));

        match (&expected, &result) {
            (Expected::Refused(refusal), Err(error)) => {
                // (6) a refused command produces no events and leaves the state alone.
                assert_eq!(
                    self.s.events.len(),
                    events_before,
                    "{label}: events appended"
                );
                assert_eq!(self.s.loan, before, "{label}: state changed by a refusal");
                match (refusal, error) {
                    (
                        Refusal::InvalidTransition,
                        DomainError::InvalidTransition { state, command },
                    ) => {
                        assert_eq!(*state, before_status.as_str(), "{label}");
                        assert_eq!(*command, kind.name(), "{label}");
                    }
                    (Refusal::Rule(rule), DomainError::RuleViolated { rule: got, .. }) => {
                        assert_eq!(got, rule, "{label}");
                    }
                    (Refusal::PaymentNotFound, DomainError::NotFound { kind, id }) => {
                        assert_eq!(
                            (*kind, id.as_str()),
                            ("payment", "never-recorded"),
                            "{label}"
                        );
                    }
                    (refusal, error) => panic!("{label}: expected {refusal:?}, got {error:?}"),
                }
            }
            (Expected::Refused(refusal), Ok(events)) => panic!(
                "{label}: expected refusal {refusal:?}, accepted with {:?}",
                event_names(events)
            ),
            (_, Err(error)) => panic!("{label}: expected {expected:?}, refused: {error:?}"),
            (Expected::Nothing, Ok(events)) => {
                assert_eq!(event_names(events), Vec::<&str>::new(), "{label}");
                assert_eq!(self.s.loan, before, "{label}: state changed without events");
            }
            (Expected::Accepted, Ok(events)) => {
                let events = events.clone();
                self.check_accepted(&label, kind, &events, before_status, before_bucket);
            }
        }
        self.check_book(&label);
    }

    /// Event shapes of an accepted command, and the test's own memory of the history.
    fn check_accepted(
        &mut self,
        label: &str,
        kind: CommandKind,
        events: &[LoanEvent],
        before_status: LoanStatus,
        before_bucket: AgingBucket,
    ) {
        let names = event_names(events);
        let (first, consequences): (Option<&str>, &[&str]) = match kind {
            CommandKind::RecordRepayment => (Some("repayment_recorded"), &names[1..]),
            CommandKind::ReverseRepayment => (Some("repayment_reversed"), &names[1..]),
            CommandKind::EvaluateDelinquency => (None, &names[..]),
            CommandKind::WriteOffLoan => {
                assert_eq!(names, ["loan_written_off"], "{label}");
                self.written_off = true;
                return;
            }
            other => panic!("test bug: {other}"),
        };
        // (An evaluation that finds nothing changed records nothing.)
        if let Some(first) = first {
            assert_eq!(names.first().copied(), Some(first), "{label}: {names:?}");
        }
        // Consequences come in this order, each at most once.
        let order = [
            "penalty_accrued",
            "aging_bucket_changed",
            "loan_status_changed",
        ];
        let positions: Vec<usize> = consequences
            .iter()
            .map(|n| {
                order
                    .iter()
                    .position(|o| o == n)
                    .unwrap_or_else(|| panic!("{label}: unexpected event {n} in {names:?}"))
            })
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "{label}: events out of order: {names:?}"
        );
        if kind != CommandKind::EvaluateDelinquency {
            assert!(
                !consequences.contains(&"penalty_accrued"),
                "{label}: money events carry their own restatement: {names:?}"
            );
        }

        let after_status = self.status();
        let after_bucket = self.s.account().bucket;
        for event in events {
            match event {
                LoanEvent::RepaymentRecorded {
                    payment_reference,
                    amount,
                    allocation,
                    ..
                } => {
                    let allocated = Money::sum(
                        allocation
                            .iter()
                            .flat_map(|s| [s.penalty, s.interest, s.principal]),
                    )
                    .expect("small amounts");
                    assert_eq!(allocated, *amount, "{label}: allocation of the payment");
                    self.live.push(payment_reference.clone());
                }
                LoanEvent::RepaymentReversed {
                    payment_reference, ..
                } => {
                    self.live.retain(|r| r != payment_reference);
                    self.reversed.push(payment_reference.clone());
                }
                LoanEvent::LoanStatusChanged { from, to, .. } => {
                    assert_eq!(*from, before_status, "{label}: status change from");
                    assert_eq!(*to, after_status, "{label}: status change to");
                    assert_ne!(from, to, "{label}: a status change that changes nothing");
                }
                LoanEvent::AgingBucketChanged { from, to, .. } => {
                    assert_eq!(*from, before_bucket, "{label}: bucket change from");
                    assert_eq!(*to, after_bucket, "{label}: bucket change to");
                    assert_ne!(from, to, "{label}: a bucket change that changes nothing");
                }
                _ => {}
            }
        }
        if !names.contains(&"loan_status_changed") {
            assert_eq!(after_status, before_status, "{label}: silent status change");
        }
        if !names.contains(&"aging_bucket_changed") {
            assert_eq!(after_bucket, before_bucket, "{label}: silent bucket change");
        }
    }

    /// The properties every state of the history must have.
    fn check_book(&mut self, label: &str) {
        let s = &self.s;
        // (1) Replaying all events from scratch gives the live state.
        assert_eq!(Loan::replay(&s.events), s.loan, "{label}: replay differs");

        let acc = s.account();
        let schedule = &acc.schedule;

        // (2) The recorded position is the one recomputed from the payments that count.
        let recomputed = servicing::compute_position(
            schedule,
            self.penalty_terms(),
            &acc.payments,
            acc.position_date,
        )
        .unwrap_or_else(|e| panic!("{label}: the recorded payments do not compute: {e}"));
        assert_eq!(
            acc.position, recomputed.installments,
            "{label}: recorded position differs from the recomputed one as of {}",
            acc.position_date
        );

        // (3) Nothing outstanding is negative; nothing is paid beyond what is owed.
        let outstanding = acc.outstanding();
        for (what, value) in [
            ("principal", outstanding.principal),
            ("interest", outstanding.interest),
            ("penalty", outstanding.penalty),
        ] {
            assert!(!value.is_negative(), "{label}: outstanding {what} {value}");
        }
        let mut principal_paid = Money::ZERO;
        for (installment, position) in schedule.installments.iter().zip(&acc.position) {
            let n = installment.number;
            assert!(
                !position.principal_paid.is_negative()
                    && position.principal_paid <= installment.principal,
                "{label}: installment {n} principal paid {} of {}",
                position.principal_paid,
                installment.principal
            );
            assert!(
                !position.interest_paid.is_negative()
                    && position.interest_paid <= installment.interest,
                "{label}: installment {n} interest paid {} of {}",
                position.interest_paid,
                installment.interest
            );
            assert!(
                !position.penalty_paid.is_negative()
                    && position.penalty_paid <= position.penalty_accrued,
                "{label}: installment {n} penalty paid {} of {} accrued",
                position.penalty_paid,
                position.penalty_accrued
            );
            principal_paid = principal_paid.saturating_add(position.principal_paid);
        }
        assert!(
            principal_paid <= schedule.total_principal(),
            "{label}: principal paid {principal_paid}"
        );

        // (4) The schedule's principal is exactly the contract's.
        let schedule_principal =
            Money::sum(schedule.installments.iter().map(|i| i.principal)).expect("small");
        assert_eq!(schedule_principal, acc.contract.principal, "{label}");

        // (5) The status is what the book implies as of the position date.
        let days_past_due = servicing::days_past_due(schedule, &acc.position, acc.position_date);
        let all_paid = servicing::all_paid(schedule, &acc.position);
        let implied = if self.written_off {
            LoanStatus::WrittenOff
        } else if all_paid {
            LoanStatus::PaidOff
        } else if days_past_due > acc.contract.grace_days {
            LoanStatus::Overdue
        } else if acc.payments.is_empty() {
            LoanStatus::Disbursed
        } else {
            LoanStatus::Repaying
        };
        assert_eq!(
            s.loan.status(),
            Some(implied),
            "{label}: status (days past due {days_past_due} as of {}, grace {}, all paid {all_paid})",
            acc.position_date,
            acc.contract.grace_days
        );
        if !self.written_off {
            assert_eq!(
                acc.bucket,
                AgingBucket::for_days_past_due(days_past_due),
                "{label}: bucket (days past due {days_past_due} as of {})",
                acc.position_date
            );
        }

        // The payments that count are exactly those the test recorded and did not reverse.
        let references: Vec<&str> = acc.payments.iter().map(|p| p.reference.as_str()).collect();
        assert_eq!(references, self.live, "{label}: payments that count");
        assert_eq!(acc.reversed_references, self.reversed, "{label}: reversed");

        // The book only moves forward, and never past today.
        assert!(
            acc.position_date >= self.previous_position_date && acc.position_date <= s.today,
            "{label}: position date {} (was {}, today {})",
            acc.position_date,
            self.previous_position_date,
            s.today
        );
        self.previous_position_date = acc.position_date;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_servicing_histories_keep_the_book_sound(terms in terms(), steps in steps()) {
        let mut run = Run::new(terms);
        run.check_book("after disbursement");
        for (index, step) in steps.iter().enumerate() {
            run.step(index, step);
        }
    }
}

#[test]
fn a_backdated_payment_restates_later_ones_and_its_reversal_undoes_it() {
    let mut run = Run::new(LoanTerms::default());
    let first = run.s.account().schedule.installments[0].clone();
    // Installment 1 unpaid into its penalty period; evaluated on 2026-02-25.
    let steps = [
        Step {
            advance: 46,
            op: Op::Evaluate { back_days: 0 },
        },
        // Paid now, with its penalty and some principal of installment 2...
        Step {
            advance: 0,
            op: Op::Repay {
                amount: Amount::Cents(600_000),
                back_days: 0,
            },
        },
        // ...then a payment turns up value-dated on the due date, before the penalty.
        Step {
            advance: 1,
            op: Op::Repay {
                amount: Amount::NextInstallment,
                back_days: 16,
            },
        },
    ];
    for (index, step) in steps.iter().enumerate() {
        run.step(index, step);
    }
    let acc = run.s.account();
    assert_eq!(acc.position[0].principal_paid, first.principal);
    assert!(
        acc.position[0].penalty_accrued.is_zero(),
        "the backdated payment removes the penalty of installment 1"
    );
    run.step(
        3,
        &Step {
            advance: 0,
            // pay-1, pay-2 count; pick 1 is pay-2, the backdated one.
            op: Op::Reverse { pick: 1 },
        },
    );
    assert_eq!(run.reversed, ["pay-2"]);
    assert!(run.s.account().position[0].penalty_accrued.is_positive());
}
