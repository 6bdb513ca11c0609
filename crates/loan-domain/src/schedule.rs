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
//! computed exactly from integers, so an amount that lies exactly halfway between two cents is
//! always rounded up, even when `r` or the closed-form payment has no finite decimal expansion:
//! 101.50 at 36% over 2 months gives the exact payment 53.045, which is charged as 53.05.
//! No floating point is used anywhere.

use std::cmp::Ordering;

use chrono::{Months, NaiveDate};
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
    let principal_cents = Natural::from_u128(cents(terms.principal)?);
    let hundred_n = Natural::from_u128(100_u128.saturating_mul(u128::from(n)));
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
    numerator: Natural,
    denominator: Natural,
}

impl MonthlyRate {
    fn of(annual: Rate) -> Result<Self, ScheduleError> {
        let annual = annual.value();
        let numerator = u128::try_from(annual.mantissa()).map_err(|_| ScheduleError::Overflow)?;
        let denominator = 10_u128
            .checked_pow(annual.scale())
            .and_then(|p| p.checked_mul(12))
            .ok_or(ScheduleError::Overflow)?;
        Ok(MonthlyRate {
            numerator: Natural::from_u128(numerator),
            denominator: Natural::from_u128(denominator),
        })
    }

    fn is_zero(&self) -> bool {
        self.numerator.is_zero()
    }

    /// `Money::round(balance × r)`, exactly.
    fn interest_on(&self, balance: Money) -> Result<Money, ScheduleError> {
        let balance_cents = Natural::from_u128(cents(balance)?);
        round_fraction(
            &balance_cents.mul(&self.numerator),
            &Natural::from_u128(100).mul(&self.denominator),
        )
    }

    /// The equal-installment payment for `r > 0`:
    /// `Money::round(P × r × (1 + r)^n / ((1 + r)^n − 1))`, exactly.
    ///
    /// With `r = A / Y` and `X = Y + A`, this is `P × A × X^n / (Y × (X^n − Y^n))`.
    fn payment(&self, principal_cents: &Natural, n: u32) -> Result<Money, ScheduleError> {
        let x = self.denominator.add(&self.numerator);
        let x_n = x.pow(n);
        let y_n = self.denominator.pow(n);
        let growth = x_n.checked_sub(&y_n).ok_or(ScheduleError::Overflow)?;
        let numerator = principal_cents.mul(&self.numerator).mul(&x_n);
        let denominator = Natural::from_u128(100).mul(&self.denominator).mul(&growth);
        round_fraction(&numerator, &denominator)
    }
}

/// A non-negative amount in whole cents.
fn cents(amount: Money) -> Result<u128, ScheduleError> {
    let in_cents = amount
        .amount()
        .checked_mul(Decimal::ONE_HUNDRED)
        .ok_or(ScheduleError::Overflow)?
        .normalize();
    if in_cents.scale() != 0 {
        // A `Money` has at most two decimal places; this cannot happen.
        return Err(ScheduleError::Overflow);
    }
    u128::try_from(in_cents.mantissa()).map_err(|_| ScheduleError::Overflow)
}

/// `Money::round(numerator / denominator)` for an exact non-negative fraction.
///
/// The fraction is truncated to 0.001 and then rounded half-up to 0.01, which gives exactly the
/// half-up rounding of the fraction itself: the third decimal decides, and nothing after it can
/// change a half-up decision.
fn round_fraction(numerator: &Natural, denominator: &Natural) -> Result<Money, ScheduleError> {
    let thousandths = numerator
        .mul(&Natural::from_u128(1000))
        .div_floor(denominator)
        .ok_or(ScheduleError::Overflow)?;
    let thousandths = i128::try_from(thousandths).map_err(|_| ScheduleError::Overflow)?;
    let value =
        Decimal::try_from_i128_with_scale(thousandths, 3).map_err(|_| ScheduleError::Overflow)?;
    Ok(Money::round(value))
}

/// A non-negative integer of any size, so that `(1 + r)^n` can be held exactly.
/// Little-endian base-2^32 digits, without leading zero digits (zero is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Natural(Vec<u32>);

impl Natural {
    const BASE_BITS: u32 = 32;

    fn from_u128(mut value: u128) -> Self {
        let mut digits = Vec::new();
        while value != 0 {
            digits.push((value & u128::from(u32::MAX)) as u32);
            value >>= Self::BASE_BITS;
        }
        Natural(digits)
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn trimmed(mut digits: Vec<u32>) -> Self {
        while digits.last() == Some(&0) {
            digits.pop();
        }
        Natural(digits)
    }

    fn bit_len(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(top) => {
                let lower = (self.0.len() as u64 - 1) * u64::from(Self::BASE_BITS);
                lower + u64::from(Self::BASE_BITS - top.leading_zeros())
            }
        }
    }

    fn add(&self, other: &Natural) -> Natural {
        let len = self.0.len().max(other.0.len());
        let mut digits = Vec::with_capacity(len + 1);
        let mut carry = 0_u64;
        for i in 0..len {
            let sum = u64::from(self.digit(i)) + u64::from(other.digit(i)) + carry;
            digits.push(sum as u32);
            carry = sum >> Self::BASE_BITS;
        }
        digits.push(carry as u32);
        Self::trimmed(digits)
    }

