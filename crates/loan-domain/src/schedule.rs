//! Repayment schedules: how a loan is paid back, month by month.
//!
//! A schedule splits a principal `P` borrowed at an annual rate into `n` monthly installments
//! (`1 <= n <= 360`), each with a due date, a principal part and an interest part.
//!
//! # Interest
//!
//! Every period accrues exactly one month of interest ([`DAY_COUNT`]): the monthly rate is
//! `r = annual_rate / 12`, whatever the length of the month. `r` is never rounded: the interest
//! of a period is `Money::round(balance × annual_rate / 12)`, computed exactly, on the balance
//! still owed before that installment.
//!
//! # Equal installment (等额本息)
//!
//! Every installment has the same total, the closed-form payment rounded once:
//!
//! ```text
//! payment = Money::round(P × r × (1 + r)^n / ((1 + r)^n − 1))     when r > 0
//! payment = Money::round(P / n)                                   when r = 0
//! ```
//!
//! For installments `k < n`: `interest_k = Money::round(balance × r)`,
//! `principal_k = payment − interest_k`, and the balance falls by `principal_k`.
//! The last installment absorbs the rounding: `principal_n` is the whole remaining balance and
//! `interest_n = Money::round(balance × r)`, so its total may differ from `payment` by a few cents.
//!
//! # Equal principal (等额本金)
//!
//! Every installment repays the same principal, `base = Money::round(P / n)`, except the last,
//! which repays `P − base × (n − 1)`. Interest is charged on the balance before each
//! installment, so installments shrink over time.
//!
//! # Rules every schedule keeps
//!
//! * The principal column sums exactly to `P`; the balance never goes negative.
//! * Every installment repays some principal. When rounding to whole cents makes that impossible
//!   (a tiny principal over a long term, or a payment that only covers the interest), the schedule
//!   is refused with [`ScheduleError::Degenerate`] rather than bent. A zero rate is allowed.
//! * Installment `k` is due `k − 1` months after the first due date, counted from the first due
//!   date each time, not from the previous installment. A day that does not exist in the target
//!   month falls on that month's last day: a first due date of 31 January gives 28 (or 29)
//!   February, then 31 March, then 30 April.
//!
//! # Rounding
//!
//! [`Money::round`] (half-up to 0.01) is the only rounding. Every amount it is given is first
//! computed exactly, as a fraction of whole numbers of cents, so an amount that lies exactly
//! halfway between two cents is always rounded up, even when `r` or the closed-form payment has
//! no finite decimal expansion: 101.50 at 36% over 2 months gives the exact payment 53.045,
//! which is charged as 53.05. The fraction is truncated to 0.001 and that is rounded half-up:
//! digits past the third decimal can never change a half-up decision. `(1 + r)^n` runs far past
//! 128 bits over a long term, so the fractions are held as arbitrary-size integers
//! ([`num_bigint::BigUint`]). No floating point is used anywhere.

use chrono::{Months, NaiveDate};
use num_bigint::BigUint;
use num_traits::{CheckedSub, Zero};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::money::{Money, Rate};

/// Version of the schedule calculator, recorded in every money event.
pub const SCHEDULE_CALCULATOR: &str = "schedule/v1";

/// Version of the day-count convention: each period accrues one month of interest, and the
/// monthly rate is the annual rate divided by 12.
pub const DAY_COUNT: &str = "monthly-rate-annual-div-12/v1";

/// The longest term accepted, in months (30 years).
pub const MAX_TERM_MONTHS: u32 = 360;

/// How the principal is spread over the installments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RepaymentMethod {
    /// 等额本息: every installment has the same total; early installments are mostly interest.
    EqualInstallment,
    /// 等额本金: every installment repays the same principal; installments shrink over time.
    EqualPrincipal,
}

