//! Behaviour of the pure domain core, one module per behaviour.
#![allow(
    unused_crate_dependencies,
    reason = "a test binary links every dependency of its crate; it uses only some"
)]
mod a_contract_carries_the_approved_terms;
mod backdated_repayments_and_reversals;
mod collection_cases_follow_their_loan;
mod lifecycle_properties;
mod pii_never_prints_in_clear;
mod schedules_match_closed_forms;
mod support;
mod transition_table;
