//! The fuzz target `message_body` (`fuzz/`), replayed: its seeds and every crash input kept
//! (`fuzz/regressions/message_body/`) go through the same check, invariants included.

#[path = "../../../fuzz/checks/message_body.rs"]
mod checks;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn message_body_seeds_and_regressions_hold() {
    assert!(replay::replay("message_body", checks::check) > 0);
}
