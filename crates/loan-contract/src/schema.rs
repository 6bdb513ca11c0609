//! The JSON Schemas and the AsyncAPI document published in `proto/`, generated from the
//! Rust types so they cannot drift: a test regenerates them and fails if `proto/`
//! differs (`UPDATE_PROTO=1 cargo test -p loan-contract` rewrites them).
//!
//! Layout under `proto/`:
//! * `commands/<command>.json`: the request body (envelope + payload) of each command;
//! * `events/envelope.json`: the stored event envelope;
//! * `events/<aggregate>/<event_type>.json`: the `data` of each event type;
//! * `replies/command_reply.json`, `replies/error_reply.json`;
//! * `notifications/<kind>.json`: the body of each notification kind;
//! * `checkpoint.json`: a checkpoint of the log;
//! * `asyncapi.json`: the subject map as an AsyncAPI 3 document.

use std::collections::BTreeMap;

use loan_domain::collection::{self, CollectionCaseEvent};
use loan_domain::customer::{self, CustomerEvent};
use loan_domain::loan::{self, LoanEvent};
use loan_domain::{AggregateType, CommandKind};
use schemars::{JsonSchema, generate::SchemaSettings};
use serde_json::{Value, json};

use crate::checkpoint::Checkpoint;
use crate::command::CommandEnvelope;
use crate::event::{EVENT_TYPES, StoredEvent};
use crate::notification::{Notification, NotificationKind};
use crate::reply::{CommandReply, ErrorReply};

/// Base URI of the schema ids; documents refer to each other relative to it.
pub const SCHEMA_BASE: &str = "https://schemas.loan-engine.example/";

fn schema_of<T: JsonSchema>(id: &str, title: &str) -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut value = generator.into_root_schema_for::<T>().to_value();
    if let Some(object) = value.as_object_mut() {
        object.insert("$id".into(), Value::String(format!("{SCHEMA_BASE}{id}")));
        object.insert("title".into(), Value::String(title.to_owned()));
    }
    value
}

fn command_schema(kind: CommandKind) -> Value {
    use CommandKind as K;
    let id = format!("commands/{}.json", kind.name());
    let title = format!("{} command", kind.name());
    match kind {
        K::RegisterCustomer => {
            schema_of::<CommandEnvelope<customer::RegisterCustomer>>(&id, &title)
        }
        K::UpdateContact => schema_of::<CommandEnvelope<customer::UpdateContact>>(&id, &title),
        K::UpdateEmployment => {
            schema_of::<CommandEnvelope<customer::UpdateEmployment>>(&id, &title)
        }
        K::UpdateFinancials => {
            schema_of::<CommandEnvelope<customer::UpdateFinancials>>(&id, &title)
        }
        K::RecordCreditAssessment => {
            schema_of::<CommandEnvelope<customer::RecordCreditAssessment>>(&id, &title)
        }
        K::VerifyIdentity => schema_of::<CommandEnvelope<customer::VerifyIdentity>>(&id, &title),
        K::EraseCustomer => schema_of::<CommandEnvelope<customer::EraseCustomer>>(&id, &title),
        K::CaptureLead => schema_of::<CommandEnvelope<loan::CaptureLead>>(&id, &title),
        K::AssignOfficer => schema_of::<CommandEnvelope<loan::AssignOfficer>>(&id, &title),
        K::LogFollowUp => schema_of::<CommandEnvelope<loan::LogFollowUp>>(&id, &title),
        K::SubmitForReview => schema_of::<CommandEnvelope<loan::SubmitForReview>>(&id, &title),
        K::ApproveApplication => {
            schema_of::<CommandEnvelope<loan::ApproveApplication>>(&id, &title)
        }
        K::RejectApplication => schema_of::<CommandEnvelope<loan::RejectApplication>>(&id, &title),
        K::DecideAutomatically => {
            schema_of::<CommandEnvelope<loan::DecideAutomatically>>(&id, &title)
        }
        K::SignContract => schema_of::<CommandEnvelope<loan::SignContract>>(&id, &title),
        K::DisburseLoan => schema_of::<CommandEnvelope<loan::DisburseLoan>>(&id, &title),
        K::RecordRepayment => schema_of::<CommandEnvelope<loan::RecordRepayment>>(&id, &title),
        K::ReverseRepayment => schema_of::<CommandEnvelope<loan::ReverseRepayment>>(&id, &title),
        K::EvaluateDelinquency => {
            schema_of::<CommandEnvelope<loan::EvaluateDelinquency>>(&id, &title)
        }
        K::WriteOffLoan => schema_of::<CommandEnvelope<loan::WriteOffLoan>>(&id, &title),
        K::WithdrawApplication => {
            schema_of::<CommandEnvelope<loan::WithdrawApplication>>(&id, &title)
        }
        K::OpenCollectionCase => {
            schema_of::<CommandEnvelope<collection::OpenCollectionCase>>(&id, &title)
        }
        K::RecordContactAttempt => {
            schema_of::<CommandEnvelope<collection::RecordContactAttempt>>(&id, &title)
        }
        K::RecordPromiseToPay => {
            schema_of::<CommandEnvelope<collection::RecordPromiseToPay>>(&id, &title)
        }
        K::ResolveCollectionCase => {
            schema_of::<CommandEnvelope<collection::ResolveCollectionCase>>(&id, &title)
        }
    }
}

