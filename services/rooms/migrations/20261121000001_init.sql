-- The rooms store. Portable SQL: the same migration runs on PostgreSQL (schema `rooms`) and on
-- SQLite (the standalone binary). Ids are text (UUIDv7), times are milliseconds since the epoch.

CREATE TABLE rooms (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT,
    description TEXT,
    photo_url   TEXT,
    -- kind + the sorted pair: a 1:1 room exists once per pair.
    direct_key  TEXT UNIQUE,
    -- The last event seq. Written only together with the events, in one transaction.
    last_seq    BIGINT NOT NULL DEFAULT 0,
    -- The fencing epoch of the last writer; writes with an older epoch are refused.
    fence       BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE members (
    room_id    TEXT NOT NULL REFERENCES rooms (id),
    user_id    TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    role       TEXT NOT NULL,
    joined_seq BIGINT NOT NULL,
    read_seq   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id);

CREATE TABLE events (
    room_id    TEXT NOT NULL REFERENCES rooms (id),
    seq        BIGINT NOT NULL,
    -- 'message' (body is a message body) or 'event' (body is a system event)
    kind       TEXT NOT NULL,
    message_id TEXT,
    sender     TEXT,
    body       TEXT,
    recalled   BIGINT NOT NULL DEFAULT 0,
    sent_at    BIGINT NOT NULL,
    PRIMARY KEY (room_id, seq)
);
CREATE UNIQUE INDEX events_by_message_id ON events (message_id);

-- Applied commands and their recorded results: a command id is applied once per room.
CREATE TABLE commands (
    room_id    TEXT NOT NULL,
    command_id TEXT NOT NULL,
    result     TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, command_id)
);

CREATE TABLE notifications (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    room_id    TEXT,
    text       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX notifications_by_user ON notifications (user_id, created_at);
