-- Content of LINE users' images, video, audio and files, downloaded from LINE at once and kept
-- in the media store (`media.store`), one row per (channel, LINE message).
CREATE TABLE media (
    -- UUID v5 of the channel and LINE's message id (the URL's last part)
    media_id        TEXT PRIMARY KEY,
    channel_id      TEXT NOT NULL,
    line_message_id TEXT NOT NULL,
    -- the object's key in the media store
    store_key       TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    size            BIGINT NOT NULL,
    -- LINE's fileName (files), if any
    file_name       TEXT,
    -- image | video | audio | file
    kind            TEXT NOT NULL,
    -- the room it was posted in, the channel's member and their tenant (who may read it)
    room_id         TEXT NOT NULL,
    owner           TEXT NOT NULL,
    tenant          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (channel_id, line_message_id)
);

-- The room messages the LINE users' messages became, for LINE's `unsend`.
CREATE TABLE posted (
    channel_id      TEXT NOT NULL,
    line_message_id TEXT NOT NULL,
    room_id         TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (channel_id, line_message_id)
);
