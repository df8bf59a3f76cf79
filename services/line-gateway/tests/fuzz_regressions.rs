//! The fuzz target `line_webhook` (`fuzz/`), replayed: its seeds and every crash input kept
//! (`fuzz/regressions/line_webhook/`) go through the same check, invariants included.

#[path = "../../../fuzz/checks/line_webhook.rs"]
mod checks;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn line_webhook_seeds_and_regressions_hold() {
    assert!(replay::replay("line_webhook", checks::check) > 0);
}
