//! `loan schedule`: the repayment schedule calculator on its own, for loan officers.
//!
//! Before a loan exists, an officer quoting terms to a customer needs the installments those
//! terms give: what is due each month, on which day, and how much of it is interest. This
//! command builds the schedule with the same code the engine uses when a loan is disbursed
//! ([`loan_domain::schedule::build_schedule`]), so a quote and the loan's real schedule agree to
//! the cent, and prints it as a table or, with `--json`, for other programs.

use std::io::{self, Write};

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use comfy_table::{CellAlignment, Table, presets};
use loan_domain::money::{Money, Rate};
use loan_domain::schedule::{
    MAX_TERM_MONTHS, RepaymentMethod, Schedule, ScheduleTerms, build_schedule,
};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::failure::InvalidInput;

const LONG_ABOUT: &str = "\
Print the repayment schedule of a loan: every monthly installment with its due date, the
principal and the interest it pays, and the principal still owed after it.

Methods (--method):
  equal-installment  等额本息 (equal installment): every installment has the same total,
                     the annuity payment. Early installments are mostly interest; the
                     principal part grows as the balance falls.
  equal-principal    等额本金 (equal principal): every installment repays the same
                     principal (principal / months); interest is charged on the falling
                     balance, so the installments shrink month by month.

Interest: each month accrues one month of interest at the annual rate / 12, whatever the
length of the month, on the principal still owed before that installment.

Rounding: every amount is computed exactly and rounded once, half-up to 0.01 (0.005 becomes
0.01). The last installment repays whatever principal is left, so it absorbs the rounding and
may differ from the others by a few cents; the principal column always sums to the principal
lent. Terms for which whole cents leave no sensible schedule (a tiny principal over a long
term, say) are refused.

Due dates: installment k is due k - 1 months after --first-due-date, on the same day of the
month, counted from the first due date each time. In a month without that day it falls on
the month's last day: 2026-01-31, 2026-02-28, 2026-03-31, 2026-04-30, ...";

const AFTER_LONG_HELP: &str = "\
Examples:
  loan schedule --principal 12000 --annual-rate 0.12 --months 12 \\
      --method equal-installment --first-due-date 2026-01-15
  LOAN_METHOD=equal-principal loan schedule --principal 12000 --annual-rate 0.12 \\
      --months 12 --first-due-date 2026-01-15 --json

Exit status: 0 when the schedule is printed; 2 for invalid arguments or refused terms.";

/// Arguments of `loan schedule`. Each flag can also be set by the environment variable named
/// in its `env`, for scripts that quote many terms.
#[derive(Debug, Args)]
#[command(
    about = "Print the repayment schedule of a loan: equal installment (等额本息) or equal principal (等额本金)",
    long_about = LONG_ABOUT,
    after_long_help = AFTER_LONG_HELP
)]
pub(crate) struct ScheduleArgs {
    /// The amount lent, in currency units with at most two decimals, e.g. 12000 or 12000.50.
    #[arg(long, env = "LOAN_PRINCIPAL", value_name = "AMOUNT", value_parser = parse_principal)]
    principal: Money,

    /// The nominal annual interest rate as a fraction: 0.12 for 12% a year (at most 8 decimals).
    #[arg(long, env = "LOAN_ANNUAL_RATE", value_name = "RATE", value_parser = parse_rate)]
    annual_rate: Rate,

    /// Number of monthly installments, 1 to 360.
    #[arg(
        long,
        env = "LOAN_MONTHS",
        value_name = "MONTHS",
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_TERM_MONTHS))
    )]
    months: u32,

    /// How the principal is spread over the installments.
    #[arg(long, env = "LOAN_METHOD", value_enum)]
    method: Method,

    /// Due date of the first installment (YYYY-MM-DD); later ones fall on the same day of
    /// later months, or on the month's last day when it is shorter.
    #[arg(long, env = "LOAN_FIRST_DUE_DATE", value_name = "DATE", value_parser = parse_date)]
    first_due_date: NaiveDate,

    /// Print one JSON object (terms, installments, totals; amounts as strings) instead of a table.
    #[arg(
        long,
        env = "LOAN_JSON",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    json: bool,
}

/// The repayment methods, as spelled on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Method {
    /// 等额本息: the same total every month.
    EqualInstallment,
    /// 等额本金: the same principal every month, falling interest.
    EqualPrincipal,
}

impl From<Method> for RepaymentMethod {
    fn from(method: Method) -> Self {
        match method {
            Method::EqualInstallment => RepaymentMethod::EqualInstallment,
            Method::EqualPrincipal => RepaymentMethod::EqualPrincipal,
        }
    }
}

fn parse_principal(text: &str) -> Result<Money, String> {
    let amount = Money::parse(text).map_err(|e| e.to_string())?;
    if amount.is_positive() {
        Ok(amount)
    } else {
        Err("the principal must be greater than zero".to_owned())
    }
}