    /// `self − other`, or `None` if `other` is larger.
    fn checked_sub(&self, other: &Natural) -> Option<Natural> {
        if self.cmp_to(other) == Ordering::Less {
            return None;
        }
        let mut digits = Vec::with_capacity(self.0.len());
        let mut borrow = 0_u64;
        for (i, &digit) in self.0.iter().enumerate() {
            let minuend = u64::from(digit) | (1 << Self::BASE_BITS);
            let difference = minuend - u64::from(other.digit(i)) - borrow;
            digits.push(difference as u32);
            borrow = u64::from(difference >> Self::BASE_BITS == 0);
        }
        Some(Self::trimmed(digits))
    }

    fn mul(&self, other: &Natural) -> Natural {
        if self.is_zero() || other.is_zero() {
            return Natural(Vec::new());
        }
        let mut digits = vec![0_u32; self.0.len() + other.0.len()];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0_u64;
            for (j, &b) in other.0.iter().enumerate() {
                // (2^32 − 1)^2 + 2 × (2^32 − 1) = 2^64 − 1: cannot overflow.
                let t = u64::from(a) * u64::from(b) + u64::from(digits[i + j]) + carry;
                digits[i + j] = t as u32;
                carry = t >> Self::BASE_BITS;
            }
            digits[i + other.0.len()] = carry as u32;
        }
        Self::trimmed(digits)
    }

    fn pow(&self, exponent: u32) -> Natural {
        (0..exponent).fold(Natural::from_u128(1), |power, _| power.mul(self))
    }

    fn shl(&self, bits: u64) -> Natural {
        let Ok(whole) = usize::try_from(bits / u64::from(Self::BASE_BITS)) else {
            return Natural(Vec::new());
        };
        let part = (bits % u64::from(Self::BASE_BITS)) as u32;
        let mut digits = vec![0_u32; whole];
        let mut carry = 0_u32;
        for &digit in &self.0 {
            let wide = (u64::from(digit) << part) | u64::from(carry);
            digits.push(wide as u32);
            carry = (wide >> Self::BASE_BITS) as u32;
        }
        digits.push(carry);
        Self::trimmed(digits)
    }

    fn shr1(&self) -> Natural {
        let mut digits = self.0.clone();
        let mut carry = 0_u32;
        for digit in digits.iter_mut().rev() {
            let next_carry = *digit & 1;
            *digit = (*digit >> 1) | (carry << (Self::BASE_BITS - 1));
            carry = next_carry;
        }
        Self::trimmed(digits)
    }

    fn digit(&self, i: usize) -> u32 {
        self.0.get(i).copied().unwrap_or(0)
    }

    fn cmp_to(&self, other: &Natural) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    /// `floor(self / divisor)` when it fits in a `u128`; `None` otherwise or for a zero divisor.
    fn div_floor(&self, divisor: &Natural) -> Option<u128> {
        if divisor.is_zero() {
            return None;
        }
        if self.cmp_to(divisor) == Ordering::Less {
            return Some(0);
        }
        // The quotient is below 2^(shift + 1).
        let shift = self.bit_len() - divisor.bit_len();
        if shift >= 128 {
            return None;
        }
        let mut remainder = self.clone();
        let mut shifted = divisor.shl(shift);
        let mut quotient = 0_u128;
        for bit in (0..=shift).rev() {
            if let Some(rest) = remainder.checked_sub(&shifted) {
                remainder = rest;
                quotient |= 1 << bit;
            }
            shifted = shifted.shr1();
        }
        Some(quotient)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(value: u128) -> Natural {
        Natural::from_u128(value)
    }

    #[test]
    fn natural_arithmetic_matches_u128() {
        let cases: [(u128, u128); 6] = [
            (0, 1),
            (1, 1),
            (u128::from(u32::MAX), u128::from(u32::MAX)),
            (u128::from(u64::MAX), 3),
            (123_456_789_012_345_678_901, 98_765_432_109),
            (1 << 100, (1 << 64) + 1),
        ];
        for (a, b) in cases {
            assert_eq!(n(a).add(&n(b)), n(a + b), "{a} + {b}");
            assert_eq!(
                n(a).checked_sub(&n(b)),
                a.checked_sub(b).map(n),
                "{a} - {b}"
            );
            assert_eq!(n(a).div_floor(&n(b)), Some(a / b), "{a} / {b}");
            if let Some(product) = a.checked_mul(b) {
                assert_eq!(n(a).mul(&n(b)), n(product), "{a} * {b}");
            }
            assert_eq!(n(a).shl(5).shr1(), n(a << 4), "{a} << 5 >> 1");
            assert_eq!(
                n(a).bit_len(),
                u64::from(128 - a.leading_zeros()),
                "bit length of {a}"
            );
        }
    }

    #[test]
    fn natural_powers_and_big_quotients() {
        assert_eq!(n(3).pow(80), n(3_u128.pow(80)));
        assert_eq!(n(7).pow(0), n(1));
        // (10^40 + 5) / 10^20 = 10^20 remainder 5, computed across more than 128 bits.
        let big = n(10_u128.pow(20)).mul(&n(10_u128.pow(20))).add(&n(5));
        assert_eq!(big.div_floor(&n(10_u128.pow(20))), Some(10_u128.pow(20)));
        assert_eq!(
            big.div_floor(&n(3)),
            None,
            "a quotient beyond u128 is refused"
        );
        assert_eq!(n(5).div_floor(&n(0)), None, "division by zero is refused");
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
}
