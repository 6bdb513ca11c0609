//! The whole pipeline as an operator runs it, from the `loan` binary only: the command
//! service appends a customer's loan to JetStream, `loan projector run` builds the read
//! models in PostgreSQL, `loan projector lag` reports it caught up, and `loan query-api
//! serve` answers the customer 360 and the delinquency report — with the phone masked —
//! and `loan audit replay` finds the read models equal to a replay of the whole log.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use loan_testkit::NatsServer;
use loan_testkit::postgres::TestDatabase;
use serde_json::{Value, json};
use tests::{Running, free_address, http_get};
use uuid::Uuid;

const PREFIX: &str = "pipe";
const STREAM: &str = "PIPE_EVENTS";
const PHONE: &str = "13912345678";

/// `loan <args>` with no `LOAN_*` or `DATABASE_URL` variable inherited from the shell.
fn loan(args: &[&str]) -> Command {
    let mut command = Command::new(tests::loan_binary());
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("LOAN_") || name_text == "DATABASE_URL" {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn spawn(args: &[&str], key_file: &Path) -> Running {
    let mut command = loan(args);
    command.arg("--master-key-file").arg(key_file);
    Running(command.spawn().expect("start `loan`"))
}

async fn send(client: &async_nats::Client, command: &str, roles: &[&str], payload: Value) -> Value {
    let body = json!({
        "command_id": Uuid::now_v7(),
        "actor": { "id": "pipeline-test", "roles": roles },
        "correlation_id": Uuid::now_v7(),
        "payload": payload,
    });
    let customer_commands = [
        "register_customer",
        "record_credit_assessment",
        "verify_identity",
    ];
    let aggregate = if customer_commands.contains(&command) {
        "customer"
    } else {
        "loan"
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client
            .request(
                format!("{PREFIX}.cmd.{aggregate}.{command}"),
                serde_json::to_vec(&body).expect("json").into(),
            )
            .await
        {
            Ok(reply) => {
                let reply: Value = serde_json::from_slice(&reply.payload).expect("JSON reply");
                assert_eq!(reply["status"], "ok", "{command}: {reply}");
                return reply;
            }
            // The service may still be starting: no responders yet.
            Err(error) => {
                assert!(Instant::now() < deadline, "{command}: no answer: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what} within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loan_sent_as_a_command_is_reported_by_the_query_api() {
    let server = NatsServer::start();
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, "5a".repeat(32)).expect("write the master key");
    let url = server.url();
    let common = [
        "--nats-url",
        url.as_str(),
        "--prefix",
        PREFIX,
        "--stream",
        STREAM,
    ];

    let mut service_args = vec!["command-service"];
    service_args.extend(common);
    service_args.extend(["--http-listen", "off", "--log-format", "text"]);
    let _service = spawn(&service_args, &key_file);

    let client = async_nats::connect(&url).await.expect("connect");
    let customer_id = Uuid::now_v7();
    let loan_id = Uuid::now_v7();
    // The service's business day (UTC+8, its default), not the calendar date of whoever
    // runs the test: after 16:00 UTC it is already tomorrow there.
    let today = (chrono::Utc::now() + chrono::Duration::hours(8))
        .date_naive()
        .to_string();
    let today = today.as_str();
    send(&client, "register_customer", &["customer_service"], json!({
        "customer_id": customer_id, "name": "Li Wei", "gender": "male", "birth_date": "1988-07-15",
        "phone": PHONE, "national_id": loan_testkit::synthetic::national_id("44030419880715123"),
        "bank_card": "6222021234567890128", "region": "guangdong", "employer": "Pearl River Logistics",
        "risk_appetite": "balanced", "channel": "app",
        "financials": { "monthly_income": "25000.00", "monthly_debt_payments": "2000.00",
                        "total_assets": "400000.00", "total_liabilities": "100000.00" }
    })).await;
    send(
        &client,
        "record_credit_assessment",
        &["system"],
        json!({ "customer_id": customer_id, "score": 735, "source": "pboc", "assessed_on": today }),
    )
    .await;
    send(
        &client,
        "verify_identity",
        &["system"],
        json!({ "customer_id": customer_id, "method": "face_match", "verified_on": today }),
    )
    .await;
    send(
        &client,
        "capture_lead",
        &["loan_officer"],
        json!({
            "loan_id": loan_id, "customer_id": customer_id, "channel": "app", "purpose": "consumer",
            "requested_amount": "12000.00", "currency": "CNY", "term_months": 12
        }),
    )
    .await;
    send(
        &client,
        "submit_for_review",
        &["loan_officer"],
        json!({ "loan_id": loan_id, "documents": ["id_card", "credit_report", "income_proof"] }),
    )
    .await;
    let decision = send(
        &client,
        "decide_automatically",
        &["system"],
        json!({ "loan_id": loan_id }),
    )
    .await;
    let rate = decision["events"]
        .as_array()
        .and_then(|events| {
            events
                .iter()
                .find(|e| e["event_type"] == "application_approved")
        })
        .map(|e| e["data"]["annual_rate"].clone())
        .expect("the policy approves this customer");
    send(
        &client,
        "sign_contract",
        &["loan_officer"],
        json!({
            "loan_id": loan_id, "principal": "12000.00", "annual_rate": rate, "term_months": 12,
            "method": "equal_installment", "first_due_date": "2026-12-23", "grace_days": 3,
            "daily_penalty_rate": "0.0005"
        }),
    )
    .await;
    send(
        &client,
        "disburse_loan",
        &["finance"],
        json!({ "loan_id": loan_id, "payout_reference": "PO-1", "value_date": today }),
    )
    .await;

    let mut projector_args = vec!["projector", "run"];
    projector_args.extend(common);
    projector_args.extend(["--database-url", database.url(), "--log-format", "text"]);
    let _projector = spawn(&projector_args, &key_file);

    let mut lag_args = vec!["projector", "lag", "--json"];
    lag_args.extend(common);
    lag_args.extend(["--database-url", database.url()]);
    let health: Value = wait_for("the projections catch up", || {
        let output = loan(&lag_args).stdout(Stdio::piped()).output().ok()?;
        let health: Value = serde_json::from_slice(&output.stdout).ok()?;
        let caught_up = health.as_array()?.len() == 2
            && health
                .as_array()?
                .iter()
                .all(|p| p["lag"] == 0 && p["checkpoint"] != 0);
        (output.status.success() && caught_up).then_some(health)
    });
    assert!(
        health
            .as_array()
            .expect("array")
            .iter()
            .all(|p| p["healthy"] == true),
        "{health}"
    );

    // The auditors' replay of the whole log agrees with the live read models.
    let mut replay = loan(&[
        "audit",
        "replay",
        "--json",
        "--nats",
        url.as_str(),
        "--subject-prefix",
        PREFIX,
        "--stream",
        STREAM,
        "--database-url",
        database.url(),
    ]);
    let replay = replay
        .arg("--master-key-file")
        .arg(&key_file)
        .stdout(Stdio::piped())
        .output()
        .expect("run loan audit replay");
    assert!(
        replay.status.success(),
        "replay agrees: {}",
        String::from_utf8_lossy(&replay.stdout)
    );
    let comparisons: Value = serde_json::from_slice(&replay.stdout).expect("JSON comparison");
    assert_eq!(
        comparisons.as_array().map(Vec::len),
        Some(2),
        "both groups compared"
    );

    let address = free_address();
    let listen = address.to_string();
    let serve_args = [
        "query-api",
        "serve",
        "--database-url",
        database.url(),
        "--listen",
        &listen,
        "--log-format",
        "text",
    ];
    let _api = Running(loan(&serve_args).spawn().expect("start the query API"));
    let (status, body) = wait_for("the query API answers", || {
        http_get(address, &format!("/customers/{customer_id}?as_of={today}"))
    });
    assert_eq!(status, 200, "{body}");
    let view: Value = serde_json::from_str(&body).expect("JSON 360");
    let text = view.to_string();
    assert!(
        !text.contains(PHONE),
        "the 360 never shows the phone in clear: {text}"
    );
    assert!(
        text.contains(&loan_id.to_string()),
        "the 360 lists the loan: {text}"
    );
    assert!(
        text.contains("\"disbursed\""),
        "the loan is disbursed: {text}"
    );

    let (status, csv) = http_get(
        address,
        &format!("/delinquency/buckets?as_of={today}&format=csv"),
    )
    .expect("GET buckets");
    assert_eq!(status, 200, "{csv}");
    assert!(
        csv.lines()
            .any(|line| line == "all,current,1,12000.00,0.00"),
        "one current loan of 12,000.00 outstanding: {csv}"
    );
    let (status, problem) =
        http_get(address, "/delinquency/buckets?as_of=31-03-2026").expect("GET");
    assert_eq!(status, 400, "a malformed date is refused: {problem}");

    database.drop_database().await;
}
