//! The arithmetic and ordering of the PostgreSQL report statements, for the reports the
//! embedded mode computes in Rust over SQLite rows — so both give the same figures to the
//! last digit and list rows in the same order.
//!
//! * sums are exact `Decimal` additions (never a float; an overflow is an error, as
//!   PostgreSQL's would be), starting from an integer zero as `COALESCE(SUM(…), 0)`;
//! * [`money`] is a `::numeric(20,2)` cast: half away from zero to two places;
//! * [`ratio`] is `ROUND(a / NULLIF(b, 0), 4)`: PostgreSQL divides `numeric`s to the
//!   scale `select_div_scale` picks (at least 16 significant digits), rounding half away
//!   from zero, then `ROUND` rounds that half away from zero to four places — two
//!   roundings, mirrored here one after the other;
//! * [`nulls_last`] orders group keys as `ORDER BY key NULLS LAST` under the `C`
//!   collation (text by bytes, which is also SQLite's `BINARY` collation).

use std::cmp::Ordering;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::{QueryError, RATIO_SCALE};

/// Decimal places of the money columns (`numeric(20,2)`).
pub const MONEY_SCALE: u32 = 2;

/// `amount::numeric(20,2)`: half away from zero to two places, written with two places.
pub fn money(amount: Decimal) -> Decimal {
    let mut amount =
        amount.round_dp_with_strategy(MONEY_SCALE, RoundingStrategy::MidpointAwayFromZero);
    amount.rescale(MONEY_SCALE);
    amount
}

/// `ROUND(numerator / NULLIF(denominator, 0), 4)` exactly as PostgreSQL computes it on
/// `numeric`; `None` when the denominator is zero.
pub fn ratio(numerator: Decimal, denominator: Decimal) -> Result<Option<Decimal>, QueryError> {
    if denominator.is_zero() {
        return Ok(None);
    }
    let quotient = numerator
        .checked_div(denominator)
        .ok_or(QueryError::Overflow { what: "a ratio" })?;
    let division_scale = division_scale(numerator, denominator);
    let quotient = if division_scale < quotient.scale() {
        quotient.round_dp_with_strategy(division_scale, RoundingStrategy::MidpointAwayFromZero)
    } else {
        quotient
    };
    Ok(Some(quotient.round_dp_with_strategy(
        RATIO_SCALE,
        RoundingStrategy::MidpointAwayFromZero,
    )))
}

/// [`ratio`] of two counts (`count::numeric / NULLIF(count, 0)`).
pub fn count_ratio(numerator: i64, denominator: i64) -> Result<Option<Decimal>, QueryError> {
    ratio(Decimal::from(numerator), Decimal::from(denominator))
}

/// Weight (in base-10000 digits) and leading base-10000 digit of a `numeric`, as
/// PostgreSQL's `NumericVar` holds it; `(0, 0)` for zero.
fn leading_digit(value: Decimal) -> (i64, u128) {
    let mantissa = value.mantissa().unsigned_abs();
    if mantissa == 0 {
        return (0, 0);
    }
    let scale = i64::from(value.scale());
    let digits = i64::from(mantissa.ilog10()) + 1;
    let exponent = digits - 1 - scale;
    let weight = exponent.div_euclid(4);
    let shift = scale + 4 * weight;
    let leading = if shift >= 0 {
        u32::try_from(shift)
            .ok()
            .and_then(|shift| 10u128.checked_pow(shift))
            .map_or(0, |divisor| mantissa / divisor)
    } else {
        u32::try_from(-shift)
            .ok()
            .and_then(|shift| 10u128.checked_pow(shift))
            .and_then(|factor| mantissa.checked_mul(factor))
            .unwrap_or(u128::MAX)
    };
    (weight, leading)
}

