//! `loan query-api`: the analysts' side of the read models.
//!
//! `serve` runs the HTTP query API (JSON and CSV reports, OpenAPI at `/openapi.json`)
//! until SIGTERM; `grant-analyst` (re)creates schema `analyst` — views over the read
//! models — and the read-only group role analysts log in through; `snapshot` records one
//! day's delinquency figures. Guide: docs/query-api.md.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use sqlx::PgPool;

use crate::command_service::{LogFormat, install_logging, shutdown_signal};

/// Serve the analysts' reports over HTTP, and manage analyst access.
#[derive(Debug, Args)]
pub(crate) struct QueryApiArgs {
    #[command(subcommand)]
    action: QueryApiAction,
}

#[derive(Debug, Subcommand)]
enum QueryApiAction {
    /// Serve the query API until SIGTERM or Ctrl-C (in-flight requests finish first).
    Serve(ServeArgs),
    /// Create (or refresh) schema `analyst` and the NOLOGIN role analysts are granted:
    /// SELECT on the masked views only, nothing on the read-model or projector tables.
    GrantAnalyst(GrantArgs),
    /// Record the delinquency snapshot of a date (idempotent: replaces that date's rows).
    Snapshot(SnapshotArgs),
}

#[derive(Debug, Args)]
struct Database {
    /// PostgreSQL URL of the read-model database.
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

async fn connect(database: &Database) -> anyhow::Result<PgPool> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(&database.database_url)
        .await
        .context("connecting to --database-url")
}

pub(crate) fn run(args: &QueryApiArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        match &args.action {
            QueryApiAction::Serve(serve) => {
                install_logging(serve.log_format);
                let pool = connect(&serve.database).await?;
                let listener = tokio::net::TcpListener::bind(serve.listen)
                    .await
                    .with_context(|| format!("listening on {}", serve.listen))?;
                tracing::info!(listen = %serve.listen, "query API serving");
                loan_query_api::serve(listener, pool, shutdown_signal())
                    .await
                    .context("the query API failed")
            }
            QueryApiAction::GrantAnalyst(grant) => {
                let pool = connect(&grant.database).await?;
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
                let pool = connect(&snapshot.database).await?;
                let rows =
                    loan_query_api::reports::snapshots::write_snapshot(&pool, snapshot.date)
                        .await
                        .with_context(|| format!("snapshot of {}", snapshot.date))?;
                println!("{rows} loan(s) recorded in the snapshot of {}", snapshot.date);
                Ok(())
            }
        }
    })
}
