//! Personally identifiable information: validated values that never print in clear.
//!
//! A borrower's national identity number, bank card number and mobile number are the
//! three pieces of PII the engine handles. Each has its own type so that:
//!
//! * **It is validated once, at the edge.** [`NationalId::parse`], [`BankCard::parse`] and
//!   [`PhoneNumber::parse`] are the only ways to build a value, and `Deserialize` goes
//!   through the same parse, so wire input is checked by the same code as everything else.
//! * **It never prints in clear.** `Debug` and `Display` show only a masked form
//!   (`NationalId("110***********1234")`, `138****5678`), so a value that reaches a log
//!   line, a `tracing` field, a panic message or the `Debug` of an enclosing struct leaks
//!   nothing useful. [`PiiError`] messages say *what* is wrong (length, checksum, region,
//!   birth date, prefix) and never repeat the input.
//! * **It serializes in clear, on purpose.** `Serialize` writes the clear string because
//!   events carrying PII are encrypted by the command service before they reach storage;
//!   the clear value is needed for that encryption and for blind indexes, through the
//!   explicit `expose()` accessors. The JSON schemas mark these fields `writeOnly` and say
//!   they are encrypted at rest.
//!
//! Checksum rules:
//!
//! * National id (PRC resident identity number, GB 11643): 17 digits and a check
//!   character. The check character is ISO 7064 MOD 11-2: the sum of the 17 digits
//!   weighted `7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2`, modulo 11, indexes `"10X98765432"`.
//!   The first two digits must be a province code, digits 7–14 a real date `YYYYMMDD`
//!   in or after 1900, and the 17th digit is odd for men and even for women.
//! * Bank card: 12 to 19 digits with a valid Luhn (mod 10) check digit.
//! * Mobile number: mainland China, 11 digits starting `13`–`19`.
//!
//! Nothing here panics, whatever the input.

use std::borrow::Cow;
use std::fmt;

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Serialize};

/// Gender as encoded in a national id (17th digit: odd = male, even = female).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    /// The 17th digit of the national id is odd.
    Male,
    /// The 17th digit of the national id is even.
    Female,
}

/// Why a piece of PII was refused. Messages describe the problem and never contain the
/// value that was given (at most its length).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PiiError {
    /// The national id does not have 18 characters (after trimming).
    #[error("national id must be 18 characters, got {found}")]
    NationalIdLength {
        /// Number of characters found.
        found: usize,
    },
    /// The national id is not 17 digits followed by a digit or `X`.
    #[error("national id must be 17 digits followed by a digit or 'X'")]
    NationalIdCharacters,
    /// The first two digits of the national id are not a PRC province code.
    #[error("national id region code does not start with a valid PRC province code")]
    NationalIdRegion,
    /// Digits 7–14 of the national id are not a real date `YYYYMMDD` in or after 1900.
    #[error("national id birth date (digits 7-14) is not a valid YYYYMMDD date in or after 1900")]
    NationalIdBirthDate,
    /// The check character of the national id does not match ISO 7064 MOD 11-2.
    #[error("national id check character does not match its ISO 7064 MOD 11-2 checksum")]
    NationalIdChecksum,
    /// The bank card number does not have 12 to 19 digits.
    #[error("bank card number must have 12 to 19 digits, got {found}")]
    BankCardLength {
        /// Number of digits found (spaces and dashes not counted).
        found: usize,
    },
    /// The bank card number contains something other than digits, spaces and dashes.
    #[error("bank card number may contain only digits, spaces and dashes")]
    BankCardCharacters,
    /// The bank card number fails the Luhn check.
    #[error("bank card number fails its Luhn checksum")]
    BankCardChecksum,
    /// The mobile number does not have 11 digits once the `+86` prefix is removed.
    #[error("mobile number must have 11 digits after an optional +86 prefix, got {found}")]
    PhoneLength {
        /// Number of digits found (prefix, spaces and dashes not counted).
        found: usize,
    },
    /// The mobile number contains something other than digits, spaces, dashes and a
    /// leading `+86`.
    #[error("mobile number may contain only digits, spaces, dashes and a leading +86")]
    PhoneCharacters,
    /// The mobile number does not start with `13`–`19`.
    #[error("mobile number must start with 13 to 19")]
    PhonePrefix,
}

