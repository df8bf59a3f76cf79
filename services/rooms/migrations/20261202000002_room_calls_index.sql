-- The rooms with a call going on (few at any time): a sync reads the caller's, and each node's
-- sweep finds the calls whose ringing outlived their room's actor (a handoff, a crash).
CREATE INDEX rooms_with_calls ON rooms (id) WHERE call_state IS NOT NULL;
