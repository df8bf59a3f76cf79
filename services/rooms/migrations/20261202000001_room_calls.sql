-- A room's call while one goes on (JSON: `chat_protocol::call::Call`), written with every change
-- of it in the same transaction as the command's events, so the room's next actor (on this
-- replica or another, after a handoff) takes the call over; NULL when there is none.
ALTER TABLE rooms ADD COLUMN call_state TEXT;
