-- The highest fencing epoch granted for each shard, written by a new owner before it consumes
-- the shard's queue. Every room write checks it (a write with an older epoch is refused), so a
-- replica that lost its lease (paused, partitioned) cannot write once the next owner is in,
-- even to rooms the next owner has not touched yet. Its maximum, with the rooms' fences, is the
-- floor for new epochs when Redis has lost its counters.
CREATE TABLE shard_fences (
    shard INTEGER PRIMARY KEY,
    fence BIGINT NOT NULL
);
