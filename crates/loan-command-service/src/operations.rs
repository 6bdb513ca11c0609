//! What operators and orchestrators see of a running instance over HTTP: liveness,
//! readiness and Prometheus metrics.
//!
//! * `GET /health/live`: 200 while the process serves HTTP at all.
//! * `GET /health/ready`: 200 only when both NATS connections are up, the stream answers
//!   a stream-info request, every command endpoint is registered and the instance is not
//!   draining; otherwise 503. Either way the JSON body names every check and why a
//!   failing one failed.
//! * `GET /metrics`: the Prometheus text format.
//!
//! The metrics recorder belongs to the service instance (never installed process-wide),
//! so several instances in one process (tests, benchmarks) keep separate counts. Metrics
//! are recorded through [`Metrics`], which sets the instance's recorder for the duration
//! of each synchronous recording call.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use loan_contract::{CommandReply, ErrorCode};
use loan_domain::CommandKind;
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};
use serde_json::{Value, json};

/// Commands handled, by `command` and `outcome` (`ok` or the reply's error code).
pub const COMMANDS_TOTAL: &str = "loan_commands_total";
/// Seconds from taking a command to handing its reply to NATS, by `command`.
pub const COMMAND_DURATION: &str = "loan_command_duration_seconds";
/// Commands taken and not yet answered.
pub const COMMANDS_IN_FLIGHT: &str = "loan_commands_in_flight";
/// Failed event store operations, by `operation` and `kind`.
pub const STORE_ERRORS_TOTAL: &str = "loan_store_errors_total";
/// Requests on a subject under `<prefix>.cmd.>` that names no command.
pub const UNKNOWN_COMMANDS_TOTAL: &str = "loan_unknown_command_requests_total";

/// Upper bounds of the latency histogram buckets, in seconds: from half a millisecond
/// (a cached aggregate, default sync) to ten seconds (a store outage with retries).
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How long a readiness probe waits for the stream to answer.
const STREAM_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The instance's metrics: a Prometheus recorder of its own.
#[derive(Clone)]
pub(crate) struct Metrics {
    recorder: Arc<PrometheusRecorder>,
}

impl Metrics {
    /// A fresh recorder with the command latency histogram's buckets and every metric
    /// described (the `# HELP` lines).
    pub(crate) fn new() -> Self {
        let builder = PrometheusBuilder::new();
        let recorder = match builder
            .set_buckets_for_metric(Matcher::Full(COMMAND_DURATION.into()), DURATION_BUCKETS)
        {
            Ok(builder) => builder.build_recorder(),
            // Only an empty bucket list is refused; ours is a non-empty constant.
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let metrics = Metrics {
            recorder: Arc::new(recorder),
        };
        metrics.record(|| {
            describe_counter!(
                COMMANDS_TOTAL,
                "Commands handled, by command and outcome (ok or the reply's error code)."
            );
            describe_histogram!(
                COMMAND_DURATION,
                Unit::Seconds,
                "Time from taking a command to handing its reply to NATS, by command."
            );
            describe_gauge!(COMMANDS_IN_FLIGHT, "Commands taken and not yet answered.");
            describe_counter!(
                STORE_ERRORS_TOTAL,
                "Failed event store operations, by operation and kind (conflict, unavailable, too_large, corrupt)."
            );
            describe_counter!(
                UNKNOWN_COMMANDS_TOTAL,
                "Requests on a command subject that names no command."
            );
            // Present from the start, so a scrape before the first command sees 0.
            gauge!(COMMANDS_IN_FLIGHT).set(0);
            counter!(UNKNOWN_COMMANDS_TOTAL).absolute(0);
        });
        metrics
    }

    /// Runs `f` with this instance's recorder as the current one (synchronous: the
    /// recorder is not carried across an `.await`).
    fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(self.recorder.as_ref(), f)
    }

