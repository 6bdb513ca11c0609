//! Money, rates and the one rounding rule.
//!
//! Every amount the engine stores or reports is a [`Money`]: a `rust_decimal` value held
//! at exactly two decimal places (the minor unit of the currencies we support). Amounts
//! coming from outside are parsed, never rounded: `"10.005"` is refused as over-precise.
//! Amounts the engine computes (interest, installments, penalty) pass through
//! [`Money::round`], the single place where rounding happens: half-up (away from zero)
//! to 0.01, as Chinese lenders use. Arithmetic is checked: an overflow is an error, never
//! a wrap or a panic.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Version of the rounding rule, recorded in every money event (see [`crate::RuleVersions`]).
pub const ROUNDING_RULE: &str = "half-up-0.01/v1";

/// The largest absolute amount accepted from outside: one trillion. Far below what
/// `Decimal` can hold, so sums over thousands of installments cannot overflow.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0); // 1_000_000_000_000

const SCALE: u32 = 2;

/// Why an amount or rate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("not a decimal number: {0:?}")]
    NotANumber(String),
    #[error("more than {max} decimal places: {value}")]
    TooPrecise { value: String, max: u32 },
    #[error("amount {0} is beyond the supported maximum of 1000000000000")]
    OutOfRange(String),
    #[error("arithmetic overflow")]
    Overflow,
    #[error("rate {value} is outside {min}..={max}")]
    RateOutOfRange {
        value: String,
        min: String,
        max: String,
    },
}

/// An amount of money at exactly two decimal places. May be negative (deltas, restatements);
/// commands check the sign they need and name the field when they refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

impl Money {
    pub const ZERO: Money = Money(Decimal::from_parts(0, 0, 0, false, SCALE));

    /// Parses an amount given by a caller: at most two decimal places, within ±1e12.
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let value =
            Decimal::from_str(text.trim()).map_err(|_| MoneyError::NotANumber(text.to_owned()))?;
        Self::from_exact(value)
    }

    /// Accepts a decimal that already has at most two decimal places (no rounding).
    pub fn from_exact(value: Decimal) -> Result<Self, MoneyError> {
        let normalized = value.normalize();
        if normalized.scale() > SCALE {
            return Err(MoneyError::TooPrecise {
                value: value.to_string(),
                max: SCALE,
            });
        }
        if value.abs() > MAX_AMOUNT {
            return Err(MoneyError::OutOfRange(value.to_string()));
        }
        Ok(Self::with_scale(value))
    }

    /// The one rounding rule: half-up (midpoint away from zero) to 0.01.
    pub fn round(value: Decimal) -> Self {
        Self::with_scale(
            value.round_dp_with_strategy(SCALE, RoundingStrategy::MidpointAwayFromZero),
        )
    }

    fn with_scale(mut value: Decimal) -> Self {
        // Sums and differences of two-decimal amounts already have scale 2.
        if value.scale() != SCALE {
            value.rescale(SCALE);
        }
        Money(value)
    }

    pub fn amount(self) -> Decimal {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    pub fn is_positive(self) -> bool {
        self.0 > Decimal::ZERO
    }

    pub fn is_negative(self) -> bool {
        self.0 < Decimal::ZERO
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.0
            .checked_add(other.0)
            .map(Self::with_scale)
            .ok_or(MoneyError::Overflow)
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.0
            .checked_sub(other.0)
            .map(Self::with_scale)
            .ok_or(MoneyError::Overflow)
    }

    /// The smaller of two amounts.
    pub fn min(self, other: Money) -> Money {
        if self <= other { self } else { other }
    }

    /// Sums amounts with checked arithmetic.
    pub fn sum<I: IntoIterator<Item = Money>>(items: I) -> Result<Money, MoneyError> {
        items.into_iter().try_fold(Money::ZERO, Money::checked_add)
    }

    /// Adds amounts that are known to be small enough (invariants of a validated loan).
    /// Saturates instead of wrapping; used only for read-side figures.
    pub fn saturating_add(self, other: Money) -> Money {
        Self::with_scale(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Money::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Money {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Money".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An amount in the loan's currency, as a decimal string with at most two decimal places, e.g. \"1250.00\". Absolute value at most 1000000000000.",
            "pattern": "^-?[0-9]{1,13}(\\.[0-9]{1,2})?$",
            "examples": ["1250.00"]
        })
    }
}