/// Masks the middle of `text`, keeping its first `keep_start` and last `keep_end`
/// characters and replacing every other character with `*`. The result has as many
/// characters as `text`.
///
/// Works on characters, not bytes, and never panics. If `text` has no more than
/// `keep_start + keep_end` characters, keeping them would reveal it all, so every
/// character is masked instead.
pub fn mask_middle(text: &str, keep_start: usize, keep_end: usize) -> String {
    let count = text.chars().count();
    let kept = keep_start.saturating_add(keep_end);
    if count <= kept {
        return "*".repeat(count);
    }
    let masked_end = count - keep_end; // count > kept >= keep_end
    text.chars()
        .enumerate()
        .map(|(index, c)| {
            if index < keep_start || index >= masked_end {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// Removes spaces and dashes, the separators people type inside card and phone numbers.
fn strip_separators(text: &str) -> String {
    text.chars().filter(|c| *c != ' ' && *c != '-').collect()
}

/// Deserializes a string through `parse`, refusing anything else without echoing it.
///
/// Self-describing human-readable formats (JSON and the like) are driven through
/// `deserialize_any`, so a non-string reaches [`ParseVisitor`] and is refused with a
/// message that omits it; `deserialize_str` would let serde_json report
/// ``invalid type: integer `6222021234567890128` `` for a card number sent as a number.
/// Compact binary formats, which may not be self-describing, use `deserialize_str`.
fn deserialize_parsed<'de, D, T>(deserializer: D, visitor: ParseVisitor<T>) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    if deserializer.is_human_readable() {
        deserializer.deserialize_any(visitor)
    } else {
        deserializer.deserialize_str(visitor)
    }
}

/// Serde visitor that accepts only strings and builds the value through its parse.
/// Non-string input is refused without echoing it (serde's default messages would
/// print a number such as a card number sent as a JSON integer).
struct ParseVisitor<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, PiiError>,
}

impl<T> ParseVisitor<T> {
    fn not_a_string<E: de::Error>(&self) -> Result<T, E> {
        Err(E::invalid_type(
            Unexpected::Other("a non-string value"),
            self,
        ))
    }
}

impl<'de, T> Visitor<'de> for ParseVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        (self.parse)(value).map_err(E::custom)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
        self.not_a_string()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<T, E> {
        self.not_a_string()
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<T, E> {
        self.not_a_string()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<T, E> {
        self.not_a_string()
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<T, E> {
        self.not_a_string()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<T, E> {
        self.not_a_string()
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<T, E> {
        self.not_a_string()
    }
}

// ---------------------------------------------------------------------------------------
// National id
// ---------------------------------------------------------------------------------------

/// A PRC 18-character resident identity number, validated (province, birth date,
/// ISO 7064 MOD 11-2 checksum) and normalised (check character `X` in upper case).
///
/// `Debug` and `Display` show only [`NationalId::masked`]; `Serialize` writes the clear
/// value for the command service to encrypt; `Deserialize` goes through
/// [`NationalId::parse`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NationalId {
    value: String,
    birth_date: NaiveDate,
    gender: Gender,
}

impl NationalId {
    /// Number of characters in a national id.
    const LEN: usize = 18;
    /// ISO 7064 MOD 11-2 weights of the first 17 digits.
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    /// Check character for each remainder modulo 11.
    const CHECK_CHARS: [u8; 11] = *b"10X98765432";

    /// Parses a national id: surrounding whitespace is trimmed; the value must be 17
    /// digits and a check character (a digit, or `X`/`x`, stored as `X`), start with a
    /// valid province code, carry a real birth date `YYYYMMDD` in or after 1900 in
    /// digits 7–14, and pass the ISO 7064 MOD 11-2 checksum. Checks run in that order.
    pub fn parse(text: &str) -> Result<Self, PiiError> {
        let text = text.trim();
        let found = text.chars().count();
        if found != Self::LEN {
            return Err(PiiError::NationalIdLength { found });
        }
        // 18 characters; all must be ASCII from here on, so the byte view is the char view.
        let mut digits = [0_u32; 17];
        let mut check = b'0';
        for (index, byte) in text.bytes().enumerate() {
            match (index, byte) {
                (0..=16, b'0'..=b'9') => {
                    if let Some(slot) = digits.get_mut(index) {
                        *slot = u32::from(byte - b'0');
                    }
                }
                (17, b'0'..=b'9' | b'X') => check = byte,
                (17, b'x') => check = b'X',
                _ => return Err(PiiError::NationalIdCharacters),
            }
        }

        let number = |range: std::ops::Range<usize>| {
            digits
                .get(range)
                .map_or(0, |ds| ds.iter().fold(0, |acc, d| acc * 10 + d))
        };

        if !is_province_code(number(0..2)) {
            return Err(PiiError::NationalIdRegion);
        }

        let year = number(6..10);
        let birth_date = i32::try_from(year)
            .ok()
            .filter(|year| *year >= 1900)
            .and_then(|year| NaiveDate::from_ymd_opt(year, number(10..12), number(12..14)))
            .ok_or(PiiError::NationalIdBirthDate)?;

        let sum: u32 = digits
            .iter()
            .zip(Self::WEIGHTS)
            .map(|(digit, weight)| digit * weight)
            .sum();
        let expected = Self::CHECK_CHARS.get((sum % 11) as usize).copied();
        if expected != Some(check) {
            return Err(PiiError::NationalIdChecksum);
        }

        let gender = if number(16..17) % 2 == 1 {
            Gender::Male
        } else {
            Gender::Female
        };
        let mut value = String::with_capacity(Self::LEN);
        value.push_str(text.get(..17).unwrap_or_default());
        value.push(char::from(check));
        Ok(NationalId {
            value,
            birth_date,
            gender,
        })
    }

    /// The birth date encoded in digits 7–14.
    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    /// The gender encoded in the 17th digit (odd = male, even = female).
    pub fn gender(&self) -> Gender {
        self.gender
    }

    /// The administrative region code: the first 6 digits.
    pub fn region_code(&self) -> &str {
        self.value.get(..6).unwrap_or_default()
    }

    /// The clear value. Only for encryption and blind indexing; never log it.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The masked form: first 3 characters, 11 `*`, last 4, e.g. `110***********1234`.
    pub fn masked(&self) -> String {
        mask_middle(&self.value, 3, 4)
    }
}

/// Whether the first two digits of a national id name a province-level division
/// (including Taiwan 71, Hong Kong 81, Macao 82 and 91 for residents abroad).
fn is_province_code(code: u32) -> bool {
    matches!(code, 11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81 | 82 | 91)
}

impl fmt::Debug for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NationalId").field(&self.masked()).finish()
    }
}

impl fmt::Display for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.masked())
    }
}

