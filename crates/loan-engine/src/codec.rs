//! Between the typed events the domain produces and the stored form the log keeps.
//!
//! Writing ([`encode`]): each event becomes its contract form (`EventEnvelope::to_stored`),
//! then every sensitive field (national ID, bank card, phone: [`SENSITIVE_FIELDS`]) is
//! replaced by an [`EncryptedField`] under the customer's data key, and the blind index of
//! the national ID and the phone is added next to it (`national_id_index`, `phone_index`).
//! No sensitive value reaches the log in clear.
//!
//! Reading ([`Reader::decode`]): the blind indexes are dropped, every encrypted field is
//! decrypted, or becomes `"erased"` when the customer's data key was destroyed, and the
//! result is decoded (and upcast) by `EventEnvelope::from_stored`. A clear value written
//! before encryption existed is read as it is. A value that does not authenticate, or
//! whose key is missing without having been destroyed, makes the commit corrupt: the
//! engine refuses to act on what it cannot read, and never guesses "erased".

use std::collections::HashMap;

use loan_contract::event::StoredEvent;
use loan_contract::{ErrorCode, ErrorReply, EventEnvelope};
use loan_domain::AggregateType;
use loan_domain::customer::ERASED;
use loan_store::{Commit, Recorded, StoreError};
use serde_json::Value;
use tracing::error;
use uuid::Uuid;

use crate::Failure;
use crate::vault::{DataKey, EncryptedField, KeyState, Vault, VaultError};

/// A sensitive field of an event type, and the field holding its blind index, if any.
type Field = (&'static str, Option<&'static str>);

/// The sensitive fields of each customer event type. Loan events carry none.
pub(crate) const SENSITIVE_FIELDS: &[(&str, &[Field])] = &[
    (
        "customer_registered",
        &[
            ("national_id", Some("national_id_index")),
            ("bank_card", None),
            ("phone", Some("phone_index")),
        ],
    ),
    ("contact_updated", &[("phone", Some("phone_index"))]),
];

fn sensitive_fields(aggregate: AggregateType, event_type: &str) -> &'static [Field] {
    if aggregate != AggregateType::Customer {
        return &[];
    }
    SENSITIVE_FIELDS
        .iter()
        .find(|(t, _)| *t == event_type)
        .map_or(&[], |(_, fields)| fields)
}

fn internal(message: impl Into<String>) -> Failure {
    Failure::Reply(ErrorReply::new(ErrorCode::Internal, message, None))
}

fn vault_failure(error: VaultError) -> Failure {
    match error {
        VaultError::Erased(customer) => Failure::Reply(ErrorReply::new(
            ErrorCode::InvalidTransition,
            format!("customer {customer} has been erased"),
            None,
        )),
        VaultError::Store(store) => Failure::Store(store),
        other => {
            error!(error = %other, "cannot use a data key");
            internal("a data key cannot be used; an operator has been alerted")
        }
    }
}

/// The stored form of sealed events, sensitive fields encrypted and blind-indexed.
pub(crate) async fn encode(
    vault: &Vault,
    events: &[EventEnvelope],
) -> Result<Vec<StoredEvent>, Failure> {
    let mut key: Option<DataKey> = None;
    let mut out = Vec::with_capacity(events.len());
    for envelope in events {
        let mut stored = envelope.to_stored();
        for (field, index) in sensitive_fields(stored.aggregate_type, &stored.event_type) {
            let clear = match stored.data.get(*field) {
                None | Some(Value::Null) => continue,
                Some(Value::String(clear)) if clear != ERASED => clear.clone(),
                Some(_) => {
                    return Err(internal(format!(
                        "{} field {field} is neither a value nor absent",
                        stored.event_type
                    )));
                }
            };
            if let Some(index) = index {
                stored.data.insert(
                    (*index).to_owned(),
                    Value::String(vault.blind_index(&clear)),
                );
            }
            let key = match &mut key {
                Some(key) => key,
                slot => slot.insert(
                    vault
                        .key_for_writing(stored.aggregate_id)
                        .await
                        .map_err(vault_failure)?,
                ),
            };
            let sealed = key.seal(stored.event_id, field, &clear);
            stored.data.insert(
                (*field).to_owned(),
                serde_json::to_value(sealed).unwrap_or(Value::Null),
            );
        }
        out.push(stored);
    }
    Ok(out)
}

