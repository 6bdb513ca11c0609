//! Decoding of read-model columns as each database stores them, so one row type serves
//! both: PostgreSQL hands over native `uuid`, `numeric` and `jsonb`; the embedded SQLite
//! read models store them as TEXT (`crates/loan-projection/migrations-sqlite`: uuids
//! hyphenated, decimals as exact strings such as `1234.50`, JSON text).
//!
//! A row type names the wrapper in its derive (`#[sqlx(try_from = "Stored<Uuid>")]`,
//! `#[sqlx(try_from = "Money<Decimal>")]`): over PostgreSQL the wrapper decodes exactly
//! like the inner type; over SQLite it parses the text — decimals with
//! `Decimal::from_str`, never through a float. [`Money`] also applies what PostgreSQL's
//! `numeric(20,2)` column type does on write (half away from zero to two places), so a
//! value the SQLite writer stored with another scale reads as PostgreSQL would hold it.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Postgres, Sqlite, Type, ValueRef};
use uuid::Uuid;

use super::exact::money;

/// A column value of type `T` (exact `numeric`, `uuid` or `jsonb` in PostgreSQL, TEXT in
/// SQLite).
#[derive(Debug)]
pub(crate) struct Stored<T>(T);

/// A `numeric(20,2)` money column: in SQLite the exact decimal text, brought to two
/// places as PostgreSQL's column type would.
#[derive(Debug)]
pub(crate) struct Money<T>(T);

/// A type held as TEXT in the SQLite read models.
pub(crate) trait FromText: Sized {
    fn from_text(text: &str) -> Result<Self, BoxDynError>;
}

impl FromText for Decimal {
    fn from_text(text: &str) -> Result<Self, BoxDynError> {
        Decimal::from_str(text)
            .map_err(|error| format!("`{text}` is not an exact decimal: {error}").into())
    }
}

impl FromText for Uuid {
    fn from_text(text: &str) -> Result<Self, BoxDynError> {
        Uuid::parse_str(text).map_err(|error| format!("`{text}` is not a UUID: {error}").into())
    }
}

impl FromText for Value {
    /// JSON text with object members in `jsonb`'s order (shorter keys first, then by
    /// bytes), so a document serialises the same from either database.
    fn from_text(text: &str) -> Result<Self, BoxDynError> {
        let value: Value = serde_json::from_str(text)?;
        Ok(in_jsonb_order(value))
    }
}

/// `jsonb`'s order of object keys: shorter first, then by bytes.
fn jsonb_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// Rebuilds `value` with every object's members in PostgreSQL `jsonb` order.
fn in_jsonb_order(value: Value) -> Value {
    match value {
        Value::Object(members) => {
            let mut members: Vec<(String, Value)> = members.into_iter().collect();
            members.sort_by(|(a, _), (b, _)| jsonb_key_order(a, b));
            Value::Object(
                members
                    .into_iter()
                    .map(|(key, value)| (key, in_jsonb_order(value)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(in_jsonb_order).collect()),
        scalar => scalar,
    }
}

fn sqlite_text(value: SqliteValueRef<'_>) -> Result<&str, BoxDynError> {
    <&str as Decode<'_, Sqlite>>::decode(value)
}

fn sqlite_text_type() -> SqliteTypeInfo {
    <str as Type<Sqlite>>::type_info()
}

fn sqlite_is_text(ty: &SqliteTypeInfo) -> bool {
    <str as Type<Sqlite>>::compatible(ty)
}

// PostgreSQL: the wrappers decode as their inner type.

impl<T: Type<Postgres>> Type<Postgres> for Stored<T> {
    fn type_info() -> PgTypeInfo {
        T::type_info()
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        T::compatible(ty)
    }
}

impl<'r, T: Decode<'r, Postgres>> Decode<'r, Postgres> for Stored<T> {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        T::decode(value).map(Stored)
    }
}

impl<T: Type<Postgres>> Type<Postgres> for Money<T> {
    fn type_info() -> PgTypeInfo {
        T::type_info()
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        T::compatible(ty)
    }
}

impl<'r, T: Decode<'r, Postgres>> Decode<'r, Postgres> for Money<T> {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        T::decode(value).map(Money)
    }
}

