-- Blocks, as the contacts service publishes them (`contact.blocked`, `contact.unblocked`): while
-- `blocker` blocks `blocked`, messages `blocked` sends are not delivered to `blocker`, neither
-- live nor in history or sync. A block is a period: messages sent during it stay hidden after
-- it ends. The two events of a period carry its `since_ms` (contacts' clock), so they are
-- applied idempotently and in either order.
CREATE TABLE blocks (
    blocker  TEXT NOT NULL,
    blocked  TEXT NOT NULL,
    since_ms BIGINT NOT NULL,
    -- NULL while the block lasts
    until_ms BIGINT,
    PRIMARY KEY (blocker, blocked, since_ms)
);
CREATE INDEX blocks_by_blocked ON blocks (blocked);
