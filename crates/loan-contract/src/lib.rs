//! The wire contract other teams code against.
//!
//! * [`subjects`]: which NATS subject carries what (one subject per command, one per aggregate's events);
//! * [`command`]: the command envelope and the strict decoding of a request (unknown
//!   fields, wrong types, over-precise amounts, oversized or too deeply nested payloads
//!   are refused with a field-naming error, never a panic);
//! * [`reply`]: replies and the stable error codes, with the one mapping from domain errors;
//! * [`event`]: the stored event envelope, the registry of event types and schema
//!   versions, and upcasting of old versions on decode;
//! * [`checkpoint`]: the checkpoint record the log carries on `<prefix>.checkpoints`
//!   (running log hash and number of commits before it, the previous checkpoint);
//! * [`notification`]: what the automation rules publish for people on
//!   `<prefix>.notify.<kind>` (stable ids, masked contacts);
//! * [`schema`]: the JSON Schemas published in `proto/`, generated from these types.
//!
//! Pure and synchronous like the domain: no I/O here.

pub mod checkpoint;
pub mod command;
pub mod event;
pub mod notification;
pub mod reply;
pub mod schema;
pub mod subjects;

pub use checkpoint::Checkpoint;
pub use command::{AnyCommand, CommandEnvelope, DecodedCommand, decode_command};
pub use event::{AnyEvent, DecodeError, EventEnvelope, EventMeta};
pub use notification::{Notification, NotificationKind};
pub use reply::{CommandReply, ErrorCode, ErrorReply};
pub use subjects::Subjects;

// Used by the integration tests only; the unit-test target links it too.
#[cfg(test)]
use {jsonschema as _, loan_testkit as _};
