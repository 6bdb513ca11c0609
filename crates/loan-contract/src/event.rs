//! The stored event envelope, the registry of event types, and upcasting.
//!
//! On the wire and in the log an event is a flat JSON object: the envelope fields
//! (`event_id` (UUID v7), aggregate, `version` within the aggregate, `event_type`,
//! `schema_version`, business date, recording time, command / correlation / causation
//! ids, actor) and `data`, the event's own fields. The domain enums are never stored
//! directly: [`EventEnvelope::decode`] first brings `data` from its stored
//! `schema_version` up to the current one ([`upcast`]), then decodes it. Old history
//! therefore stays readable after an event changes shape; the golden examples in
//! `proto/examples/events/` are decoded by the tests forever to prove it.

use chrono::{DateTime, NaiveDate, Utc};
use loan_domain::collection::CollectionCaseEvent;
use loan_domain::customer::CustomerEvent;
use loan_domain::loan::LoanEvent;
use loan_domain::{Actor, AggregateType};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Every event type with its current schema version. Written once; a new version of an
/// event bumps its number here and adds a step to [`upcast`].
pub const EVENT_TYPES: &[(AggregateType, &str, u32)] = &[
    (AggregateType::Customer, "customer_registered", 1),
    (AggregateType::Customer, "contact_updated", 1),
    (AggregateType::Customer, "employment_updated", 1),
    (AggregateType::Customer, "financials_updated", 1),
    (AggregateType::Customer, "credit_assessed", 1),
    (AggregateType::Customer, "identity_verified", 1),
    (AggregateType::Customer, "customer_erased", 1),
    (AggregateType::Loan, "lead_captured", 1),
    (AggregateType::Loan, "officer_assigned", 1),
    (AggregateType::Loan, "follow_up_logged", 1),
    (AggregateType::Loan, "submitted_for_review", 1),
    (AggregateType::Loan, "automated_decision_made", 1),
    (AggregateType::Loan, "application_approved", 1),
    (AggregateType::Loan, "application_rejected", 1),
    (AggregateType::Loan, "application_withdrawn", 1),
    (AggregateType::Loan, "contract_signed", 1),
    (AggregateType::Loan, "loan_disbursed", 1),
    (AggregateType::Loan, "repayment_recorded", 1),
    (AggregateType::Loan, "repayment_reversed", 1),
    (AggregateType::Loan, "penalty_accrued", 1),
    (AggregateType::Loan, "aging_bucket_changed", 1),
    (AggregateType::Loan, "loan_status_changed", 1),
    (AggregateType::Loan, "loan_written_off", 1),
    (AggregateType::CollectionCase, "collection_case_opened", 1),
    (AggregateType::CollectionCase, "contact_attempted", 1),
    (AggregateType::CollectionCase, "promise_to_pay_recorded", 1),
    (AggregateType::CollectionCase, "collection_case_resolved", 1),
];

/// The current schema version of an event type.
pub fn current_version(aggregate: AggregateType, event_type: &str) -> Option<u32> {
    EVENT_TYPES
        .iter()
        .find(|(a, t, _)| *a == aggregate && *t == event_type)
        .map(|(_, _, v)| *v)
}

/// Why a stored event could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a stored event: {0}")]
    Envelope(#[source] serde_json::Error),
    #[error("unknown event type {aggregate}/{event_type}")]
    UnknownType {
        aggregate: &'static str,
        event_type: String,
    },
    #[error(
        "{event_type} schema version {version} is newer than this build understands (up to {current})"
    )]
    NewerVersion {
        event_type: String,
        version: u32,
        current: u32,
    },
    #[error("{event_type} schema version {version} has no upcaster")]
    NoUpcaster { event_type: String, version: u32 },
    #[error("{event_type} v{version} data does not decode: {source}")]
    Data {
        event_type: String,
        version: u32,
        #[source]
        source: serde_json::Error,
    },
}

