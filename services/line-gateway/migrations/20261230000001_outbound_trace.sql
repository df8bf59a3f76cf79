-- The W3C traceparent of the change event an outbound row was made from (NULL while tracing
-- is off): the push to LINE, whenever it happens, continues that trace.
ALTER TABLE outbound ADD COLUMN trace_parent TEXT;
