//! Given/when/then support shared by the aggregate tests.
//!
//! Everything here is built by issuing real commands through `decide` and applying the
//! events with `evolve`: no aggregate state is ever constructed by hand. Dates follow one
//! fixed calendar (see [`day`]) so that every scenario reads like a story:
//!
//! | step                          | business date | stage reached           |
//! |-------------------------------|---------------|-------------------------|
//! | customer registered, verified | 2025-12-01    |                         |
//! | lead captured                 | 2026-01-02    | lead                    |
//! | submitted for review          | 2026-01-03    | review                  |
//! | withdrawn (instead of review) | 2026-01-04    | withdrawn (from lead)   |
//! | approved / rejected           | 2026-01-05    | review (approved) / rejected |
//! | contract signed               | 2026-01-08    | signed                  |
//! | disbursed, value 2026-01-10   | 2026-01-10    | disbursed (first due 2026-02-10) |
//! | whole schedule paid           | 2026-01-20    | paid_off (from disbursed) |
//! | installment 1 paid on time    | 2026-02-10    | repaying                |
//! | delinquency evaluated         | 2026-03-20    | overdue (installment 2, due 2026-03-10, is 10 days late) |
//! | evaluated again, written off  | 2026-06-30    | written_off             |

use chrono::{Days, Months, NaiveDate};
use loan_domain::customer::{
    self, Customer, CustomerCommand, CustomerEvent, Financials, RecordCreditAssessment,
    RegisterCustomer, RiskAppetite, VerifyIdentity,
};
use loan_domain::loan::{
    self, Account, ApproveApplication, AssignOfficer, CaptureLead, DecideAutomatically,
    DisburseLoan, DocumentKind, EvaluateDelinquency, Loan, LoanCommand, LoanEvent, LoanPurpose,
    LoanStatus, LogFollowUp, RecordRepayment, RejectApplication, ReverseRepayment, SignContract,
    SubmitForReview, Verdict, WithdrawApplication, WriteOffLoan,
};
use loan_domain::pii::{BankCard, Gender, NationalId, PhoneNumber};
use loan_domain::schedule::RepaymentMethod;
use loan_domain::{
    Actor, CommandKind, Context, Currency, CustomerId, DomainError, LendingRules, LoanId, Money,
    Rate, Role,
};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

pub(crate) fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_else(|| panic!("test date {y}-{m}-{d}"))
}

pub(crate) fn money(text: &str) -> Money {
    Money::parse(text).unwrap_or_else(|e| panic!("test amount {text:?}: {e}"))
}

pub(crate) fn rate(text: &str) -> Rate {
    Rate::parse(text).unwrap_or_else(|e| panic!("test rate {text:?}: {e}"))
}

pub(crate) fn plus_days(on: NaiveDate, days: u64) -> NaiveDate {
    on.checked_add_days(Days::new(days))
        .unwrap_or_else(|| panic!("{on} + {days} days"))
}

pub(crate) fn minus_days(on: NaiveDate, days: u64) -> NaiveDate {
    on.checked_sub_days(Days::new(days))
        .unwrap_or_else(|| panic!("{on} - {days} days"))
}

/// The fixed calendar of the scenarios.
pub(crate) mod day {
    use super::date;
    use chrono::NaiveDate;

    pub(crate) fn registered() -> NaiveDate {
        date(2025, 12, 1)
    }
    pub(crate) fn captured() -> NaiveDate {
        date(2026, 1, 2)
    }
    pub(crate) fn submitted() -> NaiveDate {
        date(2026, 1, 3)
    }
    pub(crate) fn withdrawn() -> NaiveDate {
        date(2026, 1, 4)
    }
    pub(crate) fn decided() -> NaiveDate {
        date(2026, 1, 5)
    }
    pub(crate) fn signed() -> NaiveDate {
        date(2026, 1, 8)
    }
    pub(crate) fn disbursed() -> NaiveDate {
        date(2026, 1, 10)
    }
    pub(crate) fn first_due() -> NaiveDate {
        date(2026, 2, 10)
    }
    pub(crate) fn paid_off() -> NaiveDate {
        date(2026, 1, 20)
    }
    pub(crate) fn overdue_evaluated() -> NaiveDate {
        date(2026, 3, 20)
    }
    pub(crate) fn written_off() -> NaiveDate {
        date(2026, 6, 30)
    }
}

