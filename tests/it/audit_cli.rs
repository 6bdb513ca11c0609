//! `loan audit`, run as an external auditor runs it on an export they were handed
//! (`tests/fixtures/audit/`: the scripted history of `crates/loan-audit/tests/it`, written
//! by the real engine, regenerated with `LOAN_AUDIT_WRITE_FIXTURE=<dir>`): verify exits 0
//! on the export and 3 on a tampered copy naming the broken link; report and state
//! reproduce the published and the restated February; history masks and erases; an
//! export imports into an embedded store (`--embedded`) that answers as the file does,
//! and a tampered one is refused at import.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/audit")
        .join(name)
}

fn ids() -> Value {
    serde_json::from_slice(&std::fs::read(fixture("ids.json")).expect("ids.json")).expect("json")
}

fn id(name: &str) -> String {
    ids()[name].as_str().expect("an id").to_owned()
}

fn loan(args: &[&str]) -> Output {
    let mut command = Command::new(tests::loan_binary());
    for var in [
        "LOAN_NATS_URL",
        "LOAN_STREAM",
        "LOAN_SUBJECT_PREFIX",
        "LOAN_MASTER_KEY_FILE",
    ] {
        command.env_remove(var);
    }
    command
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run loan {args:?}: {e}"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn export() -> String {
    fixture("history.jsonl").display().to_string()
}

