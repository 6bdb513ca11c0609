//! A contract may lend less than was approved, never more, and only at the approved rate
//! and term: signing cannot bypass the underwriting decision.

use loan_domain::DomainError;
use loan_domain::loan::LoanCommand;

use crate::support::{Stage, actor_for, day, drive_to, money, rate};

#[test]
fn signing_with_other_terms_than_approved_is_refused_naming_the_field() {
    let mut s = drive_to(Stage::ReviewApproved);
    s.on(day::signed());
    let approved = s.sign();
    let with = |change: &dyn Fn(&mut loan_domain::loan::SignContract)| {
        let LoanCommand::SignContract(mut c) = approved.clone() else {
            unreachable!("sign() builds a SignContract")
        };
        change(&mut c);
        LoanCommand::SignContract(c)
    };
    let cases: [(&str, LoanCommand, &str, Option<&str>); 3] = [
        (
            "higher rate",
            with(&|c| c.annual_rate = rate("0.36")),
            "terms_differ_from_approval",
            Some("annual_rate"),
        ),
        (
            "longer term",
            with(&|c| c.term_months = 60),
            "terms_differ_from_approval",
            Some("term_months"),
        ),
        (
            "more money",
            with(&|c| c.principal = money("50000.01")),
            "above_approved_amount",
            Some("principal"),
        ),
    ];
    for (name, command, expected_rule, expected_field) in cases {
        match s.decide_as(&command, &actor_for(command.kind())) {
            Err(DomainError::RuleViolated { rule, field, .. }) => {
                assert_eq!(
                    (rule, field.as_deref()),
                    (expected_rule, expected_field),
                    "{name}"
                );
            }
            other => panic!("{name}: expected a refusal, got {other:?}"),
        }
    }
    let less = with(&|c| c.principal = money("30000.00"));
    assert!(
        s.decide_as(&less, &actor_for(less.kind())).is_ok(),
        "lending less than approved is allowed"
    );
    s.run(&approved);
    assert_eq!(s.stage(), Stage::Signed);
}
