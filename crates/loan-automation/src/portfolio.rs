//! What the rules know: every loan and customer, folded from the event stream.
//!
//! The rules keep their own state instead of querying the read models, so they depend
//! only on the log and their decisions replay exactly. A loan's state is the domain's own
//! [`Loan`] (rebuilt with [`loan::evolve`]): schedules, payments and days past due are
//! computed by the domain, never re-implemented here. Customers are folded the same way,
//! for their (masked) contact data, and so are collection cases (which loans have an
//! open case, and how many cases each loan had).

use std::collections::BTreeMap;

use chrono::{FixedOffset, NaiveDate};
use loan_contract::{AnyEvent, EventEnvelope};
use loan_domain::collection::{self, CollectionCase};
use loan_domain::customer::{self, Customer};
use loan_domain::loan::{self, Loan};
use loan_domain::{CollectionCaseId, CustomerId, LoanId};

/// One loan as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoanFile {
    pub loan: Loan,
    /// The business date of the loan's latest event: when someone last touched it.
    pub last_touched_on: NaiveDate,
    /// Events applied so far (the loan's version).
    pub version: u64,
    /// The loan's collection cases, in the order they were opened.
    pub cases: Vec<CollectionCaseId>,
}

/// Every loan and customer seen in the stream so far.
#[derive(Debug, Clone, Default)]
pub struct Portfolio {
    loans: BTreeMap<LoanId, LoanFile>,
    customers: BTreeMap<CustomerId, Customer>,
    cases: BTreeMap<CollectionCaseId, CollectionCase>,
}

impl LoanFile {
    fn new(day: NaiveDate) -> Self {
        LoanFile {
            loan: Loan::NotCaptured,
            last_touched_on: day,
            version: 0,
            cases: Vec::new(),
        }
    }

    /// Adds a loan as the rules would have folded it (tests build portfolios by hand).
    pub fn with(loan: Loan, last_touched_on: NaiveDate, version: u64) -> Self {
        LoanFile {
            loan,
            last_touched_on,
            version,
            cases: Vec::new(),
        }
    }
}

impl Portfolio {
    /// Puts a loan, a customer or a case in place as if folded from the stream (for tests
    /// that build a portfolio by hand).
    pub fn insert_loan(&mut self, id: LoanId, file: LoanFile) {
        self.loans.insert(id, file);
    }

    pub fn insert_customer(&mut self, id: CustomerId, customer: Customer) {
        self.customers.insert(id, customer);
    }

    /// Records a collection case (opened for its file's loan).
    pub fn insert_case(&mut self, id: CollectionCaseId, case: CollectionCase) {
        if let Some(file) = case.file() {
            let loan_id = file.loan_id;
            if let Some(loan) = self.loans.get_mut(&loan_id) {
                loan.cases.push(id);
            }
        }
        self.cases.insert(id, case);
    }

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
                let file = self.loans.entry(id).or_insert_with(|| LoanFile::new(day));
                file.loan = loan::evolve(std::mem::take(&mut file.loan), event);
                file.last_touched_on = file.last_touched_on.max(day);
                file.version = envelope.meta.version;
            }
            AnyEvent::CollectionCase(event) => {
                let id = CollectionCaseId(envelope.meta.aggregate_id);
                let entry = self.cases.entry(id).or_default();
                let opened = !entry.is_open() && entry.file().is_none();
                *entry = collection::evolve(std::mem::take(entry), event);
                if let (true, Some(file)) = (opened, entry.file()) {
                    let loan = self
                        .loans
                        .entry(file.loan_id)
                        .or_insert_with(|| LoanFile::new(day));
                    loan.cases.push(id);
                }
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

    pub fn case(&self, id: CollectionCaseId) -> Option<&CollectionCase> {
        self.cases.get(&id)
    }

    pub fn customers(&self) -> impl Iterator<Item = (&CustomerId, &Customer)> {
        self.customers.iter()
    }
}
