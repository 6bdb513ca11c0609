//! Integration tests of the auditors' tools against a real nats-server, on a history
//! written by the real engine.

#![allow(
    unused_crate_dependencies,
    reason = "one test binary links every dependency of the crate"
)]

mod an_export_imports_into_the_embedded_store;
mod as_of_differs_on_the_two_timelines;
mod checkpoints_name_the_first_broken_link;
mod collection_cases_show_in_history_and_exports;
mod every_kind_of_tampering_is_detected;
mod export_then_verify_is_intact;
mod history_masks_reveals_and_erases;
mod support;
