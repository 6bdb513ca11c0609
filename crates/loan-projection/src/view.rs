//! What a projector keeps per aggregate (its "view": the domain state plus what the
//! read model needs beyond it), how one commit advances it, and why it may not.
//!
//! Every group applies a commit the same way: check that it continues the aggregate
//! (base version = projected version, consecutive event versions, right aggregate), then
//! apply each event with the domain's own `evolve`. A commit that fails a check is
//! *poison* ([`Poison`]): the runner quarantines the aggregate instead of applying it.

use loan_contract::{AnyEvent, EventEnvelope};
use loan_domain::AggregateType;
use loan_domain::customer::Customer;
use loan_domain::loan::{self, Loan, LoanEvent};
use loan_store::{AggregateRef, Commit};
use serde::Serialize;

use crate::Group;
use crate::collections::{CaseView, case_rows};
use crate::delinquency::{BookView, book_changes};
use crate::portfolio::{CustomerView, LoanView, PortfolioRows, customer_rows, loan_rows};
use crate::rows::Change;

/// Why a commit cannot be applied to its aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Poison {
    pub(crate) event_type: Option<String>,
    pub(crate) reason: String,
}

impl Poison {
    pub(crate) fn new(event_type: Option<&str>, reason: impl Into<String>) -> Self {
        Poison {
            event_type: event_type.map(str::to_owned),
            reason: reason.into(),
        }
    }
}

/// A group's state of one aggregate.
#[derive(Debug, Clone)]
pub(crate) enum View {
    Customer(Box<CustomerView>),
    Loan(Box<LoanView>),
    Case(Box<CaseView>),
    Book(Box<BookView>),
}

impl View {
    pub(crate) fn empty(group: Group, aggregate: AggregateRef) -> View {
        match (group, aggregate.aggregate_type) {
            (Group::Portfolio, AggregateType::Customer) => {
                View::Customer(Box::new(CustomerView::new(aggregate.id)))
            }
            (Group::Portfolio, AggregateType::Loan) => {
                View::Loan(Box::new(LoanView::new(aggregate.id)))
            }
            (Group::Portfolio, AggregateType::CollectionCase) => {
                View::Case(Box::new(CaseView::new(aggregate.id)))
            }
            (Group::Delinquency, _) => View::Book(Box::new(BookView::new(aggregate.id))),
        }
    }

    pub(crate) fn version(&self) -> u64 {
        match self {
            View::Customer(v) => v.version,
            View::Loan(v) => v.version,
            View::Case(v) => v.version,
            View::Book(v) => v.version,
        }
    }
}

/// Rows a batch appends (history tables), besides the rows rewritten from the views.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    pub(crate) portfolio: PortfolioRows,
}

impl Rows {
    pub(crate) fn extend(&mut self, other: Rows) {
        self.portfolio.extend(other.portfolio);
    }
}

/// The rows of changed views and the history rows of a group, as the writes to make
/// (in order): the one computation both database backends write.
pub(crate) fn changes(group: Group, views: &[&View], rows: Rows) -> Vec<Change> {
    match group {
        Group::Portfolio => {
            let customers: Vec<&CustomerView> = views
                .iter()
                .filter_map(|v| match v {
                    View::Customer(c) => Some(c.as_ref()),
                    _ => None,
                })
                .collect();
            let loans: Vec<&LoanView> = views
                .iter()
                .filter_map(|v| match v {
                    View::Loan(l) => Some(l.as_ref()),
                    _ => None,
                })
                .collect();
            let cases: Vec<&CaseView> = views
                .iter()
                .filter_map(|v| match v {
                    View::Case(c) => Some(c.as_ref()),
                    _ => None,
                })
                .collect();
            let mut out = vec![
                Change::Write(customer_rows(&customers)),
                Change::Write(loan_rows(&loans)),
                Change::Write(case_rows(&cases)),
            ];
            out.extend(rows.portfolio.into_tables().map(Change::Write));
            out
        }
        Group::Delinquency => {
            let books: Vec<&BookView> = views
                .iter()
                .filter_map(|v| match v {
                    View::Book(b) => Some(b.as_ref()),
                    _ => None,
                })
                .collect();
            book_changes(&books)
        }
    }
}

