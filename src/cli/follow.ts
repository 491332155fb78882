// A Watch that outlives the connection. Once the stream has flowed, losing it
// to the server going away (a server shutting down ends its streams with
// UNAVAILABLE and says to reconnect; one that is down or restarting cannot be
// reached, UNAVAILABLE too; one killed cuts its open streams off, which the
// transport reports as CANCELED, and this client never cancels its own) makes it
// reconnect with the last event's sequence and the end offset of the output it
// has, as the API asks of every client (README, "To resume"), so nothing is
// missing or seen twice. Other errors end it, as does a server that stays away
// for `giveUpAfterMs`, and so does any error before the first response: that is
// a wrong address or protocol (plaintext to a TLS port ends the same way), not
// a server that went away.
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import type { WatchResponse } from "../../gen/rookery/v1/task_service_pb.js";
import type { TaskClient } from "./client.js";

export interface FollowOptions {
  /** How long to keep reconnecting after the stream is lost, counted from the loss. */
  giveUpAfterMs: number;
  /** Told of the loss when it is first seen; `afterSequence` is where the stream will resume. */
  onLost: (error: ConnectError, afterSequence: bigint) => void;
  /** Told when it stops trying, before the last error is thrown. */
  onGiveUp: (afterSequence: bigint) => void;
}

/** Each wait before a reconnect: 250 ms, doubling, at most this. */
const MAX_WAIT_MS = 4_000;

/** Whether the error is the connection lost rather than an answer the server gave. */
function serverWentAway(error: unknown): error is ConnectError {
  if (!(error instanceof ConnectError)) return false;
  if (error.code === Code.Unavailable || error.code === Code.Canceled) return true;
  // The kernel resets a connection whose process died with bytes unread (a SIGKILL
  // right after this client sent a flow-control frame does it).
  return error.code === Code.Aborted && (error.cause as { code?: unknown } | undefined)?.code === "ECONNRESET";
}

export async function* follow(
  client: TaskClient,
  id: string,
  afterSequence: bigint,
  options: FollowOptions,
): AsyncGenerator<WatchResponse> {
  let sequence = afterSequence;
  let outputOffset = 0n; // of the iteration after `sequence`
  let flowed = false;
  let lostAt: number | undefined;
  let tries = 0;
  for (;;) {
    try {
      for await (const response of client.watch({ id, afterSequence: sequence, includeOutput: true, outputOffset })) {
        flowed = true;
        lostAt = undefined;
        tries = 0;
        if (response.event) {
          sequence = response.event.sequence;
          outputOffset = 0n;
        } else if (response.output) {
          outputOffset = response.output.endOffset;
        }
        yield response;
      }
      return; // the server ends the stream after the event that enters a terminal status
    } catch (error) {
      if (!flowed || !serverWentAway(error)) throw error;
      if (lostAt === undefined) {
        lostAt = Date.now();
        options.onLost(error, sequence);
      } else if (Date.now() - lostAt >= options.giveUpAfterMs) {
        options.onGiveUp(sequence);
        throw error;
      }
      await sleep(Math.min(250 * 2 ** tries++, MAX_WAIT_MS));
    }
  }
}
