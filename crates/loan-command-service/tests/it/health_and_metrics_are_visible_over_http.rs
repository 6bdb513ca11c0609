//! Operators see each instance over HTTP: `/health/live` answers while the process runs,
//! `/health/ready` is 200 only while the instance can take commands (NATS connected,
//! stream reachable, endpoints registered, not draining) and names the failed check
//! otherwise, and `/metrics` counts exactly the commands the instance answered — per
//! instance, even with several instances in one process.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use loan_contract::ErrorCode;
use loan_domain::CommandKind;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::harness::{
    Harness, HttpResponse, http_get, onboard_customer, prometheus_samples, refused, registration,
};
use crate::restarts_lose_nothing::{leads_and_follow_ups, spawn_batch};

/// Polls `/health/ready` until it answers `status` (bounded: panics after `within`).
async fn wait_for_readiness(address: SocketAddr, status: u16, within: Duration) -> HttpResponse {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let response = http_get(address, "/health/ready").await;
        if let Ok(response) = response {
            if response.status == status {
                return response;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/health/ready did not answer {status} within {within:?}; last: {response:?}"
            );
        } else {
            assert!(
                tokio::time::Instant::now() < deadline,
                "/health/ready did not answer {status} within {within:?}; last: {response:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The names of the failed checks in a readiness body.
fn failed_checks(response: &HttpResponse) -> Vec<String> {
    response.json()["failed"]
        .as_array()
        .expect("a `failed` list")
        .iter()
        .map(|name| name.as_str().expect("check names").to_owned())
        .collect()
}

/// The value of one sample of a `/metrics` scrape as a whole number (0 if absent).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> u64 {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    prometheus_samples(text)
        .get(&(name.to_owned(), labels))
        .map_or(0, |value| {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{name} is not a whole number: {value}"))
        })
}

async fn scrape(address: SocketAddr) -> String {
    let response = http_get(address, "/metrics").await.expect("GET /metrics");
    assert_eq!(response.status, 200, "{response:?}");
    response.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_ready_once_started_and_503_from_the_moment_the_drain_starts() {
    let h = Harness::new().await;
    // One command at a time, so that a backlog keeps the drain busy for a while.
    let (instance, address) = h.start_instance_listening(1).await;

    let live = http_get(address, "/health/live")
        .await
        .expect("GET /health/live");
    assert_eq!(live.status, 200);
    assert_eq!(live.json()["status"], "live");
    let ready = wait_for_readiness(address, 200, Duration::from_secs(10)).await;
    let body = ready.json();
    assert_eq!(body["status"], "ready");
    assert_eq!(failed_checks(&ready), Vec::<String>::new());
    for check in ["nats", "stream", "endpoints", "draining"] {
        assert_eq!(body["checks"][check]["ok"], true, "{check}: {body}");
    }
    let unknown_path = http_get(address, "/health/nothing").await.expect("GET");
    assert_eq!(unknown_path.status, 404);

    // A backlog of commands, then a graceful stop while it is being worked off.
    let (_, planned) = leads_and_follow_ups(&h, 1, 60).await;
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let (give_up_tx, give_up) = watch::channel(false);
    let mut batch = spawn_batch(
        &h.sender(),
        &planned,
        Duration::from_secs(30),
        done_tx,
        give_up,
    );
    tokio::time::timeout(Duration::from_secs(10), done.recv())
        .await
        .expect("a first answer within 10 s")
        .expect("batch running");
    let stopping = tokio::spawn(instance.stop());

    // Until the listener closes: perhaps a few 200s (the stop not yet noticed), then
    // only 503s naming the drain.
    let mut statuses = Vec::new();
    let mut draining_seen = false;
    while let Ok(response) = http_get(address, "/health/ready").await {
        if response.status != 200 {
            assert_eq!(response.status, 503, "{response:?}");
            let failed = failed_checks(&response);
            assert!(failed.contains(&"draining".to_owned()), "{response:?}");
            assert_eq!(response.json()["checks"]["draining"]["ok"], false);
            draining_seen = true;
        }
        statuses.push(response.status);
    }
    eprintln!(
        "readiness while stopping: {} × 200, then {} × 503",
        statuses.iter().filter(|s| **s == 200).count(),
        statuses.iter().filter(|s| **s == 503).count()
    );
    let first_503 = statuses.iter().position(|s| *s == 503);
    assert!(
        draining_seen && statuses[first_503.unwrap_or(0)..].iter().all(|s| *s == 503),
        "readiness must turn 503 while draining and stay there: {statuses:?}"
    );
    stopping.await.expect("the service stops");
    assert!(
        http_get(address, "/health/live").await.is_err(),
        "the listener is closed once the service stopped"
    );
    let _ = give_up_tx.send(true);
    while let Some(task) = batch.join_next().await {
        task.expect("batch task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_a_lost_nats_connection_and_recovers_with_it() {
    let mut h = Harness::new().await;
    let (instance, address) = h.start_instance_listening(16).await;
    wait_for_readiness(address, 200, Duration::from_secs(10)).await;

    h.server().kill();
    let down = wait_for_readiness(address, 503, Duration::from_secs(10)).await;
    let failed = failed_checks(&down);
    assert!(failed.contains(&"nats".to_owned()), "{down:?}");
    assert!(failed.contains(&"stream".to_owned()), "{down:?}");
    assert!(!failed.contains(&"draining".to_owned()), "{down:?}");
    let live = http_get(address, "/health/live").await.expect("GET");
    assert_eq!(live.status, 200, "alive, just not ready");

    h.server().restart();
    let up = wait_for_readiness(address, 200, Duration::from_secs(30)).await;
    assert_eq!(up.json()["status"], "ready");
    onboard_customer(&h).await;
    instance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_commands_actually_answered() {
    let h = Harness::new().await;
    let (instance, address) = h.start_instance_listening(16).await;
    let before = scrape(address).await;
    assert_eq!(sample(&before, "loan_commands_in_flight", &[]), 0);
    assert_eq!(
        sample(&before, "loan_unknown_command_requests_total", &[]),
        0
    );

    // Three commands applied, one refused for the caller's role, one unknown subject.
    onboard_customer(&h).await;
    let forbidden = refused(
        h.send(
            CommandKind::RegisterCustomer,
            &["finance"],
            registration(Uuid::now_v7()),
        )
        .await,
    );
    assert_eq!(forbidden.code, ErrorCode::Forbidden);
    let unknown = refused(
        h.request_raw(format!("{}.cmd.loan.levitate", h.prefix), b"{}".to_vec())
            .await,
    );
    assert_eq!(unknown.code, ErrorCode::UnknownCommand);

    let text = scrape(address).await;
    let commands = |command: &str, outcome: &str| {
        sample(
            &text,
            "loan_commands_total",
            &[("command", command), ("outcome", outcome)],
        )
    };
    assert_eq!(commands("register_customer", "ok"), 1);
    assert_eq!(commands("register_customer", "forbidden"), 1);
    assert_eq!(commands("record_credit_assessment", "ok"), 1);
    assert_eq!(commands("verify_identity", "ok"), 1);
    // Nothing else was counted, except the harness's readiness probe on `capture_lead`.
    let others: u64 = prometheus_samples(&text)
        .iter()
        .filter(|((name, labels), _)| {
            name == "loan_commands_total" && labels["command"] != "capture_lead"
        })
        .map(|(_, value)| value.parse::<u64>().expect("a count"))
        .sum();
    assert_eq!(others, 4, "{text}");
    assert_eq!(
        sample(
            &text,
            "loan_command_duration_seconds_count",
            &[("command", "register_customer")]
        ),
        2
    );
    assert_eq!(
        sample(
            &text,
            "loan_command_duration_seconds_bucket",
            &[("command", "register_customer"), ("le", "+Inf")]
        ),
        2
    );
    assert_eq!(sample(&text, "loan_commands_in_flight", &[]), 0);
    assert_eq!(sample(&text, "loan_unknown_command_requests_total", &[]), 1);
    assert!(
        !text.contains("loan_store_errors_total{"),
        "no store operation failed: {text}"
    );
    assert!(
        text.contains("# HELP loan_commands_total"),
        "metrics are described: {text}"
    );
    instance.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_instance_in_a_process_counts_only_its_own_commands() {
    let h = Harness::new().await;
    let (first, first_address) = h.start_instance_listening(16).await;
    let (second, second_address) = h.start_instance_listening(16).await;
    h.wait_for_instances(2).await;

    let sent = 20;
    for _ in 0..sent {
        let reply = h
            .send(
                CommandKind::VerifyIdentity,
                &["finance"],
                json!({ "customer_id": Uuid::now_v7(), "method": "face_match", "verified_on": h.clock_date() }),
            )
            .await;
        assert_eq!(refused(reply).code, ErrorCode::Forbidden);
    }
    let forbidden = |text: &str| {
        sample(
            text,
            "loan_commands_total",
            &[("command", "verify_identity"), ("outcome", "forbidden")],
        )
    };
    let counts = [
        forbidden(&scrape(first_address).await),
        forbidden(&scrape(second_address).await),
    ];
    // The queue group split them; a process-wide recorder would show 20 on both.
    assert_eq!(counts.iter().sum::<u64>(), sent, "{counts:?}");
    first.stop().await;
    second.stop().await;
}
