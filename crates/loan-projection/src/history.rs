//! Reading one aggregate's commits back from the stream, up to a position: how a
//! projector rebuilds a view it does not hold in memory (after a restart, or an eviction)
//! and how a replay re-applies a quarantined aggregate.

use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use loan_store::{AggregateRef, Commit};

use crate::ProjectionError;

/// A commit as read from the stream: its position and its bytes (decoded by the caller,
/// which decides what an undecodable one means).
pub(crate) struct RawCommit {
    pub(crate) position: u64,
    pub(crate) payload: bytes::Bytes,
}

/// Every message on the aggregate's subject with a position up to `up_to`, in order.
pub(crate) async fn raw_history(
    stream: &Stream,
    subject: &str,
    up_to: u64,
) -> Result<Vec<RawCommit>, ProjectionError> {
    let mut out = Vec::new();
    let mut next = 1;
    while next <= up_to {
        match stream
            .direct_get_next_for_subject(subject, Some(next))
            .await
        {
            Ok(message) => {
                if message.sequence > up_to {
                    break;
                }
                next = message.sequence + 1;
                out.push(RawCommit {
                    position: message.sequence,
                    payload: message.payload,
                });
            }
            Err(error) if error.kind() == DirectGetErrorKind::NotFound => break,
            Err(error) => {
                return Err(ProjectionError::nats(format!("reading {subject}"), error));
            }
        }
    }
    Ok(out)
}

/// The aggregate a subject `<prefix>.events.<aggregate>.<id>` names.
pub(crate) fn aggregate_of_subject(prefix: &str, subject: &str) -> Option<AggregateRef> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix(".events.")?;
    let (aggregate, id) = rest.split_once('.')?;
    let aggregate_type = loan_domain::AggregateType::parse(aggregate)?;
    Some(AggregateRef {
        aggregate_type,
        id: id.parse().ok()?,
    })
}

/// Parses a commit, checking it belongs to the subject it was published on.
pub(crate) fn parse_commit(
    payload: &[u8],
    aggregate: Option<AggregateRef>,
) -> Result<Commit, String> {
    let commit = Commit::from_bytes(payload).map_err(|e| format!("not a commit: {e}"))?;
    if Some(commit.aggregate) != aggregate {
        return Err(format!(
            "a commit of {} on the subject of another aggregate",
            commit.aggregate
        ));
    }
    Ok(commit)
}
