//! `loan-bench`: how fast is the command service, measured against the raw limit of the
//! same nats-server in the same run (figures, never assertions).
//!
//! For each durability setting (the server default, and `sync_interval: always`) it
//! starts a throwaway nats-server and measures:
//! 1. **raw**: JetStream publishes with PubAck and `Nats-Expected-Last-Subject-Sequence`
//!    to per-aggregate subjects, sequential and with 16 and 64 in flight;
//! 2. **floor**: the least any command service must do — request → in-memory state →
//!    append with expected sequence → reply, no domain logic — with 16 and 64 callers;
//! 3. **service**: the real command service end to end (decode, cache, domain, one
//!    commit, idempotency record, reply) recording repayments on many disbursed loans,
//!    with 16 and 64 callers;
//!
//! and prints commands/s, p50 and p99, and the ratios (3)/(2) and (3)/(1).
//! Run: `cargo run --release -p loan-bench -- --seconds 5`.

#![allow(
    clippy::float_arithmetic,
    reason = "throughput and latency figures for people; no money is computed here"
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use clap::Parser;
use futures::StreamExt;
use loan_command_service::{ServiceConfig, run};
use loan_contract::{CommandReply, Subjects};
use loan_domain::CommandKind;
use loan_engine::{Engine, EngineConfig, MasterKey, Vault};
use loan_store::group_commit::GroupCommit;

