//! Rebuilding a group from sequence 0 while the live tables keep serving, then
//! switching over in one transaction.
//!
//! 1. Create schema `read_model_rebuild_<n>` with empty copies of the group's tables
//!    (`LIKE ... INCLUDING ALL`: columns, defaults, constraints, indexes, comments) and a
//!    checkpoint `<group>@rebuild_<n>` at 0.
//! 2. Run the group's projector into it, on its own durable consumer, up to the stream
//!    head (the live projector keeps running meanwhile).
//! 3. Switch, in ONE transaction: lock the live checkpoint row (the live projector's
//!    current batch finishes first; its next one waits), catch up the last commits,
//!    move the tables of the other groups (and tables owned by none) into the new schema
//!    (`ALTER TABLE ... SET SCHEMA`: same tables, no copy), rename `read_model` to
//!    `read_model_retired_<n>` and the new schema to `read_model`, recreate every view
//!    that depended on the old tables (the analyst views) from its definition, copy the
//!    old schema's and tables' privileges, and give the live checkpoint the rebuilt
//!    position with a new generation (the live projector reloads when it sees it).
//!    The quarantine and dead letters of the rebuild replace the group's.
//! 4. Drop the retired schema (only the group's old tables are left in it).
//!
//! Readers see either the old tables or the new ones, never a mix.

use std::sync::Arc;

use sqlx::{Executor, Postgres, Transaction};
use tracing::{info, warn};

use crate::runner::{GroupProjector, Target};
use crate::schema::{LIVE_SCHEMA, clone_tables, ident};
use crate::view::to_i64;
use crate::{Env, Group, ProjectionError, ProjectorConfig};

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub group: Group,
    pub rebuild_number: i64,
    /// Stream sequence the rebuilt tables were at when switched in.
    pub last_sequence: u64,
    /// Views recreated on the new tables.
    pub views_recreated: usize,
    /// Whether the retired schema could be dropped (otherwise it is left for an operator).
    pub retired_dropped: bool,
}

/// How the live tables of a group compare with a replay of the whole log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplayComparison {
    pub group: String,
    /// The stream sequence both sides are at.
    pub sequence: u64,
    pub tables: Vec<TableComparison>,
}

impl ReplayComparison {
    /// Whether every table holds exactly the same rows.
    pub fn agrees(&self) -> bool {
        self.tables
            .iter()
            .all(|t| t.only_live == 0 && t.only_replayed == 0)
    }
}

/// One table: row counts and the rows found on one side only (as JSON, the first few).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableComparison {
    pub table: String,
    pub live_rows: u64,
    pub replayed_rows: u64,
    /// Rows in the live table that the replay did not produce.
    pub only_live: u64,
    /// Rows the replay produced that the live table lacks.
    pub only_replayed: u64,
    pub examples_only_live: Vec<String>,
    pub examples_only_replayed: Vec<String>,
}

impl TableComparison {
    /// A table compared: the rows found on one side only (each as text, in order) and
    /// the row counts; keeps the first `examples` of each side.
    pub(crate) fn new(
        table: &str,
        (live_rows, replayed_rows): (u64, u64),
        only_live: Vec<String>,
        only_replayed: Vec<String>,
        examples: usize,
    ) -> Self {
        TableComparison {
            table: table.to_owned(),
            live_rows,
            replayed_rows,
            only_live: only_live.len() as u64,
            only_replayed: only_replayed.len() as u64,
            examples_only_live: only_live.into_iter().take(examples).collect(),
            examples_only_replayed: only_replayed.into_iter().take(examples).collect(),
        }
    }
}

/// Replays the whole log for `group` into a scratch schema and compares it with the live
/// tables row by row, then drops the scratch schema. The live projection must have
/// caught up with the stream (its checkpoint at the stream head), so both sides stand at
/// the same sequence; otherwise the answer would compare two different moments and
/// [`ProjectionError::Config`] says so.
pub async fn replay_and_compare(
    config: ProjectorConfig,
    group: Group,
    examples: usize,
) -> Result<ReplayComparison, ProjectionError> {
    let env = Env::connect(config).await?;
    let live = Target::live(&env.config, group);
    let live_sequence: Option<i64> = sqlx::query_scalar(
        "SELECT last_sequence FROM projection.checkpoints WHERE projection = $1",
    )
    .bind(&live.projection)
    .fetch_optional(&env.pool)
    .await?;
    let live_sequence = u64::try_from(live_sequence.unwrap_or(0)).unwrap_or(0);
    let head = env.stream_head().await?;
    if live_sequence != head {
        return Err(ProjectionError::Config(format!(
            "projection {group} is at sequence {live_sequence} but the stream at {head}: \
             let it catch up (loan projector lag) and run the comparison again"
        )));
    }
    let (number, target) = scratch_tables(&env, group, "replay").await?;
    let outcome = compare_replay(&env, &target, live_sequence, examples).await;
    let _ = env.stream.delete_consumer(&target.consumer).await;
    let recorded = match &outcome {
        Ok(c) if c.agrees() => "compared: agrees".to_owned(),
        Ok(_) => "compared: differs".to_owned(),
        Err(error) => format!("failed: {error}"),
    };
    let _ = abandon(&env, &target, number, &recorded).await;
    outcome
}

