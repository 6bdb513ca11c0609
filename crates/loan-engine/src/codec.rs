//! Between the typed events the domain produces and the stored form the log keeps.

use loan_contract::EventEnvelope;
use loan_contract::event::StoredEvent;
use loan_store::{Recorded, StoreError};

/// The stored form of sealed events.
pub(crate) fn to_stored(events: &[EventEnvelope]) -> Vec<StoredEvent> {
    events.iter().map(EventEnvelope::to_stored).collect()
}

/// Decodes (and upcasts) the events of a recorded commit. A commit that does not decode
/// is corrupt: the engine refuses to act on an aggregate it cannot read.
pub(crate) fn decode(recorded: &Recorded) -> Result<Vec<EventEnvelope>, StoreError> {
    recorded
        .commit
        .events
        .iter()
        .map(|stored| {
            EventEnvelope::from_stored(stored.clone()).map_err(|e| StoreError::Corrupt {
                position: recorded.position,
                reason: e.to_string(),
            })
        })
        .collect()
}
