// Deadlines a caller may ask for that Node cannot time. A timer longer than
// 2^31 - 1 ms (24.8 days) fires at once, and grpc-js (1.14.7, server-interceptors.js)
// even turns such a grpc-timeout into a negative number (`| 0`): either listener
// ended the call at once with DEADLINE_EXCEEDED, a unary one possibly after doing
// its work. gRPC allows timeouts of up to 99,999,999 hours, and a client that
// means "no deadline" sometimes sends the largest. So a timeout header longer than
// a timer can wait is dropped before the library reads it: the call has no
// deadline on the server, and the caller's own deadline still ends it (its
// client cancels the call then).

import { MAX_TIMER_MS } from "../timer-limit.js";

/** The headers that carry a call's timeout: gRPC and gRPC-Web, and the Connect protocol. */
export const TIMEOUT_HEADERS = ["grpc-timeout", "connect-timeout-ms"] as const;

const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 };

/** Whether the header asks for a timeout longer than a timer can wait (a malformed one is left for the library to refuse). */
export function isUntimeable(name: (typeof TIMEOUT_HEADERS)[number], value: string | undefined | null): boolean {
  if (!value) return false;
  if (name === "connect-timeout-ms") return /^\d{1,10}$/.test(value) && Number(value) > MAX_TIMER_MS;
  const match = /^(\d{1,8})([HMSmun])$/.exec(value.trim());
  return match !== null && Number(match[1]) * GRPC_UNIT_MS[match[2]!]! > MAX_TIMER_MS;
}