    /// A command was taken; it counts as in flight until the returned guard is dropped
    /// (when its reply is ready, or when its task ends any other way).
    pub(crate) fn command_started(&self) -> InFlight {
        self.record(|| gauge!(COMMANDS_IN_FLIGHT).increment(1));
        InFlight {
            metrics: self.clone(),
        }
    }

    /// A command was answered `reply` after `elapsed`.
    pub(crate) fn command_finished(
        &self,
        kind: CommandKind,
        reply: &CommandReply,
        elapsed: Duration,
    ) {
        let outcome = match reply {
            CommandReply::Ok { .. } => "ok".to_owned(),
            CommandReply::Error { error } => code_name(error.code),
        };
        self.record(|| {
            counter!(COMMANDS_TOTAL, "command" => kind.name(), "outcome" => outcome).increment(1);
            histogram!(COMMAND_DURATION, "command" => kind.name()).record(elapsed);
        });
    }

    /// An event store operation failed.
    pub(crate) fn store_error(&self, operation: &'static str, error: &loan_store::StoreError) {
        let kind = match error {
            loan_store::StoreError::Conflict { .. } => "conflict",
            loan_store::StoreError::Unavailable { .. } => "unavailable",
            loan_store::StoreError::TooLarge { .. } => "too_large",
            loan_store::StoreError::Corrupt { .. } => "corrupt",
            loan_store::StoreError::ImportRefused { .. } => "import_refused",
        };
        self.record(|| {
            counter!(STORE_ERRORS_TOTAL, "operation" => operation, "kind" => kind).increment(1);
        });
    }

    /// A request named no command.
    pub(crate) fn unknown_command(&self) {
        self.record(|| counter!(UNKNOWN_COMMANDS_TOTAL).increment(1));
    }

    /// Everything recorded so far, in the Prometheus text format.
    pub(crate) fn render(&self) -> String {
        self.recorder.handle().render()
    }

    /// Drains histogram samples into their buckets; the service runs it periodically so
    /// memory stays bounded when nobody scrapes.
    pub(crate) fn run_upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }
}

/// One command in flight (see [`Metrics::command_started`]).
pub(crate) struct InFlight {
    metrics: Metrics,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics
            .record(|| gauge!(COMMANDS_IN_FLIGHT).decrement(1));
    }
}

/// An error code as it appears on the wire (`forbidden`, `not_found`, ...).
fn code_name(code: ErrorCode) -> String {
    match serde_json::to_value(code) {
        Ok(Value::String(name)) => name,
        _ => format!("{code:?}"),
    }
}

/// What readiness depends on; filled in by the service as it starts and stops.
pub(crate) struct Readiness {
    stream: String,
    /// The connection carrying the event store and replies.
    store: OnceLock<async_nats::Client>,
    /// The connection carrying the command endpoints.
    intake: OnceLock<async_nats::Client>,
    endpoints_registered: AtomicBool,
    draining: AtomicBool,
}

impl Readiness {
    pub(crate) fn new(stream: String) -> Self {
        Readiness {
            stream,
            store: OnceLock::new(),
            intake: OnceLock::new(),
            endpoints_registered: AtomicBool::new(false),
            draining: AtomicBool::new(false),
        }
    }

    pub(crate) fn connected(&self, store: async_nats::Client, intake: async_nats::Client) {
        let _ = self.store.set(store);
        let _ = self.intake.set(intake);
    }

    pub(crate) fn endpoints_registered(&self) {
        self.endpoints_registered.store(true, Ordering::SeqCst);
    }

