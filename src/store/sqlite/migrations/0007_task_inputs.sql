-- A long prompt or system prompt, or client tool definitions, stored once when
-- the task is created instead of in the doc that every transition reads and
-- rewrites: with a 250 KB prompt each iteration's commit parsed, serialized and
-- wrote it again (~4.5 ms of the server's thread an iteration, bench/RESULTS.md).
-- Such a task's doc keeps the prompt's head (what a BASIC view shows), no system
-- prompt and no tools, and inputs_apart says the whole of them is here. Docs
-- written before this migration keep them inline until their next write moves
-- them here.
CREATE TABLE task_inputs (
  task_no INTEGER PRIMARY KEY,
  doc     TEXT NOT NULL
);
ALTER TABLE tasks ADD COLUMN inputs_apart INTEGER NOT NULL DEFAULT 0;
