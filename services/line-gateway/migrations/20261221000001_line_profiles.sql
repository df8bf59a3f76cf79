-- The LINE display name and picture of every LINE user a channel knows: its friends (from
-- their profile at the follow) and the members of its LINE groups (from LINE's group member
-- profile), which members' rooms show beside `line:<id>`, and which name a LINE user's
-- message relayed to other LINE users. Supersedes `line_users.display_name`.
CREATE TABLE line_profiles (
    channel_id   TEXT NOT NULL,
    line_user_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    picture_url  TEXT,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (channel_id, line_user_id)
);
CREATE INDEX line_profiles_by_user ON line_profiles (line_user_id);
INSERT INTO line_profiles (channel_id, line_user_id, display_name, picture_url, updated_at)
    SELECT channel_id, line_user_id, display_name, NULL, updated_at FROM line_users WHERE display_name IS NOT NULL;
