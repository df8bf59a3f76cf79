//! cargo-fuzz target `line_webhook`: the check in `checks/line_webhook.rs`, shared with the owning crate's
//! replay test (see `fuzz/README.md`).
#![no_main]

#[path = "../checks/line_webhook.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
