//! History: every event of an aggregate, or of a customer with all their loans, in log
//! order, with who did it, when (business date and recording time), by which command
//! under which correlation id, and for automated decisions the rule-set version, the
//! inputs and the reasons.
//!
//! Sensitive fields (national ID, bank card, phone) are stored encrypted. They are shown:
//!
//! * **masked** by default: without the master key an encrypted value reads `***`; with
//!   the key it is decrypted and masked as everywhere else (`110***********1234`);
//! * **in clear** only with the master key AND an explicit request ([`Disclosure::Revealed`]);
//! * as **`erased`** for an erased customer: with the key, because the customer's data
//!   key is destroyed; without it, because the log records `customer_erased`.
//!
//! Blind indexes (`national_id_index`, `phone_index`) are never shown.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use loan_contract::event::StoredEvent;
use loan_domain::AggregateType;
use loan_domain::customer::ERASED;
use loan_domain::pii::{BankCard, NationalId, PhoneNumber, mask_middle};
use loan_engine::vault::EncryptedField;
use loan_engine::{CommitReader, Vault};
use loan_store::AggregateRef;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::AuditError;
use crate::log::{LogEntry, LogReader};

/// Whose history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Aggregate(AggregateRef),
    /// A customer, every loan captured for them and those loans' collection cases.
    CustomerWithLoans(Uuid),
}

/// How sensitive fields are shown.
#[derive(Clone, Copy)]
pub enum Disclosure<'v> {
    /// Without the key: encrypted values read `***` (or `erased`).
    Masked,
    /// Decrypted with the key, then masked.
    MaskedWithKey(&'v Vault),
    /// Decrypted with the key, shown in clear.
    Revealed(&'v Vault),
}

/// What an encrypted value reads as without the key.
pub const MASKED: &str = "***";

/// The reasoning of an automated decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionRecord {
    pub rule_set_version: Value,
    pub outcome: Value,
    pub inputs: Value,
    pub reasons: Value,
}

/// One event of the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryRow {
    pub position: u64,
    /// `<type>/<id>`.
    pub aggregate: String,
    pub version: u64,
    pub business_date: Option<NaiveDate>,
    pub recorded_at: DateTime<Utc>,
    pub actor: String,
    pub roles: Vec<String>,
    /// The command that produced the event.
    pub command: String,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub event_type: String,
    pub schema_version: u32,
    /// The event's own fields, sensitive ones masked, revealed or `erased`.
    pub data: Map<String, Value>,
    /// For `automated_decision_made`: rule-set version, outcome, inputs and reasons.
    pub decision: Option<DecisionRecord>,
}

