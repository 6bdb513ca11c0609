//! The calendar: day after day, every borrower and every member of staff does what their
//! story says, and every step is a real command through the command path.
//!
//! An agenda maps each business date to the steps due that day. A step belongs to one
//! aggregate (a customer or a loan) and may schedule later steps. The steps of one day run
//! concurrently across aggregates (one aggregate's steps stay in order), so a store that
//! batches concurrent commits is used as it would be in production. Randomness is drawn
//! from a generator per aggregate, seeded from the run's seed, so the book is the same
//! whatever order the steps finish in.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike as _, Days, Months, NaiveDate, Utc};
use futures::StreamExt as _;
use loan_contract::{AnyEvent, CommandReply};
use loan_domain::loan::LoanEvent;
use loan_domain::servicing::{Payment, PenaltyTerms};
use loan_domain::{CommandKind, Money};
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::borrowing::{Book, share};
use crate::people::{self, Application, Borrower, Habit};
use crate::{CommandPath, DemoConfig, DemoError, Summary};

/// Loan officers the leads are assigned to.
const OFFICERS: [&str; 8] = [
    "officer-01",
    "officer-02",
    "officer-03",
    "officer-04",
    "officer-05",
    "officer-06",
    "officer-07",
    "officer-08",
];

/// Contract terms every demo loan is signed with.
const GRACE_DAYS: u32 = 3;
const DAILY_PENALTY_RATE: &str = "0.0005";

/// What happens to one aggregate on one day.
#[derive(Debug, Clone)]
enum Step {
    /// Register the customer, assess, verify, capture the first lead.
    Onboard,
    /// Submit the application and run the automated decision.
    Submit,
    /// A person decides a referred application.
    ManualDecision,
    /// Sign the contract of an approved application.
    Sign,
    Disburse,
    /// The borrower's payment for an installment (value-dated `value_date`, recorded today).
    Pay {
        installment: u32,
        value_date: NaiveDate,
    },
    /// The payment gateway reports a bounced payment.
    Reverse {
        reference: String,
    },
    /// The borrower settles the arrears (defaulters who cure).
    Cure,
    /// The borrower settles the whole loan early.
    Payoff,
    /// The delinquency sweep for this loan.
    Evaluate,
    /// Risk writes the loan off.
    WriteOff,
    /// The customer asks for their personal data to be erased (no open loans).
    Erase,
    /// A bureau refresh of the customer's score.
    Reassess {
        score: u16,
    },
}

/// Everything the simulation knows about one aggregate.
#[derive(Debug, Clone)]
struct Story {
    rng: ChaCha8Rng,
    borrower: Borrower,
    application: Option<Application>,
    /// Approved amount, rate, term.
    approval: Option<(Money, String, u32)>,
    book: Option<Book>,
    habit: Habit,
    /// Installment at which a defaulter stops paying / a prepayer settles.
    turning_point: u32,
    /// Defaulters: cure (pay the arrears) rather than be written off.
    cures: bool,
    /// No payment may be value-dated before this (a backdated one is in flight).
    quiet_until: Option<NaiveDate>,
    next_reference: u32,
    closed: bool,
    /// A loan story (keyed by the loan id), not a customer's.
    is_loan: bool,
    /// The loan went overdue and was cured.
    cured: bool,
}

/// Something that happened, counted for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Tally {
    Customer,
    Application,
    AutoApproved,
    Referred,
    ManualApproved,
    Rejected,
    Withdrawn,
    Disbursed,
    Repayment,
    LatePayment,
    PartialPayment,
    Backdated,
    Reversed,
    Cured,
    PaidOff,
    WrittenOff,
    Evaluation,
    Erased,
}

struct Outcome {
    key: Uuid,
    story: Story,
    later: Vec<(NaiveDate, Uuid, Step)>,
    tallies: Vec<Tally>,
    commands: u64,
    disbursed: Money,
    repaid: Money,
    new_loan: Option<(Uuid, Story)>,
}

