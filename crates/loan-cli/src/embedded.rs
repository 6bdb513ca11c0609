//! `loan embedded`: the engine in this process on a data directory, no servers.
//!
//! `serve` answers commands over HTTP (`POST /commands/<aggregate>/<command>`, the same
//! envelope and reply as over NATS) and the analysts' reports (the query API routes) on
//! one listener, while a projector keeps the SQLite read models caught up with the log.
//! `command` applies one command from a file or stdin and prints the reply. Both create
//! the data directory (and its master key) on first use. Guide: docs/embedded.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use loan_contract::CommandReply;
use loan_domain::CommandKind;
use loan_engine::clock::{Clock, SystemClock};
use loan_engine::{Engine, EngineConfig, MasterKey, Vault};
use loan_projection::embedded::{EmbeddedOptions, EmbeddedProjector};
use loan_query_api::ReadModels;
use loan_store::checkpoint::{AppendSignal, Cadence, CheckpointWriter};
use loan_store::sqlite::SqliteStore;
use tokio::sync::Notify;

use crate::command_service::{LogFormat, install_logging, shutdown_signal};

/// Run the engine embedded in this process: an SQLite event store and SQLite read
/// models in a data directory, commands over HTTP or from the command line.
#[derive(Debug, Args)]
pub(crate) struct EmbeddedArgs {
    #[command(subcommand)]
    action: EmbeddedAction,
}

#[derive(Debug, Subcommand)]
enum EmbeddedAction {
    /// Serve commands (POST /commands/<aggregate>/<command>) and reports (the query API
    /// routes) over HTTP until SIGTERM or Ctrl-C, projecting every command into the read
    /// models as it lands.
    Serve(ServeArgs),
    /// Apply one command: the envelope (proto/commands/<command>.json) from --file or
    /// stdin; prints the reply (proto/replies/command_reply.json). Exit status 0 when
    /// the reply is ok, 1 when the command was refused.
    Command(CommandArgs),
}

#[derive(Debug, Args)]
struct DataDir {
    /// The data directory: events.sqlite, read-models.sqlite, master.key (created with a
    /// fresh master key if missing; keep master.key secret and backed up).
    #[arg(long, env = "LOAN_DATA_DIR", default_value = "loan-data")]
    data: PathBuf,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    data: DataDir,
    /// Address to listen on.
    #[arg(long, env = "LOAN_EMBEDDED_LISTEN", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Log format on stderr.
    #[arg(long, env = "LOAN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
    /// Do not record the daily delinquency snapshots (recorded by default: each business
    /// date once it is over).
    #[arg(long)]
    no_daily_snapshots: bool,
    #[command(flatten)]
    snapshot_schedule: crate::query_api::SnapshotSchedule,
}

#[derive(Debug, Args)]
struct CommandArgs {
    #[command(flatten)]
    data: DataDir,
    /// `<aggregate>/<command>`, as in the NATS subject: e.g. `customer/register_customer`,
    /// `loan/record_repayment`.
    command: String,
    /// The command envelope (JSON); `-` or absent: stdin.
    #[arg(long)]
    file: Option<PathBuf>,
}

/// The engine, its log and the read models of one data directory.
struct Opened {
    engine: Arc<Engine<SqliteStore>>,
    projector: EmbeddedProjector<SqliteStore>,
    store: SqliteStore,
}

async fn open(dir: &Path) -> anyhow::Result<Opened> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_path = dir.join("master.key");
    let master = if key_path.exists() {
        MasterKey::read_file(&key_path)
    } else {
        MasterKey::create_file(&key_path)
    }
    .with_context(|| format!("the master key {}", key_path.display()))?;
    let events = dir.join("events.sqlite");
    let store = SqliteStore::open(&events)
        .await
        .with_context(|| format!("opening the event store {}", events.display()))?;
    let keys = Arc::new(store.key_store());
    let engine = Arc::new(Engine::new(
        store.clone(),
        Vault::new(&master, keys.clone()),
        EngineConfig::default(),
    ));
    let projector = EmbeddedProjector::open(
        &dir.join("read-models.sqlite"),
        Arc::new(store.clone()),
        Vault::new(&master, keys),
        EmbeddedOptions::default(),
    )
    .await
    .context("opening the read models")?;
    Ok(Opened {
        engine,
        projector,
        store,
    })
}

pub(crate) fn run(args: &EmbeddedArgs) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        match &args.action {
            EmbeddedAction::Serve(serve_args) => serve(serve_args).await.map(|()| true),
            EmbeddedAction::Command(command_args) => command(command_args).await,
        }
    })
}

async fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    install_logging(args.log_format);
    let Opened {
        engine,
        mut projector,
        store,
    } = open(&args.data.data).await?;
    projector
        .catch_up()
        .await
        .context("catching up the read models")?;
    // Checkpoints over the whole log (docs/audit.md), at the command service's cadence:
    // every 1,000 commands or 60 seconds with new commits.
    let commands = AppendSignal::new();
    let checkpoints = CheckpointWriter::new(
        store,
        Cadence::default(),
        commands.clone(),
        Arc::new(chrono::Utc::now),
    );
    let (stop_checkpoints, checkpoints_stopped) = tokio::sync::oneshot::channel::<()>();
    let checkpointing = tokio::spawn(checkpoints.run(async move {
        let _ = checkpoints_stopped.await;
    }));
    let read_models = ReadModels::Sqlite(projector.pool().clone());
    let snapshots = args
        .snapshot_schedule
        .start(!args.no_daily_snapshots, &read_models)?;
    let landed = Arc::new(Notify::new());
    let app = loan_command_service::http::router(engine, Arc::new(SystemClock))
        .layer(axum::middleware::from_fn({
            let landed = landed.clone();
            move |request, next: axum::middleware::Next| {
                let (landed, commands) = (landed.clone(), commands.clone());
                async move {
                    let response = next.run(request).await;
                    if response.status().is_success() {
                        commands.appended();
                    }
                    landed.notify_one();
                    response
                }
            }
        }))
        .merge(loan_query_api::http::router(read_models));
    // The projector follows the log: woken by each command, and every second anyway.
    let follower = tokio::spawn(async move {
        loop {
            if let Err(error) = projector.catch_up().await {
                tracing::warn!(%error, "projecting the log failed; retrying");
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), landed.notified()).await;
        }
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(listen = %args.listen, data = %args.data.data.display(), "embedded engine serving");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    follower.abort();
    snapshots.stop().await;
    let _ = stop_checkpoints.send(());
    let _ = checkpointing.await;
    served.context("serving HTTP")
}

async fn command(args: &CommandArgs) -> anyhow::Result<bool> {
    let (aggregate, name) = args.command.split_once('/').with_context(|| {
        format!(
            "{:?}: expected <aggregate>/<command>, e.g. loan/record_repayment",
            args.command
        )
    })?;
    let kind = CommandKind::named(aggregate, name)
        .with_context(|| format!("no command {aggregate}/{name}: see proto/commands"))?;
    let body = match &args.file {
        Some(path) if path.as_os_str() != "-" => {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
        }
        _ => {
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut body)
                .context("reading stdin")?;
            body
        }
    };
    let Opened {
        engine,
        mut projector,
        ..
    } = open(&args.data.data).await?;
    let reply = engine.execute(kind, &body, SystemClock.now()).await;
    projector
        .catch_up()
        .await
        .context("projecting into the read models")?;
    println!(
        "{}",
        serde_json::to_string_pretty(&reply).context("printing the reply")?
    );
    Ok(matches!(reply, CommandReply::Ok { .. }))
}
