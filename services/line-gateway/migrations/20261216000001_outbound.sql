-- Outbound messages to LINE users: one row per (room message, LINE user), inserted once when
-- rooms publishes `room.line_message` (a replay inserts nothing), then sent by the sender
-- workers with LINE's push API. A failed row stays (the dead-letter list).
CREATE TABLE outbound (
    message_id          TEXT NOT NULL,
    -- LINE's user id (the push's `to`, without the `line:` prefix)
    line_user_id        TEXT NOT NULL,
    channel_id          TEXT NOT NULL,
    room_id             TEXT NOT NULL,
    seq                 BIGINT NOT NULL,
    tenant              TEXT NOT NULL,
    -- the member who sent the message (told when it cannot be delivered)
    sender              TEXT NOT NULL,
    -- the LINE message objects (a JSON array); sent 5 per request, in order
    messages            TEXT NOT NULL,
    -- X-Line-Retry-Key of the first request (UUID v5 of the message id and the LINE user;
    -- later requests of a long message derive theirs from it and their index)
    retry_key           TEXT NOT NULL,
    -- pending | sent | failed
    status              TEXT NOT NULL,
    -- requests (of 5 message objects) LINE accepted so far
    chunks_sent         BIGINT NOT NULL DEFAULT 0,
    -- attempts of the current request
    attempts            BIGINT NOT NULL DEFAULT 0,
    -- a worker's lease on the row, or the end of a retry's backoff (ms; 0: now)
    next_attempt_at     BIGINT NOT NULL DEFAULT 0,
    last_error          TEXT,
    -- LINE's id of the request that had accepted a retried one (409)
    accepted_request_id TEXT,
    -- 0 for a failed row whose sender has not been told yet
    notified            BIGINT NOT NULL DEFAULT 1,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (message_id, line_user_id)
);
CREATE INDEX outbound_pending ON outbound (status, channel_id, line_user_id, created_at, seq);
CREATE INDEX outbound_unnotified ON outbound (notified, status);

-- The LINE users' 1:1 rooms, for finding the channel of a room's LINE recipient.
CREATE INDEX line_users_by_room ON line_users (room_id, line_user_id);