/// Runs the whole book. `progress(day_index, days, commands_so_far)` is called after each
/// simulated day.
pub async fn run<P: CommandPath>(
    config: &DemoConfig,
    path: &P,
    progress: &(dyn Fn(u64, u64, u64) + Sync),
) -> Result<Summary, DemoError> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let end = config
        .start
        .checked_add_months(Months::new(config.months))
        .ok_or(DemoError::Config("start date plus months is out of range"))?;
    let onboarding_days = u64::try_from((end - config.start).num_days())
        .unwrap_or(0)
        .saturating_mul(3)
        / 5;
    let mut agenda: BTreeMap<NaiveDate, Vec<(Uuid, Step)>> = BTreeMap::new();
    let mut stories: HashMap<Uuid, Story> = HashMap::new();
    for _ in 0..config.customers {
        let borrower = people::borrower(&mut rng);
        let day = config
            .start
            .checked_add_days(Days::new(rng.random_range(0..onboarding_days.max(1))))
            .unwrap_or(config.start);
        let key = borrower.customer_id;
        stories.insert(
            key,
            Story {
                rng: ChaCha8Rng::seed_from_u64(rng.random()),
                borrower,
                application: None,
                approval: None,
                book: None,
                habit: Habit::Punctual,
                turning_point: 0,
                cures: false,
                quiet_until: None,
                next_reference: 1,
                closed: false,
                is_loan: false,
                cured: false,
            },
        );
        agenda.entry(day).or_default().push((key, Step::Onboard));
    }

    let mut summary = Summary {
        seed: config.seed,
        start: config.start,
        end,
        ..Summary::default()
    };
    let total_days = u64::try_from((end - config.start).num_days()).unwrap_or(0);
    let mut day = config.start;
    while day < end {
        // Month end: the sweep evaluates every loan in arrears (penalty and buckets move).
        if day.checked_add_days(Days::new(1)).map(|next| next.month()) != Some(day.month()) {
            for (key, story) in &stories {
                let in_arrears = story
                    .book
                    .as_ref()
                    .is_some_and(|book| !story.closed && book.days_past_due(day) > 0);
                if in_arrears {
                    agenda.entry(day).or_default().push((*key, Step::Evaluate));
                }
            }
        }
        let steps = agenda.remove(&day).unwrap_or_default();
        let mut by_key: Vec<(Uuid, Vec<Step>)> = Vec::new();
        let mut index: HashMap<Uuid, usize> = HashMap::new();
        for (key, step) in steps {
            let slot = *index.entry(key).or_insert_with(|| {
                by_key.push((key, Vec::new()));
                by_key.len() - 1
            });
            by_key[slot].1.push(step);
        }
        let work: Vec<(Uuid, Story, Vec<Step>)> = by_key
            .into_iter()
            .filter_map(|(key, steps)| stories.remove(&key).map(|story| (key, story, steps)))
            .collect();
        let outcomes: Vec<Result<Outcome, DemoError>> = futures::stream::iter(work)
            .map(|(key, story, steps)| play(path, day, key, story, steps))
            .buffer_unordered(config.concurrency.max(1))
            .collect()
            .await;
        for outcome in outcomes {
            let outcome = outcome?;
            summary.commands += outcome.commands;
            summary.disbursed = summary.disbursed.saturating_add(outcome.disbursed);
            summary.repaid = summary.repaid.saturating_add(outcome.repaid);
            for tally in outcome.tallies {
                summary.count(tally);
            }
            for (when, key, step) in outcome.later {
                if when < end {
                    agenda.entry(when).or_default().push((key, step));
                }
            }
            if let Some((loan_id, story)) = outcome.new_loan {
                stories.insert(loan_id, story);
            }
            stories.insert(outcome.key, outcome.story);
        }
        let done = u64::try_from((day - config.start).num_days()).unwrap_or(0) + 1;
        progress(done, total_days, summary.commands);
        day = day.succ_opt().unwrap_or(end);
    }
    // The customer worth a look: a loan cured after going overdue (else any disbursed
    // loan); the lowest id, so the choice repeats with the seed.
    let pick = |cured: bool| {
        stories
            .values()
            .filter(|story| story.is_loan && story.book.is_some() && (story.cured || !cured))
            .map(|story| story.borrower.customer_id)
            .min()
    };
    summary.showcase = pick(true).or_else(|| pick(false));
    Ok(summary)
}

/// One aggregate's steps of one day, in order.
async fn play<P: CommandPath>(
    path: &P,
    day: NaiveDate,
    key: Uuid,
    story: Story,
    steps: Vec<Step>,
) -> Result<Outcome, DemoError> {
    let mut actor = Actor {
        path,
        day,
        outcome: Outcome {
            key,
            story,
            later: Vec::new(),
            tallies: Vec::new(),
            commands: 0,
            disbursed: Money::ZERO,
            repaid: Money::ZERO,
            new_loan: None,
        },
    };
    for step in steps {
        if actor.outcome.story.closed && !matches!(step, Step::Erase) {
            continue;
        }
        actor.step(step).await?;
    }
    Ok(actor.outcome)
}

