// A small OpenAI-compatible chat-completions server for tests. Each test
// scripts replies with a function of the incoming call; the real `openai` SDK
// talks to it over loopback HTTP. Streamed replies are sent as SSE chunks the
// way OpenAI sends them (content and tool-call arguments split across chunks).
import { setTimeout as sleep } from "node:timers/promises";
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface FakeCall {
  body: ChatBody;
  /** The first user message: tells tasks apart. */
  prompt: string;
  /** How many assistant messages the request carries: the iteration being asked for, from 0. */
  turn: number;
  /** The bearer token the caller sent (tells server processes apart). */
  apiKey: string;
  /** The W3C traceparent header the call carried, if any. */
  traceparent?: string;
}

interface ChatBody {
  model: string;
  stream?: boolean;
  messages: { role: string; content: string | null; tool_calls?: unknown[]; tool_call_id?: string }[];
  tools?: { function: { name: string } }[];
}

/** How a streamed reply's content is sent: in pieces of `pieceSize` characters, `paceMs` apart, pausing before piece `pauseAt` until `resume` settles. */
export interface Pacing {
  pieceSize?: number;
  paceMs?: number;
  pauseAt?: number;
  resume?: Promise<unknown>;
}

export type FakeReply =
  | ({ content: string } & Pacing)
  | ({ toolCalls: { id?: string; name: string; arguments: string }[]; content?: string } & Pacing)
  | { status: number; headers?: Record<string, string>; error?: string }
  | { hang: true }
  | { malformed: true }
  | { reset: true }
  /** Sent as they are, one SSE `data:` line each (a hostile or odd provider), then [DONE]. */
  | { chunks: unknown[] }
  /** `keepAlive` (one SSE `data:` line) every `everyMs` until the client goes away: a reply that never ends. */
  | { keepAlive: unknown; everyMs: number }
  /** An error reply (HTTP `errorStatus`) whose body comes a byte every `everyMs` and never ends. */
  | { errorStatus: number; everyMs: number };

export type Script = (call: FakeCall) => FakeReply | Promise<FakeReply>;

export class FakeOpenAI {
  readonly calls: FakeCall[] = [];
  private script: Script = () => ({ content: "done" });
  private readonly sockets = new Set<Socket>();
  private readonly waiters: { match: (c: FakeCall) => boolean; resolve: (c: FakeCall) => void }[] = [];
  /** Calls whose client went away before the reply was complete (an aborted model call). */
  readonly aborted: FakeCall[] = [];
  private readonly abortWaiters: { match: (c: FakeCall) => boolean; resolve: (c: FakeCall) => void }[] = [];
  private callIds = 0;

  private constructor(private readonly server: Server) {}