pub(crate) fn customer_id() -> CustomerId {
    CustomerId(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_c001))
}

pub(crate) fn loan_id() -> LoanId {
    LoanId(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_10a1))
}

/// ISO 7064 MOD 11-2 check character of a 17-digit national id body, computed here
/// independently of the crate.
pub(crate) fn mod11_2_check(body: &str) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    assert_eq!(body.len(), 17, "test bug: id body {body:?} needs 17 digits");
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    char::from(CHECK[(sum % 11) as usize])
}

/// A national id for `region` (6 digits) and `birth`, whose 3-digit sequence number is
/// odd for a man and even for a woman, with its check character.
pub(crate) fn national_id_text(region: &str, birth: NaiveDate, gender: Gender) -> String {
    let sequence = match gender {
        Gender::Male => "123",
        Gender::Female => "124",
    };
    let body = format!("{region}{}{sequence}", birth.format("%Y%m%d"));
    let check = mod11_2_check(&body);
    format!("{body}{check}")
}

/// Completes a digit string with its Luhn check digit.
pub(crate) fn with_luhn_check(body: &str) -> String {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let digit = u32::from(b - b'0');
            // The check digit will be rightmost, so the body's rightmost digit is doubled.
            if i % 2 == 0 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

// ---------------------------------------------------------------------------------------
// Actors and context
// ---------------------------------------------------------------------------------------

pub(crate) fn actor(roles: &[Role]) -> Actor {
    let id = roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join("+");
    Actor::new(format!("test:{id}"), roles.iter().copied())
}

/// An actor holding every role allowed to issue `kind` (and the senior-underwriter role for
/// approvals, so the threshold never gets in the way).
pub(crate) fn actor_for(kind: CommandKind) -> Actor {
    let mut roles = kind.allowed_roles().to_vec();
    if kind == CommandKind::ApproveApplication && !roles.contains(&Role::SeniorUnderwriter) {
        roles.push(Role::SeniorUnderwriter);
    }
    actor(&roles)
}

/// An actor holding every role except those allowed to issue `kind`.
pub(crate) fn actor_lacking(kind: CommandKind) -> Actor {
    let roles: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|r| !kind.allowed_roles().contains(r))
        .collect();
    actor(&roles)
}

pub(crate) fn context<'a>(
    actor: &'a Actor,
    today: NaiveDate,
    rules: &'a LendingRules,
) -> Context<'a> {
    Context {
        actor,
        today,
        rules,
    }
}

// ---------------------------------------------------------------------------------------
// Customer
// ---------------------------------------------------------------------------------------

pub(crate) fn birth_date() -> NaiveDate {
    date(1990, 3, 15)
}

pub(crate) fn register_command() -> RegisterCustomer {
    let id = national_id_text("110101", birth_date(), Gender::Male);
    RegisterCustomer {
        customer_id: customer_id(),
        name: "Zhang Wei".into(),
        gender: Gender::Male,
        birth_date: birth_date(),
        phone: PhoneNumber::parse("13812345678").expect("valid test phone"),
        national_id: NationalId::parse(&id)
            .unwrap_or_else(|e| panic!("test national id does not parse: {e}")),
        bank_card: BankCard::parse(&with_luhn_check("622202123456789"))
            .unwrap_or_else(|e| panic!("test bank card does not parse: {e}")),
        region: "110000".into(),
        employer: Some("Acme Trading Co.".into()),
        financials: Financials {
            monthly_income: money("20000.00"),
            monthly_debt_payments: money("2000.00"),
            total_assets: money("500000.00"),
            total_liabilities: money("100000.00"),
        },
        risk_appetite: RiskAppetite::Balanced,
        channel: "app".into(),
    }
}

