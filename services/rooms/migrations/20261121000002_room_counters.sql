-- The room list without reading the history. The room actor's commit keeps, in the transaction
-- that appends the events:
--   rooms.last_message_seq      the seq of the room's last message (0: none yet)
--   rooms.message_count         the room's messages
--   events.message_count        the room's messages up to and including this event
--   events.sender_message_count for a message: its sender's messages in the room up to and
--                               including it (0 for system events)
--   members.sent_count          the member's own messages in the room (all of them, also those
--                               sent before leaving and coming back)
-- and a read marker moved to seq S stores what the history holds up to S:
--   members.read_message_count  the room's messages with seq <= read_seq
--   members.read_sent_count     the member's own messages with seq <= read_seq
-- so a member's unread count, the messages of others after their read marker, is
--   (rooms.message_count - read_message_count) - (sent_count - read_sent_count)
-- exact for a marker at any seq, and read without touching `events`. Portable SQL (PostgreSQL
-- and SQLite 3.33+: window functions, UPDATE ... FROM).

ALTER TABLE rooms ADD COLUMN last_message_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rooms ADD COLUMN message_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN message_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN sender_message_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN sent_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN read_message_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN read_sent_count BIGINT NOT NULL DEFAULT 0;

-- A sender's last message at or before a seq: one index probe (read markers, members joining).
-- Only messages have a sender.
CREATE INDEX events_by_sender ON events (room_id, sender, seq);

-- Backfill, in one pass over each room's history.
UPDATE events
SET message_count = counted.message_count, sender_message_count = counted.sender_message_count
FROM (
    SELECT room_id, seq,
           SUM(CASE WHEN kind = 'message' THEN 1 ELSE 0 END)
               OVER (PARTITION BY room_id ORDER BY seq) AS message_count,
           CASE WHEN kind = 'message'
                THEN COUNT(*) OVER (PARTITION BY room_id, kind, sender ORDER BY seq)
                ELSE 0 END AS sender_message_count
    FROM events
) AS counted
WHERE counted.room_id = events.room_id AND counted.seq = events.seq;

UPDATE rooms SET
    message_count = COALESCE((SELECT MAX(e.message_count) FROM events e WHERE e.room_id = rooms.id), 0),
    last_message_seq = COALESCE(
        (SELECT MAX(e.seq) FROM events e WHERE e.room_id = rooms.id AND e.kind = 'message'), 0);

UPDATE members SET
    sent_count = COALESCE(
        (SELECT MAX(e.sender_message_count) FROM events e
          WHERE e.room_id = members.room_id AND e.sender = members.user_id), 0),
    read_message_count = COALESCE(
        (SELECT e.message_count FROM events e WHERE e.room_id = members.room_id AND e.seq = members.read_seq), 0),
    read_sent_count = COALESCE(
        (SELECT MAX(e.sender_message_count) FROM events e
          WHERE e.room_id = members.room_id AND e.sender = members.user_id AND e.seq <= members.read_seq), 0);
