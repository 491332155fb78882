// Deadlines longer than Node can time (a timer waits at most 2^31 - 1 ms, 24.8 days).
// A caller that sends one (gRPC allows up to 99,999,999 hours; some clients send the
// largest to mean "none") must get its call served, not ended at once with
// DEADLINE_EXCEEDED as grpc-js and connect-node did; a deadline that fits is still kept.
import * as http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GetRequestSchema, WatchRequestSchema } from "../../gen/rookery/v1/task_service_pb.js";
import { startHarness, type Harness } from "../support/harness.js";

const THIRTY_DAYS_MS = 30 * 24 * 3_600_000;

/** One request message in the gRPC / Connect envelope (flags, length, message). */
function enveloped(message: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** The enveloped frames of a stream's body. */
function envelopes(body: Buffer): { flags: number; payload: Buffer }[] {
  const frames: { flags: number; payload: Buffer }[] = [];
  for (let at = 0; at + 5 <= body.length;) {
    const length = body.readUInt32BE(at + 1);
    frames.push({ flags: body[at]!, payload: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return frames;
}

interface Answer {
  status: string | undefined;
  /** The whole response body (for gRPC-Web and Connect streams, their end-of-stream frame is in it). */
  body: Buffer;
  trailers: http2.IncomingHttpHeaders;
}

/** A call made with raw headers over HTTP/2; `sawData` resolves at its first response bytes. */
function call(port: number, path: string, headers: http2.OutgoingHttpHeaders, body: Buffer) {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const request = session.request({ ":method": "POST", ":path": path, ...headers });
  const chunks: Buffer[] = [];
  let status: string | undefined;
  let trailers: http2.IncomingHttpHeaders = {};
  let sawFirst!: () => void;
  const sawData = new Promise<void>((resolve) => (sawFirst = resolve));
  request.on("response", (h) => (status = h["grpc-status"] as string | undefined));
  request.on("trailers", (t) => (trailers = t));
  request.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    sawFirst();
  });
  const answered = new Promise<Answer>((resolve, reject) => {
    request.on("error", reject);
    request.on("close", () => {
      session.close();
      resolve({ status: (trailers["grpc-status"] as string | undefined) ?? status, body: Buffer.concat(chunks), trailers });
    });
  });
  request.end(body);
  return { sawData, answered };
}

describe("deadlines longer than a timer can wait", () => {
  let h: Harness;
  const gates = new Map<string, () => void>();
  beforeAll(async () => {
    h = await startHarness();
    h.fake.respond(async (c) => {
      if (c.prompt.startsWith("gated")) await new Promise<void>((resolve) => gates.set(c.prompt, resolve));
      return { content: "done" };
    });
  });
  afterAll(() => h.close());

  const watchBody = (id: string) => enveloped(toBinary(WatchRequestSchema, create(WatchRequestSchema, { id })));
  const grpcHeaders = (timeout: string) => ({ "content-type": "application/grpc", te: "trailers", "grpc-timeout": timeout });

  /** Watches a task held in its model call with `headers`, then lets it finish: the stream must still be open then. */
  async function watchThroughCompletion(name: string, port: number, headers: http2.OutgoingHttpHeaders): Promise<Answer> {
    const prompt = `gated ${name}`;
    const { task } = await h.grpc.submit({ prompt });
    const watch = call(port, "/rookery.v1.TaskService/Watch", headers, watchBody(task!.id));
    await watch.sawData;
    await expect.poll(() => gates.has(prompt), { timeout: 20_000 }).toBe(true);
    gates.get(prompt)!();
    return watch.answered;
  }

  it.each([
    ["grpc", "720H"],
    ["grpc", "99999999H"],
    ["http", "720H"],
  ] as const)("should serve a gRPC Watch to its end on the %s listener with grpc-timeout %s", async (listener, timeout) => {
    const port = listener === "grpc" ? h.rookery.grpcPort : h.rookery.httpPort;
    const answer = await watchThroughCompletion(`${listener} ${timeout}`, port, grpcHeaders(timeout));
    expect(answer.status).toBe("0");
  });

  it("should serve a gRPC-Web Watch to its end with grpc-timeout 720H", async () => {
    const answer = await watchThroughCompletion("grpc-web", h.rookery.httpPort, {
      "content-type": "application/grpc-web+proto",
      "grpc-timeout": "720H",
    });
    // The trailers are the body's last frame (flag 0x80): "grpc-status:0".
    expect(answer.body.toString("latin1")).toMatch(/grpc-status:\s*0\r\n/);
  });

  it("should serve a Connect Watch to its end with connect-timeout-ms of 30 days", async () => {
    const answer = await watchThroughCompletion("connect", h.rookery.httpPort, {
      "content-type": "application/connect+proto",
      "connect-protocol-version": "1",
      "connect-timeout-ms": String(THIRTY_DAYS_MS),
    });
    // The last frame is the end of the stream (flag 0x02), JSON with an "error" only when the call failed.
    const frames = envelopes(answer.body);
    expect(frames.length).toBeGreaterThan(2);
    const end = frames.at(-1)!;
    expect(end.flags & 0x02).toBe(0x02);
    expect(JSON.parse(end.payload.toString("utf8"))).not.toHaveProperty("error");
  });

  it("should answer a unary call with grpc-timeout 720H on both listeners", async () => {
    const { task } = await h.grpc.submit({ prompt: "unary" });
    const body = enveloped(toBinary(GetRequestSchema, create(GetRequestSchema, { id: task!.id })));
    for (const port of [h.rookery.grpcPort, h.rookery.httpPort]) {
      const answer = await call(port, "/rookery.v1.TaskService/Get", grpcHeaders("720H"), body).answered;
      expect(answer.status).toBe("0");
    }
  });

  it("should still end a Watch at a deadline a timer can wait (1 s), on both listeners", async () => {
    const { task } = await h.grpc.submit({ prompt: "gated short deadline" });
    for (const port of [h.rookery.grpcPort, h.rookery.httpPort]) {
      const answer = await call(port, "/rookery.v1.TaskService/Watch", grpcHeaders("1S"), watchBody(task!.id)).answered;
      expect(answer.status).toBe("4"); // DEADLINE_EXCEEDED
    }
    await expect.poll(() => gates.has("gated short deadline"), { timeout: 20_000 }).toBe(true);
    gates.get("gated short deadline")!();
  });
});
