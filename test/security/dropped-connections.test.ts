// Connections a client drops with a TCP reset at any point: before its first byte
// (what many load balancers' TCP health checks do), in the middle of the HTTP/2
// preface or of a TLS handshake, in the middle of a request. The server process
// lives on, on both listeners, with and without TLS, and answers the next caller.
import { mkdtempSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskService } from "../../gen/rookery/v1/task_service_pb.js";
import { childServersOnOneFile, type ChildServer } from "../support/child-server.js";
import { selfSignedCert, type SelfSigned } from "../support/self-signed.js";

const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/** What a client has sent when it resets the connection. */
const CUT_AFTER: [string, string][] = [
  ["nothing", ""],
  ["the single byte P (HTTP/1.1 POST and the HTTP/2 preface both start so)", "P"],
  ["half of the HTTP/2 preface", PREFACE.slice(0, 12)],
  ["the whole HTTP/2 preface", PREFACE],
  [
    "the head of an HTTP/1.1 request whose body never comes",
    "POST /rookery.v1.TaskService/Get HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
  ],
  ["the first bytes of a TLS ClientHello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"],
];

/** Connects, sends `bytes`, waits for them to leave, and resets the connection (RST, not FIN). */
async function resetAfter(port: number, bytes: string): Promise<void> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => undefined); // the server may answer garbage by closing first
  await new Promise<void>((resolve) => socket.once("connect", resolve));
  if (bytes) await new Promise<void>((resolve) => socket.write(Buffer.from(bytes, "latin1"), () => resolve()));
  socket.resetAndDestroy();
  await new Promise((resolve) => socket.once("close", resolve));
}

function describeResets(name: string, env: () => Record<string, string>, ca: () => Buffer | undefined): void {
  describe(`connections reset by the client, ${name}`, () => {
    const servers = childServersOnOneFile(`dropped-connections-${name.replace(/\W+/g, "-")}`);
    let server: ChildServer;
    beforeAll(async () => {
      await servers.setUp();
      servers.fake.respond(() => ({ content: "done" }));
      server = await servers.start(env());
    });
    afterAll(() => servers.tearDown());

    for (const listener of ["grpc", "http"] as const) {
      it.each(CUT_AFTER)(
        `should live on, on the ${listener} listener, when a client resets its connection after %s`,
        async (_what, bytes) => {
          await resetAfter(listener === "grpc" ? server.grpcPort : server.httpPort, bytes);
          // The next callers, on new connections, on both listeners: the reset was read by then.
          const scheme = ca() ? "https" : "http";
          const nodeOptions = ca() ? { ca: ca()! } : {};
          const grpcClient = createClient(
            TaskService,
            createGrpcTransport({ baseUrl: `${scheme}://127.0.0.1:${server.grpcPort}`, nodeOptions }),
          );
          const connectClient = createClient(
            TaskService,
            createConnectTransport({ baseUrl: `${scheme}://127.0.0.1:${server.httpPort}`, httpVersion: "1.1", nodeOptions }),
          );
          const { task } = await grpcClient.submit({ prompt: `after a reset on the ${listener} listener` });
          expect((await connectClient.get({ id: task!.id })).task?.id).toBe(task!.id);
          expect(server.process.exitCode).toBeNull();
          expect(server.process.signalCode).toBeNull();
        },
      );
    }
  });
}

describeResets(
  "in cleartext",
  () => ({}),
  () => undefined,
);

const tlsDir = mkdtempSync(join(tmpdir(), "rookery-dropped-tls-"));
afterAll(() => rmSync(tlsDir, { recursive: true, force: true }));
let certificate: SelfSigned | undefined;
describeResets(
  "over TLS",
  () => {
    certificate = selfSignedCert(tlsDir);
    return { ROOKERY_TLS_CERT: certificate.cert, ROOKERY_TLS_KEY: certificate.key };
  },
  () => certificate?.ca,
);
