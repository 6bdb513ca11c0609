//! A loan, a customer's loans, or the whole portfolio's delinquency on a past business
//! date, on either timeline (docs/domain.md, decision 16):
//!
//! * **as known then** ([`Knowledge::UpToPosition`] / [`Knowledge::UpToTime`]): only the
//!   commits recorded up to that moment are replayed — what the system reported;
//! * **as now known** ([`Knowledge::Everything`]): every commit, including repayments
//!   recorded later with earlier value dates and later reversals — what was true.
//!
//! Either way the loan is rebuilt with the domain's `evolve`, and its position on the
//! business date is recomputed by the domain's servicing functions (`compute_position`
//! over the payments known, `days_past_due`, `outstanding`, `overdue_amount`,
//! `AgingBucket::for_days_past_due`): no figure is computed here. The status on the date
//! is the one the domain derives from the book (`all_paid` → paid off, arrears beyond
//! grace → overdue, a payment counted → repaying, else disbursed); a write-off dated on
//! or before the date freezes the book at its date.
//!
//! Everything is a replay of the log (a live stream or an export), never of the read
//! models, so a published figure can be reproduced exactly and a restatement explained.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use loan_contract::{AnyEvent, EventEnvelope};
use loan_domain::Money;
use loan_domain::loan::{Loan, LoanEvent, LoanStatus, evolve};
use loan_domain::servicing::{self, AgingBucket, Outstanding, Payment};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use uuid::Uuid;

use crate::AuditError;
use crate::history::{Subject, select};
use crate::log::{Knowledge, LogEntry, LogReader};

/// `money` with exactly two decimals (a default zero prints `0`, not `0.00`).
fn cents(money: Money) -> Money {
    let mut amount = money.amount();
    amount.rescale(2);
    Money::from_exact(amount).unwrap_or(money)
}

fn cents_of(outstanding: Outstanding) -> Outstanding {
    Outstanding {
        principal: cents(outstanding.principal),
        interest: cents(outstanding.interest),
        penalty: cents(outstanding.penalty),
    }
}

/// Buckets print by their documented names (`dpd_1_to_30`, `AgingBucket::as_str`): the
/// domain type's serde form (`dpd1_to30`) is not the name in docs/domain.md.
fn bucket_name<S: serde::Serializer>(bucket: &AgingBucket, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(bucket.as_str())
}

fn optional_bucket_name<S: serde::Serializer>(
    bucket: &Option<AgingBucket>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match bucket {
        Some(bucket) => s.serialize_str(bucket.as_str()),
        None => s.serialize_none(),
    }
}

/// One installment on the business date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstallmentAt {
    pub number: u32,
    pub due_date: NaiveDate,
    pub principal: Money,
    pub interest: Money,
    pub principal_paid: Money,
    pub interest_paid: Money,
    pub penalty_accrued: Money,
    pub penalty_paid: Money,
    pub fully_paid: bool,
}

/// The book of a disbursed loan on the business date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookAt {
    pub disbursed_on: NaiveDate,
    pub principal: Money,
    pub grace_days: u32,
    /// The date the figures are computed at: the business date, or the write-off date
    /// if the loan was written off before it (the book is frozen then).
    pub computed_at: NaiveDate,
    pub installments: Vec<InstallmentAt>,
    /// Payments that count on the date (known, not reversed, value-dated on or before it).
    pub payments: Vec<Payment>,
    pub outstanding: Outstanding,
    /// Unpaid amounts of installments due before the date.
    pub overdue: Outstanding,
    pub days_past_due: u32,
    #[serde(serialize_with = "bucket_name")]
    pub bucket: AgingBucket,
    pub written_off_on: Option<NaiveDate>,
}

/// A loan on a business date, as known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoanAt {
    pub loan_id: Uuid,
    pub customer_id: Option<Uuid>,
    pub as_of: NaiveDate,
    pub knowledge: Knowledge,
    /// Commits of the loan known (and replayed).
    pub commits_known: u64,
    /// Position of the last known commit of the loan.
    pub last_position_known: Option<u64>,
    /// Status on the business date (see the module documentation).
    pub status: String,
    /// Status as recorded by the last known event (the lifecycle the system reported).
    pub recorded_status: String,
    /// The recorded book's date and bucket (as the last known money event left them).
    pub recorded_position_date: Option<NaiveDate>,
    #[serde(serialize_with = "optional_bucket_name")]
    pub recorded_bucket: Option<AgingBucket>,
    /// `None` before disbursement (or when not disbursed on the date).
    pub book: Option<BookAt>,
}