  static async start(): Promise<FakeOpenAI> {
    const server = createServer();
    const fake = new FakeOpenAI(server);
    server.on("request", (req, res) => void fake.handle(req, res));
    server.on("connection", (s) => {
      fake.sockets.add(s);
      s.on("close", () => fake.sockets.delete(s));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return fake;
  }

  get baseURL(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  respond(script: Script): void {
    this.script = script;
  }

  callsFor(prompt: string): FakeCall[] {
    return this.calls.filter((c) => c.prompt === prompt);
  }

  /** Resolves with the first call (past or future) that matches. */
  waitForCall(match: (c: FakeCall) => boolean): Promise<FakeCall> {
    const seen = this.calls.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  /** Resolves with the first call (past or future) that matches and whose client aborted it. */
  waitForAbort(match: (c: FakeCall) => boolean): Promise<FakeCall> {
    const seen = this.aborted.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.abortWaiters.push({ match, resolve }));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as ChatBody;
    const call: FakeCall = {
      body,
      prompt: body.messages.find((m) => m.role === "user")?.content ?? "",
      turn: body.messages.filter((m) => m.role === "assistant").length,
      apiKey: (req.headers.authorization ?? "").replace(/^Bearer /, ""),
      ...(typeof req.headers.traceparent === "string" ? { traceparent: req.headers.traceparent } : {}),
    };
    this.calls.push(call);
    res.once("close", () => {
      if (res.writableFinished) return;
      this.aborted.push(call);
      for (const w of this.abortWaiters.filter((w) => w.match(call))) {
        this.abortWaiters.splice(this.abortWaiters.indexOf(w), 1);
        w.resolve(call);
      }
    });
    for (const w of this.waiters.filter((w) => w.match(call))) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(call);
    }
    const reply = await this.script(call);
    await this.send(reply, body, res);
  }

  private async send(reply: FakeReply, body: ChatBody, res: ServerResponse): Promise<void> {
    if ("hang" in reply) return; // never answers; the client's abort or timeout ends it
    if ("reset" in reply) {
      res.socket?.destroy();
      return;
    }
    if ("errorStatus" in reply) {
      res.writeHead(reply.errorStatus, { "content-type": "application/json" });
      return trickle(res, " ", reply.everyMs);
    }
    if ("keepAlive" in reply) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      return trickle(res, `data: ${JSON.stringify(reply.keepAlive)}\n\n`, reply.everyMs);
    }
    if ("chunks" in reply) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (const c of reply.chunks) res.write(`data: ${JSON.stringify(c)}\n\n`);
      res.end("data: [DONE]\n\n");
      return;
    }
    if ("malformed" in reply) {
      res.writeHead(200, { "content-type": body.stream ? "text/event-stream" : "application/json" });
      res.end(body.stream ? "data: {not json\n\n" : "{not json");
      return;
    }
    if ("status" in reply) {
      res.writeHead(reply.status, { "content-type": "application/json", ...reply.headers });
      res.end(JSON.stringify({ error: { message: reply.error ?? `fake error ${reply.status}`, type: "fake" } }));
      return;
    }
    const content = "content" in reply ? (reply.content ?? "") : "";
    const toolCalls = ("toolCalls" in reply ? reply.toolCalls : []).map((c) => ({
      id: c.id ?? `call_${++this.callIds}`,
      type: "function" as const,
      function: { name: c.name, arguments: c.arguments },
    }));
    const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
    const finish = toolCalls.length > 0 ? "tool_calls" : "stop";
    const id = `chatcmpl-${this.calls.length}`;
    const base = { id, object: "chat.completion.chunk", created: Math.floor(Date.now() / 1000), model: body.model };

    if (!body.stream) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          ...base,
          object: "chat.completion",
          choices: [
            {
              index: 0,
              message: { role: "assistant", content, ...(toolCalls.length ? { tool_calls: toolCalls } : {}) },
              finish_reason: finish,
            },
          ],
          usage,
        }),
      );
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    const chunk = (delta: object, finish_reason: string | null = null) =>
      res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, finish_reason }] })}\n\n`);
    chunk({ role: "assistant", content: "" });
    const pacing: Pacing = "content" in reply || "toolCalls" in reply ? reply : {};
    const pieces = pacing.pieceSize ? chop(content, pacing.pieceSize) : split(content);
    for (const [i, piece] of pieces.entries()) {
      if (i === pacing.pauseAt) await pacing.resume;
      if (pacing.paceMs && i > 0) await sleep(pacing.paceMs);
      if (res.destroyed) return;
      chunk({ content: piece });
    }
    toolCalls.forEach((c, index) => {
      chunk({ tool_calls: [{ index, id: c.id, type: "function", function: { name: c.function.name, arguments: "" } }] });
      for (const piece of split(c.function.arguments)) chunk({ tool_calls: [{ index, function: { arguments: piece } }] });
    });
    chunk({}, finish);
    res.write(`data: ${JSON.stringify({ ...base, choices: [], usage })}\n\n`);
    res.end("data: [DONE]\n\n");
  }
}

function chop(text: string, size: number): string[] {
  const pieces: string[] = [];
  for (let i = 0; i < text.length; i += size) pieces.push(text.slice(i, i + size));
  return pieces;
}

function split(text: string): string[] {
  const size = Math.max(1, Math.ceil(text.length / 3));
  const pieces: string[] = [];
  for (let i = 0; i < text.length; i += size) pieces.push(text.slice(i, i + size));
  return pieces;
}

/** Writes `piece` every `everyMs`, never ending the reply, until the client goes away. */
async function trickle(res: ServerResponse, piece: string, everyMs: number): Promise<void> {
  while (!res.destroyed) {
    res.write(piece);
    await sleep(everyMs);
  }
}
