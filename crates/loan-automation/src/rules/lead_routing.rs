//! Lead routing: a new lead is given to an officer by rules, not by whoever looks first.
//!
//! The routing table lists officers, each with the regions (the customer's region) and
//! loan purposes (consumer / business) they cover and a capacity (open loans they can
//! hold). Among the officers who cover a lead and are below capacity, the one with the
//! fewest open loans (lead, review or signed) gets it; ties go to the name first in
//! order. A lead nobody can take goes to the default officer if one is set, or is
//! reported (`lead_unrouted`) to the default manager.
//!
//! Workload counts what the stream shows **and** what this rule already decided that the
//! stream does not show yet (an assignment pending or in flight), so two leads routed in
//! quick succession, or a worker restarted in between, never both land on an officer who
//! had room for one.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use loan_contract::notification::{LeadUnrouted, Notification};
use loan_domain::loan::{Application, AssignOfficer, Loan, LoanPurpose};
use loan_domain::{CommandKind, LoanId};
use serde::{Deserialize, Serialize};

use super::{Action, Effect, Rule, RuleConfig, action_id};
use crate::AutomationError;
use crate::portfolio::Portfolio;

/// One officer's line in the routing table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficerRoute {
    pub officer_id: String,
    /// Regions covered (the customer's region, compared case-insensitively); empty: all.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Loan purposes covered; empty: all.
    #[serde(default)]
    pub purposes: Vec<LoanPurpose>,
    /// Most open loans (lead, review, signed) the officer holds before being skipped.
    pub capacity: u32,
}

/// The routing table (file `--routing-file`, JSON, or `--route` flags).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingTable {
    #[serde(default)]
    pub officers: Vec<OfficerRoute>,
    /// Who gets a lead no officer can take; when `None` such a lead is reported.
    #[serde(default)]
    pub default_officer: Option<String>,
}