    pub(crate) fn draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Runs every check; `(ready, body)`.
    async fn check(&self) -> (bool, Value) {
        let nats = match (self.store.get(), self.intake.get()) {
            (Some(store), Some(intake)) => {
                let states = [
                    ("store", store.connection_state()),
                    ("intake", intake.connection_state()),
                ];
                let down: Vec<String> = states
                    .iter()
                    .filter(|(_, state)| *state != async_nats::connection::State::Connected)
                    .map(|(role, state)| format!("{role} connection is {state}"))
                    .collect();
                if down.is_empty() {
                    Ok(())
                } else {
                    Err(down.join("; "))
                }
            }
            _ => Err("not connected yet".to_owned()),
        };
        let stream = match self.store.get() {
            Some(client) => {
                let context = async_nats::jetstream::new(client.clone());
                match tokio::time::timeout(STREAM_CHECK_TIMEOUT, context.get_stream(&self.stream))
                    .await
                {
                    // A replicated stream takes appends only while it has a leader.
                    Ok(Ok(stream))
                        if stream
                            .cached_info()
                            .cluster
                            .as_ref()
                            .is_some_and(|cluster| {
                                cluster.leader.is_none() && !cluster.replicas.is_empty()
                            }) =>
                    {
                        Err(format!("stream {} has no leader", self.stream))
                    }
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(error)) => Err(format!("stream {}: {error}", self.stream)),
                    Err(_) => Err(format!(
                        "stream {} did not answer within {STREAM_CHECK_TIMEOUT:?}",
                        self.stream
                    )),
                }
            }
            None => Err("not connected yet".to_owned()),
        };
        let endpoints = if self.endpoints_registered.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("command endpoints not registered yet".to_owned())
        };
        let draining = if self.draining.load(Ordering::SeqCst) {
            Err("shutting down: taking no new commands".to_owned())
        } else {
            Ok(())
        };
        let checks = [
            ("nats", nats),
            ("stream", stream),
            ("endpoints", endpoints),
            ("draining", draining),
        ];
        let ready = checks.iter().all(|(_, result)| result.is_ok());
        let failed: Vec<&str> = checks
            .iter()
            .filter(|(_, result)| result.is_err())
            .map(|(name, _)| *name)
            .collect();
        let details: serde_json::Map<String, Value> = checks
            .iter()
            .map(|(name, result)| {
                let detail = match result {
                    Ok(()) => json!({ "ok": true }),
                    Err(reason) => json!({ "ok": false, "reason": reason }),
                };
                ((*name).to_owned(), detail)
            })
            .collect();
        let body = json!({
            "status": if ready { "ready" } else { "not_ready" },
            "failed": failed,
            "checks": details,
        });
        (ready, body)
    }
}

#[derive(Clone)]
struct Operations {
    readiness: Arc<Readiness>,
    metrics: Metrics,
}

/// The HTTP routes (without a listener).
pub(crate) fn router(readiness: Arc<Readiness>, metrics: Metrics) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(Operations { readiness, metrics })
}

async fn live() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "status": "live" }).to_string(),
    )
}

async fn ready(State(operations): State<Operations>) -> impl IntoResponse {
    let (ready, body) = operations.readiness.check().await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

async fn render_metrics(State(operations): State<Operations>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        operations.metrics.render(),
    )
}

/// The running HTTP listener; [`HttpListener::stop`] shuts it down gracefully.
pub(crate) struct HttpListener {
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpListener {
    /// Binds `address` and serves the operations routes until stopped.
    pub(crate) async fn start(
        address: SocketAddr,
        readiness: Arc<Readiness>,
        metrics: Metrics,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let bound = listener.local_addr()?;
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let app = router(readiness, metrics);
        let task = tokio::spawn(async move {
            let shutdown = async move { stopped.notified().await };
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(%error, "the operations HTTP listener failed");
            }
        });
        tracing::info!(address = %bound, "operations HTTP listener: /health/live, /health/ready, /metrics");
        Ok(HttpListener { stop, task })
    }

    /// Stops accepting, lets open requests finish (bounded), and returns.
    pub(crate) async fn stop(self) {
        self.stop.notify_one();
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            tracing::warn!("the operations HTTP listener did not stop within 5 s");
            task.abort();
        }
    }
}

/// Runs the metrics upkeep every few seconds until the returned task is aborted.
pub(crate) fn spawn_upkeep(metrics: Metrics) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(5));
        loop {
            ticks.tick().await;
            metrics.run_upkeep();
        }
    })
}
