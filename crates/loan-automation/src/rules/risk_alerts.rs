//! Risk alerts: the risk team hears when the book turns, not when someone runs a report.
//!
//! * **Overdue rate** (every calendar day D): for the portfolio and each segment (the
//!   customer's region, the loan's channel, the customer's risk grade), overdue loans ÷
//!   loans in servicing as of D, by count. "Overdue" is more than the loan's grace days
//!   past due on D (what turns a loan `overdue`), computed from the schedule and payments,
//!   so it does not wait for the sweep. Crossing **above** the threshold (strictly, the
//!   fraction compared exactly, never rounded) sends one `risk_alert`; falling back to the
//!   threshold or below sends one `risk_alert` with crossing `recovered` and re-arms the
//!   segment. Whether a segment is armed is the rule's own history: the last crossing it
//!   sent for the segment (`alerted` = segments whose last crossing was `above`).
//! * **Credit score drop** (on each `credit_assessed` event folded): a score more than the
//!   configured points below the customer's previous assessment (recording order) sends
//!   one `credit_score_drop`, its id derived from the assessment's event id.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use loan_contract::notification::{CreditScoreDrop, Crossing, Notification, RiskAlert};
use loan_domain::Rate;
use loan_domain::loan::Loan;
use loan_domain::servicing;
use rust_decimal::Decimal;

use super::daily_report::{in_servicing_on, ratio};
use super::{Action, Effect, Rule, RuleConfig, action_id};
use crate::portfolio::{Portfolio, Reassessment};

/// Overdue and active loans of one segment on a day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OverdueCount {
    pub overdue: u64,
    pub active: u64,
}

impl OverdueCount {
    /// Exact comparison: overdue / active > threshold ⇔ overdue > threshold × active.
    fn above(self, threshold: Rate) -> bool {
        self.active > 0
            && Decimal::from(self.overdue) > threshold.value() * Decimal::from(self.active)
    }

    fn rate(self) -> Rate {
        ratio(Decimal::from(self.overdue), Decimal::from(self.active))
    }
}

/// Overdue and active loans as of `day` per segment: `portfolio`, `region:<r>`,
/// `channel:<c>`, `risk_grade:<g>` (region and grade as the customer's profile is now;
/// `unknown` for a customer not seen).
pub fn overdue_by_segment(portfolio: &Portfolio, day: NaiveDate) -> BTreeMap<String, OverdueCount> {
    let mut counts: BTreeMap<String, OverdueCount> = BTreeMap::new();
    for (_, file) in portfolio.loans() {
        let Some((account, position)) = in_servicing_on(file, day) else {
            continue;
        };
        let overdue = servicing::in_arrears_beyond_grace(
            &account.schedule,
            &position.installments,
            account.contract.grace_days,
            day,
        );
        let profile = portfolio
            .customer(account.application.customer_id)
            .and_then(|c| c.profile());
        let region = profile.map_or_else(|| "unknown".to_owned(), |p| p.region.clone());
        let grade = profile
            .and_then(|p| serde_json::to_value(p.risk_grade()).ok())
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned());
        for segment in [
            "portfolio".to_owned(),
            format!("region:{region}"),
            format!("channel:{}", account.application.channel),
            format!("risk_grade:{grade}"),
        ] {
            let count = counts.entry(segment).or_default();
            count.active += 1;
            count.overdue += u64::from(overdue);
        }
    }
    counts
}

/// The overdue-rate alerts of `day`. `alerted`: segments whose last crossing sent was
/// `above` (not yet recovered).
pub fn overdue_rate_alerts(
    portfolio: &Portfolio,
    day: NaiveDate,
    config: &RuleConfig,
    alerted: &BTreeSet<String>,
) -> Vec<Action> {
    let Some(threshold) = config.overdue_rate_threshold else {
        return Vec::new();
    };
    let counts = overdue_by_segment(portfolio, day);
    let segments: BTreeSet<&String> = counts.keys().chain(alerted.iter()).collect();
    let mut actions = Vec::new();
    for segment in segments {
        let count = counts.get(segment).copied().unwrap_or_default();
        let above = count.above(threshold);
        let crossing = match (above, alerted.contains(segment)) {
            (true, false) => Crossing::Above,
            (false, true) => Crossing::Recovered,
            _ => continue,
        };
        let (word, direction) = match crossing {
            Crossing::Above => ("above", "rose above"),
            Crossing::Recovered => ("recovered", "fell back to or below"),
        };
        let id = action_id(
            Rule::RiskAlerts,
            &format!("overdue_rate/{segment}/{day}/{word}"),
        );
        let rate = count.rate();
        let reason = format!(
            "overdue rate of {segment} on {day} {direction} the threshold {threshold}: {} overdue of {} loans in servicing = {rate}",
            count.overdue, count.active
        );
        actions.push(Action {
            id,
            rule: Rule::RiskAlerts,
            business_date: day,
            loan_id: None,
            reason: reason.clone(),
            effect: Effect::Notify(Notification::RiskAlert(RiskAlert {
                id,
                rule: Rule::RiskAlerts.name().into(),
                reason,
                business_date: day,
                segment: segment.clone(),
                crossing,
                overdue_loans: count.overdue,
                active_loans: count.active,
                overdue_rate: rate,
                threshold,
                recipients: config.risk_recipients.clone(),
            })),
        });
    }
    actions
}

