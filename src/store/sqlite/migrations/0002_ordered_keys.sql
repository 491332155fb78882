-- Task ids are random UUIDs, so rows keyed by them land at random places in
-- their B-trees and every write dirties pages all over the file. Here tasks get
-- an integer key in creation order (task_no) and events are keyed by it, so new
-- rows are appended; only the small id index stays random. It also adds the
-- indexes that List across all owners (API keys off) needs.
CREATE TABLE tasks_v2 (
  task_no          INTEGER PRIMARY KEY,
  id               TEXT NOT NULL UNIQUE,
  owner            TEXT NOT NULL,
  status           TEXT NOT NULL,
  created_at       INTEGER NOT NULL, -- ms since epoch
  request_id       TEXT,
  lease_expires_at INTEGER,          -- ms since epoch, while RUNNING
  sequence         INTEGER NOT NULL, -- last event's sequence
  doc              TEXT NOT NULL
);
INSERT INTO tasks_v2 (id, owner, status, created_at, request_id, lease_expires_at, sequence, doc)
  SELECT id, owner, status, created_at, request_id, lease_expires_at, sequence, doc
  FROM tasks ORDER BY created_at, id;

CREATE TABLE task_events_v2 (
  task_no  INTEGER NOT NULL,
  sequence INTEGER NOT NULL,
  doc      TEXT NOT NULL,
  PRIMARY KEY (task_no, sequence)
) WITHOUT ROWID;
INSERT INTO task_events_v2 (task_no, sequence, doc)
  SELECT t.task_no, e.sequence, e.doc FROM task_events e JOIN tasks_v2 t ON t.id = e.task_id;

DROP TABLE task_events;
DROP TABLE tasks;
ALTER TABLE tasks_v2 RENAME TO tasks;
ALTER TABLE task_events_v2 RENAME TO task_events;

-- Idempotent Submit: one task per (owner, request_id).
CREATE UNIQUE INDEX tasks_by_request_id ON tasks (owner, request_id) WHERE request_id IS NOT NULL;
-- List, newest first, keyset on (created_at, id): all owners, and one owner;
-- each with and without a status filter. The status one also serves claims.
CREATE INDEX tasks_by_time ON tasks (created_at, id);
CREATE INDEX tasks_by_status_time ON tasks (status, created_at, id);
CREATE INDEX tasks_by_owner_time ON tasks (owner, created_at, id);
CREATE INDEX tasks_by_owner_status_time ON tasks (owner, status, created_at, id);