fn json(output: &Output) -> Value {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

#[test]
fn verify_exits_0_on_the_export_and_3_on_a_tampered_copy() {
    let output = loan(&["audit", "verify", "--export", &export()]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).starts_with("intact"));

    // The backdated repayment's amount changed in a copy (same manifest).
    let dir = std::env::temp_dir().join(format!("loan-audit-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let text = std::fs::read_to_string(fixture("history.jsonl")).expect("read");
    assert!(text.contains("\"amount\":\"1099.00\""));
    std::fs::write(
        dir.join("history.jsonl"),
        text.replacen("\"amount\":\"1099.00\"", "\"amount\":\"1999.00\"", 1),
    )
    .expect("write");
    std::fs::copy(
        fixture("history.manifest.json"),
        dir.join("history.manifest.json"),
    )
    .expect("copy");
    let output = loan(&[
        "audit",
        "verify",
        "--export",
        &dir.join("history.jsonl").display().to_string(),
    ]);
    let printed = stdout(&output);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(output.status.code(), Some(3), "{printed}");
    assert!(printed.starts_with("TAMPERED"), "{printed}");
    assert!(printed.contains(&format!("loan/{}", id("l1"))), "{printed}");
}

#[test]
fn report_reproduces_the_published_and_the_restated_february() {
    let published = json(&loan(&[
        "audit",
        "report",
        "--export",
        &export(),
        "--as-of",
        "2026-02-28",
        "--known-at",
        "2026-02-28T23:59:59+08:00",
        "--json",
    ]));
    assert_eq!(published["par"][0]["days"], 1);
    assert_eq!(published["par"][0]["ratio"], "0.7059");
    assert_eq!(published["outstanding_principal"], "17000.00");
    let by_position = json(&loan(&[
        "audit",
        "report",
        "--export",
        &export(),
        "--as-of",
        "2026-02-28",
        "--known-at",
        &ids()["published_position"].to_string(),
        "--json",
    ]));
    assert_eq!(by_position["buckets"], published["buckets"]);
    let restated = json(&loan(&[
        "audit",
        "report",
        "--export",
        &export(),
        "--as-of",
        "2026-02-28",
        "--json",
    ]));
    assert_eq!(restated["par"][0]["ratio"], "0.3529");
    assert_eq!(restated["buckets"][1]["bucket"], "dpd_1_to_30");
    assert_eq!(restated["buckets"][1]["overdue_amount"], "1067.50");
}

#[test]
fn state_shows_both_timelines() {
    let l1 = id("l1");
    let then = json(&loan(&[
        "audit",
        "state",
        "--export",
        &export(),
        "--loan",
        &l1,
        "--as-of",
        "2026-02-28",
        "--known-at",
        "2026-02-28T23:59:59+08:00",
        "--json",
    ]));
    assert_eq!(then["status"], "overdue");
    assert_eq!(then["book"]["days_past_due"], 18);
    assert_eq!(then["book"]["overdue"]["penalty"], "7.50");
    let now = json(&loan(&[
        "audit",
        "state",
        "--export",
        &export(),
        "--loan",
        &l1,
        "--as-of",
        "2026-02-28",
        "--json",
    ]));
    assert_eq!(now["status"], "repaying");
    assert_eq!(now["book"]["days_past_due"], 0);
    assert_eq!(now["book"]["installments"][0]["principal_paid"], "1000.00");
}

#[test]
fn history_is_masked_and_the_erased_customer_reads_erased() {
    for (customer, expected) in [("c1", "***"), ("c2", "erased")] {
        let output = loan(&[
            "audit",
            "history",
            "--export",
            &export(),
            "--customer",
            &id(customer),
            "--json",
        ]);
        assert_eq!(output.status.code(), Some(0));
        let rows: Vec<Value> = stdout(&output)
            .lines()
            .map(|line| serde_json::from_str(line).expect("JSON line"))
            .collect();
        let registration = rows
            .iter()
            .find(|row| row["event_type"] == "customer_registered")
            .expect("a registration");
        for field in ["national_id", "bank_card", "phone"] {
            assert_eq!(registration["data"][field], expected, "{customer} {field}");
        }
    }
    // Clear text needs the key, and the key needs the stream's key bucket.
    let output = loan(&[
        "audit",
        "history",
        "--export",
        &export(),
        "--customer",
        &id("c1"),
        "--reveal",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let key = std::env::temp_dir().join(format!("loan-audit-key-{}", std::process::id()));
    std::fs::write(&key, "00".repeat(32)).expect("key");
    let output = loan(&[
        "audit",
        "history",
        "--export",
        &export(),
        "--customer",
        &id("c1"),
        "--master-key-file",
        &key.display().to_string(),
        "--reveal",
    ]);
    std::fs::remove_file(&key).ok();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--nats"));
}

#[test]
fn an_imported_export_answers_from_the_embedded_store_as_from_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("audit.sqlite").display().to_string();
    let output = loan(&["audit", "import", "--export", &export(), "--into", &store]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout(&output).contains("commits:    21"),
        "{}",
        stdout(&output)
    );

    let manifest: Value =
        serde_json::from_slice(&std::fs::read(fixture("history.manifest.json")).expect("manifest"))
            .expect("json");
    let output = loan(&["audit", "verify", "--embedded", &store]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).starts_with("intact"));
    assert!(
        stdout(&output).contains(manifest["log_hash"].as_str().expect("log hash")),
        "the store folds to the manifest's log hash: {}",
        stdout(&output)
    );
    let manifest_path = fixture("history.manifest.json").display().to_string();
    let output = loan(&[
        "audit",
        "verify",
        "--embedded",
        &store,
        "--manifest",
        &manifest_path,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));

    for customer in ["c1", "c2"] {
        let from = |source: &str, path: &str| {
            let output = loan(&[
                "audit",
                "history",
                source,
                path,
                "--customer",
                &id(customer),
                "--json",
            ]);
            assert_eq!(output.status.code(), Some(0));
            stdout(&output)
        };
        let embedded = from("--embedded", &store);
        assert!(embedded.lines().count() > 3, "{embedded}");
        assert_eq!(
            embedded,
            from("--export", &export()),
            "history of {customer}"
        );
    }
    let report = |source: &str, path: &str| {
        json(&loan(&[
            "audit",
            "report",
            source,
            path,
            "--as-of",
            "2026-02-28",
            "--known-at",
            "2026-02-28T23:59:59+08:00",
            "--json",
        ]))
    };
    assert_eq!(report("--embedded", &store), report("--export", &export()));

    // A second import is refused and changes nothing.
    let output = loan(&["audit", "import", "--export", &export(), "--into", &store]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already taken"), "{stderr}");
    assert!(stderr.contains("nothing of"), "{stderr}");
    let output = loan(&[
        "audit",
        "verify",
        "--embedded",
        &store,
        "--manifest",
        &manifest_path,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));

    // A path that is not a store is an error, not a new empty log.
    let missing = dir.path().join("missing.sqlite");
    let output = loan(&[
        "audit",
        "verify",
        "--embedded",
        &missing.display().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(!missing.exists());
}

#[test]
fn a_tampered_export_is_refused_at_import_with_verifys_finding() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(fixture("history.jsonl")).expect("read");
    let tampered = dir.path().join("history.jsonl");
    std::fs::write(
        &tampered,
        text.replacen("\"amount\":\"1099.00\"", "\"amount\":\"1999.00\"", 1),
    )
    .expect("write");
    std::fs::copy(
        fixture("history.manifest.json"),
        dir.path().join("history.manifest.json"),
    )
    .expect("copy");
    let tampered = tampered.display().to_string();
    let verified = loan(&["audit", "verify", "--export", &tampered]);
    assert_eq!(verified.status.code(), Some(3));
    let store = dir.path().join("audit.sqlite");
    let output = loan(&[
        "audit",
        "import",
        "--export",
        &tampered,
        "--into",
        &store.display().to_string(),
    ]);
    let printed = stdout(&output);
    assert_eq!(output.status.code(), Some(3), "{printed}");
    assert!(
        printed.starts_with(&stdout(&verified)),
        "import prints verify's finding:\n{printed}"
    );
    assert!(printed.contains(&format!("loan/{}", id("l1"))), "{printed}");
    assert!(
        !store.exists(),
        "nothing was written, not even an empty store"
    );
}
