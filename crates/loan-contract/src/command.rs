//! The command envelope and strict decoding of command requests.
//!
//! A request body is one JSON object: the envelope fields and `payload`, whose shape is
//! fixed by the subject the request was sent on. Decoding refuses, with an
//! [`ErrorReply`] naming the offending field and never a panic:
//! bodies over [`MAX_COMMAND_BYTES`] or nested deeper than [`MAX_DEPTH`] (`malformed`),
//! invalid JSON (`malformed`), unknown fields, missing fields, wrong types and values the
//! value types reject, such as over-precise or out-of-range amounts (`validation_failed`).

use loan_domain::collection::{self, CollectionCaseCommand};
use loan_domain::customer::{self, CustomerCommand};
use loan_domain::loan::{self, LoanCommand};
use loan_domain::{Actor, CommandKind};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::reply::{ErrorCode, ErrorReply};

/// Largest accepted request body. Real commands are well under 4 KiB.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;
/// Deepest accepted nesting of arrays and objects. Real commands nest at most 4 deep.
pub const MAX_DEPTH: usize = 16;

/// The envelope every command request carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandEnvelope<P> {
    /// Idempotency key, chosen by the caller: resending the same id returns the original
    /// result instead of applying the command twice.
    pub command_id: Uuid,
    /// The caller, as the upstream service vouches for it.
    pub actor: Actor,
    /// Ties together every command and event of one business flow.
    pub correlation_id: Uuid,
    /// The event or command that caused this command, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// If given, the command is refused with `conflict` unless the aggregate is at
    /// exactly this version (0 = does not exist yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    pub payload: P,
}

/// A command of any aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyCommand {
    Customer(CustomerCommand),
    Loan(LoanCommand),
    CollectionCase(CollectionCaseCommand),
}

impl AnyCommand {
    pub fn kind(&self) -> CommandKind {
        match self {
            AnyCommand::Customer(c) => c.kind(),
            AnyCommand::Loan(c) => c.kind(),
            AnyCommand::CollectionCase(c) => c.kind(),
        }
    }

    /// The payload as JSON (for digests): what the caller sent, after validation.
    pub fn payload_json(&self) -> serde_json::Value {
        use loan_domain::collection::CollectionCaseCommand as K;
        use loan_domain::customer::CustomerCommand as C;
        use loan_domain::loan::LoanCommand as L;
        let value = match self {
            AnyCommand::Customer(C::Register(p)) => serde_json::to_value(p),
            AnyCommand::Customer(C::UpdateContact(p)) => serde_json::to_value(p),
            AnyCommand::Customer(C::UpdateEmployment(p)) => serde_json::to_value(p),
            AnyCommand::Customer(C::UpdateFinancials(p)) => serde_json::to_value(p),
            AnyCommand::Customer(C::RecordCreditAssessment(p)) => serde_json::to_value(p),
            AnyCommand::Customer(C::VerifyIdentity(p)) => serde_json::to_value(p),
            AnyCommand::Customer(C::Erase(p)) => serde_json::to_value(p),
            AnyCommand::Loan(L::CaptureLead(p)) => serde_json::to_value(p),
            AnyCommand::Loan(L::AssignOfficer(p)) => serde_json::to_value(p),
            AnyCommand::Loan(L::LogFollowUp(p)) => serde_json::to_value(p),
            AnyCommand::Loan(L::SubmitForReview(p)) => serde_json::to_value(p),
            AnyCommand::Loan(L::ApproveApplication(p)) => serde_json::to_value(p),
            AnyCommand::Loan(L::RejectApplication(p)) => serde_json::to_value(p),
            AnyCommand::Loan(L::DecideAutomatically(p)) => serde_json::to_value(p),
            AnyCommand::Loan(L::SignContract(p)) => serde_json::to_value(p),
            AnyCommand::Loan(L::DisburseLoan(p)) => serde_json::to_value(p),
            AnyCommand::Loan(L::RecordRepayment(p)) => serde_json::to_value(p),
            AnyCommand::Loan(L::ReverseRepayment(p)) => serde_json::to_value(p),
            AnyCommand::Loan(L::EvaluateDelinquency(p)) => serde_json::to_value(p),
            AnyCommand::Loan(L::WriteOffLoan(p)) => serde_json::to_value(p),
            AnyCommand::Loan(L::WithdrawApplication(p)) => serde_json::to_value(p),
            AnyCommand::CollectionCase(K::Open(p)) => serde_json::to_value(p),
            AnyCommand::CollectionCase(K::RecordContactAttempt(p)) => serde_json::to_value(p),
            AnyCommand::CollectionCase(K::RecordPromiseToPay(p)) => serde_json::to_value(p),
            AnyCommand::CollectionCase(K::Resolve(p)) => serde_json::to_value(p),
        };
        // Payload types are plain data; serialising them cannot fail.
        value.unwrap_or(serde_json::Value::Null)
    }

