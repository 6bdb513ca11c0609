//! The command service: upstream services send commands over NATS and get a definite
//! answer; the JetStream stream is the system of record.
//!
//! * It is a NATS micro service (ADR-32): `nats micro ls/info/stats` discover it and
//!   show per-endpoint request counts and latency. There is one endpoint per command,
//!   on `<prefix>.cmd.<aggregate>.<command>`, so NATS permissions decide who may send
//!   what, and endpoints are queue-grouped so several instances share the load and none
//!   applies a command twice.
//! * A request to an unknown subject under `<prefix>.cmd.>` gets an `unknown_command` reply.
//! * At most `max_in_flight` commands are processed at once (a semaphore); each runs in
//!   its own task inside a span carrying the subject.
//! * Graceful shutdown: when `shutdown` completes, the endpoints stop taking requests,
//!   in-flight commands finish and reply, then `run` returns.
//! * Sensitive fields are encrypted with per-customer data keys kept, wrapped by the
//!   configured master key, in the KV bucket `<stream>_KEYS` (docs/security.md).
//! * Checkpoints: a [`CheckpointWriter`] in the same process appends a checkpoint of the
//!   log (`<prefix>.checkpoints`) every N commits this instance stored or every T
//!   ([`ServiceConfig::checkpoints`]); several instances are safe, because a checkpoint
//!   is appended only if nothing was written after the position it covers.
//! * Operations: an optional HTTP listener ([`operations`]) answers liveness and
//!   readiness probes and serves Prometheus metrics; readiness turns 503 as soon as the
//!   drain starts, and the listener stops when `run` returns.

pub mod http;
mod observed_store;
pub mod operations;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::service::ServiceExt;
use futures::StreamExt;
use loan_contract::{CommandReply, ErrorCode, Subjects};
use loan_domain::CommandKind;
pub use loan_engine::MasterKey;
use loan_engine::clock::Clock;
use loan_engine::{Engine, EngineConfig, Vault};
use loan_store::checkpoint::{AppendSignal, Cadence, CheckpointWriter};
use loan_store::jetstream::{JetStreamStore, StoreConfig};
use loan_store::keys::{JetStreamKeyStore, KeyStoreConfig};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{Instrument, error, info, info_span, warn};

use crate::observed_store::ObservedStore;
use crate::operations::{HttpListener, Metrics, Readiness};

/// Everything the service needs to run.
pub struct ServiceConfig {
    /// NATS server URL; several, comma-separated, for a cluster (the client also learns
    /// the other cluster members from the server).
    pub nats_url: String,
    pub subjects: Subjects,
    pub store: StoreConfig,
    pub engine: EngineConfig,
    /// Commands processed concurrently by this instance.
    pub max_in_flight: usize,
    /// Name under which the service registers (`nats micro ls`).
    pub service_name: String,
    pub clock: Arc<dyn Clock>,
    /// Root of the keys that encrypt sensitive fields; every instance sharing the stream
    /// must have the same one (docs/security.md).
    pub master_key: MasterKey,
    /// Where the operations HTTP listener (`/health/live`, `/health/ready`, `/metrics`)
    /// binds; `None`: no listener.
    pub http_listen: Option<SocketAddr>,
    /// How often this instance appends a checkpoint of the log (docs/audit.md).
    pub checkpoints: Cadence,
}

impl ServiceConfig {
    /// Defaults for everything but where NATS is, which subject prefix/stream to use, and
    /// the master key.
    pub fn new(
        nats_url: impl Into<String>,
        subjects: Subjects,
        stream: impl Into<String>,
        master_key: MasterKey,
    ) -> Self {
        ServiceConfig {
            nats_url: nats_url.into(),
            store: StoreConfig::new(stream, subjects.clone()),
            subjects,
            engine: EngineConfig::default(),
            max_in_flight: 256,
            service_name: "loan-commands".into(),
            clock: Arc::new(loan_engine::clock::SystemClock),
            master_key,
            http_listen: None,
            checkpoints: Cadence::default(),
        }
    }
}