async fn compare_replay(
    env: &Arc<Env>,
    target: &Target,
    sequence: u64,
    examples: usize,
) -> Result<ReplayComparison, ProjectionError> {
    let mut projector = GroupProjector::with_env(env.clone(), target.clone());
    let replayed_to = projector.catch_up().await?;
    drop(projector);
    if replayed_to != sequence {
        return Err(ProjectionError::Config(format!(
            "the log moved during the comparison ({sequence} → {replayed_to}): run it again"
        )));
    }
    let mut tables = Vec::new();
    for table in target.group.tables() {
        let live = format!("{}.{}", ident(LIVE_SCHEMA), ident(table));
        let replayed = format!("{}.{}", ident(&target.schema), ident(table));
        let count = |from: &str| format!("SELECT count(*) FROM {from}");
        let only = |a: &str, b: &str| {
            format!(
                "SELECT row_to_json(x)::text FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) x ORDER BY 1"
            )
        };
        let live_rows: i64 = sqlx::query_scalar(&count(&live))
            .fetch_one(&env.pool)
            .await?;
        let replayed_rows: i64 = sqlx::query_scalar(&count(&replayed))
            .fetch_one(&env.pool)
            .await?;
        let only_live: Vec<String> = sqlx::query_scalar(&only(&live, &replayed))
            .fetch_all(&env.pool)
            .await?;
        let only_replayed: Vec<String> = sqlx::query_scalar(&only(&replayed, &live))
            .fetch_all(&env.pool)
            .await?;
        tables.push(TableComparison::new(
            table,
            (
                u64::try_from(live_rows).unwrap_or(0),
                u64::try_from(replayed_rows).unwrap_or(0),
            ),
            only_live,
            only_replayed,
            examples,
        ));
    }
    Ok(ReplayComparison {
        group: target.group.name().to_owned(),
        sequence,
        tables,
    })
}

/// Creates empty copies of `group`'s tables in a fresh schema `read_model_<kind>_<n>`,
/// with their own checkpoint and a row in `projection.rebuilds`: where a rebuild or a
/// replay builds from sequence 0 while the live tables serve.
async fn scratch_tables(
    env: &Env,
    group: Group,
    kind: &str,
) -> Result<(i64, Target), ProjectionError> {
    let number: i64 = sqlx::query_scalar("SELECT nextval('projection.rebuild_number')")
        .fetch_one(&env.pool)
        .await?;
    let schema = format!("read_model_{kind}_{number}");
    let target = Target {
        group,
        projection: format!("{}@{kind}_{number}", group.name()),
        schema: schema.clone(),
        consumer: format!("{}-{kind}-{number}", env.config.consumer_name(group)),
    };
    let mut tx = env.pool.begin().await?;
    sqlx::query(
        "INSERT INTO projection.rebuilds (rebuild_number, projection, schema_name) VALUES ($1, $2, $3)",
    )
    .bind(number)
    .bind(group.name())
    .bind(&schema)
    .execute(&mut *tx)
    .await?;
    clone_tables(&mut tx, &schema, group.tables()).await?;
    sqlx::query("INSERT INTO projection.checkpoints (projection, schema_name) VALUES ($1, $2)")
        .bind(&target.projection)
        .bind(&schema)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((number, target))
}

/// Rebuilds `group` from sequence 0 into a fresh schema and switches it in.
pub async fn rebuild(
    config: ProjectorConfig,
    group: Group,
) -> Result<RebuildReport, ProjectionError> {
    let env = Env::connect(config).await?;
    rebuild_in(env, group).await
}

async fn rebuild_in(env: Arc<Env>, group: Group) -> Result<RebuildReport, ProjectionError> {
    let (number, target) = scratch_tables(&env, group, "rebuild").await?;
    let schema = target.schema.clone();
    info!(%group, schema, "rebuild started");

    let outcome = build_and_switch(&env, &target, number).await;
    let consumer = target.consumer.clone();
    let _ = env.stream.delete_consumer(&consumer).await;
    match outcome {
        Ok(report) => Ok(report),
        Err(error) => {
            warn!(%group, %error, "rebuild failed; the live tables are untouched");
            let _ = abandon(&env, &target, number, &format!("failed: {error}")).await;
            Err(error)
        }
    }
}

