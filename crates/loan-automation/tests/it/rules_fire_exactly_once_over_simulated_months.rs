//! Ten simulated weeks of a scripted portfolio, one worker step per day on a simulated
//! clock: loan A pays its first installment on time and misses the second, loan B never
//! pays, lead C is never followed up. Each rule must fire exactly when it should and
//! exactly once — with a few days missed (caught up in order), and with the worker
//! killed and restarted at every awkward point.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use loan_automation::Worker;
use loan_domain::CommandKind;
use loan_domain::loan::{LoanEvent, LoanStatus};
use loan_domain::schedule::Schedule;
use serde_json::json;
use uuid::Uuid;

use crate::harness::{Harness, business_days, date};

/// What the worker does on a simulated day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// One full step: consume, run the days, send.
    Run,
    /// The worker does not run at all today (down, or the host was off).
    Skip,
    /// Killed after storing the day's actions, before sending any; restarted.
    CrashBeforeSending,
    /// Killed after sending one action; restarted.
    CrashAfterOneSend,
    /// Killed after sending everything but before marking anything sent; restarted
    /// (every action of the day is sent a second time with the same id).
    CrashBeforeMarking,
}

struct Book {
    a: Uuid,
    b: Uuid,
    c: Uuid,
}

const FIRST_DAY: &str = "2026-01-05";
const LAST_DAY: &str = "2026-03-13";

/// The scripted business of the day (commands other people send).
async fn script(h: &Harness, day: NaiveDate, book: &mut Option<(Book, Schedule)>) {
    if day == date(FIRST_DAY) {
        let customer = h.customer(1).await;
        let (a, schedule) = h.disbursed_loan(customer, "2026-02-05").await;
        let (b, _) = h.disbursed_loan(customer, "2026-02-05").await;
        let c = h.lead(customer).await;
        h.ok(
            CommandKind::AssignOfficer,
            &["sales_manager"],
            json!({ "loan_id": c, "officer_id": "o-1" }),
        )
        .await;
        *book = Some((Book { a, b, c }, schedule));
    }
    if day == date("2026-02-05") {
        let (book, schedule) = book.as_ref().expect("the book exists");
        let first = &schedule.installments[0];
        h.ok(CommandKind::RecordRepayment, &["finance"], json!({
            "loan_id": book.a, "payment_reference": "PAY-A-1", "amount": first.total(), "value_date": "2026-02-05"
        }))
        .await;
    }
}

/// Runs the simulation with `plan` deciding each day's step; returns the book and the
/// dispatch totals (duplicates dropped by the notification stream).
async fn simulate(h: &Harness, plan: impl Fn(NaiveDate) -> Step) -> (Book, usize) {
    let mut book = None;
    let mut worker: Worker = h.worker().await;
    let mut duplicates = 0;
    for day in date(FIRST_DAY)
        .iter_days()
        .take_while(|d| *d <= date(LAST_DAY))
    {
        h.set_today(day);
        script(h, day, &mut book).await;
        let step = plan(day);
        match step {
            Step::Skip => continue,
            Step::Run => {}
            Step::CrashBeforeSending => {
                worker.consume().await.expect("consume");
                worker.run_days(day).await.expect("run the days");
                drop(worker);
                worker = h.worker().await;
            }
            Step::CrashAfterOneSend => {
                worker.consume().await.expect("consume");
                worker.run_days(day).await.expect("run the days");
                worker.dispatch(Some(1)).await.expect("send one");
                drop(worker);
                worker = h.worker().await;
            }
            Step::CrashBeforeMarking => {
                worker.run_once(day).await.expect("step");
                sqlx::query("UPDATE automation.actions SET completed_at = NULL, outcome = NULL WHERE business_on = $1")
                    .bind(day)
                    .execute(worker.pool())
                    .await
                    .expect("forget the marks");
                drop(worker);
                worker = h.worker().await;
            }
        }
        let report = worker.run_once(day).await.expect("step");
        assert_eq!(report.pending, 0, "{day}: nothing left pending: {report:?}");
        duplicates += report.duplicates;
    }
    let (book, _) = book.expect("the book exists");
    (book, duplicates)
}

