//! Rebuild and replay of the embedded read models: a group projected from position 0
//! into scratch tables (`rebuild_<table>`, `replay_<table>`, empty copies of the live
//! tables made from their own DDL), then either switched in (rebuild) or compared row by
//! row with the live tables and dropped (replay, the audit's "replay agrees" check).
//!
//! The switch is ONE transaction: the group's live tables are dropped, the rebuilt ones
//! renamed to their names and given the live tables' indexes, the checkpoint set to the
//! rebuilt position with a new generation (a projector holding views notices and
//! reloads), and the rebuild's quarantine and dead letters become the group's. Readers
//! see the old tables or the new ones, never a mix. Views other components define on the
//! tables keep working: the rename runs with `legacy_alter_table`, which leaves view
//! text alone, and a view names a table, not a copy of it.

use loan_store::EventStore;
use sqlx::{Executor, SqliteConnection};
use tracing::{info, warn};

use super::sqlite::{self, ident};
use super::{EmbeddedProjector, Log, Projection, Target};
use crate::rebuild::{ReplayComparison, TableComparison};
use crate::view::to_i64;
use crate::{Group, ProjectionError};

/// What an embedded rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedRebuild {
    pub group: Group,
    /// Log position the rebuilt tables were at when switched in.
    pub last_sequence: u64,
}

impl<S: EventStore> EmbeddedProjector<S> {
    /// Rebuilds `group` from position 0 into fresh tables and switches them in, in one
    /// transaction. On failure the scratch tables are dropped and the live ones are
    /// untouched.
    pub async fn rebuild(&mut self, group: Group) -> Result<EmbeddedRebuild, ProjectionError> {
        let target = Target::scratch(group, "rebuild");
        create_scratch(&self.pool, &target).await?;
        info!(%group, "rebuild started");
        let log = Log {
            store: self.store.as_ref(),
            vault: &self.vault,
            pool: &self.pool,
            batch_size: self.options.batch_size,
        };
        let mut scratch = Projection::new(target.clone(), self.options.cache_capacity);
        let outcome = async {
            let last_sequence = scratch.catch_up(&log).await?;
            switch(&self.pool, &target, last_sequence).await?;
            Ok(last_sequence)
        }
        .await;
        match outcome {
            Ok(last_sequence) => {
                // The generation moved: the live views are reloaded at the next batch.
                if let Ok(projection) = self.projection_mut(group) {
                    projection.reset();
                }
                info!(%group, last_sequence, "rebuild switched in");
                Ok(EmbeddedRebuild {
                    group,
                    last_sequence,
                })
            }
            Err(error) => {
                warn!(%group, %error, "rebuild failed; the live tables are untouched");
                let _ = drop_scratch(&self.pool, &target).await;
                Err(error)
            }
        }
    }

    /// Brings `group`'s live tables up to the head of the log, replays the whole log
    /// into scratch tables, and compares the two row by row (every column, `stale`
    /// included); the scratch tables are dropped afterwards. `examples`: rows quoted per
    /// side and table (as JSON objects). [`ProjectionError::Config`] when this projector
    /// does not project `group`.
    pub async fn replay_and_compare(
        &mut self,
        group: Group,
        examples: usize,
    ) -> Result<ReplayComparison, ProjectionError> {
        let target = Target::scratch(group, "replay");
        create_scratch(&self.pool, &target).await?;
        let outcome = self.compare(group, &target, examples).await;
        let _ = drop_scratch(&self.pool, &target).await;
        outcome
    }

    async fn compare(
        &mut self,
        group: Group,
        target: &Target,
        examples: usize,
    ) -> Result<ReplayComparison, ProjectionError> {
        let log = Log {
            store: self.store.as_ref(),
            vault: &self.vault,
            pool: &self.pool,
            batch_size: self.options.batch_size,
        };
        let live = self
            .projections
            .iter_mut()
            .find(|p| p.target.group == group)
            .ok_or_else(|| {
                ProjectionError::Config(format!("this projector does not project group {group}"))
            })?;
        let mut scratch = Projection::new(target.clone(), self.options.cache_capacity);
        // Both sides read the log to its end; equal positions unless commits arrived in
        // between, in which case both catch up again.
        let mut sequence = None;
        for _ in 0..5 {
            let live_at = live.catch_up(&log).await?;
            let replayed_at = scratch.catch_up(&log).await?;
            if live_at == replayed_at {
                sequence = Some(live_at);
                break;
            }
        }
        let Some(sequence) = sequence else {
            return Err(ProjectionError::Config(
                "the log kept moving during the comparison: run it again".into(),
            ));
        };
        let mut conn = self.pool.acquire().await?;
        let mut tables = Vec::new();
        for table in group.tables() {
            let replayed = format!("{}{table}", target.prefix);
            tables.push(compare_table(&mut conn, table, &replayed, examples).await?);
        }
        Ok(ReplayComparison {
            group: group.name().to_owned(),
            sequence,
            tables,
        })
    }
}

