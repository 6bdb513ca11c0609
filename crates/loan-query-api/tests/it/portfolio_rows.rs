//! A portfolio written directly as read-model ROWS (not through the projectors), inserted
//! identically into a throwaway PostgreSQL database (the projector's migrations) and a
//! throwaway SQLite file (`crates/loan-projection/migrations-sqlite`), so every report can
//! be compared across the two databases.
//!
//! Hand-made loans cover the edges (report date [`report_date`] = 2025-06-30):
//!
//! | loan | customer | channel | officer | state at 2025-06-30 |
//! |---|---|---|---|---|
//! | `current` | Ana | app | off-1 | installments paid on time: current |
//! | `dpd[d]` for d in 1, 2, 30, 31, 60, 61, 90, 91 | Ana / Bo / Cy | app, branch | off-1, off-2, none | one installment of 1000.00 + 10.00 due `2025-06-30 − d`, unpaid |
//! | `partial` | Bo | branch | off-2 | 400.00 of 1000.00 + 10.00 paid on 06-10 for the 06-05 due: 25 days, overdue 610.00 |
//! | `backdated` | Ana | app | off-1 | 06-05 due paid with value date 06-08 (recorded 06-20): 2 days at 06-07, current at 06-30 |
//! | `reversed` | Cy (erased) | app | none | its 05-15 payment was reversed (no allocation, reversed_count 1): 46 days |
//! | `written_off` | Cy (erased) | branch | off-2 | unpaid since 03-01, written off 06-01 |
//! | `paid_off` | Bo | app | off-1 | repaid 05-31: off book |
//! | `tiny`, `large` | Dee | broker:zeta | off-3 | 1.00 outstanding 45 days past due, 19999.00 current: PAR1 of broker:zeta = 1/20000 = 0.00005 → 0.0001 (half away from zero) |
//!
//! plus a generated book (fixed seed) of loans with on-time, late, partial and missing
//! payments over 2024-10 … 2025-07, write-offs, leads that never disbursed, and channels
//! and regions whose byte order differs from a case-insensitive one (`Web`, `Östra`).

use std::fmt::Write as _;
use std::path::PathBuf;

use chrono::{Days, Months, NaiveDate};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

use crate::support::date;

/// The main report date of the hand-made loans.
pub(crate) fn report_date() -> NaiveDate {
    date("2025-06-30")
}

/// A value of one column.
#[derive(Debug, Clone)]
enum Cell {
    Text(String),
    Int(i64),
    Bool(bool),
    Null,
}

impl Cell {
    fn literal(&self, sqlite: bool) -> String {
        match self {
            Cell::Text(text) => format!("'{}'", text.replace('\'', "''")),
            Cell::Int(value) => value.to_string(),
            Cell::Bool(value) if sqlite => u8::from(*value).to_string(),
            Cell::Bool(value) => value.to_string(),
            Cell::Null => "NULL".to_string(),
        }
    }
}

fn text(value: impl ToString) -> Cell {
    Cell::Text(value.to_string())
}

fn opt(value: Option<impl ToString>) -> Cell {
    value.map_or(Cell::Null, text)
}

/// Money as the projector writes it: the exact decimal with two places.
fn amount(value: Decimal) -> Cell {
    let mut value = value;
    value.rescale(2);
    Cell::Text(value.to_string())
}

struct Row {
    table: &'static str,
    cells: Vec<(&'static str, Cell)>,
}

/// The rows of the portfolio, and the ids the tests refer to.
pub(crate) struct PortfolioRows {
    rows: Vec<Row>,
    pub(crate) ana: Uuid,
    pub(crate) bo: Uuid,
    pub(crate) cy: Uuid,
    pub(crate) dee: Uuid,
    pub(crate) customers: Vec<Uuid>,
    /// The `dpd[d]` loans by d.
    pub(crate) dpd: Vec<(i64, Uuid)>,
    pub(crate) partial: Uuid,
    pub(crate) backdated: Uuid,
    pub(crate) reversed: Uuid,
    pub(crate) written_off: Uuid,
    pub(crate) paid_off: Uuid,
    pub(crate) tiny: Uuid,
    pub(crate) large: Uuid,
    pub(crate) current: Uuid,
}

/// Deterministic ids whose order is not the order of creation.
fn id(n: u128) -> Uuid {
    Uuid::from_u128(n.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) ^ 0x0197)
}