/// Checks everything the automation did against what the rules say.
async fn check(h: &Harness, book: &Book) {
    // Delinquency sweep: B from 9 Feb (due 5 Feb + 3 grace days) on every business day;
    // A from 9 Mar (its second installment, due 5 Mar, unpaid). Never on weekends or the
    // holiday of 17 Feb.
    let mut expected_sweep: BTreeSet<(Uuid, NaiveDate)> = business_days("2026-02-09", LAST_DAY)
        .into_iter()
        .map(|d| (book.b, d))
        .collect();
    expected_sweep.extend(
        business_days("2026-03-09", LAST_DAY)
            .into_iter()
            .map(|d| (book.a, d)),
    );
    let actions = h.actions().await;
    let swept: Vec<(Uuid, NaiveDate)> = actions
        .iter()
        .filter(|(rule, ..)| rule == "delinquency_sweep")
        .map(|(_, loan, day, _)| (*loan, *day))
        .collect();
    assert_eq!(
        swept.iter().copied().collect::<BTreeSet<_>>(),
        expected_sweep,
        "the sweep evaluates exactly the loans in arrears beyond grace, on business days"
    );
    assert_eq!(swept.len(), expected_sweep.len(), "each loan and day once");
    for (rule, loan, day, outcome) in &actions {
        let expected = if rule == "delinquency_sweep" {
            "ok"
        } else {
            "published"
        };
        assert_eq!(
            outcome.as_deref().map(|o| o.starts_with(expected)),
            Some(true),
            "{rule} for {loan} on {day} completed: {outcome:?}"
        );
    }

    // The log: every evaluate_delinquency is one of the sweep's commands, once; B's are
    // in date order (the missed days were caught up in order), and B went overdue
    // without anyone asking.
    let commits = h.commits().await;
    let mut command_ids = BTreeSet::new();
    for commit in &commits {
        assert!(
            command_ids.insert(commit.command_id),
            "command {} appended twice",
            commit.command_id
        );
    }
    let evaluations: Vec<(Uuid, NaiveDate, Vec<String>, String)> = commits
        .iter()
        .filter(|c| c.command == CommandKind::EvaluateDelinquency)
        .map(|c| {
            let as_of = c
                .events
                .iter()
                .filter_map(|e| e.business_date)
                .next()
                .expect("as-of date");
            (
                c.aggregate.id,
                as_of,
                c.events.iter().map(|e| e.event_type.clone()).collect(),
                c.events[0].actor.id.clone(),
            )
        })
        .collect();
    assert!(
        evaluations
            .iter()
            .all(|(.., actor)| actor == "svc:automation")
    );
    let b_dates: Vec<NaiveDate> = evaluations
        .iter()
        .filter(|(loan, ..)| *loan == book.b)
        .map(|(_, d, ..)| *d)
        .collect();
    let expected_b: Vec<NaiveDate> = business_days("2026-02-09", LAST_DAY).into_iter().collect();
    assert_eq!(
        b_dates, expected_b,
        "B evaluated on every business day, in order"
    );
    let first_b = evaluations
        .iter()
        .find(|(loan, ..)| *loan == book.b)
        .expect("B evaluated");
    assert!(
        first_b.2.iter().any(|t| t == "loan_status_changed"),
        "the first sweep of B turns it overdue: {:?}",
        first_b.2
    );
    let _ = LoanStatus::Overdue;
    let _ = |e: &LoanEvent| e.type_name();

    // Notifications: one reminder per installment falling due (3 days ahead), one
    // follow-up alert for the quiet lead; each with its id in the header and the body,
    // the phone masked.
    let notifications = h.notifications().await;
    let mut ids = BTreeSet::new();
    let mut seen: BTreeMap<(String, Uuid, u64), String> = BTreeMap::new();
    for (header_id, body) in &notifications {
        assert_eq!(
            body["id"].as_str(),
            Some(header_id.as_str()),
            "Nats-Msg-Id is the body's id"
        );
        assert!(
            ids.insert(header_id.clone()),
            "notification {header_id} published twice"
        );
        let loan: Uuid = body["loan_id"]
            .as_str()
            .expect("loan id")
            .parse()
            .expect("uuid");
        let key = (
            body["kind"].as_str().expect("kind").to_owned(),
            loan,
            body["installment"].as_u64().unwrap_or(0),
        );
        seen.insert(
            key,
            body["business_date"].as_str().expect("date").to_owned(),
        );
        assert!(
            !body["reason"].as_str().unwrap_or("").is_empty(),
            "a reason"
        );
        if body["kind"] == "due_reminder" {
            assert_eq!(
                body["phone_masked"], "139****5678",
                "contact masked, never clear"
            );
            assert!(
                !body.to_string().contains("13912345678"),
                "no clear phone anywhere"
            );
        } else {
            assert_eq!(
                body["recipients"],
                json!(["o-1", "m-1"]),
                "officer and manager"
            );
        }
    }
    let expected: BTreeMap<(String, Uuid, u64), String> = [
        (("due_reminder".into(), book.a, 1), "2026-02-02"),
        (("due_reminder".into(), book.b, 1), "2026-02-02"),
        (("due_reminder".into(), book.a, 2), "2026-03-02"),
        (("due_reminder".into(), book.b, 2), "2026-03-02"),
        (("follow_up_overdue".into(), book.c, 0), "2026-01-08"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect();
    assert_eq!(seen, expected, "each notification exactly when it should");
    assert_eq!(notifications.len(), expected.len(), "and exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_fires_when_it_should_exactly_once_and_missed_days_are_caught_up_in_order() {
    let h = Harness::start().await;
    // Down from Friday 13 Feb to the holiday on Tuesday 17 Feb: Wednesday's run catches
    // up 13 and 16 Feb (and every calendar day for the reminders).
    let missed = date("2026-02-13")..=date("2026-02-17");
    let (book, duplicates) = simulate(&h, |day| {
        if missed.contains(&day) {
            Step::Skip
        } else {
            Step::Run
        }
    })
    .await;
    assert_eq!(duplicates, 0);
    check(&h, &book).await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_and_restarted_neither_misses_nor_repeats_an_action() {
    let h = Harness::start().await;
    let crashes: BTreeMap<NaiveDate, Step> = [
        ("2026-01-08", Step::CrashBeforeSending), // the follow-up alert
        ("2026-02-02", Step::CrashAfterOneSend),  // two reminders
        ("2026-02-09", Step::CrashBeforeMarking), // the first sweep of B
        ("2026-03-02", Step::CrashBeforeMarking), // two reminders, published twice
        ("2026-03-10", Step::CrashAfterOneSend),  // A and B swept
        ("2026-03-11", Step::CrashBeforeSending),
    ]
    .into_iter()
    .map(|(d, s)| (date(d), s))
    .collect();
    let (book, duplicates) =
        simulate(&h, |day| crashes.get(&day).copied().unwrap_or(Step::Run)).await;
    assert_eq!(
        duplicates, 2,
        "the two reminders re-published after the crash of 2 Mar were dropped by the stream"
    );
    check(&h, &book).await;
    h.finish().await;
}