/// Whether a group reads commits of this aggregate type at all.
pub(crate) fn handles(group: Group, aggregate_type: AggregateType) -> bool {
    match group {
        Group::Portfolio => true,
        Group::Delinquency => aggregate_type == AggregateType::Loan,
    }
}

/// Applies one commit (its decoded events) to `view`. On error the view may be partly
/// advanced: the caller keeps a copy from before the commit.
pub(crate) fn apply(
    view: &mut View,
    position: u64,
    commit: &Commit,
    events: &[EventEnvelope],
    rows: &mut Rows,
) -> Result<(), Poison> {
    check_commit(view.version(), commit, events)?;
    match view {
        View::Customer(v) => v.apply(position, events, &mut rows.portfolio),
        View::Loan(v) => v.apply(position, events, &mut rows.portfolio),
        View::Case(v) => v.apply(position, events),
        View::Book(v) => v.apply(position, events),
    }
}

/// The commit continues the aggregate as projected so far.
fn check_commit(version: u64, commit: &Commit, events: &[EventEnvelope]) -> Result<(), Poison> {
    let first_type = events.first().map(|e| e.event.type_name());
    if commit.base_version != version {
        return Err(Poison::new(
            first_type,
            format!(
                "commit continues version {} but the projection is at version {version} (a commit is missing or repeated)",
                commit.base_version
            ),
        ));
    }
    if events.is_empty() || commit.version != commit.base_version + events.len() as u64 {
        return Err(Poison::new(
            first_type,
            format!(
                "commit from version {} to {} holds {} events",
                commit.base_version,
                commit.version,
                events.len()
            ),
        ));
    }
    for (offset, envelope) in (1..).zip(events) {
        let type_name = envelope.event.type_name();
        if envelope.meta.version != commit.base_version + offset {
            return Err(Poison::new(
                Some(type_name),
                format!(
                    "event version {} where {} was expected",
                    envelope.meta.version,
                    commit.base_version + offset
                ),
            ));
        }
        if envelope.meta.aggregate_id != commit.aggregate.id
            || envelope.event.aggregate_type() != commit.aggregate.aggregate_type
            || envelope.meta.aggregate_type != commit.aggregate.aggregate_type
        {
            return Err(Poison::new(
                Some(type_name),
                format!(
                    "event of {}/{} in a commit of {}",
                    envelope.meta.aggregate_type.as_str(),
                    envelope.meta.aggregate_id,
                    commit.aggregate
                ),
            ));
        }
    }
    Ok(())
}

/// The loan event of an envelope, or poison.
pub(crate) fn loan_event(envelope: &EventEnvelope) -> Result<&LoanEvent, Poison> {
    match &envelope.event {
        AnyEvent::Loan(event) => Ok(event),
        other => Err(Poison::new(
            Some(other.type_name()),
            "an event of another aggregate in a loan's commit",
        )),
    }
}

/// Applies a loan event with the domain's `evolve`. `evolve` is total and leaves the
/// state unchanged when an event does not fit it (which `decide` never produces): such
/// an event means the projection and the log disagree, so it is poison.
pub(crate) fn evolve_loan(state: &Loan, event: &LoanEvent) -> Result<Loan, Poison> {
    let next = loan::evolve(state.clone(), event);
    if next == *state {
        return Err(Poison::new(
            Some(event.type_name()),
            format!(
                "{} does not fit a loan in status {}",
                event.type_name(),
                state.status_name()
            ),
        ));
    }
    Ok(next)
}

/// Whether a customer event fits the customer's status (registration first, nothing
/// after erasure). Field-level no-ops are legitimate for customers: after erasure a
/// replayed phone change reads "erased" over "erased".
pub(crate) fn customer_event_fits(
    state: &Customer,
    event: &loan_domain::customer::CustomerEvent,
) -> bool {
    use loan_domain::customer::CustomerEvent as E;
    matches!(
        (state, event),
        (Customer::Unregistered, E::CustomerRegistered { .. })
            | (Customer::Registered(_), E::ContactUpdated { .. })
            | (Customer::Registered(_), E::EmploymentUpdated { .. })
            | (Customer::Registered(_), E::FinancialsUpdated { .. })
            | (Customer::Registered(_), E::CreditAssessed { .. })
            | (Customer::Registered(_), E::IdentityVerified { .. })
            | (Customer::Registered(_), E::CustomerErased { .. })
    )
}

/// The snake_case wire name of a domain enum (its serde form).
pub(crate) fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}
