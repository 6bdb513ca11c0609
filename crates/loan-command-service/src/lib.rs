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

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::service::ServiceExt;
use futures::StreamExt;
use loan_contract::{CommandReply, ErrorCode, Subjects};
use loan_domain::CommandKind;
use loan_engine::clock::Clock;
use loan_engine::{Engine, EngineConfig};
use loan_store::jetstream::{JetStreamStore, StoreConfig};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{Instrument, error, info, info_span, warn};

/// Everything the service needs to run.
pub struct ServiceConfig {
    pub nats_url: String,
    pub subjects: Subjects,
    pub store: StoreConfig,
    pub engine: EngineConfig,
    /// Commands processed concurrently by this instance.
    pub max_in_flight: usize,
    /// Name under which the service registers (`nats micro ls`).
    pub service_name: String,
    pub clock: Arc<dyn Clock>,
}

impl ServiceConfig {
    /// Defaults for everything but where NATS is and which subject prefix/stream to use.
    pub fn new(nats_url: impl Into<String>, subjects: Subjects, stream: impl Into<String>) -> Self {
        ServiceConfig {
            nats_url: nats_url.into(),
            store: StoreConfig::new(stream, subjects.clone()),
            subjects,
            engine: EngineConfig::default(),
            max_in_flight: 256,
            service_name: "loan-commands".into(),
            clock: Arc::new(loan_engine::clock::SystemClock),
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
}

/// Runs the command service until `shutdown` completes, then drains and returns.
pub async fn run(
    config: ServiceConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let client = async_nats::ConnectOptions::new()
        .name(format!("{} command service", config.service_name))
        .connect(&config.nats_url)
        .await
        .map_err(|source| ServiceError::Connect {
            url: config.nats_url.clone(),
            source,
        })?;
    let store = JetStreamStore::open(client.clone(), config.store.clone()).await?;
    let engine = Arc::new(Engine::new(store, config.engine.clone()));

    let service = client
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
    let mut unknown = client
        .queue_subscribe(
            config.subjects.all_commands(),
            format!("{}-unknown", config.service_name),
        )
        .await
        .map_err(|e| ServiceError::Register(e.to_string()))?;
    info!(service = %config.service_name, prefix = config.subjects.prefix(), "command service ready");

    let permits = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let mut in_flight = JoinSet::new();
    let mut requests = futures::stream::select_all(
        endpoints
            .into_iter()
            .map(|(kind, endpoint)| endpoint.map(move |request| (kind, request))),
    );
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some((kind, request)) = requests.next() => {
                let Ok(permit) = permits.clone().acquire_owned().await else { break };
                let engine = engine.clone();
                let clock = config.clock.clone();
                let span = info_span!("command", command = %kind, subject = %request.message.subject, command_id = tracing::field::Empty, correlation_id = tracing::field::Empty);
                in_flight.spawn(async move {
                    let reply = engine.execute(kind, &request.message.payload, clock.now()).await;
                    respond(&request, &reply).await;
                    drop(permit);
                }.instrument(span));
            }
            Some(message) = unknown.next() => {
                if config.subjects.command_kind(&message.subject).is_none() {
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

    info!(
        in_flight = in_flight.len(),
        "shutting down: no new commands, draining"
    );
    drop(requests);
    let _ = unknown.unsubscribe().await;
    while let Some(finished) = in_flight.join_next().await {
        if let Err(panic) = finished {
            error!(%panic, "a command task panicked");
        }
    }
    if let Err(error) = service.stop().await {
        warn!(%error, "stopping the service registration");
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

async fn respond(request: &async_nats::service::Request, reply: &CommandReply) {
    let body = serde_json::to_vec(reply).unwrap_or_default();
    if let Err(error) = request.respond(Ok(body.into())).await {
        warn!(%error, "could not send the reply");
    }
}