/// A small deterministic generator (xorshift64*).
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[usize::try_from(self.below(items.len() as u64)).unwrap()]
    }
}

struct CustomerSpec<'a> {
    name: &'a str,
    region: &'a str,
    channel: &'a str,
    appetite: &'a str,
    grade: &'a str,
    tier: &'a str,
    erased: bool,
}

struct LoanSpec<'a> {
    customer: Uuid,
    channel: &'a str,
    purpose: &'a str,
    officer: Option<&'a str>,
    status: &'a str,
    captured_on: NaiveDate,
    submitted_on: Option<NaiveDate>,
    signed_on: Option<NaiveDate>,
    disbursed_on: Option<NaiveDate>,
    written_off_on: Option<NaiveDate>,
    principal: Option<Decimal>,
    reversed_count: i64,
}

impl PortfolioRows {
    fn push(&mut self, table: &'static str, cells: Vec<(&'static str, Cell)>) {
        self.rows.push(Row { table, cells });
    }

    fn customer(&mut self, id: Uuid, c: CustomerSpec<'_>) {
        let masked = |clear: &str| {
            if c.erased {
                "erased".to_string()
            } else {
                clear.to_string()
            }
        };
        self.push(
            "customers",
            vec![
                ("customer_id", text(id)),
                ("name", text(if c.erased { "erased" } else { c.name })),
                ("gender", text("female")),
                ("birth_date", text("1990-04-01")),
                ("region", text(c.region)),
                ("channel", text(c.channel)),
                ("employer", Cell::Null),
                ("risk_appetite", text(c.appetite)),
                ("phone_masked", text(masked("138****0001"))),
                ("national_id_masked", text(masked("110***********1234"))),
                ("bank_card_masked", text(masked("622202*********0128"))),
                ("monthly_income", amount(dec!(12000.5))),
                ("monthly_debt_payments", amount(dec!(1500))),
                ("total_assets", amount(dec!(50000))),
                ("total_liabilities", amount(dec!(10000.25))),
                ("registered_on", text("2024-09-20")),
                ("identity_verified_on", text("2024-09-21")),
                ("identity_method", text("face_match")),
                ("credit_score", Cell::Int(720)),
                ("credit_score_source", text("pboc")),
                ("credit_assessed_on", text("2024-09-21")),
                ("risk_grade", text(c.grade)),
                ("value_tier", text(c.tier)),
                ("segment_rules_version", text("segments/v1")),
                ("erased", Cell::Bool(c.erased)),
                (
                    "erased_on",
                    if c.erased {
                        text("2025-06-02")
                    } else {
                        Cell::Null
                    },
                ),
                ("version", Cell::Int(4)),
                ("last_position", Cell::Int(10)),
            ],
        );
        self.customers.push(id);
    }

    fn loan(&mut self, id: Uuid, l: LoanSpec<'_>) {
        self.push(
            "loans",
            vec![
                ("loan_id", text(id)),
                ("customer_id", text(l.customer)),
                ("channel", text(l.channel)),
                ("purpose", text(l.purpose)),
                ("officer_id", opt(l.officer)),
                ("status", text(l.status)),
                ("currency", text("CNY")),
                (
                    "requested_amount",
                    amount(l.principal.unwrap_or(dec!(1000))),
                ),
                ("term_months", Cell::Int(6)),
                ("captured_on", text(l.captured_on)),
                ("submitted_on", opt(l.submitted_on)),
                ("signed_on", opt(l.signed_on)),
                (
                    "annual_rate",
                    if l.principal.is_some() {
                        text("0.1250")
                    } else {
                        Cell::Null
                    },
                ),
                ("approved_amount", l.principal.map_or(Cell::Null, amount)),
                ("principal", l.principal.map_or(Cell::Null, amount)),
                ("disbursed_on", opt(l.disbursed_on)),
                ("written_off_on", opt(l.written_off_on)),
                (
                    "outstanding_principal",
                    amount(l.principal.unwrap_or_default()),
                ),
                ("outstanding_interest", amount(dec!(0))),
                ("outstanding_penalty", amount(dec!(0))),
                ("total_repaid", amount(dec!(0))),
                ("next_due_date", Cell::Null),
                ("next_due_amount", Cell::Null),
                ("version", Cell::Int(5)),
                ("last_position", Cell::Int(20)),
                ("reversed_count", Cell::Int(l.reversed_count)),
            ],
        );
    }

    fn disbursed(
        &mut self,
        id: Uuid,
        customer: Uuid,
        channel: &str,
        officer: Option<&str>,
        on: NaiveDate,
        principal: Decimal,
    ) {
        self.loan(
            id,
            LoanSpec {
                customer,
                channel,
                purpose: if id.as_bytes()[0] % 2 == 0 {
                    "consumer"
                } else {
                    "business"
                },
                officer,
                status: "repaying",
                captured_on: on - Days::new(10),
                submitted_on: Some(on - Days::new(9)),
                signed_on: Some(on - Days::new(2)),
                disbursed_on: Some(on),
                written_off_on: None,
                principal: Some(principal),
                reversed_count: 0,
            },
        );
    }

    fn installment(
        &mut self,
        loan: Uuid,
        no: i64,
        due: NaiveDate,
        principal: Decimal,
        interest: Decimal,
        settled_on: Option<NaiveDate>,
    ) {
        self.push(
            "installments",
            vec![
                ("loan_id", text(loan)),
                ("installment_no", Cell::Int(no)),
                ("due_date", text(due)),
                ("principal_due", amount(principal)),
                ("interest_due", amount(interest)),
                ("principal_paid", amount(dec!(0))),
                ("interest_paid", amount(dec!(0))),
                ("penalty_accrued", amount(dec!(0))),
                ("penalty_paid", amount(dec!(0))),
                ("settled_on", opt(settled_on)),
            ],
        );
    }

    fn allocation(
        &mut self,
        loan: Uuid,
        reference: &str,
        value_date: NaiveDate,
        no: i64,
        principal: Decimal,
        interest: Decimal,
    ) {
        self.push(
            "allocations",
            vec![
                ("loan_id", text(loan)),
                ("payment_reference", text(reference)),
                ("value_date", text(value_date)),
                ("installment_no", Cell::Int(no)),
                ("principal", amount(principal)),
                ("interest", amount(interest)),
                ("penalty", amount(dec!(0))),
            ],
        );
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per column of the row"
    )]
    fn timeline(
        &mut self,
        loan: Uuid,
        position: i64,
        version: i64,
        event: &str,
        on: NaiveDate,
        recorded_at: &str,
        details: &str,
    ) {
        self.push(
            "loan_timeline",
            vec![
                ("loan_id", text(loan)),
                ("position", Cell::Int(position)),
                ("version", Cell::Int(version)),
                ("event_type", text(event)),
                ("business_date", text(on)),
                ("recorded_at", text(recorded_at)),
                ("actor_id", text("off-1")),
                ("summary", text(event.replace('_', " "))),
                ("details", text(details)),
            ],
        );
    }

    /// The INSERT statements for PostgreSQL (schema `read_model`) or SQLite.
    fn script(&self, sqlite: bool) -> String {
        let mut script = String::new();
        for row in &self.rows {
            let table = if sqlite {
                row.table.to_string()
            } else {
                format!("read_model.{}", row.table)
            };
            let columns: Vec<&str> = row.cells.iter().map(|(column, _)| *column).collect();
            let values: Vec<String> = row
                .cells
                .iter()
                .map(|(_, cell)| cell.literal(sqlite))
                .collect();
            writeln!(
                script,
                "INSERT INTO {table} ({}) VALUES ({});",
                columns.join(", "),
                values.join(", ")
            )
            .unwrap();
        }
        script
    }

    pub(crate) async fn insert_into_postgres(&self, pool: &PgPool) {
        let mut tx = pool.begin().await.unwrap();
        sqlx::raw_sql(&self.script(false))
            .execute(&mut *tx)
            .await
            .expect("rows into PostgreSQL");
        tx.commit().await.unwrap();
    }

    pub(crate) async fn insert_into_sqlite(&self, pool: &SqlitePool) {
        let mut tx = pool.begin().await.unwrap();
        sqlx::raw_sql(&self.script(true))
            .execute(&mut *tx)
            .await
            .expect("rows into SQLite");
        tx.commit().await.unwrap();
    }
}

