-- Critical events are durable before they are visible: the publisher stores one *pending* (no id
-- yet, under a server-generated event_key), publishes it on the bus (which assigns the id), then
-- sets the id on the row (see events/event-publisher.ts). So `id` is NULL while a row is pending,
-- and unique once set; every read by id skips pending rows by itself (NULL > x is not true).
-- The table keeps no primary key: `id` and `event_key` are each unique where set.
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ALTER COLUMN id DROP NOT NULL;
CREATE UNIQUE INDEX events_id_idx ON events (id);
ALTER TABLE events ADD COLUMN event_key TEXT;
CREATE UNIQUE INDEX events_event_key_idx ON events (event_key);
-- When the row was committed, by the database's clock: the repair pass gives a pending row that
-- long to be published and confirmed by its publisher before it decides for it.
ALTER TABLE events ADD COLUMN created_at TIMESTAMPTZ NOT NULL DEFAULT now();
CREATE INDEX events_pending_idx ON events (created_at) WHERE id IS NULL;