/// The credit-score-drop alert of one reassessment, if the score fell by more than the
/// configured points.
pub fn credit_score_drop(
    portfolio: &Portfolio,
    change: &Reassessment,
    config: &RuleConfig,
) -> Option<Action> {
    let threshold = config.credit_drop_points?;
    let drop = change.previous.score.checked_sub(change.current.score)?;
    if drop <= threshold {
        return None;
    }
    let id = action_id(
        Rule::RiskAlerts,
        &format!("credit_score_drop/{}", change.event_id),
    );
    let loan_ids = portfolio
        .loans()
        .filter(|(_, file)| {
            file.loan
                .application()
                .is_some_and(|app| app.customer_id == change.customer_id)
                && matches!(
                    file.loan,
                    Loan::Lead(_)
                        | Loan::Review(_)
                        | Loan::Signed(..)
                        | Loan::Disbursed(_)
                        | Loan::Repaying(_)
                        | Loan::Overdue(_)
                )
        })
        .map(|(id, _)| *id)
        .collect();
    let reason = format!(
        "credit score of customer {} fell from {} ({}, {}) to {} ({}, {}): {drop} points, more than the {threshold} allowed",
        change.customer_id,
        change.previous.score,
        change.previous.source,
        change.previous.assessed_on,
        change.current.score,
        change.current.source,
        change.current.assessed_on
    );
    Some(Action {
        id,
        rule: Rule::RiskAlerts,
        business_date: change.recorded_on,
        loan_id: None,
        reason: reason.clone(),
        effect: Effect::Notify(Notification::CreditScoreDrop(CreditScoreDrop {
            id,
            rule: Rule::RiskAlerts.name().into(),
            reason,
            business_date: change.recorded_on,
            customer_id: change.customer_id,
            assessment_event_id: change.event_id,
            previous_score: change.previous.score,
            previous_assessed_on: change.previous.assessed_on,
            score: change.current.score,
            assessed_on: change.current.assessed_on,
            drop_points: drop,
            threshold_points: threshold,
            loan_ids,
            recipients: config.risk_recipients.clone(),
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portfolio::LoanFile;
    use crate::rules::testing::{d, disbursed_loan, payment};
    use loan_domain::LoanId;
    use loan_domain::customer::CreditAssessment;
    use uuid::Uuid;

    /// Four loans disbursed 5 Jan (first due 5 Feb, 3 grace days), channel `app`, customer
    /// unknown: `paying` of them pay installment 1 on time.
    fn book(loans: u128, paying: u128) -> Portfolio {
        let mut portfolio = Portfolio::default();
        for n in 0..loans {
            let payments = if n < paying {
                vec![payment(&format!("P-{n}"), "1066.19", "2026-02-05")]
            } else {
                vec![]
            };
            portfolio.insert_loan(
                LoanId(Uuid::from_u128(n + 1)),
                LoanFile::with(
                    disbursed_loan(d("2026-01-05"), &payments),
                    d("2026-01-05"),
                    1,
                ),
            );
        }
        portfolio
    }

    fn crossings(actions: &[Action]) -> Vec<(String, Crossing, u64, u64, String)> {
        actions
            .iter()
            .map(|a| {
                let Effect::Notify(Notification::RiskAlert(n)) = &a.effect else {
                    panic!("a risk alert")
                };
                assert_eq!(n.id, a.id);
                (
                    n.segment.clone(),
                    n.crossing,
                    n.overdue_loans,
                    n.active_loans,
                    n.overdue_rate.to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn the_overdue_rate_alerts_once_per_crossing_and_re_arms_when_it_falls_back() {
        // 3 loans, 2 pay: on 9 Feb the third is 4 days past due (> 3 grace): 1/3 = 0.3333.
        let portfolio = book(3, 2);
        let config = RuleConfig {
            overdue_rate_threshold: Rate::parse("0.30").ok(),
            ..RuleConfig::default()
        };
        let none = BTreeSet::new();
        // 8 Feb: 3 days past due, within grace: 0 overdue.
        assert!(overdue_rate_alerts(&portfolio, d("2026-02-08"), &config, &none).is_empty());
        let on_9 = overdue_rate_alerts(&portfolio, d("2026-02-09"), &config, &none);
        let above = |s: &str| (s.to_owned(), Crossing::Above, 1, 3, "0.3333".to_owned());
        assert_eq!(
            crossings(&on_9),
            [
                above("channel:app"),
                above("portfolio"),
                above("region:unknown"),
                above("risk_grade:unknown")
            ]
        );
        assert!(
            on_9[1]
                .reason
                .contains("1 overdue of 3 loans in servicing = 0.3333"),
            "{}",
            on_9[1].reason
        );
        // Already alerted: nothing more while it stays above.
        let alerted: BTreeSet<String> = [
            "channel:app",
            "portfolio",
            "region:unknown",
            "risk_grade:unknown",
        ]
        .map(str::to_owned)
        .into();
        assert!(overdue_rate_alerts(&portfolio, d("2026-02-10"), &config, &alerted).is_empty());
        // Exactly at the threshold is not above: 1 of 4 at a threshold of 0.25.
        let at = RuleConfig {
            overdue_rate_threshold: Rate::parse("0.25").ok(),
            ..RuleConfig::default()
        };
        assert!(overdue_rate_alerts(&book(4, 3), d("2026-02-09"), &at, &none).is_empty());
        // Back at or below the threshold after an alert: one `recovered` per segment (the
        // segment re-arms); 0 of 4 overdue.
        let recovered = overdue_rate_alerts(&book(4, 4), d("2026-02-09"), &at, &alerted);
        assert_eq!(
            crossings(&recovered)[1],
            (
                "portfolio".to_owned(),
                Crossing::Recovered,
                0,
                4,
                "0".to_owned()
            )
        );
        // A segment with no loan left recovers too (0 of 0).
        let gone: BTreeSet<String> = ["region:hainan".to_owned()].into();
        assert_eq!(
            crossings(&overdue_rate_alerts(
                &book(4, 4),
                d("2026-02-09"),
                &at,
                &gone
            )),
            [(
                "region:hainan".to_owned(),
                Crossing::Recovered,
                0,
                0,
                "0".to_owned()
            )]
        );
        // Ids: stable on segment, date and direction.
        let again = overdue_rate_alerts(&portfolio, d("2026-02-09"), &config, &none);
        assert_eq!(on_9[1].id, again[1].id);
        let next_day = overdue_rate_alerts(&portfolio, d("2026-02-10"), &config, &none);
        assert_ne!(on_9[1].id, next_day[1].id);
        // Off without a threshold.
        let off = RuleConfig {
            overdue_rate_threshold: None,
            ..RuleConfig::default()
        };
        assert!(overdue_rate_alerts(&portfolio, d("2026-02-09"), &off, &none).is_empty());
    }

    #[test]
    fn a_score_drop_beyond_the_threshold_alerts_once_per_assessment() {
        let assessed = |score: u16, on: &str| CreditAssessment {
            score,
            source: "pboc".into(),
            assessed_on: d(on),
        };
        let change = |previous: u16, current: u16| Reassessment {
            customer_id: loan_domain::CustomerId(Uuid::from_u128(0xc1)),
            event_id: Uuid::from_u128(0xe1),
            recorded_on: d("2026-02-20"),
            previous: assessed(previous, "2026-01-05"),
            current: assessed(current, "2026-02-20"),
        };
        let config = RuleConfig::default(); // more than 50 points
        let portfolio = Portfolio::default();
        assert!(
            credit_score_drop(&portfolio, &change(735, 685), &config).is_none(),
            "50: not more"
        );
        assert!(
            credit_score_drop(&portfolio, &change(700, 760), &config).is_none(),
            "a rise"
        );
        let action = credit_score_drop(&portfolio, &change(735, 684), &config).expect("51 points");
        let Effect::Notify(Notification::CreditScoreDrop(n)) = &action.effect else {
            panic!()
        };
        assert_eq!(
            (n.previous_score, n.score, n.drop_points, n.threshold_points),
            (735, 684, 51, 50)
        );
        assert_eq!(n.assessment_event_id, Uuid::from_u128(0xe1));
        assert_eq!(action.business_date, d("2026-02-20"));
        assert_eq!(
            action.id,
            credit_score_drop(&portfolio, &change(735, 600), &config)
                .unwrap()
                .id,
            "per assessment event"
        );
        let off = RuleConfig {
            credit_drop_points: None,
            ..RuleConfig::default()
        };
        assert!(credit_score_drop(&portfolio, &change(735, 400), &off).is_none());
    }
}
