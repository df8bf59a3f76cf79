//! cargo-fuzz target `message_body`: the check in `checks/message_body.rs`, shared with the owning crate's
//! replay test (see `fuzz/README.md`).
#![no_main]

#[path = "../checks/message_body.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