/// The history of `subject`, read from `reader` (the whole log, or at least every
/// commit of the subject).
pub async fn history(
    reader: &mut LogReader,
    subject: Subject,
    disclosure: Disclosure<'_>,
) -> Result<Vec<HistoryRow>, AuditError> {
    let entries = select(reader, subject).await?;
    let erased: HashSet<Uuid> = entries
        .iter()
        .filter_map(|entry| entry.commit().ok())
        .flat_map(|commit| commit.events)
        .filter(|event| event.event_type == "customer_erased")
        .map(|event| event.aggregate_id)
        .collect();
    let mut rows = Vec::new();
    let vault = match disclosure {
        Disclosure::Masked => None,
        Disclosure::MaskedWithKey(vault) | Disclosure::Revealed(vault) => Some(vault),
    };
    let mut decrypter = vault.map(CommitReader::new);
    let reveal = matches!(disclosure, Disclosure::Revealed(_));
    for entry in &entries {
        let recorded = entry.recorded()?;
        let opened: Option<Vec<StoredEvent>> = match &mut decrypter {
            Some(reader) => Some(
                reader
                    .decode(&recorded)
                    .await?
                    .iter()
                    .map(|envelope| envelope.to_stored())
                    .collect(),
            ),
            None => None,
        };
        for (index, stored) in recorded.commit.events.iter().enumerate() {
            let encrypted: Vec<String> = stored
                .data
                .iter()
                .filter(|(_, value)| EncryptedField::is_encrypted(value))
                .map(|(field, _)| field.clone())
                .collect();
            let mut data = match opened.as_ref().and_then(|events| events.get(index)) {
                Some(clear) => clear.data.clone(),
                None => stored.data.clone(),
            };
            for field in &encrypted {
                data.remove(&format!("{field}_index"));
                let shown = if erased.contains(&stored.aggregate_id) && opened.is_none() {
                    ERASED.to_owned()
                } else {
                    match data.get(field).and_then(Value::as_str) {
                        Some(clear) if opened.is_some() => {
                            if reveal || clear == ERASED {
                                clear.to_owned()
                            } else {
                                mask(field, clear)
                            }
                        }
                        _ => MASKED.to_owned(),
                    }
                };
                data.insert(field.clone(), Value::String(shown));
            }
            let decision = (stored.event_type == "automated_decision_made")
                .then(|| data.get("decision"))
                .flatten()
                .map(|decision| DecisionRecord {
                    rule_set_version: decision
                        .get("rule_set_version")
                        .cloned()
                        .unwrap_or(Value::Null),
                    outcome: decision.get("outcome").cloned().unwrap_or(Value::Null),
                    inputs: decision.get("inputs").cloned().unwrap_or(Value::Null),
                    reasons: decision.get("reasons").cloned().unwrap_or(Value::Null),
                });
            rows.push(HistoryRow {
                position: entry.position,
                aggregate: recorded.commit.aggregate.to_string(),
                version: stored.version,
                business_date: stored.business_date,
                recorded_at: stored.recorded_at,
                actor: stored.actor.id.clone(),
                roles: stored
                    .actor
                    .roles
                    .iter()
                    .map(|role| {
                        serde_json::to_value(role)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    })
                    .collect(),
                command: recorded.commit.command.to_string(),
                command_id: stored.command_id,
                correlation_id: stored.correlation_id,
                causation_id: stored.causation_id,
                event_type: stored.event_type.clone(),
                schema_version: stored.schema_version,
                data,
                decision,
            });
        }
    }
    Ok(rows)
}

/// A clear sensitive value, masked as the domain masks it.
fn mask(field: &str, clear: &str) -> String {
    let masked = match field {
        "national_id" => NationalId::parse(clear).ok().map(|v| v.masked()),
        "bank_card" => BankCard::parse(clear).ok().map(|v| v.masked()),
        "phone" => PhoneNumber::parse(clear).ok().map(|v| v.masked()),
        _ => None,
    };
    masked.unwrap_or_else(|| mask_middle(clear, 2, 2))
}

/// Whether a collection case commit belongs to one of `loans`: a case already seen
/// (`cases`), or one whose opening names one of the loans (then remembered in `cases`).
pub(crate) fn case_of_loans(
    commit: &loan_store::Commit,
    loans: &HashSet<Uuid>,
    cases: &mut HashSet<Uuid>,
) -> bool {
    if cases.contains(&commit.aggregate.id) {
        return true;
    }
    let opened_for_loan = commit.events.iter().any(|event| {
        event.event_type == "collection_case_opened"
            && event
                .data
                .get("loan_id")
                .and_then(Value::as_str)
                .and_then(|id| id.parse::<Uuid>().ok())
                .is_some_and(|id| loans.contains(&id))
    });
    if opened_for_loan {
        cases.insert(commit.aggregate.id);
    }
    opened_for_loan
}

/// The commits of `subject`, in log order.
pub(crate) async fn select(
    reader: &mut LogReader,
    subject: Subject,
) -> Result<Vec<LogEntry>, AuditError> {
    let mut out = Vec::new();
    let mut loans = HashSet::new();
    let mut cases = HashSet::new();
    while let Some(entry) = reader.next().await? {
        let commit = entry.commit()?;
        let keep = match subject {
            Subject::Aggregate(aggregate) => commit.aggregate == aggregate,
            Subject::CustomerWithLoans(customer) => match commit.aggregate.aggregate_type {
                AggregateType::Customer => commit.aggregate.id == customer,
                AggregateType::Loan => {
                    loans.contains(&commit.aggregate.id) || {
                        let captured = commit.events.iter().any(|event| {
                            event.event_type == "lead_captured"
                                && event.data.get("customer_id").and_then(Value::as_str)
                                    == Some(customer.to_string().as_str())
                        });
                        if captured {
                            loans.insert(commit.aggregate.id);
                        }
                        captured
                    }
                }
                AggregateType::CollectionCase => case_of_loans(&commit, &loans, &mut cases),
            },
        };
        if keep {
            out.push(entry);
        }
    }
    Ok(out)
}