pub(crate) fn verify_identity_command(on: NaiveDate) -> VerifyIdentity {
    VerifyIdentity {
        customer_id: customer_id(),
        method: "face_match".into(),
        verified_on: on,
    }
}

pub(crate) fn credit_assessment_command(score: u16, on: NaiveDate) -> RecordCreditAssessment {
    RecordCreditAssessment {
        customer_id: customer_id(),
        score,
        source: "pboc".into(),
        assessed_on: on,
    }
}

/// A customer built from its events.
#[derive(Debug, Clone)]
pub(crate) struct CustomerScenario {
    pub(crate) customer: Customer,
    pub(crate) events: Vec<CustomerEvent>,
    pub(crate) today: NaiveDate,
    pub(crate) rules: LendingRules,
}

impl CustomerScenario {
    pub(crate) fn unregistered() -> Self {
        CustomerScenario {
            customer: Customer::Unregistered,
            events: Vec::new(),
            today: day::registered(),
            rules: LendingRules::default(),
        }
    }

    /// Registered, identity not verified, no credit assessment.
    pub(crate) fn registered() -> Self {
        let mut s = Self::unregistered();
        s.run(&CustomerCommand::Register(register_command()));
        s
    }

    /// Registered, identity verified and credit-assessed (score 760): ready to borrow.
    pub(crate) fn onboarded() -> Self {
        let mut s = Self::registered();
        s.run(&CustomerCommand::VerifyIdentity(verify_identity_command(
            s.today,
        )));
        s.run(&CustomerCommand::RecordCreditAssessment(
            credit_assessment_command(760, s.today),
        ));
        s
    }

    pub(crate) fn decide_as(
        &self,
        command: &CustomerCommand,
        actor: &Actor,
    ) -> Result<Vec<CustomerEvent>, DomainError> {
        customer::decide(
            &self.customer,
            command,
            &context(actor, self.today, &self.rules),
        )
    }

    /// Decides and, when accepted, applies the events.
    pub(crate) fn execute(
        &mut self,
        command: &CustomerCommand,
        actor: &Actor,
    ) -> Result<Vec<CustomerEvent>, DomainError> {
        let events = self.decide_as(command, actor)?;
        for event in &events {
            self.customer = customer::evolve(self.customer.clone(), event);
        }
        self.events.extend(events.iter().cloned());
        Ok(events)
    }

    /// Executes with an actor holding the command's roles; a refusal fails the test.
    pub(crate) fn run(&mut self, command: &CustomerCommand) -> Vec<CustomerEvent> {
        let actor = actor_for(command.kind());
        self.execute(command, &actor).unwrap_or_else(|e| {
            panic!(
                "setup: customer command {} refused in state {}: {e:?}",
                command.kind(),
                self.customer.status()
            )
        })
    }
}

// ---------------------------------------------------------------------------------------
// Loan
// ---------------------------------------------------------------------------------------

/// The terms a scenario applies for, is approved at and signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoanTerms {
    pub(crate) purpose: LoanPurpose,
    pub(crate) principal: Money,
    pub(crate) annual_rate: Rate,
    pub(crate) term_months: u32,
    pub(crate) method: RepaymentMethod,
    pub(crate) grace_days: u32,
    pub(crate) daily_penalty_rate: Rate,
}

impl Default for LoanTerms {
    fn default() -> Self {
        LoanTerms {
            purpose: LoanPurpose::Consumer,
            principal: money("50000.00"),
            annual_rate: rate("0.12"),
            term_months: 12,
            method: RepaymentMethod::EqualInstallment,
            grace_days: 5,
            daily_penalty_rate: rate("0.0005"),
        }
    }
}

