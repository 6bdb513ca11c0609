//! Risk grade, value tier and the automated decision policy.
//!
//! All three are pure, versioned functions. Their version strings are recorded in the
//! events they influence, so an auditor can tell which rules produced a decision and
//! replaying old history never re-decides it with today's rules.
//!
//! * **Risk grade** (`risk-grade/v1`): `low` when the credit score is at least 700 and the
//!   debt-to-income ratio at most 0.35; `high` when there is no score, the score is below
//!   600, the income is zero or the ratio exceeds 0.50; `medium` otherwise.
//! * **Value tier** (`value-tier/v1`): `high` when monthly income ≥ 30,000 or net worth
//!   (assets − liabilities) ≥ 1,000,000; `medium` when income ≥ 10,000 or net worth ≥
//!   200,000; `low` otherwise.
//! * **Decision policy**: see [`evaluate`].

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::money::{Money, Rate};
use crate::schedule::{RepaymentMethod, ScheduleTerms, build_schedule};

pub const RISK_GRADE_RULES: &str = "risk-grade/v1";
pub const VALUE_TIER_RULES: &str = "value-tier/v1";

/// Credit risk grade of a customer or an application.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RiskGrade {
    Low,
    Medium,
    High,
}

/// Commercial value tier of a customer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ValueTier {
    High,
    Medium,
    Low,
}

/// Debt-to-income ratio: monthly debt payments ÷ monthly income, rounded half-up to four
/// decimal places. `None` when the income is zero (the ratio is undefined).
pub fn debt_to_income(monthly_debt_payments: Money, monthly_income: Money) -> Option<Decimal> {
    if !monthly_income.is_positive() {
        return None;
    }
    monthly_debt_payments
        .amount()
        .checked_div(monthly_income.amount())
        .map(|ratio| ratio.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero))
}

/// `risk-grade/v1`, see the module documentation.
pub fn risk_grade(credit_score: Option<u16>, debt_to_income: Option<Decimal>) -> RiskGrade {
    let (Some(score), Some(dti)) = (credit_score, debt_to_income) else {
        return RiskGrade::High;
    };
    if score < 600 || dti > Decimal::new(50, 2) {
        RiskGrade::High
    } else if score >= 700 && dti <= Decimal::new(35, 2) {
        RiskGrade::Low
    } else {
        RiskGrade::Medium
    }
}

/// `value-tier/v1`, see the module documentation.
pub fn value_tier(
    monthly_income: Money,
    total_assets: Money,
    total_liabilities: Money,
) -> ValueTier {
    let net_worth = total_assets.amount() - total_liabilities.amount();
    let income = monthly_income.amount();
    if income >= Decimal::from(30_000) || net_worth >= Decimal::from(1_000_000) {
        ValueTier::High
    } else if income >= Decimal::from(10_000) || net_worth >= Decimal::from(200_000) {
        ValueTier::Medium
    } else {
        ValueTier::Low
    }
}

/// A per-grade table of amounts or rates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PerGrade<T> {
    pub low: T,
    pub medium: T,
    pub high: T,
}

impl<T: Copy> PerGrade<T> {
    pub fn get(&self, grade: RiskGrade) -> T {
        match grade {
            RiskGrade::Low => self.low,
            RiskGrade::Medium => self.medium,
            RiskGrade::High => self.high,
        }
    }
}

/// The automated decision rule set. Configuration of the command service; the version
/// string is recorded with every decision it makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionPolicy {
    /// Recorded in every automated decision, e.g. `"credit-policy/2026-11"`.
    pub version: String,
    /// Scores below this reject the application.
    pub min_credit_score: u16,
    /// Debt-to-income ratio including the new loan's estimated installment; above it rejects.
    pub max_debt_to_income: Decimal,
    /// Monthly income below this rejects.
    pub min_monthly_income: Money,
    /// Largest amount approved automatically per risk grade; above it the application is
    /// referred to a person.
    pub max_amount: PerGrade<Money>,
    /// Annual rate offered per risk grade when the policy approves.
    pub annual_rate: PerGrade<Rate>,
}

impl DecisionPolicy {
    /// The rule set shipped with this version of the engine.
    pub fn standard() -> Self {
        let money = |text: &str| Money::parse(text).expect("constant amount");
        let rate = |text: &str| Rate::parse(text).expect("constant rate");
        DecisionPolicy {
            version: "credit-policy/v1".into(),
            min_credit_score: 550,
            max_debt_to_income: Decimal::new(55, 2),
            min_monthly_income: money("3000.00"),
            max_amount: PerGrade {
                low: money("300000.00"),
                medium: money("100000.00"),
                high: money("20000.00"),
            },
            annual_rate: PerGrade {
                low: rate("0.0990"),
                medium: rate("0.1450"),
                high: rate("0.2200"),
            },
        }
    }
}

/// What the policy saw, recorded with the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyInputs {
    pub credit_score: Option<u16>,
    pub monthly_income: Money,
    pub monthly_debt_payments: Money,
    pub requested_amount: Money,
    pub term_months: u32,
    /// Equal-installment payment of the requested amount at the grade's rate.
    pub estimated_installment: Money,
    /// (monthly debt payments + estimated installment) ÷ monthly income, 4 dp; absent when income is zero.
    pub debt_to_income: Option<Decimal>,
    pub risk_grade: RiskGrade,
}