    /// The id of the aggregate the command addresses.
    pub fn aggregate_id(&self) -> Uuid {
        match self {
            AnyCommand::Customer(c) => c.customer_id().0,
            AnyCommand::Loan(c) => c.loan_id().0,
            AnyCommand::CollectionCase(c) => c.case_id().0,
        }
    }
}

/// A decoded request: the envelope (payload replaced by the typed command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedCommand {
    pub envelope: CommandEnvelope<()>,
    pub command: AnyCommand,
}

/// Decodes the body of a request sent on the subject of `kind`.
pub fn decode_command(kind: CommandKind, body: &[u8]) -> Result<DecodedCommand, ErrorReply> {
    if body.len() > MAX_COMMAND_BYTES {
        return Err(ErrorReply::new(
            ErrorCode::Malformed,
            format!(
                "request body of {} bytes exceeds the limit of {MAX_COMMAND_BYTES}",
                body.len()
            ),
            None,
        ));
    }
    check_depth(body)?;
    use CommandKind as K;
    use loan_domain::customer::CustomerCommand as C;
    use loan_domain::loan::LoanCommand as L;
    match kind {
        K::RegisterCustomer => {
            typed::<customer::RegisterCustomer>(body, |p| AnyCommand::Customer(C::Register(p)))
        }
        K::UpdateContact => {
            typed::<customer::UpdateContact>(body, |p| AnyCommand::Customer(C::UpdateContact(p)))
        }
        K::UpdateEmployment => typed::<customer::UpdateEmployment>(body, |p| {
            AnyCommand::Customer(C::UpdateEmployment(p))
        }),
        K::UpdateFinancials => typed::<customer::UpdateFinancials>(body, |p| {
            AnyCommand::Customer(C::UpdateFinancials(p))
        }),
        K::RecordCreditAssessment => typed::<customer::RecordCreditAssessment>(body, |p| {
            AnyCommand::Customer(C::RecordCreditAssessment(p))
        }),
        K::VerifyIdentity => {
            typed::<customer::VerifyIdentity>(body, |p| AnyCommand::Customer(C::VerifyIdentity(p)))
        }
        K::EraseCustomer => {
            typed::<customer::EraseCustomer>(body, |p| AnyCommand::Customer(C::Erase(p)))
        }
        K::CaptureLead => typed::<loan::CaptureLead>(body, |p| AnyCommand::Loan(L::CaptureLead(p))),
        K::AssignOfficer => {
            typed::<loan::AssignOfficer>(body, |p| AnyCommand::Loan(L::AssignOfficer(p)))
        }
        K::LogFollowUp => typed::<loan::LogFollowUp>(body, |p| AnyCommand::Loan(L::LogFollowUp(p))),
        K::SubmitForReview => {
            typed::<loan::SubmitForReview>(body, |p| AnyCommand::Loan(L::SubmitForReview(p)))
        }
        K::ApproveApplication => {
            typed::<loan::ApproveApplication>(body, |p| AnyCommand::Loan(L::ApproveApplication(p)))
        }
        K::RejectApplication => {
            typed::<loan::RejectApplication>(body, |p| AnyCommand::Loan(L::RejectApplication(p)))
        }
        K::DecideAutomatically => typed::<loan::DecideAutomatically>(body, |p| {
            AnyCommand::Loan(L::DecideAutomatically(p))
        }),
        K::SignContract => {
            typed::<loan::SignContract>(body, |p| AnyCommand::Loan(L::SignContract(p)))
        }
        K::DisburseLoan => {
            typed::<loan::DisburseLoan>(body, |p| AnyCommand::Loan(L::DisburseLoan(p)))
        }
        K::RecordRepayment => {
            typed::<loan::RecordRepayment>(body, |p| AnyCommand::Loan(L::RecordRepayment(p)))
        }
        K::ReverseRepayment => {
            typed::<loan::ReverseRepayment>(body, |p| AnyCommand::Loan(L::ReverseRepayment(p)))
        }
        K::EvaluateDelinquency => typed::<loan::EvaluateDelinquency>(body, |p| {
            AnyCommand::Loan(L::EvaluateDelinquency(p))
        }),
        K::WriteOffLoan => {
            typed::<loan::WriteOffLoan>(body, |p| AnyCommand::Loan(L::WriteOffLoan(p)))
        }
        K::WithdrawApplication => typed::<loan::WithdrawApplication>(body, |p| {
            AnyCommand::Loan(L::WithdrawApplication(p))
        }),
        K::OpenCollectionCase => typed::<collection::OpenCollectionCase>(body, |p| {
            AnyCommand::CollectionCase(CollectionCaseCommand::Open(p))
        }),
        K::RecordContactAttempt => typed::<collection::RecordContactAttempt>(body, |p| {
            AnyCommand::CollectionCase(CollectionCaseCommand::RecordContactAttempt(p))
        }),
        K::RecordPromiseToPay => typed::<collection::RecordPromiseToPay>(body, |p| {
            AnyCommand::CollectionCase(CollectionCaseCommand::RecordPromiseToPay(p))
        }),
        K::ResolveCollectionCase => typed::<collection::ResolveCollectionCase>(body, |p| {
            AnyCommand::CollectionCase(CollectionCaseCommand::Resolve(p))
        }),
    }
}

