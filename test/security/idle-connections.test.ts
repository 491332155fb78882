// ROOKERY_IDLE_CONNECTION_MS: a connection with no call in progress is closed once it
// has been idle that long (HTTP/2: with a GOAWAY), on both listeners, in cleartext and
// over TLS, so connections a client leaks or never speaks on do not pile up. A call in
// progress keeps its connection however quiet it is, and a client whose idle
// connection was closed calls again without an error.
import { mkdtempSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { TaskService, WatchRequestSchema, WatchResponseSchema, type WatchResponse } from "../../gen/rookery/v1/task_service_pb.js";
import { grpcJsTaskClient } from "../support/grpc-js-client.js";
import { selfSignedCert, type SelfSigned } from "../support/self-signed.js";
import { startHarness, type Harness } from "../support/harness.js";

const IDLE_MS = 1_000;
/** Far longer than IDLE_MS: how long a test waits for a close that must come. */
const CLOSE_BOUND_MS = 20_000;

/** Resolves with the ms from `since` to `emitter`'s `event`, or with undefined after CLOSE_BOUND_MS. */
function msUntil(emitter: NodeJS.EventEmitter, event: string, since: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), CLOSE_BOUND_MS);
    emitter.once(event, () => {
      clearTimeout(timer);
      resolve(Date.now() - since);
    });
  });
}

/** A gRPC Watch made by hand on `session`, so the test sees the session it runs on. */
function rawWatch(
  session: http2.ClientHttp2Session,
  taskId: string,
): { messages: WatchResponse[]; first: Promise<void>; ended: Promise<string> } {
  const stream = session.request({
    ":method": "POST",
    ":path": `/${TaskService.typeName}/Watch`,
    "content-type": "application/grpc",
    te: "trailers",
  });
  const body = toBinary(WatchRequestSchema, create(WatchRequestSchema, { id: taskId }));
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, 5);
  stream.end(frame);
  const messages: WatchResponse[] = [];
  let buffered = Buffer.alloc(0);
  let sawFirst: () => void = () => undefined;
  const first = new Promise<void>((resolve) => (sawFirst = resolve));
  stream.on("data", (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 5 && buffered.length >= 5 + buffered.readUInt32BE(1)) {
      const length = buffered.readUInt32BE(1);
      messages.push(fromBinary(WatchResponseSchema, buffered.subarray(5, 5 + length)));
      buffered = buffered.subarray(5 + length);
      sawFirst();
    }
  });
  const ended = new Promise<string>((resolve, reject) => {
    stream.on("trailers", (trailers) => resolve(String(trailers["grpc-status"])));
    stream.on("error", reject);
  });
  return { messages, first, ended };
}

