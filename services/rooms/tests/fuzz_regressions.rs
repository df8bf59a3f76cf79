//! The fuzz target `ws_client_frame` (`fuzz/`), replayed: its seeds and every crash input kept
//! (`fuzz/regressions/ws_client_frame/`) go through the same check, invariants included (all
//! but the largest allocation's size, which only the fuzz target measures).

#[path = "../../../fuzz/checks/ws_client_frame.rs"]
mod checks;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn ws_client_frame_seeds_and_regressions_hold() {
    assert!(replay::replay("ws_client_frame", checks::check) > 0);
}