/// The result scale of `numerator / denominator` in PostgreSQL (`select_div_scale` in
/// `numeric.c`: 16 significant digits at least, never less than either operand's scale).
fn division_scale(numerator: Decimal, denominator: Decimal) -> u32 {
    const MIN_SIG_DIGITS: i64 = 16;
    const MAX_DISPLAY_SCALE: i64 = 1000;
    let (weight1, first1) = leading_digit(numerator);
    let (weight2, first2) = leading_digit(denominator);
    let mut quotient_weight = weight1 - weight2;
    if first1 <= first2 {
        quotient_weight -= 1;
    }
    let scale = (MIN_SIG_DIGITS - quotient_weight * 4)
        .max(i64::from(numerator.scale()))
        .max(i64::from(denominator.scale()))
        .clamp(0, MAX_DISPLAY_SCALE);
    u32::try_from(scale).unwrap_or(u32::MAX)
}

/// `COALESCE(SUM(amount), 0)` over exact decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total(Decimal);

impl Default for Total {
    fn default() -> Self {
        Total(Decimal::ZERO)
    }
}

impl Total {
    pub fn add(&mut self, amount: Decimal) -> Result<(), QueryError> {
        self.0 = self
            .0
            .checked_add(amount)
            .ok_or(QueryError::Overflow { what: "a sum" })?;
        Ok(())
    }

    pub fn value(self) -> Decimal {
        self.0
    }
}

/// `ORDER BY key NULLS LAST` for an optional text key.
pub fn nulls_last(a: &Option<String>, b: &Option<String>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.as_bytes().cmp(b.as_bytes()),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// A group key ordered as `ORDER BY group_key NULLS LAST` (absent last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupKey(pub Option<String>);

impl Ord for GroupKey {
    fn cmp(&self, other: &Self) -> Ordering {
        nulls_last(&self.0, &other.0)
    }
}

impl PartialOrd for GroupKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn ratios_round_half_away_from_zero_to_four_places() {
        assert_eq!(
            ratio(d("4500.00"), d("4900.00")).unwrap(),
            Some(d("0.9184"))
        );
        assert_eq!(ratio(d("1"), d("8")).unwrap(), Some(d("0.1250")));
        // 0.00005 exactly: half away from zero.
        assert_eq!(ratio(d("1"), d("20000")).unwrap(), Some(d("0.0001")));
        assert_eq!(count_ratio(0, 0).unwrap(), None);
        assert_eq!(count_ratio(2, 3).unwrap(), Some(d("0.6667")));
    }

    #[test]
    fn the_division_is_rounded_at_postgresqls_scale_before_round() {
        // 0.12344999999999999999|99: PostgreSQL keeps 20 places here (rounding up to
        // 0.12345000000000000000), so ROUND(…, 4) gives 0.1235, not the exact 0.1234.
        let numerator = d("1234499999999999999999");
        let denominator = d("10000000000000000000000");
        assert_eq!(division_scale(numerator, denominator), 20);
        assert_eq!(ratio(numerator, denominator).unwrap(), Some(d("0.1235")));
    }

    #[test]
    fn leading_digits_are_base_ten_thousand() {
        assert_eq!(leading_digit(d("4500.00")), (0, 4500));
        assert_eq!(leading_digit(d("12345")), (1, 1));
        assert_eq!(leading_digit(d("0.05")), (-1, 500));
        assert_eq!(leading_digit(d("0")), (0, 0));
    }

    #[test]
    fn money_is_two_places_half_away_from_zero() {
        assert_eq!(money(d("1.005")).to_string(), "1.01");
        assert_eq!(money(d("-1.005")).to_string(), "-1.01");
        assert_eq!(money(d("0")).to_string(), "0.00");
        assert_eq!(money(d("1200")).to_string(), "1200.00");
    }

    #[test]
    fn absent_keys_sort_last() {
        let mut keys = vec![
            None,
            Some("b".to_string()),
            Some("B".to_string()),
            Some("a".to_string()),
        ];
        keys.sort_by(nulls_last);
        assert_eq!(
            keys,
            vec![
                Some("B".to_string()),
                Some("a".to_string()),
                Some("b".to_string()),
                None
            ]
        );
    }
}
