//! Ten simulated weeks of a scripted portfolio, one worker step per day on a simulated
//! clock: loan A pays its first installment on time and misses the second, loan B never
//! pays (a collector works its collection case), loan D pays its first installment five
//! days late (its case is opened, then resolved as cured), lead C is never followed up.
//! On 12 Jan four new leads arrive, two before the worker routes and two after it decided
//! (but did not yet send) the first two; a watched customer's credit score drops by 55
//! points on 20 Feb and by 30 on 25 Feb; the overdue rate of the book (3 loans) crosses
//! 0.5 on 9 Feb, falls back on 10 Feb and crosses again on 9 Mar; every day is reported
//! when it is over. Each rule must fire exactly when it should and exactly once — with a
//! few days missed (caught up in order), and with the worker killed and restarted at
//! every awkward point.

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
    /// A customer of beijing (no loan until lead 4).
    north: Uuid,
    /// A customer without loans whose credit score drops.
    watched: Uuid,
    /// The leads of 12 Jan, in capture order (1 and 2 guangdong, 3 guangdong, 4 beijing).
    leads: Vec<Uuid>,
    customer: Uuid,
}

/// The first collection case of a loan whose first installment (due 5 Feb) went unpaid.
fn first_case(loan: Uuid) -> Uuid {
    collection_case_id(LoanId(loan), 1, date("2026-02-05")).0
}