/// Splits the schema of an internally tagged event enum into one schema per event type,
/// describing the stored `data` (the tag lives in the envelope's `event_type`).
fn event_data_schemas(aggregate: AggregateType, whole: &Value) -> BTreeMap<String, Value> {
    let defs = whole.get("$defs").cloned().unwrap_or_else(|| json!({}));
    let variants = whole
        .get("oneOf")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    for mut variant in variants {
        let Some(event_type) = variant
            .pointer("/properties/type/const")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            continue;
        };
        if let Some(properties) = variant.get_mut("properties").and_then(Value::as_object_mut) {
            properties.remove("type");
        }
        if let Some(required) = variant.get_mut("required").and_then(Value::as_array_mut) {
            required.retain(|name| name != "type");
        }
        let id = format!("events/{}/{event_type}.json", aggregate.as_str());
        let version = crate::event::current_version(aggregate, &event_type).unwrap_or(1);
        let mut document = serde_json::Map::new();
        document.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        document.insert("$id".into(), Value::String(format!("{SCHEMA_BASE}{id}")));
        document.insert(
            "title".into(),
            Value::String(format!("{event_type} (schema version {version})")),
        );
        if let Value::Object(fields) = variant {
            document.extend(fields);
        }
        document.insert("$defs".into(), defs.clone());
        out.insert(id, Value::Object(document));
    }
    out
}

/// Splits the schema of the `kind`-tagged [`Notification`] enum into one schema per kind
/// (each keeping its `kind` constant: it is part of the body).
fn notification_schemas(whole: &Value) -> BTreeMap<String, Value> {
    let defs = whole.get("$defs").cloned().unwrap_or_else(|| json!({}));
    let variants = whole
        .get("oneOf")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    for variant in variants {
        let Some(kind) = variant
            .pointer("/properties/kind/const")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            continue;
        };
        let id = format!("notifications/{kind}.json");
        let mut document = serde_json::Map::new();
        document.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        document.insert("$id".into(), Value::String(format!("{SCHEMA_BASE}{id}")));
        document.insert(
            "title".into(),
            Value::String(format!("{kind} notification")),
        );
        if let Value::Object(fields) = variant {
            document.extend(fields);
        }
        if defs.as_object().is_some_and(|d| !d.is_empty()) {
            document.insert("$defs".into(), defs.clone());
        }
        out.insert(id, Value::Object(document));
    }
    out
}

/// Every document of `proto/`, keyed by its path relative to `proto/`.
pub fn documents() -> BTreeMap<String, Value> {
    let mut docs = BTreeMap::new();
    for kind in CommandKind::ALL {
        docs.insert(
            format!("commands/{}.json", kind.name()),
            command_schema(kind),
        );
    }
    docs.insert(
        "events/envelope.json".into(),
        schema_of::<StoredEvent>("events/envelope.json", "Stored event envelope"),
    );
    docs.extend(event_data_schemas(
        AggregateType::Customer,
        &schema_of::<CustomerEvent>("customer", "customer"),
    ));
    docs.extend(event_data_schemas(
        AggregateType::Loan,
        &schema_of::<LoanEvent>("loan", "loan"),
    ));
    docs.extend(event_data_schemas(
        AggregateType::CollectionCase,
        &schema_of::<CollectionCaseEvent>("collection_case", "collection_case"),
    ));
    docs.insert(
        "replies/command_reply.json".into(),
        schema_of::<CommandReply>("replies/command_reply.json", "Command reply"),
    );
    docs.insert(
        "replies/error_reply.json".into(),
        schema_of::<ErrorReply>("replies/error_reply.json", "Error reply"),
    );
    docs.extend(notification_schemas(&schema_of::<Notification>(
        "notifications",
        "notification",
    )));
    docs.insert(
        "checkpoint.json".into(),
        schema_of::<Checkpoint>("checkpoint.json", "Checkpoint of the event log"),
    );
    docs.insert("asyncapi.json".into(), asyncapi());
    docs
}

