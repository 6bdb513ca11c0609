//! What the rules know: every loan and customer, folded from the event stream.
//!
//! The rules keep their own state instead of querying the read models, so they depend
//! only on the log and their decisions replay exactly. A loan's state is the domain's own
//! [`Loan`] (rebuilt with [`loan::evolve`]): schedules, payments and days past due are
//! computed by the domain, never re-implemented here. Customers are folded the same way,
//! for their (masked) contact data, and so are collection cases (which loans have an
//! open case, and how many cases each loan had).
//!
//! Two things are kept beyond the aggregates' states, for the rules that need them: the
//! day's activity (leads, approvals, money moved, loans turned overdue, by the day the
//! event was *recorded* in the lender's time zone), which the daily report sums; and, when
//! a credit assessment is applied, the assessment it follows ([`Reassessment`]), which the
//! credit-score-drop alert compares.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{FixedOffset, NaiveDate};
use loan_contract::{AnyEvent, EventEnvelope};
use loan_domain::collection::{self, CollectionCase};
use loan_domain::customer::{self, CreditAssessment, Customer, CustomerEvent};
use loan_domain::loan::{self, Loan, LoanEvent, LoanStatus};
use loan_domain::{CollectionCaseId, CustomerId, LoanId, Money};
use uuid::Uuid;

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

/// What was recorded on one business day (in the lender's time zone), for the daily report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayActivity {
    /// `lead_captured` events.
    pub new_leads: u64,
    /// `application_approved` events (an underwriter's or the policy's).
    pub approvals: u64,
    /// Principal of the `loan_disbursed` events.
    pub disbursed: Money,
    /// Amounts of the `repayment_recorded` events (gross of reversals).
    pub repaid: Money,
    /// Loans with a `loan_status_changed` to `overdue`.
    pub newly_overdue: BTreeSet<LoanId>,
}

impl Default for DayActivity {
    /// A quiet day (amounts at two decimals: `0.00`).
    fn default() -> Self {
        DayActivity {
            new_leads: 0,
            approvals: 0,
            disbursed: Money::ZERO,
            repaid: Money::ZERO,
            newly_overdue: BTreeSet::new(),
        }
    }
}

/// A credit assessment just applied, with the one recorded before it for the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassessment {
    pub customer_id: CustomerId,
    /// The `credit_assessed` event's id.
    pub event_id: Uuid,
    /// The business day the event was recorded on.
    pub recorded_on: NaiveDate,
    pub previous: CreditAssessment,
    pub current: CreditAssessment,
}

/// Every loan and customer seen in the stream so far.
#[derive(Debug, Clone, Default)]
pub struct Portfolio {
    loans: BTreeMap<LoanId, LoanFile>,
    customers: BTreeMap<CustomerId, Customer>,
    cases: BTreeMap<CollectionCaseId, CollectionCase>,
    activity: BTreeMap<NaiveDate, DayActivity>,
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
    /// instant of an event into a day (the event's day when it has no business date).
    /// Returns the reassessment when the event is a customer's second or later credit
    /// assessment.
    pub fn apply(&mut self, envelope: &EventEnvelope, offset: FixedOffset) -> Option<Reassessment> {
        let recorded_on = envelope
            .meta
            .recorded_at
            .with_timezone(&offset)
            .date_naive();
        let day = envelope.meta.business_date.unwrap_or(recorded_on);
        match &envelope.event {
            AnyEvent::Loan(event) => {
                let id = LoanId(envelope.meta.aggregate_id);
                let file = self.loans.entry(id).or_insert_with(|| LoanFile::new(day));
                file.loan = loan::evolve(std::mem::take(&mut file.loan), event);
                file.last_touched_on = file.last_touched_on.max(day);
                file.version = envelope.meta.version;
                let disbursed = file.loan.account().map(|a| a.contract.principal);
                let activity = self.activity.entry(recorded_on).or_default();
                match event {
                    LoanEvent::LeadCaptured { .. } => activity.new_leads += 1,
                    LoanEvent::ApplicationApproved { .. } => activity.approvals += 1,
                    LoanEvent::LoanDisbursed { .. } => {
                        activity.disbursed = activity
                            .disbursed
                            .saturating_add(disbursed.unwrap_or(Money::ZERO));
                    }
                    LoanEvent::RepaymentRecorded { amount, .. } => {
                        activity.repaid = activity.repaid.saturating_add(*amount);
                    }
                    LoanEvent::LoanStatusChanged {
                        to: LoanStatus::Overdue,
                        ..
                    } => {
                        activity.newly_overdue.insert(id);
                    }
                    _ => {}
                }
                None
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
                None
            }
            AnyEvent::Customer(event) => {
                let id = CustomerId(envelope.meta.aggregate_id);
                let entry = self.customers.entry(id).or_default();
                let assessments = |customer: &Customer| {
                    customer
                        .profile()
                        .map(|profile| profile.credit_assessments.clone())
                        .unwrap_or_default()
                };
                let before = assessments(entry);
                *entry = customer::evolve(std::mem::take(entry), event);
                let CustomerEvent::CreditAssessed { .. } = event else {
                    return None;
                };
                let after = assessments(entry);
                if after.len() <= before.len() {
                    return None; // not applied (an erased customer)
                }
                let previous = before.last().cloned();
                let current = after.last().cloned()?;
                Some(Reassessment {
                    customer_id: id,
                    event_id: envelope.meta.event_id,
                    recorded_on,
                    previous: previous?,
                    current,
                })
            }
        }
    }

    /// What was recorded on `day` (all zero for a quiet day).
    pub fn activity_on(&self, day: NaiveDate) -> DayActivity {
        self.activity.get(&day).cloned().unwrap_or_default()
    }

    /// Records activity as if folded from the stream (for tests that build a portfolio
    /// by hand).
    pub fn insert_activity(&mut self, day: NaiveDate, activity: DayActivity) {
        self.activity.insert(day, activity);
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
