import { once } from "node:events";
import * as net from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { connectTaskClient } from "./client.js";
import { follow } from "./follow.js";

const TASK_ID = "0b7e3c55-7c1d-4d8e-9a51-3f0c2f4b9e10";

describe("follow()", () => {
  it("should keep reconnecting to a server that is not there, say so once, and give up with UNAVAILABLE after the time given", async () => {
    const server = net.createServer().listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as net.AddressInfo;
    server.close(); // nothing listens there now: every attempt is refused
    const lost: [Code, bigint][] = [];
    const started = Date.now();
    const responses = follow(connectTaskClient(`127.0.0.1:${port}`), TASK_ID, 7n, {
      giveUpAfterMs: 1_500,
      onLost: (error, after) => lost.push([error.code, after]),
    });
    const error = await (async () => {
      for await (const _ of responses) throw new Error("no server, so no response");
    })().catch((e: unknown) => e);
    expect(ConnectError.from(error).code).toBe(Code.Unavailable);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
    expect(lost).toEqual([[Code.Unavailable, 7n]]);
  });
});
