-- Bounds (deadlines, retention): when a task not held by a run expires, and
-- when a terminal one is purged, as indexed columns beside the document.
ALTER TABLE tasks ADD COLUMN expires_at INTEGER; -- ms since epoch, while PENDING or INPUT_REQUIRED with a deadline
ALTER TABLE tasks ADD COLUMN purge_at INTEGER;   -- ms since epoch, while terminal with a retention
CREATE INDEX tasks_by_expiry ON tasks (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX tasks_by_purge ON tasks (purge_at) WHERE purge_at IS NOT NULL;
