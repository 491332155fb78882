-- Coalesced model output of running iterations (see TaskStore.appendOutput).
-- One process serves a SQLite file, so this is written only when a store is
-- shared; the table exists so that the adapter honours the whole port.
CREATE TABLE output_chunks (
  task_id    TEXT NOT NULL,
  iteration  INTEGER NOT NULL,
  attempt    INTEGER NOT NULL,
  offset     INTEGER NOT NULL,
  end_offset INTEGER NOT NULL,
  parts      TEXT NOT NULL, -- JSON array of OutputPart
  PRIMARY KEY (task_id, iteration, attempt, offset)
) WITHOUT ROWID;
