//! Read-model rows as computed, before any database sees them: one value per column of
//! a table, typed the way the read model types them (money, rate, date, ...).
//!
//! The projection computes its rows once ([`TableRows`], [`Change`]) from the views; the
//! PostgreSQL writer (`postgres`) binds each column as one array (`UNNEST`), the SQLite
//! writer (`embedded::sqlite`) binds the same values as text and integers following the
//! conventions of `migrations-sqlite/0001_read_model.sql`. Both backends therefore hold
//! the values of ONE computation, and [`Column::sqlite_value`] is the single place that
//! says how each type is spelled in SQLite.

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeDelta, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;
use uuid::Uuid;

/// One column's values, one per row; `None` is SQL NULL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Column {
    Uuid(Vec<Option<Uuid>>),
    Text(Vec<Option<String>>),
    Date(Vec<Option<NaiveDate>>),
    Timestamp(Vec<Option<DateTime<Utc>>>),
    /// `numeric(20,2)`: an amount of money, stored at two decimals.
    Money(Vec<Option<Decimal>>),
    /// `numeric`: a rate, stored exactly as computed.
    Decimal(Vec<Option<Decimal>>),
    Int4(Vec<Option<i32>>),
    Int8(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Json(Vec<Option<Value>>),
}

/// A value as SQLite stores it (STRICT tables: `text` or `integer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SqliteValue {
    Text(Option<String>),
    Integer(Option<i64>),
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::Uuid(v) => v.len(),
            Column::Text(v) => v.len(),
            Column::Date(v) => v.len(),
            Column::Timestamp(v) => v.len(),
            Column::Money(v) | Column::Decimal(v) => v.len(),
            Column::Int4(v) => v.len(),
            Column::Int8(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Json(v) => v.len(),
        }
    }

    /// The PostgreSQL element type of the column's array parameter.
    pub(crate) fn pg_type(&self) -> &'static str {
        match self {
            Column::Uuid(_) => "uuid",
            Column::Text(_) => "text",
            Column::Date(_) => "date",
            Column::Timestamp(_) => "timestamptz",
            Column::Money(_) | Column::Decimal(_) => "numeric",
            Column::Int4(_) => "int4",
            Column::Int8(_) => "int8",
            Column::Bool(_) => "bool",
            Column::Json(_) => "jsonb",
        }
    }

    /// Row `row` of the column as SQLite stores it (`None` past the end: NULL).
    pub(crate) fn sqlite_value(&self, row: usize) -> SqliteValue {
        fn text<T>(values: &[Option<T>], row: usize, f: impl Fn(&T) -> String) -> SqliteValue {
            SqliteValue::Text(values.get(row).and_then(Option::as_ref).map(f))
        }
        fn integer<T: Copy>(values: &[Option<T>], row: usize, f: impl Fn(T) -> i64) -> SqliteValue {
            SqliteValue::Integer(values.get(row).copied().flatten().map(f))
        }
        match self {
            Column::Uuid(v) => text(v, row, |id| uuid_text(*id)),
            Column::Text(v) => text(v, row, String::clone),
            Column::Date(v) => text(v, row, |d| date_text(*d)),
            Column::Timestamp(v) => text(v, row, |t| timestamp_text(*t)),
            Column::Money(v) => text(v, row, |m| money_text(*m)),
            Column::Decimal(v) => text(v, row, Decimal::to_string),
            Column::Int4(v) => integer(v, row, i64::from),
            Column::Int8(v) => integer(v, row, |n| n),
            Column::Bool(v) => integer(v, row, i64::from),
            Column::Json(v) => text(v, row, Value::to_string),
        }
    }
}

/// A uuid as SQLite stores it: hyphenated, lower case.
pub(crate) fn uuid_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

/// A date as SQLite stores it: `YYYY-MM-DD`.
pub(crate) fn date_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// A timestamp as SQLite stores it: RFC 3339 in UTC with exactly six fractional digits
/// (fixed width, so text order is time order), cut to the microsecond the way a
/// PostgreSQL `timestamptz` parameter is (microseconds since 2000-01-01, truncated
/// toward that epoch).
pub(crate) fn timestamp_text(at: DateTime<Utc>) -> String {
    let epoch = NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc());
    let cut = epoch.and_then(|epoch| {
        let micros = (at - epoch).num_microseconds()?;
        epoch.checked_add_signed(TimeDelta::microseconds(micros))
    });
    cut.unwrap_or(at)
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// An amount as SQLite stores it: what a PostgreSQL `numeric(20,2)` column holds for the
/// same input — rounded to two decimals half away from zero, always two decimals
/// (`1234.5` → `1234.50`), zero without a sign.
pub(crate) fn money_text(amount: Decimal) -> String {
    let mut rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(2);
    if rounded.is_zero() {
        rounded.set_sign_positive(true);
    }
    rounded.to_string()
}

/// One value for [`Row`]: the column type follows from the variant.
enum Cell {
    Uuid(Option<Uuid>),
    Text(Option<String>),
    Date(Option<NaiveDate>),
    Timestamp(Option<DateTime<Utc>>),
    Money(Option<Decimal>),
    Decimal(Option<Decimal>),
    Int4(Option<i32>),
    Int8(Option<i64>),
    Bool(Option<bool>),
    Json(Option<Value>),
}