/// What a schedule is built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleTerms {
    /// The amount lent; must be positive.
    pub principal: Money,
    /// The nominal annual interest rate as a fraction (`0.12` = 12% a year).
    pub annual_rate: Rate,
    /// Number of monthly installments, `1..=360`.
    pub term_months: u32,
    /// How the principal is spread over the installments.
    pub method: RepaymentMethod,
    /// Due date of the first installment; later installments fall on the same day of later months.
    pub first_due_date: NaiveDate,
}

/// One installment of a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Installment {
    /// Position in the schedule, starting at 1.
    pub number: u32,
    /// The day this installment is due.
    pub due_date: NaiveDate,
    /// The part of the installment that repays principal.
    pub principal: Money,
    /// The part of the installment that pays interest.
    pub interest: Money,
}

impl Installment {
    /// The amount due: principal plus interest.
    pub fn total(&self) -> Money {
        // Both parts are bounded by a validated schedule; saturation cannot be reached.
        self.principal.saturating_add(self.interest)
    }
}

/// A repayment schedule: the installments in due-date order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Installments numbered `1..=term_months`.
    pub installments: Vec<Installment>,
}

impl Schedule {
    /// Sum of the principal parts; equals the principal lent.
    pub fn total_principal(&self) -> Money {
        self.installments
            .iter()
            .fold(Money::ZERO, |sum, i| sum.saturating_add(i.principal))
    }

    /// Sum of the interest parts: the cost of the loan if every installment is paid on time.
    pub fn total_interest(&self) -> Money {
        self.installments
            .iter()
            .fold(Money::ZERO, |sum, i| sum.saturating_add(i.interest))
    }

    /// Sum of all installments: principal plus interest.
    pub fn total(&self) -> Money {
        self.installments
            .iter()
            .fold(Money::ZERO, |sum, i| sum.saturating_add(i.total()))
    }
}

/// Why a schedule could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The term is outside `1..=360` months.
    #[error("the term must be between 1 and {MAX_TERM_MONTHS} months, got {term_months}")]
    TermOutOfRange {
        /// The term that was asked for.
        term_months: u32,
    },
    /// The principal is zero or negative.
    #[error("the principal must be greater than zero")]
    PrincipalNotPositive,
    /// Rounding to whole cents leaves no sensible schedule for these terms.
    #[error("no repayment schedule is possible for these terms: {reason}")]
    Degenerate {
        /// What went wrong and what to change, for the person choosing the terms.
        reason: String,
    },
    /// An amount is too large to compute with.
    #[error("the amounts are too large to compute a repayment schedule")]
    Overflow,
    /// A due date would fall outside the supported calendar.
    #[error("a due date of this schedule would fall outside the supported calendar")]
    DueDateOutOfRange,
}

/// Builds the repayment schedule for `terms`, following the rules in the [module docs](self).
///
/// Fails with [`ScheduleError::TermOutOfRange`] or [`ScheduleError::PrincipalNotPositive`] for
/// invalid terms, and with [`ScheduleError::Degenerate`] when rounding to cents would leave an
/// installment that repays no principal (or more than is owed). Never panics.
pub fn build_schedule(terms: &ScheduleTerms) -> Result<Schedule, ScheduleError> {
    let n = terms.term_months;
    if !(1..=MAX_TERM_MONTHS).contains(&n) {
        return Err(ScheduleError::TermOutOfRange { term_months: n });
    }
    if !terms.principal.is_positive() {
        return Err(ScheduleError::PrincipalNotPositive);
    }
    let rate = MonthlyRate::of(terms.annual_rate)?;
    let principal_cents = cents(terms.principal)?;
    let hundred_n = BigUint::from(n) * 100_u32;
    // Equal installment: the fixed total. Equal principal: the fixed principal part.
    let fixed = match terms.method {
        RepaymentMethod::EqualInstallment if !rate.is_zero() => {
            rate.payment(&principal_cents, n)?
        }
        RepaymentMethod::EqualInstallment | RepaymentMethod::EqualPrincipal => {
            round_fraction(&principal_cents, &hundred_n)?
        }
    };

    let mut balance = terms.principal;
    let mut installments = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    for number in 1..=n {
        let interest = rate.interest_on(balance)?;
        let last = number == n;
        let principal = match terms.method {
            _ if last => balance,
            RepaymentMethod::EqualInstallment => fixed
                .checked_sub(interest)
                .map_err(|_| ScheduleError::Overflow)?,
            RepaymentMethod::EqualPrincipal => fixed,
        };
        if !principal.is_positive() {
            return Err(degenerate_no_principal(terms, number, fixed, interest));
        }
        if principal > balance {
            return Err(ScheduleError::Degenerate {
                reason: format!(
                    "rounded to whole cents, the first {number} installments would repay more than the principal of {}; \
                     choose a shorter term or a larger principal",
                    terms.principal
                ),
            });
        }
        balance = balance
            .checked_sub(principal)
            .map_err(|_| ScheduleError::Overflow)?;
        let due_date =
            due_date(terms.first_due_date, number).ok_or(ScheduleError::DueDateOutOfRange)?;
        installments.push(Installment {
            number,
            due_date,
            principal,
            interest,
        });
    }
    Ok(Schedule { installments })
}

