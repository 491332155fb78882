import http2 from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { TaskService, WatchResponseSchema, type WatchRequest, type WatchResponse } from "../../gen/rookery/v1/task_service_pb.js";
import { connectTaskClient } from "./client.js";
import { follow, type FollowOptions } from "./follow.js";

const TASK_ID = "0b7e3c55-7c1d-4d8e-9a51-3f0c2f4b9e10";
const event = (sequence: bigint, status = TaskStatus.RUNNING) =>
  create(WatchResponseSchema, { event: { taskId: TASK_ID, sequence, status } });
const output = (offset: bigint, text: string) =>
  create(WatchResponseSchema, { output: { iteration: 1, attempt: 1, offset, endOffset: offset + BigInt(text.length), text } });
const lost = (code: Code) => new ConnectError("gone", code);

/**
 * An in-memory server whose Watch answers its n-th call with `calls[n]`: the responses to send,
 * then the error to end with (none: the stream ends OK). It records each request.
 */
function server(calls: [WatchResponse[], ConnectError?][]) {
  const requests: WatchRequest[] = [];
  const transport = createRouterTransport(({ service }) =>
    service(TaskService, {
      async *watch(request) {
        const [responses, error] = calls[requests.length] ?? [[], lost(Code.Unavailable)];
        requests.push(request);
        yield* responses;
        if (error) throw error;
      },
    }),
  );
  return { client: createClient(TaskService, transport), requests };
}

/** Runs follow() to its end: what it yielded, what it threw, and what it told. */
async function run(client: ReturnType<typeof server>["client"], giveUpAfterMs = 60_000) {
  const told: string[] = [];
  const options: FollowOptions = {
    giveUpAfterMs,
    onLost: (error, after) => told.push(`lost ${Code[error.code]} after ${after}`),
    onGiveUp: (after) => told.push(`gave up after ${after}`),
  };
  const received: WatchResponse[] = [];
  let error: ConnectError | undefined;
  try {
    for await (const response of follow(client, TASK_ID, 0n, options)) received.push(response);
  } catch (e) {
    error = ConnectError.from(e);
  }
  return { received, error, told };
}

describe("follow()", () => {
  it("should reconnect after the last event's sequence and the last output's end offset when the server goes away, and miss nothing", async () => {
    const { client, requests } = server([
      [[event(1n), event(2n), output(0n, "hello "), output(6n, "wor")], lost(Code.Unavailable)],
      [[], lost(Code.Unavailable)], // still down
      [[output(9n, "ld"), event(3n)], lost(Code.Canceled)], // cut off: killed
      [[event(4n, TaskStatus.COMPLETED)]],
    ]);
    const { received, error, told } = await run(client);
    expect(error).toBeUndefined();
    expect(requests.map((r) => [r.afterSequence, r.outputOffset, r.includeOutput])).toEqual([
      [0n, 0n, true],
      [2n, 9n, true],
      [2n, 9n, true],
      [3n, 0n, true],
    ]);
    expect(received.map((r) => r.event?.sequence ?? r.output?.text)).toEqual([1n, 2n, "hello ", "wor", "ld", 3n, 4n]);
    expect(told).toEqual(["lost Unavailable after 2", "lost Canceled after 3"]);
  });

  it("should reconnect when a real connection is reset, which connect-node reports as Aborted caused by ECONNRESET", async () => {
    // A server process killed with bytes it had not read makes the kernel reset the
    // connection instead of closing it; resetAndDestroy() does the same on purpose.
    const sockets: Socket[] = [];
    let calls = 0;
    const h2 = http2.createServer(
      connectNodeAdapter({
        routes: ({ service }) =>
          service(TaskService, {
            async *watch() {
              if (calls++ === 0) {
                yield event(1n);
                await new Promise((resolve) => setTimeout(resolve, 50)); // let the event reach the client
                for (const socket of sockets) socket.resetAndDestroy();
                await new Promise(() => undefined);
              }
              yield event(2n, TaskStatus.COMPLETED);
            },
          }),
      }),
    );
    h2.on("connection", (socket: Socket) => sockets.push(socket));
    await new Promise<void>((resolve) => h2.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = h2.address() as AddressInfo;
      const { received, error, told } = await run(connectTaskClient(`127.0.0.1:${port}`));
      expect(error).toBeUndefined();
      expect(received.map((r) => r.event?.sequence)).toEqual([1n, 2n]);
      expect(told).toEqual(["lost Aborted after 1"]);
    } finally {
      for (const socket of sockets) socket.destroy();
      h2.close();
    }
  });

  it.each([Code.Aborted, Code.Internal])("should end at once on %s sent by the server, after the stream has flowed", async (code) => {
    const { client, requests } = server([[[event(1n)], lost(code)]]);
    const { error, told } = await run(client);
    expect(error?.code).toBe(code);
    expect(requests).toHaveLength(1);
    expect(told).toEqual([]);
  });

  it("should end at once on an error a reconnect cannot mend, after the stream has flowed", async () => {
    const { client, requests } = server([[[event(1n)], lost(Code.NotFound)]]);
    const { error, told } = await run(client);
    expect(error?.code).toBe(Code.NotFound);
    expect(requests).toHaveLength(1);
    expect(told).toEqual([]);
  });

  it.each([Code.Unavailable, Code.Canceled])(
    "should end at once on %s before the first response: a wrong address or protocol, not a server that went away",
    async (code) => {
      const { client, requests } = server([[[], lost(code)]]);
      const { error, told } = await run(client);
      expect(error?.code).toBe(code);
      expect(requests).toHaveLength(1);
      expect(told).toEqual([]);
    },
  );

  it("should give up with the last error after the time given, saying where to resume", async () => {
    const { client, requests } = server([[[event(1n), event(2n)], lost(Code.Unavailable)]]); // then down for good
    const started = Date.now();
    const { error, told } = await run(client, 1_000);
    expect(error?.code).toBe(Code.Unavailable);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(requests.length).toBeGreaterThan(2);
    expect(requests.slice(1).every((r) => r.afterSequence === 2n)).toBe(true);
    expect(told).toEqual(["lost Unavailable after 2", "gave up after 2"]);
  });
});