/// The policy's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Approve,
    Reject,
    /// A person must decide.
    Refer,
}

/// One rule the policy checked, and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleResult {
    /// Stable rule code, e.g. `min_credit_score`.
    pub rule: String,
    pub passed: bool,
    /// Human-readable finding with the figures compared.
    pub detail: String,
}

/// A complete automated decision: enough for an auditor to see why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutomatedDecision {
    pub rule_set_version: String,
    pub inputs: PolicyInputs,
    pub outcome: Outcome,
    /// Every rule evaluated, in order; failed rules explain a reject or refer.
    pub reasons: Vec<RuleResult>,
    /// Rate offered when approved.
    pub offered_annual_rate: Option<Rate>,
}

/// The applicant's figures the policy reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applicant {
    pub credit_score: Option<u16>,
    pub monthly_income: Money,
    pub monthly_debt_payments: Money,
}

/// Runs the decision policy. Rules, in order:
/// 1. `credit_score_present`: no score → refer (a person must pull a report);
/// 2. `min_credit_score`: score below the minimum → reject;
/// 3. `min_monthly_income`: income below the minimum → reject;
/// 4. `max_debt_to_income`: ratio including the new installment above the maximum → reject;
/// 5. `max_amount_for_grade`: amount above the grade's automatic limit → refer.
///
/// Any reject wins over a refer; otherwise any refer wins over approve.
/// `reference_date` only anchors the estimated schedule (amounts do not depend on it).
pub fn evaluate(
    policy: &DecisionPolicy,
    applicant: Applicant,
    requested_amount: Money,
    term_months: u32,
    reference_date: NaiveDate,
) -> AutomatedDecision {
    let base_dti = debt_to_income(applicant.monthly_debt_payments, applicant.monthly_income);
    let base_grade = risk_grade(applicant.credit_score, base_dti);
    let offered_rate = policy.annual_rate.get(base_grade);
    let estimated_installment = build_schedule(&ScheduleTerms {
        principal: requested_amount,
        annual_rate: offered_rate,
        term_months,
        method: RepaymentMethod::EqualInstallment,
        first_due_date: reference_date,
    })
    .ok()
    .and_then(|schedule| schedule.installments.first().map(|first| first.total()))
    .unwrap_or(requested_amount);
    let monthly_debt_with_loan = applicant
        .monthly_debt_payments
        .saturating_add(estimated_installment);
    let dti = debt_to_income(monthly_debt_with_loan, applicant.monthly_income);
    let grade = risk_grade(applicant.credit_score, dti);

    let mut reasons = Vec::new();
    let mut outcome = Outcome::Approve;
    let mut check = |rule: &str, passed: bool, on_fail: Outcome, detail: String| {
        reasons.push(RuleResult {
            rule: rule.into(),
            passed,
            detail,
        });
        if !passed {
            outcome = match (outcome, on_fail) {
                (Outcome::Reject, _) | (_, Outcome::Reject) => Outcome::Reject,
                _ => Outcome::Refer,
            };
        }
    };

    match applicant.credit_score {
        None => check(
            "credit_score_present",
            false,
            Outcome::Refer,
            "no credit assessment on file".into(),
        ),
        Some(score) => {
            check(
                "credit_score_present",
                true,
                Outcome::Refer,
                format!("score {score} on file"),
            );
            check(
                "min_credit_score",
                score >= policy.min_credit_score,
                Outcome::Reject,
                format!("score {score}, minimum {}", policy.min_credit_score),
            );
        }
    }
    check(
        "min_monthly_income",
        applicant.monthly_income >= policy.min_monthly_income,
        Outcome::Reject,
        format!(
            "monthly income {}, minimum {}",
            applicant.monthly_income, policy.min_monthly_income
        ),
    );
    match dti {
        Some(ratio) => check(
            "max_debt_to_income",
            ratio <= policy.max_debt_to_income,
            Outcome::Reject,
            format!(
                "debt-to-income {ratio} with the new installment {estimated_installment}, maximum {}",
                policy.max_debt_to_income
            ),
        ),
        None => check(
            "max_debt_to_income",
            false,
            Outcome::Reject,
            "no income: debt-to-income undefined".into(),
        ),
    }
    let limit = policy.max_amount.get(grade);
    check(
        "max_amount_for_grade",
        requested_amount <= limit,
        Outcome::Refer,
        format!("requested {requested_amount}, automatic limit for {grade:?} risk {limit}")
            .to_lowercase(),
    );

    let offered_annual_rate = (outcome == Outcome::Approve).then(|| policy.annual_rate.get(grade));
    AutomatedDecision {
        rule_set_version: policy.version.clone(),
        inputs: PolicyInputs {
            credit_score: applicant.credit_score,
            monthly_income: applicant.monthly_income,
            monthly_debt_payments: applicant.monthly_debt_payments,
            requested_amount,
            term_months,
            estimated_installment,
            debt_to_income: dti,
            risk_grade: grade,
        },
        outcome,
        reasons,
        offered_annual_rate,
    }
}
