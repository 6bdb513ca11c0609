//! The database schema: sqlx migrations (run on start) and the schema operations a
//! rebuild needs (cloning the live tables into a fresh schema).
//!
//! The migrations' own bookkeeping table (`_sqlx_migrations`) lives in schema
//! `projection`, not in `public`, so other components of the same database (the query
//! API) can keep their own migrations without the two histories colliding.

use sqlx::{Executor, PgPool, Postgres, Transaction};

use crate::ProjectionError;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The schema holding the live read-model tables.
pub(crate) const LIVE_SCHEMA: &str = "read_model";

/// Creates or upgrades the `projection` and `read_model` schemas. Idempotent; safe to
/// run from several processes at once (the migrator takes an advisory lock).
pub async fn migrate(pool: &PgPool) -> Result<(), ProjectionError> {
    let mut conn = pool.acquire().await?;
    conn.execute("CREATE SCHEMA IF NOT EXISTS projection")
        .await?;
    conn.execute("SET search_path TO projection").await?;
    // `run_direct` on the connection itself: `run` (generic over `Acquire`) makes the
    // future not `Send` for every lifetime, so it could not be spawned.
    let outcome = MIGRATOR.run_direct(&mut *conn).await;
    let reset = conn.execute("RESET search_path").await;
    match (outcome, reset) {
        (Ok(()), Ok(_)) => Ok(()),
        (Err(error), _) => {
            // Do not hand a connection with a changed search path back to the pool.
            let _ = conn.detach();
            Err(error.into())
        }
        (Ok(()), Err(error)) => {
            let _ = conn.detach();
            Err(error.into())
        }
    }
}

/// `"name"`: a quoted SQL identifier (our schema names are generated, but quote anyway).
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates `schema` with empty copies of the live tables in `tables` (columns, defaults,
/// constraints, indexes, comments), in the caller's transaction.
pub(crate) async fn clone_tables(
    tx: &mut Transaction<'_, Postgres>,
    schema: &str,
    tables: &[&str],
) -> Result<(), ProjectionError> {
    tx.execute(format!("CREATE SCHEMA {}", ident(schema)).as_str())
        .await?;
    for table in tables {
        tx.execute(
            format!(
                "CREATE TABLE {schema}.{table} (LIKE {live}.{table} INCLUDING ALL)",
                schema = ident(schema),
                table = ident(table),
                live = ident(LIVE_SCHEMA),
            )
            .as_str(),
        )
        .await?;
        let comment: Option<String> = sqlx::query_scalar(
            "SELECT obj_description(format('%I.%I', $1::text, $2::text)::regclass, 'pg_class')",
        )
        .bind(LIVE_SCHEMA)
        .bind(table)
        .fetch_one(&mut **tx)
        .await?;
        if let Some(comment) = comment {
            tx.execute(
                format!(
                    "COMMENT ON TABLE {}.{} IS '{}'",
                    ident(schema),
                    ident(table),
                    comment.replace('\'', "''")
                )
                .as_str(),
            )
            .await?;
        }
    }
    Ok(())
}
