-- Tasks are stored as BackgroundTask-shaped JSON documents (doc); the columns
-- beside it exist only to index what the service queries.
CREATE TABLE tasks (
  id               TEXT PRIMARY KEY,
  owner            TEXT NOT NULL,
  status           TEXT NOT NULL,
  created_at       INTEGER NOT NULL, -- ms since epoch
  request_id       TEXT,
  lease_expires_at INTEGER,          -- ms since epoch, while RUNNING
  sequence         INTEGER NOT NULL, -- last event's sequence
  doc              TEXT NOT NULL
);

-- Idempotent Submit: one task per (owner, request_id).
CREATE UNIQUE INDEX tasks_by_request_id ON tasks (owner, request_id) WHERE request_id IS NOT NULL;
-- List, newest first, keyset on (created_at, id), with and without a status filter.
CREATE INDEX tasks_by_owner_time ON tasks (owner, created_at DESC, id DESC);
CREATE INDEX tasks_by_owner_status_time ON tasks (owner, status, created_at DESC, id DESC);
-- Claims: oldest PENDING first, and RUNNING with an expired lease.
CREATE INDEX tasks_by_status_time ON tasks (status, created_at);

CREATE TABLE task_events (
  task_id  TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  doc      TEXT NOT NULL,
  PRIMARY KEY (task_id, sequence)
) WITHOUT ROWID;