async fn build_and_switch(
    env: &Arc<Env>,
    target: &Target,
    number: i64,
) -> Result<RebuildReport, ProjectionError> {
    let mut projector = GroupProjector::with_env(env.clone(), target.clone());
    projector.catch_up().await?;

    // The switch: hold the live checkpoint row so the live projector cannot commit, catch
    // up the commits that arrived meanwhile, then swap.
    let live = Target::live(&env.config, target.group);
    let mut tx = env.pool.begin().await?;
    sqlx::query(
        "INSERT INTO projection.checkpoints (projection) VALUES ($1) ON CONFLICT (projection) DO NOTHING",
    )
    .bind(&live.projection)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut tx = env.pool.begin().await?;
    sqlx::query("SELECT 1 FROM projection.checkpoints WHERE projection = $1 FOR UPDATE")
        .bind(&live.projection)
        .execute(&mut *tx)
        .await?;
    // The live projector is now blocked; commits published from here on are applied by
    // it after the switch, from the rebuilt position.
    let last_sequence = projector.catch_up().await?;
    drop(projector);

    let views = dependent_views(&mut tx).await?;
    let retired = format!("read_model_retired_{number}");
    let owned = target.group.tables();
    let live_tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY tablename",
    )
    .bind(LIVE_SCHEMA)
    .fetch_all(&mut *tx)
    .await?;
    for table in live_tables.iter().filter(|t| !owned.contains(&t.as_str())) {
        tx.execute(
            format!(
                "ALTER TABLE {}.{} SET SCHEMA {}",
                ident(LIVE_SCHEMA),
                ident(table),
                ident(&target.schema)
            )
            .as_str(),
        )
        .await?;
    }
    tx.execute(
        format!(
            "ALTER SCHEMA {} RENAME TO {}",
            ident(LIVE_SCHEMA),
            ident(&retired)
        )
        .as_str(),
    )
    .await?;
    tx.execute(
        format!(
            "ALTER SCHEMA {} RENAME TO {}",
            ident(&target.schema),
            ident(LIVE_SCHEMA)
        )
        .as_str(),
    )
    .await?;
    copy_privileges(&mut tx, &retired, owned).await?;
    for view in &views {
        tx.execute(view.as_str()).await?;
    }
    sqlx::query(
        "UPDATE projection.checkpoints SET last_sequence = $2, generation = generation + 1,
             updated_at = now(), last_error = NULL, last_error_at = NULL
         WHERE projection = $1",
    )
    .bind(&live.projection)
    .bind(to_i64(last_sequence))
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM projection.checkpoints WHERE projection = $1")
        .bind(&target.projection)
        .execute(&mut *tx)
        .await?;
    for table in ["quarantine", "dead_letters"] {
        sqlx::query(&format!(
            "DELETE FROM projection.{table} WHERE projection = $1"
        ))
        .bind(&live.projection)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "UPDATE projection.{table} SET projection = $1 WHERE projection = $2"
        ))
        .bind(&live.projection)
        .bind(&target.projection)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE projection.rebuilds SET finished_at = now(), last_sequence = $2, outcome = 'switched' WHERE rebuild_number = $1",
    )
    .bind(number)
    .bind(to_i64(last_sequence))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    info!(group = %target.group, last_sequence, views = views.len(), "rebuild switched in");

    let retired_dropped = drop_retired(env, &retired).await;
    Ok(RebuildReport {
        group: target.group,
        rebuild_number: number,
        last_sequence,
        views_recreated: views.len(),
        retired_dropped,
    })
}

