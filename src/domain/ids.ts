// Ids that sort in creation order: UUID v7 from the uuid package, in creation order
// within this process (a counter within one millisecond, as RFC 9562 suggests). Tasks
// and webhook deliveries get them, so the stores' id indexes grow at their end instead
// of taking writes all over (bench/RESULTS.md, issues 15 and 16). The random bytes come
// from a pool filled at once, like Node's own randomUUID: asking WebCrypto for 16 bytes
// per id, as the package does by itself, was ~4% of a Submit's CPU in a profile.
import { randomFillSync } from "node:crypto";
import { v7 as uuidv7 } from "uuid";

const randomPool = Buffer.alloc(16 * 256);
let randomOffset = randomPool.length;
const v7State = { msecs: -Infinity, seq: 0 };

/** A UUID v7 for something made at `now`: later than every id this process made before. */
export function timeOrderedId(now: Date): string {
  if (randomOffset === randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const random = randomPool.subarray(randomOffset, (randomOffset += 16));
  if (now.getTime() > v7State.msecs) {
    v7State.msecs = now.getTime();
    v7State.seq = random.readUInt32BE(6) & 0x7fffffff;
  } else {
    v7State.seq = (v7State.seq + 1) | 0;
  }
  return uuidv7({ msecs: v7State.msecs, seq: v7State.seq, random });
}