/// Brings `data` of `event_type` from `version` to the current version, one step at a
/// time. Every event type is at version 1 so far, so there is no step yet; the first
/// change of an event's shape adds its `(type, from_version)` arm here.
pub fn upcast(
    aggregate: AggregateType,
    event_type: &str,
    version: u32,
    data: Value,
) -> Result<Value, DecodeError> {
    let current =
        current_version(aggregate, event_type).ok_or_else(|| DecodeError::UnknownType {
            aggregate: aggregate.as_str(),
            event_type: event_type.to_owned(),
        })?;
    if version > current {
        return Err(DecodeError::NewerVersion {
            event_type: event_type.to_owned(),
            version,
            current,
        });
    }
    if version == current {
        return Ok(data);
    }
    // No event type has an older version yet.
    Err(DecodeError::NoUpcaster {
        event_type: event_type.to_owned(),
        version,
    })
}

/// A domain event of any aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyEvent {
    Customer(CustomerEvent),
    Loan(LoanEvent),
    CollectionCase(CollectionCaseEvent),
}

impl AnyEvent {
    pub fn type_name(&self) -> &'static str {
        match self {
            AnyEvent::Customer(e) => e.type_name(),
            AnyEvent::Loan(e) => e.type_name(),
            AnyEvent::CollectionCase(e) => e.type_name(),
        }
    }

    pub fn aggregate_type(&self) -> AggregateType {
        match self {
            AnyEvent::Customer(_) => AggregateType::Customer,
            AnyEvent::Loan(_) => AggregateType::Loan,
            AnyEvent::CollectionCase(_) => AggregateType::CollectionCase,
        }
    }

    pub fn business_date(&self) -> Option<NaiveDate> {
        match self {
            AnyEvent::Customer(e) => match e {
                CustomerEvent::CustomerRegistered { registered_on, .. } => Some(*registered_on),
                CustomerEvent::CreditAssessed { assessed_on, .. } => Some(*assessed_on),
                CustomerEvent::IdentityVerified { verified_on, .. } => Some(*verified_on),
                CustomerEvent::CustomerErased { erased_on, .. } => Some(*erased_on),
                _ => None,
            },
            AnyEvent::Loan(e) => e.business_date(),
            AnyEvent::CollectionCase(e) => Some(e.business_date()),
        }
    }

    /// The event's own fields, without its type tag.
    fn data(&self) -> Value {
        let tagged = match self {
            AnyEvent::Customer(e) => serde_json::to_value(e),
            AnyEvent::Loan(e) => serde_json::to_value(e),
            AnyEvent::CollectionCase(e) => serde_json::to_value(e),
        };
        // Domain events are plain data; serialising them cannot fail.
        let mut value = tagged.unwrap_or(Value::Null);
        if let Some(object) = value.as_object_mut() {
            object.remove("type");
        }
        value
    }

    fn from_data(
        aggregate: AggregateType,
        event_type: &str,
        version: u32,
        data: Value,
    ) -> Result<Self, DecodeError> {
        let data_error = |source| DecodeError::Data {
            event_type: event_type.to_owned(),
            version,
            source,
        };
        let mut value = upcast(aggregate, event_type, version, data)?;
        match value.as_object_mut() {
            Some(object) => {
                object.insert("type".into(), Value::String(event_type.to_owned()));
            }
            None => {
                return Err(data_error(serde::de::Error::custom(
                    "data must be an object",
                )));
            }
        }
        match aggregate {
            AggregateType::Customer => serde_json::from_value(value)
                .map(AnyEvent::Customer)
                .map_err(data_error),
            AggregateType::Loan => serde_json::from_value(value)
                .map(AnyEvent::Loan)
                .map_err(data_error),
            AggregateType::CollectionCase => serde_json::from_value(value)
                .map(AnyEvent::CollectionCase)
                .map_err(data_error),
        }
    }
}

/// Who, when and why: everything about an event except the event itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    /// UUID v7, chosen by the writer (time-ordered).
    pub event_id: Uuid,
    pub aggregate_type: AggregateType,
    pub aggregate_id: Uuid,
    /// 1-based position of the event within its aggregate.
    pub version: u64,
    /// When it happened in business terms (value date, as-of date, decision day).
    pub business_date: Option<NaiveDate>,
    /// When the engine recorded it.
    pub recorded_at: DateTime<Utc>,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub actor: Actor,
}