/// One table, live against replayed: counts and the rows on one side only.
async fn compare_table(
    conn: &mut SqliteConnection,
    table: &str,
    replayed: &str,
    examples: usize,
) -> Result<TableComparison, ProjectionError> {
    let columns: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
            .bind(table)
            .fetch_all(&mut *conn)
            .await?;
    let row_json = format!(
        "json_object({})",
        columns
            .iter()
            .map(|c| format!("'{}', {}", c.replace('\'', "''"), ident(c)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Every table has a primary key, so EXCEPT (a set difference) loses no duplicate.
    let only = |a: &str, b: &str| {
        format!(
            "SELECT {row_json} FROM (SELECT * FROM {a} EXCEPT SELECT * FROM {b}) ORDER BY 1",
            a = ident(a),
            b = ident(b)
        )
    };
    let count = |t: &str| format!("SELECT count(*) FROM {}", ident(t));
    let live_rows: i64 = sqlx::query_scalar(&count(table))
        .fetch_one(&mut *conn)
        .await?;
    let replayed_rows: i64 = sqlx::query_scalar(&count(replayed))
        .fetch_one(&mut *conn)
        .await?;
    let only_live: Vec<String> = sqlx::query_scalar(&only(table, replayed))
        .fetch_all(&mut *conn)
        .await?;
    let only_replayed: Vec<String> = sqlx::query_scalar(&only(replayed, table))
        .fetch_all(&mut *conn)
        .await?;
    Ok(TableComparison::new(
        table,
        (
            u64::try_from(live_rows).unwrap_or(0),
            u64::try_from(replayed_rows).unwrap_or(0),
        ),
        only_live,
        only_replayed,
        examples,
    ))
}

/// `CREATE TABLE "<prefix><table>" …` from the live table's own DDL.
fn scratch_ddl(live_sql: &str, table: &str, prefix: &str) -> Result<String, ProjectionError> {
    let rest = live_sql
        .strip_prefix("CREATE TABLE")
        .map(str::trim_start)
        .and_then(|rest| {
            rest.strip_prefix(&ident(table))
                .or_else(|| rest.strip_prefix(table))
        })
        .filter(|rest| rest.starts_with([' ', '(', '\n', '\t']))
        .ok_or_else(|| {
            ProjectionError::Rebuild(format!(
                "the definition of table {table} is not a CREATE TABLE {table} statement"
            ))
        })?;
    Ok(format!(
        "CREATE TABLE {}{rest}",
        ident(&format!("{prefix}{table}"))
    ))
}

/// Empty copies of the group's live tables (without secondary indexes: the switch gives
/// them the live ones) and a fresh checkpoint at 0; leftovers of an interrupted run of
/// the same kind are dropped first.
async fn create_scratch(pool: &sqlx::SqlitePool, target: &Target) -> Result<(), ProjectionError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    clear_scratch(&mut tx, target).await?;
    for table in target.group.tables() {
        let live_sql: Option<String> =
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?")
                .bind(table)
                .fetch_optional(&mut *tx)
                .await?;
        let live_sql = live_sql.ok_or_else(|| {
            ProjectionError::Rebuild(format!("the read models have no table {table}"))
        })?;
        tx.execute(scratch_ddl(&live_sql, table, &target.prefix)?.as_str())
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn clear_scratch(
    conn: &mut SqliteConnection,
    target: &Target,
) -> Result<(), ProjectionError> {
    for table in target.group.tables() {
        conn.execute(
            format!(
                "DROP TABLE IF EXISTS {}",
                ident(&format!("{}{table}", target.prefix))
            )
            .as_str(),
        )
        .await?;
    }
    for table in ["checkpoints", "quarantine", "dead_letters"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE projection = ?"))
            .bind(&target.projection)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn drop_scratch(pool: &sqlx::SqlitePool, target: &Target) -> Result<(), ProjectionError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    clear_scratch(&mut tx, target).await?;
    tx.commit().await?;
    Ok(())
}

/// The switch-over, in one transaction.
async fn switch(
    pool: &sqlx::SqlitePool,
    target: &Target,
    last_sequence: u64,
) -> Result<(), ProjectionError> {
    let group = target.group;
    let live = group.name();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    tx.execute("PRAGMA legacy_alter_table = ON").await?;
    let swapped = async {
        for table in group.tables() {
            let indexes: Vec<String> = sqlx::query_scalar(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name",
            )
            .bind(table)
            .fetch_all(&mut *tx)
            .await?;
            tx.execute(format!("DROP TABLE {}", ident(table)).as_str())
                .await?;
            tx.execute(
                format!(
                    "ALTER TABLE {} RENAME TO {}",
                    ident(&format!("{}{table}", target.prefix)),
                    ident(table)
                )
                .as_str(),
            )
            .await?;
            for index in indexes {
                tx.execute(index.as_str()).await?;
            }
        }
        Ok::<(), ProjectionError>(())
    }
    .await;
    // The pragma belongs to the connection, which goes back to the pool.
    let reset = tx.execute("PRAGMA legacy_alter_table = OFF").await;
    swapped?;
    reset?;
    sqlite::checkpoint(&mut tx, live).await?;
    sqlx::query(
        "UPDATE checkpoints SET last_sequence = ?, generation = generation + 1, updated_at = ?,
             last_error = NULL, last_error_at = NULL
         WHERE projection = ?",
    )
    .bind(to_i64(last_sequence))
    .bind(sqlite::now())
    .bind(live)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM checkpoints WHERE projection = ?")
        .bind(&target.projection)
        .execute(&mut *tx)
        .await?;
    for table in ["quarantine", "dead_letters"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE projection = ?"))
            .bind(live)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "UPDATE {table} SET projection = ? WHERE projection = ?"
        ))
        .bind(live)
        .bind(&target.projection)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
