//! Replay speed of the audit tools (docs/performance.md, "Audit replay"): writes N commits
//! through the real engine to a throwaway nats-server, then times `export` of the whole
//! log, `verify` of the export against its manifest, and `verify` of the live stream.
//! Figures, not assertions: `cargo run --release -p loan-audit --example replay_speed -- 50000`.

#![allow(
    unused_crate_dependencies,
    reason = "an example links every dependency of the crate"
)]

use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use loan_audit::export::{Selection, export};
use loan_audit::log::LiveLog;
use loan_audit::verify::{verify_chains, verify_export};
use loan_contract::Subjects;
use loan_domain::CommandKind;
use loan_engine::{Engine, EngineConfig, MasterKey, Vault};
use loan_store::jetstream::{JetStreamStore, StoreConfig};
use loan_store::keys::{JetStreamKeyStore, KeyStoreConfig};
use loan_testkit::NatsServer;
use loan_testkit::synthetic::{bank_card, national_id};
use serde_json::json;
use uuid::Uuid;

fn rate(count: u64, started: Instant) -> String {
    let millis = started.elapsed().as_millis().max(1);
    format!(
        "{count} in {}.{:03} s = {} /s",
        millis / 1000,
        millis % 1000,
        u128::from(count) * 1000 / millis
    )
}

#[tokio::main]
async fn main() {
    let commits: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(50_000);
    let server = NatsServer::start();
    let client = async_nats::connect(server.url()).await.expect("connect");
    let (stream, prefix) = ("AUDIT_BENCH", "bench");
    let subjects = Subjects::new(prefix).expect("prefix");
    let store = JetStreamStore::open(client.clone(), StoreConfig::new(stream, subjects))
        .await
        .expect("store");
    let keys = JetStreamKeyStore::open(client.clone(), KeyStoreConfig::for_stream(stream, 1))
        .await
        .expect("keys");
    let vault = Vault::new(&MasterKey::generate(), Arc::new(keys));
    let engine = Arc::new(Engine::new(store, vault, EngineConfig::default()));
    let now = Utc
        .with_ymd_and_hms(2026, 1, 5, 1, 30, 0)
        .single()
        .expect("time");
    let card = bank_card("622202123456789012");
    let id = national_id("44030419880715123");

    // Each customer: registration, two credit assessments, identity verification.
    let customers = commits.div_ceil(4);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..customers {
        if tasks.len() >= 64 {
            tasks.join_next().await;
        }
        let engine = engine.clone();
        let (card, id) = (card.clone(), id.clone());
        tasks.spawn(async move {
            let customer = Uuid::now_v7();
            let commands = [
                (CommandKind::RegisterCustomer, json!({
                    "customer_id": customer, "name": "Li Wei", "gender": "male", "birth_date": "1988-07-15",
                    "phone": "13912345678", "national_id": id, "bank_card": card,
                    "region": "guangdong", "employer": "Pearl River Logistics", "risk_appetite": "balanced", "channel": "app",
                    "financials": { "monthly_income": "25000.00", "monthly_debt_payments": "2000.00", "total_assets": "400000.00", "total_liabilities": "100000.00" }
                })),
                (CommandKind::RecordCreditAssessment, json!({ "customer_id": customer, "score": 735, "source": "pboc", "assessed_on": "2026-01-05" })),
                (CommandKind::RecordCreditAssessment, json!({ "customer_id": customer, "score": 741, "source": "baihang", "assessed_on": "2026-01-05" })),
                (CommandKind::VerifyIdentity, json!({ "customer_id": customer, "method": "face_match", "verified_on": "2026-01-05" })),
            ];
            for (kind, payload) in commands {
                let body = json!({
                    "command_id": Uuid::now_v7(),
                    "actor": { "id": "bench", "roles": ["customer_service", "system"] },
                    "correlation_id": Uuid::now_v7(),
                    "payload": payload,
                });
                engine
                    .execute(kind, &serde_json::to_vec(&body).expect("json"), now)
                    .await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let log = LiveLog::with_client(client.clone(), stream, prefix).expect("log");
    let head = log.head().await.expect("head");
    println!("written:        {}", rate(head, started));

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("all.jsonl");
    let started = Instant::now();
    let mut out =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).expect("create"));
    let manifest = export(&log, &Selection::All, &mut out, Utc::now())
        .await
        .expect("export");
    drop(out);
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "export:         commits {} ({} MB); events {}",
        manifest.summary.commits,
        bytes / 1_000_000,
        rate(manifest.summary.events, started)
    );
    let started = Instant::now();
    let verification = verify_export(&path, &manifest).await.expect("verify");
    assert!(verification.intact);
    println!(
        "verify export:  events {}",
        rate(verification.summary.events, started)
    );
    let started = Instant::now();
    let mut reader = log.read_all().await.expect("read");
    let verification = verify_chains(&mut reader, [], None)
        .await
        .expect("verify live");
    assert!(verification.intact);
    println!(
        "verify live:    events {}",
        rate(verification.summary.events, started)
    );
}
