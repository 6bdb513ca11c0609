//! Ten simulated weeks of a scripted portfolio, one worker step per day on a simulated
//! clock: loan A pays its first installment on time and misses the second, loan B never
//! pays (a collector works its collection case), loan D pays its first installment five
//! days late (its case is opened, then resolved as cured), lead C is never followed up.
//! Each rule must fire exactly when it should and exactly once — with a few days missed
//! (caught up in order), and with the worker killed and restarted at every awkward point.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use loan_automation::Worker;
use loan_automation::rules::collection_case_id;
use loan_domain::loan::{LoanEvent, LoanStatus};
use loan_domain::schedule::Schedule;
use loan_domain::{AggregateType, CommandKind, LoanId};
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
    d: Uuid,
}

/// The first collection case of a loan whose first installment (due 5 Feb) went unpaid.
fn first_case(loan: Uuid) -> Uuid {
    collection_case_id(LoanId(loan), 1, date("2026-02-05")).0
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
        let (d, _) = h.disbursed_loan(customer, "2026-02-05").await;
        h.ok(
            CommandKind::AssignOfficer,
            &["sales_manager"],
            json!({ "loan_id": c, "officer_id": "o-1" }),
        )
        .await;
        *book = Some((Book { a, b, c, d }, schedule));
    }
    if day == date("2026-02-09") {
        // A collector works B's case (opened by the automation on 7 Feb).
        let (book, _) = book.as_ref().expect("the book exists");
        h.ok(CommandKind::RecordContactAttempt, &["collector"], json!({
            "case_id": first_case(book.b), "channel": "phone", "outcome": "no_answer", "attempted_on": "2026-02-09"
        }))
        .await;
    }
    if day == date("2026-02-10") {
        // D pays five days late, enough for installments 1 and 2 with the penalty: cured.
        let (book, _) = book.as_ref().expect("the book exists");
        h.ok(CommandKind::RecordRepayment, &["finance"], json!({
            "loan_id": book.d, "payment_reference": "PAY-D-1", "amount": "3000.00", "value_date": "2026-02-10"
        }))
        .await;
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
    // D: 4 days past due on 9 Feb; paid on 10 Feb before the sweep.
    expected_sweep.insert((book.d, date("2026-02-09")));
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
        let expected = if rule == "delinquency_sweep" || rule == "collections" {
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

    // Collections: a case for B and D on 7 Feb (2 days past due, beyond the 1 allowed —
    // a Saturday: the queue is kept every calendar day), D's resolved as cured on 10 Feb
    // when it paid, a second case for A on 7 Mar; each once.
    let collections: Vec<(Uuid, NaiveDate)> = actions
        .iter()
        .filter(|(rule, ..)| rule == "collections")
        .map(|(_, loan, day, _)| (*loan, *day))
        .collect();
    let expected_collections: BTreeSet<(Uuid, NaiveDate)> = [
        (book.b, "2026-02-07"),
        (book.d, "2026-02-07"),
        (book.d, "2026-02-10"),
        (book.a, "2026-03-07"),
    ]
    .into_iter()
    .map(|(loan, day)| (loan, date(day)))
    .collect();
    assert_eq!(
        collections.iter().copied().collect::<BTreeSet<_>>(),
        expected_collections,
        "cases opened and resolved exactly when the loans say"
    );
    assert_eq!(collections.len(), expected_collections.len(), "each once");
    // The log: each case's events, in order, by whom.
    let mut cases: BTreeMap<Uuid, Vec<(String, Option<NaiveDate>, String)>> = BTreeMap::new();
    for commit in commits
        .iter()
        .filter(|c| c.aggregate.aggregate_type == AggregateType::CollectionCase)
    {
        for event in &commit.events {
            cases.entry(commit.aggregate.id).or_default().push((
                event.event_type.clone(),
                event.business_date,
                event.actor.id.clone(),
            ));
        }
    }
    let second_case_of_a = collection_case_id(LoanId(book.a), 1, date("2026-03-05")).0;
    let e = |t: &str, d: &str, who: &str| (t.to_owned(), Some(date(d)), who.to_owned());
    let expected_cases: BTreeMap<Uuid, Vec<(String, Option<NaiveDate>, String)>> = [
        (
            first_case(book.b),
            vec![
                e("collection_case_opened", "2026-02-07", "svc:automation"),
                e("contact_attempted", "2026-02-09", "test"),
            ],
        ),
        (
            first_case(book.d),
            vec![
                e("collection_case_opened", "2026-02-07", "svc:automation"),
                e("collection_case_resolved", "2026-02-10", "svc:automation"),
            ],
        ),
        (
            second_case_of_a,
            vec![e("collection_case_opened", "2026-03-07", "svc:automation")],
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(cases, expected_cases, "every case event exactly once");
    let resolved = commits
        .iter()
        .find(|c| c.command == CommandKind::ResolveCollectionCase)
        .expect("D's case resolved");
    assert_eq!(resolved.events[0].data["resolution"], "cured");
    assert_eq!(resolved.events[0].data["days_past_due"], 0);

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
        (("due_reminder".into(), book.d, 1), "2026-02-02"),
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
        ("2026-02-02", Step::CrashAfterOneSend),  // three reminders
        ("2026-02-07", Step::CrashBeforeMarking), // two cases opened, the openings sent twice
        ("2026-02-09", Step::CrashBeforeMarking), // the first sweep of B and D
        ("2026-02-10", Step::CrashBeforeSending), // D's case resolved
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
