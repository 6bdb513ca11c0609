//! The collections team's queue: `collection_cases`, one row per collection case (group
//! portfolio), rewritten whole from the case's view once per batch.
//!
//! The view is the domain's own [`CollectionCase`] advanced with `collection::evolve`;
//! the row is what a collector needs to pick up a case (loan, arrears at opening, the
//! latest contact and promise, resolution) without reading the case's history.

use loan_contract::{AnyEvent, EventEnvelope};
use loan_domain::collection::{self, CollectionCase};
use uuid::Uuid;

use crate::rows::{OnConflict, TableRows};
use crate::view::{Poison, to_i32, to_i64, wire_name};

/// A collection case as the portfolio group knows it.
#[derive(Debug, Clone)]
pub(crate) struct CaseView {
    pub(crate) case_id: Uuid,
    pub(crate) case: CollectionCase,
    pub(crate) version: u64,
    pub(crate) last_position: u64,
}

impl CaseView {
    pub(crate) fn new(case_id: Uuid) -> Self {
        CaseView {
            case_id,
            case: CollectionCase::NotOpened,
            version: 0,
            last_position: 0,
        }
    }

    /// Applies a commit's events. `evolve` leaves the state unchanged when an event does
    /// not fit it (which `decide` never produces), and every fitting case event changes
    /// the file: an unchanged state means the projection and the log disagree (poison).
    pub(crate) fn apply(&mut self, position: u64, events: &[EventEnvelope]) -> Result<(), Poison> {
        for envelope in events {
            let AnyEvent::CollectionCase(event) = &envelope.event else {
                return Err(Poison::new(
                    Some(envelope.event.type_name()),
                    "an event of another aggregate in a collection case's commit",
                ));
            };
            let next = collection::evolve(self.case.clone(), event);
            if next == self.case {
                return Err(Poison::new(
                    Some(event.type_name()),
                    format!(
                        "{} does not fit a collection case in status {}",
                        event.type_name(),
                        self.case.status()
                    ),
                ));
            }
            self.case = next;
            self.version = envelope.meta.version;
        }
        self.last_position = position;
        Ok(())
    }
}

/// The rows of `collection_cases` for the given views (cases never opened have none).
pub(crate) fn case_rows(views: &[&CaseView]) -> TableRows {
    let mut rows = TableRows::new("collection_cases", &["case_id"], OnConflict::Update);
    for view in views {
        let Some(file) = view.case.file() else {
            continue;
        };
        let last_contact = file
            .contact_attempts
            .iter()
            .enumerate()
            .max_by_key(|(index, attempt)| (attempt.attempted_on, *index))
            .map(|(_, attempt)| attempt);
        let last_promise = file.promises.last();
        rows.row()
            .uuid("case_id", view.case_id)
            .uuid("loan_id", file.loan_id.0)
            .uuid("customer_id", file.customer_id.0)
            .text("team", file.team.clone())
            .text("status", view.case.status().to_owned())
            .text("currency", file.currency.code().to_owned())
            .date("opened_on", file.opened_on)
            .int4(
                "days_past_due_at_opening",
                to_i32(file.days_past_due_at_opening),
            )
            .money(
                "overdue_amount_at_opening",
                file.overdue_amount_at_opening.amount(),
            )
            .text("reason", file.reason.clone())
            .int4(
                "contact_attempts",
                i32::try_from(file.contact_attempts.len()).unwrap_or(i32::MAX),
            )
            .date("last_contact_on", last_contact.map(|a| a.attempted_on))
            .text(
                "last_contact_channel",
                last_contact.map(|a| wire_name(&a.channel)),
            )
            .text(
                "last_contact_outcome",
                last_contact.map(|a| wire_name(&a.outcome)),
            )
            .int4(
                "promises",
                i32::try_from(file.promises.len()).unwrap_or(i32::MAX),
            )
            .money("promised_amount", last_promise.map(|p| p.amount.amount()))
            .date("promised_pay_by", last_promise.map(|p| p.pay_by))
            .text("resolution", file.resolution.map(|r| r.as_str().to_owned()))
            .date("resolved_on", file.resolved_on)
            .int8("version", to_i64(view.version))
            .int8("last_position", to_i64(view.last_position));
    }
    rows
}
