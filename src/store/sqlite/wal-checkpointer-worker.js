// The thread of WalCheckpointer (wal-checkpointer.ts): its own connection to the
// store's file, copying the write-ahead log back into the database every
// `intervalMs`. Plain JavaScript: a worker thread loads JavaScript, and this
// file needs nothing but better-sqlite3.
import { clearInterval, setInterval } from "node:timers";
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const { path, intervalMs } = workerData;
const db = new Database(path);
db.pragma("busy_timeout = 0");

function checkpoint() {
  try {
    // PASSIVE: copies what it can without waiting for the writer or for readers; a
    // frame it could not copy now is copied on a later turn.
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch {
    // Busy (a checkpoint by another connection of the file is running): next turn.
  }
}

const timer = setInterval(checkpoint, intervalMs);
parentPort.on("message", (message) => {
  if (message !== "close") return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