/// An event with its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEnvelope {
    pub meta: EventMeta,
    pub event: AnyEvent,
}

/// The stored JSON form of an [`EventEnvelope`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "EventEnvelope",
    description = "A stored event: envelope fields and `data`, whose shape is given by `event_type` and `schema_version` (see events/<aggregate>/<event_type>.json)."
)]
pub struct StoredEvent {
    pub event_id: Uuid,
    pub aggregate_type: AggregateType,
    pub aggregate_id: Uuid,
    #[schemars(range(min = 1))]
    pub version: u64,
    pub event_type: String,
    #[schemars(range(min = 1))]
    pub schema_version: u32,
    pub business_date: Option<NaiveDate>,
    pub recorded_at: DateTime<Utc>,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub actor: Actor,
    pub data: serde_json::Map<String, Value>,
}

/// What a writer knows about the commit it seals events into.
#[derive(Debug, Clone)]
pub struct CommitContext {
    pub aggregate_id: Uuid,
    /// Version of the aggregate before this commit (0 for a new aggregate).
    pub base_version: u64,
    pub recorded_at: DateTime<Utc>,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub actor: Actor,
}

impl EventEnvelope {
    /// Wraps the events of one command; `next_id` supplies the event ids (UUID v7 in
    /// services, a counter in tests), so sealing stays deterministic.
    pub fn seal(
        events: Vec<AnyEvent>,
        ctx: &CommitContext,
        mut next_id: impl FnMut() -> Uuid,
    ) -> Vec<EventEnvelope> {
        events
            .into_iter()
            .zip(1..)
            .map(|(event, offset)| EventEnvelope {
                meta: EventMeta {
                    event_id: next_id(),
                    aggregate_type: event.aggregate_type(),
                    aggregate_id: ctx.aggregate_id,
                    version: ctx.base_version + offset,
                    business_date: event.business_date(),
                    recorded_at: ctx.recorded_at,
                    command_id: ctx.command_id,
                    correlation_id: ctx.correlation_id,
                    causation_id: ctx.causation_id,
                    actor: ctx.actor.clone(),
                },
                event,
            })
            .collect()
    }

    pub fn to_stored(&self) -> StoredEvent {
        let event_type = self.event.type_name();
        let data = match self.event.data() {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        StoredEvent {
            event_id: self.meta.event_id,
            aggregate_type: self.meta.aggregate_type,
            aggregate_id: self.meta.aggregate_id,
            version: self.meta.version,
            event_type: event_type.to_owned(),
            schema_version: current_version(self.meta.aggregate_type, event_type).unwrap_or(1),
            business_date: self.meta.business_date,
            recorded_at: self.meta.recorded_at,
            command_id: self.meta.command_id,
            correlation_id: self.meta.correlation_id,
            causation_id: self.meta.causation_id,
            actor: self.meta.actor.clone(),
            data,
        }
    }

    /// Decodes a stored event of any supported schema version.
    pub fn from_stored(stored: StoredEvent) -> Result<Self, DecodeError> {
        let event = AnyEvent::from_data(
            stored.aggregate_type,
            &stored.event_type,
            stored.schema_version,
            Value::Object(stored.data),
        )?;
        Ok(EventEnvelope {
            meta: EventMeta {
                event_id: stored.event_id,
                aggregate_type: stored.aggregate_type,
                aggregate_id: stored.aggregate_id,
                version: stored.version,
                business_date: stored.business_date,
                recorded_at: stored.recorded_at,
                command_id: stored.command_id,
                correlation_id: stored.correlation_id,
                causation_id: stored.causation_id,
                actor: stored.actor,
            },
            event,
        })
    }

    /// Decodes the JSON bytes of a stored event.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let stored: StoredEvent = serde_json::from_slice(bytes).map_err(DecodeError::Envelope)?;
        Self::from_stored(stored)
    }
}

impl Serialize for EventEnvelope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_stored().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EventEnvelope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = StoredEvent::deserialize(deserializer)?;
        EventEnvelope::from_stored(stored).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for EventEnvelope {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EventEnvelope".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        StoredEvent::json_schema(generator)
    }
}
