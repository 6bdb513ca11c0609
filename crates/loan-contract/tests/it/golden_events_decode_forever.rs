//! Stored history stays readable forever, and what the code writes matches `proto/`.
//!
//! `proto/examples/` holds one example of every command, reply and event type/version,
//! taken from the scripted history. Files are append-only: the test writes an example
//! that does not exist yet (and fails so it gets committed) but never rewrites one.
//! Every stored event example must decode with today's code, and an example of a
//! current schema version must re-encode to exactly the stored JSON.

use std::collections::BTreeMap;
use std::path::Path;

use loan_contract::schema::documents;
use loan_contract::{CommandReply, EventEnvelope, decode_command};
use loan_domain::CommandKind;
use serde_json::Value;

use crate::proto_matches_the_code::{pretty, proto_dir, updating};
use crate::scenario::full_history;

fn validator(path: &str) -> jsonschema::Validator {
    let docs = documents();
    let schema = docs.get(path).unwrap_or_else(|| panic!("no schema {path}"));
    jsonschema::validator_for(schema)
        .unwrap_or_else(|e| panic!("schema {path} does not compile: {e}"))
}

fn assert_valid(schema_path: &str, instance: &Value, what: &str) {
    let validator = validator(schema_path);
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match {schema_path}: {errors:#?}"
    );
}

fn data_schema(event: &Value) -> String {
    format!(
        "events/{}/{}.json",
        event["aggregate_type"].as_str().expect("aggregate_type"),
        event["event_type"].as_str().expect("event_type")
    )
}

/// The first example of each command, event type and reply kind in the scripted history.
fn examples() -> BTreeMap<String, Value> {
    let script = full_history();
    let mut out = BTreeMap::new();
    for step in &script.steps {
        out.entry(format!("examples/commands/{}.json", step.kind.name()))
            .or_insert_with(|| step.request.clone());
        if let CommandReply::Ok { events, .. } = &step.reply {
            for event in events {
                let stored = serde_json::to_value(event).expect("events serialise");
                let path = format!(
                    "examples/events/{}/{}.v{}.json",
                    stored["aggregate_type"].as_str().expect("aggregate_type"),
                    stored["event_type"].as_str().expect("event_type"),
                    stored["schema_version"]
                );
                out.entry(path).or_insert(stored);
            }
        }
        if matches!(step.reply, CommandReply::Error { .. }) {
            out.entry("examples/replies/error.json".into())
                .or_insert_with(|| serde_json::to_value(&step.reply).expect("reply serialises"));
        }
        if step.kind == CommandKind::DisburseLoan {
            out.insert(
                "examples/replies/ok.json".into(),
                serde_json::to_value(&step.reply).expect("reply serialises"),
            );
        }
    }
    out
}

#[test]
fn the_scripted_history_covers_every_command_and_event_type() {
    let examples = examples();
    for kind in CommandKind::ALL {
        assert!(
            examples.contains_key(&format!("examples/commands/{}.json", kind.name())),
            "the script never sends {kind}"
        );
    }
    for (aggregate, event_type, version) in loan_contract::event::EVENT_TYPES {
        let path = format!(
            "examples/events/{}/{event_type}.v{version}.json",
            aggregate.as_str()
        );
        assert!(
            examples.contains_key(&path),
            "the script never produces {path}"
        );
    }
}

#[test]
fn golden_examples_exist_for_everything_and_are_never_rewritten() {
    let mut written = Vec::new();
    for (path, value) in examples() {
        let file = proto_dir().join(&path);
        if !file.exists() {
            std::fs::create_dir_all(file.parent().expect("has parent"))
                .expect("create examples dir");
            std::fs::write(&file, pretty(&value)).expect("write example");
            written.push(path);
        }
    }
    assert!(
        updating() || written.is_empty(),
        "new golden examples were written, commit them: {written:?}"
    );
}

fn json_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files.extend(json_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn every_stored_event_example_decodes_and_current_versions_reencode_identically() {
    let files = json_files(&proto_dir().join("examples/events"));
    assert!(
        files.len() >= loan_contract::event::EVENT_TYPES.len(),
        "expected a golden example per event type, found {}",
        files.len()
    );
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read example");
        let stored: Value = serde_json::from_str(&text).expect("examples are JSON");
        assert_valid("events/envelope.json", &stored, &file.display().to_string());
        let decoded = EventEnvelope::decode(text.as_bytes())
            .unwrap_or_else(|e| panic!("{} no longer decodes: {e}", file.display()));
        let aggregate = decoded.meta.aggregate_type;
        let current = loan_contract::event::current_version(aggregate, decoded.event.type_name())
            .expect("known type");
        if stored["schema_version"] == current {
            assert_valid(
                &data_schema(&stored),
                &stored["data"],
                &file.display().to_string(),
            );
            let reencoded = serde_json::to_value(&decoded).expect("serialise");
            assert_eq!(
                reencoded,
                stored,
                "{} re-encodes differently: the current format changed",
                file.display()
            );
        }
    }
}

#[test]
fn every_event_the_code_writes_matches_its_schema() {
    let script = full_history();
    let events = script.events();
    assert!(
        events.len() > 25,
        "the script should produce a rich history, got {}",
        events.len()
    );
    for event in events {
        let stored = serde_json::to_value(&event).expect("serialise");
        let what = format!("{} v{}", event.event.type_name(), event.meta.version);
        assert_valid("events/envelope.json", &stored, &what);
        assert_valid(&data_schema(&stored), &stored["data"], &what);
        let round_trip: EventEnvelope =
            serde_json::from_value(stored).expect("decode what we wrote");
        assert_eq!(round_trip, event, "{what} does not round-trip");
    }
}

#[test]
fn command_examples_validate_against_their_schemas_and_decode() {
    for kind in CommandKind::ALL {
        let file = proto_dir().join(format!("examples/commands/{}.json", kind.name()));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let request: Value = serde_json::from_str(&text).expect("JSON");
        assert_valid(
            &format!("commands/{}.json", kind.name()),
            &request,
            &file.display().to_string(),
        );
        decode_command(kind, text.as_bytes())
            .unwrap_or_else(|e| panic!("{} does not decode: {e:?}", file.display()));
    }
}

#[test]
fn replies_validate_against_their_schema() {
    let script = full_history();
    for step in &script.steps {
        let reply = serde_json::to_value(&step.reply).expect("serialise");
        assert_valid("replies/command_reply.json", &reply, step.kind.name());
    }
    for name in ["ok", "error"] {
        let path = format!("examples/replies/{name}.json");
        let example = std::fs::read_to_string(proto_dir().join(&path))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_valid(
            "replies/command_reply.json",
            &serde_json::from_str(&example).expect("JSON"),
            &path,
        );
    }
    let error = serde_json::to_value(CommandReply::error(
        loan_contract::ErrorCode::RuleViolated,
        "amount 9.99 exceeds everything outstanding",
        Some("payload.amount".into()),
    ))
    .expect("serialise");
    assert_valid("replies/command_reply.json", &error, "error reply");
}

#[test]
fn the_scripted_history_ends_in_the_expected_states() {
    let script = full_history();
    let status = |id: u128| script.loan(uuid::Uuid::from_u128(id)).status_name();
    assert_eq!(status(0xA1), "written_off");
    assert_eq!(status(0xB1), "withdrawn");
    assert_eq!(status(0xD1), "rejected");
}
