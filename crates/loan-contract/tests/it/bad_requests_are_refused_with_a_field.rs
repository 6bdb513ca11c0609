//! Bad input never panics and never reaches the domain: every case gets a structured error.

use loan_contract::{ErrorCode, decode_command};
use loan_domain::CommandKind;
use serde_json::{Value, json};

fn repayment(amount: Value) -> Value {
    json!({
        "command_id": "0190a000-0000-7000-8000-000000000001",
        "actor": { "id": "svc:gateway", "roles": ["system"] },
        "correlation_id": "0190a000-0000-7000-8000-000000000002",
        "payload": { "loan_id": "0190a000-0000-7000-8000-000000000003", "payment_reference": "P-1", "amount": amount, "value_date": "2026-02-10" }
    })
}

fn refused(kind: CommandKind, body: &[u8]) -> (ErrorCode, Option<String>, String) {
    match decode_command(kind, body) {
        Ok(decoded) => panic!("accepted a bad request: {decoded:?}"),
        Err(error) => (error.code, error.field, error.message),
    }
}

#[test]
fn a_valid_request_decodes() {
    let body = serde_json::to_vec(&repayment(json!("1066.19"))).unwrap();
    let decoded = decode_command(CommandKind::RecordRepayment, &body).expect("valid request");
    assert_eq!(decoded.command.kind(), CommandKind::RecordRepayment);
}

#[test]
fn bad_requests_get_a_code_and_the_offending_field() {
    let mut unknown_field = repayment(json!("10.00"));
    unknown_field["payload"]["discount"] = json!("5.00");
    let mut unknown_envelope_field = repayment(json!("10.00"));
    unknown_envelope_field["priority"] = json!("high");
    let mut missing = repayment(json!("10.00"));
    missing["payload"]
        .as_object_mut()
        .unwrap()
        .remove("value_date");
    let mut wrong_type = repayment(json!("10.00"));
    wrong_type["payload"]["value_date"] = json!(20260210);
    let mut bad_role = repayment(json!("10.00"));
    bad_role["actor"]["roles"] = json!(["superuser"]);
    let mut bad_date = repayment(json!("10.00"));
    bad_date["payload"]["value_date"] = json!("2026-02-30");

    let cases: Vec<(&str, Value, ErrorCode, Option<&str>)> = vec![
        (
            "unknown payload field",
            unknown_field,
            ErrorCode::ValidationFailed,
            Some("payload.discount"),
        ),
        (
            "unknown envelope field",
            unknown_envelope_field,
            ErrorCode::ValidationFailed,
            Some("priority"),
        ),
        (
            "missing field",
            missing,
            ErrorCode::ValidationFailed,
            Some("payload.value_date"),
        ),
        (
            "wrong type",
            wrong_type,
            ErrorCode::ValidationFailed,
            Some("payload.value_date"),
        ),
        (
            "impossible date",
            bad_date,
            ErrorCode::ValidationFailed,
            Some("payload.value_date"),
        ),
        (
            "unknown role",
            bad_role,
            ErrorCode::ValidationFailed,
            Some("actor.roles[0]"),
        ),
        (
            "over-precise amount",
            repayment(json!("10.005")),
            ErrorCode::ValidationFailed,
            Some("payload.amount"),
        ),
        (
            "overflowing amount",
            repayment(json!("99999999999999999999999999999")),
            ErrorCode::ValidationFailed,
            Some("payload.amount"),
        ),
        (
            "amount beyond the maximum",
            repayment(json!("1000000000000.01")),
            ErrorCode::ValidationFailed,
            Some("payload.amount"),
        ),
        (
            "amount as a JSON number",
            repayment(json!(10.5)),
            ErrorCode::ValidationFailed,
            Some("payload.amount"),
        ),
        (
            "amount not a number",
            repayment(json!("ten")),
            ErrorCode::ValidationFailed,
            Some("payload.amount"),
        ),
    ];
    for (name, body, code, field) in cases {
        let (got_code, got_field, message) = refused(
            CommandKind::RecordRepayment,
            &serde_json::to_vec(&body).unwrap(),
        );
        assert_eq!(got_code, code, "{name}: {message}");
        assert_eq!(got_field.as_deref(), field, "{name}: {message}");
        assert!(!message.is_empty(), "{name}: empty message");
    }
}

#[test]
fn zero_and_negative_amounts_decode_but_the_domain_refuses_them() {
    // Sign rules belong to the domain (a delta may be negative); the wire accepts the number.
    for amount in ["0.00", "-5.00"] {
        let body = serde_json::to_vec(&repayment(json!(amount))).unwrap();
        assert!(
            decode_command(CommandKind::RecordRepayment, &body).is_ok(),
            "{amount} should reach the domain's check"
        );
    }
}

#[test]
fn unparseable_oversized_and_deeply_nested_bodies_are_malformed() {
    let huge = format!(
        "{{\"command_id\": \"{}\"}}",
        "x".repeat(loan_contract::command::MAX_COMMAND_BYTES)
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut nested = repayment(json!("10.00"));
    let mut value = json!("leaf");
    for _ in 0..40 {
        value = json!({ "n": value });
    }
    nested["payload"]["payment_reference"] = value;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"{\"command_id\": ".to_vec()),
        ("empty body", Vec::new()),
        ("binary garbage", vec![0xff, 0xfe, 0x00, 0x12]),
        (
            "trailing garbage",
            [
                serde_json::to_vec(&repayment(json!("1.00"))).unwrap(),
                b" {}".to_vec(),
            ]
            .concat(),
        ),
        ("oversized", huge.into_bytes()),
        ("100k nested arrays", deep.into_bytes()),
        ("40-deep object", serde_json::to_vec(&nested).unwrap()),
    ];
    for (name, body) in cases {
        let (code, _, message) = refused(CommandKind::RecordRepayment, &body);
        assert_eq!(code, ErrorCode::Malformed, "{name}: {message}");
    }
}

#[test]
fn a_payload_for_another_command_is_refused() {
    let body = serde_json::to_vec(&repayment(json!("10.00"))).unwrap();
    let (code, field, _) = refused(CommandKind::DisburseLoan, &body);
    assert_eq!(code, ErrorCode::ValidationFailed);
    assert_eq!(
        field.as_deref(),
        Some("payload.amount"),
        "the first field (in key order) DisburseLoan does not know"
    );
}

#[test]
fn sensitive_values_are_not_echoed_in_errors() {
    let body = json!({
        "command_id": "0190a000-0000-7000-8000-000000000001",
        "actor": { "id": "cs-1", "roles": ["customer_service"] },
        "correlation_id": "0190a000-0000-7000-8000-000000000002",
        "payload": { "customer_id": "0190a000-0000-7000-8000-000000000003", "phone": "12999999999" }
    });
    let (code, field, message) = refused(
        CommandKind::UpdateContact,
        &serde_json::to_vec(&body).unwrap(),
    );
    assert_eq!(code, ErrorCode::ValidationFailed);
    assert_eq!(field.as_deref(), Some("payload.phone"));
    assert!(
        !message.contains("12999999999"),
        "the phone number leaked into: {message}"
    );
}
