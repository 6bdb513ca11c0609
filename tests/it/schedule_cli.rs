//! `loan schedule`, run as a loan officer runs it: the figures it prints, its help, and how it
//! refuses bad input (exit code 2 and a message naming what to fix).

use std::process::{Command, Output};

use loan_domain::money::{Money, Rate};
use loan_domain::schedule::{RepaymentMethod, ScheduleTerms, build_schedule};
use serde_json::Value;

/// Environment variables `loan schedule` reads; cleared so the caller's shell cannot change a test.
const LOAN_ENV: [&str; 6] = [
    "LOAN_PRINCIPAL",
    "LOAN_ANNUAL_RATE",
    "LOAN_MONTHS",
    "LOAN_METHOD",
    "LOAN_FIRST_DUE_DATE",
    "LOAN_JSON",
];

fn loan_command() -> Command {
    let mut command = Command::new(tests::loan_binary());
    for var in LOAN_ENV {
        command.env_remove(var);
    }
    command
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

fn loan(args: &[&str]) -> Output {
    run(loan_command().args(args))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output) {
    assert_eq!(
        output.status.code(),
        Some(0),
        "expected success; stderr:\n{}",
        stderr(output)
    );
}

fn schedule_args<'a>(
    principal: &'a str,
    rate: &'a str,
    months: &'a str,
    method: &'a str,
) -> Vec<&'a str> {
    vec![
        "schedule",
        "--principal",
        principal,
        "--annual-rate",
        rate,
        "--months",
        months,
        "--method",
        method,
        "--first-due-date",
        "2026-01-31",
    ]
}

fn schedule_json(principal: &str, rate: &str, months: &str, method: &str) -> Value {
    let mut args = schedule_args(principal, rate, months, method);
    args.push("--json");
    let output = loan(&args);
    assert_success(&output);
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}):\n{}", stdout(&output)))
}

fn installments(json: &Value) -> &Vec<Value> {
    json["installments"]
        .as_array()
        .unwrap_or_else(|| panic!("no installments array in {json}"))
}

/// The `field` of every installment, as the strings the JSON carries.
fn column<'a>(json: &'a Value, field: &str) -> Vec<&'a str> {
    installments(json)
        .iter()
        .map(|i| {
            i[field]
                .as_str()
                .unwrap_or_else(|| panic!("{field} is not a string in {i}"))
        })
        .collect()
}

fn money(text: &str) -> Money {
    Money::parse(text).unwrap_or_else(|e| panic!("test amount {text:?}: {e}"))
}

fn sum(amounts: &[&str]) -> Money {
    Money::sum(amounts.iter().map(|a| money(a))).unwrap_or_else(|e| panic!("sum: {e}"))
}

#[test]
fn equal_installment_json_has_the_hand_checked_figures() {
    let json = schedule_json("12000", "0.12", "12", "equal-installment");

    assert_eq!(installments(&json).len(), 12);
    let first = &installments(&json)[0];
    assert_eq!(first["number"], 1);
    assert_eq!(first["total"], "1066.19");
    assert_eq!(first["interest"], "120.00");
    assert_eq!(first["principal"], "946.19");
    assert_eq!(first["remaining_principal"], "11053.81");
    assert_eq!(
        column(&json, "due_date")[..3],
        ["2026-01-31", "2026-02-28", "2026-03-31"],
        "due dates keep the first due date's day, clamped to the month's end"
    );
    assert_eq!(sum(&column(&json, "principal")).to_string(), "12000.00");
    assert_eq!(column(&json, "remaining_principal").last(), Some(&"0.00"));

    assert_eq!(json["totals"]["principal"], "12000.00");
    let interest = sum(&column(&json, "interest"));
    assert_eq!(json["totals"]["interest"], interest.to_string().as_str());
    assert_eq!(
        json["totals"]["total"],
        sum(&column(&json, "total")).to_string().as_str()
    );

    assert_eq!(json["terms"]["principal"], "12000.00");
    assert_eq!(json["terms"]["annual_rate"], "0.12");
    assert_eq!(json["terms"]["term_months"], 12);
    assert_eq!(json["terms"]["method"], "equal_installment");
    assert_eq!(json["terms"]["first_due_date"], "2026-01-31");
}

#[test]
fn equal_principal_json_repays_the_same_principal_with_falling_interest() {
    let json = schedule_json("12000", "0.12", "12", "equal-principal");

    assert!(column(&json, "principal").iter().all(|p| *p == "1000.00"));
    assert_eq!(
        column(&json, "interest"),
        [
            "120.00", "110.00", "100.00", "90.00", "80.00", "70.00", "60.00", "50.00", "40.00",
            "30.00", "20.00", "10.00"
        ]
    );
    assert_eq!(column(&json, "total")[0], "1120.00");
    assert_eq!(json["totals"]["interest"], "780.00");
}

