//! Commands over HTTP: the same envelope and the same reply as over NATS.
//!
//! The embedded mode has no NATS server, yet upstream tools (a form, a script, `curl`)
//! must still send commands. `POST /commands/<aggregate>/<command>` mirrors the NATS
//! subject `<prefix>.cmd.<aggregate>.<command>`: the request body is the command envelope
//! (proto/commands/*.json) and the response body is exactly the reply the NATS service
//! sends (proto/replies/command_reply.json). The HTTP status only summarises the reply's
//! code, so a client may read either: 200 `ok`; 400 `malformed`/`validation_failed`;
//! 403 `forbidden`; 404 `not_found`/`unknown_command`; 409 `conflict`/`already_exists`/
//! `idempotency_mismatch`/`invalid_transition`; 422 `rule_violated`; 503 `unavailable`
//! (retry with the same command id); 500 `internal`.
//!
//! The body is limited to [`MAX_BODY_BYTES`] (the engine refuses larger envelopes as
//! `malformed` anyway); the clock is the one given, so a demo can run on simulated time.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use loan_contract::{CommandReply, ErrorCode};
use loan_domain::CommandKind;
use loan_engine::Engine;
use loan_engine::clock::Clock;
use loan_store::EventStore;

/// Largest request body accepted (the engine's own envelope limit is smaller).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

struct Commands<S> {
    engine: Arc<Engine<S>>,
    clock: Arc<dyn Clock>,
}

/// The router: `POST /commands/{aggregate}/{command}`.
pub fn router<S: EventStore>(engine: Arc<Engine<S>>, clock: Arc<dyn Clock>) -> Router {
    Router::new()
        .route("/commands/{aggregate}/{command}", post(execute::<S>))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Arc::new(Commands { engine, clock }))
}

async fn execute<S: EventStore>(
    State(commands): State<Arc<Commands<S>>>,
    Path((aggregate, command)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let reply = match CommandKind::named(&aggregate, &command) {
        Some(kind) => {
            commands
                .engine
                .execute(kind, &body, commands.clock.now())
                .await
        }
        None => CommandReply::error(
            ErrorCode::UnknownCommand,
            format!("no command {aggregate}/{command}: see proto/commands"),
            None,
        ),
    };
    respond(&reply)
}

fn respond(reply: &CommandReply) -> Response {
    let status = match reply {
        CommandReply::Ok { .. } => StatusCode::OK,
        CommandReply::Error { error } => status_of(error.code),
    };
    match serde_json::to_vec(reply) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not encode the reply: {error}"),
        )
            .into_response(),
    }
}

fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Malformed | ErrorCode::ValidationFailed => StatusCode::BAD_REQUEST,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound | ErrorCode::UnknownCommand => StatusCode::NOT_FOUND,
        ErrorCode::Conflict
        | ErrorCode::AlreadyExists
        | ErrorCode::IdempotencyMismatch
        | ErrorCode::InvalidTransition => StatusCode::CONFLICT,
        ErrorCode::RuleViolated => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
