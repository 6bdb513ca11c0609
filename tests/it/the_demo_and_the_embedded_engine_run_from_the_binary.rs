//! `loan demo` and `loan embedded`, run as a newcomer runs them: the demo plays a book on
//! the embedded engine and every check holds, the same seed prints the same figures; the
//! embedded engine takes commands from the command line and over HTTP and serves reports.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tests::{Running, free_address, http_get, http_post, loan_binary};
use uuid::Uuid;

fn loan(args: &[&str]) -> Output {
    Command::new(loan_binary())
        .args(args)
        .env_remove("LOAN_DATA_DIR")
        .output()
        .expect("run loan")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The report part of a demo's output, without what differs between runs (the data
/// directory and elapsed times).
fn figures(stdout: &str, data: &str) -> String {
    stdout
        .lines()
        .skip_while(|line| !line.starts_with("## The book"))
        .filter(|line| {
            !line.contains(data)
                && !line.starts_with("projected")
                && !line.contains(" s (")
                && !line.contains(" in ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_demo_plays_a_book_every_check_holds_and_the_seed_repeats_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = dir.path().join("first");
    let second = dir.path().join("second");
    let demo = |data: &std::path::Path| {
        loan(&[
            "demo",
            "--customers",
            "150",
            "--months",
            "10",
            "--seed",
            "5",
            "--quiet",
            "--data",
            data.to_str().unwrap(),
        ])
    };
    let output = demo(&first);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&output.stderr)
    );
    for section in [
        "## The book",
        "## Customer 360",
        "## Segments",
        "## Delinquency",
        "PAR30",
        "## Roll rates",
        "## Pipeline",
        "past-due buckets = the loans in arrears",
        "hash chains intact",
        "replay of group portfolio from position 0 agrees",
        "replay of group delinquency from position 0 agrees",
        "every check holds",
    ] {
        assert!(
            stdout.contains(section),
            "missing {section:?} in:\n{stdout}"
        );
    }
    assert!(!stdout.contains('✗'), "a check failed:\n{stdout}");
    for file in ["events.sqlite", "read-models.sqlite", "master.key"] {
        assert!(
            first.join(file).exists(),
            "{file} kept in the data directory"
        );
    }

    let again = demo(&second);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(
        figures(&stdout, first.to_str().unwrap()),
        figures(&text(&again.stdout), second.to_str().unwrap()),
        "the same seed prints the same figures"
    );

    // A directory that already holds a demo is refused, not mixed into.
    let reused = demo(&first);
    assert_ne!(reused.status.code(), Some(0));
    assert!(
        text(&reused.stderr).contains("already holds a demo"),
        "{}",
        text(&reused.stderr)
    );
}

fn envelope(roles: &[&str], payload: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "command_id": Uuid::now_v7(),
        "actor": { "id": "e2e", "roles": roles },
        "correlation_id": Uuid::now_v7(),
        "payload": payload,
    }))
    .unwrap()
}

fn registration(customer_id: Uuid) -> Value {
    json!({
        "customer_id": customer_id, "name": "Li Wei", "gender": "male", "birth_date": "1988-07-15",
        "phone": "13912345678", "national_id": loan_testkit::synthetic::national_id("44030419880715123"),
        "bank_card": "6222021234567890128", "region": "guangdong", "employer": null,
        "risk_appetite": "balanced", "channel": "app",
        "financials": { "monthly_income": "25000.00", "monthly_debt_payments": "2000.00",
                        "total_assets": "400000.00", "total_liabilities": "100000.00" }
    })
}

