-- Chat conversations (useChat on our generations): each turn is a user message and the generation
-- that answers it, kept per user so that another tab or device lists and reopens them. The
-- conversation id is chosen by the client, so it is unique per user only. Times are kept to the
-- millisecond: the list's cursor carries them through JavaScript dates exactly.
CREATE TABLE conversations (
  user_id TEXT NOT NULL,
  id TEXT NOT NULL,
  title TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT date_trunc('milliseconds', now()),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT date_trunc('milliseconds', now()),
  PRIMARY KEY (user_id, id)
);

-- The list reads "user_id = $1 ORDER BY updated_at DESC, id DESC" from a cursor.
CREATE INDEX conversations_recent_idx ON conversations (user_id, updated_at DESC, id DESC);
-- Retention deletes "updated_at < cutoff" on every instance.
CREATE INDEX conversations_updated_idx ON conversations (updated_at);

CREATE TABLE conversation_turns (
  -- Identity, not created_at: two turns sent in the same millisecond keep their order.
  turn_no BIGINT GENERATED ALWAYS AS IDENTITY,
  generation_id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  conversation_id TEXT NOT NULL,
  prompt TEXT NOT NULL,
  -- running | completed | failed | cancelled; `answer` is the final text once settled.
  status TEXT NOT NULL,
  answer TEXT NOT NULL DEFAULT '',
  error TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT date_trunc('milliseconds', now()),
  FOREIGN KEY (user_id, conversation_id) REFERENCES conversations (user_id, id) ON DELETE CASCADE
);

-- A conversation's turns, its turn count and its running turn are read by (user_id, conversation_id).
CREATE INDEX conversation_turns_conversation_idx ON conversation_turns (user_id, conversation_id, turn_no);