/// The due date of installment `number` (1-based): `first_due_date` plus `number − 1` months,
/// counted from the first due date and clamped to the end of shorter months
/// (31 January → 28/29 February → 31 March → 30 April).
///
/// `None` for `number == 0` or a date beyond the supported calendar.
pub fn due_date(first_due_date: NaiveDate, number: u32) -> Option<NaiveDate> {
    let months_after_first = number.checked_sub(1)?;
    first_due_date.checked_add_months(Months::new(months_after_first))
}

/// The reason given when installment `number` would repay no principal.
fn degenerate_no_principal(
    terms: &ScheduleTerms,
    number: u32,
    fixed: Money,
    interest: Money,
) -> ScheduleError {
    let n = terms.term_months;
    let reason = match terms.method {
        _ if number == n => format!(
            "rounded to whole cents, the first {} installments already repay the whole principal of {}, \
             leaving nothing for installment {n}; choose a shorter term or a larger principal",
            n.saturating_sub(1),
            terms.principal
        ),
        RepaymentMethod::EqualInstallment => format!(
            "the monthly payment of {fixed} would not exceed the interest of {interest} due in installment {number}, \
             so the loan would never be repaid; choose a shorter term or a larger principal"
        ),
        RepaymentMethod::EqualPrincipal => format!(
            "a principal of {} spread over {n} months rounds to {fixed} a month; \
             choose a shorter term or a larger principal",
            terms.principal
        ),
    };
    ScheduleError::Degenerate { reason }
}

/// The monthly rate `r = a / 12` of an annual rate `a`, held exactly as `numerator / denominator`
/// with `a = numerator / 10^scale` and `denominator = 12 × 10^scale`.
struct MonthlyRate {
    numerator: BigUint,
    denominator: BigUint,
}

impl MonthlyRate {
    fn of(annual: Rate) -> Result<Self, ScheduleError> {
        let annual = annual.value();
        let numerator = u128::try_from(annual.mantissa()).map_err(|_| ScheduleError::Overflow)?;
        let denominator = BigUint::from(10_u32).pow(annual.scale()) * 12_u32;
        Ok(MonthlyRate {
            numerator: BigUint::from(numerator),
            denominator,
        })
    }

    fn is_zero(&self) -> bool {
        self.numerator.is_zero()
    }

    /// `Money::round(balance × r)`, exactly.
    fn interest_on(&self, balance: Money) -> Result<Money, ScheduleError> {
        let balance_cents = cents(balance)?;
        round_fraction(
            &(balance_cents * &self.numerator),
            &(&self.denominator * 100_u32),
        )
    }

