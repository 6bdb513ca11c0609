//! `proto/` is generated from the code and must never drift from it.

use std::path::PathBuf;

pub(crate) fn proto_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto")
}

pub(crate) fn updating() -> bool {
    std::env::var_os("UPDATE_PROTO").is_some()
}

pub(crate) fn pretty(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("json values serialise");
    text.push('\n');
    text
}

#[test]
fn every_schema_in_proto_is_what_the_code_generates() {
    let documents = loan_contract::schema::documents();
    let mut stale = Vec::new();
    for (path, document) in &documents {
        let file = proto_dir().join(path);
        let expected = pretty(document);
        let actual = std::fs::read_to_string(&file).unwrap_or_default();
        if actual != expected {
            if updating() {
                std::fs::create_dir_all(file.parent().expect("has a parent"))
                    .expect("create proto dir");
                std::fs::write(&file, expected).expect("write schema");
            } else {
                stale.push(path.clone());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "proto/ is out of date for {stale:?}; run `UPDATE_PROTO=1 cargo test -p loan-contract` and commit"
    );
}

#[test]
fn there_is_a_schema_for_every_command_and_event_type() {
    let documents = loan_contract::schema::documents();
    for kind in loan_domain::CommandKind::ALL {
        assert!(
            documents.contains_key(&format!("commands/{}.json", kind.name())),
            "no schema for {kind}"
        );
    }
    for (aggregate, event_type, _) in loan_contract::event::EVENT_TYPES {
        let path = format!("events/{}/{event_type}.json", aggregate.as_str());
        assert!(documents.contains_key(&path), "no schema for {path}");
    }
    let event_schemas = documents
        .keys()
        .filter(|path| path.starts_with("events/") && *path != "events/envelope.json")
        .count();
    assert_eq!(
        event_schemas,
        loan_contract::event::EVENT_TYPES.len(),
        "a domain event type is missing from EVENT_TYPES"
    );
}
