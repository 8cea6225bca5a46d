-- Small key/value facts about the realtime layer, e.g. the id head recorded at clean shutdown.
CREATE TABLE realtime_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