    /// The equal-installment payment for `r > 0`:
    /// `Money::round(P × r × (1 + r)^n / ((1 + r)^n − 1))`, exactly.
    ///
    /// With `r = A / Y` and `X = Y + A`, this is `P × A × X^n / (Y × (X^n − Y^n))`.
    fn payment(&self, principal_cents: &BigUint, n: u32) -> Result<Money, ScheduleError> {
        let x = &self.denominator + &self.numerator;
        let x_n = x.pow(n);
        let y_n = self.denominator.pow(n);
        let growth = x_n.checked_sub(&y_n).ok_or(ScheduleError::Overflow)?;
        let numerator = principal_cents * &self.numerator * x_n;
        let denominator = &self.denominator * 100_u32 * growth;
        round_fraction(&numerator, &denominator)
    }
}

/// A non-negative amount in whole cents.
fn cents(amount: Money) -> Result<BigUint, ScheduleError> {
    let in_cents = amount
        .amount()
        .checked_mul(Decimal::ONE_HUNDRED)
        .ok_or(ScheduleError::Overflow)?
        .normalize();
    if in_cents.scale() != 0 {
        // A `Money` has at most two decimal places; this cannot happen.
        return Err(ScheduleError::Overflow);
    }
    u128::try_from(in_cents.mantissa())
        .map(BigUint::from)
        .map_err(|_| ScheduleError::Overflow)
}

/// `Money::round(numerator / denominator)` for an exact non-negative fraction.
///
/// The fraction is truncated to 0.001 and then rounded half-up to 0.01, which gives exactly the
/// half-up rounding of the fraction itself: the third decimal decides, and nothing after it can
/// change a half-up decision. A zero denominator, or a quotient too large for a `Decimal`, is
/// refused as [`ScheduleError::Overflow`].
fn round_fraction(numerator: &BigUint, denominator: &BigUint) -> Result<Money, ScheduleError> {
    if denominator.is_zero() {
        return Err(ScheduleError::Overflow);
    }
    // Both are non-negative, so the integer quotient is the floor.
    let thousandths = numerator * 1000_u32 / denominator;
    let thousandths = i128::try_from(&thousandths).map_err(|_| ScheduleError::Overflow)?;
    let value =
        Decimal::try_from_i128_with_scale(thousandths, 3).map_err(|_| ScheduleError::Overflow)?;
    Ok(Money::round(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(value: u128) -> BigUint {
        BigUint::from(value)
    }

    #[test]
    fn round_fraction_is_half_up_on_the_exact_value() {
        let cases: [(u128, u128, &str); 5] = [
            (53_045, 1000, "53.05"),
            (53_044_999_999, 1_000_000_000, "53.04"),
            (1, 200, "0.01"),
            (1, 3, "0.33"),
            (2, 3, "0.67"),
        ];
        for (num, den, expected) in cases {
            let rounded = round_fraction(&n(num), &n(den)).map(|m| m.to_string());
            assert_eq!(rounded.as_deref(), Ok(expected), "{num}/{den}");
        }
    }

    #[test]
    fn round_fraction_works_beyond_128_bits_and_refuses_what_it_cannot_hold() {
        // (10^40 + 5) / 10^38 = 100.00000…05: the quotient fits, the operands do not fit in u128.
        let big = n(10_u128.pow(20)) * n(10_u128.pow(20)) + n(5);
        let rounded = round_fraction(&big, &(n(10_u128.pow(19)) * n(10_u128.pow(19))));
        assert_eq!(rounded.map(|m| m.to_string()).as_deref(), Ok("100.00"));
        assert_eq!(
            round_fraction(&big, &n(3)),
            Err(ScheduleError::Overflow),
            "a quotient beyond what a Decimal holds is refused"
        );
        assert_eq!(
            round_fraction(&n(5), &n(0)),
            Err(ScheduleError::Overflow),
            "division by zero is refused"
        );
    }

    #[test]
    fn long_terms_at_the_highest_rate_stay_exact() {
        // (1 + r)^360 at r = 10/12 runs far past 128 bits; the payment is then almost the interest.
        let rate = MonthlyRate::of(Rate::parse("10").expect("rate")).expect("monthly rate");
        let payment = rate.payment(&n(100_000_000), 360).expect("payment");
        assert_eq!(payment.to_string(), "833333.33");
    }
}