/// The loan's events grouped by commit, and where the commits are.
#[derive(Debug, Default)]
struct LoanLog {
    events: Vec<LoanEvent>,
    commits: u64,
    last_position: Option<u64>,
}

fn loan_events(entry: &LogEntry) -> Result<Vec<LoanEvent>, AuditError> {
    let commit = entry.commit()?;
    commit
        .events
        .into_iter()
        .map(|stored| {
            let envelope = EventEnvelope::from_stored(stored).map_err(|e| AuditError::Corrupt {
                position: entry.position,
                reason: e.to_string(),
            })?;
            match envelope.event {
                AnyEvent::Loan(event) => Ok(event),
                other => Err(AuditError::Corrupt {
                    position: entry.position,
                    reason: format!(
                        "a {} event in a loan commit",
                        other.aggregate_type().as_str()
                    ),
                }),
            }
        })
        .collect()
}

/// The state of a rebuilt loan on `as_of`.
fn loan_at(
    loan_id: Uuid,
    log: &LoanLog,
    as_of: NaiveDate,
    knowledge: Knowledge,
) -> Result<LoanAt, AuditError> {
    let loan = log.events.iter().fold(Loan::NotCaptured, evolve);
    let account = loan.account();
    let mut out = LoanAt {
        loan_id,
        customer_id: loan.application().map(|app| app.customer_id.0),
        as_of,
        knowledge,
        commits_known: log.commits,
        last_position_known: log.last_position,
        status: loan.status_name().to_owned(),
        recorded_status: loan.status_name().to_owned(),
        recorded_position_date: account.map(|acc| acc.position_date),
        recorded_bucket: account.map(|acc| acc.bucket),
        book: None,
    };
    let Some(account) = account else {
        return Ok(out);
    };
    if as_of < account.disbursed_on {
        out.status = LoanStatus::Signed.as_str().to_owned();
        return Ok(out);
    }
    let written_off = account.written_off_on.filter(|on| *on <= as_of);
    let computed_at = written_off.unwrap_or(as_of);
    let schedule = &account.schedule;
    let position = account
        .position_as_of(&account.payments, computed_at)
        .map_err(|e| AuditError::Corrupt {
            position: log.last_position.unwrap_or(0),
            reason: format!("loan {loan_id} cannot be replayed to {computed_at}: {e}"),
        })?;
    let positions = &position.installments;
    let days_past_due = servicing::days_past_due(schedule, positions, computed_at);
    let payments: Vec<Payment> = account
        .payments
        .iter()
        .filter(|p| p.value_date <= computed_at)
        .cloned()
        .collect();
    let status = if written_off.is_some() {
        LoanStatus::WrittenOff
    } else if servicing::all_paid(schedule, positions) {
        LoanStatus::PaidOff
    } else if servicing::in_arrears_beyond_grace(
        schedule,
        positions,
        account.contract.grace_days,
        computed_at,
    ) {
        LoanStatus::Overdue
    } else if payments.is_empty() {
        LoanStatus::Disbursed
    } else {
        LoanStatus::Repaying
    };
    out.status = status.as_str().to_owned();
    out.book = Some(BookAt {
        disbursed_on: account.disbursed_on,
        principal: account.contract.principal,
        grace_days: account.contract.grace_days,
        computed_at,
        installments: schedule
            .installments
            .iter()
            .zip(positions)
            .map(|(installment, paid)| InstallmentAt {
                number: installment.number,
                due_date: installment.due_date,
                principal: installment.principal,
                interest: installment.interest,
                principal_paid: cents(paid.principal_paid),
                interest_paid: cents(paid.interest_paid),
                penalty_accrued: cents(paid.penalty_accrued),
                penalty_paid: cents(paid.penalty_paid),
                fully_paid: servicing::fully_paid(installment, paid),
            })
            .collect(),
        payments,
        outstanding: cents_of(servicing::outstanding(schedule, positions)),
        overdue: cents_of(servicing::overdue_amount(schedule, positions, computed_at)),
        days_past_due,
        bucket: AgingBucket::for_days_past_due(days_past_due),
        written_off_on: written_off,
    });
    Ok(out)
}

