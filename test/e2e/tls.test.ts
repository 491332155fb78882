// With a certificate and key, both listeners serve TLS (gRPC over h2, Connect over HTTP/1.1 via ALPN).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { TaskService } from "../../gen/rookery/v1/task_service_pb.js";
import { collectEvents, startHarness, type Harness } from "../support/harness.js";
import { selfSignedCert } from "../support/self-signed.js";

describe("TLS", () => {
  let h: Harness;
  let dir: string;
  let ca: Buffer;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "rookery-tls-"));
    const certificate = selfSignedCert(dir);
    ca = certificate.ca;
    h = await startHarness({ ROOKERY_TLS_CERT: certificate.cert, ROOKERY_TLS_KEY: certificate.key });
  });
  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("should serve native gRPC over TLS on the gRPC listener", async () => {
    const client = createClient(
      TaskService,
      createGrpcTransport({ baseUrl: `https://127.0.0.1:${h.rookery.grpcPort}`, nodeOptions: { ca } }),
    );
    const { task } = await client.submit({ prompt: "over tls" });
    const events = await collectEvents(client, task!.id);
    expect(events.at(-1)?.status).toBe(TaskStatus.COMPLETED);
  });

  it("should serve the Connect protocol over HTTPS/1.1 on the HTTP listener", async () => {
    const client = createClient(
      TaskService,
      createConnectTransport({ baseUrl: `https://127.0.0.1:${h.rookery.httpPort}`, httpVersion: "1.1", nodeOptions: { ca } }),
    );
    const { task } = await client.submit({ prompt: "over https" });
    expect((await client.get({ id: task!.id })).task?.prompt).toBe("over https");
  });

  it("should refuse a plaintext gRPC client", async () => {
    const plain = createClient(TaskService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${h.rookery.grpcPort}` }));
    const error = await plain.get({ id: "0b7e3c55-7c1d-4d8e-9a51-3f0c2f4b9e10" }, { timeoutMs: 10_000 }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    // Served, the Get of an unknown id would answer NOT_FOUND; refused, the connection
    // fails under the client (the TLS server drops the cleartext HTTP/2 stream).
    expect(error).toBeInstanceOf(ConnectError);
    expect([Code.Canceled, Code.Unavailable, Code.Aborted]).toContain(error!.code); // Aborted: connect-node's code for ECONNRESET
    expect(error!.rawMessage).toMatch(/stream closed|ECONNRESET|socket hang up|closed/i);
  });
});
