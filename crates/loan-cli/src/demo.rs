//! `loan demo`: the project's main job — a realistic lending book run through the real
//! engine, then what each kind of user would look at.
//!
//! By default everything runs in this process on the embedded mode (an SQLite event
//! store and SQLite read models in a data directory, no servers). With `--nats` and
//! `--database-url` the same book goes through a command service on a real NATS server
//! (started in this process, on simulated time) and projectors into a real PostgreSQL.
//!
//! Steps: the book (every command through the command path), the projections (caught up
//! with the log), the reports (customer 360, segments, delinquency with PAR and roll
//! rates, the pipeline funnel), consistency checks between the reports, and the audit
//! check (replay agrees with the live read models; the hash chain is intact). The exit
//! status is 0 only if every check holds.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Months, NaiveDate, Utc};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use loan_audit::log::EmbeddedLog;
use loan_audit::verify::{Verification, verify_chains};
use loan_contract::{CommandReply, ErrorCode, Subjects};
use loan_demo::{CommandPath, DemoConfig, Summary};
use loan_domain::CommandKind;
use loan_engine::clock::ManualClock;
use loan_engine::{Engine, EngineConfig, MasterKey, Vault};
use loan_projection::embedded::{EmbeddedOptions, EmbeddedProjector};
use loan_projection::{Group, GroupProjector, ProjectorConfig, ReplayComparison};
use loan_query_api::ReadModels;
use loan_query_api::reports::PageRequest;
use loan_query_api::reports::customer_360::customer_360;
use loan_query_api::reports::delinquency::{
    Breakdown, BucketFigures, LoanDelinquency, ParFigures, loan_delinquency, portfolio_at_risk,
    portfolio_buckets,
};
use loan_query_api::reports::pipeline::{FunnelFigures, FunnelGrouping, funnel};
use loan_query_api::reports::roll_rate::roll_rates;
use loan_query_api::reports::segmentation::{SegmentFigures, segment_figures};
use loan_store::checkpoint::{AppendSignal, Cadence, CheckpointWriter};
use loan_store::sqlite::{Durability, SqliteConfig, SqliteStore};
use rust_decimal::Decimal;

use crate::showcase;

/// Run the demo: a realistic lending book on the embedded engine (no servers needed),
/// then the customer 360, segments, delinquency report with PAR and roll rates, the
/// pipeline funnel, and an audit check.
///
/// A seeded synthetic book — customers over several channels and regions, applications
/// through the automated decision policy, contracts with both repayment methods, months
/// of on-time, late, partial, backdated and reversed repayments, overdue loans cured,
/// written off or paid off — goes command by command through the real engine. The same
/// seed prints the same figures. The data directory is kept: explore it afterwards with
/// the commands printed at the end. Exit status 0 when every check holds, 1 otherwise.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Customers onboarded (each applies for one loan).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=200_000))]
    customers: u64,
    /// Months of simulated time (customers arrive during the first 60%).
    #[arg(long, default_value_t = 18, value_parser = clap::value_parser!(u32).range(3..=60))]
    months: u32,
    /// Same seed, same book.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// First simulated business date.
    #[arg(long, default_value = "2025-01-02")]
    start: NaiveDate,
    /// Embedded mode: the directory for the event store, read models and master key
    /// (created; must not hold a previous demo). Default: a new directory under the
    /// system's temporary directory.
    #[arg(long, conflicts_with = "nats")]
    data: Option<PathBuf>,
    /// Run against a real NATS server instead (with --database-url): a command service
    /// is started in this process on that server.
    #[arg(long, requires = "database_url")]
    nats: Option<String>,
    /// PostgreSQL for the read models when running against real servers (with --nats).
    #[arg(long, requires = "nats")]
    database_url: Option<String>,
    /// Subject prefix and stream of the demo on a real NATS server (kept apart from a
    /// deployment's own).
    #[arg(long, default_value = "demo")]
    subject_prefix: String,
    #[arg(long, default_value = "DEMO_EVENTS")]
    stream: String,
    /// Aggregates whose commands of one simulated day are sent concurrently.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// No progress bars (e.g. in logs).
    #[arg(long)]
    quiet: bool,
    /// Embedded mode: fsync every group of appends (survives a power loss) instead of
    /// the demo's default, which survives a crash of the process only (the data is
    /// throwaway; an fsync per transaction would dominate the run time).
    #[arg(long)]
    durable: bool,
}

