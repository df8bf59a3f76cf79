-- The contacts store (PostgreSQL schema `contacts`, or SQLite in the standalone binary).

-- A member's contacts: external workspace users (Clients/Partners) and LINE friends. A LINE
-- friend row exists from the follow on ("Messaging on LINE"); `saved` puts a row in
-- Clients/Partners. Removing a contact only clears `saved` and the member's own notes.
CREATE TABLE contacts (
    -- UUIDv7
    id                TEXT PRIMARY KEY,
    -- the member whose contact this is (`<username>@<tenant>`) and their tenant
    owner             TEXT NOT NULL,
    owner_tenant      TEXT NOT NULL,
    -- 'external' or 'line'
    kind              TEXT NOT NULL,
    -- the contact's user id (`<username>@<tenant>`, or `line:<LINE user id>`)
    peer              TEXT NOT NULL,
    -- NULL for LINE users
    peer_tenant       TEXT,
    display_name      TEXT NOT NULL,
    company           TEXT,
    picture_url       TEXT,
    -- the pair's 1:1 room, once known
    room_id           TEXT,
    saved             BIGINT NOT NULL DEFAULT 0,
    -- LINE only: 1 while the LINE user follows the member's LINE Official Account
    following         BIGINT,
    -- LINE only: `at_ms` of the newest follow or unfollow applied (events come in any order)
    follow_changed_at BIGINT,
    -- the member's own notes on the contact
    name              TEXT,
    phone             TEXT,
    email             TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (owner, peer)
);
CREATE INDEX contacts_by_owner ON contacts (owner, kind, id);

-- Blocks as periods: `user` blocks `peer` from `since_ms` until `until_ms` (NULL: still).
CREATE TABLE blocks (
    owner    TEXT NOT NULL,
    peer     TEXT NOT NULL,
    since_ms BIGINT NOT NULL,
    until_ms BIGINT,
    PRIMARY KEY (owner, peer, since_ms)
);
-- At most one open period per pair.
CREATE UNIQUE INDEX blocks_open ON blocks (owner, peer) WHERE until_ms IS NULL;

-- What LINE users see of a member beyond the workspace profile.
CREATE TABLE line_profiles (
    user_id    TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    about      TEXT,
    phone      TEXT,
    website    TEXT,
    updated_at BIGINT NOT NULL
);

-- The LINE Official Account a member is bound to (from the LINE gateway's events).
CREATE TABLE line_bindings (
    user_id    TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    basic_id   TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