impl Cell {
    fn into_column(self) -> Column {
        match self {
            Cell::Uuid(v) => Column::Uuid(vec![v]),
            Cell::Text(v) => Column::Text(vec![v]),
            Cell::Date(v) => Column::Date(vec![v]),
            Cell::Timestamp(v) => Column::Timestamp(vec![v]),
            Cell::Money(v) => Column::Money(vec![v]),
            Cell::Decimal(v) => Column::Decimal(vec![v]),
            Cell::Int4(v) => Column::Int4(vec![v]),
            Cell::Int8(v) => Column::Int8(vec![v]),
            Cell::Bool(v) => Column::Bool(vec![v]),
            Cell::Json(v) => Column::Json(vec![v]),
        }
    }

    /// Appends to a column of the same type; false (nothing appended) otherwise.
    fn push_to(self, column: &mut Column) -> bool {
        match (column, self) {
            (Column::Uuid(c), Cell::Uuid(v)) => c.push(v),
            (Column::Text(c), Cell::Text(v)) => c.push(v),
            (Column::Date(c), Cell::Date(v)) => c.push(v),
            (Column::Timestamp(c), Cell::Timestamp(v)) => c.push(v),
            (Column::Money(c), Cell::Money(v)) => c.push(v),
            (Column::Decimal(c), Cell::Decimal(v)) => c.push(v),
            (Column::Int4(c), Cell::Int4(v)) => c.push(v),
            (Column::Int8(c), Cell::Int8(v)) => c.push(v),
            (Column::Bool(c), Cell::Bool(v)) => c.push(v),
            (Column::Json(c), Cell::Json(v)) => c.push(v),
            _ => return false,
        }
        true
    }
}

/// What a write does with a row whose key is already in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnConflict {
    /// Overwrite every listed non-key column (rows rewritten whole from a view).
    Update,
    /// Keep the row already there (history rows: idempotent appends).
    Ignore,
    /// No conflict is expected (rows whose old versions were deleted first).
    Fail,
}

/// Rows for one table, column by column, all written by one statement (or, on SQLite,
/// by as few statements as the bound-parameter limit allows).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TableRows {
    pub(crate) table: &'static str,
    pub(crate) key: &'static [&'static str],
    pub(crate) on_conflict: OnConflict,
    pub(crate) columns: Vec<(&'static str, Column)>,
    rows: usize,
    /// The first inconsistency of the row building (a bug, reported as an error by
    /// [`TableRows::check`] rather than written half-right).
    malformed: Option<String>,
}

impl TableRows {
    pub(crate) fn new(
        table: &'static str,
        key: &'static [&'static str],
        on_conflict: OnConflict,
    ) -> Self {
        TableRows {
            table,
            key,
            on_conflict,
            columns: Vec::new(),
            rows: 0,
            malformed: None,
        }
    }

    /// Starts a row: its values are given column by column, in the same order for
    /// every row.
    pub(crate) fn row(&mut self) -> Row<'_> {
        self.rows += 1;
        Row {
            rows: self,
            index: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub(crate) fn column_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.columns.iter().map(|(name, _)| *name)
    }

    /// Every row gave a value of the right type for every column.
    pub(crate) fn check(&self) -> Result<(), String> {
        if let Some(problem) = &self.malformed {
            return Err(format!("rows of {}: {problem}", self.table));
        }
        match self.columns.iter().find(|(_, c)| c.len() != self.rows) {
            Some((name, column)) => Err(format!(
                "rows of {}: column {name} has {} values for {} rows",
                self.table,
                column.len(),
                self.rows
            )),
            None => Ok(()),
        }
    }

    fn push(&mut self, index: usize, name: &'static str, cell: Cell) {
        if self.rows == 1 && index == self.columns.len() {
            self.columns.push((name, cell.into_column()));
            return;
        }
        let pushed = match self.columns.get_mut(index) {
            Some((column_name, column)) if *column_name == name => cell.push_to(column),
            _ => false,
        };
        if !pushed && self.malformed.is_none() {
            self.malformed = Some(format!(
                "row {} gives column {name} at place {index}, or a value of another type",
                self.rows
            ));
        }
    }
}

/// The values of one row, given in column order.
pub(crate) struct Row<'t> {
    rows: &'t mut TableRows,
    index: usize,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident, $variant:ident, $type:ty) => {
        $(#[$doc])*
        pub(crate) fn $name(&mut self, column: &'static str, value: impl Into<Option<$type>>) -> &mut Self {
            self.rows.push(self.index, column, Cell::$variant(value.into()));
            self.index += 1;
            self
        }
    };
}

impl Row<'_> {
    setter!(uuid, Uuid, Uuid);
    setter!(text, Text, String);
    setter!(date, Date, NaiveDate);
    setter!(timestamp, Timestamp, DateTime<Utc>);
    setter!(
        /// An amount of money (a `numeric(20,2)` column).
        money,
        Money,
        Decimal
    );
    setter!(
        /// A rate (a `numeric` column, exact).
        decimal,
        Decimal,
        Decimal
    );
    setter!(int4, Int4, i32);
    setter!(int8, Int8, i64);
    setter!(boolean, Bool, bool);
    setter!(json, Json, Value);
}

/// One write of a batch, in the order the batch performs them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    Write(TableRows),
    /// Delete the rows of `table` whose `key` column is one of `ids`.
    Delete {
        table: &'static str,
        key: &'static str,
        ids: Vec<Uuid>,
    },
}