/// Decodes stored commits, fetching each customer's data key at most once.
pub(crate) struct Reader<'v> {
    vault: &'v Vault,
    keys: HashMap<Uuid, KeyState>,
}

impl<'v> Reader<'v> {
    pub(crate) fn new(vault: &'v Vault) -> Self {
        Reader {
            vault,
            keys: HashMap::new(),
        }
    }

    async fn key(&mut self, customer: Uuid, position: u64) -> Result<&KeyState, StoreError> {
        if !self.keys.contains_key(&customer) {
            let state = match self.vault.key_for_reading(customer).await {
                Ok(state) => state,
                Err(VaultError::Store(error)) => return Err(error),
                Err(other) => {
                    error!(error = %other, position, "cannot use a data key");
                    return Err(StoreError::Corrupt {
                        position,
                        reason: other.to_string(),
                    });
                }
            };
            self.keys.insert(customer, state);
        }
        self.keys.get(&customer).ok_or_else(|| StoreError::Corrupt {
            position,
            reason: "data key cache".into(),
        })
    }

    /// Decrypts (or marks erased) the sensitive fields of one stored event in place.
    async fn open(&mut self, stored: &mut StoredEvent, position: u64) -> Result<(), StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt { position, reason };
        for (field, index) in sensitive_fields(stored.aggregate_type, &stored.event_type) {
            if let Some(index) = index {
                stored.data.remove(*index);
            }
            let Some(value) = stored.data.get(*field) else {
                continue;
            };
            if !EncryptedField::is_encrypted(value) {
                // Null, or a clear value written before encryption: read as it is.
                continue;
            }
            let sealed: EncryptedField = serde_json::from_value(value.clone()).map_err(|e| {
                corrupt(format!(
                    "{} {} field {field}: {e}",
                    stored.event_type, stored.event_id
                ))
            })?;
            let clear = match self.key(stored.aggregate_id, position).await? {
                KeyState::Destroyed => ERASED.to_owned(),
                KeyState::Missing => {
                    return Err(corrupt(format!(
                        "the data key of customer {} is missing, and was never destroyed",
                        stored.aggregate_id
                    )));
                }
                KeyState::Active(key) if key.id() != sealed.key => {
                    return Err(corrupt(format!(
                        "{} {} field {field} was encrypted under data key {}, customer {} has {}",
                        stored.event_type,
                        stored.event_id,
                        sealed.key,
                        stored.aggregate_id,
                        key.id()
                    )));
                }
                KeyState::Active(key) => {
                    key.open(stored.event_id, field, &sealed).map_err(|e| {
                        corrupt(format!(
                            "{} {} field {field}: {e}",
                            stored.event_type, stored.event_id
                        ))
                    })?
                }
            };
            stored
                .data
                .insert((*field).to_owned(), Value::String(clear));
        }
        Ok(())
    }

    /// Decrypts and decodes (and upcasts) the events of a recorded commit. A commit that
    /// does not decode is corrupt: the engine refuses to act on an aggregate it cannot read.
    pub(crate) async fn decode(
        &mut self,
        recorded: &Recorded,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        self.decode_commit(recorded.position, &recorded.commit)
            .await
    }

    /// [`Reader::decode`] of a commit read at `position`.
    pub(crate) async fn decode_commit(
        &mut self,
        position: u64,
        commit: &Commit,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        self.decode_events(position, commit.events.clone()).await
    }

    /// [`Reader::decode`] of the stored events of a commit read at `position`, consumed
    /// (no copy of each event's data).
    pub(crate) async fn decode_events(
        &mut self,
        position: u64,
        events: Vec<StoredEvent>,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let mut out = Vec::with_capacity(events.len());
        for mut stored in events {
            self.open(&mut stored, position).await?;
            out.push(
                EventEnvelope::from_stored(stored).map_err(|e| StoreError::Corrupt {
                    position,
                    reason: e.to_string(),
                })?,
            );
        }
        Ok(out)
    }
}

/// Decodes one recorded commit (see [`Reader::decode`]).
pub(crate) async fn decode(
    vault: &Vault,
    recorded: &Recorded,
) -> Result<Vec<EventEnvelope>, StoreError> {
    Reader::new(vault).decode(recorded).await
}