impl Serialize for NationalId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.value)
    }
}

impl<'de> Deserialize<'de> for NationalId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_parsed(
            deserializer,
            ParseVisitor {
                expecting: "a national id string",
                parse: NationalId::parse,
            },
        )
    }
}

impl JsonSchema for NationalId {
    fn schema_name() -> Cow<'static, str> {
        "NationalId".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "PRC 18-character resident identity number: 17 digits and an ISO 7064 MOD 11-2 check character (digit or 'X'), starting with a province code and carrying a birth date YYYYMMDD. Sensitive personal data: encrypted at rest, never returned or logged in clear (only masked, e.g. \"110***********1234\"). Input is trimmed and a lower-case 'x' is accepted.",
            "pattern": "^[1-9][0-9]{5}(19|[2-9][0-9])[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]$",
            "minLength": 18,
            "maxLength": 18,
            "writeOnly": true
        })
    }
}

// ---------------------------------------------------------------------------------------
// Bank card
// ---------------------------------------------------------------------------------------

/// A bank card number: 12 to 19 digits with a valid Luhn check digit, stored as digits
/// only.
///
/// `Debug` and `Display` show only [`BankCard::masked`]; `Serialize` writes the clear
/// value for the command service to encrypt; `Deserialize` goes through
/// [`BankCard::parse`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BankCard(String);

impl BankCard {
    /// Parses a bank card number: surrounding whitespace is trimmed and spaces and dashes
    /// are ignored; the rest must be 12 to 19 digits passing the Luhn checksum.
    pub fn parse(text: &str) -> Result<Self, PiiError> {
        let digits = strip_separators(text.trim());
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PiiError::BankCardCharacters);
        }
        let found = digits.len();
        if !(12..=19).contains(&found) {
            return Err(PiiError::BankCardLength { found });
        }
        if !luhn_valid(&digits) {
            return Err(PiiError::BankCardChecksum);
        }
        Ok(BankCard(digits))
    }

    /// The clear number (digits only). Only for encryption and blind indexing; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The masked form: first 6 digits, `*`s, last 4, as long as the number, e.g.
    /// `622202*********0128`.
    pub fn masked(&self) -> String {
        mask_middle(&self.0, 6, 4)
    }
}