#[test]
fn json_is_what_the_domain_computes() {
    let json = schedule_json("101.50", "0.36", "2", "equal-installment");
    let terms = ScheduleTerms {
        principal: money("101.50"),
        annual_rate: Rate::parse("0.36").unwrap_or_else(|e| panic!("{e}")),
        term_months: 2,
        method: RepaymentMethod::EqualInstallment,
        first_due_date: "2026-01-31".parse().unwrap_or_else(|e| panic!("{e}")),
    };
    let expected = build_schedule(&terms).unwrap_or_else(|e| panic!("{e}"));

    let terms_json = serde_json::to_value(&terms).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json["terms"], terms_json);
    assert_eq!(installments(&json).len(), expected.installments.len());
    for (printed, computed) in installments(&json).iter().zip(&expected.installments) {
        assert_eq!(printed["number"], computed.number);
        assert_eq!(printed["due_date"], computed.due_date.to_string().as_str());
        assert_eq!(
            printed["principal"],
            computed.principal.to_string().as_str()
        );
        assert_eq!(printed["interest"], computed.interest.to_string().as_str());
        assert_eq!(printed["total"], computed.total().to_string().as_str());
    }
    // The exact payment is 53.045: half-up gives 53.05.
    assert_eq!(installments(&json)[0]["total"], "53.05");
}

#[test]
fn table_has_a_summary_the_columns_and_a_totals_row() {
    let output = loan(&schedule_args("12000", "0.12", "12", "equal-installment"));
    assert_success(&output);
    let table = stdout(&output);

    let summary = table.lines().next().unwrap_or_default();
    for part in [
        "Equal installment",
        "12000.00",
        "12%",
        "12 monthly installments",
        "2026-01-31",
    ] {
        assert!(summary.contains(part), "summary {summary:?} lacks {part:?}");
    }
    for header in [
        "#",
        "due date",
        "installment",
        "principal",
        "interest",
        "remaining principal",
    ] {
        assert!(table.contains(header), "no column {header:?} in:\n{table}");
    }
    for cell in ["2026-02-28", "1066.19", "946.19", "120.00", "11053.81"] {
        assert!(table.contains(cell), "no {cell:?} in:\n{table}");
    }
    let totals = table
        .lines()
        .find(|line| line.contains("total") && !line.contains("installment"))
        .unwrap_or_else(|| panic!("no totals row in:\n{table}"));
    for cell in ["12794.23", "12000.00", "794.23"] {
        assert!(
            totals.contains(cell),
            "totals row {totals:?} lacks {cell:?}"
        );
    }
}

#[test]
fn every_flag_can_come_from_the_environment() {
    let output = run(loan_command()
        .arg("schedule")
        .env("LOAN_PRINCIPAL", "12000")
        .env("LOAN_ANNUAL_RATE", "0.12")
        .env("LOAN_MONTHS", "12")
        .env("LOAN_METHOD", "equal-principal")
        .env("LOAN_FIRST_DUE_DATE", "2026-01-31")
        .env("LOAN_JSON", "true"));
    assert_success(&output);
    let json: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", stdout(&output)));
    assert_eq!(json["terms"]["method"], "equal_principal");
    assert_eq!(installments(&json)[0]["principal"], "1000.00");
}

#[test]
fn an_invalid_rate_exits_2_naming_the_flag() {
    let output = loan(&schedule_args("12000", "abc", "12", "equal-installment"));
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("--annual-rate"), "{message}");
    assert!(message.contains("abc"), "{message}");
    assert!(output.stdout.is_empty());
}

#[test]
fn invalid_arguments_exit_2() {
    let cases: [(&str, [&str; 4]); 6] = [
        (
            "--principal",
            ["12000.001", "0.12", "12", "equal-installment"],
        ),
        ("--principal", ["0", "0.12", "12", "equal-installment"]),
        ("--annual-rate", ["12000", "11", "12", "equal-installment"]),
        ("--months", ["12000", "0.12", "0", "equal-installment"]),
        ("--months", ["12000", "0.12", "361", "equal-installment"]),
        ("--method", ["12000", "0.12", "12", "annuity"]),
    ];
    for (flag, [principal, rate, months, method]) in cases {
        let output = loan(&schedule_args(principal, rate, months, method));
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{flag}: {message}");
        assert!(message.contains(flag), "{flag}: {message}");
    }
    let output = loan(&["schedule", "--principal", "12000"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "missing flags: {}",
        stderr(&output)
    );
}

#[test]
fn a_degenerate_schedule_exits_2_with_an_error_line() {
    let output = loan(&schedule_args("100", "0", "360", "equal-principal"));
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.starts_with("error: "), "{message}");
    assert!(
        message.contains("no repayment schedule is possible"),
        "{message}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn help_explains_both_methods() {
    let top = loan(&["--help"]);
    assert_success(&top);
    let top_help = stdout(&top);
    for word in ["schedule", "等额本息", "等额本金"] {
        assert!(
            top_help.contains(word),
            "`loan --help` lacks {word:?}:\n{top_help}"
        );
    }

    let schedule = loan(&["schedule", "--help"]);
    assert_success(&schedule);
    let help = stdout(&schedule);
    for word in [
        "equal-installment",
        "equal-principal",
        "等额本息",
        "等额本金",
        "half-up",
        "last installment",
        "last day",
        "LOAN_PRINCIPAL",
        "Examples:",
    ] {
        assert!(
            help.contains(word),
            "`loan schedule --help` lacks {word:?}:\n{help}"
        );
    }
}
