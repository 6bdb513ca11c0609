//! The HTTP command endpoint (embedded mode) takes the same envelope and gives the same
//! reply as NATS: ok, idempotent retries, and every refusal with its code and a status,
//! never an append.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::TimeZone as _;
use loan_command_service::http::{MAX_BODY_BYTES, router};
use loan_contract::{CommandReply, ErrorCode};
use loan_engine::clock::ManualClock;
use loan_engine::{Engine, EngineConfig, MasterKey, Vault};
use loan_store::EventStore as _;
use loan_store::memory::MemoryStore;
use serde_json::json;
use tower::ServiceExt as _;
use uuid::Uuid;

use crate::harness::{body, registration};

async fn post(app: &axum::Router, path: &str, body: Vec<u8>) -> (StatusCode, CommandReply) {
    let response = app
        .clone()
        .oneshot(
            Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .expect("request"),
        )
        .await
        .expect("the router answers");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), MAX_BODY_BYTES * 2)
        .await
        .expect("body");
    let reply = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "the body is a command reply ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, reply)
}

async fn log_length(store: &MemoryStore) -> usize {
    store.read_after(0, 10_000).await.expect("read").len()
}

fn code(reply: &CommandReply) -> Option<ErrorCode> {
    match reply {
        CommandReply::Ok { .. } => None,
        CommandReply::Error { error } => Some(error.code),
    }
}

#[tokio::test]
async fn commands_over_http_get_the_nats_reply_and_refusals_append_nothing() {
    let store = MemoryStore::new();
    let engine = Arc::new(Engine::new(
        store.clone(),
        Vault::in_memory(&MasterKey::generate()),
        EngineConfig::default(),
    ));
    let clock = Arc::new(ManualClock::new(
        chrono::Utc.with_ymd_and_hms(2026, 1, 5, 2, 0, 0).unwrap(),
    ));
    let app = router(engine, clock);
    let customer_id = Uuid::now_v7();
    let command_id = Uuid::now_v7();
    let register = body(command_id, &["customer_service"], registration(customer_id));

    let (status, reply) = post(
        &app,
        "/commands/customer/register_customer",
        register.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply:?}");
    let CommandReply::Ok {
        aggregate_id,
        version,
        ref events,
        ..
    } = reply
    else {
        panic!("expected ok: {reply:?}");
    };
    assert_eq!((aggregate_id, version), (customer_id, 1));
    assert_eq!(events.len(), 1);
    assert_eq!(log_length(&store).await, 1);

    // The same command id again: the original reply, nothing new in the log.
    let (status, again) = post(&app, "/commands/customer/register_customer", register).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, reply);
    assert_eq!(log_length(&store).await, 1);

    let cases: Vec<(&str, &str, Vec<u8>, StatusCode, ErrorCode)> = vec![
        ("malformed JSON", "/commands/customer/register_customer", b"{\"command_id\":".to_vec(), StatusCode::BAD_REQUEST, ErrorCode::Malformed),
        ("unknown field", "/commands/customer/register_customer",
            serde_json::to_vec(&json!({"command_id": Uuid::now_v7(), "actor": {"id": "a", "roles": ["customer_service"]},
                "correlation_id": Uuid::now_v7(), "payload": registration(Uuid::now_v7()), "extra": 1})).unwrap(),
            StatusCode::BAD_REQUEST, ErrorCode::ValidationFailed),
        ("wrong role", "/commands/customer/register_customer",
            body(Uuid::now_v7(), &["collector"], registration(Uuid::now_v7())), StatusCode::FORBIDDEN, ErrorCode::Forbidden),
        ("unknown command", "/commands/loan/print_money",
            body(Uuid::now_v7(), &["system"], json!({})), StatusCode::NOT_FOUND, ErrorCode::UnknownCommand),
        ("command under the wrong aggregate", "/commands/loan/register_customer",
            body(Uuid::now_v7(), &["customer_service"], registration(Uuid::now_v7())), StatusCode::NOT_FOUND, ErrorCode::UnknownCommand),
        ("a loan that does not exist", "/commands/loan/disburse_loan",
            body(Uuid::now_v7(), &["finance"], json!({"loan_id": Uuid::now_v7(), "payout_reference": "P", "value_date": "2026-01-05"})),
            StatusCode::CONFLICT, ErrorCode::InvalidTransition),
        ("registering twice", "/commands/customer/register_customer",
            body(Uuid::now_v7(), &["customer_service"], registration(customer_id)), StatusCode::CONFLICT, ErrorCode::AlreadyExists),
    ];
    for (name, path, request, expected_status, expected_code) in cases {
        let (status, reply) = post(&app, path, request).await;
        assert_eq!(code(&reply), Some(expected_code), "{name}: {reply:?}");
        assert_eq!(status, expected_status, "{name}");
        assert_eq!(log_length(&store).await, 1, "{name} appended nothing");
    }

    // A body over the limit is refused before the engine sees it.
    let response = app
        .clone()
        .oneshot(
            Request::post("/commands/customer/register_customer")
                .body(Body::from(vec![b' '; MAX_BODY_BYTES + 1]))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(log_length(&store).await, 1);
}