mod projection;
use loan_store::keys::MemoryKeyStore;
use loan_store::memory::MemoryStore;
use loan_testkit::NatsServer;
use loan_testkit::synthetic::national_id;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(about = "Benchmark the command service against the raw limit of the same nats-server.")]
struct Args {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Loans per caller in the service measurement (each loan receives about
    /// seconds × rate ÷ loans repayments: keep it near a real loan's count).
    #[arg(long, default_value_t = 32)]
    loans_per_caller: usize,
    /// Durability settings to measure.
    #[arg(long, value_delimiter = ',', default_value = "default,always")]
    sync: Vec<String>,
    /// Measure only the engine on an in-memory store (no server): its CPU cost per
    /// command. Run under `valgrind --tool=callgrind` for an instruction profile.
    #[arg(long)]
    engine_only: bool,
    /// Measure the projectors instead (PostgreSQL at LOAN_TEST_POSTGRES_URL): throughput
    /// from an empty database and a full rebuild, against raw batched upserts.
    #[arg(long)]
    projector: bool,
    /// Events in the generated book of the projector measurement.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
}

/// Throughput and latency of one measurement.
#[derive(Debug, Clone, Copy)]
struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

impl Figures {
    fn from(latencies: &mut [Duration], elapsed: Duration) -> Self {
        latencies.sort_unstable();
        let at = |q: usize| {
            latencies
                .get((latencies.len() * q / 100).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Figures {
            per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50: at(50),
            p99: at(99),
        }
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>9.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
            self.per_second,
            ms(self.p50),
            ms(self.p99)
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `callers` loops of `op(caller, i)` for `seconds`, collecting latencies.
async fn drive<F, Fut>(callers: usize, seconds: u64, op: F) -> anyhow::Result<Figures>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                op(caller, i).await?;
                latencies.push(t.elapsed());
                i += 1;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(Figures::from(&mut all, started.elapsed()))
}

async fn bench_stream(js: &jetstream::Context, name: &str, subjects: &str) -> anyhow::Result<()> {
    js.create_stream(stream::Config {
        name: name.into(),
        subjects: vec![subjects.into()],
        storage: stream::StorageType::File,
        deny_delete: true,
        deny_purge: true,
        allow_direct: true,
        ..Default::default()
    })
    .await
    .context("creating a bench stream")?;
    Ok(())
}

fn commit_payload() -> bytes::Bytes {
    // About the size of a repayment commit.
    bytes::Bytes::from(vec![b'x'; 1800])
}

/// (1) JetStream publishes with expected per-subject sequence; `in_flight` concurrent publishers.
async fn raw(
    client: &async_nats::Client,
    in_flight: usize,
    seconds: u64,
) -> anyhow::Result<Figures> {
    let js = jetstream::new(client.clone());
    let run = Uuid::now_v7().simple().to_string();
    bench_stream(
        &js,
        &format!("RAW_{}_{in_flight}", &run[24..]),
        &format!("raw{}{in_flight}.>", &run[24..]),
    )
    .await?;
    let prefix = format!("raw{}{in_flight}", &run[24..]);
    let last: Arc<Vec<AtomicU64>> = Arc::new((0..in_flight).map(|_| AtomicU64::new(0)).collect());
    drive(in_flight, seconds, move |caller, _| {
        let js = js.clone();
        let last = last.clone();
        let subject = format!("{prefix}.agg{caller}");
        async move {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
            headers.insert(
                "Nats-Expected-Last-Subject-Sequence",
                last[caller].load(Ordering::Relaxed).to_string().as_str(),
            );
            let ack = js
                .publish_with_headers(subject, headers, commit_payload())
                .await?
                .await?;
            last[caller].store(ack.sequence, Ordering::Relaxed);
            Ok(())
        }
    })
    .await
}

/// (2) The floor of any command service: request → state in memory → append → reply.
/// Raw limit of atomic batches (nats-server 2.12+ `allow_atomic`): `in_flight` callers each
/// publish batches of `batch` messages to `batch` different subjects, each message with its
/// `Nats-Expected-Last-Subject-Sequence` (and `Nats-Msg-Id` when `with_msg_id`), as the
/// store's group commit does ([`loan_store::group_commit`]). Figures
/// count messages, not batches.
async fn raw_atomic(
    client: &async_nats::Client,
    in_flight: usize,
    batch: usize,
    with_msg_id: bool,
    seconds: u64,
) -> anyhow::Result<Figures> {
    let js = jetstream::new(client.clone());
    let run = Uuid::now_v7().simple().to_string();
    let name = format!("ATOM_{}_{in_flight}_{batch}", &run[24..]);
    let prefix = format!("atom{}{in_flight}x{batch}", &run[24..]);
    js.create_stream(stream::Config {
        name,
        subjects: vec![format!("{prefix}.>")],
        storage: stream::StorageType::File,
        deny_delete: true,
        deny_purge: true,
        allow_direct: true,
        allow_atomic_publish: true,
        ..Default::default()
    })
    .await
    .context("creating an atomic-batch bench stream")?;
    let last: Arc<Vec<Vec<AtomicU64>>> = Arc::new(
        (0..in_flight)
            .map(|_| (0..batch).map(|_| AtomicU64::new(0)).collect())
            .collect(),
    );
    let client = client.clone();
    let figures = drive(in_flight, seconds, move |caller, _| {
        let js = js.clone();
        let client = client.clone();
        let last = last.clone();
        let prefix = prefix.clone();
        async move {
            let batch_id = Uuid::now_v7().simple().to_string();
            for i in 0..batch {
                let mut headers = HeaderMap::new();
                headers.insert("Nats-Batch-Id", batch_id.as_str());
                headers.insert("Nats-Batch-Sequence", (i + 1).to_string().as_str());
                if with_msg_id {
                    headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
                }
                headers.insert(
                    "Nats-Expected-Last-Subject-Sequence",
                    last[caller][i].load(Ordering::Relaxed).to_string().as_str(),
                );
                let subject = format!("{prefix}.c{caller}.a{i}");
                if i + 1 < batch {
                    client
                        .publish_with_headers(subject, headers, commit_payload())
                        .await?;
                } else {
                    headers.insert("Nats-Batch-Commit", "1");
                    let ack = js
                        .publish_with_headers(subject, headers, commit_payload())
                        .await?
                        .await?;
                    for (j, seq) in last[caller].iter().enumerate() {
                        seq.store(ack.sequence - (batch - 1 - j) as u64, Ordering::Relaxed);
                    }
                }
            }
            Ok(())
        }
    })
    .await?;
    Ok(Figures {
        per_second: figures.per_second * batch as f64,
        ..figures
    })
}

async fn floor(
    client: &async_nats::Client,
    callers: usize,
    seconds: u64,
) -> anyhow::Result<Figures> {
    let js = jetstream::new(client.clone());
    let run = Uuid::now_v7().simple().to_string();
    let tag = format!("{}{callers}", &run[24..]);
    bench_stream(
        &js,
        &format!("FLOOR_{tag}"),
        &format!("floor{tag}.events.>"),
    )
    .await?;
    let mut requests = client
        .queue_subscribe(format!("floor{tag}.cmd"), "floor".into())
        .await?;
    let state: Arc<Mutex<HashMap<String, u64>>> = Arc::new(Mutex::new(HashMap::new()));
    let server_client = client.clone();
    let server_tag = tag.clone();
    let server = tokio::spawn(async move {
        while let Some(message) = requests.next().await {
            let (js, state, client, tag) = (
                js.clone(),
                state.clone(),
                server_client.clone(),
                server_tag.clone(),
            );
            tokio::spawn(async move {
                let aggregate = String::from_utf8_lossy(&message.payload).to_string();
                let expected = *state.lock().await.get(&aggregate).unwrap_or(&0);
                let mut headers = HeaderMap::new();
                headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
                headers.insert(
                    "Nats-Expected-Last-Subject-Sequence",
                    expected.to_string().as_str(),
                );
                let reply: bytes::Bytes = match js
                    .publish_with_headers(
                        format!("floor{tag}.events.{aggregate}"),
                        headers,
                        commit_payload(),
                    )
                    .await
                {
                    Ok(ack) => match ack.await {
                        Ok(ack) => {
                            state.lock().await.insert(aggregate, ack.sequence);
                            "ok".into()
                        }
                        Err(_) => "err".into(),
                    },
                    Err(_) => "err".into(),
                };
                if let Some(reply_to) = message.reply {
                    let _ = client.publish(reply_to, reply).await;
                }
            });
        }
    });
    let caller_client = client.clone();
    let figures = drive(callers, seconds, move |caller, _| {
        let client = caller_client.clone();
        let subject = format!("floor{tag}.cmd");
        async move {
            let reply = client
                .request(subject, format!("agg{caller}").into())
                .await?;
            if reply.payload.as_ref() != b"ok" {
                bail!("floor append failed");
            }
            Ok(())
        }
    })
    .await;
    server.abort();
    figures
}

/// Where commands go: the command service over NATS, or straight into an engine on an
/// in-memory store (no server: the engine's own cost).
#[derive(Clone)]
enum Target {
    Nats(async_nats::Client, Subjects),
    Engine(Arc<Engine<MemoryStore>>),
}

async fn send(
    target: &Target,
    kind: CommandKind,
    roles: &[&str],
    payload: Value,
) -> anyhow::Result<()> {
    let body = json!({ "command_id": Uuid::now_v7(), "actor": { "id": "bench", "roles": roles }, "correlation_id": Uuid::now_v7(), "payload": payload });
    let body = serde_json::to_vec(&body)?;
    let reply = match target {
        Target::Nats(client, subjects) => {
            let reply = client.request(subjects.command(kind), body.into()).await?;
            serde_json::from_slice::<CommandReply>(&reply.payload)?
        }
        Target::Engine(engine) => {
            let reply = engine.execute(kind, &body, chrono::Utc::now()).await;
            // The service serialises every reply; so does this, to measure the same work.
            std::hint::black_box(serde_json::to_vec(&reply)?);
            reply
        }
    };
    match reply {
        CommandReply::Ok { .. } => Ok(()),
        CommandReply::Error { error } => bail!("{kind} refused: {error:?}"),
    }
}

/// Registers a customer and disburses `loans` loans today; returns the loan ids.
async fn setup_loans(target: &Target, loans: usize) -> anyhow::Result<Vec<Uuid>> {
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
    let customer_id = Uuid::now_v7();
    send(target, CommandKind::RegisterCustomer, &["customer_service"], json!({
        "customer_id": customer_id, "name": "Bench Borrower", "gender": "male", "birth_date": "1985-05-05",
        "phone": "13700000000", "national_id": national_id("11010519850505123"), "bank_card": "6222021234567890128",
        "region": "beijing", "employer": null, "risk_appetite": "balanced", "channel": "app",
        "financials": { "monthly_income": "500000.00", "monthly_debt_payments": "0.00", "total_assets": "0.00", "total_liabilities": "0.00" }
    })).await?;
    send(target, CommandKind::RecordCreditAssessment, &["system"], json!({ "customer_id": customer_id, "score": 800, "source": "bench", "assessed_on": today })).await?;
    send(
        target,
        CommandKind::VerifyIdentity,
        &["system"],
        json!({ "customer_id": customer_id, "method": "bench", "verified_on": today }),
    )
    .await?;
    let first_due = today + chrono::Duration::days(30);
    let mut ids = Vec::new();
    for _ in 0..loans {
        let loan_id = Uuid::now_v7();
        send(target, CommandKind::CaptureLead, &["loan_officer"], json!({ "loan_id": loan_id, "customer_id": customer_id, "channel": "app", "purpose": "consumer", "requested_amount": "100000.00", "currency": "CNY", "term_months": 24 })).await?;
        send(target, CommandKind::SubmitForReview, &["loan_officer"], json!({ "loan_id": loan_id, "documents": ["id_card", "credit_report", "income_proof"] })).await?;
        send(target, CommandKind::ApproveApplication, &["underwriter"], json!({ "loan_id": loan_id, "approved_amount": "100000.00", "annual_rate": "0.10", "term_months": 24 })).await?;
        send(target, CommandKind::SignContract, &["loan_officer"], json!({ "loan_id": loan_id, "principal": "100000.00", "annual_rate": "0.10", "term_months": 24, "method": "equal_installment", "first_due_date": first_due, "grace_days": 3, "daily_penalty_rate": "0.0005" })).await?;
        send(target, CommandKind::DisburseLoan, &["finance"], json!({ "loan_id": loan_id, "payout_reference": format!("PO-{loan_id}"), "value_date": today })).await?;
        ids.push(loan_id);
    }
    Ok(ids)
}

/// (3) The real command service: repayments (value-dated today) on many disbursed loans.
async fn service(
    server: &NatsServer,
    callers: usize,
    loans_per_caller: usize,
    seconds: u64,
    group_commit: Option<GroupCommit>,
) -> anyhow::Result<Figures> {
    let run_id = Uuid::now_v7().simple().to_string();
    let subjects =
        Subjects::new(format!("svc{}{callers}", &run_id[24..])).map_err(anyhow::Error::msg)?;
    let mut config = ServiceConfig::new(
        server.url(),
        subjects.clone(),
        format!("SVC_{}_{callers}", &run_id[24..]),
        loan_command_service::MasterKey::generate(),
    );
    config.store.group_commit = group_commit;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(run(config, async {
        let _ = stopped.await;
    }));
    let client = async_nats::connect(server.url()).await?;
    // Wait until the service answers.
    for _ in 0..200 {
        if client
            .request(subjects.command(CommandKind::CaptureLead), "{}".into())
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Set up the loans from all callers at once (one customer per caller).
    let target = Target::Nats(client, subjects);
    let setups = (0..callers).map(|_| setup_loans(&target, loans_per_caller));
    let mut loans = Vec::new();
    for batch in futures::future::join_all(setups).await {
        loans.extend(batch?);
    }
    let figures = repayments(&target, loans, callers, loans_per_caller, seconds).await;
    let _ = stop.send(());
    let _ = service.await;
    figures
}

/// The measured workload: repayments of 1.00, value-dated today, spread over the loans.
async fn repayments(
    target: &Target,
    loans: Vec<Uuid>,
    callers: usize,
    loans_per_caller: usize,
    seconds: u64,
) -> anyhow::Result<Figures> {
    let loans = Arc::new(loans);
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
    let target = target.clone();
    drive(callers, seconds, move |caller, i| {
        let (target, loans) = (target.clone(), loans.clone());
        async move {
            let loan_id = loans[caller * loans_per_caller + (i as usize % loans_per_caller)];
            send(&target, CommandKind::RecordRepayment, &["system"], json!({
                "loan_id": loan_id, "payment_reference": format!("B-{caller}-{i}"), "amount": "1.00", "value_date": today
            }))
            .await
        }
    })
    .await
}

/// The engine alone on an in-memory store: its CPU cost per command, no server involved.
async fn engine_only(
    callers: usize,
    loans_per_caller: usize,
    seconds: u64,
) -> anyhow::Result<Figures> {
    let vault = Vault::new(&MasterKey::generate(), Arc::new(MemoryKeyStore::new()));
    let target = Target::Engine(Arc::new(Engine::new(
        MemoryStore::new(),
        vault,
        EngineConfig::default(),
    )));
    let mut loans = Vec::new();
    for _ in 0..callers {
        loans.extend(setup_loans(&target, loans_per_caller).await?);
    }
    repayments(&target, loans, callers, loans_per_caller, seconds).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.projector {
        return projection::run(args.events, 2).await;
    }
    if args.engine_only {
        let figures = engine_only(1, args.loans_per_caller, args.seconds).await?;
        println!(
            "engine only (in-memory store, 1 caller)  {figures}  = {:.1} us/command",
            1e6 / figures.per_second
        );
        return Ok(());
    }
    println!(
        "loan-bench: {} s per measurement, nats-server {}",
        args.seconds,
        loan_testkit::nats_server_binary().display()
    );
    for sync in &args.sync {
        let mode = match sync.as_str() {
            "default" => loan_testkit::Sync::Default,
            "always" => loan_testkit::Sync::Always,
            other => bail!("unknown --sync {other} (default, always)"),
        };
        let server = NatsServer::start_with(mode);
        let client = async_nats::connect(server.url()).await?;
        println!("\n== durability: {sync} ==");
        let raw1 = raw(&client, 1, args.seconds).await?;
        println!("(1) raw JetStream, sequential        {raw1}");
        let mut raws = HashMap::new();
        let mut floors = HashMap::new();
        for n in [16, 64] {
            let r = raw(&client, n, args.seconds).await?;
            println!("(1) raw JetStream, {n:>2} in flight       {r}");
            raws.insert(n, r);
        }
        for (n, b) in [(1, 2), (1, 16), (4, 64)] {
            let r = raw_atomic(&client, n, b, true, args.seconds).await?;
            println!(
                "(1) raw atomic batches of {b:>2}, {n} in flight  {r} (messages; latency per batch)"
            );
        }
        for n in [16, 64] {
            let f = floor(&client, n, args.seconds).await?;
            println!("(2) floor service, {n:>2} callers         {f}");
            floors.insert(n, f);
        }
        for group_commit in [None, Some(GroupCommit::default())] {
            if group_commit.is_some() && mode != loan_testkit::Sync::Always {
                continue;
            }
            let label = if group_commit.is_some() {
                "+ group commit"
            } else {
                ""
            };
            for n in [16, 64] {
                let s = service(
                    &server,
                    n,
                    args.loans_per_caller,
                    args.seconds,
                    group_commit,
                )
                .await?;
                println!("(3) command service {label}, {n:>2} callers  {s}");
                println!(
                    "    ratios at {n}: (3)/(2) = {:.0}%   (3)/(1) = {:.0}%",
                    100.0 * s.per_second / floors[&n].per_second,
                    100.0 * s.per_second / raws[&n].per_second
                );
            }
        }
    }
    Ok(())
}