// SQLite: the wrappers parse TEXT.

impl<T: FromText> Type<Sqlite> for Stored<T> {
    fn type_info() -> SqliteTypeInfo {
        sqlite_text_type()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        sqlite_is_text(ty)
    }
}

impl<'r, T: FromText> Decode<'r, Sqlite> for Stored<T> {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        T::from_text(sqlite_text(value)?).map(Stored)
    }
}

impl<T: FromText> Type<Sqlite> for Stored<Option<T>> {
    fn type_info() -> SqliteTypeInfo {
        sqlite_text_type()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        sqlite_is_text(ty)
    }
}

impl<'r, T: FromText> Decode<'r, Sqlite> for Stored<Option<T>> {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.is_null() {
            return Ok(Stored(None));
        }
        T::from_text(sqlite_text(value)?).map(|inner| Stored(Some(inner)))
    }
}

impl Type<Sqlite> for Money<Decimal> {
    fn type_info() -> SqliteTypeInfo {
        sqlite_text_type()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        sqlite_is_text(ty)
    }
}

impl<'r> Decode<'r, Sqlite> for Money<Decimal> {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        Decimal::from_text(sqlite_text(value)?).map(|amount| Money(money(amount)))
    }
}

impl Type<Sqlite> for Money<Option<Decimal>> {
    fn type_info() -> SqliteTypeInfo {
        sqlite_text_type()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        sqlite_is_text(ty)
    }
}

impl<'r> Decode<'r, Sqlite> for Money<Option<Decimal>> {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.is_null() {
            return Ok(Money(None));
        }
        Decimal::from_text(sqlite_text(value)?).map(|amount| Money(Some(money(amount))))
    }
}

// Into the row types' field types (the derive's `try_from`).

impl From<Stored<Uuid>> for Uuid {
    fn from(value: Stored<Uuid>) -> Self {
        value.0
    }
}

impl From<Stored<Decimal>> for Decimal {
    fn from(value: Stored<Decimal>) -> Self {
        value.0
    }
}

impl From<Stored<Option<Decimal>>> for Option<Decimal> {
    fn from(value: Stored<Option<Decimal>>) -> Self {
        value.0
    }
}

impl From<Stored<Value>> for Value {
    fn from(value: Stored<Value>) -> Self {
        value.0
    }
}

impl From<Money<Decimal>> for Decimal {
    fn from(value: Money<Decimal>) -> Self {
        value.0
    }
}

impl From<Money<Option<Decimal>>> for Option<Decimal> {
    fn from(value: Money<Option<Decimal>>) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_are_parsed_exactly_or_refused() {
        assert_eq!(
            Decimal::from_text("1234.50").unwrap().to_string(),
            "1234.50"
        );
        assert_eq!(
            Decimal::from_text("0.1").unwrap() + Decimal::from_text("0.2").unwrap(),
            Decimal::from_text("0.3").unwrap()
        );
        for bad in ["", "1,5", "abc", "1.2.3"] {
            assert!(Decimal::from_text(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_members_follow_jsonb_order() {
        let mut keys = vec!["rule", "a", "detail", "b", "ab"];
        keys.sort_by(|a, b| jsonb_key_order(a, b));
        assert_eq!(keys, vec!["a", "b", "ab", "rule", "detail"]);
        let value =
            Value::from_text(r#"{"rule": {"zz": 1, "b": 2}, "a": [{"yy": 0, "x": 1}]}"#).unwrap();
        assert_eq!(
            value,
            json!({"a": [{"x": 1, "yy": 0}], "rule": {"b": 2, "zz": 1}})
        );
    }
}
