// Runs `rookery serve` as a child process (for SIGKILL / SIGTERM tests) and
// learns its ports from the "rookery ready" log line.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { TaskService } from "../../gen/rookery/v1/task_service_pb.js";
import type { TaskClient } from "./harness.js";

export interface ChildServer {
  process: ChildProcess;
  grpcPort: number;
  httpPort: number;
  client: TaskClient;
  logs: string[];
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

export async function startChildServer(env: Record<string, string>): Promise<ChildServer> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve"], {
    env: { ...process.env, ROOKERY_PORT: "0", ROOKERY_HTTP_PORT: "0", ROOKERY_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  const exited = once(child, "exit").then(([code, signal]) => (code ?? signal) as number | string);
  child.stderr!.on("data", (d: Buffer) => logs.push(d.toString()));
  const ready = new Promise<{ grpc: string; http: string }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      logs.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; grpc?: string; http?: string };
        if (entry.msg === "rookery ready") resolve({ grpc: entry.grpc!, http: entry.http! });
      } catch {
        // not a log line
      }
    });
    void exited.then((code) => reject(new Error(`server exited (${code}) before ready:\n${logs.join("\n")}`)));
  });
  const { grpc, http } = await ready;
  const grpcPort = Number(grpc.split(":").pop());
  return {
    process: child,
    grpcPort,
    httpPort: Number(http.split(":").pop()),
    client: createClient(TaskService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${grpcPort}` })),
    logs,
    exited,
  };
}
