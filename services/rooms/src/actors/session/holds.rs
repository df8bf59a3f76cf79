//! Pushes held back while a sync answers their room (see the session's module doc).

use std::collections::{HashMap, VecDeque};

use chat_protocol::RoomId;

use crate::hub::WireFrame;

/// A push held back, with its seq when it has one.
pub type Held = (Option<i64>, WireFrame);

/// What a sync does next for a room, once it has sent the room's history.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Pushes were dropped while held: read the history again from where it got.
    Reread,
    /// Send these held pushes (skipping seqs already sent), then ask again.
    Flush(Vec<Held>),
    /// Nothing held: the room's pushes flow live from now on.
    Done,
}

/// Pushes of the rooms a sync is answering, held back until the sync has sent each room's
/// history. Bounded: past `capacity` frames in all, a room's held frames are dropped and it is
/// marked `overflowed` (its pushes are dropped until the sync reads it again: the events are
/// committed, so the store has them).
pub struct Holds {
    rooms: HashMap<RoomId, RoomHold>,
    total: usize,
    capacity: usize,
}

#[derive(Default)]
struct RoomHold {
    frames: VecDeque<Held>,
    overflowed: bool,
}

impl Holds {
    pub fn new(capacity: usize) -> Self {
        Self { rooms: HashMap::new(), total: 0, capacity: capacity.max(1) }
    }

    pub fn hold(&mut self, room: RoomId) {
        self.rooms.entry(room).or_default();
    }

    /// Take a push of `room` if the room is held (true), keeping or dropping it.
    pub fn offer(&mut self, room: &RoomId, seq: Option<i64>, frame: &WireFrame) -> bool {
        let Some(hold) = self.rooms.get_mut(room) else { return false };
        if hold.overflowed {
            return true;
        }
        if self.total >= self.capacity {
            self.total -= hold.frames.len();
            hold.frames.clear();
            hold.overflowed = true;
            return true;
        }
        hold.frames.push_back((seq, frame.clone()));
        self.total += 1;
        true
    }

    pub fn step(&mut self, room: &RoomId) -> Step {
        let Some(hold) = self.rooms.get_mut(room) else { return Step::Done };
        if hold.overflowed {
            hold.overflowed = false;
            return Step::Reread;
        }
        if hold.frames.is_empty() {
            self.rooms.remove(room);
            self.let_go();
            return Step::Done;
        }
        self.total -= hold.frames.len();
        Step::Flush(hold.frames.drain(..).collect())
    }

    /// Stop holding `room`: its held frames, in order.
    pub fn release(&mut self, room: &RoomId) -> Vec<WireFrame> {
        let Some(hold) = self.rooms.remove(room) else { return Vec::new() };
        self.total -= hold.frames.len();
        self.let_go();
        hold.frames.into_iter().map(|(_, frame)| frame).collect()
    }

    /// Nothing held any more: let go of the map's buffer (an idle session keeps none).
    fn let_go(&mut self) {
        if self.rooms.is_empty() && self.rooms.capacity() > 0 {
            self.rooms = HashMap::new();
        }
    }

    /// Stop holding every room (a sync that ended early): the held frames.
    pub fn release_all(&mut self) -> Vec<WireFrame> {
        let rooms: Vec<RoomId> = self.rooms.keys().cloned().collect();
        rooms.iter().flat_map(|room| self.release(room)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: i64) -> WireFrame {
        WireFrame::text(&format!(r#"{{"type":"message","room_id":"r","seq":{seq}}}"#))
    }

    #[test]
    fn pushes_of_held_rooms_wait_and_others_pass() {
        let mut holds = Holds::new(10);
        let (r, other) = (RoomId::new("r"), RoomId::new("o"));
        holds.hold(r.clone());
        assert!(holds.offer(&r, Some(7), &frame(7)));
        assert!(holds.offer(&r, Some(8), &frame(8)));
        assert!(!holds.offer(&other, Some(1), &frame(1)), "a room not synced flows live");
        match holds.step(&r) {
            Step::Flush(frames) => assert_eq!(frames.iter().map(|f| f.0).collect::<Vec<_>>(), vec![Some(7), Some(8)]),
            other => panic!("{other:?}"),
        }
        assert_eq!(holds.step(&r), Step::Done);
        assert!(!holds.offer(&r, Some(9), &frame(9)), "released: live again");
        assert_eq!(holds.total, 0);
    }

    #[test]
    fn an_overflowing_hold_drops_its_frames_until_the_room_is_read_again() {
        let mut holds = Holds::new(2);
        let (a, b) = (RoomId::new("a"), RoomId::new("b"));
        holds.hold(a.clone());
        holds.hold(b.clone());
        assert!(holds.offer(&a, Some(1), &frame(1)));
        assert!(holds.offer(&b, Some(1), &frame(1)));
        // Full: a's frames go, and a keeps dropping until its next step says reread.
        assert!(holds.offer(&a, Some(2), &frame(2)));
        assert!(holds.offer(&a, Some(3), &frame(3)));
        assert_eq!(holds.total, 1);
        assert_eq!(holds.step(&a), Step::Reread);
        assert!(holds.offer(&a, Some(4), &frame(4)), "held again after the reread began");
        match holds.step(&a) {
            Step::Flush(frames) => assert_eq!(frames.len(), 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(holds.step(&a), Step::Done);
        assert_eq!(holds.release_all().len(), 1, "b's frame");
        assert_eq!(holds.total, 0);
        assert!(holds.rooms.is_empty());
        assert_eq!(holds.rooms.capacity(), 0, "no buffer kept");
    }
}