const FIRST_DAY: &str = "2026-01-05";
const LAST_DAY: &str = "2026-03-13";
/// The day new leads arrive for routing.
const LEADS_DAY: &str = "2026-01-12";

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
        let north = h.customer_in(3, "beijing").await;
        let watched = h.customer(2).await;
        *book = Some((
            Book {
                a,
                b,
                c,
                d,
                north,
                watched,
                leads: Vec::new(),
                customer,
            },
            schedule,
        ));
    }
    if day == date(LEADS_DAY) {
        // Two leads before the worker's step (the other two arrive mid-step: simulate).
        let (book, _) = book.as_mut().expect("the book exists");
        for _ in 0..2 {
            book.leads.push(h.lead(book.customer).await);
        }
    }
    if day == date("2026-02-20") {
        let (book, _) = book.as_ref().expect("the book exists");
        h.assess(book.watched, 680).await; // 735 -> 680: 55 points, more than 50
    }
    if day == date("2026-02-25") {
        let (book, _) = book.as_ref().expect("the book exists");
        h.assess(book.watched, 650).await; // 680 -> 650: 30 points
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
        if day == date(LEADS_DAY) {
            // The worker decides the first two leads' officers but has not sent the
            // assignments when two more leads arrive: their routing must count the first
            // two decisions, which the stream does not show yet.
            worker.consume().await.expect("consume");
            worker.run_days(day).await.expect("run the days");
            worker.route_leads(day).await.expect("route");
            let (book, _) = book.as_mut().expect("the book exists");
            book.leads.push(h.lead(book.customer).await);
            book.leads.push(h.lead(book.north).await);
        }
        let step = plan(day);
        match step {
            Step::Skip => continue,
            Step::Run => {}
            Step::CrashBeforeSending => {
                worker.consume().await.expect("consume");
                worker.run_days(day).await.expect("run the days");
                worker.route_leads(day).await.expect("route");
                drop(worker);
                worker = h.worker().await;
            }
            Step::CrashAfterOneSend => {
                worker.consume().await.expect("consume");
                worker.run_days(day).await.expect("run the days");
                worker.route_leads(day).await.expect("route");
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
        .map(|(_, loan, day, _)| (loan.expect("a loan"), *day))
        .collect();
    assert_eq!(
        swept.iter().copied().collect::<BTreeSet<_>>(),
        expected_sweep,
        "the sweep evaluates exactly the loans in arrears beyond grace, on business days"
    );
    assert_eq!(swept.len(), expected_sweep.len(), "each loan and day once");
    for (rule, loan, day, outcome) in &actions {
        let expected = match rule.as_str() {
            "delinquency_sweep" | "collections" => "ok",
            "lead_routing" if outcome.as_deref() == Some("ok") => "ok",
            _ => "published",
        };
        assert_eq!(
            outcome.as_deref().map(|o| o.starts_with(expected)),
            Some(true),
            "{rule} for {loan:?} on {day} completed: {outcome:?}"
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
        .map(|(_, loan, day, _)| (loan.expect("a loan"), *day))
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
    // follow-up alert per quiet lead; each with its id in the header and the body, the
    // phone masked.
    let notifications = h.notifications().await;
    let mut ids = BTreeSet::new();
    let mut by_kind: BTreeMap<String, Vec<&serde_json::Value>> = BTreeMap::new();
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
        assert!(
            !body["reason"].as_str().unwrap_or("").is_empty(),
            "a reason"
        );
        by_kind
            .entry(body["kind"].as_str().expect("kind").to_owned())
            .or_default()
            .push(body);
    }
    let loan_of = |body: &serde_json::Value| -> Uuid {
        body["loan_id"]
            .as_str()
            .expect("loan id")
            .parse()
            .expect("uuid")
    };
    let mut seen: BTreeMap<(String, Uuid, u64), String> = BTreeMap::new();
    for kind in ["due_reminder", "follow_up_overdue"] {
        for body in by_kind.get(kind).into_iter().flatten() {
            let key = (
                kind.to_owned(),
                loan_of(body),
                body["installment"].as_u64().unwrap_or(0),
            );
            seen.insert(
                key,
                body["business_date"].as_str().expect("date").to_owned(),
            );
            if kind == "due_reminder" {
                assert_eq!(
                    body["phone_masked"], "139****5678",
                    "contact masked, never clear"
                );
                assert!(
                    !body.to_string().contains("13912345678"),
                    "no clear phone anywhere"
                );
            } else {
                // The officer and their manager (m-0 by default), the manager alone for
                // an unassigned lead.
                let loan = loan_of(body);
                let expected = if loan == book.c {
                    json!(["o-1", "m-1"])
                } else if loan == book.leads[0] {
                    json!(["o-a", "m-0"])
                } else if loan == book.leads[3] {
                    json!(["m-0"])
                } else {
                    json!(["o-b", "m-0"])
                };
                assert_eq!(body["recipients"], expected, "recipients of {loan}");
            }
        }
    }
    let mut expected: BTreeMap<(String, Uuid, u64), String> = [
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
    for lead in &book.leads {
        // Routed (or reported) on 12 Jan, untouched since: reported 3 days later.
        expected.insert(
            ("follow_up_overdue".into(), *lead, 0),
            "2026-01-15".to_owned(),
        );
    }
    assert_eq!(seen, expected, "each notification exactly when it should");
    let count = |kind: &str| by_kind.get(kind).map_or(0, Vec::len);
    assert_eq!(
        count("due_reminder") + count("follow_up_overdue"),
        expected.len(),
        "and exactly once"
    );

    check_lead_routing(&commits, &actions, &by_kind, book);
    check_risk_alerts(&by_kind, book);
    check_daily_reports(h, &by_kind).await;
    assert_eq!(
        by_kind.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "credit_score_drop",
            "daily_report",
            "due_reminder",
            "follow_up_overdue",
            "lead_unrouted",
            "risk_alert"
        ],
        "no other notification"
    );
}

/// Lead routing: o-a (capacity 1) and o-b (capacity 2) cover guangdong, o-b also
/// beijing. Leads 1 and 2 are decided first: 1 → o-a (both empty, ties by name), 2 → o-b
/// (o-a full). Leads 3 and 4 arrive before those assignments are sent: 3 → o-b (o-a full
/// counting the unsent assignment of lead 1; o-b 1 of 2 counting lead 2), 4 (beijing) →
/// nobody: o-b full, no default officer: one `lead_unrouted` to the default manager.
fn check_lead_routing(
    commits: &[loan_store::Commit],
    actions: &[(String, Option<Uuid>, NaiveDate, Option<String>)],
    by_kind: &BTreeMap<String, Vec<&serde_json::Value>>,
    book: &Book,
) {
    let assigned: Vec<(Uuid, String)> = commits
        .iter()
        .filter(|c| c.command == CommandKind::AssignOfficer)
        .filter(|c| c.events[0].actor.id == "svc:automation")
        .map(|c| {
            (
                c.aggregate.id,
                c.events[0].data["officer_id"]
                    .as_str()
                    .expect("officer")
                    .to_owned(),
            )
        })
        .collect();
    let leads = &book.leads;
    assert_eq!(
        assigned,
        [
            (leads[0], "o-a".to_owned()),
            (leads[1], "o-b".to_owned()),
            (leads[2], "o-b".to_owned()),
        ],
        "each lead assigned once, by workload"
    );
    let routing: Vec<(Option<Uuid>, NaiveDate, Option<String>)> = actions
        .iter()
        .filter(|(rule, ..)| rule == "lead_routing")
        .map(|(_, loan, day, outcome)| (*loan, *day, outcome.clone()))
        .collect();
    let day = date(LEADS_DAY);
    let ok = Some("ok".to_owned());
    assert_eq!(
        routing,
        [
            (Some(leads[0]), day, ok.clone()),
            (Some(leads[1]), day, ok.clone()),
            (Some(leads[2]), day, ok),
            (Some(leads[3]), day, Some("published".to_owned())),
        ]
    );
    let unrouted = by_kind.get("lead_unrouted").expect("one unrouted lead");
    assert_eq!(unrouted.len(), 1);
    assert_eq!(unrouted[0]["loan_id"], json!(leads[3]));
    assert_eq!(unrouted[0]["region"], "beijing");
    assert_eq!(unrouted[0]["recipients"], json!(["m-0"]));
    assert!(
        unrouted[0]["reason"]
            .as_str()
            .expect("reason")
            .contains("at capacity (open/capacity: o-b 2/2)"),
        "{}",
        unrouted[0]["reason"]
    );
}

/// Risk alerts: A, B and D are the book (one customer of guangdong, channel app, risk
/// grade low). 9 Feb: B and D more than 3 days past due, 2 of 3 = 0.6667 > 0.5: above;
/// 10 Feb: D paid, 1 of 3: recovered; 9 Mar: A's second installment, 2 of 3: above again.
/// The same for each segment. The watched customer's 55-point drop alerts once; the
/// 30-point drop does not.
fn check_risk_alerts(by_kind: &BTreeMap<String, Vec<&serde_json::Value>>, book: &Book) {
    let alerts: BTreeSet<(String, String, String, u64, u64, String)> = by_kind
        .get("risk_alert")
        .into_iter()
        .flatten()
        .map(|n| {
            (
                n["business_date"].as_str().expect("date").to_owned(),
                n["segment"].as_str().expect("segment").to_owned(),
                n["crossing"].as_str().expect("crossing").to_owned(),
                n["overdue_loans"].as_u64().expect("overdue"),
                n["active_loans"].as_u64().expect("active"),
                n["overdue_rate"].as_str().expect("rate").to_owned(),
            )
        })
        .collect();
    let mut expected = BTreeSet::new();
    for segment in [
        "portfolio",
        "region:guangdong",
        "channel:app",
        "risk_grade:low",
    ] {
        for (day, crossing, overdue, rate) in [
            ("2026-02-09", "above", 2, "0.6667"),
            ("2026-02-10", "recovered", 1, "0.3333"),
            ("2026-03-09", "above", 2, "0.6667"),
        ] {
            expected.insert((
                day.to_owned(),
                segment.to_owned(),
                crossing.to_owned(),
                overdue,
                3,
                rate.to_owned(),
            ));
        }
    }
    assert_eq!(alerts, expected, "one alert per crossing and segment");
    assert_eq!(by_kind["risk_alert"].len(), expected.len(), "each once");

    let drops = &by_kind["credit_score_drop"];
    assert_eq!(drops.len(), 1, "the 55-point drop only");
    assert_eq!(drops[0]["customer_id"], json!(book.watched));
    assert_eq!(
        (
            &drops[0]["previous_score"],
            &drops[0]["score"],
            &drops[0]["drop_points"]
        ),
        (&json!(735), &json!(680), &json!(55))
    );
    assert_eq!(drops[0]["business_date"], "2026-02-20");
}

/// Daily reports: one per business date from the first day the worker ran to the day
/// before the last, each published once and kept in the read model with the same
/// figures; the figures are the script's.
async fn check_daily_reports(h: &Harness, by_kind: &BTreeMap<String, Vec<&serde_json::Value>>) {
    let reports: BTreeMap<NaiveDate, &serde_json::Value> = by_kind["daily_report"]
        .iter()
        .map(|n| (date(n["business_date"].as_str().expect("date")), *n))
        .collect();
    let days: Vec<NaiveDate> = date(FIRST_DAY)
        .iter_days()
        .take_while(|d| *d < date(LAST_DAY))
        .collect();
    assert_eq!(
        reports.keys().copied().collect::<Vec<_>>(),
        days,
        "a report for every day that is over, missed days included"
    );
    assert_eq!(by_kind["daily_report"].len(), days.len(), "each once");
    let rows = h.daily_report_rows().await;
    assert_eq!(rows.len(), days.len(), "one read-model row per date");
    let installment_one: String = reports[&date("2026-02-05")]["repaid_amount"]
        .as_str()
        .expect("repaid")
        .to_owned();
    for row in &rows {
        let n = reports[&row.business_on];
        let day = row.business_on.to_string();
        // The read model holds what was published.
        assert_eq!(n["id"], json!(row.notification_id), "{day}");
        assert_eq!(n["new_leads"], json!(row.new_leads), "{day}");
        assert_eq!(n["approvals"], json!(row.approvals), "{day}");
        assert_eq!(n["newly_overdue"], json!(row.newly_overdue), "{day}");
        assert_eq!(n["active_loans"], json!(row.active_loans), "{day}");
        let exact = |value: &serde_json::Value| {
            value
                .as_str()
                .expect("a decimal string")
                .parse::<rust_decimal::Decimal>()
                .expect("decimal")
        };
        assert_eq!(exact(&n["disbursed_amount"]), row.disbursed_amount, "{day}");
        assert_eq!(exact(&n["repaid_amount"]), row.repaid_amount, "{day}");
        assert_eq!(exact(&n["par30_principal"]), row.par30_principal, "{day}");
        assert_eq!(
            exact(&n["outstanding_principal"]),
            row.outstanding_principal,
            "{day}"
        );
        assert_eq!(exact(&n["par30"]), row.par30, "{day}");
        // The script's figures.
        let (leads, approvals, disbursed, repaid, overdue) = match day.as_str() {
            "2026-01-05" => (4, 3, "36000.00", "0.00", 0),
            "2026-01-12" => (4, 0, "0.00", "0.00", 0),
            "2026-02-05" => (0, 0, "0.00", installment_one.as_str(), 0),
            "2026-02-09" => (0, 0, "0.00", "0.00", 2),
            "2026-02-10" => (0, 0, "0.00", "3000.00", 0),
            "2026-03-09" => (0, 0, "0.00", "0.00", 1),
            _ => (0, 0, "0.00", "0.00", 0),
        };
        let amount = |text: &str| text.parse::<rust_decimal::Decimal>().expect("decimal");
        assert_eq!(
            (
                row.new_leads,
                row.approvals,
                row.disbursed_amount,
                row.repaid_amount,
                row.newly_overdue,
                row.active_loans
            ),
            (
                leads,
                approvals,
                amount(disbursed),
                amount(repaid),
                overdue,
                3
            ),
            "{day}"
        );
        // PAR30: nothing at risk until B (never paid, due 5 Feb) is 31 days past due on
        // 8 Mar; then B's whole principal, over the book's outstanding principal.
        if row.business_on < date("2026-03-08") {
            assert!(row.par30_principal.is_zero(), "{day}");
            assert!(row.par30.is_zero(), "{day}");
        } else {
            assert_eq!(row.par30_principal, amount("12000.00"), "{day}");
            let expected = (row.par30_principal / row.outstanding_principal)
                .round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
            assert_eq!(row.par30, expected, "{day}");
        }
        if row.business_on < date("2026-02-05") {
            assert_eq!(row.outstanding_principal, amount("36000.00"), "{day}");
        }
    }
    assert_ne!(
        installment_one, "0.00",
        "A's first installment repaid on 5 Feb"
    );
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
        ("2026-01-12", Step::CrashBeforeSending), // lead routing: assignments decided, unsent
        ("2026-02-20", Step::CrashBeforeSending), // the credit score drop (with the progress)
        ("2026-02-02", Step::CrashAfterOneSend),  // three reminders
        ("2026-02-07", Step::CrashBeforeMarking), // two cases opened, the openings sent twice
        ("2026-02-09", Step::CrashBeforeMarking), // the first sweep of B and D, the risk alerts
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
        duplicates, 6,
        "re-published after a crash and dropped by the stream: the four risk alerts of 9 Feb and the two reminders of 2 Mar"
    );
    check(&h, &book).await;
    h.finish().await;
}
