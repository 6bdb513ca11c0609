//! Behaviour of the pure domain core, one module per behaviour.
mod lifecycle_properties;
mod pii_never_prints_in_clear;
mod schedules_match_closed_forms;
mod support;
mod transition_table;
