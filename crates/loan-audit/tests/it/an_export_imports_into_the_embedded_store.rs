//! An export (the scripted history in `tests/fixtures/audit`, written by the real engine)
//! imports into an embedded SQLite store at its original positions with its exact bytes;
//! read back through `EmbeddedLog` it verifies intact with the manifest's log hash and
//! answers history, state and the delinquency report exactly as the export does. Every
//! tampered copy is refused at import with the finding `verify` gives, and nothing is
//! written; importing twice is refused and changes nothing.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use loan_audit::AuditError;
use loan_audit::export::Manifest;
use loan_audit::history::{Disclosure, Subject, history};
use loan_audit::import::{ImportOutcome, import_export};
use loan_audit::log::{EmbeddedLog, Knowledge, LogEntry, LogReader, export_line};
use loan_audit::timeline::{delinquency_report, state};
use loan_audit::verify::{verify_chains, verify_export};
use loan_domain::AggregateType;
use loan_store::sqlite::SqliteStore;
use loan_store::{AggregateRef, StoreError};
use uuid::Uuid;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/audit")
        .join(name)
}

fn manifest() -> Manifest {
    Manifest::read(&fixture("history.manifest.json")).expect("the fixture's manifest")
}

fn id(name: &str) -> Uuid {
    let ids: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("ids.json")).expect("ids.json"))
            .expect("json");
    ids[name].as_str().expect("an id").parse().expect("a uuid")
}

async fn entries(reader: &mut LogReader) -> Vec<LogEntry> {
    let mut all = Vec::new();
    while let Some(entry) = reader.next().await.expect("read") {
        all.push(entry);
    }
    all
}

fn export_entries() -> Vec<LogEntry> {
    std::fs::read(fixture("history.jsonl"))
        .expect("read the fixture")
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| loan_audit::log::parse_export_line(line).expect("an export line"))
        .collect()
}

async fn import_fixture(dir: &Path) -> (SqliteStore, EmbeddedLog) {
    let store = SqliteStore::open(dir.join("imported.sqlite"))
        .await
        .expect("open the store");
    let outcome = import_export(&fixture("history.jsonl"), &manifest(), &store)
        .await
        .expect("import");
    match outcome {
        ImportOutcome::Imported(summary) => assert_eq!(summary, manifest().summary),
        ImportOutcome::Refused(v) => panic!("the genuine export was refused: {v:?}"),
    }
    let log = EmbeddedLog::with_store(store.clone(), &manifest().subject_prefix).expect("log");
    (store, log)
}

#[tokio::test]
async fn the_imported_log_is_the_export_and_answers_alike() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_store, log) = import_fixture(dir.path()).await;

    // Same positions, subjects and bytes, line for line.
    let imported = entries(&mut log.read_all().await.expect("read")).await;
    assert_eq!(imported, export_entries());
    assert_eq!(
        imported.iter().flat_map(export_line).collect::<Vec<u8>>(),
        std::fs::read(fixture("history.jsonl")).expect("read"),
        "re-exported, the imported log is the export file byte for byte"
    );

    let verification = verify_chains(&mut log.read_all().await.expect("read"), [], None)
        .await
        .expect("verify");
    assert!(verification.intact, "{:?}", verification.first_broken_link);
    assert_eq!(verification.summary.log_hash, manifest().summary.log_hash);
    assert_eq!(verification.summary.heads, manifest().summary.heads);

    for subject in [
        Subject::CustomerWithLoans(id("c1")),
        Subject::CustomerWithLoans(id("c2")),
        Subject::Aggregate(AggregateRef {
            aggregate_type: AggregateType::Loan,
            id: id("l1"),
        }),
    ] {
        let from_export = history(
            &mut LogReader::open_export(&fixture("history.jsonl")).expect("open"),
            subject,
            Disclosure::Masked,
        )
        .await
        .expect("history from the export");
        let from_store = history(
            &mut log.read_all().await.expect("read"),
            subject,
            Disclosure::Masked,
        )
        .await
        .expect("history from the store");
        assert!(!from_store.is_empty());
        assert_eq!(from_store, from_export, "{subject:?}");
    }

    let as_of: NaiveDate = "2026-02-28".parse().expect("date");
    let published = Knowledge::parse("2026-02-28T23:59:59+08:00").expect("knowledge");
    for knowledge in [Knowledge::Everything, published] {
        let from_export = delinquency_report(
            &mut LogReader::open_export(&fixture("history.jsonl")).expect("open"),
            as_of,
            knowledge,
        )
        .await
        .expect("report");
        let from_store =
            delinquency_report(&mut log.read_all().await.expect("read"), as_of, knowledge)
                .await
                .expect("report");
        assert_eq!(from_store, from_export, "{knowledge}");
        let loan = Subject::Aggregate(AggregateRef {
            aggregate_type: AggregateType::Loan,
            id: id("l1"),
        });
        let from_export = state(
            &mut LogReader::open_export(&fixture("history.jsonl")).expect("open"),
            loan,
            as_of,
            knowledge,
        )
        .await
        .expect("state");
        let from_store = state(
            &mut log.read_all().await.expect("read"),
            loan,
            as_of,
            knowledge,
        )
        .await
        .expect("state");
        assert_eq!(from_store, from_export, "{knowledge}");
    }
}

