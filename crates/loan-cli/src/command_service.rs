//! `loan command-service`: runs the NATS command service until SIGTERM or Ctrl-C.
//!
//! Every flag is also an environment variable. Logs are JSON lines on stderr (or text with
//! `--log-format text`), filtered by `RUST_LOG` (default `info`).

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use loan_command_service::{MasterKey, ServiceConfig, run};
use loan_contract::Subjects;

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Json,
    Text,
}

/// Receive commands over NATS request/reply and append their events to JetStream.
///
/// One subject per command: <PREFIX>.cmd.<aggregate>.<command> (see proto/asyncapi.json).
/// Several instances may run side by side: they share the load through a queue group and
/// optimistic concurrency keeps each aggregate consistent. Discover running instances
/// with `nats micro ls`; stop with SIGTERM (in-flight commands finish first).
#[derive(Debug, Args)]
pub(crate) struct CommandServiceArgs {
    /// NATS server URL (nats-server 2.10.23 or newer, JetStream enabled); for a cluster,
    /// several URLs separated by commas.
    #[arg(long, env = "LOAN_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Subject prefix of this deployment.
    #[arg(long, env = "LOAN_SUBJECT_PREFIX", default_value = "lending")]
    prefix: String,
    /// JetStream stream holding the event log.
    #[arg(long, env = "LOAN_STREAM", default_value = "LENDING_EVENTS")]
    stream: String,
    /// Stream replicas: 1 on a development box, 3 in production.
    #[arg(long, env = "LOAN_STREAM_REPLICAS", default_value_t = 1)]
    replicas: usize,
    /// JetStream duplicate window in seconds (deduplication by command id).
    #[arg(long, env = "LOAN_DUPLICATE_WINDOW_SECS", default_value_t = 120)]
    duplicate_window_secs: u64,
    /// How long applied command ids are remembered, in hours (at least 24).
    #[arg(long, env = "LOAN_COMMAND_RETENTION_HOURS", default_value_t = 168, value_parser = clap::value_parser!(u64).range(24..))]
    command_retention_hours: u64,
    /// Commands processed concurrently by this instance.
    #[arg(long, env = "LOAN_MAX_IN_FLIGHT", default_value_t = 256)]
    max_in_flight: usize,
    /// Aggregates kept in memory.
    #[arg(long, env = "LOAN_CACHE_CAPACITY", default_value_t = 100_000)]
    cache_capacity: usize,
    /// Offset of the lender's business day from UTC, in hours (China: 8).
    #[arg(
        long,
        env = "LOAN_BUSINESS_UTC_OFFSET_HOURS",
        default_value_t = 8,
        allow_negative_numbers = true
    )]
    business_utc_offset_hours: i32,
    /// File holding the master key that protects national IDs, bank cards and phone
    /// numbers at rest: 32 bytes as 64 hex characters or base64 (e.g. a mounted secret).
    /// Every instance sharing the stream needs the same key; losing it makes all that
    /// data unreadable (docs/security.md).
    #[arg(long, env = "LOAN_MASTER_KEY_FILE")]
    master_key_file: std::path::PathBuf,
    /// Name of the service in `nats micro ls`.
    #[arg(long, env = "LOAN_SERVICE_NAME", default_value = "loan-commands")]
    service_name: String,
    /// Write concurrent commits together as atomic JetStream batches (nats-server 2.12+).
    /// Pays off only with `sync_interval: always` and many concurrent callers: a batch
    /// costs the server a fixed ~15-20 ms (docs/performance.md).
    #[arg(long, env = "LOAN_GROUP_COMMIT")]
    group_commit: bool,
    /// Append a checkpoint of the log (docs/audit.md) after this many commits stored by
    /// this instance; 0: not by count.
    #[arg(long, env = "LOAN_CHECKPOINT_EVERY_COMMITS", default_value_t = 1000)]
    checkpoint_every_commits: u64,
    /// Append a checkpoint of the log every this many seconds if anything was committed
    /// since the last one; 0: not by time.
    #[arg(long, env = "LOAN_CHECKPOINT_EVERY_SECS", default_value_t = 60)]
    checkpoint_every_secs: u64,
    /// Address of the operations HTTP listener (GET /health/live, /health/ready,
    /// /metrics), or `off` for none.
    #[arg(long, env = "LOAN_HTTP_LISTEN", default_value = "127.0.0.1:9464", value_parser = parse_http_listen)]
    http_listen: HttpListen,
    /// Log format on stderr.
    #[arg(long, env = "LOAN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    log_format: LogFormat,
}

/// Where the operations HTTP listener binds, if anywhere.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HttpListen {
    Off,
    At(std::net::SocketAddr),
}

fn parse_http_listen(value: &str) -> Result<HttpListen, String> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(HttpListen::Off);
    }
    value.parse().map(HttpListen::At).map_err(|_| {
        format!("`{value}` is neither an address like 127.0.0.1:9464 or [::]:9464, nor `off`")
    })
}

pub(crate) fn run_service(args: &CommandServiceArgs) -> anyhow::Result<()> {
    install_logging(args.log_format);
    let subjects = Subjects::new(args.prefix.clone())
        .map_err(anyhow::Error::msg)
        .context("--prefix")?;
    let master_key = MasterKey::read_file(&args.master_key_file)
        .with_context(|| format!("--master-key-file {}", args.master_key_file.display()))?;
    let mut config = ServiceConfig::new(
        args.nats_url.clone(),
        subjects,
        args.stream.clone(),
        master_key,
    );
    config.store.replicas = args.replicas;
    config.store.duplicate_window = Duration::from_secs(args.duplicate_window_secs);
    config.store.command_retention = Duration::from_secs(args.command_retention_hours * 3600);
    config.max_in_flight = args.max_in_flight;
    config.engine.cache_capacity = args.cache_capacity;
    config.engine.business_offset =
        chrono::FixedOffset::east_opt(args.business_utc_offset_hours * 3600)
            .context("--business-utc-offset-hours must be between -23 and 23")?;
    config.service_name = args.service_name.clone();
    if args.group_commit {
        config.store.group_commit = Some(loan_store::group_commit::GroupCommit::default());
    }
    config.checkpoints = loan_store::checkpoint::Cadence {
        every_commits: (args.checkpoint_every_commits > 0).then_some(args.checkpoint_every_commits),
        every: (args.checkpoint_every_secs > 0)
            .then(|| Duration::from_secs(args.checkpoint_every_secs)),
    };
    config.http_listen = match args.http_listen {
        HttpListen::Off => None,
        HttpListen::At(address) => Some(address),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime
        .block_on(async { run(config, shutdown_signal()).await })
        .context("the command service failed")?;
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

pub(crate) fn install_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_current_span(true).init(),
        LogFormat::Text => builder.init(),
    }
}
