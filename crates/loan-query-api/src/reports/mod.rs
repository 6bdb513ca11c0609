//! The reports, one typed function per report over the read models.
//!
//! Each function takes the read models in PostgreSQL or in the embedded SQLite file
//! ([`crate::ReadModelsRef`]) and returns the same rows from either, ready to serialise
//! as JSON or CSV. Over PostgreSQL a report is one SQL statement (the customer 360 is a
//! few, read in one snapshot) that aggregates in the database; over SQLite the exact
//! rows are read in one transaction and aggregated in Rust with `Decimal`, with the
//! roundings and orderings of the SQL ([`exact`]). The delinquency reports share one
//! definition of a loan's position *as of* a report date ([`as_of`], in SQL and mirrored
//! in Rust), so the portfolio, PAR, roll rates, collection queue and snapshots never
//! disagree about a loan.

pub mod as_of;
pub mod collection_cases;
pub mod customer_360;
pub mod delinquency;
pub mod exact;
pub mod pipeline;
pub mod roll_rate;
pub mod segmentation;
pub mod snapshots;
mod stored;
pub mod vintage;

use serde::Serialize;
use utoipa::ToSchema;

use crate::QueryError;

/// The SQL spelling of the two read-model databases, for the statements both run (the
/// PostgreSQL text stays exactly as written for PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    /// A read-model table: `read_model.<name>` in PostgreSQL, `<name>` in SQLite.
    pub(crate) fn table(self, name: &str) -> String {
        match self {
            Dialect::Postgres => format!("read_model.{name}"),
            Dialect::Sqlite => name.to_string(),
        }
    }

    /// `<expression>::text` in PostgreSQL; the expression itself in SQLite (TEXT already).
    pub(crate) fn text(self, expression: &str) -> String {
        match self {
            Dialect::Postgres => format!("{expression}::text"),
            Dialect::Sqlite => expression.to_string(),
        }
    }

    /// Bind placeholder `n` (1-based): `$n` in PostgreSQL, `?n` in SQLite.
    pub(crate) fn param(self, n: u32) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite => format!("?{n}"),
        }
    }
}

/// Rows per page when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 100;
/// Most rows one page may hold; a larger `limit` is refused, not silently cut.
pub const MAX_LIMIT: u32 = 1000;

/// Which rows of a report to return: `offset` rows are skipped, at most `limit` returned,
/// in the report's documented order (which always ends with a unique key, so pages are
/// stable while the data does not change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub offset: u64,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

impl PageRequest {
    /// Checks the bounds: `1 ≤ limit ≤ MAX_LIMIT`, `offset ≤ i64::MAX`.
    pub fn new(limit: u32, offset: u64) -> Result<Self, QueryError> {
        if limit == 0 || limit > MAX_LIMIT {
            return Err(QueryError::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}, got {limit}"),
            ));
        }
        if i64::try_from(offset).is_err() {
            return Err(QueryError::invalid("offset", "is too large"));
        }
        Ok(PageRequest { limit, offset })
    }

    /// Everything in one page of [`MAX_LIMIT`] rows (tests, small aggregates).
    pub fn all() -> Self {
        PageRequest {
            limit: MAX_LIMIT,
            offset: 0,
        }
    }

    /// `LIMIT` bind value: one row more than asked, to know whether a next page exists.
    pub(crate) fn sql_limit(self) -> i64 {
        i64::from(self.limit) + 1
    }

    pub(crate) fn sql_offset(self) -> i64 {
        i64::try_from(self.offset).unwrap_or(i64::MAX)
    }

    /// The page of `rows` (the whole report, in its order) computed in memory.
    pub(crate) fn slice<T>(self, rows: Vec<T>) -> Page<T> {
        let offset = usize::try_from(self.offset).unwrap_or(usize::MAX);
        let take = usize::try_from(self.sql_limit()).unwrap_or(usize::MAX);
        self.page(rows.into_iter().skip(offset).take(take).collect())
    }

    /// Turns the `limit + 1` rows fetched into a page.
    pub(crate) fn page<T>(self, mut rows: Vec<T>) -> Page<T> {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let next_offset = if rows.len() > limit {
            rows.truncate(limit);
            Some(self.offset + u64::from(self.limit))
        } else {
            None
        };
        Page {
            items: rows,
            limit: self.limit,
            offset: self.offset,
            next_offset,
        }
    }
}

/// One page of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub limit: u32,
    pub offset: u64,
    /// The `offset` of the next page; absent on the last page.
    pub next_offset: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_knows_whether_another_follows() {
        let request = PageRequest::new(2, 4).unwrap();
        let full = request.page(vec![1, 2, 3]);
        assert_eq!(full.items, vec![1, 2]);
        assert_eq!(full.next_offset, Some(6));
        let last = request.page(vec![1, 2]);
        assert_eq!(last.items, vec![1, 2]);
        assert_eq!(last.next_offset, None);
    }

    #[test]
    fn a_page_of_rows_in_memory_is_the_same_as_one_fetched() {
        let rows: Vec<u32> = (0..10).collect();
        let middle = PageRequest::new(3, 3).unwrap().slice(rows.clone());
        assert_eq!((middle.items, middle.next_offset), (vec![3, 4, 5], Some(6)));
        let last = PageRequest::new(3, 9).unwrap().slice(rows.clone());
        assert_eq!((last.items, last.next_offset), (vec![9], None));
        let beyond = PageRequest::new(3, 12).unwrap().slice(rows);
        assert_eq!((beyond.items, beyond.next_offset), (vec![], None));
    }

    #[test]
    fn limits_out_of_bounds_are_refused_naming_the_parameter() {
        for limit in [0, MAX_LIMIT + 1] {
            match PageRequest::new(limit, 0) {
                Err(QueryError::InvalidParameter { parameter, .. }) => {
                    assert_eq!(parameter, "limit")
                }
                other => panic!("limit {limit} gave {other:?}"),
            }
        }
        assert!(PageRequest::new(MAX_LIMIT, 0).is_ok());
    }
}

/// Serialisation of money (2 dp) and ratios (4 dp) as fixed-scale decimal strings.
/// PostgreSQL's `NUMERIC(20,2)` zero arrives without its scale, so `0` would otherwise be
/// written where `0.00` is meant; every money and ratio field goes through here.
pub(crate) mod fixed {
    use rust_decimal::Decimal;
    use serde::Serializer;

    fn write<S: Serializer>(value: &Decimal, scale: u32, serializer: S) -> Result<S::Ok, S::Error> {
        let mut value = *value;
        value.rescale(scale);
        serializer.collect_str(&value)
    }

    pub(crate) fn money<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        write(value, 2, serializer)
    }

    pub(crate) fn ratio<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        write(value, crate::RATIO_SCALE, serializer)
    }

    pub(crate) fn money_opt<S: Serializer>(
        value: &Option<Decimal>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => write(value, 2, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn ratio_opt<S: Serializer>(
        value: &Option<Decimal>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => write(value, crate::RATIO_SCALE, serializer),
            None => serializer.serialize_none(),
        }
    }
}
