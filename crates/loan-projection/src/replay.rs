//! Replaying one aggregate after a fix: the way out of quarantine.
//!
//! A quarantined aggregate's commits are dead letters. Once the cause is fixed (a
//! projector that understands a newer event type, a corrected bug), [`replay_aggregate`]
//! re-applies the aggregate's whole history up to the group's checkpoint, in one
//! transaction holding the checkpoint row (so the running projector waits): if every
//! commit now applies, the aggregate's rows are rewritten, its quarantine row removed
//! and its dead letters marked resolved; the running projector notices the changed
//! quarantine set at its next batch and reloads. If it still fails, nothing changes and
//! the reason is returned.

use loan_store::AggregateRef;
use tracing::info;

use crate::postgres;
use crate::runner::{Target, owned_tables, replay_history};
use crate::schema::ident;
use crate::view::{self, View, to_i64};
use crate::{Env, Group, ProjectionError, ProjectorConfig};

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// Every commit up to the checkpoint applied: rows rewritten, quarantine cleared.
    Applied {
        /// Aggregate version now projected.
        version: u64,
        /// Whether the aggregate was quarantined before.
        was_quarantined: bool,
    },
    /// Still cannot be applied; nothing was changed.
    StillPoisoned { reason: String },
}

/// Re-applies one aggregate's history in the live tables of `group`.
pub async fn replay_aggregate(
    config: ProjectorConfig,
    group: Group,
    aggregate: AggregateRef,
) -> Result<ReplayOutcome, ProjectionError> {
    let target = Target::live(&config, group);
    let env = Env::connect(config).await?;
    replay_in(&env, &target, aggregate).await
}

pub(crate) async fn replay_in(
    env: &Env,
    target: &Target,
    aggregate: AggregateRef,
) -> Result<ReplayOutcome, ProjectionError> {
    let mut tx = env.pool.begin().await?;
    let checkpoint: Option<i64> = sqlx::query_scalar(
        "SELECT last_sequence FROM projection.checkpoints WHERE projection = $1 FOR UPDATE",
    )
    .bind(&target.projection)
    .fetch_optional(&mut *tx)
    .await?;
    let checkpoint = u64::try_from(checkpoint.unwrap_or(0)).unwrap_or(0);
    let (view, rows) = replay_history(env, target.group, aggregate, checkpoint).await?;
    let view = match view {
        Ok(view) => view,
        Err(poison) => {
            return Ok(ReplayOutcome::StillPoisoned {
                reason: poison.reason,
            });
        }
    };
    let s = ident(&target.schema);
    for (table, key) in owned_tables(target.group, aggregate.aggregate_type) {
        sqlx::query(&format!("DELETE FROM {s}.{table} WHERE {key} = $1"))
            .bind(aggregate.id)
            .execute(&mut *tx)
            .await?;
    }
    let version = view.version();
    let views: Vec<&View> = vec![&view];
    postgres::write(
        &mut tx,
        &target.schema,
        view::changes(target.group, &views, rows),
    )
    .await?;
    let cleared = sqlx::query(
        "DELETE FROM projection.quarantine WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3",
    )
    .bind(&target.projection)
    .bind(aggregate.aggregate_type.as_str())
    .bind(aggregate.id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE projection.dead_letters SET resolved_at = now()
         WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3 AND position <= $4 AND resolved_at IS NULL",
    )
    .bind(&target.projection)
    .bind(aggregate.aggregate_type.as_str())
    .bind(aggregate.id)
    .bind(to_i64(checkpoint))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    info!(projection = %target.projection, %aggregate, version, "aggregate replayed");
    Ok(ReplayOutcome::Applied {
        version,
        was_quarantined: cleared > 0,
    })
}