fn parse_rate(text: &str) -> Result<Rate, String> {
    Rate::parse(text)
        .map_err(|e| format!("{e} (give the annual rate as a fraction: 0.12 for 12% a year)"))
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|e| format!("not a valid date ({e}); expected YYYY-MM-DD, e.g. 2026-01-15"))
}

/// Runs `loan schedule`: builds the schedule and prints it to stdout.
pub(crate) fn run(args: &ScheduleArgs) -> anyhow::Result<()> {
    let terms = ScheduleTerms {
        principal: args.principal,
        annual_rate: args.annual_rate,
        term_months: args.months,
        method: args.method.into(),
        first_due_date: args.first_due_date,
    };
    let schedule = build_schedule(&terms).map_err(|e| InvalidInput(e.to_string()))?;
    let report = Report::new(&terms, &schedule)?;
    let text = if args.json {
        report.json()?
    } else {
        report.table()
    };
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("could not write the schedule to stdout")
}

/// A schedule as printed: the terms, every installment with what remains owed after it, and
/// the totals. The JSON output is this, serialised.
#[derive(Debug, Serialize)]
struct Report<'a> {
    terms: &'a ScheduleTerms,
    installments: Vec<Row>,
    totals: Totals,
}

#[derive(Debug, Serialize)]
struct Row {
    number: u32,
    due_date: NaiveDate,
    principal: Money,
    interest: Money,
    total: Money,
    remaining_principal: Money,
}

#[derive(Debug, Serialize)]
struct Totals {
    principal: Money,
    interest: Money,
    total: Money,
}

impl<'a> Report<'a> {
    fn new(terms: &'a ScheduleTerms, schedule: &Schedule) -> anyhow::Result<Self> {
        let mut remaining = terms.principal;
        let mut installments = Vec::with_capacity(schedule.installments.len());
        for installment in &schedule.installments {
            remaining = remaining
                .checked_sub(installment.principal)
                .context("the remaining principal is too large to compute")?;
            installments.push(Row {
                number: installment.number,
                due_date: installment.due_date,
                principal: installment.principal,
                interest: installment.interest,
                total: installment.total(),
                remaining_principal: remaining,
            });
        }
        Ok(Report {
            terms,
            installments,
            totals: Totals {
                principal: schedule.total_principal(),
                interest: schedule.total_interest(),
                total: schedule.total(),
            },
        })
    }

    fn json(&self) -> anyhow::Result<String> {
        let mut text = serde_json::to_string_pretty(self).context("could not encode the JSON")?;
        text.push('\n');
        Ok(text)
    }

    /// A line summarising the terms, then the installments and a totals row.
    fn table(&self) -> String {
        let terms = self.terms;
        let method = match terms.method {
            RepaymentMethod::EqualInstallment => "Equal installment (等额本息)",
            RepaymentMethod::EqualPrincipal => "Equal principal (等额本金)",
        };
        let percent = terms
            .annual_rate
            .value()
            .checked_mul(Decimal::ONE_HUNDRED)
            .map_or_else(
                || terms.annual_rate.to_string(),
                |p| p.normalize().to_string(),
            );
        let installments = match terms.term_months {
            1 => "1 monthly installment".to_owned(),
            n => format!("{n} monthly installments"),
        };
        let header = format!(
            "{method}: principal {}, annual rate {percent}% ({} a month), {installments}, first due {}",
            terms.principal,
            monthly_rate_text(terms.annual_rate),
            terms.first_due_date,
        );

        let mut table = Table::new();
        table.load_preset(presets::UTF8_FULL_CONDENSED).set_header([
            "#",
            "due date",
            "installment",
            "principal",
            "interest",
            "remaining principal",
        ]);
        for row in &self.installments {
            table.add_row([
                row.number.to_string(),
                row.due_date.to_string(),
                row.total.to_string(),
                row.principal.to_string(),
                row.interest.to_string(),
                row.remaining_principal.to_string(),
            ]);
        }
        table.add_row([
            "total".to_owned(),
            String::new(),
            self.totals.total.to_string(),
            self.totals.principal.to_string(),
            self.totals.interest.to_string(),
            String::new(),
        ]);
        for index in [0, 2, 3, 4, 5] {
            if let Some(column) = table.column_mut(index) {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        format!("{header}\n{table}\n")
    }
}

/// The annual rate / 12 as a percentage, for reading only: exact when it has at most four
/// decimals, otherwise shown to four decimals with a `≈`. The schedule never uses this figure.
fn monthly_rate_text(annual: Rate) -> String {
    let monthly = annual
        .value()
        .checked_mul(Decimal::ONE_HUNDRED)
        .and_then(|p| p.checked_div(Decimal::from(12)));
    match monthly {
        Some(m) if m.round_dp(4) == m => format!("{}%", m.normalize()),
        Some(m) => format!("≈{}%", m.round_dp(4).normalize()),
        None => "annual rate / 12".to_owned(),
    }
}
