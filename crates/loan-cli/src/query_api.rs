//! `loan query-api`: the analysts' side of the read models.
//!
//! `serve` runs the HTTP query API (JSON and CSV reports, OpenAPI at `/openapi.json`)
//! until SIGTERM, over PostgreSQL or over the embedded mode's SQLite read models (the URL
//! scheme decides); `grant-analyst` (re)creates schema `analyst` — views over the read
//! models — and the read-only group role analysts log in through (PostgreSQL only);
//! `snapshot` records one day's delinquency figures; `serve --daily-snapshots` records
//! every business date once it is over. Guide: docs/query-api.md.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use loan_query_api::ReadModels;
use loan_query_api::reports::snapshots::DailySnapshots;

use crate::command_service::{LogFormat, install_logging, shutdown_signal};

/// Serve the analysts' reports over HTTP, and manage analyst access.
#[derive(Debug, Args)]
pub(crate) struct QueryApiArgs {
    #[command(subcommand)]
    action: QueryApiAction,
}

#[derive(Debug, Subcommand)]
enum QueryApiAction {
    /// Serve the query API until SIGTERM or Ctrl-C (in-flight requests finish first), over
    /// PostgreSQL or the embedded SQLite read models (`--database-url sqlite://file.db`).
    Serve(ServeArgs),
    /// Create (or refresh) schema `analyst` and the NOLOGIN role analysts are granted:
    /// SELECT on the masked views only, nothing on the read-model or projector tables
    /// (PostgreSQL only).
    GrantAnalyst(GrantArgs),
    /// Record the delinquency snapshot of a date (idempotent: replaces that date's rows).
    Snapshot(SnapshotArgs),
}

#[derive(Debug, Args)]
struct Database {
    /// The read-model database: `postgres://user@host/db` (schema read_model), or the
    /// embedded mode's SQLite file as `sqlite://path/to/read-models.db` (relative) or
    /// `sqlite:///absolute/path.db` — the file must exist (the projector creates it).
    /// Both give the same reports.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    database: Database,
    /// Address to listen on.
    #[arg(long, env = "LOAN_QUERY_API_LISTEN", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Log format on stderr.
    #[arg(long, env = "LOAN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
    /// Also record the delinquency snapshot of every business date once it is over
    /// (run it in one query-API instance only).
    #[arg(long, env = "LOAN_DAILY_SNAPSHOTS")]
    daily_snapshots: bool,
    #[command(flatten)]
    snapshot_schedule: SnapshotSchedule,
}

/// When the daily delinquency snapshots are recorded.
#[derive(Debug, Clone, Args)]
pub(crate) struct SnapshotSchedule {
    /// The lender's time zone as hours east of UTC: a business date is over at its
    /// midnight there.
    #[arg(
        long,
        env = "LOAN_BUSINESS_UTC_OFFSET_HOURS",
        default_value_t = 8,
        allow_negative_numbers = true
    )]
    business_utc_offset_hours: i32,
    /// Minutes after that midnight the closed day is recorded (its last events projected).
    #[arg(long, env = "LOAN_SNAPSHOT_DELAY_MINUTES", default_value_t = 15)]
    snapshot_delay_minutes: u64,
    /// After a stop, the most recent closed days recorded at most (older ones:
    /// `loan query-api snapshot --date`).
    #[arg(long, env = "LOAN_SNAPSHOT_CATCH_UP_DAYS", default_value_t = 31)]
    snapshot_catch_up_days: u32,
}

impl SnapshotSchedule {
    fn daily_snapshots(&self) -> anyhow::Result<DailySnapshots> {
        let offset = chrono::FixedOffset::east_opt(self.business_utc_offset_hours * 3600)
            .context("--business-utc-offset-hours must be between -23 and 23")?;
        Ok(DailySnapshots {
            business_offset: offset,
            delay: std::time::Duration::from_secs(self.snapshot_delay_minutes * 60),
            catch_up_days: self.snapshot_catch_up_days,
        })
    }

    /// Starts recording the daily snapshots in the background when `enabled`.
    pub(crate) fn start(
        &self,
        enabled: bool,
        read_models: &ReadModels,
    ) -> anyhow::Result<SnapshotRecorder> {
        let schedule = self.daily_snapshots()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = enabled.then(|| {
            let read_models = read_models.clone();
            tokio::spawn(async move {
                schedule
                    .run(&read_models, async move {
                        let _ = stopped.await;
                    })
                    .await;
            })
        });
        Ok(SnapshotRecorder { stop, task })
    }
}

/// The background recording of daily snapshots, stopped on shutdown.
pub(crate) struct SnapshotRecorder {
    stop: tokio::sync::oneshot::Sender<()>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SnapshotRecorder {
    /// Stops it, waiting for a snapshot being written to finish.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}

#[derive(Debug, Args)]
struct GrantArgs {
    #[command(flatten)]
    database: Database,
    /// Name of the group role to create or refresh.
    #[arg(long, default_value = "loan_analyst")]
    role: String,
}

#[derive(Debug, Args)]
struct SnapshotArgs {
    #[command(flatten)]
    database: Database,
    /// The report date (YYYY-MM-DD).
    #[arg(long)]
    date: chrono::NaiveDate,
}

async fn connect(database: &Database) -> anyhow::Result<ReadModels> {
    ReadModels::connect(&database.database_url, 8)
        .await
        .context("connecting to --database-url")
}

pub(crate) fn run(args: &QueryApiArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        match &args.action {
            QueryApiAction::Serve(serve) => {
                install_logging(serve.log_format);
                let read_models = connect(&serve.database).await?;
                let listener = tokio::net::TcpListener::bind(serve.listen)
                    .await
                    .with_context(|| format!("listening on {}", serve.listen))?;
                tracing::info!(
                    listen = %serve.listen,
                    read_models = read_models.database_kind(),
                    "query API serving"
                );
                let snapshots = serve
                    .snapshot_schedule
                    .start(serve.daily_snapshots, &read_models)?;
                let served = loan_query_api::serve(listener, read_models, shutdown_signal()).await;
                snapshots.stop().await;
                served.context("the query API failed")
            }
            QueryApiAction::GrantAnalyst(grant) => {
                let ReadModels::Postgres(pool) = connect(&grant.database).await? else {
                    anyhow::bail!(
                        "grant-analyst creates PostgreSQL roles and views; --database-url must be \
                         a postgres:// URL"
                    );
                };
                loan_query_api::analyst_access::grant(&pool, &grant.role)
                    .await
                    .with_context(|| format!("granting {}", grant.role))?;
                println!(
                    "role {} may read schema analyst (and nothing else); grant it to analysts' logins",
                    grant.role
                );
                Ok(())
            }
            QueryApiAction::Snapshot(snapshot) => {
                let read_models = connect(&snapshot.database).await?;
                let rows =
                    loan_query_api::reports::snapshots::write_snapshot(&read_models, snapshot.date)
                        .await
                        .with_context(|| format!("snapshot of {}", snapshot.date))?;
                println!("{rows} loan(s) recorded in the snapshot of {}", snapshot.date);
                Ok(())
            }
        }
    })
}