/// A non-negative rate as a decimal fraction (`0.18` = 18%), at most 8 decimal places.
/// Annual interest rates and daily penalty rates are both `Rate`s; each command bounds
/// the range it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(Decimal);

impl Rate {
    pub const MAX_SCALE: u32 = 8;

    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let value =
            Decimal::from_str(text.trim()).map_err(|_| MoneyError::NotANumber(text.to_owned()))?;
        Self::from_decimal(value)
    }

    pub fn from_decimal(value: Decimal) -> Result<Self, MoneyError> {
        let value = value.normalize();
        if value.scale() > Self::MAX_SCALE {
            return Err(MoneyError::TooPrecise {
                value: value.to_string(),
                max: Self::MAX_SCALE,
            });
        }
        if value < Decimal::ZERO || value > Decimal::TEN {
            return Err(MoneyError::RateOutOfRange {
                value: value.to_string(),
                min: "0".into(),
                max: "10".into(),
            });
        }
        Ok(Rate(value))
    }

    pub fn value(self) -> Decimal {
        self.0
    }

    /// Fails unless `min <= self <= max`.
    pub fn within(self, min: Decimal, max: Decimal) -> Result<Self, MoneyError> {
        if self.0 < min || self.0 > max {
            return Err(MoneyError::RateOutOfRange {
                value: self.0.to_string(),
                min: min.to_string(),
                max: max.to_string(),
            });
        }
        Ok(self)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Rate::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Rate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rate".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A rate as a decimal fraction string (\"0.18\" = 18%), at most 8 decimal places.",
            "pattern": "^[0-9]{1,2}(\\.[0-9]{1,8})?$",
            "examples": ["0.1200", "0.0005"]
        })
    }
}

/// ISO 4217 alphabetic currency code of a loan (`CNY`). All supported currencies have
/// two minor-unit digits; amounts are always held to 0.01.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(
    description = "ISO 4217 alphabetic code of a currency with two minor-unit digits, e.g. \"CNY\"."
)]
pub struct Currency(#[schemars(regex(pattern = r"^[A-Z]{3}$"))] String);

impl Currency {
    /// Currencies whose minor unit is not 0.01 are refused: the engine holds amounts to 0.01.
    const ZERO_OR_THREE_DIGIT: [&'static str; 10] = [
        "JPY", "KRW", "VND", "CLP", "ISK", "BHD", "KWD", "OMR", "JOD", "TND",
    ];

    pub fn parse(text: &str) -> Result<Self, String> {
        let ok = text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase());
        if !ok {
            return Err(format!(
                "currency must be a three-letter ISO 4217 code in capitals, got {text:?}"
            ));
        }
        if Self::ZERO_OR_THREE_DIGIT.contains(&text) {
            return Err(format!(
                "currency {text} does not have two minor-unit digits"
            ));
        }
        Ok(Currency(text.to_owned()))
    }

    pub fn code(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_amount_constant_is_one_trillion() {
        assert_eq!(MAX_AMOUNT, Decimal::from(1_000_000_000_000_i64));
    }

    #[test]
    fn rounding_is_half_up_to_cents() {
        let cases = [
            ("0.005", "0.01"),
            ("0.004", "0.00"),
            ("2.675", "2.68"),
            ("-2.675", "-2.68"),
            ("10", "10.00"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                Money::round(Decimal::from_str(input).unwrap()).to_string(),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn parse_refuses_over_precise_and_huge_amounts() {
        assert!(matches!(
            Money::parse("10.005"),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(matches!(
            Money::parse("1000000000000.01"),
            Err(MoneyError::OutOfRange(_))
        ));
        assert!(matches!(
            Money::parse("abc"),
            Err(MoneyError::NotANumber(_))
        ));
        assert_eq!(Money::parse("10.50").unwrap().to_string(), "10.50");
        assert_eq!(
            Money::parse("10.500").unwrap().to_string(),
            "10.50",
            "trailing zeros are not precision"
        );
    }
}
