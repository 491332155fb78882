// One scenario (scenario.json), run from every client stack against one real
// server on loopback ports. A stack whose toolchain is missing is skipped
// locally and fails under CI=true.
import { execFileSync } from "node:child_process";
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaskService } from "../../gen/rookery/v1/task_service_pb.js";
import { grpcJsTaskClient } from "../support/grpc-js-client.js";
import { startHarness, type Harness } from "../support/harness.js";
import { VERSIONS, goTool, toolchain } from "../support/toolchains.js";
import { clientDriver, curlDriver, grpcurlDriver, run } from "./drivers.js";
import { loadScenario, runScenario } from "./scenario.js";

let h: Harness;
const all = loadScenario().map((s) => `ok ${s.name}`);

beforeAll(async () => {
  h = await startHarness();
  h.fake.respond((c) => {
    if (c.prompt === "interop: hang") return { hang: true };
    if (c.prompt === "interop: tool") {
      if (c.turn === 0) return { toolCalls: [{ name: "lookup", arguments: '{"word":"answer"}' }] };
      return { content: `lookup said ${c.body.messages.find((m) => m.role === "tool")?.content}` };
    }
    return { content: "interop answer" };
  });
});
afterAll(async () => {
  await h.close();
});

describe("the interop scenario", () => {
  it("should pass with @grpc/grpc-js on the gRPC listener", async () => {
    const client = grpcJsTaskClient(`127.0.0.1:${h.rookery.grpcPort}`);
    try {
      expect(await runScenario(clientDriver(client), "grpc-js")).toEqual(all);
    } finally {
      client.close();
    }
  });

  it("should pass with gRPC-Web from @connectrpc/connect-web on the HTTP listener", async () => {
    const client = createClient(TaskService, createGrpcWebTransport({ baseUrl: `http://127.0.0.1:${h.rookery.httpPort}` }));
    expect(await runScenario(clientDriver(client), "grpc-web")).toEqual(all);
  });

  it("should pass with curl speaking the Connect protocol (JSON over HTTP/1.1)", async () => {
    const curl = toolchain("curl", () => execFileSync("curl", ["--version"]));
    if (curl.missing) return expect.soft(curl.missing).toBe("");
    expect(await runScenario(curlDriver(`http://127.0.0.1:${h.rookery.httpPort}`), "curl")).toEqual(all);
  });

  describe("grpcurl, with server reflection only", () => {
    const grpcurl = toolchain("grpcurl (Go toolchain)", () => goTool(VERSIONS.grpcurl));
    const address = () => `127.0.0.1:${h.rookery.grpcPort}`;
    const grpcurlIt = grpcurl.missing ? it.skip : it;

    // Asynchronously: this process serves the calls grpcurl makes.
    const grpcurlOut = async (...args: string[]) => (await run(grpcurl.value!, ["-plaintext", ...args], "")).stdout.toString();

    grpcurlIt("should list every service and describe TaskService", async () => {
      const list = await grpcurlOut(address(), "list");
      expect(list.trim().split("\n")).toEqual(["grpc.health.v1.Health", "rookery.v1.TaskService"]);
      const described = await grpcurlOut(address(), "describe", "rookery.v1.TaskService");
      for (const rpc of ["Submit", "Get", "List", "Watch", "Resume", "Cancel"]) expect(described).toContain(`rpc ${rpc} (`);
      expect(described).toContain("returns ( stream .rookery.v1.WatchResponse )");
      const task = await grpcurlOut(address(), "describe", "rookery.v1.Task");
      expect(task).toContain(".google.protobuf.Timestamp create_time = 7;");
    });

    grpcurlIt("should answer the health check", async () => {
      const health = await grpcurlOut("-d", '{"service":"rookery.v1.TaskService"}', address(), "grpc.health.v1.Health/Check");
      expect(JSON.parse(health)).toEqual({ status: "SERVING" });
    });

    grpcurlIt("should pass the scenario", async () => {
      expect(await runScenario(grpcurlDriver(grpcurl.value!, address()), "grpcurl")).toEqual(all);
    });
  });
});
