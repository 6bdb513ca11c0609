//! `loan-bench --projector`: projector throughput against the raw batched-upsert rate of
//! the same PostgreSQL, and the time to rebuild every projection from the whole log.
//!
//! 1. A lending book is written through the real engine (in memory, with the customers'
//!    data keys in the JetStream key bucket so the projector can mask their fields), then
//!    its commits are copied into a JetStream stream of a throwaway nats-server — the log a
//!    projector reads in production.
//! 2. **raw**: 500-row `INSERT … SELECT FROM UNNEST … ON CONFLICT DO UPDATE` transactions
//!    into a table as wide as `read_model.loans`: the fastest a projector could write.
//! 3. **projector**: both groups from an empty database to the stream head (each its own
//!    consumer and transaction per batch), in parallel as deployed: events/s.
//! 4. **rebuild**: both groups rebuilt from sequence 0 into new tables and switched in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use loan_contract::Subjects;
use loan_domain::CommandKind;
use loan_engine::{Engine, EngineConfig, MasterKey, Vault};
use loan_projection::{Group, GroupProjector, ProjectorConfig};
use loan_store::jetstream::{JetStreamStore, StoreConfig};
use loan_store::keys::{JetStreamKeyStore, KeyStoreConfig};
use loan_store::memory::MemoryStore;
use loan_testkit::NatsServer;
use loan_testkit::postgres::TestDatabase;
use serde_json::json;
use uuid::Uuid;

use loan_contract::CommandReply;

const PREFIX: &str = "benchproj";
const STREAM: &str = "BENCH_PROJECTION";

/// Loans per borrower and repayments per loan of the generated book.
const LOANS_PER_BORROWER: usize = 3;
const REPAYMENTS_PER_LOAN: usize = 24;

