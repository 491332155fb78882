// The thread of WalCheckpointer (wal-checkpointer.ts): its own connection to the
// store's file, copying the write-ahead log back into the database when the log
// holds `pages` pages not yet copied, or `quietMs` after the last copy if it
// holds fewer. Plain JavaScript: a worker thread loads JavaScript, and this file
// needs nothing but better-sqlite3 and Node.
import { Buffer } from "node:buffer";
import { closeSync, openSync, readSync } from "node:fs";
import { endianness } from "node:os";
import { clearInterval, setInterval } from "node:timers";
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const { path, pages, quietMs, tickMs } = workerData;
const db = new Database(path);
db.pragma("busy_timeout = 0");

// The wal-index header at the start of the -shm file, as SQLite documents it
// (https://www.sqlite.org/walformat.html, "The WAL-Index Header"), in native byte
// order: the version (3007000) at byte 0, isInit at 12, mxFrame (frames in the
// log) at 16; then, after the header's two 48-byte copies, nBackfill (frames
// copied into the database) at 96.
const header = Buffer.alloc(100);
const u32 = endianness() === "LE" ? (offset) => header.readUInt32LE(offset) : (offset) => header.readUInt32BE(offset);

/** Pages in the log not yet copied into the database; undefined when the header cannot be read. */
function uncopiedPages() {
  let fd;
  try {
    fd = openSync(`${path}-shm`, "r");
    if (readSync(fd, header, 0, header.length, 0) < header.length) return undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (u32(0) !== 3007000 || header[12] !== 1) return undefined;
  // Read while the writer may be changing it: a torn value only moves a copy by a tick.
  return Math.max(0, u32(16) - u32(96));
}

let lastCopy = Date.now();

function tick() {
  const waiting = uncopiedPages();
  if (waiting === 0) return;
  // Unreadable (another SQLite build, a file not there yet): copy on every tick, as safe as ever.
  if (waiting !== undefined && waiting < pages && Date.now() - lastCopy < quietMs) return;
  try {
    // PASSIVE: copies what it can without waiting for the writer or for readers; a
    // frame it could not copy now is copied on a later turn.
    db.pragma("wal_checkpoint(PASSIVE)");
    lastCopy = Date.now();
  } catch {
    // Busy (a checkpoint by another connection of the file is running): next turn.
  }
}

const timer = setInterval(tick, tickMs);
parentPort.on("message", (message) => {
  if (message !== "close") return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