impl OfficerRoute {
    /// Parses `OFFICER:REGIONS:PURPOSES:CAPACITY`, lists joined with `+`, `*` for all:
    /// `o-1:guangdong+fujian:consumer:20`.
    pub fn parse(text: &str) -> Result<Self, AutomationError> {
        let bad = |why: &str| {
            AutomationError::Config(format!(
                "route {text:?}: {why} (expected OFFICER:REGIONS:PURPOSES:CAPACITY, e.g. o-1:guangdong+fujian:consumer:20)"
            ))
        };
        let parts: Vec<&str> = text.trim().split(':').collect();
        let [officer, regions, purposes, capacity] = parts.as_slice() else {
            return Err(bad("four parts"));
        };
        let officer = officer.trim();
        if officer.is_empty() {
            return Err(bad("an officer id"));
        }
        let list = |part: &str| -> Vec<String> {
            if part.trim() == "*" {
                return Vec::new();
            }
            part.split('+')
                .map(|item| item.trim().to_owned())
                .filter(|item| !item.is_empty())
                .collect()
        };
        let purposes = list(purposes)
            .into_iter()
            .map(|p| match p.to_ascii_lowercase().as_str() {
                "consumer" => Ok(LoanPurpose::Consumer),
                "business" => Ok(LoanPurpose::Business),
                _ => Err(bad("purposes are consumer, business or *")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let capacity = capacity
            .trim()
            .parse::<u32>()
            .map_err(|_| bad("a capacity (a whole number)"))?;
        Ok(OfficerRoute {
            officer_id: officer.to_owned(),
            regions: list(regions),
            purposes,
            capacity,
        })
    }

    fn covers(&self, region: &str, purpose: LoanPurpose) -> bool {
        (self.regions.is_empty() || self.regions.iter().any(|r| r.eq_ignore_ascii_case(region)))
            && (self.purposes.is_empty() || self.purposes.contains(&purpose))
    }
}

impl RoutingTable {
    /// Reads the JSON form: `{"officers": [{"officer_id", "regions", "purposes",
    /// "capacity"}], "default_officer"}`.
    pub fn from_json(text: &str) -> Result<Self, AutomationError> {
        let table: RoutingTable = serde_json::from_str(text)
            .map_err(|e| AutomationError::Config(format!("routing table: {e}")))?;
        table.validate()?;
        Ok(table)
    }

    /// Refuses an officer listed twice or an empty officer id.
    pub fn validate(&self) -> Result<(), AutomationError> {
        let mut seen = std::collections::BTreeSet::new();
        for route in &self.officers {
            if route.officer_id.trim().is_empty() || !seen.insert(route.officer_id.as_str()) {
                return Err(AutomationError::Config(format!(
                    "routing table: officer {:?} is empty or listed twice",
                    route.officer_id
                )));
            }
        }
        Ok(())
    }

    /// The rule is off when there is neither an officer nor a default officer.
    pub fn is_empty(&self) -> bool {
        self.officers.is_empty() && self.default_officer.is_none()
    }
}

/// `consumer` or `business`, as on the wire.
pub(crate) fn purpose_name(purpose: LoanPurpose) -> &'static str {
    match purpose {
        LoanPurpose::Consumer => "consumer",
        LoanPurpose::Business => "business",
    }
}

/// The stable id of the assignment of `lead` (its command id).
pub(crate) fn assignment_id(lead: LoanId) -> uuid::Uuid {
    action_id(Rule::LeadRouting, &format!("assign/{lead}"))
}

/// Lead routing on `day`: every lead without an officer that this rule has not already
/// assigned (`routed`: lead → officer, the rule's earlier assignments from the outbox)
/// gets `assign_officer`, or a `lead_unrouted` notification. Leads in id order (UUID v7:
/// capture order), each decision counting in the next one's workload.
pub fn lead_routing(
    portfolio: &Portfolio,
    day: NaiveDate,
    config: &RuleConfig,
    routed: &BTreeMap<LoanId, String>,
) -> Vec<Action> {
    let table = &config.routing;
    if table.is_empty() {
        return Vec::new();
    }
    let mut workload = workload(portfolio, routed);
    let mut actions = Vec::new();
    for (loan_id, file) in portfolio.loans() {
        let Loan::Lead(app) = &file.loan else {
            continue;
        };
        if app.officer_id.is_some() || routed.contains_key(loan_id) {
            continue;
        }
        actions.push(route_one(
            portfolio,
            *loan_id,
            app,
            day,
            config,
            &mut workload,
        ));
    }
    actions
}

/// Open loans (lead, review, signed) per officer: the stream's, plus assignments this
/// rule decided for leads the stream still shows without an officer.
fn workload(portfolio: &Portfolio, routed: &BTreeMap<LoanId, String>) -> BTreeMap<String, u32> {
    let mut load: BTreeMap<String, u32> = BTreeMap::new();
    for (loan_id, file) in portfolio.loans() {
        let app = match &file.loan {
            Loan::Lead(app) | Loan::Review(app) | Loan::Signed(app, _) => app,
            _ => continue,
        };
        let officer = app.officer_id.as_ref().or_else(|| {
            routed
                .get(loan_id)
                .filter(|_| matches!(file.loan, Loan::Lead(_)))
        });
        if let Some(officer) = officer {
            *load.entry(officer.clone()).or_default() += 1;
        }
    }
    load
}

fn route_one(
    portfolio: &Portfolio,
    loan_id: LoanId,
    app: &Application,
    day: NaiveDate,
    config: &RuleConfig,
    workload: &mut BTreeMap<String, u32>,
) -> Action {
    let table = &config.routing;
    let region = portfolio
        .customer(app.customer_id)
        .and_then(|c| c.profile())
        .map_or_else(|| "unknown".to_owned(), |p| p.region.clone());
    let purpose = app.purpose;
    let covering: Vec<&OfficerRoute> = table
        .officers
        .iter()
        .filter(|route| route.covers(&region, purpose))
        .collect();
    let load_of = |workload: &BTreeMap<String, u32>, officer: &str| {
        workload.get(officer).copied().unwrap_or(0)
    };
    let figures = covering
        .iter()
        .map(|r| {
            format!(
                "{} {}/{}",
                r.officer_id,
                load_of(workload, &r.officer_id),
                r.capacity
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let chosen = covering
        .iter()
        .filter(|r| load_of(workload, &r.officer_id) < r.capacity)
        .min_by(|a, b| {
            (load_of(workload, &a.officer_id), &a.officer_id)
                .cmp(&(load_of(workload, &b.officer_id), &b.officer_id))
        });
    let lead = format!(
        "lead {loan_id} (region {region}, purpose {})",
        purpose_name(purpose)
    );
    let nobody = if covering.is_empty() {
        "no officer covers it".to_owned()
    } else {
        format!("every officer covering it is at capacity (open/capacity: {figures})")
    };
    let (officer, reason) = match (chosen, &table.default_officer) {
        (Some(route), _) => (
            route.officer_id.clone(),
            format!(
                "{lead}: {} covers region {region} and purpose {} and has the fewest open loans among those with room (open/capacity: {figures}; ties by name)",
                route.officer_id,
                purpose_name(purpose)
            ),
        ),
        (None, Some(default)) => (
            default.clone(),
            format!("{lead}: {nobody}; assigned to the default officer {default}"),
        ),
        (None, None) => {
            let id = action_id(Rule::LeadRouting, &format!("unrouted/{loan_id}"));
            let reason = format!("{lead}: {nobody} and no default officer is set");
            return Action {
                id,
                rule: Rule::LeadRouting,
                business_date: day,
                loan_id: Some(loan_id),
                reason: reason.clone(),
                effect: Effect::Notify(Notification::LeadUnrouted(LeadUnrouted {
                    id,
                    rule: Rule::LeadRouting.name().into(),
                    reason,
                    business_date: day,
                    loan_id,
                    customer_id: app.customer_id,
                    region,
                    purpose,
                    recipients: config.default_manager.iter().cloned().collect(),
                })),
            };
        }
    };
    *workload.entry(officer.clone()).or_default() += 1;
    let payload = serde_json::to_value(AssignOfficer {
        loan_id,
        officer_id: officer,
    })
    .unwrap_or_default();
    Action {
        id: assignment_id(loan_id),
        rule: Rule::LeadRouting,
        business_date: day,
        loan_id: Some(loan_id),
        reason,
        effect: Effect::Command {
            kind: CommandKind::AssignOfficer,
            payload,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portfolio::LoanFile;
    use loan_domain::customer::{CustomerEvent, Financials, RiskAppetite, Sensitive};
    use loan_domain::loan::LoanEvent;
    use loan_domain::pii::Gender;
    use loan_domain::{Currency, CustomerId, Money};
    use uuid::Uuid;

    fn d(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn customer(n: u128, region: &str) -> (CustomerId, loan_domain::customer::Customer) {
        let id = CustomerId(Uuid::from_u128(0xc000 + n));
        let zero = Money::ZERO;
        let registered = CustomerEvent::CustomerRegistered {
            customer_id: id,
            name: "Li Wei".into(),
            gender: Gender::Male,
            birth_date: d("1988-07-15"),
            phone: Sensitive::Erased,
            national_id: Sensitive::Erased,
            bank_card: Sensitive::Erased,
            region: region.into(),
            employer: None,
            financials: Financials {
                monthly_income: zero,
                monthly_debt_payments: zero,
                total_assets: zero,
                total_liabilities: zero,
            },
            risk_appetite: RiskAppetite::Balanced,
            channel: "app".into(),
            registered_on: d("2026-01-01"),
        };
        (id, loan_domain::customer::Customer::replay([&registered]))
    }

    /// A lead of `customer` for `purpose`, with `officer` assigned if given, as
    /// `later` events (submitted for review) say.
    fn lead(
        customer: CustomerId,
        purpose: LoanPurpose,
        officer: Option<&str>,
        review: bool,
    ) -> Loan {
        let mut events = vec![LoanEvent::LeadCaptured {
            loan_id: LoanId(Uuid::nil()),
            customer_id: customer,
            channel: "app".into(),
            purpose,
            requested_amount: Money::parse("1000.00").unwrap(),
            currency: Currency::parse("CNY").unwrap(),
            term_months: 12,
            captured_on: d("2026-01-05"),
        }];
        if let Some(officer) = officer {
            events.push(LoanEvent::OfficerAssigned {
                officer_id: officer.into(),
                previous_officer_id: None,
            });
        }
        if review {
            events.push(LoanEvent::SubmittedForReview {
                documents: vec![],
                submitted_on: d("2026-01-05"),
            });
        }
        Loan::replay(&events)
    }

    fn table() -> RoutingTable {
        RoutingTable {
            officers: vec![
                OfficerRoute::parse("o-south:guangdong+fujian:consumer:2").unwrap(),
                OfficerRoute::parse("o-any:*:consumer+business:3").unwrap(),
                OfficerRoute::parse("o-biz:guangdong:business:5").unwrap(),
            ],
            default_officer: None,
        }
    }

    /// (loan, officer or "unrouted") of each action.
    fn decided(actions: &[Action]) -> Vec<(u128, String)> {
        actions
            .iter()
            .map(|a| {
                assert_eq!(a.rule, Rule::LeadRouting);
                let who = match &a.effect {
                    Effect::Command { kind, payload } => {
                        assert_eq!(*kind, CommandKind::AssignOfficer);
                        assert_eq!(a.id, assignment_id(a.loan_id.unwrap()));
                        payload["officer_id"].as_str().unwrap().to_owned()
                    }
                    Effect::Notify(Notification::LeadUnrouted(n)) => {
                        assert_eq!(n.id, a.id);
                        "unrouted".to_owned()
                    }
                    other => panic!("unexpected {other:?}"),
                };
                (a.loan_id.unwrap().0.as_u128(), who)
            })
            .collect()
    }

    #[test]
    fn leads_go_to_the_covering_officer_with_the_fewest_open_loans_counting_earlier_decisions() {
        let (south, south_customer) = customer(1, "Guangdong");
        let (north, north_customer) = customer(2, "beijing");
        let mut portfolio = Portfolio::default();
        portfolio.insert_customer(south, south_customer);
        portfolio.insert_customer(north, north_customer);
        let day = d("2026-01-05");
        let mut put = |n: u128, loan: Loan| {
            portfolio.insert_loan(LoanId(Uuid::from_u128(n)), LoanFile::with(loan, day, 1));
        };
        // Existing workload: o-any holds one review; o-south one lead. A rejected or
        // disbursed loan would not count (not open).
        put(1, lead(north, LoanPurpose::Consumer, Some("o-any"), true));
        put(
            2,
            lead(south, LoanPurpose::Consumer, Some("o-south"), false),
        );
        // New leads, in id order.
        put(10, lead(south, LoanPurpose::Consumer, None, false)); // o-south 1/2, o-any 1/3: tie -> o-any (name)
        put(11, lead(south, LoanPurpose::Consumer, None, false)); // o-south 1/2, o-any 2/3 -> o-south
        put(12, lead(south, LoanPurpose::Consumer, None, false)); // o-south 2/2 full, o-any 2/3 -> o-any
        put(13, lead(north, LoanPurpose::Business, None, false)); // only o-any, 3/3 full -> unrouted
        put(14, lead(south, LoanPurpose::Business, None, false)); // o-any full, o-biz 0/5 -> o-biz
        put(15, lead(south, LoanPurpose::Business, Some("o-x"), false)); // has an officer: skipped
        let mut config = RuleConfig {
            routing: table(),
            default_manager: Some("m-0".into()),
            ..RuleConfig::default()
        };
        let actions = lead_routing(&portfolio, day, &config, &BTreeMap::new());
        assert_eq!(
            decided(&actions),
            [
                (10, "o-any".to_owned()),
                (11, "o-south".to_owned()),
                (12, "o-any".to_owned()),
                (13, "unrouted".to_owned()),
                (14, "o-biz".to_owned()),
            ]
        );
        assert!(
            actions[0].reason.contains("o-south 1/2, o-any 1/3"),
            "{}",
            actions[0].reason
        );
        assert!(
            actions[3].reason.contains("at capacity"),
            "{}",
            actions[3].reason
        );
        let Effect::Notify(Notification::LeadUnrouted(unrouted)) = &actions[3].effect else {
            panic!()
        };
        assert_eq!(unrouted.recipients, ["m-0"]);
        assert_eq!(unrouted.region, "beijing");

        // Decisions already taken (pending in the outbox, not yet on the stream) are not
        // taken again and count in the workload: with 10 and 11 routed, 12 sees o-any at
        // 2/3 and o-south at 2/2.
        let routed: BTreeMap<LoanId, String> = [(10, "o-any"), (11, "o-south")]
            .into_iter()
            .map(|(n, o)| (LoanId(Uuid::from_u128(n)), o.to_owned()))
            .collect();
        let again = lead_routing(&portfolio, day, &config, &routed);
        assert_eq!(decided(&again), decided(&actions)[2..]);
        // The same ids however often it is decided.
        assert_eq!(
            again.iter().map(|a| a.id).collect::<Vec<_>>(),
            actions[2..].iter().map(|a| a.id).collect::<Vec<_>>()
        );

        // With a default officer, the lead nobody can take goes to them.
        config.routing.default_officer = Some("o-desk".into());
        let with_default = lead_routing(&portfolio, day, &config, &routed);
        assert_eq!(decided(&with_default)[1], (13, "o-desk".to_owned()));
        assert!(with_default[1].reason.contains("default officer o-desk"));

        // No table: the rule is off.
        assert!(lead_routing(&portfolio, day, &RuleConfig::default(), &BTreeMap::new()).is_empty());
    }

    #[test]
    fn routes_parse_from_flags_and_json_and_bad_ones_are_refused() {
        assert_eq!(
            OfficerRoute::parse("o-1:guangdong+fujian:consumer:20").unwrap(),
            OfficerRoute {
                officer_id: "o-1".into(),
                regions: vec!["guangdong".into(), "fujian".into()],
                purposes: vec![LoanPurpose::Consumer],
                capacity: 20,
            }
        );
        let any = OfficerRoute::parse("o-2:*:*:5").unwrap();
        assert!(any.regions.is_empty() && any.purposes.is_empty());
        for bad in [
            "o-1:x:consumer",
            ":x:consumer:2",
            "o-1:x:mortgage:2",
            "o-1:x:consumer:-1",
        ] {
            assert!(OfficerRoute::parse(bad).is_err(), "{bad}");
        }
        let table = RoutingTable::from_json(
            r#"{"officers": [{"officer_id": "o-1", "regions": ["guangdong"], "purposes": ["business"], "capacity": 4}], "default_officer": "o-desk"}"#,
        )
        .unwrap();
        assert_eq!(table.officers[0].purposes, [LoanPurpose::Business]);
        assert_eq!(table.default_officer.as_deref(), Some("o-desk"));
        assert!(RoutingTable::from_json(r#"{"officers": [{"officer_id": "o-1", "capacity": 1}, {"officer_id": "o-1", "capacity": 2}]}"#).is_err());
        assert!(RoutingTable::from_json(r#"{"officer": []}"#).is_err());
    }
}
