// Runs `rookery serve` as a child process (for SIGKILL / SIGTERM tests) and
// learns its ports from the "rookery ready" log line. Child processes run the build
// in dist/, as `npm start` does (the global setup builds it before the suites).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { TaskService } from "../../gen/rookery/v1/task_service_pb.js";
import { BUILT_CLI, whyBuildIsStale } from "../../tools/build.js";
import { FakeOpenAI } from "./fake-openai.js";
import type { TaskClient } from "./harness.js";

/** `node CLI ...args` runs the CLI as built (tools/build.ts). */
export const CLI = BUILT_CLI;

export interface ChildServer {
  process: ChildProcess;
  grpcPort: number;
  httpPort: number;
  client: TaskClient;
  logs: string[];
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

/** dist/ was found to be the build of the sources as they are (checked once per process). */
let buildIsCurrent = false;

/** A benchmark or a suite must not measure or test an older build: `npm test` and `npm run bench` build first. */
function requireCurrentBuild(): void {
  if (buildIsCurrent) return;
  const why = whyBuildIsStale();
  if (why) throw new Error(`${why}: run \`npm run build\` (npm test and npm run bench do)`);
  buildIsCurrent = true;
}

// Every child this process started, killed when it exits however the tests ended.
const spawned = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of spawned) child.kill("SIGKILL");
});

/**
 * `cwd`: the checkout to run (another release's, for a benchmark baseline), its build when
 * it has one, else its sources through tsx (releases before the build step); this one's
 * build by default.
 */
export async function startChildServer(env: Record<string, string>, cwd?: string): Promise<ChildServer> {
  if (env.ROOKERY_LOG_LEVEL && env.ROOKERY_LOG_LEVEL !== "info") {
    throw new Error("child servers log at info: their ports come from the info-level ready line");
  }
  if (cwd === undefined) requireCurrentBuild();
  const cli =
    cwd === undefined
      ? [CLI]
      : existsSync(join(cwd, "dist/src/cli/main.js"))
        ? ["dist/src/cli/main.js"]
        : ["--import", "tsx", "src/cli/main.ts"];
  const child = spawn(process.execPath, [...cli, "serve"], {
    env: { ...process.env, ROOKERY_PORT: "0", ROOKERY_HTTP_PORT: "0", ROOKERY_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    ...(cwd ? { cwd } : {}),
  });
  spawned.add(child);
  child.once("exit", () => spawned.delete(child));
  const logs: string[] = [];
  const exited = once(child, "exit").then(([code, signal]) => (code ?? signal) as number | string);
  child.stderr.on("data", (d: Buffer) => logs.push(d.toString()));
  const ready = new Promise<{ grpc: string; http: string }>((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
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
  const { grpc, http } = await ready.catch((error: unknown) => {
    child.kill("SIGKILL");
    throw error;
  });
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

/**
 * The child servers of one suite: one SQLite file, one FakeOpenAI, fast polls.
 * setUp() before the suite, tearDown() after it (SIGKILLs whatever still runs).
 */
export function childServersOnOneFile(name: string, defaults: Record<string, string> = {}) {
  let dir = "";
  const children: ChildServer[] = [];
  const suite = {
    fake: undefined as unknown as FakeOpenAI,
    async setUp(): Promise<void> {
      suite.fake = await FakeOpenAI.start();
      dir = mkdtempSync(join(tmpdir(), `rookery-${name}-`));
    },
    // An arrow function: tests pass `suite.start` around on its own.
    start: async (env: Record<string, string> = {}): Promise<ChildServer> => {
      const child = await startChildServer({
        ROOKERY_SQLITE_PATH: join(dir, "rookery.db"),
        OPENAI_BASE_URL: suite.fake.baseURL,
        OPENAI_API_KEY: "test-key",
        ROOKERY_POLL_MS: "50",
        ROOKERY_WATCH_POLL_MS: "50",
        ...defaults,
        ...env,
      });
      children.push(child);
      return child;
    },
    async tearDown(): Promise<void> {
      for (const c of children) c.process.kill("SIGKILL");
      await suite.fake.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return suite;
}
