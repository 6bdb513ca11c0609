//! What each kind of user looks at, printed for people: the tables `loan demo` shows
//! after its book has run (a customer's 360, the segments, the delinquency report with
//! PAR, the roll-rate matrix, the pipeline funnel).
//!
//! Only formatting lives here: every figure comes from the analysts' reports
//! (loan-query-api), the same ones the HTTP API serves, so the demo shows exactly what an
//! analyst would get.

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use loan_demo::Summary;
use loan_query_api::reports::customer_360::Customer360;
use loan_query_api::reports::delinquency::{BucketFigures, ParFigures};
use loan_query_api::reports::pipeline::FunnelFigures;
use loan_query_api::reports::roll_rate::RollRateCell;
use loan_query_api::reports::segmentation::SegmentFigures;
use rust_decimal::Decimal;

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    table
}

/// Right-aligns every column from `first` on (the figures).
fn align_figures(table: &mut Table, first: usize) {
    let columns = table.column_count();
    for index in first..columns {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// `12345678.9` → `12,345,678.90`.
pub(crate) fn money(amount: Decimal) -> String {
    let text = format!("{:.2}", amount.round_dp(2));
    let (sign, digits) = text
        .strip_prefix('-')
        .map_or(("", text.as_str()), |rest| ("-", rest));
    let (whole, cents) = digits.split_once('.').unwrap_or((digits, "00"));
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{sign}{grouped}.{cents}")
}

/// A ratio as a percentage with two decimals (`0.0345` → `3.45%`); `—` when undefined.
pub(crate) fn percent(ratio: Option<Decimal>) -> String {
    ratio.map_or_else(
        || "—".to_owned(),
        |ratio| format!("{:.2}%", (ratio * Decimal::ONE_HUNDRED).round_dp(2)),
    )
}

/// The book the simulation played.
pub(crate) fn book(summary: &Summary) -> String {
    let mut table = table(&["the book", "count", ""]);
    let rows: [(&str, u64, String); 12] = [
        ("customers onboarded", summary.customers, String::new()),
        ("applications", summary.applications, String::new()),
        (
            "approved by the policy",
            summary.approved_automatically,
            String::new(),
        ),
        (
            "referred to an underwriter",
            summary.referred,
            format!("{} approved", summary.approved_manually),
        ),
        ("rejected", summary.rejected, String::new()),
        ("withdrawn", summary.withdrawn, String::new()),
        (
            "disbursed",
            summary.disbursed_loans,
            money(summary.disbursed.amount()),
        ),
        (
            "repayments",
            summary.repayments,
            format!(
                "{} · late {} · partial {} · backdated {} · reversed {}",
                money(summary.repaid.amount()),
                summary.late_payments,
                summary.partial_payments,
                summary.backdated_payments,
                summary.reversed_payments
            ),
        ),
        (
            "delinquency evaluations",
            summary.evaluations,
            String::new(),
        ),
        ("cured after going overdue", summary.cured, String::new()),
        (
            "paid off / written off",
            summary.paid_off,
            format!("{} written off", summary.written_off),
        ),
        ("customers erased", summary.erased, String::new()),
    ];
    for (what, count, note) in rows {
        table.add_row(vec![what.to_owned(), count.to_string(), note]);
    }
    align_figures(&mut table, 1);
    table.to_string()
}

/// One customer as the customer-service desk sees them.
pub(crate) fn customer_360(view: &Customer360) -> String {
    let p = &view.profile;
    let mut out = String::new();
    let mut profile = table(&["customer", &p.customer_id.to_string()]);
    let score = p.credit_score.map_or_else(
        || "none".to_owned(),
        |score| {
            format!(
                "{score} ({}, {})",
                p.credit_score_source.as_deref().unwrap_or("?"),
                p.credit_assessed_on
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            )
        },
    );
    for (field, value) in [
        ("name", p.name.clone()),
        ("region · channel", format!("{} · {}", p.region, p.channel)),
        (
            "phone · national id · card",
            format!(
                "{} · {} · {}",
                p.phone_masked, p.national_id_masked, p.bank_card_masked
            ),
        ),
        (
            "income · debts / month",
            format!(
                "{} · {}",
                money(p.monthly_income),
                money(p.monthly_debt_payments)
            ),
        ),
        ("credit score", score),
        (
            "risk grade · value tier",
            format!(
                "{} · {}",
                p.risk_grade.as_deref().unwrap_or("?"),
                p.value_tier.as_deref().unwrap_or("?")
            ),
        ),
        (
            "score history",
            view.credit_scores
                .iter()
                .map(|s| format!("{} {}", s.assessed_on, s.score))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ] {
        profile.add_row(vec![field.to_owned(), value]);
    }
    out.push_str(&profile.to_string());
    out.push('\n');
    let mut loans = table(&[
        "loan",
        "status",
        "principal",
        "outstanding",
        "repaid",
        "next due",
        "dpd",
        "bucket",
    ]);
    for loan in &view.loans {
        loans.add_row(vec![
            loan.loan_id.to_string()[..8].to_owned(),
            loan.status.clone(),
            loan.principal.map(money).unwrap_or_default(),
            money(
                loan.outstanding_principal + loan.outstanding_interest + loan.outstanding_penalty,
            ),
            money(loan.total_repaid),
            match (loan.next_due_date, loan.next_due_amount) {
                (Some(date), Some(amount)) => format!("{date} {}", money(amount)),
                _ => String::new(),
            },
            loan.days_past_due
                .map(|d| d.to_string())
                .unwrap_or_default(),
            loan.aging_bucket.clone().unwrap_or_default(),
        ]);
    }
    align_figures(&mut loans, 2);
    out.push_str(&loans.to_string());
    out.push('\n');
    let mut timeline = table(&["date", "event", "by", "what"]);
    for entry in &view.timeline {
        timeline.add_row(vec![
            entry.business_date.map_or_else(
                || entry.recorded_at.date_naive().to_string(),
                |d| d.to_string(),
            ),
            entry.event_type.clone(),
            entry.actor_id.clone(),
            entry.summary.clone(),
        ]);
    }
    out.push_str(&timeline.to_string());
    out
}

/// The segments marketing and risk managers slice the portfolio by.
pub(crate) fn segments(rows: &[SegmentFigures]) -> String {
    let mut table = table(&[
        "dimension",
        "segment",
        "customers",
        "active loans",
        "outstanding",
        "overdue loans",
        "overdue rate",
    ]);
    for row in rows {
        table.add_row(vec![
            row.dimension.clone(),
            row.value.clone(),
            row.customers.to_string(),
            row.active_loans.to_string(),
            money(row.outstanding_balance),
            row.overdue_loans.to_string(),
            percent(row.overdue_rate),
        ]);
    }
    align_figures(&mut table, 2);
    table.to_string()
}

/// The delinquency report: aging buckets, then PAR.
pub(crate) fn delinquency(buckets: &[BucketFigures], par: &[ParFigures]) -> String {
    let mut by_bucket = table(&[
        "aging bucket",
        "loans",
        "outstanding principal",
        "overdue amount",
    ]);
    for row in buckets {
        by_bucket.add_row(vec![
            row.aging_bucket.clone(),
            row.loans.to_string(),
            money(row.outstanding_principal),
            money(row.overdue_amount),
        ]);
    }
    align_figures(&mut by_bucket, 1);
    let mut at_risk = table(&["group", "loans", "outstanding", "PAR1", "PAR30", "PAR90"]);
    for row in par {
        at_risk.add_row(vec![
            row.group_key.clone().unwrap_or_else(|| "(none)".to_owned()),
            row.loans.to_string(),
            money(row.outstanding_principal),
            percent(Some(row.par1)),
            percent(Some(row.par30)),
            percent(Some(row.par90)),
        ]);
    }
    align_figures(&mut at_risk, 1);
    format!("{by_bucket}\n{at_risk}")
}

/// Roll rates between two dates as a matrix: from-bucket rows, to-state columns, each
/// cell the share of the row's outstanding principal.
pub(crate) fn roll_rates(cells: &[RollRateCell]) -> String {
    let mut columns: Vec<&str> = Vec::new();
    let mut rows: Vec<&str> = Vec::new();
    for cell in cells {
        if !columns.contains(&cell.to_state.as_str()) {
            columns.push(&cell.to_state);
        }
        if !rows.contains(&cell.from_bucket.as_str()) {
            rows.push(&cell.from_bucket);
        }
    }
    let mut header = vec!["from \\ to"];
    header.extend(columns.iter().copied());
    let mut table = table(&header);
    for from in rows {
        let mut line = vec![from.to_owned()];
        for to in &columns {
            let cell = cells
                .iter()
                .find(|cell| cell.from_bucket == from && cell.to_state == *to);
            line.push(cell.map_or_else(String::new, |cell| {
                if cell.loans == 0 {
                    "·".to_owned()
                } else {
                    format!("{} ({})", percent(cell.share), cell.loans)
                }
            }));
        }
        table.add_row(line);
    }
    align_figures(&mut table, 1);
    table.to_string()
}

/// The sales funnel: lead → review → signed → disbursed, with conversion.
pub(crate) fn funnel(rows: &[FunnelFigures]) -> String {
    let mut table = table(&[
        "group",
        "leads",
        "reviewed",
        "signed",
        "disbursed",
        "lead→review",
        "review→signed",
        "signed→disbursed",
        "lead→disbursed",
    ]);
    for row in rows {
        table.add_row(vec![
            row.group_key.clone().unwrap_or_else(|| "(none)".to_owned()),
            row.leads.to_string(),
            row.reviewed.to_string(),
            row.signed.to_string(),
            row.disbursed.to_string(),
            percent(row.lead_to_review),
            percent(row.review_to_signed),
            percent(row.signed_to_disbursed),
            percent(row.lead_to_disbursed),
        ]);
    }
    align_figures(&mut table, 1);
    table.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_grouped_by_thousands_with_cents() {
        assert_eq!(money(Decimal::new(123_456_789, 1)), "12,345,678.90");
        assert_eq!(money(Decimal::new(-5, 0)), "-5.00");
        assert_eq!(money(Decimal::new(999, 0)), "999.00");
        assert_eq!(money(Decimal::new(1000, 0)), "1,000.00");
    }

    #[test]
    fn ratios_print_as_percentages() {
        assert_eq!(percent(Some(Decimal::new(345, 4))), "3.45%");
        assert_eq!(percent(None), "—");
    }
}
