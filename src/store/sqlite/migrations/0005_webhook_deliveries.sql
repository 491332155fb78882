-- Webhook deliveries (the outbox): written in the transaction of the event
-- that causes them, deleted with their task. `doc` holds what never changes
-- (the transition and the task after it); the columns hold the attempts.
CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,
  task_id TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  receiver TEXT NOT NULL,           -- host:port of the URL (senders share slots out by it)
  state TEXT NOT NULL,              -- pending | delivered | failed | stopped
  next_attempt_at INTEGER NOT NULL, -- ms since epoch
  attempts INTEGER NOT NULL DEFAULT 0,
  last_attempt_at INTEGER,
  last_status_code INTEGER,
  last_error TEXT,
  gone INTEGER NOT NULL DEFAULT 0,  -- 1 when the receiver answered 410 to it
  doc TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_by_task ON webhook_deliveries (task_id, sequence);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
