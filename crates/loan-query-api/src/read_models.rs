//! Where the reports read from: the read models in PostgreSQL (schema `read_model`, the
//! servers' deployment) or in one SQLite file (the embedded mode: the same tables with
//! uuids, dates and exact decimals stored as TEXT, see
//! `crates/loan-projection/migrations-sqlite`).
//!
//! Every report takes anything that turns into a [`ReadModelsRef`] — a `&PgPool`, a
//! `&SqlitePool` or a `&ReadModels` — and gives the same result types and the same
//! figures from either. Over PostgreSQL a report is one SQL statement aggregating in the
//! database; over SQLite the rows are fetched exactly (decimals decoded from their text)
//! and aggregated in Rust with `Decimal` ([`crate::reports::exact`]).

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

use crate::QueryError;

/// The read-model database the reports and the HTTP API read from.
#[derive(Debug, Clone)]
pub enum ReadModels {
    /// Schema `read_model` of a PostgreSQL database.
    Postgres(PgPool),
    /// The embedded mode's SQLite file.
    Sqlite(SqlitePool),
}

/// A borrowed [`ReadModels`], what the report functions take.
#[derive(Debug, Clone, Copy)]
pub enum ReadModelsRef<'a> {
    Postgres(&'a PgPool),
    Sqlite(&'a SqlitePool),
}

impl ReadModels {
    /// Opens the read models at `url`; its scheme decides the database:
    ///
    /// * `postgres://…` or `postgresql://…` — PostgreSQL (schema `read_model`);
    /// * `sqlite://path/to/read-models.db` (relative), `sqlite:///abs/path.db` — an
    ///   existing SQLite file holding the embedded read models (it is not created).
    ///
    /// `max_connections` bounds the pool.
    pub async fn connect(url: &str, max_connections: u32) -> Result<ReadModels, QueryError> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme);
        match scheme {
            Some("postgres" | "postgresql") => {
                let options = PgConnectOptions::from_str(url)?;
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .connect_with(options)
                    .await?;
                Ok(ReadModels::Postgres(pool))
            }
            Some("sqlite") => {
                let options = SqliteConnectOptions::from_str(url)?.create_if_missing(false);
                Ok(ReadModels::Sqlite(
                    Self::sqlite_pool(options, max_connections).await?,
                ))
            }
            _ => Err(QueryError::invalid(
                "database_url",
                "must start with postgres://, postgresql:// or sqlite:// (e.g. \
                 sqlite://read-models.db)",
            )),
        }
    }

    /// Opens the embedded read models in the existing SQLite file at `path`.
    pub async fn open_sqlite(path: impl AsRef<std::path::Path>) -> Result<ReadModels, QueryError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false);
        Ok(ReadModels::Sqlite(Self::sqlite_pool(options, 4).await?))
    }

    async fn sqlite_pool(
        options: SqliteConnectOptions,
        max_connections: u32,
    ) -> Result<SqlitePool, QueryError> {
        let file = options.get_filename();
        if file != std::path::Path::new(":memory:") && !file.exists() {
            return Err(QueryError::invalid(
                "database_url",
                format!(
                    "no SQLite read-model file at {} (the projector creates it)",
                    file.display()
                ),
            ));
        }
        Ok(SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options)
            .await?)
    }

    /// `postgresql` or `sqlite`.
    pub fn database_kind(&self) -> &'static str {
        match self {
            ReadModels::Postgres(_) => "postgresql",
            ReadModels::Sqlite(_) => "sqlite",
        }
    }

    /// The borrowed form the report functions take.
    pub fn by_ref(&self) -> ReadModelsRef<'_> {
        self.into()
    }
}

impl From<PgPool> for ReadModels {
    fn from(pool: PgPool) -> Self {
        ReadModels::Postgres(pool)
    }
}

impl From<SqlitePool> for ReadModels {
    fn from(pool: SqlitePool) -> Self {
        ReadModels::Sqlite(pool)
    }
}

impl<'a> From<&'a ReadModels> for ReadModelsRef<'a> {
    fn from(read_models: &'a ReadModels) -> Self {
        match read_models {
            ReadModels::Postgres(pool) => ReadModelsRef::Postgres(pool),
            ReadModels::Sqlite(pool) => ReadModelsRef::Sqlite(pool),
        }
    }
}

impl<'a> From<&'a PgPool> for ReadModelsRef<'a> {
    fn from(pool: &'a PgPool) -> Self {
        ReadModelsRef::Postgres(pool)
    }
}

impl<'a> From<&'a SqlitePool> for ReadModelsRef<'a> {
    fn from(pool: &'a SqlitePool) -> Self {
        ReadModelsRef::Sqlite(pool)
    }
}