pub(crate) fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(demo(args))
}

async fn demo(args: &DemoArgs) -> anyhow::Result<()> {
    let config = DemoConfig {
        seed: args.seed,
        customers: usize::try_from(args.customers).context("--customers")?,
        start: args.start,
        months: args.months,
        concurrency: args.concurrency.max(1),
    };
    match (&args.nats, &args.database_url) {
        (Some(nats), Some(database_url)) => on_servers(args, &config, nats, database_url).await,
        _ => embedded(args, &config).await,
    }
}

/// Everything in this process: SQLite event store and read models in a data directory.
async fn embedded(args: &DemoArgs, config: &DemoConfig) -> anyhow::Result<()> {
    let dir = match &args.data {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!(
            "loan-demo-{}-{}",
            args.seed,
            Utc::now().format("%Y%m%dT%H%M%S")
        )),
    };
    let events_path = dir.join("events.sqlite");
    if events_path.exists() {
        bail!(
            "{} already holds a demo; choose another --data directory or delete it",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_path = dir.join("master.key");
    let master = MasterKey::create_file(&key_path)
        .with_context(|| format!("writing the master key {}", key_path.display()))?;
    let durability = if args.durable {
        Durability::MachineCrash
    } else {
        Durability::ProcessCrash
    };
    let store_config = SqliteConfig {
        durability,
        ..SqliteConfig::default()
    };
    let store = SqliteStore::open_with(&events_path, store_config, true)
        .await
        .with_context(|| format!("opening the event store {}", events_path.display()))?;
    let keys = Arc::new(store.key_store());
    let engine = Engine::new(
        store.clone(),
        Vault::new(&master, keys.clone()),
        EngineConfig::default(),
    );
    println!(
        "loan demo · embedded mode · data in {} · seed {} · {} customers over {} months from {}",
        dir.display(),
        config.seed,
        config.customers,
        config.months,
        config.start
    );
    if !args.durable {
        println!(
            "(the demo's appends survive a crash of the process, not a power loss: --durable fsyncs each group)"
        );
    }

    // The projector follows the log while the book is played (as `loan embedded serve`
    // does), so projecting overlaps the appends instead of coming after them.
    let read_models_path = dir.join("read-models.sqlite");
    let store = Arc::new(store);
    let projector = EmbeddedProjector::open(
        &read_models_path,
        store.clone(),
        Vault::new(&master, keys.clone()),
        EmbeddedOptions::default(),
    )
    .await
    .context("opening the read models")?;
    let playing = Arc::new(AtomicBool::new(true));
    let follower = tokio::spawn(follow(projector, playing.clone()));
    // Checkpoints over the whole log, every few seconds of the run and once at the end.
    let checkpoints = |every| {
        CheckpointWriter::new(
            (*store).clone(),
            Cadence {
                every_commits: None,
                every,
            },
            AppendSignal::new(),
            Arc::new(Utc::now),
        )
    };
    let periodic = checkpoints(Some(Duration::from_secs(3)));
    let (stop_checkpoints, checkpoints_stopped) = tokio::sync::oneshot::channel::<()>();
    let checkpointing = tokio::spawn(periodic.run(async move {
        let _ = checkpoints_stopped.await;
    }));
    let summary = play_book(args, config, &engine).await;
    playing.store(false, Ordering::Relaxed);
    let _ = stop_checkpoints.send(());
    let mut projector = follower.await.context("the projector task")??;
    let summary = summary?;
    checkpointing.await.context("the checkpoint task")?;
    checkpoints(None)
        .checkpoint_now()
        .await
        .context("writing the last checkpoint")?;

    let started = Instant::now();
    let spinner = spinner(args.quiet, "projecting the rest of the log");
    let head = projector.catch_up().await.context("projecting")?;
    spinner.finish_and_clear();
    println!(
        "projected the log up to position {head} into {} (the last commits {:.1} s after the book)",
        read_models_path.display(),
        started.elapsed().as_secs_f64()
    );
    let read_models = ReadModels::Sqlite(projector.pool().clone());

    let mut checks = Checks::default();
    show_reports(&read_models, &summary, &mut checks).await?;

    println!("\n## Audit");
    let verification = verify_log(&store).await?;
    checks.record(
        verification.intact,
        format!(
            "hash chains intact over {} commits; checkpoints in the log that agree with them: {}",
            verification.commits_checked, verification.summary.checkpoints
        ),
    );
    if let Some(finding) = &verification.first_broken_link {
        println!("    first broken link: {finding:?}");
    }
    for group in Group::ALL {
        let comparison = projector
            .replay_and_compare(group, 3)
            .await
            .with_context(|| format!("replaying {group}"))?;
        record_replay(&mut checks, &comparison);
    }
    println!(
        "\nExplore it:\n  loan query-api serve --database-url sqlite://{}\n  loan audit verify --embedded {}\n  sqlite3 {} 'SELECT status, count(*) FROM loans GROUP BY 1'",
        read_models_path.display(),
        events_path.display(),
        read_models_path.display(),
    );
    checks.finish()
}

/// The same book through a command service on a real NATS server and projectors into a
/// real PostgreSQL.
async fn on_servers(
    args: &DemoArgs,
    config: &DemoConfig,
    nats: &str,
    database_url: &str,
) -> anyhow::Result<()> {
    let subjects = Subjects::new(args.subject_prefix.clone())
        .map_err(|e| anyhow::anyhow!("--subject-prefix: {e}"))?;
    let client = async_nats::connect(nats)
        .await
        .with_context(|| format!("connecting to NATS at {nats}"))?;
    let jetstream = async_nats::jetstream::new(client.clone());
    if let Ok(mut stream) = jetstream.get_stream(&args.stream).await {
        let messages = stream
            .info()
            .await
            .map(|info| info.state.messages)
            .unwrap_or(0);
        if messages > 0 {
            bail!(
                "stream {} already holds {messages} messages: run the demo with another --stream",
                args.stream
            );
        }
    }
    let master = MasterKey::generate();
    let clock = Arc::new(ManualClock::new(
        config
            .start
            .and_hms_opt(1, 30, 0)
            .unwrap_or_default()
            .and_utc(),
    ));
    let mut service_config = loan_command_service::ServiceConfig::new(
        nats,
        subjects.clone(),
        args.stream.clone(),
        master.clone(),
    );
    service_config.clock = clock.clone();
    service_config.service_name = "loan-demo-commands".into();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(loan_command_service::run(service_config, async move {
        let _ = stopped.await;
    }));
    let path = NatsPath {
        client,
        subjects: subjects.clone(),
        clock,
    };
    path.wait_until_served().await?;
    println!(
        "loan demo · NATS {nats} (stream {}, prefix {}) · PostgreSQL · seed {} · {} customers over {} months from {}",
        args.stream,
        args.subject_prefix,
        config.seed,
        config.customers,
        config.months,
        config.start
    );
    let summary = play_book(args, config, &path).await?;
    let _ = stop.send(());
    service.await.context("the command service task")??;

    let started = Instant::now();
    let mut projector_config = ProjectorConfig::new(
        nats,
        args.stream.clone(),
        args.subject_prefix.clone(),
        database_url,
        master,
    );
    projector_config.consumer_prefix = format!("demo-projector-{}", args.seed);
    let spinner = spinner(args.quiet, "projecting the stream into PostgreSQL");
    for group in Group::ALL {
        let mut projector = GroupProjector::open(projector_config.clone(), group)
            .await
            .with_context(|| format!("opening the {group} projector"))?;
        projector
            .catch_up()
            .await
            .with_context(|| format!("projecting {group}"))?;
    }
    spinner.finish_and_clear();
    println!(
        "projected the stream into PostgreSQL in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let read_models = ReadModels::connect(database_url, 4)
        .await
        .context("connecting to the read models")?;
    let mut checks = Checks::default();
    show_reports(&read_models, &summary, &mut checks).await?;
    println!("\n## Audit");
    for group in Group::ALL {
        let comparison = loan_projection::replay_and_compare(projector_config.clone(), group, 3)
            .await
            .with_context(|| format!("replaying {group}"))?;
        record_replay(&mut checks, &comparison);
    }
    checks.finish()
}

/// Projects batch after batch while `playing`; returns the projector when told to stop.
async fn follow(
    mut projector: EmbeddedProjector<SqliteStore>,
    playing: Arc<AtomicBool>,
) -> anyhow::Result<EmbeddedProjector<SqliteStore>> {
    while playing.load(Ordering::Relaxed) {
        let steps = projector.step().await.context("projecting")?;
        if steps.iter().all(|(_, outcome)| outcome.fetched == 0) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(projector)
}

/// Plays the book with a progress bar and prints what it did.
async fn play_book<P: CommandPath>(
    args: &DemoArgs,
    config: &DemoConfig,
    path: &P,
) -> anyhow::Result<Summary> {
    let days = config
        .start
        .checked_add_months(Months::new(config.months))
        .map_or(0, |end| (end - config.start).num_days());
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(u64::try_from(days).unwrap_or(0))
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} simulating {pos}/{len} days [{bar:30}] {msg} ({elapsed})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let progress = |done: u64, _total: u64, commands: u64| {
        bar.set_position(done);
        bar.set_message(format!("{commands} commands"));
    };
    let summary = loan_demo::run(config, path, &progress)
        .await
        .context("the demo book stopped")?;
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    println!(
        "simulated {} → {}: {} commands in {:.1} s ({:.0} commands/s)",
        summary.start,
        summary.end,
        summary.commands,
        elapsed.as_secs_f64(),
        per_second(summary.commands, elapsed)
    );
    println!("\n## The book\n{}", showcase::book(&summary));
    Ok(summary)
}

/// Prints what each kind of user looks at, checking the reports against each other.
async fn show_reports(
    read_models: &ReadModels,
    summary: &Summary,
    checks: &mut Checks,
) -> anyhow::Result<()> {
    let as_of = summary.end;
    let all = PageRequest::new(1000, 0)?;
    if let Some(customer_id) = summary.showcase {
        let view = customer_360(read_models, customer_id, as_of)
            .await
            .context("customer 360")?;
        println!(
            "\n## Customer 360 (customer service) — as of {as_of}\n{}",
            showcase::customer_360(&view)
        );
    }
    let segments = segment_figures(read_models, as_of, all)
        .await
        .context("segments")?;
    println!(
        "\n## Segments (marketing, risk) — as of {as_of}\n{}",
        showcase::segments(&segments.items)
    );
    let buckets = portfolio_buckets(read_models, as_of, Breakdown::Portfolio, all)
        .await
        .context("aging buckets")?;
    let par = portfolio_at_risk(read_models, as_of, Breakdown::Portfolio, all)
        .await
        .context("portfolio at risk")?;
    let par_by_channel = portfolio_at_risk(read_models, as_of, Breakdown::Channel, all)
        .await
        .context("portfolio at risk by channel")?;
    let mut par_rows = par.items.clone();
    par_rows.extend(par_by_channel.items.iter().cloned());
    println!(
        "\n## Delinquency (collections, risk) — as of {as_of}\n{}",
        showcase::delinquency(&buckets.items, &par_rows)
    );
    let quarter_before = as_of.checked_sub_months(Months::new(3)).unwrap_or(as_of);
    let rolls = roll_rates(read_models, quarter_before, as_of, all)
        .await
        .context("roll rates")?;
    println!(
        "\n## Roll rates {quarter_before} → {as_of} (share of outstanding principal, loans)\n{}",
        showcase::roll_rates(&rolls.items)
    );
    let pipeline = funnel(read_models, FunnelGrouping::Channel, None, None, all)
        .await
        .context("pipeline")?;
    println!(
        "\n## Pipeline (sales) — lead → review → signed → disbursed\n{}",
        showcase::funnel(&pipeline.items)
    );

    let mut loans = Vec::new();
    let mut page = PageRequest::new(1000, 0)?;
    loop {
        let chunk = loan_delinquency(read_models, as_of, page)
            .await
            .context("loan delinquency")?;
        loans.extend(chunk.items);
        match chunk.next_offset {
            Some(offset) => page = PageRequest::new(1000, offset)?,
            None => break,
        }
    }

    println!("\n## Consistency");
    consistency(
        checks,
        summary,
        &Book {
            buckets: &buckets.items,
            par: &par.items,
            loans: &loans,
            segments: &segments.items,
            pipeline: &pipeline.items,
        },
    );
    Ok(())
}

/// The reports the consistency checks compare.
struct Book<'r> {
    buckets: &'r [BucketFigures],
    par: &'r [ParFigures],
    loans: &'r [LoanDelinquency],
    segments: &'r [SegmentFigures],
    pipeline: &'r [FunnelFigures],
}

/// The reports must agree with each other and with the book that was played.
fn consistency(checks: &mut Checks, summary: &Summary, book: &Book<'_>) {
    let in_buckets = |wanted: &dyn Fn(&str) -> bool| -> (i64, Decimal) {
        book.buckets
            .iter()
            .filter(|b| wanted(&b.aging_bucket))
            .fold((0, Decimal::ZERO), |(loans, sum), b| {
                (loans + b.loans, sum + b.outstanding_principal)
            })
    };
    let past_due_loans = |more_than: i32| -> (i64, Decimal) {
        book.loans
            .iter()
            .filter(|loan| loan.days_past_due > more_than)
            .fold((0, Decimal::ZERO), |(loans, sum), loan| {
                (loans + 1, sum + loan.outstanding_principal)
            })
    };
    let (all_loans, all_outstanding) = in_buckets(&|_| true);
    let (overdue_loans, overdue_outstanding) = in_buckets(&|bucket| bucket != "current");
    let (loans_in_arrears, arrears_outstanding) = past_due_loans(0);
    checks.record(
        (overdue_loans, overdue_outstanding) == (loans_in_arrears, arrears_outstanding),
        format!(
            "past-due buckets = the loans in arrears one by one: {overdue_loans} loans, {} outstanding principal",
            showcase::money(overdue_outstanding)
        ),
    );
    match book.par.first() {
        Some(all) => {
            checks.record(
                all_loans == all.loans && all_outstanding == all.outstanding_principal,
                format!(
                    "aging buckets add up to the book: {all_loans} loans, {} outstanding",
                    showcase::money(all_outstanding)
                ),
            );
            let numerators = [1, 30, 90].map(|days| past_due_loans(days).1);
            checks.record(
                numerators == [all.at_risk_1, all.at_risk_30, all.at_risk_90],
                format!(
                    "PAR1/30/90 numerators = outstanding of the loans more than 1/30/90 days past due ({} / {} / {})",
                    showcase::money(all.at_risk_1),
                    showcase::money(all.at_risk_30),
                    showcase::money(all.at_risk_90)
                ),
            );
            let (_, over_30) = in_buckets(&|bucket| {
                matches!(bucket, "dpd_31_to_60" | "dpd_61_to_90" | "dpd_90_plus")
            });
            let (_, over_90) = in_buckets(&|bucket| bucket == "dpd_90_plus");
            checks.record(
                over_30 == all.at_risk_30 && over_90 == all.at_risk_90,
                "buckets 31+ and 90+ = PAR30 and PAR90 numerators".to_owned(),
            );
        }
        None => checks.record(false, "the PAR report has a portfolio row".to_owned()),
    }
    let funnel_leads: i64 = book.pipeline.iter().map(|row| row.leads).sum();
    let funnel_disbursed: i64 = book.pipeline.iter().map(|row| row.disbursed).sum();
    checks.record(
        u64::try_from(funnel_leads).ok() == Some(summary.applications)
            && u64::try_from(funnel_disbursed).ok() == Some(summary.disbursed_loans),
        format!("pipeline = the book played: {funnel_leads} leads, {funnel_disbursed} disbursed"),
    );
    let customers_by_grade: i64 = book
        .segments
        .iter()
        .filter(|row| row.dimension == "risk_grade")
        .map(|row| row.customers)
        .sum();
    checks.record(
        u64::try_from(customers_by_grade).ok() == Some(summary.customers),
        format!("every customer in one risk grade: {customers_by_grade}"),
    );
}

fn record_replay(checks: &mut Checks, comparison: &ReplayComparison) {
    let rows: u64 = comparison.tables.iter().map(|t| t.live_rows).sum();
    checks.record(
        comparison.agrees(),
        format!(
            "replay of group {} from position 0 agrees with the live read models ({} tables, {rows} rows)",
            comparison.group,
            comparison.tables.len()
        ),
    );
    for table in comparison
        .tables
        .iter()
        .filter(|t| t.only_live + t.only_replayed > 0)
    {
        println!(
            "    {}: {} rows only live, {} only replayed; e.g. {:?} / {:?}",
            table.table,
            table.only_live,
            table.only_replayed,
            table.examples_only_live,
            table.examples_only_replayed
        );
    }
}

/// Recomputes every aggregate's hash chain and every checkpoint's running log hash over
/// the stored bytes of the whole log, as `loan audit verify --embedded` does.
async fn verify_log(store: &SqliteStore) -> anyhow::Result<Verification> {
    let log = EmbeddedLog::with_store(store.clone(), "demo").context("reading the log")?;
    let mut reader = log
        .read_all_with_checkpoints()
        .await
        .context("reading the log")?;
    verify_chains(&mut reader, [], None)
        .await
        .context("verifying the log")
}

/// Commands over NATS to the command service (which runs on the demo's simulated clock).
struct NatsPath {
    client: async_nats::Client,
    subjects: Subjects,
    clock: Arc<ManualClock>,
}

impl NatsPath {
    /// Waits until the command service answers (an unknown command gets a reply).
    async fn wait_until_served(&self) -> anyhow::Result<()> {
        let subject = format!("{}.cmd.demo.ping", self.subjects.prefix());
        for _ in 0..100 {
            if self
                .client
                .request(subject.clone(), Vec::new().into())
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the command service did not come up on {subject}")
    }
}

impl CommandPath for NatsPath {
    async fn send(&self, kind: CommandKind, body: Vec<u8>, now: DateTime<Utc>) -> CommandReply {
        // All commands of a simulated day carry the same instant.
        self.clock.set(now);
        let subject = self.subjects.command(kind);
        match self.client.request(subject, body.into()).await {
            Ok(message) => serde_json::from_slice(&message.payload).unwrap_or_else(|e| {
                CommandReply::error(ErrorCode::Internal, format!("undecodable reply: {e}"), None)
            }),
            Err(error) => CommandReply::error(
                ErrorCode::Unavailable,
                format!("no reply from the command service: {error}"),
                None,
            ),
        }
    }
}

/// The demo's checks, printed as they are made.
#[derive(Default)]
struct Checks {
    failed: u32,
}

impl Checks {
    fn record(&mut self, holds: bool, what: String) {
        if holds {
            println!("  ✓ {what}");
        } else {
            self.failed += 1;
            println!("  ✗ {what}");
        }
    }

    fn finish(self) -> anyhow::Result<()> {
        if self.failed == 0 {
            println!("\nevery check holds");
            Ok(())
        } else {
            bail!("{} check(s) failed", self.failed)
        }
    }
}

fn spinner(quiet: bool, message: &'static str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner().with_message(message);
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

#[allow(clippy::cast_precision_loss, clippy::float_arithmetic)]
fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}
