//! The analysts' query API over the read models, in PostgreSQL or in the embedded
//! mode's SQLite file.
//!
//! The projectors (`loan-projection`) keep the read-model tables up to date from the
//! event log; this crate only reads them (the one exception is
//! [`reports::snapshots::write_snapshot`], which records a day's delinquency figures).
//!
//! * [`ReadModels`] — where the reports read from: a PostgreSQL pool (schema
//!   `read_model`) or a SQLite pool (the same tables, exact decimals stored as text);
//!   [`ReadModels::connect`] picks by URL scheme.
//! * [`reports`] — one typed function per report, the same rows from either database:
//!   over PostgreSQL a single SQL statement that does its aggregation in the database,
//!   over SQLite exact rows aggregated in Rust with `Decimal` and the SQL's roundings
//!   ([`reports::exact`]); delinquency is computed *as of* any report date from
//!   installment-level data (`settled_on`, allocations by value date), never read from
//!   the figures frozen at event time.
//! * [`http`] — the same reports over HTTP (axum): JSON or CSV, pagination, RFC 9457
//!   problem details for bad parameters, an OpenAPI document ([`http::openapi`]).
//! * [`analyst_access`] — schema `analyst` (views over the read models) and the
//!   read-only group role analysts log in through.
//!
//! Money is `NUMERIC` in PostgreSQL, exact decimal TEXT in SQLite, and
//! `rust_decimal::Decimal` here — never a float; ratios are
//! rounded half-up to four decimal places ([`RATIO_SCALE`]). The user guide is
//! `docs/query-api.md`.

pub mod analyst_access;
mod error;
pub mod http;
pub mod read_models;
pub mod reports;

pub use error::QueryError;
pub use http::{router, serve};
pub use read_models::{ReadModels, ReadModelsRef};

/// Decimal places of every ratio (PAR, overdue rate, conversion, roll rate, vintage
/// share), rounded half-up (`ROUND(numeric, 4)` in PostgreSQL rounds half away from zero,
/// which is half-up for the non-negative ratios reported here).
pub const RATIO_SCALE: u32 = 4;

// Dev-dependencies used only by the integration tests (tests/it), named here so the unit
// test target does not warn about them.
#[cfg(test)]
use {loan_projection as _, rust_decimal_macros as _, tower as _};

// Dev-dependency of the integration tests; the unit-test target links it too.
#[cfg(test)]
use loan_testkit as _;