/// Builds the portfolio (see the module documentation).
pub(crate) fn portfolio() -> PortfolioRows {
    let d = report_date();
    let mut p = PortfolioRows {
        rows: Vec::new(),
        ana: id(1),
        bo: id(2),
        cy: id(3),
        dee: id(4),
        customers: Vec::new(),
        dpd: Vec::new(),
        partial: id(20),
        backdated: id(21),
        reversed: id(22),
        written_off: id(23),
        paid_off: id(24),
        tiny: id(25),
        large: id(26),
        current: id(27),
    };
    let customer = |name, region, channel, appetite, grade, tier, erased| CustomerSpec {
        name,
        region,
        channel,
        appetite,
        grade,
        tier,
        erased,
    };
    p.customer(
        p.ana,
        customer("Ana", "north", "app", "balanced", "low", "high", false),
    );
    p.customer(
        p.bo,
        customer(
            "Bo",
            "south",
            "branch",
            "conservative",
            "medium",
            "medium",
            false,
        ),
    );
    p.customer(
        p.cy,
        customer("Cy", "Östra", "app", "aggressive", "high", "low", true),
    );
    p.customer(
        p.dee,
        customer(
            "Dee",
            "north",
            "broker:acme",
            "balanced",
            "medium",
            "high",
            false,
        ),
    );
    credit_scores(&mut p);

    // current: two installments paid on their due dates, one due after the report date.
    let (current, ana) = (p.current, p.ana);
    p.disbursed(
        current,
        ana,
        "app",
        Some("off-1"),
        date("2025-03-20"),
        dec!(3000),
    );
    for (no, due) in [(1, "2025-04-20"), (2, "2025-05-20"), (3, "2025-07-20")] {
        let settled = (no < 3).then(|| date(due));
        p.installment(current, no, date(due), dec!(1000), dec!(12.5), settled);
        if let Some(on) = settled {
            p.allocation(current, &format!("C{no}"), on, no, dec!(1000), dec!(12.5));
        }
    }

    // dpd[d]: exactly d days past due at the report date.
    let owners = [
        (p.ana, "app", Some("off-1")),
        (p.bo, "branch", Some("off-2")),
        (p.cy, "app", None),
    ];
    for (index, days) in [1_i64, 2, 30, 31, 60, 61, 90, 91].into_iter().enumerate() {
        let loan = id(100 + u128::try_from(days).unwrap());
        let (owner, channel, officer) = owners[index % owners.len()];
        let due = d - Days::new(u64::try_from(days).unwrap());
        p.disbursed(
            loan,
            owner,
            channel,
            officer,
            due - Months::new(1),
            dec!(2000) + Decimal::from(days),
        );
        p.installment(loan, 1, due, dec!(1000), dec!(10), None);
        p.installment(
            loan,
            2,
            due + Months::new(1),
            dec!(1000) + Decimal::from(days),
            dec!(10),
            None,
        );
        p.dpd.push((days, loan));
    }

    // partial: 400.00 of the 06-05 installment paid on 06-10.
    let (partial, bo) = (p.partial, p.bo);
    p.disbursed(
        partial,
        bo,
        "branch",
        Some("off-2"),
        date("2025-05-05"),
        dec!(2000),
    );
    p.installment(partial, 1, date("2025-06-05"), dec!(1000), dec!(10), None);
    p.installment(partial, 2, date("2025-07-05"), dec!(1000), dec!(10), None);
    p.allocation(partial, "P1", date("2025-06-10"), 1, dec!(390), dec!(10));

    // backdated: the 06-05 installment paid with value date 06-08, recorded on 06-20.
    let backdated = p.backdated;
    p.disbursed(
        backdated,
        ana,
        "app",
        Some("off-1"),
        date("2025-05-05"),
        dec!(1500),
    );
    p.installment(
        backdated,
        1,
        date("2025-06-05"),
        dec!(750),
        dec!(7.5),
        Some(date("2025-06-08")),
    );
    p.installment(backdated, 2, date("2025-07-05"), dec!(750), dec!(7.5), None);
    p.allocation(backdated, "B1", date("2025-06-08"), 1, dec!(750), dec!(7.5));
    p.timeline(
        backdated,
        900,
        6,
        "repayment_recorded",
        date("2025-06-08"),
        "2025-06-20T09:30:00Z",
        r#"{"value_date": "2025-06-08", "amount": "757.50", "reference": "B1"}"#,
    );

    // reversed: the 05-15 payment was reversed; its allocation is gone.
    let (reversed, cy) = (p.reversed, p.cy);
    p.disbursed(reversed, cy, "app", None, date("2025-04-15"), dec!(1800));
    p.installment(reversed, 1, date("2025-05-15"), dec!(600), dec!(6), None);
    p.installment(reversed, 2, date("2025-06-15"), dec!(600), dec!(6), None);
    p.installment(reversed, 3, date("2025-07-15"), dec!(600), dec!(6), None);
    set_cell(&mut p, reversed, "reversed_count", Cell::Int(1));
    p.timeline(
        reversed,
        901,
        6,
        "repayment_recorded",
        date("2025-05-15"),
        "2025-05-15T10:00:00Z",
        r#"{"amount": "606.00", "reference": "R1"}"#,
    );
    p.timeline(
        reversed,
        905,
        7,
        "repayment_reversed",
        date("2025-05-20"),
        "2025-05-20T10:00:00Z",
        r#"{"reason": "bounced", "reference": "R1"}"#,
    );

    // written off on 06-01 after nothing was paid.
    let written_off = p.written_off;
    p.disbursed(
        written_off,
        cy,
        "branch",
        Some("off-2"),
        date("2025-02-01"),
        dec!(900),
    );
    p.installment(written_off, 1, date("2025-03-01"), dec!(300), dec!(8), None);
    p.installment(written_off, 2, date("2025-04-01"), dec!(300), dec!(8), None);
    p.installment(written_off, 3, date("2025-05-01"), dec!(300), dec!(8), None);
    set_cell(&mut p, written_off, "written_off_on", text("2025-06-01"));
    set_cell(&mut p, written_off, "status", text("written_off"));

    // paid off on 05-31 (second installment paid early).
    let paid_off = p.paid_off;
    p.disbursed(
        paid_off,
        bo,
        "app",
        Some("off-1"),
        date("2025-03-31"),
        dec!(1000.01),
    );
    p.installment(
        paid_off,
        1,
        date("2025-04-30"),
        dec!(500),
        dec!(5),
        Some(date("2025-05-03")),
    );
    p.installment(
        paid_off,
        2,
        date("2025-05-31"),
        dec!(500.01),
        dec!(5),
        Some(date("2025-05-31")),
    );
    p.allocation(paid_off, "O1", date("2025-05-03"), 1, dec!(500), dec!(5));
    p.allocation(paid_off, "O2", date("2025-05-31"), 2, dec!(500.01), dec!(5));

    // broker:zeta: 1.00 outstanding at 45 days, 19999.00 current.
    let (tiny, large, dee) = (p.tiny, p.large, p.dee);
    p.disbursed(
        tiny,
        dee,
        "broker:zeta",
        Some("off-3"),
        date("2025-04-16"),
        dec!(1000),
    );
    p.installment(tiny, 1, date("2025-05-16"), dec!(1000), dec!(10), None);
    p.allocation(tiny, "T1", date("2025-05-20"), 1, dec!(999), dec!(10));
    p.disbursed(
        large,
        dee,
        "broker:zeta",
        Some("off-3"),
        date("2025-06-01"),
        dec!(19999),
    );
    p.installment(large, 1, date("2025-07-01"), dec!(19999), dec!(100), None);

    p.timeline(
        current,
        800,
        1,
        "lead_captured",
        date("2025-03-10"),
        "2025-03-10T08:00:00Z",
        r#"{"amount": "3000.00", "channel": "app"}"#,
    );
    p.push(
        "decisions",
        vec![
            ("loan_id", text(current)),
            ("decided_on", text("2025-03-12")),
            ("rule_set_version", text("credit-policy/v1")),
            ("outcome", text("approve")),
            (
                "reasons",
                text(r#"[{"rule": "min_credit_score", "passed": true, "detail": "720 >= 550"}]"#),
            ),
            ("position", Cell::Int(801)),
            ("decided_by", text("policy")),
            ("actor_id", text("policy-service")),
        ],
    );

    generated_book(&mut p);
    p
}

fn credit_scores(p: &mut PortfolioRows) {
    for (position, (customer, score, on)) in [
        (p.ana, 650_i64, "2024-08-01"),
        (p.ana, 720, "2024-09-21"),
        (p.bo, 610, "2024-09-21"),
    ]
    .into_iter()
    .enumerate()
    {
        p.push(
            "credit_scores",
            vec![
                ("customer_id", text(customer)),
                ("assessed_on", text(on)),
                ("score", Cell::Int(score)),
                ("source", text("pboc")),
                ("position", Cell::Int(i64::try_from(position).unwrap() + 1)),
            ],
        );
    }
}

/// Replaces a column of the row of `loan` in `loans`.
fn set_cell(p: &mut PortfolioRows, loan: Uuid, column: &str, value: Cell) {
    let loan_text = loan.to_string();
    let row = p
        .rows
        .iter_mut()
        .find(|row| {
            row.table == "loans" && matches!(&row.cells[0].1, Cell::Text(id) if *id == loan_text)
        })
        .expect("loan row");
    row.cells
        .iter_mut()
        .find(|(name, _)| *name == column)
        .expect("column")
        .1 = value;
}

/// Generated customers and loans (fixed seed): the mass that makes every breakdown, cohort
/// and bucket populated.
fn generated_book(p: &mut PortfolioRows) {
    let mut dice = Dice(0x5EED_1234_ABCD_0042);
    let regions = ["north", "south", "Östra", "east"];
    let channels = ["app", "branch", "broker:acme", "Web"];
    let appetites = ["conservative", "balanced", "aggressive"];
    let grades = ["low", "medium", "high"];
    let tiers = ["high", "medium", "low"];
    let officers = ["off-1", "off-2", "off-3"];
    let mut customers = Vec::new();
    for n in 0..14_u128 {
        let customer = id(1000 + n);
        let name = format!("Customer {n}");
        let spec = CustomerSpec {
            name: &name,
            region: dice.pick(&regions),
            channel: dice.pick(&channels),
            appetite: dice.pick(&appetites),
            grade: dice.pick(&grades),
            tier: dice.pick(&tiers),
            erased: n == 13,
        };
        p.customer(customer, spec);
        customers.push(customer);
    }
    let start = date("2024-10-01");
    for n in 0..46_u128 {
        let loan = id(2000 + n);
        let customer = customers[usize::try_from(dice.below(customers.len() as u64)).unwrap()];
        let channel = dice.pick(&channels);
        let officer = (dice.below(4) > 0).then(|| dice.pick(&officers));
        let captured_on = start + Days::new(dice.below(260));
        if n % 7 == 6 {
            // A lead that never disbursed: in review, rejected or withdrawn.
            let (status, submitted, signed) = match n % 3 {
                0 => ("review", true, false),
                1 => ("rejected", true, false),
                _ => ("signed", true, true),
            };
            p.loan(
                loan,
                LoanSpec {
                    customer,
                    channel,
                    purpose: dice.pick(&["consumer", "business"]),
                    officer,
                    status,
                    captured_on,
                    submitted_on: submitted.then(|| captured_on + Days::new(1)),
                    signed_on: signed.then(|| captured_on + Days::new(5)),
                    disbursed_on: None,
                    written_off_on: None,
                    principal: None,
                    reversed_count: 0,
                },
            );
            continue;
        }
        let disbursed_on = captured_on + Days::new(3 + dice.below(10));
        let term = 3 + dice.below(6);
        let principal = Decimal::new(i64::try_from(50_000 + dice.below(450_000)).unwrap(), 2);
        let share = (principal / Decimal::from(term)).round_dp(2);
        p.disbursed(loan, customer, channel, officer, disbursed_on, principal);
        let mut left = principal;
        let mut missed = false;
        let mut last_due = disbursed_on;
        for no in 1..=term {
            let due = disbursed_on + Months::new(u32::try_from(no).unwrap());
            last_due = due;
            let principal_due = if no == term { left } else { share };
            left -= principal_due;
            let interest_due = Decimal::new(i64::try_from(100 + dice.below(5_000)).unwrap(), 2);
            let reference = format!("G{n}-{no}");
            let no = i64::try_from(no).unwrap();
            let behaviour = if missed { 4 } else { dice.below(10) };
            match behaviour {
                // on time
                0..=4 => {
                    p.installment(loan, no, due, principal_due, interest_due, Some(due));
                    p.allocation(loan, &reference, due, no, principal_due, interest_due);
                }
                // late, in full
                5 | 6 => {
                    let paid_on = due + Days::new(1 + dice.below(70));
                    p.installment(loan, no, due, principal_due, interest_due, Some(paid_on));
                    p.allocation(loan, &reference, paid_on, no, principal_due, interest_due);
                }
                // partial: interest and part of the principal
                7 => {
                    let part =
                        (principal_due / Decimal::from(1 + dice.below(4))).round_dp(2) - dec!(0.01);
                    let paid_on = due + Days::new(dice.below(20));
                    p.installment(loan, no, due, principal_due, interest_due, None);
                    p.allocation(loan, &reference, paid_on, no, part, interest_due);
                }
                // missed, and every later one too
                _ => {
                    missed = true;
                    p.installment(loan, no, due, principal_due, interest_due, None);
                }
            }
        }
        if missed && dice.below(3) == 0 {
            let on = last_due - Days::new(dice.below(40));
            set_cell(p, loan, "written_off_on", text(on));
            set_cell(p, loan, "status", text("written_off"));
        }
    }
}

/// A throwaway SQLite file with the embedded read-model tables
/// (`crates/loan-projection/migrations-sqlite`), removed on drop.
pub(crate) struct SqliteDb {
    pub(crate) path: PathBuf,
    pub(crate) pool: SqlitePool,
}

/// The embedded read models' migrations, in order.
const SQLITE_DDL: [&str; 3] = [
    include_str!("../../../loan-projection/migrations-sqlite/0001_read_model.sql"),
    include_str!("../../../loan-projection/migrations-sqlite/0002_checkpoint_generation.sql"),
    include_str!("../../../loan-projection/migrations-sqlite/0003_collection_cases.sql"),
];

impl SqliteDb {
    pub(crate) async fn create() -> SqliteDb {
        let path = std::env::temp_dir().join(format!("loan_query_{}.db", Uuid::now_v7().simple()));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true),
            )
            .await
            .expect("create the SQLite read models");
        for migration in SQLITE_DDL {
            sqlx::raw_sql(migration)
                .execute(&pool)
                .await
                .expect("SQLite read-model DDL");
        }
        SqliteDb { path, pool }
    }
}

impl Drop for SqliteDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.path.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}