/// Why the service stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot connect to NATS at {url}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("cannot open the event store")]
    Store(#[from] loan_store::StoreError),
    #[error("cannot register the NATS service: {0}")]
    Register(String),
    #[error("cannot listen for operations HTTP requests on {address}")]
    HttpListen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Runs the command service until `shutdown` completes, then drains and returns.
pub async fn run(
    config: ServiceConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let metrics = Metrics::new();
    let readiness = Arc::new(Readiness::new(config.store.stream.clone()));
    // First, so that probes get an answer (not ready) while NATS is being connected.
    let listener = match config.http_listen {
        Some(address) => Some(
            HttpListener::start(address, readiness.clone(), metrics.clone())
                .await
                .map_err(|source| ServiceError::HttpListen { address, source })?,
        ),
        None => None,
    };
    let upkeep = operations::spawn_upkeep(metrics.clone());
    let result = serve(config, shutdown, &readiness, &metrics).await;
    readiness.draining();
    upkeep.abort();
    if let Some(listener) = listener {
        listener.stop().await;
    }
    result
}

/// The NATS side of [`run`].
async fn serve(
    config: ServiceConfig,
    shutdown: impl Future<Output = ()>,
    readiness: &Readiness,
    metrics: &Metrics,
) -> Result<(), ServiceError> {
    // Two connections: `intake` carries the service endpoints and is drained on shutdown
    // (unsubscribe with a server round trip, so no routed request is lost); `client`
    // carries the event store and the replies, and stays open until the drain is done.
    let connect = |role: &'static str| {
        let url = config.nats_url.clone();
        let name = format!("{} command service ({role})", config.service_name);
        async move {
            let servers: Vec<&str> = url
                .split(',')
                .map(str::trim)
                .filter(|server| !server.is_empty())
                .collect();
            async_nats::ConnectOptions::new()
                .name(name)
                .connect(servers)
                .await
                .map_err(|source| ServiceError::Connect { url, source })
        }
    };
    let client = connect("store").await?;
    let intake = connect("intake").await?;
    readiness.connected(client.clone(), intake.clone());
    let log = JetStreamStore::open(client.clone(), config.store.clone()).await?;
    let appended = AppendSignal::new();
    let (stop_checkpoints, checkpoints_stopped) = tokio::sync::oneshot::channel::<()>();
    let checkpoints = {
        let clock = config.clock.clone();
        let writer = CheckpointWriter::new(
            log.clone(),
            config.checkpoints,
            appended.clone(),
            Arc::new(move || clock.now()),
        );
        tokio::spawn(writer.run(async {
            let _ = checkpoints_stopped.await;
        }))
    };
    let store = ObservedStore::new(log, metrics.clone(), appended);
    let keys = JetStreamKeyStore::open(
        client.clone(),
        KeyStoreConfig::for_stream(&config.store.stream, config.store.replicas),
    )
    .await?;
    let vault = Vault::new(&config.master_key, Arc::new(keys));
    let engine = Arc::new(Engine::new(store, vault, config.engine.clone()));

    let service = intake
        .service_builder()
        .description("Loan lifecycle engine: commands in, events appended to JetStream.")
        .start(&config.service_name, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(|e| ServiceError::Register(e.to_string()))?;
    let mut endpoints = Vec::new();
    for kind in CommandKind::ALL {
        let endpoint = service
            .endpoint_builder()
            .name(kind.name())
            .add(config.subjects.command(kind))
            .await
            .map_err(|e| ServiceError::Register(e.to_string()))?;
        endpoints.push((kind, endpoint));
    }
    let mut unknown = intake
        .queue_subscribe(
            config.subjects.all_commands(),
            format!("{}-unknown", config.service_name),
        )
        .await
        .map_err(|e| ServiceError::Register(e.to_string()))?;
    readiness.endpoints_registered();
    info!(service = %config.service_name, prefix = config.subjects.prefix(), "command service ready");

    let permits = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let mut in_flight = JoinSet::new();
    let mut requests = futures::stream::select_all(
        endpoints
            .into_iter()
            .map(|(kind, endpoint)| endpoint.map(move |request| (kind, request))),
    );
    tokio::pin!(shutdown);
    // Set (under the write lock) before the intake connection drains: replies then go
    // through `client`. A reply through the service holds the read lock while it is
    // enqueued, so none can slip in between the flag, the flush and the drain.
    let draining = Arc::new(tokio::sync::RwLock::new(false));
    let dispatch = |in_flight: &mut JoinSet<()>,
                    permit,
                    kind: CommandKind,
                    request: async_nats::service::Request| {
        let engine = engine.clone();
        let clock = config.clock.clone();
        let client = client.clone();
        let draining = draining.clone();
        let metrics = metrics.clone();
        let started = Instant::now();
        let in_flight_guard = metrics.command_started();
        let span = info_span!(
            "command",
            command = %kind,
            subject = %request.message.subject,
            command_id = tracing::field::Empty,
            correlation_id = tracing::field::Empty
        );
        in_flight.spawn(
            async move {
                let reply = engine
                    .execute(kind, &request.message.payload, clock.now())
                    .await;
                // Counted before the reply leaves, so a caller that got its reply finds
                // it in the metrics.
                metrics.command_finished(kind, &reply, started.elapsed());
                drop(in_flight_guard);
                respond(&request, &reply, &client, &draining).await;
                drop(permit);
            }
            .instrument(span),
        );
    };
    loop {
        // The stop request first, without starving the other branches: under a steady
        // stream of requests `select!` would otherwise pick it only by chance.
        if futures::FutureExt::now_or_never(&mut shutdown).is_some() {
            break;
        }
        tokio::select! {
            _ = &mut shutdown => break,
            Some((kind, request)) = requests.next() => {
                let Ok(permit) = permits.clone().acquire_owned().await else { break };
                dispatch(&mut in_flight, permit, kind, request);
            }
            Some(message) = unknown.next() => {
                if config.subjects.command_kind(&message.subject).is_none() {
                    metrics.unknown_command();
                    if let Some(reply_to) = message.reply {
                        let reply = CommandReply::error(ErrorCode::UnknownCommand, format!("no command is published on {}", message.subject), None);
                        let _ = client.publish(reply_to, serde_json::to_vec(&reply).unwrap_or_default().into()).await;
                    }
                }
            }
            Some(finished) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Err(panic) = finished {
                    error!(%panic, "a command task panicked");
                }
            }
        }
    }

    // Stop intake: draining the intake connection unsubscribes every endpoint with a
    // server round trip, so the queue group routes new requests to other instances and
    // every request already routed here is still delivered. Answer those, then wait for
    // everything in flight.
    readiness.draining();
    info!(
        in_flight = in_flight.len(),
        "shutting down: no new commands, draining"
    );
    *draining.write().await = true;
    if let Err(error) = intake.flush().await {
        warn!(%error, "flushing replies on the intake connection");
    }
    if let Err(error) = intake.drain().await {
        warn!(%error, "draining the intake connection");
    }
    let drain_deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some((kind, request))) =
        tokio::time::timeout_at(drain_deadline, requests.next()).await
    {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        dispatch(&mut in_flight, permit, kind, request);
    }
    drop(requests);
    while let Some(finished) = in_flight.join_next().await {
        if let Err(panic) = finished {
            error!(%panic, "a command task panicked");
        }
    }
    let _ = stop_checkpoints.send(());
    if let Err(error) = checkpoints.await {
        error!(%error, "the checkpoint writer panicked");
    }
    if tokio::time::timeout(Duration::from_secs(5), client.flush())
        .await
        .is_err()
    {
        warn!("flushing the NATS connection timed out");
    }
    info!("command service stopped");
    Ok(())
}

/// Replies through the service (so `$SRV.STATS` counts it); once the intake connection
/// is draining at shutdown, through the store connection, which stays open until every
/// reply is sent.
async fn respond(
    request: &async_nats::service::Request,
    reply: &CommandReply,
    client: &async_nats::Client,
    draining: &tokio::sync::RwLock<bool>,
) {
    let body: bytes::Bytes = serde_json::to_vec(reply).unwrap_or_default().into();
    {
        let draining = draining.read().await;
        if !*draining && request.respond(Ok(body.clone())).await.is_ok() {
            return;
        }
    }
    let Some(reply_to) = request.message.reply.clone() else {
        return;
    };
    if let Err(error) = client.publish(reply_to, body).await {
        warn!(%error, "could not send the reply");
    }
}