#[test]
fn the_embedded_engine_takes_commands_from_the_cli_and_over_http() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let customer_id = Uuid::now_v7();

    // From the command line: the reply is printed; a refusal exits 1 and appends nothing.
    let file = dir.path().join("register.json");
    std::fs::write(
        &file,
        envelope(&["customer_service"], registration(customer_id)),
    )
    .unwrap();
    let output = loan(&[
        "embedded",
        "command",
        "customer/register_customer",
        "--data",
        data,
        "--file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let reply: Value = serde_json::from_slice(&output.stdout).expect("the reply is JSON");
    assert_eq!(reply["status"], "ok", "{reply}");
    assert_eq!(reply["version"], 1);

    std::fs::write(
        &file,
        envelope(&["collector"], registration(Uuid::now_v7())),
    )
    .unwrap();
    let refused = loan(&[
        "embedded",
        "command",
        "customer/register_customer",
        "--data",
        data,
        "--file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let reply: Value = serde_json::from_slice(&refused.stdout).expect("the reply is JSON");
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");

    let unknown = loan(&[
        "embedded",
        "command",
        "loan/print_money",
        "--data",
        data,
        "--file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).contains("no command loan/print_money"));

    // Over HTTP, with the reports on the same port and the read models following.
    let address = free_address();
    let server = Running(
        Command::new(loan_binary())
            .args([
                "embedded",
                "serve",
                "--data",
                data,
                "--listen",
                &address.to_string(),
                "--log-format",
                "text",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start loan embedded serve"),
    );
    let started = Instant::now();
    while http_get(address, "/health/live").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the embedded engine did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let loan_id = Uuid::now_v7();
    let lead = envelope(
        &["loan_officer"],
        json!({
            "loan_id": loan_id, "customer_id": customer_id, "channel": "app", "purpose": "consumer",
            "requested_amount": "12000.00", "currency": "CNY", "term_months": 12
        }),
    );
    let (status, body) =
        http_post(address, "/commands/loan/capture_lead", &lead).expect("an answer");
    assert_eq!(status, 200, "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["aggregate_id"], loan_id.to_string());

    let (status, body) =
        http_post(address, "/commands/loan/capture_lead", b"{not json").expect("an answer");
    assert_eq!(status, 400, "{body}");

    // The customer 360 shows the customer registered from the CLI and the lead sent over
    // HTTP once the projector has followed the log.
    let started = Instant::now();
    loop {
        let (status, body) =
            http_get(address, &format!("/customers/{customer_id}")).expect("an answer");
        if status == 200 && body.contains(&loan_id.to_string()) {
            let view: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(view["profile"]["phone_masked"], "139****5678", "{view}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the read models did not follow: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_runs_the_same_book_on_the_real_servers() {
    let server = loan_testkit::NatsServer::start();
    let database = loan_testkit::postgres::TestDatabase::create().await;
    let url = server.url();
    let database_url = database.url().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        loan(&[
            "demo",
            "--customers",
            "60",
            "--months",
            "8",
            "--seed",
            "5",
            "--quiet",
            "--nats",
            &url,
            "--database-url",
            &database_url,
        ])
    })
    .await
    .unwrap();
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&output.stderr)
    );
    for section in [
        "## Delinquency",
        "## Pipeline",
        "replay of group portfolio from position 0 agrees",
        "every check holds",
    ] {
        assert!(
            stdout.contains(section),
            "missing {section:?} in:\n{stdout}"
        );
    }
    // The same seed on the embedded mode prints the same book and the same figures.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let data_text = data.to_str().unwrap().to_owned();
    let embedded = tokio::task::spawn_blocking(move || {
        loan(&[
            "demo",
            "--customers",
            "60",
            "--months",
            "8",
            "--seed",
            "5",
            "--quiet",
            "--data",
            &data_text,
        ])
    })
    .await
    .unwrap();
    assert_eq!(
        embedded.status.code(),
        Some(0),
        "{}",
        text(&embedded.stderr)
    );
    let strip = |out: &str| {
        out.lines()
            .skip_while(|line| !line.starts_with("## The book"))
            .take_while(|line| !line.starts_with("## Audit"))
            .filter(|line| {
                !line.starts_with("projected") && !line.contains(" s (") && !line.contains(" in ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip(&stdout),
        strip(&text(&embedded.stdout)),
        "same figures on both deployments"
    );
    database.drop_database().await;
}