function describeIdleConnections(name: string, tlsEnv: () => Record<string, string>, ca: () => Buffer | undefined): void {
  describe(`idle connections, ${name}`, () => {
    let h: Harness;
    let scheme: string;
    beforeAll(async () => {
      // No runs: a task stays PENDING, so a Watch of it stays quiet until the test cancels it.
      h = await startHarness({ ROOKERY_IDLE_CONNECTION_MS: String(IDLE_MS), ROOKERY_CONCURRENCY: "0", ...tlsEnv() });
      scheme = ca() ? "https" : "http";
    });
    afterAll(() => h.close());

    const portOf = (listener: "grpc" | "http") => (listener === "grpc" ? h.rookery.grpcPort : h.rookery.httpPort);
    const connectTo = (listener: "grpc" | "http") => {
      const session = http2.connect(`${scheme}://127.0.0.1:${portOf(listener)}`, ca() ? { ca: ca()! } : {});
      session.on("error", () => undefined); // a GOAWAY's close may reset what is left
      return session;
    };

    for (const listener of ["grpc", "http"] as const) {
      it(`should close an HTTP/2 connection that makes no call, with a GOAWAY, once idle for the set time, on the ${listener} listener`, async () => {
        const session = connectTo(listener);
        const start = Date.now();
        const goaway = msUntil(session, "goaway", start);
        const closed = msUntil(session, "close", start);
        expect(await goaway).toBeGreaterThanOrEqual(IDLE_MS - 50);
        expect(await closed).toBeDefined();
      });

      it(`should keep a connection whose Watch stays quiet past the idle time, then close it once idle after the Watch, on the ${listener} listener`, async () => {
        const client = createClient(
          TaskService,
          createGrpcTransport({ baseUrl: `${scheme}://127.0.0.1:${portOf(listener)}`, nodeOptions: ca() ? { ca: ca()! } : {} }),
        );
        const { task } = await client.submit({ prompt: `a quiet watch on the ${listener} listener` });
        const session = connectTo(listener);
        let goaways = 0;
        session.on("goaway", () => (goaways += 1));
        const watch = rawWatch(session, task!.id);
        await watch.first;
        await sleep(3 * IDLE_MS); // the Watch has nothing to say meanwhile
        expect(goaways).toBe(0);

        await client.cancel({ id: task!.id });
        expect(await watch.ended).toBe("0");
        const watchEnded = Date.now();
        const goaway = msUntil(session, "goaway", watchEnded);
        expect(watch.messages.map((m) => m.event?.status)).toEqual([TaskStatus.PENDING, TaskStatus.CANCELLED]);
        expect(await goaway).toBeGreaterThanOrEqual(IDLE_MS - 50 - 20); // 20: the Watch's end was read a moment after it was sent
        expect(goaways).toBe(1);
      });
    }

    it("should close an HTTP/1.1 keep-alive connection left idle after its request, on the http listener", async () => {
      const options = { host: "127.0.0.1", port: h.rookery.httpPort };
      const socket = ca() ? tls.connect({ ...options, ca: ca()!, ALPNProtocols: ["http/1.1"] }) : net.connect(options);
      socket.on("error", () => undefined);
      await new Promise((resolve) => socket.once(ca() ? "secureConnect" : "connect", resolve));
      const answered = new Promise<string>((resolve) => socket.once("data", (chunk: Buffer) => resolve(chunk.toString("latin1"))));
      socket.write("GET /no-such-page HTTP/1.1\r\nHost: rookery\r\n\r\n");
      expect(await answered).toMatch(/^HTTP\/1\.1 404 /);
      // Node's keep-alive timeout (5 s) closes it; ROOKERY_IDLE_CONNECTION_MS does not apply to HTTP/1.1.
      expect(await msUntil(socket, "close", Date.now())).toBeGreaterThanOrEqual(5_000 - 50);
    });
  });
}

describeIdleConnections(
  "in cleartext",
  () => ({}),
  () => undefined,
);

const tlsDir = mkdtempSync(join(tmpdir(), "rookery-idle-tls-"));
afterAll(() => rmSync(tlsDir, { recursive: true, force: true }));
let certificate: SelfSigned | undefined;
describeIdleConnections(
  "over TLS",
  () => {
    certificate = selfSignedCert(tlsDir);
    return { ROOKERY_TLS_CERT: certificate.cert, ROOKERY_TLS_KEY: certificate.key };
  },
  () => certificate?.ca,
);

describe("idle connections before a client's first bytes, and clients after a close", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ ROOKERY_IDLE_CONNECTION_MS: String(IDLE_MS), ROOKERY_CONCURRENCY: "0" });
  });
  afterAll(() => h.close());

  for (const listener of ["grpc", "http"] as const) {
    it.each([
      ["nothing", ""],
      ["only the byte P (HTTP/1.1 POST and the HTTP/2 preface both start so)", "P"],
    ])(`should close a connection that sends %s, once idle for the set time, on the ${listener} listener`, async (_what, bytes) => {
      const socket = net.connect(listener === "grpc" ? h.rookery.grpcPort : h.rookery.httpPort, "127.0.0.1");
      socket.on("error", () => undefined);
      socket.on("data", () => undefined); // the HTTP/2 server's SETTINGS, if it sends them
      await new Promise((resolve) => socket.once("connect", resolve));
      if (bytes) socket.write(bytes);
      const closed = await msUntil(socket, "close", Date.now());
      expect(closed).toBeGreaterThanOrEqual(IDLE_MS - 50);
    });
  }

  it("should let a grpc-js client whose idle connection was closed call again without an error", async () => {
    const client = grpcJsTaskClient(`127.0.0.1:${h.rookery.grpcPort}`);
    try {
      const channel = client.channel;
      await client.submit({ prompt: "before the close" });
      expect(channel.getConnectivityState(false)).toBe(grpc.connectivityState.READY);
      // The server's GOAWAY moves the channel out of READY; the next call connects again.
      const start = Date.now();
      while (channel.getConnectivityState(false) === grpc.connectivityState.READY && Date.now() - start < CLOSE_BOUND_MS) await sleep(50);
      expect(channel.getConnectivityState(false)).not.toBe(grpc.connectivityState.READY);
      const { task } = await client.submit({ prompt: "after the close" });
      expect(task?.status).toBe(TaskStatus.PENDING);
    } finally {
      client.close();
    }
  });
});
