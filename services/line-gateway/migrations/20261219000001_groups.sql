-- LINE groups (and multi-person chats) a channel's account is in, each connected to one room
-- of the member's (kind line_group), where the group itself is a participant (`line:<groupId>`:
-- members' messages are pushed to the group) and its LINE users join as they appear.
CREATE TABLE line_groups (
    channel_id TEXT NOT NULL,
    -- LINE's group id (`C...`) or multi-person chat id (`R...`)
    group_id   TEXT NOT NULL,
    room_id    TEXT NOT NULL,
    -- 0 once the account left the group (the room stays, closed for sending)
    active     BIGINT NOT NULL DEFAULT 1,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (channel_id, group_id)
);
CREATE INDEX line_groups_by_room ON line_groups (room_id);

-- The LINE users the gateway added to a group's room (so that they leave it with the group).
CREATE TABLE line_group_members (
    channel_id   TEXT NOT NULL,
    group_id     TEXT NOT NULL,
    line_user_id TEXT NOT NULL,
    PRIMARY KEY (channel_id, group_id, line_user_id)
);
