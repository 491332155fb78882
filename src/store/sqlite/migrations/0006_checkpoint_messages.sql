-- The checkpoint's conversation, one row a message, so that an iteration's
-- commit (and a lease renewal) writes what the iteration added instead of the
-- whole conversation again: a task's doc holds its checkpoint without its
-- messages, and checkpoint_messages says how many rows here are its own.
-- Docs written before this migration keep their messages inline (with
-- checkpoint_messages 0) until their next write moves them here.
CREATE TABLE checkpoint_messages (
  task_no  INTEGER NOT NULL,
  position INTEGER NOT NULL,
  doc      TEXT NOT NULL,
  PRIMARY KEY (task_no, position)
) WITHOUT ROWID;
ALTER TABLE tasks ADD COLUMN checkpoint_messages INTEGER NOT NULL DEFAULT 0;
