// The HTTP under the SDK's model calls (src/agent/provider-fetch.ts): Node's
// client on keep-alive agents. Real SDK calls against small servers on
// loopback that answer as a provider, or oddly.
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { sdkClient, streamChat, type ChatCall } from "../../src/agent/chat-stream.js";
import { StalledReplyError } from "../../src/agent/model-errors.js";
import { selfSignedCert } from "../support/self-signed.js";

const CALL: ChatCall = { provider: "test", model: "m", messages: [{ role: "user", content: "hi" }], tools: [], headers: {} };

/** An event stream that answers `text` in pieces of 3 characters. */
function eventStream(text: string): string {
  const base = { id: "c", object: "chat.completion.chunk", created: 1, model: "m" };
  const pieces = text.match(/.{1,3}/g) ?? [];
  const chunks = [
    ...pieces.map((content) => ({ ...base, choices: [{ index: 0, delta: { content }, finish_reason: null }] })),
    { ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
  ];
  return chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join("") + "data: [DONE]\n\n";
}

const servers: (HttpServer | NetServer)[] = [];
const sockets = new Set<Socket>();
afterEach(() => {
  for (const socket of sockets) socket.destroy();
  for (const server of servers.splice(0)) server.close();
});

async function listen(server: HttpServer | NetServer): Promise<string> {
  servers.push(server);
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
}

/** A provider whose sockets write `raw` as soon as a request has arrived. */
const rawProvider = (raw: string) =>
  listen(
    createNetServer((socket) => {
      socket.on("error", () => undefined);
      socket.once("data", () => socket.write(raw));
    }),
  );

/** An SDK client of the provider at `baseURL`, as Rookery makes them, retrying nothing. */
const clientOf = (baseURL: string, maxReplyBytes = 100_000) =>
  sdkClient({ baseURL, apiKey: "k" }, { timeoutMs: 30_000, maxRetries: 0, maxReplyBytes });

const call = (baseURL: string, signal = new AbortController().signal, onDelta = () => {}) =>
  streamChat(clientOf(baseURL), CALL, { maxReplyBytes: 100_000, timeoutMs: 30_000, maxReplyMs: 60_000 }, signal, onDelta);

describe("model calls over Node's HTTP client", () => {
  it("should make consecutive calls to one provider on one kept-alive connection, each body sent with its length", async () => {
    let connections = 0;
    const framing: string[] = [];
    const server = createHttpServer((req, res) => {
      framing.push(`${req.headers["content-length"] ? "length" : "no length"}, ${req.headers["transfer-encoding"] ?? "not chunked"}`);
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.end(eventStream("same socket"));
      });
    });
    server.on("connection", () => (connections += 1));
    const baseURL = await listen(server);
    const client = clientOf(baseURL);
    for (let i = 0; i < 5; i++) {
      const reply = await streamChat(
        client,
        CALL,
        { maxReplyBytes: 100_000, timeoutMs: 30_000, maxReplyMs: 60_000 },
        new AbortController().signal,
        () => undefined,
      );
      expect(reply.content).toBe("same socket");
    }
    expect(connections).toBe(1);
    expect(new Set(framing)).toEqual(new Set(["length, not chunked"]));
  });

  it("should read an event stream the provider compressed without being asked", async () => {
    const asked: (string | undefined)[] = [];
    const baseURL = await listen(
      createHttpServer((req, res) => {
        asked.push(req.headers["accept-encoding"]);
        req.resume();
        res.writeHead(200, { "content-type": "text/event-stream", "content-encoding": "gzip" });
        res.end(gzipSync(eventStream("unzipped answer")));
      }),
    );
    expect((await call(baseURL)).content).toBe("unzipped answer");
    expect(asked).toEqual([undefined]);
  });

  it("should fail a call answered with a status no Response can carry (HTTP 999), saying so", async () => {
    const baseURL = await rawProvider("HTTP/1.1 999 Odd\r\ncontent-length: 0\r\n\r\n");
    await expect(call(baseURL)).rejects.toThrow(/could not reach test\/m: .*HTTP status 999/);
  });

  it("should fail, not hang, a call answered with a protocol upgrade it did not ask for", async () => {
    const baseURL = await rawProvider("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n");
    await expect(call(baseURL)).rejects.toThrow(/could not reach test\/m/);
  });

  it("should refuse a provider whose TLS certificate it cannot verify (a self-signed one), saying why", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rookery-provider-tls-"));
    try {
      const { key, cert } = selfSignedCert(dir);
      let requests = 0;
      const server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
        requests += 1;
        req.resume();
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.end(eventStream("should not be read"));
      });
      server.on("tlsClientError", () => undefined);
      const baseURL = (await listen(server)).replace("http:", "https:");
      await expect(call(baseURL)).rejects.toThrow(/could not reach test\/m: fetch failed: self[- ]signed certificate/);
      expect(requests).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("should stop a reply whose event-stream line never ends once the line passes its bound", async () => {
    let closed!: Promise<unknown>;
    const baseURL = await listen(
      createNetServer((socket) => {
        socket.on("error", () => undefined);
        closed = new Promise((resolve) => socket.once("close", resolve)); // (events.once would reject on the reset)
        socket.once("data", () => {
          socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: {"choices":"');
          const endless = setInterval(() => socket.write("a".repeat(64 * 1024)), 1);
          socket.once("close", () => clearInterval(endless));
        });
      }),
    );
    const reading = streamChat(
      clientOf(baseURL, 1000),
      CALL,
      { maxReplyBytes: 1000, timeoutMs: 30_000, maxReplyMs: 60_000 },
      new AbortController().signal,
      () => undefined,
    );
    await expect(reading).rejects.toThrow(/a line of the provider's event stream passed 71536 bytes without ending/);
    await closed; // the connection was let go, not read on
  });

  it("should stop an error reply whose body passes 1 MiB, and report the status", async () => {
    const baseURL = await listen(
      createHttpServer((req, res) => {
        req.resume();
        res.on("error", () => undefined);
        res.writeHead(500, { "content-type": "application/json" });
        const endless = setInterval(() => res.write("x".repeat(64 * 1024)), 1);
        res.once("close", () => clearInterval(endless));
      }),
    );
    await expect(call(baseURL)).rejects.toThrow(/HTTP 500: .*the provider's error reply passed 1048576 bytes without ending/);
  });

  it("should end the provider's request when the caller aborts while the reply streams", async () => {
    let closed: Promise<unknown> | undefined;
    const baseURL = await listen(
      createHttpServer((req, res) => {
        req.resume();
        closed = once(res, "close");
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(eventStream("first").split("\n\n")[0] + "\n\n"); // one piece, then nothing more
      }),
    );
    const abort = new AbortController();
    let firstDelta!: () => void;
    const streaming = new Promise<void>((resolve) => (firstDelta = resolve));
    const reading = call(baseURL, abort.signal, () => firstDelta());
    await streaming;
    abort.abort(new Error("cancelled by the caller"));
    await expect(reading).rejects.toThrow("cancelled by the caller");
    await closed; // the provider saw its request end
  });

  describe("a reply that stalls after it started", () => {
    /**
     * A provider that sends the first `pieces` events of a reply (all of it, [DONE] too, when
     * undefined, then ends) `everyMs` apart, then `after` every `everyMs` (or nothing).
     */
    const trickling = (pieces: number | undefined, everyMs: number, after?: string) => {
      const state: { closed?: Promise<unknown> } = {};
      const events = eventStream("abc".repeat(10)).split("\n\n").filter(Boolean).slice(0, pieces);
      const server = createHttpServer((req, res) => {
        req.resume();
        state.closed = once(res, "close");
        res.writeHead(200, { "content-type": "text/event-stream" });
        let sent = 0;
        const timer = setInterval(() => {
          if (sent < events.length) res.write(`${events[sent++]}\n\n`);
          else if (after !== undefined) res.write(after);
          else if (pieces === undefined) res.end();
        }, everyMs);
        res.once("close", () => clearInterval(timer));
      });
      return { server, state };
    };
    const stalledCall = (baseURL: string, timeoutMs: number) =>
      streamChat(
        clientOf(baseURL),
        CALL,
        { maxReplyBytes: 100_000, timeoutMs, maxReplyMs: 60_000 },
        new AbortController().signal,
        () => undefined,
      );

    it("should fail a call whose provider sends nothing more once its reply started, and end the request", async () => {
      const { server, state } = trickling(2, 20);
      const failure = await stalledCall(await listen(server), 300).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(StalledReplyError);
      expect((failure as StalledReplyError).retryable).toBe(true);
      expect(String(failure)).toMatch(/stalled: no chunk of its reply for 300 ms \(ROOKERY_MODEL_TIMEOUT_MS\)/);
      await state.closed; // the provider saw its request end
    });

    it("should fail a call whose provider only sends keep-alive comments once its reply started", async () => {
      const { server } = trickling(1, 50, ": ping\n\n");
      await expect(stalledCall(await listen(server), 300)).rejects.toThrow(/stalled/);
    });

    it("should not fail a reply that takes longer than the timeout in all but never waits that long for a chunk", async () => {
      const { server } = trickling(undefined, 100); // 12 events ~1.2 s in all, one every 100 ms
      const reply = await stalledCall(await listen(server), 800);
      expect(reply.content).toBe("abc".repeat(10));
    });
  });
});
