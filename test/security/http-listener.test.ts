// The HTTP listener (connect-node) answers broken and hostile requests the way
// the grpc-js listener does: the same code for the same bytes, strict JSON, the
// protocol decided on the whole HTTP/2 preface, stalled watchers cut off.
import { setTimeout as sleep } from "node:timers/promises";
import * as http2 from "node:http2";
import * as net from "node:net";
import { once } from "node:events";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SubmitRequestSchema, WatchRequestSchema } from "../../gen/rookery/v1/task_service_pb.js";
import { startHarness, waitForStatus, type Harness } from "../support/harness.js";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";

// Each event carries its tool call's 2 KB of arguments: the 200 events then far outgrow what
// a client that stops reading lets through (its window) plus what the server's HTTP/2 stream
// buffers before a write waits (64 KiB from Node 22 on, 16 KiB before).
const PADDED_ARGUMENTS = JSON.stringify({ padding: "x".repeat(2048) });

describe("the HTTP listener with broken and hostile requests", () => {
  let h: Harness;
  let base: string;
  let openGate: () => void;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  beforeAll(async () => {
    h = await startHarness({ ROOKERY_WATCH_STALL_MS: "2000", ROOKERY_WATCH_QUEUE_LIMIT: "8" });
    h.fake.respond(async (c) => {
      if (c.prompt !== "many iterations") return { content: "done" };
      await gate;
      return c.turn < 200 ? { toolCalls: [{ name: "current_time", arguments: PADDED_ARGUMENTS }] } : { content: "done" };
    });
    base = `http://127.0.0.1:${h.rookery.httpPort}`;
  });
  afterAll(async () => {
    await h.close();
  });

  // A SubmitRequest cut short in the middle of its prompt field.
  const truncated = toBinary(SubmitRequestSchema, create(SubmitRequestSchema, { prompt: "a prompt" })).subarray(0, 5);

  const postConnect = (method: string, body: BodyInit, contentType: string) =>
    fetch(`${base}/rookery.v1.TaskService/${method}`, { method: "POST", headers: { "content-type": contentType }, body });

  it("should answer a truncated application/proto body with INVALID_ARGUMENT, in the words of the gRPC listener", async () => {
    const response = await postConnect("Submit", truncated, "application/proto");
    const error = (await response.json()) as { code: string; message: string };
    expect(response.status).toBe(400);
    expect(error.code).toBe("invalid_argument");
    const viaGrpc = await rawGrpcSubmit(`127.0.0.1:${h.rookery.grpcPort}`, Buffer.from(truncated));
    expect(viaGrpc.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.message).toBe(viaGrpc.details);
    expect(error.message).toMatch(/^request: is not a valid rookery\.v1\.SubmitRequest: /);
  });

  it("should answer a garbage gRPC message on the HTTP listener with INVALID_ARGUMENT too", async () => {
    const headers = await grpcSubmitOverHttp2(base, truncated);
    expect(headers["grpc-status"]).toBe(String(grpc.status.INVALID_ARGUMENT));
  });

  it("should answer a binary request past the size limit with RESOURCE_EXHAUSTED, as a JSON one, on Connect and gRPC, and so should the gRPC listener", async () => {
    // 3 MiB: past the listener's limit (4 x ROOKERY_MAX_PROMPT_BYTES + 1 MiB = 2 MiB by default).
    const oversized = toBinary(SubmitRequestSchema, create(SubmitRequestSchema, { prompt: "a".repeat(3 * 1024 * 1024) }));
    const answers = [];
    for (const [body, contentType] of [
      [oversized, "application/proto"],
      [JSON.stringify({ prompt: "a".repeat(3 * 1024 * 1024) }), "application/json"],
    ] as const) {
      // Before the fix a binary one was never answered: the timeout turns that into a failure here.
      const response = await fetch(`${base}/rookery.v1.TaskService/Submit`, {
        method: "POST",
        headers: { "content-type": contentType },
        body,
        signal: AbortSignal.timeout(20_000),
      });
      answers.push({ contentType, status: response.status, body: (await response.json()) as { code: string; message: string } });
    }
    expect(answers).toEqual(
      ["application/proto", "application/json"].map((contentType) => ({
        contentType,
        status: 429,
        body: { code: "resource_exhausted", message: expect.stringMatching(/is larger than configured readMaxBytes/) },
      })),
    );

    const trailers = await grpcSubmitOverHttp2(base, oversized);
    expect(trailers["grpc-status"]).toBe(String(grpc.status.RESOURCE_EXHAUSTED));
    // The gRPC listener has the same limit (grpc-js's own default is 4 MiB).
    const viaGrpc = await rawGrpcSubmit(`127.0.0.1:${h.rookery.grpcPort}`, Buffer.from(oversized));
    expect(viaGrpc.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect((await postConnect("List", JSON.stringify({ pageSize: 1 }), "application/json")).status).toBe(200);
  });

  it("should refuse an unknown enum name in Connect JSON instead of dropping the filter", async () => {
    const response = await postConnect("List", JSON.stringify({ statuses: ["TASK_STATUS_BOGUS"] }), "application/json");
    expect(response.status).toBe(400);
    expect(((await response.json()) as { code: string }).code).toBe("invalid_argument");
    const known = await postConnect("List", JSON.stringify({ statuses: ["TASK_STATUS_COMPLETED"] }), "application/json");
    expect(known.status).toBe(200);
  });

  it("should serve HTTP/1.1 when the first TCP segment of a request is the single byte P", async () => {
    const socket = net.connect(h.rookery.httpPort, "127.0.0.1");
    await once(socket, "connect");
    socket.setNoDelay(true);
    const body = JSON.stringify({ pageSize: 1 });
    socket.write("P");
    await sleep(50); // its own segment
    socket.write(
      `OST /rookery.v1.TaskService/List HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    );
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    await once(socket, "close");
    expect(Buffer.concat(chunks).toString()).toMatch(/^HTTP\/1\.1 200 /);
  });

  it("should count label values in characters, as the error says: 200 emoji pass, 257 do not", async () => {
    const emoji = (n: number) => "😀".repeat(n);
    expect((await h.connect.submit({ prompt: "emoji", labels: { mood: emoji(200) } })).task?.labels.mood).toBe(emoji(200));
    await expect(h.connect.submit({ prompt: "emoji", labels: { mood: emoji(257) } })).rejects.toThrow(/at most 256 characters/);
  });

  it(
    "should cut off a Watch whose client stops reading with ENHANCE_YOUR_CALM (RESOURCE_EXHAUSTED to gRPC clients) and free it",
    { timeout: 60_000 },
    async () => {
      // 200 iterations, far more than the HTTP/2 buffers of a client that reads nothing hold.
      const { task } = await h.grpc.submit({ prompt: "many iterations", maxIterations: 250 });
      await waitForStatus(h.grpc, task!.id, TaskStatus.RUNNING);
      await expect.poll(() => h.rookery.watchers()).toBe(0);
      // A raw HTTP/2 client with a tiny window that never reads: the server soon cannot write.
      const session = http2.connect(base, { settings: { initialWindowSize: 64 } });
      const stream = session.request({
        ":method": "POST",
        ":path": "/rookery.v1.TaskService/Watch",
        "content-type": "application/grpc",
        te: "trailers",
      });
      const request = Buffer.from(toBinary(WatchRequestSchema, create(WatchRequestSchema, { id: task!.id })));
      const frame = Buffer.alloc(5 + request.length);
      frame.writeUInt32BE(request.length, 1);
      request.copy(frame, 5);
      stream.end(frame);
      stream.pause();
      const errors: Error[] = [];
      stream.on("error", (e) => errors.push(e));
      const closed = new Promise((resolve) => stream.once("close", resolve));
      await expect.poll(() => h.rookery.watchers()).toBe(1);
      openGate();
      await closed;
      expect(stream.rstCode).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      expect(errors.map((e) => e.message)).toEqual(["Stream closed with error code NGHTTP2_ENHANCE_YOUR_CALM"]);
      await expect.poll(() => h.rookery.watchers()).toBe(0);
      session.close();
    },
  );
});

function rawGrpcSubmit(address: string, bytes: Buffer): Promise<{ code: number; details: string }> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      "/rookery.v1.TaskService/Submit",
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      (error) => {
        client.close();
        resolve({ code: error?.code ?? 0, details: error?.details ?? "" });
      },
    ),
  );
}

/**
 * A gRPC Submit of `message` as it is, over HTTP/2 to the HTTP listener: its response headers and
 * trailers. They are waited for, not the stream's close: the server may answer before it has read
 * all of a large request, and then reads no more of it.
 */
async function grpcSubmitOverHttp2(base: string, message: Uint8Array): Promise<http2.IncomingHttpHeaders> {
  const session = http2.connect(base);
  const stream = session.request({
    ":method": "POST",
    ":path": "/rookery.v1.TaskService/Submit",
    "content-type": "application/grpc",
    te: "trailers",
  });
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  Buffer.from(message).copy(frame, 5);
  const headers: http2.IncomingHttpHeaders = {};
  const answered = new Promise<void>((resolve) => {
    // A trailers-only answer carries grpc-status in its headers.
    stream.on("response", (h) => {
      Object.assign(headers, h);
      if (h["grpc-status"] !== undefined) resolve();
    });
    stream.on("trailers", (t) => {
      Object.assign(headers, t);
      resolve();
    });
    stream.on("close", resolve);
  });
  stream.on("error", () => undefined);
  stream.end(frame);
  stream.resume();
  await answered;
  session.destroy();
  return headers;
}
