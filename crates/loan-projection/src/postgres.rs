//! Writing computed rows ([`Change`]) to PostgreSQL: one multi-row statement per table,
//! with the rows passed as one array per column (`UNNEST`), so the statement text is the
//! same for any batch size (prepared once) and a batch is one round trip per table.

use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Transaction};

use crate::ProjectionError;
use crate::rows::{Change, Column, OnConflict, TableRows};
use crate::schema::ident;

/// `INSERT INTO schema.table (cols) SELECT * FROM UNNEST($1::t1[], ...) ON CONFLICT (key)
/// DO UPDATE SET every non-key column`. Columns not listed (e.g. `stale`) keep their value.
pub(crate) fn upsert(schema: &str, table: &str, columns: &[(&str, &str)], key: &[&str]) -> String {
    let updates: Vec<String> = columns
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !key.contains(name))
        .map(|name| format!("{name} = EXCLUDED.{name}"))
        .collect();
    format!(
        "{} ON CONFLICT ({key}) DO UPDATE SET {updates}",
        insert(schema, table, columns),
        key = key.join(", "),
        updates = updates.join(", "),
    )
}

/// `INSERT INTO schema.table (cols) SELECT * FROM UNNEST($1::t1[], ...)`.
fn insert(schema: &str, table: &str, columns: &[(&str, &str)]) -> String {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(index, (_, pg_type))| format!("${}::{pg_type}[]", index + 1))
        .collect();
    format!(
        "INSERT INTO {schema}.{table} ({names}) SELECT * FROM UNNEST({arrays})",
        schema = ident(schema),
        table = ident(table),
        names = names.join(", "),
        arrays = arrays.join(", "),
    )
}

/// Performs a batch's changes in `schema`, in order, inside the caller's transaction.
pub(crate) async fn write(
    tx: &mut Transaction<'_, Postgres>,
    schema: &str,
    changes: Vec<Change>,
) -> Result<(), ProjectionError> {
    for change in changes {
        match change {
            Change::Write(rows) => write_rows(tx, schema, rows).await?,
            Change::Delete { table, key, ids } => {
                if ids.is_empty() {
                    continue;
                }
                sqlx::query(&format!(
                    "DELETE FROM {}.{} WHERE {key} = ANY($1::uuid[])",
                    ident(schema),
                    ident(table)
                ))
                .bind(ids)
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    Ok(())
}

async fn write_rows(
    tx: &mut Transaction<'_, Postgres>,
    schema: &str,
    rows: TableRows,
) -> Result<(), ProjectionError> {
    if rows.is_empty() {
        return Ok(());
    }
    rows.check().map_err(ProjectionError::Rows)?;
    let types: Vec<(&str, &str)> = rows
        .columns
        .iter()
        .map(|(name, column)| (*name, column.pg_type()))
        .collect();
    let sql = match rows.on_conflict {
        OnConflict::Update => upsert(schema, rows.table, &types, rows.key),
        OnConflict::Ignore => format!(
            "{} ON CONFLICT DO NOTHING",
            insert(schema, rows.table, &types)
        ),
        OnConflict::Fail => insert(schema, rows.table, &types),
    };
    let mut query = sqlx::query(&sql);
    for (_, column) in rows.columns {
        query = bind(query, column);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Binds a column as one array parameter.
fn bind(
    query: Query<'_, Postgres, PgArguments>,
    column: Column,
) -> Query<'_, Postgres, PgArguments> {
    match column {
        Column::Uuid(v) => query.bind(v),
        Column::Text(v) => query.bind(v),
        Column::Date(v) => query.bind(v),
        Column::Timestamp(v) => query.bind(v),
        Column::Money(v) | Column::Decimal(v) => query.bind(v),
        Column::Int4(v) => query.bind(v),
        Column::Int8(v) => query.bind(v),
        Column::Bool(v) => query.bind(v),
        Column::Json(v) => query.bind(v),
    }
}