/// Where a loan stands: every [`LoanStatus`], plus not-yet-captured and the approved
/// review (status `review` with an approved verdict).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    NotCaptured,
    Lead,
    Review,
    ReviewApproved,
    Signed,
    Disbursed,
    Repaying,
    Overdue,
    PaidOff,
    WrittenOff,
    Rejected,
    Withdrawn,
}

impl Stage {
    pub(crate) const ALL: [Stage; 12] = [
        Stage::NotCaptured,
        Stage::Lead,
        Stage::Review,
        Stage::ReviewApproved,
        Stage::Signed,
        Stage::Disbursed,
        Stage::Repaying,
        Stage::Overdue,
        Stage::PaidOff,
        Stage::WrittenOff,
        Stage::Rejected,
        Stage::Withdrawn,
    ];

    pub(crate) fn status(self) -> Option<LoanStatus> {
        Some(match self {
            Stage::NotCaptured => return None,
            Stage::Lead => LoanStatus::Lead,
            Stage::Review | Stage::ReviewApproved => LoanStatus::Review,
            Stage::Signed => LoanStatus::Signed,
            Stage::Disbursed => LoanStatus::Disbursed,
            Stage::Repaying => LoanStatus::Repaying,
            Stage::Overdue => LoanStatus::Overdue,
            Stage::PaidOff => LoanStatus::PaidOff,
            Stage::WrittenOff => LoanStatus::WrittenOff,
            Stage::Rejected => LoanStatus::Rejected,
            Stage::Withdrawn => LoanStatus::Withdrawn,
        })
    }

    /// The stage a loan is in (telling an approved review from an undecided one).
    pub(crate) fn of(loan: &Loan) -> Stage {
        match loan {
            Loan::NotCaptured => Stage::NotCaptured,
            Loan::Lead(_) => Stage::Lead,
            Loan::Review(app) => match app.verdict {
                Verdict::Approved { .. } => Stage::ReviewApproved,
                Verdict::Pending | Verdict::Referred => Stage::Review,
            },
            Loan::Rejected(_) => Stage::Rejected,
            Loan::Withdrawn(_) => Stage::Withdrawn,
            Loan::Signed(..) => Stage::Signed,
            Loan::Disbursed(_) => Stage::Disbursed,
            Loan::Repaying(_) => Stage::Repaying,
            Loan::Overdue(_) => Stage::Overdue,
            Loan::PaidOff(_) => Stage::PaidOff,
            Loan::WrittenOff(_) => Stage::WrittenOff,
        }
    }
}

pub(crate) fn event_names(events: &[LoanEvent]) -> Vec<&'static str> {
    events.iter().map(LoanEvent::type_name).collect()
}

/// A loan (and its onboarded customer) built from events, with the business date the next
/// command is issued on.
#[derive(Debug, Clone)]
pub(crate) struct LoanScenario {
    pub(crate) customer: Customer,
    pub(crate) terms: LoanTerms,
    pub(crate) rules: LendingRules,
    pub(crate) today: NaiveDate,
    pub(crate) loan: Loan,
    pub(crate) events: Vec<LoanEvent>,
}

/// What a command did to a scenario: `then_*` assertions read it.
#[derive(Debug)]
pub(crate) struct When<'s> {
    pub(crate) given: &'s LoanScenario,
    pub(crate) label: String,
    pub(crate) result: Result<Vec<LoanEvent>, DomainError>,
}

