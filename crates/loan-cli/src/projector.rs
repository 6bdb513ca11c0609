//! `loan projector`: builds and operates the PostgreSQL read models.
//!
//! `run` keeps the read models up to date from the event stream until SIGTERM; `lag`
//! shows how far each projection is behind and whether it is healthy; `rebuild` builds a
//! projection group from the beginning of the log into new tables and switches over
//! atomically while the old tables keep serving; `replay` re-applies one quarantined
//! aggregate after a fix. What the tables hold: docs/read-models.md.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use comfy_table::Table;
use loan_command_service::MasterKey;
use loan_domain::AggregateType;
use loan_projection::{Group, ProjectorConfig, ReplayOutcome};
use loan_store::AggregateRef;
use uuid::Uuid;

use crate::command_service::{LogFormat, install_logging, shutdown_signal};

/// Build the read models in PostgreSQL from the event stream, and operate them.
#[derive(Debug, Args)]
pub(crate) struct ProjectorArgs {
    #[command(subcommand)]
    action: ProjectorAction,
}

#[derive(Debug, Subcommand)]
enum ProjectorAction {
    /// Run the projectors until SIGTERM or Ctrl-C (migrations run first).
    ///
    /// Each group runs on its own durable JetStream consumer and checkpoint; start one
    /// process per group (`--group`) to scale or isolate them. A killed projector
    /// resumes from its checkpoint with no lost and no doubled effect.
    Run(RunArgs),
    /// Show each projection's checkpoint, the stream head, the lag, the last error and
    /// quarantined aggregates. Exit code 1 when a projection is unhealthy.
    Lag(Connection),
    /// Rebuild a group from sequence 0 into new tables, then switch over atomically.
    Rebuild(RebuildArgs),
    /// Re-apply one aggregate's history (clears its quarantine if it now applies).
    Replay(ReplayArgs),
}

/// Where the stream and the database are.
#[derive(Debug, Args)]
struct Connection {
    /// NATS server URL.
    #[arg(long, env = "LOAN_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Subject prefix of this deployment.
    #[arg(long, env = "LOAN_SUBJECT_PREFIX", default_value = "lending")]
    prefix: String,
    /// JetStream stream holding the event log.
    #[arg(long, env = "LOAN_STREAM", default_value = "LENDING_EVENTS")]
    stream: String,
    /// PostgreSQL URL of the read-model database.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// File holding the master key (the same as the command service's): the projector
    /// unwraps customers' data keys only to mask their sensitive fields. Needed by
    /// `run`, `rebuild` and `replay`.
    #[arg(long, env = "LOAN_MASTER_KEY_FILE")]
    master_key_file: Option<std::path::PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    connection: Connection,
    /// Groups this process runs (default: all).
    #[arg(long, env = "LOAN_PROJECTION_GROUPS", value_delimiter = ',', value_parser = parse_group)]
    group: Vec<Group>,
    /// Commits per batch (one database transaction each).
    #[arg(long, env = "LOAN_PROJECTION_BATCH", default_value_t = 500)]
    batch_size: usize,
    /// Log format on stderr.
    #[arg(long, env = "LOAN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
}

#[derive(Debug, Args)]
struct RebuildArgs {
    #[command(flatten)]
    connection: Connection,
    /// The group to rebuild: portfolio or delinquency.
    #[arg(long, value_parser = parse_group)]
    group: Group,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    #[command(flatten)]
    connection: Connection,
    /// The group whose rows to rewrite: portfolio or delinquency.
    #[arg(long, value_parser = parse_group)]
    group: Group,
    /// Aggregate type: loan, customer or collection_case.
    #[arg(long, value_parser = parse_aggregate_type)]
    aggregate_type: AggregateType,
    /// Aggregate id.
    #[arg(long)]
    id: Uuid,
}

fn parse_group(name: &str) -> Result<Group, String> {
    Group::parse(name).map_err(|e| e.to_string())
}

fn parse_aggregate_type(name: &str) -> Result<AggregateType, String> {
    AggregateType::parse(name).ok_or_else(|| {
        format!("unknown aggregate type {name:?}: expected loan, customer or collection_case")
    })
}