struct Actor<'p, P> {
    path: &'p P,
    day: NaiveDate,
    outcome: Outcome,
}

impl<P: CommandPath> Actor<'_, P> {
    fn story(&mut self) -> &mut Story {
        &mut self.outcome.story
    }

    fn loan_id(&self) -> Uuid {
        self.outcome.key
    }

    fn days(&mut self, range: std::ops::RangeInclusive<u64>) -> NaiveDate {
        let offset = self.story().rng.random_range(range);
        self.day
            .checked_add_days(Days::new(offset))
            .unwrap_or(self.day)
    }

    fn percent(&mut self) -> u32 {
        self.story().rng.random_range(0..100)
    }

    /// Schedules `step` on `when`; never today or earlier (today's agenda is running).
    fn later(&mut self, when: NaiveDate, step: Step) {
        let tomorrow = self.day.succ_opt().unwrap_or(self.day);
        let when = when.max(tomorrow);
        let key = self.outcome.key;
        self.outcome.later.push((when, key, step));
    }

    /// Sends one command; anything but `ok` stops the demo (every step is meant to be valid).
    async fn send(
        &mut self,
        kind: CommandKind,
        roles: &[&str],
        payload: Value,
    ) -> Result<Vec<AnyEvent>, DemoError> {
        let command_id = people::seeded_uuid(&mut self.outcome.story.rng);
        let body = json!({
            "command_id": command_id,
            "actor": { "id": actor_id(roles), "roles": roles },
            "correlation_id": self.outcome.key,
            "payload": payload,
        });
        self.outcome.commands += 1;
        let bytes = serde_json::to_vec(&body).map_err(|e| DemoError::Encode(e.to_string()))?;
        match self.path.send(kind, bytes, business_time(self.day)).await {
            CommandReply::Ok { events, .. } => {
                Ok(events.into_iter().map(|envelope| envelope.event).collect())
            }
            CommandReply::Error { error } => Err(DemoError::Refused {
                command: kind,
                on: self.day,
                aggregate: self.outcome.key,
                code: format!("{:?}", error.code),
                message: error.message,
            }),
        }
    }

    async fn step(&mut self, step: Step) -> Result<(), DemoError> {
        match step {
            Step::Onboard => self.onboard().await,
            Step::Submit => self.submit().await,
            Step::ManualDecision => self.manual_decision().await,
            Step::Sign => self.sign().await,
            Step::Disburse => self.disburse().await,
            Step::Pay {
                installment,
                value_date,
            } => self.pay(installment, value_date).await,
            Step::Reverse { reference } => self.reverse(reference).await,
            Step::Cure => self.cure().await,
            Step::Payoff => self.payoff().await,
            Step::Evaluate => self.evaluate().await.map(|_| ()),
            Step::WriteOff => self.write_off().await,
            Step::Erase => self.erase().await,
            Step::Reassess { score } => self.reassess(score).await,
        }
    }

    async fn onboard(&mut self) -> Result<(), DemoError> {
        let b = self.story().borrower.clone();
        let day = self.day;
        self.send(CommandKind::RegisterCustomer, &["customer_service"], json!({
            "customer_id": b.customer_id, "name": b.name, "gender": b.gender,
            "birth_date": b.birth_date, "phone": b.phone, "national_id": b.national_id,
            "bank_card": b.bank_card, "region": b.region, "employer": b.employer,
            "risk_appetite": b.risk_appetite, "channel": b.channel,
            "financials": {
                "monthly_income": b.monthly_income, "monthly_debt_payments": b.monthly_debt_payments,
                "total_assets": b.total_assets, "total_liabilities": b.total_liabilities,
            },
        }))
        .await?;
        self.outcome.tallies.push(Tally::Customer);
        if let Some(score) = b.credit_score {
            self.send(CommandKind::RecordCreditAssessment, &["system"], json!({
                "customer_id": b.customer_id, "score": score, "source": "pboc", "assessed_on": day,
            }))
            .await?;
        }
        if b.verifiable {
            self.send(
                CommandKind::VerifyIdentity,
                &["system"],
                json!({
                    "customer_id": b.customer_id, "method": "face_match", "verified_on": day,
                }),
            )
            .await?;
        }
        // The first application: a new aggregate with a story of its own.
        let mut loan_rng = ChaCha8Rng::seed_from_u64(self.story().rng.random());
        let application = people::application(&mut loan_rng, &b);
        let loan_id = application.loan_id;
        let habit = people::habit(&mut loan_rng, b.credit_score);
        let turning_point = loan_rng.random_range(2..=application.term_months.clamp(2, 8));
        let cures = loan_rng.random_range(0..100) < 45;
        let officer = OFFICERS[loan_rng.random_range(0..OFFICERS.len())];
        let mut loan = Story {
            rng: loan_rng,
            borrower: b.clone(),
            application: Some(application.clone()),
            approval: None,
            book: None,
            habit,
            turning_point,
            cures,
            quiet_until: None,
            next_reference: 1,
            closed: false,
            is_loan: true,
            cured: false,
        };
        // The lead is the loan aggregate's first command; sent from the customer's step
        // with the loan's own generator, so its id and command id repeat with the seed.
        let lead = json!({
            "loan_id": loan_id, "customer_id": b.customer_id, "channel": b.channel,
            "purpose": application.purpose, "requested_amount": application.requested_amount,
            "currency": "CNY", "term_months": application.term_months,
        });
        let mut sub = Actor {
            path: self.path,
            day,
            outcome: Outcome {
                key: loan_id,
                story: loan,
                later: Vec::new(),
                tallies: Vec::new(),
                commands: 0,
                disbursed: Money::ZERO,
                repaid: Money::ZERO,
                new_loan: None,
            },
        };
        sub.send(CommandKind::CaptureLead, &["loan_officer"], lead)
            .await?;
        sub.send(
            CommandKind::AssignOfficer,
            &["sales_manager"],
            json!({
                "loan_id": loan_id, "officer_id": officer,
            }),
        )
        .await?;
        sub.outcome.tallies.push(Tally::Application);
        if sub.percent() < 30 {
            let next = sub.days(1..=3);
            sub.send(
                CommandKind::LogFollowUp,
                &["loan_officer"],
                json!({
                    "loan_id": loan_id, "note": "Called the applicant; documents requested.",
                    "next_follow_up_on": next,
                }),
            )
            .await?;
        }
        if sub.percent() < 5 {
            sub.send(
                CommandKind::WithdrawApplication,
                &["loan_officer"],
                json!({
                    "loan_id": loan_id, "reason": "applicant no longer interested",
                }),
            )
            .await?;
            sub.outcome.tallies.push(Tally::Withdrawn);
            sub.story().closed = true;
        } else {
            let when = sub.days(1..=3);
            sub.later(when, Step::Submit);
        }
        self.outcome.commands += sub.outcome.commands;
        self.outcome.tallies.append(&mut sub.outcome.tallies);
        self.outcome.later.append(&mut sub.outcome.later);
        loan = sub.outcome.story;
        self.outcome.new_loan = Some((loan_id, loan));
        Ok(())
    }

    async fn submit(&mut self) -> Result<(), DemoError> {
        let loan_id = self.loan_id();
        let Some(application) = self.story().application.clone() else {
            return Ok(());
        };
        let mut documents = vec!["id_card", "credit_report", "income_proof"];
        if application.purpose == "business" {
            documents.push("business_license");
        }
        self.send(
            CommandKind::SubmitForReview,
            &["loan_officer"],
            json!({
                "loan_id": loan_id, "documents": documents,
            }),
        )
        .await?;
        let events = self
            .send(
                CommandKind::DecideAutomatically,
                &["system"],
                json!({ "loan_id": loan_id }),
            )
            .await?;
        let approved = events.iter().find_map(|event| match event {
            AnyEvent::Loan(LoanEvent::ApplicationApproved {
                approved_amount,
                annual_rate,
                term_months,
                ..
            }) => Some((*approved_amount, annual_rate.to_string(), *term_months)),
            _ => None,
        });
        let rejected = events
            .iter()
            .any(|event| matches!(event, AnyEvent::Loan(LoanEvent::ApplicationRejected { .. })));
        if let Some(approval) = approved {
            self.outcome.tallies.push(Tally::AutoApproved);
            self.approved(approval);
        } else if rejected {
            self.outcome.tallies.push(Tally::Rejected);
            self.story().closed = true;
            self.maybe_erase();
        } else {
            self.outcome.tallies.push(Tally::Referred);
            let when = self.days(1..=4);
            self.later(when, Step::ManualDecision);
        }
        Ok(())
    }

    async fn manual_decision(&mut self) -> Result<(), DemoError> {
        let loan_id = self.loan_id();
        let Some(application) = self.story().application.clone() else {
            return Ok(());
        };
        let senior = application.requested_amount > people::yuan(200_000);
        let role = if senior {
            "senior_underwriter"
        } else {
            "underwriter"
        };
        let score_ok = self
            .story()
            .borrower
            .credit_score
            .is_none_or(|score| score >= 600);
        if score_ok && self.percent() < 65 {
            // Referred for size or a thin file: approved, often for less.
            let amount = if self.percent() < 50 {
                application.requested_amount
            } else {
                share(application.requested_amount, 70)
            };
            let rate = if self.story().borrower.credit_score.is_none() {
                "0.2200"
            } else {
                "0.1450"
            };
            self.send(
                CommandKind::ApproveApplication,
                &[role],
                json!({
                    "loan_id": loan_id, "approved_amount": amount, "annual_rate": rate,
                    "term_months": application.term_months, "note": "manual review",
                }),
            )
            .await?;
            self.outcome.tallies.push(Tally::ManualApproved);
            self.approved((amount, rate.to_string(), application.term_months));
        } else {
            self.send(CommandKind::RejectApplication, &[role], json!({
                "loan_id": loan_id, "reasons": ["affordability not demonstrated on manual review"],
            }))
            .await?;
            self.outcome.tallies.push(Tally::Rejected);
            self.story().closed = true;
            self.maybe_erase();
        }
        Ok(())
    }

    fn approved(&mut self, approval: (Money, String, u32)) {
        self.story().approval = Some(approval);
        let when = self.days(1..=5);
        self.later(when, Step::Sign);
    }

    /// A few rejected applicants ask to be forgotten (their customer aggregate is erased).
    fn maybe_erase(&mut self) {
        if self.percent() < 3 {
            let when = self.days(10..=40);
            let customer = self.story().borrower.customer_id;
            self.outcome.later.push((when, customer, Step::Erase));
        }
    }

    async fn sign(&mut self) -> Result<(), DemoError> {
        let loan_id = self.loan_id();
        let Some((amount, rate, term)) = self.story().approval.clone() else {
            return Ok(());
        };
        if !self.story().borrower.verifiable || self.percent() < 4 {
            let reason = if self.story().borrower.verifiable {
                "found a cheaper offer"
            } else {
                "identity could not be verified"
            };
            self.send(
                CommandKind::WithdrawApplication,
                &["loan_officer"],
                json!({
                    "loan_id": loan_id, "reason": reason,
                }),
            )
            .await?;
            self.outcome.tallies.push(Tally::Withdrawn);
            self.story().closed = true;
            return Ok(());
        }
        let method = if self.percent() < 60 {
            "equal_installment"
        } else {
            "equal_principal"
        };
        let first_due = self
            .day
            .checked_add_months(Months::new(1))
            .unwrap_or(self.day);
        self.send(
            CommandKind::SignContract,
            &["loan_officer"],
            json!({
                "loan_id": loan_id, "principal": amount, "annual_rate": rate, "term_months": term,
                "method": method, "first_due_date": first_due, "grace_days": GRACE_DAYS,
                "daily_penalty_rate": DAILY_PENALTY_RATE,
            }),
        )
        .await?;
        let when = self.days(1..=2);
        self.later(when, Step::Disburse);
        Ok(())
    }

    async fn disburse(&mut self) -> Result<(), DemoError> {
        let loan_id = self.loan_id();
        let day = self.day;
        let events = self
            .send(
                CommandKind::DisburseLoan,
                &["finance"],
                json!({
                    "loan_id": loan_id, "payout_reference": format!("PO-{}", loan_id.simple()),
                    "value_date": day,
                }),
            )
            .await?;
        let Some(schedule) = events.into_iter().find_map(|event| match event {
            AnyEvent::Loan(LoanEvent::LoanDisbursed { schedule, .. }) => Some(schedule),
            _ => None,
        }) else {
            return Err(DemoError::Unexpected(format!(
                "disbursement of {loan_id} recorded no schedule"
            )));
        };
        let principal = schedule.total_principal();
        let daily_penalty_rate = loan_domain::Rate::parse(DAILY_PENALTY_RATE)
            .map_err(|e| DemoError::Unexpected(e.to_string()))?;
        let installments: Vec<(u32, NaiveDate)> = schedule
            .installments
            .iter()
            .map(|installment| (installment.number, installment.due_date))
            .collect();
        self.story().book = Some(Book {
            schedule,
            terms: PenaltyTerms {
                grace_days: GRACE_DAYS,
                daily_penalty_rate,
            },
            payments: Vec::new(),
        });
        self.outcome.disbursed = self.outcome.disbursed.saturating_add(principal);
        self.outcome.tallies.push(Tally::Disbursed);
        for (number, due) in installments {
            // The sweep looks at every installment the day after its grace ends.
            if let Some(check) = due.checked_add_days(Days::new(u64::from(GRACE_DAYS) + 1)) {
                self.later(check, Step::Evaluate);
            }
            let value_date = self.payment_date(due);
            self.later(
                value_date,
                Step::Pay {
                    installment: number,
                    value_date,
                },
            );
        }
        Ok(())
    }

    /// When the borrower pays an installment due on `due`, by habit.
    fn payment_date(&mut self, due: NaiveDate) -> NaiveDate {
        let (early, late) = match self.story().habit {
            Habit::Late => (0, self.story().rng.random_range(2..=25)),
            Habit::Partial => (0, self.story().rng.random_range(0..=5)),
            _ => (self.story().rng.random_range(0..=3), 0),
        };
        due.checked_sub_days(Days::new(early))
            .and_then(|d| d.checked_add_days(Days::new(late)))
            .unwrap_or(due)
    }

    async fn pay(&mut self, installment: u32, value_date: NaiveDate) -> Result<(), DemoError> {
        let habit = self.story().habit;
        let turning_point = self.story().turning_point;
        if habit == Habit::Defaulter && installment >= turning_point {
            if installment == turning_point {
                self.defaulted(installment).await?;
            }
            return Ok(());
        }
        let landing = value_date < self.day; // the in-flight backdated payment itself
        if let Some(quiet) = self.story().quiet_until
            && !landing
            && value_date <= quiet
        {
            // A backdated payment is still in flight: pay just after it lands.
            let when = quiet.checked_add_days(Days::new(1)).unwrap_or(quiet);
            self.later(
                when,
                Step::Pay {
                    installment,
                    value_date: when,
                },
            );
            return Ok(());
        }
        let Some(book) = self.story().book.clone() else {
            return Ok(());
        };
        let mut amount = book.amount_due(value_date, 7);
        if amount.is_zero() {
            return Ok(());
        }
        if habit == Habit::Partial && self.percent() < 40 {
            let part = self.story().rng.random_range(50..=90);
            amount = share(amount, part);
            self.outcome.tallies.push(Tally::PartialPayment);
        }
        if habit == Habit::Late {
            self.outcome.tallies.push(Tally::LatePayment);
        }
        // 6% arrive through a gateway batch days later, value-dated when the money moved.
        let backdated = value_date == self.day && self.percent() < 6;
        if backdated {
            let record_on = self.days(2..=6);
            self.story().quiet_until = Some(record_on);
            self.later(
                record_on,
                Step::Pay {
                    installment,
                    value_date,
                },
            );
            // Recorded then, with the amount computed then: nothing to send today.
            return Ok(());
        }
        let reference = self.record_payment(amount, value_date).await?;
        if landing {
            self.outcome.tallies.push(Tally::Backdated);
            self.story().quiet_until = None;
        }
        // 2% bounce: reversed by finance a few days later, paid again after that.
        if self.percent() < 2 {
            let when = self.days(1..=3);
            self.later(when, Step::Reverse { reference });
        }
        if habit == Habit::Prepayer && installment == turning_point {
            let when = self.days(3..=20);
            self.later(when, Step::Payoff);
        }
        Ok(())
    }

    async fn record_payment(
        &mut self,
        amount: Money,
        value_date: NaiveDate,
    ) -> Result<String, DemoError> {
        let loan_id = self.loan_id();
        let number = self.story().next_reference;
        self.story().next_reference += 1;
        let reference = format!("PAY-{}-{number:03}", &loan_id.simple().to_string()[..12]);
        self.send(
            CommandKind::RecordRepayment,
            &["system"],
            json!({
                "loan_id": loan_id, "payment_reference": reference, "amount": amount,
                "value_date": value_date,
            }),
        )
        .await?;
        self.outcome.repaid = self.outcome.repaid.saturating_add(amount);
        self.outcome.tallies.push(Tally::Repayment);
        let day = self.day;
        let story = self.story();
        if let Some(book) = story.book.as_mut() {
            book.payments.push(Payment {
                reference: reference.clone(),
                amount,
                value_date,
            });
            if book.settled(day.max(value_date)) {
                story.closed = true;
                self.outcome.tallies.push(Tally::PaidOff);
            }
        }
        Ok(reference)
    }

    async fn reverse(&mut self, reference: String) -> Result<(), DemoError> {
        let loan_id = self.loan_id();
        self.send(
            CommandKind::ReverseRepayment,
            &["finance"],
            json!({
                "loan_id": loan_id, "payment_reference": reference,
                "reason": "bounced: insufficient funds",
            }),
        )
        .await?;
        self.outcome.tallies.push(Tally::Reversed);
        let story = self.story();
        if let Some(book) = story.book.as_mut() {
            if let Some(payment) = book.payments.iter().position(|p| p.reference == reference) {
                let payment = book.payments.remove(payment);
                self.outcome.repaid = self
                    .outcome
                    .repaid
                    .checked_sub(payment.amount)
                    .unwrap_or(Money::ZERO);
            }
        }
        // The borrower pays again a few days later, whatever is due then.
        let when = self.days(2..=5);
        self.later(when, Step::Cure);
        Ok(())
    }

    /// A defaulter stops paying: later they cure, or risk writes the loan off.
    async fn defaulted(&mut self, installment: u32) -> Result<(), DemoError> {
        let Some(due) = self
            .story()
            .book
            .as_ref()
            .and_then(|b| b.due_date(installment))
        else {
            return Ok(());
        };
        // Their score drops at the next bureau refresh (an event on the customer).
        let customer_id = self.story().borrower.customer_id;
        if let Some(score) = self.story().borrower.credit_score {
            let drop = self.story().rng.random_range(40..=160);
            let lowered = score.saturating_sub(drop).max(300);
            let assessed_on = self.days(20..=40);
            self.outcome
                .later
                .push((assessed_on, customer_id, Step::Reassess { score: lowered }));
        }
        if self.story().cures {
            let offset = self.story().rng.random_range(20..=100);
            let when = due.checked_add_days(Days::new(offset)).unwrap_or(due);
            self.later(when, Step::Cure);
        } else {
            let offset = self.story().rng.random_range(125..=160);
            let when = due.checked_add_days(Days::new(offset)).unwrap_or(due);
            self.later(when, Step::WriteOff);
        }
        Ok(())
    }

    async fn cure(&mut self) -> Result<(), DemoError> {
        let Some(book) = self.story().book.clone() else {
            return Ok(());
        };
        let day = self.day;
        let was_overdue = book.days_past_due(day) > GRACE_DAYS;
        let amount = book.amount_due(day, 0);
        if amount.is_zero() {
            return Ok(());
        }
        self.record_payment(amount, day).await?;
        if was_overdue {
            self.outcome.tallies.push(Tally::Cured);
            self.story().cured = true;
        }
        if self.story().habit == Habit::Defaulter {
            // Cured defaulters pay the rest late but pay.
            self.story().habit = Habit::Late;
            let story = self.story();
            story.turning_point = u32::MAX;
            let remaining: Vec<(u32, NaiveDate)> = story
                .book
                .as_ref()
                .map(|book| {
                    book.schedule
                        .installments
                        .iter()
                        .filter(|installment| installment.due_date > day)
                        .map(|installment| (installment.number, installment.due_date))
                        .collect()
                })
                .unwrap_or_default();
            let tomorrow = day.succ_opt().unwrap_or(day);
            for (number, due) in remaining {
                let value_date = self.payment_date(due).max(tomorrow);
                self.later(
                    value_date,
                    Step::Pay {
                        installment: number,
                        value_date,
                    },
                );
            }
        }
        Ok(())
    }

    async fn payoff(&mut self) -> Result<(), DemoError> {
        let Some(book) = self.story().book.clone() else {
            return Ok(());
        };
        let amount = book.payoff(self.day);
        if amount.is_positive() {
            self.record_payment(amount, self.day).await?;
        }
        Ok(())
    }

    /// Sends evaluate_delinquency when the borrower's book shows arrears (the sweep skips
    /// loans that are current). Returns whether it was sent.
    async fn evaluate(&mut self) -> Result<bool, DemoError> {
        let day = self.day;
        let in_arrears = self
            .story()
            .book
            .as_ref()
            .is_some_and(|book| book.days_past_due(day) > 0);
        if !in_arrears {
            return Ok(false);
        }
        let loan_id = self.loan_id();
        self.send(
            CommandKind::EvaluateDelinquency,
            &["system"],
            json!({
                "loan_id": loan_id, "as_of": day,
            }),
        )
        .await?;
        self.outcome.tallies.push(Tally::Evaluation);
        Ok(true)
    }

    async fn write_off(&mut self) -> Result<(), DemoError> {
        let day = self.day;
        let overdue = self
            .story()
            .book
            .as_ref()
            .is_some_and(|book| book.days_past_due(day) > GRACE_DAYS);
        if !overdue {
            return Ok(());
        }
        self.evaluate().await?;
        let loan_id = self.loan_id();
        self.send(
            CommandKind::WriteOffLoan,
            &["risk_manager"],
            json!({
                "loan_id": loan_id, "reason": "borrower unreachable; collection exhausted",
            }),
        )
        .await?;
        self.outcome.tallies.push(Tally::WrittenOff);
        self.story().closed = true;
        Ok(())
    }

    /// A rejected applicant's erasure request (on the customer).
    async fn erase(&mut self) -> Result<(), DemoError> {
        let customer_id = self.outcome.key;
        self.send(
            CommandKind::EraseCustomer,
            &["data_protection_officer"],
            json!({
                "customer_id": customer_id, "reason": "data subject erasure request",
            }),
        )
        .await?;
        self.outcome.tallies.push(Tally::Erased);
        self.story().closed = true;
        Ok(())
    }

    /// A bureau refresh of the customer's score (on the customer).
    async fn reassess(&mut self, score: u16) -> Result<(), DemoError> {
        let customer_id = self.outcome.key;
        let day = self.day;
        self.send(
            CommandKind::RecordCreditAssessment,
            &["system"],
            json!({
                "customer_id": customer_id, "score": score, "source": "pboc", "assessed_on": day,
            }),
        )
        .await?;
        self.story().borrower.credit_score = Some(score);
        Ok(())
    }
}