impl When<'_> {
    /// The command was accepted with exactly these event types; returns the loan after them.
    pub(crate) fn then_events(&self, expected: &[&str]) -> Loan {
        let events = match &self.result {
            Ok(events) => events,
            Err(e) => panic!(
                "{}: expected events {expected:?}, refused with {e:?}",
                self.label
            ),
        };
        assert_eq!(event_names(events), expected, "{}: event types", self.label);
        let after = events.iter().fold(self.given.loan.clone(), loan::evolve);
        let replayed = Loan::replay(self.given.events.iter().chain(events));
        assert_eq!(
            replayed, after,
            "{}: replaying all events differs from the live state",
            self.label
        );
        after
    }

    /// The command was refused with exactly `expected`, and the loan is untouched.
    pub(crate) fn then_refused(&self, expected: &DomainError) {
        match &self.result {
            Ok(events) => panic!(
                "{}: expected refusal {expected:?}, got events {:?}",
                self.label,
                event_names(events)
            ),
            Err(e) => assert_eq!(e, expected, "{}: refusal", self.label),
        }
        self.given.assert_replay_matches(&self.label);
    }

    /// The command was refused; returns the error for closer inspection.
    pub(crate) fn then_refused_with(&self) -> &DomainError {
        self.given.assert_replay_matches(&self.label);
        match &self.result {
            Ok(events) => panic!(
                "{}: expected a refusal, got events {:?}",
                self.label,
                event_names(events)
            ),
            Err(e) => e,
        }
    }
}

impl LoanScenario {
    /// An onboarded customer and no loan yet, on the day the lead will be captured.
    pub(crate) fn new(terms: LoanTerms) -> Self {
        LoanScenario {
            customer: CustomerScenario::onboarded().customer,
            terms,
            rules: LendingRules::default(),
            today: day::captured(),
            loan: Loan::NotCaptured,
            events: Vec::new(),
        }
    }

    /// Moves the business date to `today`.
    pub(crate) fn on(&mut self, today: NaiveDate) -> &mut Self {
        self.today = today;
        self
    }

    pub(crate) fn stage(&self) -> Stage {
        Stage::of(&self.loan)
    }

    pub(crate) fn account(&self) -> &Account {
        self.loan
            .account()
            .unwrap_or_else(|| panic!("the loan has no account in {}", self.loan.status_name()))
    }

    pub(crate) fn decide_as(
        &self,
        command: &LoanCommand,
        actor: &Actor,
    ) -> Result<Vec<LoanEvent>, DomainError> {
        loan::decide(
            &self.loan,
            command,
            Some(&self.customer),
            &context(actor, self.today, &self.rules),
        )
    }