/// Groups the known loan commits of `entries` by loan, in log order.
fn known_loans(
    entries: impl IntoIterator<Item = LogEntry>,
    knowledge: Knowledge,
) -> Result<BTreeMap<Uuid, LoanLog>, AuditError> {
    let mut loans: BTreeMap<Uuid, LoanLog> = BTreeMap::new();
    for entry in entries {
        let commit = entry.commit()?;
        if commit.aggregate.aggregate_type != loan_domain::AggregateType::Loan
            || !knowledge.knows(entry.position, commit.recorded_at)
        {
            continue;
        }
        let log = loans.entry(commit.aggregate.id).or_default();
        log.events.extend(loan_events(&entry)?);
        log.commits += 1;
        log.last_position = Some(entry.position);
    }
    Ok(loans)
}

/// A customer on a business date: whether the customer was erased, and every loan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerAt {
    pub customer_id: Uuid,
    pub as_of: NaiveDate,
    pub knowledge: Knowledge,
    /// `unregistered`, `registered` or `erased`, as recorded by the known events.
    pub status: String,
    pub identity_verified: bool,
    pub loans: Vec<LoanAt>,
}

/// The state of a loan (or a customer and all their loans) on `as_of`, as known.
pub async fn state(
    reader: &mut LogReader,
    subject: Subject,
    as_of: NaiveDate,
    knowledge: Knowledge,
) -> Result<Vec<LoanAt>, AuditError> {
    let entries = select(reader, subject).await?;
    let loans = known_loans(entries, knowledge)?;
    loans
        .iter()
        .map(|(id, log)| loan_at(*id, log, as_of, knowledge))
        .collect()
}

/// A customer and all their loans on `as_of`, as known.
pub async fn customer_state(
    reader: &mut LogReader,
    customer_id: Uuid,
    as_of: NaiveDate,
    knowledge: Knowledge,
) -> Result<CustomerAt, AuditError> {
    let entries = select(reader, Subject::CustomerWithLoans(customer_id)).await?;
    let mut status = "unregistered";
    let mut identity_verified = false;
    for entry in &entries {
        let commit = entry.commit()?;
        if commit.aggregate.aggregate_type != loan_domain::AggregateType::Customer
            || !knowledge.knows(entry.position, commit.recorded_at)
        {
            continue;
        }
        for event in &commit.events {
            match event.event_type.as_str() {
                "customer_registered" if status == "unregistered" => status = "registered",
                "identity_verified" => identity_verified = true,
                "customer_erased" => status = "erased",
                _ => {}
            }
        }
    }
    let loans = known_loans(entries, knowledge)?
        .iter()
        .map(|(id, log)| loan_at(*id, log, as_of, knowledge))
        .collect::<Result<_, _>>()?;
    Ok(CustomerAt {
        customer_id,
        as_of,
        knowledge,
        status: status.to_owned(),
        identity_verified,
        loans,
    })
}

/// One aging bucket of the delinquency report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketLine {
    #[serde(serialize_with = "bucket_name")]
    pub bucket: AgingBucket,
    pub loans: u64,
    pub outstanding_principal: Money,
    /// Unpaid principal, interest and penalty of installments due before the date.
    pub overdue_amount: Money,
}

/// Portfolio at risk: outstanding principal of loans more than `days` past due, and its
/// share of all outstanding principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParLine {
    pub days: u32,
    pub outstanding_principal: Money,
    /// Ratio rounded half-up to 4 decimal places (0 when nothing is outstanding).
    pub ratio: Decimal,
}