impl Summary {
    fn count(&mut self, tally: Tally) {
        let slot = match tally {
            Tally::Customer => &mut self.customers,
            Tally::Application => &mut self.applications,
            Tally::AutoApproved => &mut self.approved_automatically,
            Tally::Referred => &mut self.referred,
            Tally::ManualApproved => &mut self.approved_manually,
            Tally::Rejected => &mut self.rejected,
            Tally::Withdrawn => &mut self.withdrawn,
            Tally::Disbursed => &mut self.disbursed_loans,
            Tally::Repayment => &mut self.repayments,
            Tally::LatePayment => &mut self.late_payments,
            Tally::PartialPayment => &mut self.partial_payments,
            Tally::Backdated => &mut self.backdated_payments,
            Tally::Reversed => &mut self.reversed_payments,
            Tally::Cured => &mut self.cured,
            Tally::PaidOff => &mut self.paid_off,
            Tally::WrittenOff => &mut self.written_off,
            Tally::Evaluation => &mut self.evaluations,
            Tally::Erased => &mut self.erased,
        };
        *slot += 1;
    }
}

/// 09:30 in Beijing (UTC+8) on `day`: when the demo's staff and systems act.
fn business_time(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(1, 30, 0).unwrap_or_default().and_utc()
}

/// The acting user for a role (a system process or a member of staff).
fn actor_id(roles: &[&str]) -> &'static str {
    match roles.first().copied().unwrap_or_default() {
        "system" => "system:demo",
        "customer_service" => "cs-agent-03",
        "loan_officer" => "officer-01",
        "sales_manager" => "sales-manager-01",
        "underwriter" => "underwriter-02",
        "senior_underwriter" => "senior-underwriter-01",
        "finance" => "finance-ops-01",
        "risk_manager" => "risk-manager-01",
        "data_protection_officer" => "dpo-01",
        _ => "demo",
    }
}