    /// Given this scenario, when `actor` sends `command`.
    pub(crate) fn when(&self, command: &LoanCommand, actor: &Actor) -> When<'_> {
        When {
            given: self,
            label: format!(
                "{} in {:?} on {} by {}",
                command.kind(),
                self.stage(),
                self.today,
                actor.id
            ),
            result: self.decide_as(command, actor),
        }
    }

    /// Decides and, when accepted, applies the events.
    pub(crate) fn execute(
        &mut self,
        command: &LoanCommand,
        actor: &Actor,
    ) -> Result<Vec<LoanEvent>, DomainError> {
        let events = self.decide_as(command, actor)?;
        for event in &events {
            self.loan = loan::evolve(std::mem::take(&mut self.loan), event);
        }
        self.events.extend(events.iter().cloned());
        Ok(events)
    }

    /// Executes with an actor holding the command's roles; a refusal fails the test.
    pub(crate) fn run(&mut self, command: &LoanCommand) -> Vec<LoanEvent> {
        let actor = actor_for(command.kind());
        self.execute(command, &actor).unwrap_or_else(|e| {
            panic!(
                "setup: {} refused in {} on {}: {e:?}",
                command.kind(),
                self.loan.status_name(),
                self.today
            )
        })
    }

    /// Replaying the events so far gives the live state.
    pub(crate) fn assert_replay_matches(&self, label: &str) {
        assert_eq!(
            Loan::replay(&self.events),
            self.loan,
            "{label}: replaying the events so far differs from the live state"
        );
    }

    // -- commands with valid payloads --------------------------------------------------

    pub(crate) fn capture_lead(&self) -> LoanCommand {
        LoanCommand::CaptureLead(CaptureLead {
            loan_id: loan_id(),
            customer_id: customer_id(),
            channel: "app".into(),
            purpose: self.terms.purpose,
            requested_amount: self.terms.principal,
            currency: Currency::parse("CNY").expect("CNY"),
            term_months: self.terms.term_months,
        })
    }

    pub(crate) fn assign_officer(&self, officer_id: &str) -> LoanCommand {
        LoanCommand::AssignOfficer(AssignOfficer {
            loan_id: loan_id(),
            officer_id: officer_id.into(),
        })
    }

    pub(crate) fn log_follow_up(&self) -> LoanCommand {
        LoanCommand::LogFollowUp(LogFollowUp {
            loan_id: loan_id(),
            note: "Called the applicant about the income proof.".into(),
            next_follow_up_on: Some(plus_days(self.today, 7)),
        })
    }

    pub(crate) fn submit_for_review(&self) -> LoanCommand {
        let mut documents = DocumentKind::required_for(self.terms.purpose).to_vec();
        documents.push(DocumentKind::BankStatement);
        LoanCommand::SubmitForReview(SubmitForReview {
            loan_id: loan_id(),
            documents,
        })
    }

    pub(crate) fn approve(&self) -> LoanCommand {
        LoanCommand::ApproveApplication(ApproveApplication {
            loan_id: loan_id(),
            approved_amount: self.terms.principal,
            annual_rate: self.terms.annual_rate,
            term_months: self.terms.term_months,
            note: Some("Stable income, low debt.".into()),
        })
    }

    pub(crate) fn reject(&self) -> LoanCommand {
        LoanCommand::RejectApplication(RejectApplication {
            loan_id: loan_id(),
            reasons: vec!["Income could not be verified.".into()],
        })
    }

    pub(crate) fn decide_automatically(&self) -> LoanCommand {
        LoanCommand::DecideAutomatically(DecideAutomatically { loan_id: loan_id() })
    }

    pub(crate) fn sign(&self) -> LoanCommand {
        LoanCommand::SignContract(SignContract {
            loan_id: loan_id(),
            principal: self.terms.principal,
            annual_rate: self.terms.annual_rate,
            term_months: self.terms.term_months,
            method: self.terms.method,
            first_due_date: day::first_due(),
            grace_days: self.terms.grace_days,
            daily_penalty_rate: self.terms.daily_penalty_rate,
        })
    }

    pub(crate) fn disburse(&self, value_date: NaiveDate) -> LoanCommand {
        LoanCommand::DisburseLoan(DisburseLoan {
            loan_id: loan_id(),
            payout_reference: "payout-0001".into(),
            value_date,
        })
    }

    pub(crate) fn repay(
        &self,
        reference: &str,
        amount: Money,
        value_date: NaiveDate,
    ) -> LoanCommand {
        LoanCommand::RecordRepayment(RecordRepayment {
            loan_id: loan_id(),
            payment_reference: reference.into(),
            amount,
            value_date,
        })
    }

    pub(crate) fn reverse(&self, reference: &str) -> LoanCommand {
        LoanCommand::ReverseRepayment(ReverseRepayment {
            loan_id: loan_id(),
            payment_reference: reference.into(),
            reason: "Bounced by the bank.".into(),
        })
    }

    pub(crate) fn evaluate(&self, as_of: NaiveDate) -> LoanCommand {
        LoanCommand::EvaluateDelinquency(EvaluateDelinquency {
            loan_id: loan_id(),
            as_of,
        })
    }

    pub(crate) fn write_off(&self) -> LoanCommand {
        LoanCommand::WriteOffLoan(WriteOffLoan {
            loan_id: loan_id(),
            reason: "No contact for 90 days; collection exhausted.".into(),
        })
    }

    pub(crate) fn withdraw(&self) -> LoanCommand {
        LoanCommand::WithdrawApplication(WithdrawApplication {
            loan_id: loan_id(),
            reason: "The applicant found a cheaper offer.".into(),
        })
    }

    /// Total (principal + interest) of installment `number` (1-based) of the schedule.
    pub(crate) fn installment_total(&self, number: usize) -> Money {
        self.account()
            .schedule
            .installments
            .get(number - 1)
            .unwrap_or_else(|| panic!("installment {number} does not exist"))
            .total()
    }

    /// The due date of installment `number` (1-based).
    pub(crate) fn due_date(number: u32) -> NaiveDate {
        day::first_due()
            .checked_add_months(Months::new(number - 1))
            .unwrap_or_else(|| panic!("due date of installment {number}"))
    }
}

