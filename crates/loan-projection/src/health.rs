//! Lag and health of every projection: how far behind the stream head its checkpoint
//! is, when it last moved, its last error, and how many aggregates it holds in
//! quarantine.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::ProjectionError;

/// The health of one projection (a group, or a rebuild in progress).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectionHealth {
    pub projection: String,
    /// Schema its tables are in.
    pub schema: String,
    /// Stream sequence of the last commit applied.
    pub checkpoint: u64,
    /// The position of the stream's last commit when asked (a checkpoint after it is
    /// not a commit to apply).
    pub stream_head: u64,
    /// `stream_head - checkpoint`: commits not yet applied.
    pub lag: u64,
    /// When the checkpoint last moved.
    pub updated_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Aggregates in quarantine (their rows are stale).
    pub quarantined: u64,
    /// Dead letters not yet resolved by a replay.
    pub dead_letters: u64,
    /// False when the last error is more recent than the last progress (the projection
    /// is failing now), or aggregates are quarantined.
    pub healthy: bool,
}

/// The health of every projection with a checkpoint, against the head of `stream`.
pub async fn lag(
    pool: &PgPool,
    nats: &async_nats::Client,
    stream: &str,
) -> Result<Vec<ProjectionHealth>, ProjectionError> {
    let js = async_nats::jetstream::new(nats.clone());
    let stream = js
        .get_stream(stream)
        .await
        .map_err(|e| ProjectionError::nats(format!("opening stream {stream}"), e))?;
    let info = stream
        .get_info()
        .await
        .map_err(|e| ProjectionError::nats("reading the stream head", e))?;
    // The head a projection catches up to is the last commit: the stream's last message
    // may be a checkpoint (`<prefix>.checkpoints`), which projectors never receive.
    let events = info
        .config
        .subjects
        .iter()
        .find(|subject| subject.ends_with(".events.>"));
    let head = match events {
        Some(events) => match stream.get_last_raw_message_by_subject(events).await {
            Ok(message) => message.sequence,
            Err(error)
                if error.kind()
                    == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
            {
                0
            }
            Err(error) => return Err(ProjectionError::nats("reading the stream head", error)),
        },
        None => info.state.last_sequence,
    };
    type Row = (
        String,
        String,
        i64,
        DateTime<Utc>,
        Option<String>,
        Option<DateTime<Utc>>,
        i64,
        i64,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT c.projection, c.schema_name, c.last_sequence, c.updated_at, c.last_error, c.last_error_at,
                (SELECT count(*) FROM projection.quarantine q WHERE q.projection = c.projection),
                (SELECT count(*) FROM projection.dead_letters d WHERE d.projection = c.projection AND d.resolved_at IS NULL)
         FROM projection.checkpoints c ORDER BY c.projection",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                projection,
                schema,
                last,
                updated_at,
                last_error,
                last_error_at,
                quarantined,
                dead,
            )| {
                let checkpoint = u64::try_from(last).unwrap_or(0);
                let failing = last_error_at.is_some_and(|at| at > updated_at);
                ProjectionHealth {
                    projection,
                    schema,
                    checkpoint,
                    stream_head: head,
                    lag: head.saturating_sub(checkpoint),
                    updated_at,
                    last_error,
                    last_error_at,
                    quarantined: u64::try_from(quarantined).unwrap_or(0),
                    dead_letters: u64::try_from(dead).unwrap_or(0),
                    healthy: !failing && quarantined == 0,
                }
            },
        )
        .collect())
}
