//! The SQLite side of the embedded read models: opening the file, its migrations, and the
//! statements a batch needs — computed rows ([`Change`]) as multi-row
//! `INSERT … ON CONFLICT … DO UPDATE`, quarantine, dead letters and the checkpoint.
//!
//! Values are spelled as `migrations-sqlite/0001_read_model.sql` says (uuid, date,
//! timestamp and decimals as text, booleans 0/1): [`crate::rows::Column::sqlite_value`]
//! is the one place that decides it. SQLite has no schemas: the live tables have their
//! plain names and a rebuild or replay writes into tables named `<prefix><table>`.

use std::collections::HashMap;
use std::path::Path;

use chrono::Utc;
use loan_domain::AggregateType;
use loan_store::AggregateRef;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use uuid::Uuid;

use crate::ProjectionError;
use crate::batch::{DeadLetter, QuarantineRow};
use crate::rows::{Change, OnConflict, SqliteValue, TableRows, timestamp_text, uuid_text};
use crate::runner::stale_tables;
use crate::view::to_i64;

/// SQLite's limit on bound parameters per statement (`SQLITE_MAX_VARIABLE_NUMBER`,
/// 32766 since SQLite 3.32; sqlx bundles a newer SQLite).
pub(crate) const MAX_PARAMETERS: usize = 32_766;

/// The migrations of the embedded read models, in order: (version, description, SQL).
///
/// Not sqlx's migrator: its bookkeeping table `_sqlx_migrations` would be shared with any
/// other component migrating the same SQLite file (SQLite has no schemas to keep them
/// apart, as PostgreSQL's `projection` schema does), and equal version numbers would
/// collide. These are recorded in `projection_migrations`, with their text, so a
/// migration changed after it was applied is refused.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "read_model",
        include_str!("../../migrations-sqlite/0001_read_model.sql"),
    ),
    (
        2,
        "checkpoint_generation",
        include_str!("../../migrations-sqlite/0002_checkpoint_generation.sql"),
    ),
    (
        3,
        "collection_cases",
        include_str!("../../migrations-sqlite/0003_collection_cases.sql"),
    ),
];

/// Opens (creating it if needed) the SQLite file of the embedded read models and runs
/// the migrations. WAL journal: readers (the reports) never block the projector.
pub async fn open_read_models(path: &Path) -> Result<SqlitePool, ProjectionError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // With WAL, NORMAL may lose the last transactions on power loss but never splits
        // one: rows and checkpoint are lost together, and replayed.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(std::time::Duration::from_secs(30));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    migrate(&pool).await?;
    Ok(pool)
}

/// Creates or upgrades the embedded read models (tables of
/// `migrations-sqlite/`). Idempotent; concurrent callers are serialised by SQLite's
/// write lock.
pub async fn migrate(pool: &SqlitePool) -> Result<(), ProjectionError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS projection_migrations (
             version     integer PRIMARY KEY,
             description text NOT NULL,
             sql         text NOT NULL,
             applied_at  text NOT NULL
         ) STRICT",
    )
    .execute(&mut *tx)
    .await?;
    let applied: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, sql FROM projection_migrations ORDER BY version")
            .fetch_all(&mut *tx)
            .await?;
    let applied: HashMap<i64, String> = applied.into_iter().collect();
    for (version, description, sql) in MIGRATIONS {
        match applied.get(version) {
            Some(text) if text == sql => continue,
            Some(_) => {
                return Err(ProjectionError::Config(format!(
                    "SQLite migration {version} ({description}) was changed after it was applied"
                )));
            }
            None => {}
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO projection_migrations (version, description, sql, applied_at) VALUES (?, ?, ?, ?)",
        )
        .bind(version)
        .bind(description)
        .bind(sql)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The current time as the bookkeeping tables store it.
pub(crate) fn now() -> String {
    timestamp_text(Utc::now())
}

/// `"name"`: a quoted SQLite identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

fn bind_value(query: Query<'_>, value: SqliteValue) -> Query<'_> {
    match value {
        SqliteValue::Text(text) => query.bind(text),
        SqliteValue::Integer(number) => query.bind(number),
    }
}

/// Performs a batch's changes on the tables `<prefix><table>`, in order, inside the
/// caller's transaction.
pub(crate) async fn write(
    conn: &mut SqliteConnection,
    prefix: &str,
    changes: Vec<Change>,
) -> Result<(), ProjectionError> {
    for change in changes {
        match change {
            Change::Write(rows) => write_rows(conn, prefix, &rows).await?,
            Change::Delete { table, key, ids } => {
                for chunk in ids.chunks(MAX_PARAMETERS) {
                    let marks = vec!["?"; chunk.len()].join(", ");
                    let sql = format!(
                        "DELETE FROM {} WHERE {key} IN ({marks})",
                        ident(&format!("{prefix}{table}"))
                    );
                    let mut query = sqlx::query(&sql).persistent(false);
                    for id in chunk {
                        query = query.bind(uuid_text(*id));
                    }
                    query.execute(&mut *conn).await?;
                }
            }
        }
    }
    Ok(())
}

/// Multi-row inserts of `rows`, as many rows per statement as the parameter limit allows.
async fn write_rows(
    conn: &mut SqliteConnection,
    prefix: &str,
    rows: &TableRows,
) -> Result<(), ProjectionError> {
    if rows.is_empty() {
        return Ok(());
    }
    rows.check().map_err(ProjectionError::Rows)?;
    let names: Vec<&str> = rows.column_names().collect();
    let per_statement = (MAX_PARAMETERS / names.len().max(1)).max(1);
    let conflict = match rows.on_conflict {
        OnConflict::Update => {
            let updates: Vec<String> = names
                .iter()
                .filter(|name| !rows.key.contains(name))
                .map(|name| format!("{name} = excluded.{name}"))
                .collect();
            format!(
                " ON CONFLICT ({}) DO UPDATE SET {}",
                rows.key.join(", "),
                updates.join(", ")
            )
        }
        OnConflict::Ignore => " ON CONFLICT DO NOTHING".to_owned(),
        OnConflict::Fail => String::new(),
    };
    let tuple = format!("({})", vec!["?"; names.len()].join(", "));
    let mut start = 0;
    while start < rows.len() {
        let end = (start + per_statement).min(rows.len());
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}{conflict}",
            ident(&format!("{prefix}{}", rows.table)),
            names.join(", "),
            vec![tuple.as_str(); end - start].join(", "),
        );
        // A full chunk has the same text every time (worth preparing once); a remainder
        // of another length would only crowd the statement cache.
        let mut query = sqlx::query(&sql).persistent(end - start == per_statement);
        for row in start..end {
            for (_, column) in &rows.columns {
                query = bind_value(query, column.sqlite_value(row));
            }
        }
        query.execute(&mut *conn).await?;
        start = end;
    }
    Ok(())
}