/// The default loan driven to `stage`.
pub(crate) fn drive_to(stage: Stage) -> LoanScenario {
    drive_to_with(stage, LoanTerms::default())
}

/// A loan on `terms` driven to `stage` by real commands along the fixed calendar. Stages
/// past `disbursed` assume a schedule of at least two installments.
pub(crate) fn drive_to_with(stage: Stage, terms: LoanTerms) -> LoanScenario {
    let mut s = LoanScenario::new(terms);
    drive(&mut s, stage);
    assert_eq!(
        s.stage(),
        stage,
        "setup: driving to {stage:?} ended in {:?}",
        s.stage()
    );
    s.assert_replay_matches("setup");
    s
}

fn drive(s: &mut LoanScenario, stage: Stage) {
    let step = |s: &mut LoanScenario, on: NaiveDate, command: LoanCommand, events: &[&str]| {
        s.on(on);
        let got = s.run(&command);
        assert_eq!(
            event_names(&got),
            events,
            "setup: events of {} on {on}",
            command.kind()
        );
    };
    match stage {
        Stage::NotCaptured => {}
        Stage::Lead => {
            let c = s.capture_lead();
            step(s, day::captured(), c, &["lead_captured"]);
        }
        Stage::Review => {
            drive(s, Stage::Lead);
            let c = s.submit_for_review();
            step(s, day::submitted(), c, &["submitted_for_review"]);
        }
        Stage::ReviewApproved => {
            drive(s, Stage::Review);
            let c = s.approve();
            step(s, day::decided(), c, &["application_approved"]);
        }
        Stage::Rejected => {
            drive(s, Stage::Review);
            let c = s.reject();
            step(s, day::decided(), c, &["application_rejected"]);
        }
        Stage::Withdrawn => {
            drive(s, Stage::Lead);
            let c = s.withdraw();
            step(s, day::withdrawn(), c, &["application_withdrawn"]);
        }
        Stage::Signed => {
            drive(s, Stage::ReviewApproved);
            let c = s.sign();
            step(s, day::signed(), c, &["contract_signed"]);
        }
        Stage::Disbursed => {
            drive(s, Stage::Signed);
            let c = s.disburse(day::disbursed());
            step(s, day::disbursed(), c, &["loan_disbursed"]);
        }
        Stage::PaidOff => {
            drive(s, Stage::Disbursed);
            let total = s.account().schedule.total();
            let c = s.repay("pay-off", total, day::paid_off());
            step(
                s,
                day::paid_off(),
                c,
                &["repayment_recorded", "loan_status_changed"],
            );
        }
        Stage::Repaying => {
            drive(s, Stage::Disbursed);
            let c = s.repay("pay-1", s.installment_total(1), day::first_due());
            step(
                s,
                day::first_due(),
                c,
                &["repayment_recorded", "loan_status_changed"],
            );
        }
        Stage::Overdue => {
            drive(s, Stage::Repaying);
            let c = s.evaluate(day::overdue_evaluated());
            step(
                s,
                day::overdue_evaluated(),
                c,
                &[
                    "penalty_accrued",
                    "aging_bucket_changed",
                    "loan_status_changed",
                ],
            );
        }
        Stage::WrittenOff => {
            drive(s, Stage::Overdue);
            let c = s.evaluate(day::written_off());
            step(
                s,
                day::written_off(),
                c,
                &["penalty_accrued", "aging_bucket_changed"],
            );
            let c = s.write_off();
            step(s, day::written_off(), c, &["loan_written_off"]);
        }
    }
}
