-- Rooms a member creates with several LINE users: each LINE user still sees a 1:1 chat with
-- the member's account, so the gateway remembers, per (channel, LINE user), the room that last
-- wrote to them there when it is not their 1:1 room: their answers go to it. And their LINE
-- display name (from their profile), which names them to the room's other LINE users.
ALTER TABLE line_users ADD COLUMN reply_room TEXT;
ALTER TABLE line_users ADD COLUMN display_name TEXT;
CREATE INDEX line_users_by_user ON line_users (line_user_id, followed);