/// `CREATE OR REPLACE VIEW` statements for every view depending (directly or through
/// other views) on a table of the live schema, in creation order, with their
/// definitions fully qualified (captured with an empty search path).
async fn dependent_views(
    tx: &mut Transaction<'_, Postgres>,
) -> Result<Vec<String>, ProjectionError> {
    tx.execute("SET LOCAL search_path TO pg_catalog").await?;
    let rows: Vec<(String, String, Option<Vec<String>>, String)> = sqlx::query_as(
        "WITH RECURSIVE deps(oid) AS (
             SELECT DISTINCT r.ev_class
             FROM pg_depend d
             JOIN pg_rewrite r ON r.oid = d.objid
             JOIN pg_class t ON t.oid = d.refobjid
             JOIN pg_namespace n ON n.oid = t.relnamespace
             WHERE d.classid = 'pg_rewrite'::regclass AND n.nspname = $1 AND r.ev_class <> t.oid
           UNION
             SELECT r.ev_class
             FROM deps
             JOIN pg_depend d ON d.refobjid = deps.oid AND d.classid = 'pg_rewrite'::regclass
             JOIN pg_rewrite r ON r.oid = d.objid
             WHERE r.ev_class <> deps.oid
         )
         SELECT n.nspname::text, c.relname::text, c.reloptions::text[], pg_get_viewdef(c.oid)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid IN (SELECT oid FROM deps) AND c.relkind = 'v'
         ORDER BY c.oid",
    )
    .bind(LIVE_SCHEMA)
    .fetch_all(&mut **tx)
    .await?;
    tx.execute("SET LOCAL search_path TO DEFAULT").await?;
    Ok(rows
        .into_iter()
        .map(|(schema, name, options, definition)| {
            let with = match options {
                Some(options) if !options.is_empty() => format!(" WITH ({})", options.join(", ")),
                _ => String::new(),
            };
            format!(
                "CREATE OR REPLACE VIEW {}.{}{with} AS {}",
                ident(&schema),
                ident(&name),
                definition.trim_end().trim_end_matches(';')
            )
        })
        .collect())
}

/// Grants on the retired schema and on the group's retired tables, given again on the
/// new ones (the other tables were moved with their privileges).
async fn copy_privileges(
    tx: &mut Transaction<'_, Postgres>,
    retired: &str,
    owned: &[&str],
) -> Result<(), ProjectionError> {
    let schema_grants: Vec<(String, String)> = sqlx::query_as(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END, a.privilege_type
         FROM pg_namespace n, aclexplode(n.nspacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
         WHERE n.nspname = $1 AND a.grantee <> n.nspowner",
    )
    .bind(retired)
    .fetch_all(&mut **tx)
    .await?;
    for (grantee, privilege) in schema_grants {
        tx.execute(
            format!(
                "GRANT {privilege} ON SCHEMA {} TO {grantee}",
                ident(LIVE_SCHEMA)
            )
            .as_str(),
        )
        .await?;
    }
    for table in owned {
        let grants: Vec<(String, String)> = sqlx::query_as(
            "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END, a.privilege_type
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                  aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
             WHERE n.nspname = $1 AND c.relname = $2 AND a.grantee <> c.relowner",
        )
        .bind(retired)
        .bind(table)
        .fetch_all(&mut **tx)
        .await?;
        for (grantee, privilege) in grants {
            tx.execute(
                format!(
                    "GRANT {privilege} ON {}.{} TO {grantee}",
                    ident(LIVE_SCHEMA),
                    ident(table)
                )
                .as_str(),
            )
            .await?;
        }
    }
    Ok(())
}

/// Drops the retired schema unless something still depends on its tables.
async fn drop_retired(env: &Env, retired: &str) -> bool {
    let outcome = async {
        let mut tx = env.pool.begin().await?;
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = $1")
                .bind(retired)
                .fetch_all(&mut *tx)
                .await?;
        for table in tables {
            // RESTRICT: refuses if a view elsewhere still uses the table.
            tx.execute(
                format!("DROP TABLE {}.{} RESTRICT", ident(retired), ident(&table)).as_str(),
            )
            .await?;
        }
        tx.execute(format!("DROP SCHEMA {} RESTRICT", ident(retired)).as_str())
            .await?;
        tx.commit().await?;
        Ok::<(), sqlx::Error>(())
    }
    .await;
    match outcome {
        Ok(()) => true,
        Err(error) => {
            warn!(retired, %error, "the retired schema was kept: something still depends on it");
            false
        }
    }
}

/// Drops a rebuild's schema and bookkeeping, recording `outcome`.
async fn abandon(
    env: &Env,
    target: &Target,
    number: i64,
    outcome: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = env.pool.begin().await?;
    tx.execute(format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(&target.schema)).as_str())
        .await?;
    sqlx::query("DELETE FROM projection.checkpoints WHERE projection = $1")
        .bind(&target.projection)
        .execute(&mut *tx)
        .await?;
    for table in ["quarantine", "dead_letters"] {
        sqlx::query(&format!(
            "DELETE FROM projection.{table} WHERE projection = $1"
        ))
        .bind(&target.projection)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE projection.rebuilds SET finished_at = now(), outcome = $2 WHERE rebuild_number = $1",
    )
    .bind(number)
    .bind(outcome)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}
