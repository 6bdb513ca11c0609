//! What the rules know: every loan and customer, folded from the event stream.
//!
//! The rules keep their own state instead of querying the read models, so they depend
//! only on the log and their decisions replay exactly. A loan's state is the domain's own
//! [`Loan`] (rebuilt with [`loan::evolve`]): schedules, payments and days past due are
//! computed by the domain, never re-implemented here. Customers are folded the same way,
//! for their (masked) contact data.

use std::collections::BTreeMap;

use chrono::{FixedOffset, NaiveDate};
use loan_contract::{AnyEvent, EventEnvelope};
use loan_domain::customer::{self, Customer};
use loan_domain::loan::{self, Loan};
use loan_domain::{CustomerId, LoanId};

/// One loan as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoanFile {
    pub loan: Loan,
    /// The business date of the loan's latest event: when someone last touched it.
    pub last_touched_on: NaiveDate,
}

/// Every loan and customer seen in the stream so far.
#[derive(Debug, Clone, Default)]
pub struct Portfolio {
    loans: BTreeMap<LoanId, LoanFile>,
    customers: BTreeMap<CustomerId, Customer>,
}

impl Portfolio {
    /// Applies one event. `offset` is the lender's time zone, which turns the recording
    /// instant of an event without a business date into a day.
    pub fn apply(&mut self, envelope: &EventEnvelope, offset: FixedOffset) {
        let day = envelope.meta.business_date.unwrap_or_else(|| {
            envelope
                .meta
                .recorded_at
                .with_timezone(&offset)
                .date_naive()
        });
        match &envelope.event {
            AnyEvent::Loan(event) => {
                let id = LoanId(envelope.meta.aggregate_id);
                let file = self.loans.entry(id).or_insert_with(|| LoanFile {
                    loan: Loan::NotCaptured,
                    last_touched_on: day,
                });
                file.loan = loan::evolve(std::mem::take(&mut file.loan), event);
                file.last_touched_on = file.last_touched_on.max(day);
            }
            AnyEvent::Customer(event) => {
                let id = CustomerId(envelope.meta.aggregate_id);
                let entry = self.customers.entry(id).or_default();
                *entry = customer::evolve(std::mem::take(entry), event);
            }
        }
    }

    pub fn loans(&self) -> impl Iterator<Item = (&LoanId, &LoanFile)> {
        self.loans.iter()
    }

    pub fn loan(&self, id: LoanId) -> Option<&LoanFile> {
        self.loans.get(&id)
    }

    pub fn customer(&self, id: CustomerId) -> Option<&Customer> {
        self.customers.get(&id)
    }
}