/// The delinquency report of a business date, as known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DelinquencyReport {
    pub as_of: NaiveDate,
    pub knowledge: Knowledge,
    /// Last position replayed.
    pub last_position_known: Option<u64>,
    /// Loans with principal outstanding on the date (disbursed on or before it, not
    /// written off on or before it).
    pub loans: u64,
    pub outstanding_principal: Money,
    /// Every bucket, `current` first, including empty ones.
    pub buckets: Vec<BucketLine>,
    /// PAR1, PAR30, PAR90.
    pub par: Vec<ParLine>,
    /// Loans written off on or before the date (outside the portfolio above).
    pub written_off_loans: u64,
    /// Every loan of the portfolio: id, days past due, bucket, outstanding principal.
    pub detail: Vec<ReportedLoan>,
}

/// One loan in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportedLoan {
    pub loan_id: Uuid,
    pub days_past_due: u32,
    #[serde(serialize_with = "bucket_name")]
    pub bucket: AgingBucket,
    pub outstanding_principal: Money,
    pub overdue_amount: Money,
}

const BUCKETS: [AgingBucket; 5] = [
    AgingBucket::Current,
    AgingBucket::Dpd1To30,
    AgingBucket::Dpd31To60,
    AgingBucket::Dpd61To90,
    AgingBucket::Dpd90Plus,
];

/// PAR thresholds reported (days past due strictly greater than).
pub const PAR_DAYS: [u32; 3] = [1, 30, 90];

/// Replays every loan known and reports delinquency on `as_of`.
pub async fn delinquency_report(
    reader: &mut LogReader,
    as_of: NaiveDate,
    knowledge: Knowledge,
) -> Result<DelinquencyReport, AuditError> {
    let mut entries = Vec::new();
    while let Some(entry) = reader.next().await? {
        entries.push(entry);
    }
    let loans = known_loans(entries, knowledge)?;
    let mut report = DelinquencyReport {
        as_of,
        knowledge,
        last_position_known: loans.values().filter_map(|l| l.last_position).max(),
        loans: 0,
        outstanding_principal: Money::ZERO,
        buckets: BUCKETS
            .iter()
            .map(|bucket| BucketLine {
                bucket: *bucket,
                loans: 0,
                outstanding_principal: Money::ZERO,
                overdue_amount: Money::ZERO,
            })
            .collect(),
        par: Vec::new(),
        written_off_loans: 0,
        detail: Vec::new(),
    };
    for (id, log) in &loans {
        let at = loan_at(*id, log, as_of, knowledge)?;
        let Some(book) = at.book else { continue };
        if book.written_off_on.is_some() {
            report.written_off_loans += 1;
            continue;
        }
        if !book.outstanding.principal.is_positive() {
            continue;
        }
        let overdue = book.overdue.total();
        report.loans += 1;
        report.outstanding_principal = report
            .outstanding_principal
            .checked_add(book.outstanding.principal)
            .map_err(|e| AuditError::Invalid(format!("portfolio total: {e}")))?;
        if let Some(line) = report.buckets.iter_mut().find(|l| l.bucket == book.bucket) {
            line.loans += 1;
            line.outstanding_principal = line
                .outstanding_principal
                .checked_add(book.outstanding.principal)
                .map_err(|e| AuditError::Invalid(format!("bucket total: {e}")))?;
            line.overdue_amount = line
                .overdue_amount
                .checked_add(overdue)
                .map_err(|e| AuditError::Invalid(format!("bucket total: {e}")))?;
        }
        report.detail.push(ReportedLoan {
            loan_id: *id,
            days_past_due: book.days_past_due,
            bucket: book.bucket,
            outstanding_principal: book.outstanding.principal,
            overdue_amount: overdue,
        });
    }
    for days in PAR_DAYS {
        let at_risk = report
            .detail
            .iter()
            .filter(|loan| loan.days_past_due > days)
            .try_fold(Money::ZERO, |sum, loan| {
                sum.checked_add(loan.outstanding_principal)
            })
            .map_err(|e| AuditError::Invalid(format!("PAR{days}: {e}")))?;
        let total = report.outstanding_principal.amount();
        let mut ratio = if total.is_zero() {
            Decimal::ZERO
        } else {
            (at_risk.amount() / total)
                .round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
        };
        ratio.rescale(4);
        report.par.push(ParLine {
            days,
            outstanding_principal: at_risk,
            ratio,
        });
    }
    Ok(report)
}