pub(crate) async fn run(events_wanted: u64, writers: usize) -> anyhow::Result<()> {
    let server = NatsServer::start_with(loan_testkit::Sync::Default);
    let client = async_nats::connect(server.url()).await?;
    let database = TestDatabase::create().await;
    let master = MasterKey::generate();
    println!(
        "projector bench: ~{events_wanted} events, nats-server {}, PostgreSQL {}",
        server.url(),
        loan_testkit::postgres::admin_url()
    );

    // 1. The book, through the real engine.
    let started = Instant::now();
    let keys = JetStreamKeyStore::open(client.clone(), KeyStoreConfig::for_stream(STREAM, 1))
        .await
        .context("key bucket")?;
    let store = MemoryStore::new();
    let engine = Arc::new(Engine::new(
        store.clone(),
        Vault::new(&master, Arc::new(keys)),
        EngineConfig::default(),
    ));
    let per_borrower = 3 + LOANS_PER_BORROWER * (5 + REPAYMENTS_PER_LOAN);
    let borrowers = (events_wanted as usize).div_ceil(per_borrower).max(writers);
    // Onboarding and disbursement first, then month by month every loan's repayment, as
    // a real log interleaves loans (a batch of the projector touches many loans).
    let loans: Vec<Uuid> = split_run(&engine, writers, borrowers, |engine, _| async move {
        onboard(&engine).await
    })
    .await?
    .into_iter()
    .flatten()
    .collect();
    let loans = Arc::new(loans);
    for month in 0..REPAYMENTS_PER_LOAN {
        let loans = loans.clone();
        split_run(&engine, writers, loans.len(), move |engine, i| {
            let loan_id = loans[i];
            async move { repay(&engine, loan_id, month).await }
        })
        .await?;
    }
    let entries = store.entries();
    let events: u64 = entries.iter().map(|(_, bytes)| count_events(bytes)).sum();
    println!(
        "book: {borrowers} borrowers, {} commits, {events} events written by the engine in {:.1} s",
        entries.len(),
        started.elapsed().as_secs_f64()
    );

    // Copy into the stream, in order.
    let started = Instant::now();
    let subjects = Subjects::new(PREFIX).map_err(anyhow::Error::msg)?;
    JetStreamStore::open(client.clone(), StoreConfig::new(STREAM, subjects.clone())).await?;
    let js = async_nats::jetstream::new(client.clone());
    let mut acks = futures::stream::FuturesOrdered::new();
    for (aggregate, bytes) in entries {
        let ack = js
            .publish(
                subjects.events(aggregate.aggregate_type, aggregate.id),
                bytes.into(),
            )
            .await?;
        acks.push_back(ack.into_future());
        if acks.len() >= 512 {
            if let Some(ack) = acks.next().await {
                ack?;
            }
        }
    }
    while let Some(ack) = acks.next().await {
        ack?;
    }
    println!(
        "copied into stream {STREAM} in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 2. Raw batched upserts.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(database.url())
        .await?;
    let raw = raw_upserts(&pool, Duration::from_secs(5)).await?;
    println!("(1) raw PostgreSQL upserts, 500-row transactions  {raw:>9.0} rows/s");

    // 3. Incremental from empty (the schema first: both groups then open at once).
    loan_projection::migrate(&pool).await?;
    let config = ProjectorConfig::new(server.url(), STREAM, PREFIX, database.url(), master.clone());
    let started = Instant::now();
    let mut runs = Vec::new();
    for group in Group::ALL {
        let config = config.clone();
        runs.push(tokio::spawn(async move {
            let mut projector = GroupProjector::open(config, group).await?;
            let checkpoint = projector.catch_up().await?;
            Ok::<_, loan_projection::ProjectionError>((group, checkpoint, Instant::now()))
        }));
    }
    for run in runs {
        let (group, checkpoint, done) = run.await??;
        let seconds = done.duration_since(started).as_secs_f64();
        println!(
            "    {group:<12} caught up to sequence {checkpoint} in {seconds:.1} s ({:.0} events/s)",
            events as f64 / seconds
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = events as f64 / elapsed;
    println!(
        "(2) projector, all projections                  {rate:>9.0} events/s  ({events} events in {elapsed:.1} s)"
    );
    println!("    ratio (2)/(1) = {:.0}%", 100.0 * rate / raw);

    // 4. Rebuild both groups from sequence 0 while the live tables stay.
    let started = Instant::now();
    let mut rebuilds = Vec::new();
    for group in Group::ALL {
        let config = config.clone();
        rebuilds.push(tokio::spawn(loan_projection::rebuild(config, group)));
    }
    for rebuild in rebuilds {
        rebuild.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "(3) rebuild of every projection from {events} events: {elapsed:.1} s ({:.0} events/s)",
        events as f64 / elapsed
    );
    pool.close().await;
    database.drop_database().await;
    Ok(())
}

fn count_events(bytes: &[u8]) -> u64 {
    loan_store::Commit::from_bytes(bytes).map_or(0, |commit| commit.events.len() as u64)
}

/// Sends one command to the engine on business date `on` (09:30 in UTC+8).
async fn send(
    engine: &Engine<MemoryStore>,
    on: chrono::NaiveDate,
    kind: CommandKind,
    roles: &[&str],
    payload: serde_json::Value,
) -> anyhow::Result<()> {
    let body = json!({ "command_id": Uuid::now_v7(), "actor": { "id": "bench", "roles": roles }, "correlation_id": Uuid::now_v7(), "payload": payload });
    let now = on.and_hms_opt(1, 30, 0).context("time")?.and_utc();
    match engine.execute(kind, &serde_json::to_vec(&body)?, now).await {
        CommandReply::Ok { .. } => Ok(()),
        CommandReply::Error { error } => anyhow::bail!("{kind} refused: {error:?}"),
    }
}

fn start_date() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2024, 1, 5).unwrap_or_default()
}

/// Runs `job(engine, i)` for i in 0..count on `writers` tasks; results in index order.
async fn split_run<T, F, Fut>(
    engine: &Arc<Engine<MemoryStore>>,
    writers: usize,
    count: usize,
    job: F,
) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(Arc<Engine<MemoryStore>>, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send,
{
    let mut tasks = Vec::new();
    for writer in 0..writers.max(1) {
        let (engine, job) = (engine.clone(), job.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in (writer..count).step_by(writers.max(1)) {
                out.push((i, job(engine.clone(), i).await?));
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, t)| t).collect())
}

/// One borrower onboarded with loans signed and disbursed on the start date.
async fn onboard(engine: &Engine<MemoryStore>) -> anyhow::Result<Vec<Uuid>> {
    let start = start_date();
    let customer_id = Uuid::now_v7();
    send(engine, start, CommandKind::RegisterCustomer, &["customer_service"], json!({
        "customer_id": customer_id, "name": "Bench Borrower", "gender": "female", "birth_date": "1990-03-07",
        "phone": "13700000000", "national_id": crate::national_id("11010519900307122"), "bank_card": "6222021234567890128",
        "region": "beijing", "employer": null, "risk_appetite": "balanced", "channel": "app",
        "financials": { "monthly_income": "500000.00", "monthly_debt_payments": "0.00", "total_assets": "0.00", "total_liabilities": "0.00" }
    })).await?;
    send(engine, start, CommandKind::RecordCreditAssessment, &["system"], json!({ "customer_id": customer_id, "score": 780, "source": "bench", "assessed_on": start })).await?;
    send(
        engine,
        start,
        CommandKind::VerifyIdentity,
        &["system"],
        json!({ "customer_id": customer_id, "method": "bench", "verified_on": start }),
    )
    .await?;
    let mut loans = Vec::new();
    for _ in 0..LOANS_PER_BORROWER {
        let loan_id = Uuid::now_v7();
        let first_due = start + chrono::Months::new(1);
        send(engine, start, CommandKind::CaptureLead, &["loan_officer"], json!({ "loan_id": loan_id, "customer_id": customer_id, "channel": "app", "purpose": "consumer", "requested_amount": "24000.00", "currency": "CNY", "term_months": 24 })).await?;
        send(engine, start, CommandKind::SubmitForReview, &["loan_officer"], json!({ "loan_id": loan_id, "documents": ["id_card", "credit_report", "income_proof"] })).await?;
        send(engine, start, CommandKind::ApproveApplication, &["underwriter"], json!({ "loan_id": loan_id, "approved_amount": "24000.00", "annual_rate": "0.12", "term_months": 24 })).await?;
        send(engine, start, CommandKind::SignContract, &["loan_officer"], json!({ "loan_id": loan_id, "principal": "24000.00", "annual_rate": "0.12", "term_months": 24, "method": "equal_principal", "first_due_date": first_due, "grace_days": 3, "daily_penalty_rate": "0.0005" })).await?;
        send(engine, start, CommandKind::DisburseLoan, &["finance"], json!({ "loan_id": loan_id, "payout_reference": format!("PO-{loan_id}"), "value_date": start })).await?;
        loans.push(loan_id);
    }
    Ok(loans)
}

/// The repayment of `month` on its due date: 900.00, a little less than an installment,
/// so loans stay open and every installment is paid partly by two payments.
async fn repay(engine: &Engine<MemoryStore>, loan_id: Uuid, month: usize) -> anyhow::Result<()> {
    let value_date = start_date() + chrono::Months::new(1 + u32::try_from(month)?);
    send(engine, value_date, CommandKind::RecordRepayment, &["system"], json!({
        "loan_id": loan_id, "payment_reference": format!("R-{loan_id}-{month}"), "amount": "900.00", "value_date": value_date
    })).await
}

/// Rows per second of 500-row upsert transactions into a table shaped like the loans
/// read model, for `duration`.
async fn raw_upserts(pool: &sqlx::PgPool, duration: Duration) -> anyhow::Result<f64> {
    sqlx::query(
        "CREATE TABLE bench_upsert (id uuid PRIMARY KEY, customer_id uuid, status text, principal numeric(20,2), \
         outstanding_principal numeric(20,2), outstanding_interest numeric(20,2), total_repaid numeric(20,2), \
         next_due_date date, days_past_due int, version bigint, last_position bigint)",
    )
    .execute(pool)
    .await?;
    let ids: Vec<Uuid> = (0..20_000).map(|_| Uuid::now_v7()).collect();
    let started = Instant::now();
    let mut rows = 0u64;
    let mut round = 0i64;
    while started.elapsed() < duration {
        for chunk in ids.chunks(500) {
            let n = chunk.len();
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO bench_upsert SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::numeric[], \
                 $5::numeric[], $6::numeric[], $7::numeric[], $8::date[], $9::int[], $10::bigint[], $11::bigint[]) \
                 ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, outstanding_principal = EXCLUDED.outstanding_principal, \
                 outstanding_interest = EXCLUDED.outstanding_interest, total_repaid = EXCLUDED.total_repaid, \
                 next_due_date = EXCLUDED.next_due_date, days_past_due = EXCLUDED.days_past_due, \
                 version = EXCLUDED.version, last_position = EXCLUDED.last_position",
            )
            .bind(chunk)
            .bind(vec![Uuid::nil(); n])
            .bind(vec!["repaying"; n])
            .bind(vec![rust_decimal::Decimal::new(2_400_000, 2); n])
            .bind(vec![rust_decimal::Decimal::new(1_200_000, 2); n])
            .bind(vec![rust_decimal::Decimal::new(12_000, 2); n])
            .bind(vec![rust_decimal::Decimal::new(1_300_000, 2); n])
            .bind(vec![chrono::NaiveDate::from_ymd_opt(2026, 12, 5); n])
            .bind(vec![0i32; n])
            .bind(vec![round; n])
            .bind(vec![round; n])
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            rows += n as u64;
            round += 1;
            if started.elapsed() >= duration {
                break;
            }
        }
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}
