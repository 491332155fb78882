-- Webhook deliveries (the outbox): written in the transaction of the event
-- that causes them, updated after each attempt, deleted with their task.
CREATE TABLE webhook_deliveries (
  id TEXT PRIMARY KEY,
  task_id TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  state TEXT NOT NULL,            -- pending | delivered | failed | stopped
  next_attempt_at INTEGER NOT NULL, -- ms since epoch
  gone INTEGER NOT NULL DEFAULT 0,  -- 1 when the receiver answered 410 to it
  doc TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_by_task ON webhook_deliveries (task_id, sequence);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
