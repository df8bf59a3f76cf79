-- The LINE gateway store (PostgreSQL schema `line`, or SQLite in the standalone binary).

-- A member's LINE Official Account (one Messaging API channel per member, one member per
-- channel). The channel secret and access token are AES-256-GCM ciphertexts
-- (base64(nonce || ciphertext), key `line.secrets_key`).
CREATE TABLE channels (
    channel_id  TEXT PRIMARY KEY,
    -- the member (`<username>@<tenant>`) and their tenant
    user_id     TEXT NOT NULL UNIQUE,
    tenant      TEXT NOT NULL,
    -- `@` and the account's id, for the add-friend URL
    basic_id    TEXT NOT NULL,
    secret_enc  TEXT NOT NULL,
    token_enc   TEXT NOT NULL,
    -- 1 while the member may not use LINE (authz's `line_access`): webhooks are answered, their
    -- events are not processed
    suspended   BIGINT NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX channels_by_tenant ON channels (tenant, user_id);

-- The webhook's durable queue and its dedup: one row per event, keyed as LINE identifies it.
-- A redelivered event inserts nothing. Processed rows are kept 7 days for the dedup.
CREATE TABLE inbox (
    -- the bot user id of the webhook body
    destination      TEXT NOT NULL,
    webhook_event_id TEXT NOT NULL,
    channel_id       TEXT NOT NULL,
    -- the event's place in its webhook body (events of one body keep their order)
    position         BIGINT NOT NULL,
    -- the event as LINE sent it (JSON text)
    event            TEXT NOT NULL,
    received_at      BIGINT NOT NULL,
    processed_at     BIGINT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    -- a worker's lease on the row, or the end of a retry's backoff (ms; 0: free)
    claimed_until    BIGINT NOT NULL DEFAULT 0,
    -- 1 when given up after too many attempts, or refused for good
    failed           BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    PRIMARY KEY (destination, webhook_event_id)
);
CREATE INDEX inbox_pending ON inbox (processed_at, channel_id, received_at, position);

-- Block periods between a member and a LINE user (from contacts' events), for outbound sends.
CREATE TABLE blocks (
    user_id   TEXT NOT NULL,
    line_user TEXT NOT NULL,
    since_ms  BIGINT NOT NULL,
    until_ms  BIGINT,
    PRIMARY KEY (user_id, line_user, since_ms)
);

-- LINE users of a channel: their 1:1 room with the member and whether they follow now.
CREATE TABLE line_users (
    channel_id   TEXT NOT NULL,
    -- LINE's user id (without the `line:` prefix)
    line_user_id TEXT NOT NULL,
    room_id      TEXT,
    followed     BIGINT NOT NULL DEFAULT 1,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (channel_id, line_user_id)
);