/// The subject map as an AsyncAPI 3.0 document (`{prefix}` is a channel parameter).
fn asyncapi() -> Value {
    let mut channels = serde_json::Map::new();
    let mut operations = serde_json::Map::new();
    let mut messages = serde_json::Map::new();
    for kind in CommandKind::ALL {
        let name = kind.name();
        let aggregate = kind.aggregate().as_str();
        let roles: Vec<&str> = kind
            .allowed_roles()
            .iter()
            .map(|role| role.as_str())
            .collect();
        messages.insert(
            name.into(),
            json!({ "name": name, "contentType": "application/json", "payload": { "$ref": format!("commands/{name}.json") } }),
        );
        channels.insert(
            name.into(),
            json!({
                "address": format!("{{prefix}}.cmd.{aggregate}.{name}"),
                "description": format!("Request/reply: the {name} command. Allowed roles: {}.", roles.join(", ")),
                "parameters": { "prefix": { "description": "Deployment subject prefix, e.g. lending." } },
                "messages": { name: { "$ref": format!("#/components/messages/{name}") } }
            }),
        );
        operations.insert(
            name.into(),
            json!({
                "action": "receive",
                "channel": { "$ref": format!("#/channels/{name}") },
                "summary": format!("The command service applies {name} and replies."),
                "reply": { "channel": { "$ref": "#/channels/reply" }, "messages": [{ "$ref": "#/components/messages/command_reply" }] }
            }),
        );
    }
    messages.insert(
        "command_reply".into(),
        json!({ "name": "command_reply", "contentType": "application/json", "payload": { "$ref": "replies/command_reply.json" } }),
    );
    messages.insert(
        "event".into(),
        json!({ "name": "event", "contentType": "application/json", "payload": { "$ref": "events/envelope.json" } }),
    );
    channels.insert(
        "reply".into(),
        json!({ "address": null, "description": "The request's reply inbox.", "messages": { "command_reply": { "$ref": "#/components/messages/command_reply" } } }),
    );
    channels.insert(
        "events".into(),
        json!({
            "address": "{prefix}.events.{aggregate}.{aggregate_id}",
            "description": "The committed events of one aggregate, in order (JetStream stream). Event types and their current schema versions are listed in x-event-types.",
            "parameters": {
                "prefix": { "description": "Deployment subject prefix." },
                "aggregate": { "enum": AggregateType::ALL.map(AggregateType::as_str) },
                "aggregate_id": { "description": "UUID of the aggregate." }
            },
            "messages": { "event": { "$ref": "#/components/messages/event" } }
        }),
    );
    operations.insert(
        "events".into(),
        json!({ "action": "send", "channel": { "$ref": "#/channels/events" }, "summary": "The command service appends the events of each applied command." }),
    );
    messages.insert(
        "checkpoint".into(),
        json!({ "name": "checkpoint", "contentType": "application/json", "payload": { "$ref": "checkpoint.json" } }),
    );
    channels.insert(
        "checkpoints".into(),
        json!({
            "address": "{prefix}.checkpoints",
            "description": "Checkpoints of the event log, in the same JetStream stream as the events: each carries the running log hash and the number of commits up to the position just before it, and names the previous checkpoint. Appended only if nothing was written after the position it covers (Nats-Expected-Last-Sequence). Not under {prefix}.events.>, so consumers of the events never receive them.",
            "parameters": { "prefix": { "description": "Deployment subject prefix." } },
            "messages": { "checkpoint": { "$ref": "#/components/messages/checkpoint" } }
        }),
    );
    operations.insert(
        "checkpoints".into(),
        json!({ "action": "send", "channel": { "$ref": "#/channels/checkpoints" }, "summary": "The command service's checkpoint writer appends a checkpoint every N commits or T seconds." }),
    );
    for kind in NotificationKind::ALL {
        let name = kind.name();
        let key = format!("notify_{name}");
        messages.insert(
            key.clone(),
            json!({ "name": name, "contentType": "application/json", "payload": { "$ref": format!("notifications/{name}.json") } }),
        );
        channels.insert(
            key.clone(),
            json!({
                "address": format!("{{prefix}}.notify.{name}"),
                "description": format!("{} Captured by the notification stream (duplicate window); the header Nats-Msg-Id equals the body's id.", kind.description()),
                "parameters": { "prefix": { "description": "Deployment subject prefix." } },
                "messages": { key.clone(): { "$ref": format!("#/components/messages/{key}") } }
            }),
        );
        operations.insert(
            key.clone(),
            json!({ "action": "send", "channel": { "$ref": format!("#/channels/{key}") }, "summary": format!("The automation worker publishes {name} notifications for gateways (SMS, e-mail, app).") }),
        );
    }
    let event_types: Vec<Value> = EVENT_TYPES
        .iter()
        .map(|(aggregate, event_type, version)| {
            json!({ "aggregate": aggregate.as_str(), "event_type": event_type, "schema_version": version, "data": format!("events/{}/{event_type}.json", aggregate.as_str()) })
        })
        .collect();
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Loan lifecycle engine",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Commands over NATS request/reply, one subject per command; events on one subject per aggregate in a JetStream stream."
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages },
        "x-event-types": event_types
    })
}
