-- The transactional outbox: every change event is written in the transaction of the change it
-- tells, and the relay publishes unsent rows in order (created_at, event_id), marking each sent
-- once the broker confirmed it. Sent rows are kept a day, then deleted.
CREATE TABLE outbox (
    -- the AuthzEnvelope's id (UUIDv7): consumers derive their idempotency keys from it
    event_id   TEXT PRIMARY KEY,
    -- the AuthzEnvelope as published (JSON)
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- NULL until the broker confirmed the publish
    sent_at    BIGINT
);
CREATE INDEX outbox_unsent ON outbox (created_at, event_id) WHERE sent_at IS NULL;

-- One relay publishes at a time, so that events leave in order: the one holding this lease
-- (a replica's boot id) until `lease_until` (ms). A relay that stops holding it is replaced
-- when the lease runs out.
CREATE TABLE outbox_relay (
    id          BIGINT PRIMARY KEY,
    holder      TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);
INSERT INTO outbox_relay (id, holder, lease_until) VALUES (1, '', 0);

-- When a user was last disabled (ms): their tokens issued until then stay refused
-- (/internal/v1/revocations), also after they are enabled again.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
UPDATE users SET disabled_at = updated_at WHERE disabled = 1;
CREATE INDEX users_disabled_at ON users (disabled_at);
