//! Behaviour of the wire contract: what other teams code against.
#![allow(
    unused_crate_dependencies,
    reason = "a test binary links every dependency of its crate; it uses only some"
)]
mod bad_requests_are_refused_with_a_field;
mod golden_events_decode_forever;
mod proto_matches_the_code;
mod scenario;
