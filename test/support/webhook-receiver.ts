// A real HTTP receiver of webhook deliveries on loopback: it records every
// request (headers, raw body, arrival time) and answers as `respond` says
// (200 by default); "hang" leaves the request unanswered until close, "endless"
// answers 200 and then sends a body that never ends, until the sender drops it.
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  id: string;
  timestamp: string;
  signature: string;
  headers: Record<string, string>;
  body: string;
  at: number;
}

export type Answer = { status: number; headers?: Record<string, string> } | "hang" | "endless";

export class WebhookReceiver {
  readonly received: Received[] = [];
  /** Requests being handled now, and the most at once. */
  open = 0;
  maxOpen = 0;
  private respond: (request: Received, index: number) => Answer = () => ({ status: 200 });
  private readonly hanging = new Set<http.ServerResponse>();

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  /** On `port` (0: any free one), e.g. the port of a receiver that was closed, to bring it back. */
  static async start(port = 0): Promise<WebhookReceiver> {
    const handlers: { receiver?: WebhookReceiver } = {};
    const server = http.createServer((req, res) => handlers.receiver!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    const receiver = new WebhookReceiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`);
    handlers.receiver = receiver;
    return receiver;
  }

  /** How to answer from now on; `index` counts the requests since this call, from 0. */
  answer(respond: (request: Received, index: number) => Answer): void {
    const base = this.received.length;
    this.respond = (request, index) => respond(request, index - base);
  }

  /** Deliveries received of one task (by the body's data.taskId), in arrival order. */
  ofTask(taskId: string): Received[] {
    return this.received.filter((r) => (JSON.parse(r.body) as { data: { taskId: string } }).data.taskId === taskId);
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.open++;
    this.maxOpen = Math.max(this.maxOpen, this.open);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const header = (name: string) => String(req.headers[name] ?? "");
      const request: Received = {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
        body: Buffer.concat(chunks).toString("utf8"),
        at: Date.now(),
      };
      const index = this.received.length;
      this.received.push(request);
      const answer = this.respond(request, index);
      if (answer === "hang" || answer === "endless") {
        this.hanging.add(res);
        const piece = Buffer.alloc(16 * 1024, "x");
        const sending = answer === "endless" ? setInterval(() => res.write(piece), 5) : undefined;
        if (sending) res.writeHead(200, { "content-type": "text/plain" });
        res.on("close", () => {
          clearInterval(sending);
          this.hanging.delete(res);
          this.open--;
        });
        return;
      }
      res.writeHead(answer.status, answer.headers);
      res.end();
      this.open--;
    });
  }
}