/// Records newly quarantined aggregates and flags their rows stale.
pub(crate) async fn write_quarantine(
    conn: &mut SqliteConnection,
    group: crate::Group,
    projection: &str,
    prefix: &str,
    rows: &[QuarantineRow],
) -> Result<(), ProjectionError> {
    let at = now();
    for row in rows {
        sqlx::query(
            "INSERT INTO quarantine (projection, aggregate_type, aggregate_id, position, event_type, reason, quarantined_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(projection)
        .bind(row.aggregate.aggregate_type.as_str())
        .bind(uuid_text(row.aggregate.id))
        .bind(to_i64(row.position))
        .bind(row.poison.event_type.as_deref())
        .bind(&row.poison.reason)
        .bind(&at)
        .execute(&mut *conn)
        .await?;
        for (table, key) in stale_tables(group, row.aggregate.aggregate_type) {
            sqlx::query(&format!(
                "UPDATE {} SET stale = 1, stale_reason = ? WHERE {key} = ?",
                ident(&format!("{prefix}{table}"))
            ))
            .bind(row.stale_reason())
            .bind(uuid_text(row.aggregate.id))
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Records commits a batch did not apply.
pub(crate) async fn write_dead_letters(
    conn: &mut SqliteConnection,
    projection: &str,
    rows: &[DeadLetter],
) -> Result<(), ProjectionError> {
    let at = now();
    for row in rows {
        sqlx::query(
            "INSERT INTO dead_letters (projection, position, subject, aggregate_type, aggregate_id, event_type, reason, payload, recorded_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(projection)
        .bind(to_i64(row.position))
        .bind(&row.subject)
        .bind(row.aggregate.map(|a| a.aggregate_type.as_str()))
        .bind(row.aggregate.map(|a| uuid_text(a.id)))
        .bind(row.event_type.as_deref())
        .bind(&row.reason)
        .bind(row.payload.to_string())
        .bind(&at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The checkpoint row of a projection (created at 0 if missing): last sequence and
/// generation.
pub(crate) async fn checkpoint(
    conn: &mut SqliteConnection,
    projection: &str,
) -> Result<(u64, i64), ProjectionError> {
    sqlx::query(
        "INSERT INTO checkpoints (projection, last_sequence, updated_at) VALUES (?, 0, ?)
         ON CONFLICT (projection) DO NOTHING",
    )
    .bind(projection)
    .bind(now())
    .execute(&mut *conn)
    .await?;
    let (last, generation): (i64, i64) =
        sqlx::query_as("SELECT last_sequence, generation FROM checkpoints WHERE projection = ?")
            .bind(projection)
            .fetch_one(&mut *conn)
            .await?;
    Ok((u64::try_from(last).unwrap_or(0), generation))
}

/// Moves the checkpoint after a batch; `error` (a quarantine) becomes the last error.
pub(crate) async fn advance_checkpoint(
    conn: &mut SqliteConnection,
    projection: &str,
    position: u64,
    error: Option<String>,
) -> Result<(), ProjectionError> {
    let at = now();
    sqlx::query(
        "UPDATE checkpoints SET last_sequence = ?, updated_at = ?,
             last_error = COALESCE(?, last_error),
             last_error_at = CASE WHEN ? IS NULL THEN last_error_at ELSE ? END
         WHERE projection = ?",
    )
    .bind(to_i64(position))
    .bind(&at)
    .bind(error.as_deref())
    .bind(error.as_deref())
    .bind(&at)
    .bind(projection)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a failed batch in the checkpoint row.
pub(crate) async fn record_error(
    pool: &SqlitePool,
    projection: &str,
    error: &str,
) -> Result<(), ProjectionError> {
    sqlx::query("UPDATE checkpoints SET last_error = ?, last_error_at = ? WHERE projection = ?")
        .bind(error)
        .bind(now())
        .bind(projection)
        .execute(pool)
        .await?;
    Ok(())
}

/// The aggregates a projection holds in quarantine, and since which position.
pub(crate) async fn quarantine(
    conn: &mut SqliteConnection,
    projection: &str,
) -> Result<HashMap<AggregateRef, u64>, ProjectionError> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, position FROM quarantine WHERE projection = ?",
    )
    .bind(projection)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(aggregate_type, id, position)| {
            let aggregate_type = AggregateType::parse(&aggregate_type)?;
            Some((
                AggregateRef {
                    aggregate_type,
                    id: Uuid::parse_str(&id).ok()?,
                },
                u64::try_from(position).unwrap_or(0),
            ))
        })
        .collect())
}