fn typed<P: DeserializeOwned>(
    body: &[u8],
    wrap: impl FnOnce(P) -> AnyCommand,
) -> Result<DecodedCommand, ErrorReply> {
    // Fast path: a plain parse. Only a refused body is parsed again with path tracking,
    // to name the offending field.
    if let Ok(envelope) = serde_json::from_slice::<CommandEnvelope<P>>(body) {
        return Ok(split(envelope, wrap));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let envelope: CommandEnvelope<P> = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            let field = field_of(&path, &inner);
            let code = match inner.classify() {
                serde_json::error::Category::Data => ErrorCode::ValidationFailed,
                _ => ErrorCode::Malformed,
            };
            ErrorReply::new(code, describe(&inner), field)
        })?;
    deserializer.end().map_err(|error| {
        ErrorReply::new(
            ErrorCode::Malformed,
            format!("trailing characters after the request: {error}"),
            None,
        )
    })?;
    Ok(split(envelope, wrap))
}

/// Separates the typed payload from the envelope.
fn split<P>(envelope: CommandEnvelope<P>, wrap: impl FnOnce(P) -> AnyCommand) -> DecodedCommand {
    let CommandEnvelope {
        command_id,
        actor,
        correlation_id,
        causation_id,
        expected_version,
        payload,
    } = envelope;
    DecodedCommand {
        envelope: CommandEnvelope {
            command_id,
            actor,
            correlation_id,
            causation_id,
            expected_version,
            payload: (),
        },
        command: wrap(payload),
    }
}

/// The offending field: serde's path, completed with the name of a missing field (serde
/// reports a missing field at its parent object).
fn field_of(path: &str, error: &serde_json::Error) -> Option<String> {
    let text = error.to_string();
    let missing = text
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(name)) => Some(name.to_owned()),
        (".", None) => None,
        (parent, Some(name)) => Some(format!("{parent}.{name}")),
        (path, None) => Some(path.to_owned()),
    }
}

/// serde_json's message without its line/column suffix when a field path is reported.
fn describe(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(index) if error.classify() == serde_json::error::Category::Data => {
            text[..index].to_owned()
        }
        _ => text,
    }
}

/// Refuses bodies nested deeper than [`MAX_DEPTH`] before any allocation-heavy parse.
/// Counts brackets outside strings; cheap and exact for valid JSON, conservative for
/// invalid JSON (which the parser then refuses anyway).
fn check_depth(body: &[u8]) -> Result<(), ErrorReply> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in body {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ErrorReply::new(
                        ErrorCode::Malformed,
                        format!("request nests deeper than {MAX_DEPTH} levels"),
                        None,
                    ));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}
