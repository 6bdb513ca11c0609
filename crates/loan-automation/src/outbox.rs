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

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use loan_contract::notification::{DailyReport, Notification};
use loan_domain::LoanId;
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
        .bind(action.loan_id.map(|id| id.0))
        .bind(effect)
        .bind(name)
        .bind(&action.reason)
        .bind(action.correlation_id())
        .bind(body)
        .execute(&mut **tx)
        .await?;
        inserted += usize::try_from(result.rows_affected()).unwrap_or(0);
        if let Effect::Notify(Notification::DailyReport(report)) = &action.effect {
            insert_daily_report(tx, report).await?;
        }
    }
    Ok(inserted)
}

/// The daily report's read-model row, with its notification (the first one of a date
/// stands, as in the outbox).
async fn insert_daily_report(
    tx: &mut Transaction<'_, Postgres>,
    report: &DailyReport,
) -> Result<(), AutomationError> {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO automation.daily_reports
           (business_on, new_leads, approvals, disbursed_amount, repaid_amount, newly_overdue,
            active_loans, outstanding_principal, par30_principal, par30, notification_id, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (business_on) DO NOTHING",
    )
    .bind(report.business_date)
    .bind(count(report.new_leads))
    .bind(count(report.approvals))
    .bind(report.disbursed_amount.amount())
    .bind(report.repaid_amount.amount())
    .bind(count(report.newly_overdue))
    .bind(count(report.active_loans))
    .bind(report.outstanding_principal.amount())
    .bind(report.par30_principal.amount())
    .bind(report.par30.value())
    .bind(report.id)
    .bind(&report.reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The lead-routing rule's assignments so far: lead → officer.
pub async fn routed_leads(pool: &PgPool) -> Result<BTreeMap<LoanId, String>, AutomationError> {
    let rows: Vec<(Uuid, Option<String>)> = sqlx::query_as(
        "SELECT loan_id, body->>'officer_id' FROM automation.actions
         WHERE rule = 'lead_routing' AND effect = 'command' AND loan_id IS NOT NULL",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(loan, officer)| Some((LoanId(loan), officer?)))
        .collect())
}

/// Segments whose last overdue-rate crossing sent was `above` (not yet recovered).
pub async fn alerted_segments(pool: &PgPool) -> Result<BTreeSet<String>, AutomationError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT segment FROM (
           SELECT DISTINCT ON (body->>'segment') body->>'segment' AS segment, body->>'crossing' AS crossing
           FROM automation.actions
           WHERE rule = 'risk_alerts' AND name = 'risk_alert'
           ORDER BY body->>'segment', dispatch_order DESC
         ) last WHERE crossing = 'above'",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(segment,)| segment).collect())
}

/// One row of the daily report read model.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DailyReportRow {
    pub business_on: NaiveDate,
    pub new_leads: i64,
    pub approvals: i64,
    pub disbursed_amount: rust_decimal::Decimal,
    pub repaid_amount: rust_decimal::Decimal,
    pub newly_overdue: i64,
    pub active_loans: i64,
    pub outstanding_principal: rust_decimal::Decimal,
    pub par30_principal: rust_decimal::Decimal,
    pub par30: rust_decimal::Decimal,
    pub notification_id: Uuid,
}

/// The daily reports of `from..=through`, in date order.
pub async fn daily_reports(
    pool: &PgPool,
    from: NaiveDate,
    through: NaiveDate,
) -> Result<Vec<DailyReportRow>, AutomationError> {
    Ok(sqlx::query_as(
        "SELECT business_on, new_leads, approvals, disbursed_amount, repaid_amount, newly_overdue,
                active_loans, outstanding_principal, par30_principal, par30, notification_id
         FROM automation.daily_reports WHERE business_on BETWEEN $1 AND $2 ORDER BY business_on",
    )
    .bind(from)
    .bind(through)
    .fetch_all(pool)
    .await?)
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
