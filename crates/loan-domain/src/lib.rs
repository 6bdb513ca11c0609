//! The pure domain core of the loan lifecycle engine.
pub mod money;
pub mod pii;
pub mod schedule;
