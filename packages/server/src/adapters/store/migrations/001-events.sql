-- The durable log of critical events. `id` is the global event id (a safe integer, so BIGINT);
-- `payload` has already passed the protocol catalogue. It is kept as JSON text, byte for byte as
-- published: JSONB would refuse strings holding \u0000 and reorder keys, and replay never queries
-- inside payloads.
CREATE TABLE events (
  id BIGINT PRIMARY KEY,
  topic TEXT NOT NULL,
  type TEXT NOT NULL,
  ts TIMESTAMPTZ NOT NULL,
  payload TEXT NOT NULL,
  critical BOOLEAN NOT NULL
);

-- Replay reads "topics = ANY(...) AND id > after ORDER BY id".
CREATE INDEX events_topic_id_idx ON events (topic, id);

-- Retention deletes "ts < cutoff" on every instance.
CREATE INDEX events_ts_idx ON events (ts);
