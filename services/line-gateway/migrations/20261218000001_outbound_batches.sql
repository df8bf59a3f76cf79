-- A burst of a member's messages to one LINE user goes out in one push (at most 5 message
-- objects): the rows sent together share a batch key, the X-Line-Retry-Key of that push (the
-- first row's own key). A batch is fixed before its first attempt and never changes, so a
-- retried push carries the same messages under the same key.
ALTER TABLE outbound ADD COLUMN batch_key TEXT;
CREATE INDEX outbound_by_batch ON outbound (batch_key);
