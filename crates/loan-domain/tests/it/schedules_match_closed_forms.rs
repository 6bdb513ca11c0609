//! Repayment schedules agree with hand-checked figures, with the closed forms they come from,
//! and with the documented rules (rounding, last installment, due dates, refusals).

use chrono::NaiveDate;
use loan_domain::money::{Money, Rate};
use loan_domain::schedule::{
    DAY_COUNT, MAX_TERM_MONTHS, RepaymentMethod, SCHEDULE_CALCULATOR, Schedule, ScheduleError,
    ScheduleTerms, build_schedule, due_date,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use RepaymentMethod::{EqualInstallment, EqualPrincipal};

fn money(text: &str) -> Money {
    Money::parse(text).unwrap_or_else(|e| panic!("test amount {text:?}: {e}"))
}

fn rate(text: &str) -> Rate {
    Rate::parse(text).unwrap_or_else(|e| panic!("test rate {text:?}: {e}"))
}

fn date(text: &str) -> NaiveDate {
    text.parse()
        .unwrap_or_else(|e| panic!("test date {text:?}: {e}"))
}

fn terms(
    principal: &str,
    annual_rate: &str,
    term_months: u32,
    method: RepaymentMethod,
) -> ScheduleTerms {
    ScheduleTerms {
        principal: money(principal),
        annual_rate: rate(annual_rate),
        term_months,
        method,
        first_due_date: date("2025-02-15"),
    }
}

fn build(terms: &ScheduleTerms) -> Schedule {
    build_schedule(terms).unwrap_or_else(|e| panic!("{terms:?} should give a schedule: {e}"))
}

/// The equal-installment closed form, evaluated independently of the crate with `Decimal`
/// (28 significant digits, so only a value within a hair of a half cent could round differently).
fn closed_form_payment(principal: Money, annual_rate: Rate, n: u32) -> Decimal {
    let r = annual_rate.value() / dec!(12);
    if r.is_zero() {
        return principal.amount() / Decimal::from(n);
    }
    let growth = (0..n).fold(Decimal::ONE, |g, _| g * (Decimal::ONE + r));
    principal.amount() * r * growth / (growth - Decimal::ONE)
}

/// Whether `value` is so close to a half cent that 28-digit arithmetic cannot say which way
/// the exact value rounds.
fn near_half_cent(value: Decimal) -> bool {
    let thousandths = value * dec!(1000);
    let offset = (thousandths - thousandths.round()).abs();
    let is_five = thousandths.round() % dec!(10) == dec!(5);
    is_five && offset < dec!(0.000001)
}

/// The rules every successful schedule keeps; returns the first broken one.
fn check_invariants(terms: &ScheduleTerms, schedule: &Schedule) -> Result<(), String> {
    let installments = &schedule.installments;
    let n = terms.term_months;
    if installments.len() != usize::try_from(n).map_err(|e| e.to_string())? {
        return Err(format!(
            "{} installments for a term of {n}",
            installments.len()
        ));
    }
    if schedule.total_principal() != terms.principal {
        return Err(format!(
            "principal column sums to {}, not {}",
            schedule.total_principal(),
            terms.principal
        ));
    }
    let mut balance = terms.principal;
    for (index, installment) in installments.iter().enumerate() {
        let expected_number = u32::try_from(index + 1).map_err(|e| e.to_string())?;
        if installment.number != expected_number {
            return Err(format!(
                "installment at {index} is numbered {}",
                installment.number
            ));
        }
        if !installment.principal.is_positive() || installment.interest.is_negative() {
            return Err(format!(
                "installment {expected_number} has a non-positive part: {installment:?}"
            ));
        }
        balance = balance
            .checked_sub(installment.principal)
            .map_err(|e| e.to_string())?;
        if balance.is_negative() {
            return Err(format!(
                "balance negative ({balance}) after installment {expected_number}"
            ));
        }
        if Some(installment.due_date) != due_date(terms.first_due_date, expected_number) {
            return Err(format!(
                "installment {expected_number} due {} is not anchored",
                installment.due_date
            ));
        }
        if installment.total()
            != installment
                .principal
                .checked_add(installment.interest)
                .map_err(|e| e.to_string())?
        {
            return Err(format!(
                "installment {expected_number} total is not principal + interest"
            ));
        }
    }
    let mut totals = Money::ZERO;
    for installment in installments {
        totals = totals
            .checked_add(installment.total())
            .map_err(|e| e.to_string())?;
    }
    if schedule.total() != totals
        || Some(schedule.total())
            != schedule
                .total_principal()
                .checked_add(schedule.total_interest())
                .ok()
    {
        return Err("schedule totals disagree with the installments".into());
    }
    if terms.method == EqualInstallment && n > 1 {
        let exact = closed_form_payment(terms.principal, terms.annual_rate, n);
        if !near_half_cent(exact) {
            let payment = Money::round(exact);
            if let Some(other) = installments[..installments.len() - 1]
                .iter()
                .find(|i| i.total() != payment)
            {
                return Err(format!(
                    "installment {} totals {}, closed-form payment is {payment}",
                    other.number,
                    other.total()
                ));
            }
        }
    }
    Ok(())
}

struct WorkedExample {
    name: &'static str,
    terms: ScheduleTerms,
    /// Every installment as (principal, interest), computed by hand with exact fractions.
    rows: &'static [(&'static str, &'static str)],
    total_interest: &'static str,
}

#[test]
fn worked_examples_match_hand_computed_figures() {
    // 12,000.00 at 12%: r = 0.01, (1.01)^12 = 1.126825030131969720661201,
    // payment = 120 × 1.12682503… / 0.12682503… = 1066.18546414… → 1066.19.
    let examples = [
        WorkedExample {
            name: "equal installment 12,000.00 at 12% over 12 months",
            terms: terms("12000.00", "0.12", 12, EqualInstallment),
            rows: &[
                ("946.19", "120.00"),
                ("955.65", "110.54"),
                ("965.21", "100.98"),
                ("974.86", "91.33"),
                ("984.61", "81.58"),
                ("994.46", "71.73"),
                ("1004.40", "61.79"),
                ("1014.44", "51.75"),
                ("1024.59", "41.60"),
                ("1034.83", "31.36"),
                ("1045.18", "21.01"),
                ("1055.58", "10.56"), // last absorbs rounding: 1066.14, not 1066.19
            ],
            total_interest: "794.23",
        },
        WorkedExample {
            name: "equal principal 12,000.00 at 12% over 12 months",
            terms: terms("12000.00", "0.12", 12, EqualPrincipal),
            rows: &[
                ("1000.00", "120.00"),
                ("1000.00", "110.00"),
                ("1000.00", "100.00"),
                ("1000.00", "90.00"),
                ("1000.00", "80.00"),
                ("1000.00", "70.00"),
                ("1000.00", "60.00"),
                ("1000.00", "50.00"),
                ("1000.00", "40.00"),
                ("1000.00", "30.00"),
                ("1000.00", "20.00"),
                ("1000.00", "10.00"),
            ],
            total_interest: "780.00",
        },
        WorkedExample {
            // 10,000 × 0.015 × 1.015^6 / (1.015^6 − 1) = 1755.2521… → 1755.25.
            name: "equal installment 10,000.00 at 18% over 6 months",
            terms: terms("10000.00", "0.18", 6, EqualInstallment),
            rows: &[
                ("1605.25", "150.00"),
                ("1629.33", "125.92"),
                ("1653.77", "101.48"),
                ("1678.58", "76.67"),
                ("1703.75", "51.50"),
                ("1729.32", "25.94"),
            ],
            total_interest: "531.51",
        },
        WorkedExample {
            // r = 0.03: payment = 101.50 × 1.03^2 / 2.03 = 53.045 exactly, a half cent → 53.05.
            // Interest 101.50 × 0.03 = 3.045 → 3.05; 51.50 × 0.03 = 1.545 → 1.55.
            name: "exact half cents round up (101.50 at 36% over 2 months)",
            terms: terms("101.50", "0.36", 2, EqualInstallment),
            rows: &[("50.00", "3.05"), ("51.50", "1.55")],
            total_interest: "4.60",
        },
        WorkedExample {
            // r = 0.1 / 12 has no finite decimal form, yet 1000.20 × 0.1 / 12 = 8.335 exactly.
            name: "r is never rounded (1000.20 at 10% over 1 month)",
            terms: terms("1000.20", "0.1", 1, EqualInstallment),
            rows: &[("1000.20", "8.34")],
            total_interest: "8.34",
        },
        WorkedExample {
            name: "zero rate equal installment 1000.00 over 3 months",
            terms: terms("1000.00", "0", 3, EqualInstallment),
            rows: &[("333.33", "0.00"), ("333.33", "0.00"), ("333.34", "0.00")],
            total_interest: "0.00",
        },
        WorkedExample {
            name: "zero rate equal principal 100.00 over 6 months",
            terms: terms("100.00", "0", 6, EqualPrincipal),
            rows: &[
                ("16.67", "0.00"),
                ("16.67", "0.00"),
                ("16.67", "0.00"),
                ("16.67", "0.00"),
                ("16.67", "0.00"),
                ("16.65", "0.00"),
            ],
            total_interest: "0.00",
        },
        WorkedExample {
            name: "one-month term repays everything at once",
            terms: terms("5000.00", "0.24", 1, EqualPrincipal),
            rows: &[("5000.00", "100.00")],
            total_interest: "100.00",
        },
    ];
    for example in &examples {
        let schedule = build(&example.terms);
        let actual: Vec<(String, String)> = schedule
            .installments
            .iter()
            .map(|i| (i.principal.to_string(), i.interest.to_string()))
            .collect();
        let expected: Vec<(String, String)> = example
            .rows
            .iter()
            .map(|(p, i)| ((*p).to_owned(), (*i).to_owned()))
            .collect();
        assert_eq!(
            actual, expected,
            "{}: (principal, interest) per installment",
            example.name
        );
        assert_eq!(
            schedule.total_interest(),
            money(example.total_interest),
            "{}: total interest",
            example.name
        );
        assert_eq!(
            check_invariants(&example.terms, &schedule),
            Ok(()),
            "{}",
            example.name
        );
    }
}

#[test]
fn long_equal_installment_loans_match_hand_computed_figures() {
    // (principal, rate, term, payment, first (principal, interest), last (principal, interest), total interest)
    let cases = [
        (
            "100000.00",
            "0.0435",
            360,
            "497.81",
            ("135.31", "362.50"),
            ("497.43", "1.80"),
            "79213.02",
        ),
        (
            "300000.00",
            "0.049",
            240,
            "1963.33",
            ("738.33", "1225.00"),
            ("1956.29", "7.99"),
            "171200.15",
        ),
    ];
    for (principal, annual, n, payment, first, last, total_interest) in cases {
        let terms = terms(principal, annual, n, EqualInstallment);
        let schedule = build(&terms);
        let name = format!("{principal} at {annual} over {n}");
        assert_eq!(
            schedule.installments[0].total(),
            money(payment),
            "{name}: payment"
        );
        let pair = |i: usize| {
            let installment = &schedule.installments[i];
            (
                installment.principal.to_string(),
                installment.interest.to_string(),
            )
        };
        assert_eq!(
            pair(0),
            (first.0.to_owned(), first.1.to_owned()),
            "{name}: first installment"
        );
        assert_eq!(
            pair(schedule.installments.len() - 1),
            (last.0.to_owned(), last.1.to_owned()),
            "{name}: last"
        );
        assert_eq!(
            schedule.total_interest(),
            money(total_interest),
            "{name}: total interest"
        );
        assert_eq!(check_invariants(&terms, &schedule), Ok(()), "{name}");
    }
}

#[test]
fn schedules_keep_the_rules_across_a_table_of_terms() {
    let table: [(&str, &str, u32); 14] = [
        ("12000.00", "0.12", 12),
        ("100.00", "0.36", 1),
        ("100.00", "0.36", 36),
        ("999.99", "0.0001", 7),
        ("5000.00", "0", 24),
        ("5000.00", "0.1", 24),
        ("50000.00", "0.0435", 120),
        ("123456.78", "0.1999", 60),
        ("100000.00", "0.36", 360),
        ("1000000.00", "0.05", 360),
        ("10000000.00", "0.2", 240),
        ("777.77", "0.15", 13),
        ("1000000000000.00", "0.36", 360),
        ("2500.00", "10", 12),
    ];
    for (principal, annual, n) in table {
        for method in [EqualInstallment, EqualPrincipal] {
            let terms = terms(principal, annual, n, method);
            let name = format!("{principal} at {annual} over {n} months, {method:?}");
            let schedule = build(&terms);
            assert_eq!(check_invariants(&terms, &schedule), Ok(()), "{name}");
            if method == EqualPrincipal {
                // Exactly: interest = r × (n·P − base·n(n−1)/2), each installment rounded by at
                // most half a cent. With base = P/n + e this is P·r·(n+1)/2 − r·e·n(n−1)/2.
                // The e term is zero when P/n is a whole number of cents; otherwise it can
                // exceed n × 0.01 (100,000.00 at 36% over 360 months: −4.27).
                let p = terms.principal.amount();
                let r = terms.annual_rate.value() / dec!(12);
                let count = Decimal::from(n);
                let e = schedule.installments[0].principal.amount() - p / count;
                let closed_form = p * r * (count + Decimal::ONE) / dec!(2);
                let base_drift = r * e.abs() * count * (count - Decimal::ONE) / dec!(2);
                let gap = (schedule.total_interest().amount() - closed_form).abs();
                assert!(
                    gap <= count * dec!(0.01) + base_drift,
                    "{name}: total interest {} is {gap} from the closed form {closed_form}",
                    schedule.total_interest()
                );
            }
        }
    }
}

#[test]
fn equal_principal_interest_is_within_a_cent_per_installment_of_the_closed_form() {
    // When P/n is a whole number of cents the bound is simply n × 0.01.
    let table: [(&str, &str, u32); 4] = [
        ("12000.00", "0.12", 12),
        ("360000.00", "0.36", 360),
        ("7200.00", "0.0999", 240),
        ("100.00", "0.18", 4),
    ];
    for (principal, annual, n) in table {
        let terms = terms(principal, annual, n, EqualPrincipal);
        let schedule = build(&terms);
        let r = terms.annual_rate.value() / dec!(12);
        let count = Decimal::from(n);
        let closed_form = terms.principal.amount() * r * (count + Decimal::ONE) / dec!(2);
        let gap = (schedule.total_interest().amount() - closed_form).abs();
        assert!(
            gap <= count * dec!(0.01),
            "{principal} at {annual} over {n}: {gap} from {closed_form}"
        );
    }
}

#[test]
fn due_dates_are_anchored_on_the_first_and_clamp_to_month_end() {
    let cases: [(&str, &[&str]); 4] = [
        (
            "2025-01-31",
            &[
                "2025-01-31",
                "2025-02-28",
                "2025-03-31",
                "2025-04-30",
                "2025-05-31",
            ],
        ),
        (
            "2024-01-31",
            &["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"],
        ),
        ("2025-01-30", &["2025-01-30", "2025-02-28", "2025-03-30"]),
        (
            "2024-11-15",
            &["2024-11-15", "2024-12-15", "2025-01-15", "2025-02-15"],
        ),
    ];
    for (first, expected) in cases {
        let mut terms = terms(
            "1000.00",
            "0.12",
            u32::try_from(expected.len()).expect("small"),
            EqualInstallment,
        );
        terms.first_due_date = date(first);
        let schedule = build(&terms);
        let actual: Vec<String> = schedule
            .installments
            .iter()
            .map(|i| i.due_date.to_string())
            .collect();
        assert_eq!(
            actual,
            expected.to_vec(),
            "due dates from first due {first}"
        );
        for (k, expected_date) in expected.iter().enumerate() {
            let number = u32::try_from(k + 1).expect("small");
            assert_eq!(
                due_date(date(first), number),
                Some(date(expected_date)),
                "due_date({first}, {number})"
            );
        }
    }
    assert_eq!(
        due_date(date("2025-01-31"), 0),
        None,
        "installments are numbered from 1"
    );
    assert_eq!(
        due_date(date("2025-01-31"), 360),
        Some(date("2054-12-31")),
        "360th installment"
    );
    assert_eq!(due_date(NaiveDate::MAX, 2), None, "beyond the calendar");
}

/// Whether a refusal is the one a case expects.
type IsExpected = fn(&ScheduleError) -> bool;

#[test]
fn invalid_and_degenerate_terms_are_refused() {
    let mut beyond_calendar = terms("1000.00", "0.12", 2, EqualPrincipal);
    beyond_calendar.first_due_date = NaiveDate::MAX;
    let cases: [(&str, ScheduleTerms, IsExpected); 9] = [
        (
            "term 0",
            terms("1000.00", "0.12", 0, EqualInstallment),
            |e| *e == ScheduleError::TermOutOfRange { term_months: 0 },
        ),
        (
            "term 361",
            terms("1000.00", "0.12", MAX_TERM_MONTHS + 1, EqualPrincipal),
            |e| *e == ScheduleError::TermOutOfRange { term_months: 361 },
        ),
        (
            "zero principal",
            terms("0.00", "0.12", 12, EqualInstallment),
            |e| *e == ScheduleError::PrincipalNotPositive,
        ),
        (
            "negative principal",
            terms("-100.00", "0.12", 12, EqualPrincipal),
            |e| *e == ScheduleError::PrincipalNotPositive,
        ),
        // 0.01 over 2 months rounds to 0.01 a month: the second installment has nothing left.
        (
            "cent over two months",
            terms("0.01", "0", 2, EqualPrincipal),
            |e| matches!(e, ScheduleError::Degenerate { .. }),
        ),
        // 1.00 over 360 months rounds to 0.00 a month.
        (
            "payment rounds to zero",
            terms("1.00", "0", 360, EqualInstallment),
            |e| matches!(e, ScheduleError::Degenerate { .. }),
        ),
        // 100.00 / 360 = 0.2777… → 0.28; 359 × 0.28 = 100.52 > 100.00.
        (
            "rounding repays too much",
            terms("100.00", "0", 360, EqualInstallment),
            |e| matches!(e, ScheduleError::Degenerate { .. }),
        ),
        // 359.00 / 360 → 1.00; 359 × 1.00 leaves 0.00 for the last installment.
        (
            "empty last installment",
            terms("359.00", "0.12", 360, EqualPrincipal),
            |e| matches!(e, ScheduleError::Degenerate { .. }),
        ),
        ("due date beyond the calendar", beyond_calendar, |e| {
            *e == ScheduleError::DueDateOutOfRange
        }),
    ];
    for (name, terms, expected) in cases {
        match build_schedule(&terms) {
            Ok(schedule) => panic!("{name}: expected a refusal, got {schedule:?}"),
            Err(error) => {
                assert!(expected(&error), "{name}: unexpected error {error:?}");
                assert!(!error.to_string().is_empty(), "{name}: error has a message");
            }
        }
    }
}

#[test]
fn errors_read_clearly() {
    let term = build_schedule(&terms("1000.00", "0.12", 0, EqualInstallment)).expect_err("term 0");
    assert_eq!(
        term.to_string(),
        "the term must be between 1 and 360 months, got 0"
    );
    let degenerate =
        build_schedule(&terms("1.00", "0", 360, EqualPrincipal)).expect_err("degenerate");
    let message = degenerate.to_string();
    assert!(
        message.contains("choose a shorter term or a larger principal"),
        "advice in {message:?}"
    );
}

#[test]
fn versions_and_wire_format_are_stable() {
    assert_eq!(SCHEDULE_CALCULATOR, "schedule/v1");
    assert_eq!(DAY_COUNT, "monthly-rate-annual-div-12/v1");
    let terms = terms("12000.00", "0.12", 2, EqualPrincipal);
    let json = serde_json::to_value(&terms).expect("serializes");
    assert_eq!(
        json["method"], "equal_principal",
        "snake_case method in {json}"
    );
    let back: ScheduleTerms = serde_json::from_value(json).expect("round-trips");
    assert_eq!(back, terms);
    let schedule = build(&terms);
    let back: Schedule =
        serde_json::from_value(serde_json::to_value(&schedule).expect("serializes"))
            .expect("parses");
    assert_eq!(back, schedule);
}

proptest! {
    #[test]
    fn any_terms_give_a_sound_schedule_or_a_degenerate_refusal(
        principal_cents in 10_000_i64..=1_000_000_000,
        rate_bp in 0_i64..=3_600,
        term_months in 1_u32..=MAX_TERM_MONTHS,
        equal_installment in any::<bool>(),
    ) {
        let terms = ScheduleTerms {
            principal: Money::round(Decimal::new(principal_cents, 2)),
            annual_rate: Rate::from_decimal(Decimal::new(rate_bp, 4)).expect("rate in range"),
            term_months,
            method: if equal_installment { EqualInstallment } else { EqualPrincipal },
            first_due_date: date("2025-01-31"),
        };
        match build_schedule(&terms) {
            Ok(schedule) => {
                let checked = check_invariants(&terms, &schedule);
                prop_assert!(checked.is_ok(), "{:?}: {:?}", terms, checked);
            }
            Err(ScheduleError::Degenerate { reason }) => prop_assert!(!reason.is_empty()),
            Err(other) => prop_assert!(false, "{:?}: unexpected error {:?}", terms, other),
        }
    }
}