impl Connection {
    fn config(&self) -> anyhow::Result<ProjectorConfig> {
        let path = self
            .master_key_file
            .as_ref()
            .context("--master-key-file (or LOAN_MASTER_KEY_FILE) is required")?;
        let master_key = MasterKey::read_file(path)
            .with_context(|| format!("--master-key-file {}", path.display()))?;
        Ok(ProjectorConfig::new(
            self.nats_url.clone(),
            self.stream.clone(),
            self.prefix.clone(),
            self.database_url.clone(),
            master_key,
        ))
    }
}

pub(crate) fn run(args: &ProjectorArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match &args.action {
        ProjectorAction::Run(run) => {
            install_logging(run.log_format);
            let mut config = run.connection.config()?;
            if !run.group.is_empty() {
                config.groups = run.group.clone();
            }
            config.batch_size = run.batch_size.max(1);
            runtime
                .block_on(loan_projection::Projector::run(config, shutdown_signal()))
                .context("the projector failed")
        }
        ProjectorAction::Lag(connection) => runtime.block_on(show_lag(connection)),
        ProjectorAction::Rebuild(rebuild) => {
            let config = rebuild.connection.config()?;
            let report = runtime
                .block_on(loan_projection::rebuild(config, rebuild.group))
                .with_context(|| format!("rebuilding {}", rebuild.group))?;
            if rebuild.connection.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "group": report.group.name(),
                        "rebuild_number": report.rebuild_number,
                        "last_sequence": report.last_sequence,
                        "views_recreated": report.views_recreated,
                        "retired_schema_dropped": report.retired_dropped,
                    })
                );
            } else {
                println!(
                    "rebuilt {} up to sequence {} (rebuild #{}); {} view(s) recreated; old tables {}",
                    report.group,
                    report.last_sequence,
                    report.rebuild_number,
                    report.views_recreated,
                    if report.retired_dropped {
                        "dropped"
                    } else {
                        "kept for an operator"
                    }
                );
            }
            Ok(())
        }
        ProjectorAction::Replay(replay) => {
            let config = replay.connection.config()?;
            let aggregate = AggregateRef {
                aggregate_type: replay.aggregate_type,
                id: replay.id,
            };
            let outcome = runtime
                .block_on(loan_projection::replay_aggregate(
                    config,
                    replay.group,
                    aggregate,
                ))
                .with_context(|| format!("replaying {aggregate}"))?;
            match outcome {
                ReplayOutcome::Applied {
                    version,
                    was_quarantined,
                } => {
                    println!(
                        "{aggregate}: applied up to version {version}{}",
                        if was_quarantined {
                            "; quarantine cleared"
                        } else {
                            ""
                        }
                    );
                    Ok(())
                }
                ReplayOutcome::StillPoisoned { reason } => {
                    anyhow::bail!("{aggregate} still cannot be applied: {reason}")
                }
            }
        }
    }
}

async fn show_lag(connection: &Connection) -> anyhow::Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&connection.database_url)
        .await
        .context("connecting to --database-url")?;
    let nats = async_nats::connect(&connection.nats_url)
        .await
        .with_context(|| format!("connecting to {}", connection.nats_url))?;
    let health = loan_projection::lag(&pool, &nats, &connection.stream).await?;
    if connection.json {
        println!("{}", serde_json::to_string_pretty(&health)?);
    } else {
        let mut table = Table::new();
        table.set_header([
            "projection",
            "checkpoint",
            "stream head",
            "lag",
            "quarantined",
            "dead letters",
            "healthy",
            "last error",
        ]);
        for h in &health {
            table.add_row([
                h.projection.clone(),
                h.checkpoint.to_string(),
                h.stream_head.to_string(),
                h.lag.to_string(),
                h.quarantined.to_string(),
                h.dead_letters.to_string(),
                if h.healthy { "yes" } else { "NO" }.to_owned(),
                h.last_error.clone().unwrap_or_default(),
            ]);
        }
        println!("{table}");
    }
    if health.iter().all(|h| h.healthy) {
        Ok(())
    } else {
        anyhow::bail!("a projection is unhealthy")
    }
}