/// Luhn (mod 10) check over ASCII digits, rightmost digit being the check digit.
fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(index, byte)| {
            let digit = u32::from(byte.wrapping_sub(b'0'));
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum % 10 == 0
}

impl fmt::Debug for BankCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BankCard").field(&self.masked()).finish()
    }
}

impl fmt::Display for BankCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.masked())
    }
}

impl Serialize for BankCard {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BankCard {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_parsed(
            deserializer,
            ParseVisitor {
                expecting: "a bank card number string",
                parse: BankCard::parse,
            },
        )
    }
}

impl JsonSchema for BankCard {
    fn schema_name() -> Cow<'static, str> {
        "BankCard".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "Bank card number: 12 to 19 digits with a valid Luhn check digit. Sensitive personal data: encrypted at rest, never returned or logged in clear (only masked, e.g. \"622202*********0128\"). Input may contain spaces or dashes, which are removed.",
            "pattern": "^[0-9][0-9 -]{10,40}[0-9]$",
            "writeOnly": true
        })
    }
}

// ---------------------------------------------------------------------------------------
// Phone number
// ---------------------------------------------------------------------------------------

/// A mainland China mobile number, stored normalised as 11 digits matching
/// `^1[3-9][0-9]{9}$`.
///
/// `Debug` and `Display` show only [`PhoneNumber::masked`]; `Serialize` writes the clear
/// value for the command service to encrypt; `Deserialize` goes through
/// [`PhoneNumber::parse`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Number of digits in a mainland mobile number.
    const LEN: usize = 11;

    /// Parses a mobile number: surrounding whitespace is trimmed, spaces and dashes are
    /// ignored, and a leading `+86` (or `86` in front of 11 digits) is removed; the rest
    /// must be 11 digits starting `13`–`19`.
    pub fn parse(text: &str) -> Result<Self, PiiError> {
        let compact = strip_separators(text.trim());
        let national = match compact.strip_prefix("+86") {
            Some(rest) => rest,
            None if compact.len() == Self::LEN + 2 => {
                compact.strip_prefix("86").unwrap_or(&compact)
            }
            None => &compact,
        };
        if !national.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PiiError::PhoneCharacters);
        }
        let found = national.len();
        if found != Self::LEN {
            return Err(PiiError::PhoneLength { found });
        }
        if !matches!(national.as_bytes(), [b'1', b'3'..=b'9', ..]) {
            return Err(PiiError::PhonePrefix);
        }
        Ok(PhoneNumber(national.to_owned()))
    }

    /// The clear number (11 digits, no prefix). Only for encryption and blind indexing;
    /// never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The masked form: first 3 digits, 4 `*`, last 4, e.g. `138****5678`.
    pub fn masked(&self) -> String {
        mask_middle(&self.0, 3, 4)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PhoneNumber").field(&self.masked()).finish()
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.masked())
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_parsed(
            deserializer,
            ParseVisitor {
                expecting: "a mobile number string",
                parse: PhoneNumber::parse,
            },
        )
    }
}

impl JsonSchema for PhoneNumber {
    fn schema_name() -> Cow<'static, str> {
        "PhoneNumber".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "Mainland China mobile number: 11 digits starting 13 to 19, without country code. Sensitive personal data: encrypted at rest, never returned or logged in clear (only masked, e.g. \"138****5678\"). Input may carry a +86 prefix, spaces or dashes, which are removed.",
            "pattern": "^(\\+?86)?[ -]*1[3-9][0-9 -]{9,20}$",
            "writeOnly": true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_middle_keeps_ends_and_masks_short_inputs_entirely() {
        let cases = [
            ("13812345678", 3, 4, "138****5678"),
            ("abcdefg", 3, 4, "*******"),
            ("abc", 3, 4, "***"),
            ("", 3, 4, ""),
            ("身份证号码很长的文本", 2, 2, "身份******文本"),
            ("abcdef", usize::MAX, usize::MAX, "******"),
        ];
        for (text, start, end, expected) in cases {
            assert_eq!(
                mask_middle(text, start, end),
                expected,
                "mask_middle({text:?}, {start}, {end})"
            );
        }
    }

    #[test]
    fn luhn_accepts_known_good_numbers() {
        assert!(luhn_valid("4111111111111111"));
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
    }
}
