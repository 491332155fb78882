// A short mutual exclusion per owner across replicas, so that counting an
// owner's active tasks and creating one is a single step (the active-task
// quota is exact). Built on the one operation that is atomic on every
// MongoDB-wire server, FerretDB included: inserting a unique _id. A holder
// that dies leaves a lock that expires after `ttlMs` and is then taken over.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Collection } from "mongodb";
import { isDuplicateKey } from "./mongo-errors.js";
import { StoreUnavailableError } from "../../domain/errors.js";

export interface LockDocument {
  _id: string;
  token: string;
  expires_at: Date;
}

export interface OwnerLockOptions {
  locks: Collection<LockDocument>;
  now: () => Date;
  /** Longer than any work done under the lock (a count and a few inserts). */
  ttlMs?: number;
  /** Give up (UNAVAILABLE) after waiting this long for the lock. */
  waitMs?: number;
}

export async function withOwnerLock<T>(lock: OwnerLockOptions, owner: string, work: () => Promise<T>): Promise<T> {
  const ttlMs = lock.ttlMs ?? 10_000;
  const giveUpAt = Date.now() + (lock.waitMs ?? 15_000);
  const token = randomUUID();
  for (let attempt = 0; ; attempt++) {
    try {
      await lock.locks.insertOne({ _id: owner, token, expires_at: new Date(lock.now().getTime() + ttlMs) });
      break;
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
    }
    const held = await lock.locks.findOne({ _id: owner });
    if (held && held.expires_at <= lock.now()) {
      // Its holder died holding it. Deleting by token removes that lock only, never a newer one
      // (on a server without atomic filtered deletes two waiters may both get here; see SCALING notes in README).
      await lock.locks.deleteOne({ _id: owner, token: held.token });
      continue;
    }
    if (Date.now() > giveUpAt) throw new StoreUnavailableError(`the create lock of caller "${owner}" stayed busy`);
    await sleep(Math.min(2 ** Math.min(attempt, 6), 50) * (0.5 + Math.random()));
  }
  try {
    return await work();
  } finally {
    await lock.locks.deleteOne({ _id: owner, token });
  }
}