#[tokio::test]
async fn importing_twice_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, log) = import_fixture(dir.path()).await;
    let again = import_export(&fixture("history.jsonl"), &manifest(), &store).await;
    match again {
        Err(AuditError::Store(StoreError::ImportRefused { position, reason })) => {
            assert_eq!(position, 1);
            assert!(reason.contains("imported before"), "{reason}");
        }
        other => panic!("a second import must be refused, got {other:?}"),
    }
    assert_eq!(
        entries(&mut log.read_all().await.expect("read")).await,
        export_entries()
    );
}

fn edit(entry: &LogEntry, from: &str, to: &str) -> LogEntry {
    let text = String::from_utf8(entry.bytes.clone()).expect("utf-8");
    assert!(text.contains(from), "{from} not in the commit");
    LogEntry {
        bytes: text.replacen(from, to, 1).into_bytes(),
        ..entry.clone()
    }
}

fn index_of_event(lines: &[LogEntry], event_type: &str) -> usize {
    lines
        .iter()
        .position(|e| {
            e.commit()
                .expect("commit")
                .events
                .iter()
                .any(|ev| ev.event_type == event_type)
        })
        .expect("event in the export")
}

#[tokio::test]
async fn every_tampered_export_is_refused_with_verifys_finding_and_nothing_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = export_entries();
    let genuine = manifest();
    let lead = index_of_event(&original, "lead_captured");
    let repaid = original
        .iter()
        .position(|e| String::from_utf8_lossy(&e.bytes).contains("\"1099.00\""))
        .expect("the backdated repayment");

    let mut cases: Vec<(&str, Vec<LogEntry>, Manifest)> = Vec::new();
    let mut lines = original.clone();
    lines[lead] = edit(&lines[lead], "12000.00", "21000.00");
    cases.push(("an event changed mid-chain", lines, genuine.clone()));
    let mut lines = original.clone();
    lines[repaid] = edit(&lines[repaid], "\"1099.00\"", "\"1999.00\"");
    cases.push(("an aggregate's last commit changed", lines, genuine.clone()));
    let mut lines = original.clone();
    lines.swap(lead, lead + 1);
    cases.push(("two lines swapped", lines, genuine.clone()));
    let mut lines = original.clone();
    lines.remove(lead + 1);
    cases.push(("a commit dropped", lines, genuine.clone()));
    let mut lines = original.clone();
    lines.pop();
    cases.push(("the last commit dropped", lines, genuine.clone()));
    let mut lines = original.clone();
    let mut copy = lines[lead].clone();
    copy.position = lines.last().expect("lines").position + 1;
    lines.push(copy);
    cases.push(("a copy inserted", lines, genuine.clone()));
    let mut edited = genuine.clone();
    edited.summary.log_hash = loan_store::GENESIS_HASH.into();
    cases.push(("the manifest's log hash edited", original.clone(), edited));
    let mut edited = genuine.clone();
    edited.summary.commits += 1;
    cases.push(("the manifest's count edited", original.clone(), edited));

    for (what, lines, manifest) in cases {
        let file = dir.path().join("tampered.jsonl");
        std::fs::write(
            &file,
            lines.iter().flat_map(export_line).collect::<Vec<u8>>(),
        )
        .expect("write");
        let verified = verify_export(&file, &manifest).await.expect("verify");
        assert!(!verified.intact, "{what}: verify finds it");
        let store = SqliteStore::open(dir.path().join(format!("{}.sqlite", Uuid::now_v7())))
            .await
            .expect("open");
        match import_export(&file, &manifest, &store).await.expect(what) {
            ImportOutcome::Refused(refused) => assert_eq!(
                refused.first_broken_link, verified.first_broken_link,
                "{what}: the import names verify's finding"
            ),
            ImportOutcome::Imported(_) => panic!("{what}: a tampered export was imported"),
        }
        assert_eq!(
            store.head().await.expect("head"),
            0,
            "{what}: nothing written"
        );
    }

    // A line that is not an export line at all.
    let file = dir.path().join("garbled.jsonl");
    let mut text = std::fs::read(fixture("history.jsonl")).expect("read");
    text.splice(0..0, b"not json\n".iter().copied());
    std::fs::write(&file, text).expect("write");
    let store = SqliteStore::open(dir.path().join("garbled.sqlite"))
        .await
        .expect("open");
    match import_export(&file, &genuine, &store)
        .await
        .expect("import")
    {
        ImportOutcome::Refused(refused) => {
            assert_eq!(refused.first_broken_link.and_then(|f| f.line), Some(1))
        }
        ImportOutcome::Imported(_) => panic!("a garbled export was imported"),
    }
    assert_eq!(store.head().await.expect("head"), 0);
}
