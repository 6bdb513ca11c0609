//! `loan command-service` run as an operator runs it: `--http-listen` puts liveness,
//! readiness and metrics on the given address, readiness turns ready once the service
//! serves, SIGTERM stops the service and its listener, and an address that is neither an
//! address nor `off` is refused before anything starts.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use loan_testkit::NatsServer;
use tests::{Running, free_address, http_get};

/// `loan command-service` with no `LOAN_*` variable inherited from the caller's shell.
fn command_service() -> Command {
    let mut command = Command::new(tests::loan_binary());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LOAN_") {
            command.env_remove(name);
        }
    }
    command.arg("command-service");
    command
}

#[test]
fn http_listen_serves_health_and_metrics_until_sigterm() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, "7f".repeat(32)).expect("write the master key");
    let address = free_address();
    let child = command_service()
        .args([
            "--nats-url",
            &server.url(),
            "--prefix",
            "cliops",
            "--stream",
            "CLI_OPS",
        ])
        .arg("--master-key-file")
        .arg(&key_file)
        .args([
            "--http-listen",
            &address.to_string(),
            "--log-format",
            "text",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start `loan command-service`");
    let mut service = Running(child);

    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        if let Ok(Some(status)) = service.0.try_wait() {
            panic!("`loan command-service` exited early: {status}");
        }
        match http_get(address, "/health/ready") {
            Some((200, body)) => break body,
            last => assert!(
                Instant::now() < deadline,
                "not ready within 30 s; last answer: {last:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let ready: serde_json::Value = serde_json::from_str(&ready).expect("JSON readiness");
    assert_eq!(ready["status"], "ready");
    assert_eq!(http_get(address, "/health/live").map(|(s, _)| s), Some(200));
    let (status, metrics) = http_get(address, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    assert!(
        metrics
            .lines()
            .any(|line| line == "loan_commands_in_flight 0"),
        "{metrics}"
    );

    let term = Command::new("kill")
        .args(["-TERM", &service.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(status) = service.0.try_wait().expect("wait for the service") {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "a graceful stop exits 0: {exit}");
    assert_eq!(
        http_get(address, "/health/live"),
        None,
        "the listener is closed"
    );
}

#[test]
fn an_http_listen_value_that_is_no_address_is_refused() {
    let output = command_service()
        .args([
            "--http-listen",
            "everywhere",
            "--master-key-file",
            "unused.key",
        ])
        .output()
        .expect("run `loan command-service`");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--http-listen"), "{stderr}");
    assert!(stderr.contains("`off`"), "{stderr}");
}
