//! The worker's durable memory in PostgreSQL (schema `automation`): its progress and the
//! outbox of actions.
//!
//! Exactly once rests on three facts: (1) actions are inserted in the same transaction
//! that moves the progress that caused them, so a crash either loses both (and the inputs
//! are read again, giving the same actions) or keeps both; (2) an action's id is
//! deterministic and the primary key, so deciding it again inserts nothing; (3) a pending
//! action is sent with that same id until it is marked completed, and the receivers
//! de-duplicate by it (the command service by command id, the notification stream by
//! `Nats-Msg-Id`, gateways by the body's `id`).

use chrono::NaiveDate;
use sqlx::{Executor, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::AutomationError;
use crate::rules::{Action, Effect};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates or upgrades schema `automation`. Idempotent. The migrations' bookkeeping table
/// lives in schema `automation`, apart from the projector's.
pub async fn migrate(pool: &PgPool) -> Result<(), AutomationError> {
    let mut conn = pool.acquire().await?;
    conn.execute("CREATE SCHEMA IF NOT EXISTS automation")
        .await?;
    conn.execute("SET search_path TO automation").await?;
    let outcome = MIGRATOR.run_direct(&mut *conn).await;
    let reset = conn.execute("RESET search_path").await;
    match (outcome, reset) {
        (Ok(()), Ok(_)) => Ok(()),
        (Err(error), _) => {
            // Never hand a connection with a changed search path back to the pool.
            let _ = conn.detach();
            Err(error.into())
        }
        (Ok(()), Err(error)) => {
            let _ = conn.detach();
            Err(error.into())
        }
    }
}

/// Where a worker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Last stream sequence folded into the state.
    pub last_sequence: u64,
    /// Last calendar day the day rules ran for.
    pub swept_through: Option<NaiveDate>,
}

/// Reads a worker's progress (zero when it never ran).
pub async fn progress(pool: &PgPool, worker: &str) -> Result<Progress, AutomationError> {
    let row: Option<(i64, Option<NaiveDate>)> = sqlx::query_as(
        "SELECT last_sequence, swept_through_on FROM automation.workers WHERE worker = $1",
    )
    .bind(worker)
    .fetch_optional(pool)
    .await?;
    Ok(
        row.map_or_else(Progress::default, |(last, swept)| Progress {
            last_sequence: u64::try_from(last).unwrap_or(0),
            swept_through: swept,
        }),
    )
}

/// Records `progress` and inserts `actions` (repeats ignored) in one transaction.
pub async fn commit(
    pool: &PgPool,
    worker: &str,
    progress: Progress,
    actions: &[Action],
) -> Result<usize, AutomationError> {
    let mut tx = pool.begin().await?;
    let inserted = insert_actions(&mut tx, actions).await?;
    sqlx::query(
        "INSERT INTO automation.workers (worker, last_sequence, swept_through_on, updated_at)
         VALUES ($1, $2, $3, now())
         ON CONFLICT (worker) DO UPDATE
           SET last_sequence = EXCLUDED.last_sequence,
               swept_through_on = EXCLUDED.swept_through_on,
               updated_at = now()",
    )
    .bind(worker)
    .bind(i64::try_from(progress.last_sequence).unwrap_or(i64::MAX))
    .bind(progress.swept_through)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(inserted)
}

/// Inserts actions without touching any worker's progress (an on-demand sweep).
pub async fn record(pool: &PgPool, actions: &[Action]) -> Result<usize, AutomationError> {
    let mut tx = pool.begin().await?;
    let inserted = insert_actions(&mut tx, actions).await?;
    tx.commit().await?;
    Ok(inserted)
}

async fn insert_actions(
    tx: &mut Transaction<'_, Postgres>,
    actions: &[Action],
) -> Result<usize, AutomationError> {
    let mut inserted = 0;
    for action in actions {
        let (effect, name, body) = match &action.effect {
            Effect::Command { kind, payload } => ("command", kind.name(), payload.clone()),
            Effect::Notify(notification) => (
                "notification",
                notification.kind().name(),
                serde_json::to_value(notification)?,
            ),
        };
        let result = sqlx::query(
            "INSERT INTO automation.actions
               (action_id, rule, business_on, loan_id, effect, name, reason, correlation_id, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (action_id) DO NOTHING",
        )
        .bind(action.id)
        .bind(action.rule.name())
        .bind(action.business_date)
        .bind(action.loan_id.0)
        .bind(effect)
        .bind(name)
        .bind(&action.reason)
        .bind(action.correlation_id())
        .bind(body)
        .execute(&mut **tx)
        .await?;
        inserted += usize::try_from(result.rows_affected()).unwrap_or(0);
    }
    Ok(inserted)
}

/// An action waiting to be sent.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pending {
    pub action_id: Uuid,
    pub rule: String,
    pub effect: String,
    pub name: String,
    pub correlation_id: Uuid,
    pub body: serde_json::Value,
}

/// Up to `limit` pending actions, in the order they were decided.
pub async fn pending(pool: &PgPool, limit: i64) -> Result<Vec<Pending>, AutomationError> {
    Ok(sqlx::query_as(
        "SELECT action_id, rule, effect, name, correlation_id, body FROM automation.actions
         WHERE completed_at IS NULL ORDER BY dispatch_order LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Marks an action sent, with the receiver's answer.
pub async fn complete(pool: &PgPool, id: Uuid, outcome: &str) -> Result<(), AutomationError> {
    sqlx::query(
        "UPDATE automation.actions SET completed_at = now(), outcome = $2, attempts = attempts + 1, last_error = NULL
         WHERE action_id = $1",
    )
    .bind(id)
    .bind(outcome)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a transient failure; the action stays pending.
pub async fn failed(pool: &PgPool, id: Uuid, error: &str) -> Result<(), AutomationError> {
    sqlx::query(
        "UPDATE automation.actions SET attempts = attempts + 1, last_error = $2 WHERE action_id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}
