// The `rookery` command against a real server: output, --json, exit codes.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { CLI } from "../support/child-server.js";
import type { Script } from "../support/fake-openai.js";
import { startHarness, waitForStatus, type Harness } from "../support/harness.js";
import { WebhookReceiver } from "../support/webhook-receiver.js";

const run = promisify(execFile);

/** The model of these tests: a calculator call then a slowly streamed answer, or an echo. */
const script: Script = (c) => {
  if (c.prompt === "what is 6*7, use the calculator") {
    return c.turn === 0
      ? { content: "I will use the calculator.", toolCalls: [{ name: "calculator", arguments: '{"expression":"6*7"}' }] }
      : { content: "6*7 is 42.", pieceSize: 2, paceMs: 20 };
  }
  if (c.prompt === "escape sequences") return { content: ESCAPING, pieceSize: 3 };
  if (c.prompt === "ask the user") {
    return c.turn === 0
      ? { toolCalls: [{ name: "ask_user", arguments: '{"question":"which city?"}' }] }
      : { content: `the user said ${c.body.messages.at(-1)?.content}`, pieceSize: 3, paceMs: 5 };
  }
  return { content: `answer to ${c.prompt}` };
};
/** A reply that would clear the screen, set the window title and overwrite a line if printed as it is. */
const ESCAPING = "safe \x1b[2J\x1b]0;owned\x07 text\r\nfake$ \rend";

// Each test starts the CLI, a Node process, one to a few times, ~1-2 s each on a loaded
// 2-core machine: a budget beyond the default 30 s for the tests that start several.
describe("rookery CLI", { timeout: 90_000 }, () => {
  let h: Harness;
  const cli = (...args: string[]) =>
    run(process.execPath, [CLI, "--address", `127.0.0.1:${h.rookery.grpcPort}`, ...args]).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
  /** `rookery serve` that is to refuse to start: how it exited and what it said. */
  const refusedServe = (flags: string[], env: Record<string, string> = {}) =>
    run(process.execPath, [CLI, "serve", ...flags], { env: { ...process.env, ...env } }).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => e,
    );
  beforeAll(async () => {
    h = await startHarness({ ROOKERY_WEBHOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ROOKERY_WEBHOOK_ALLOW_HOSTS: "127.0.0.1" });
    h.fake.respond(script);
  });
  afterAll(async () => {
    await h.close();
  });

  it("should submit --watch --json and print every event, then exit 0 on COMPLETED", async () => {
    const r = await cli("--json", "submit", "cli task", "--label", "via=cli", "--watch");
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { event?: { sequence: string; status: string }; output?: { text: string } });
    const events = lines.flatMap((l) => (l.event ? [{ event: l.event }] : []));
    expect(lines.flatMap((l) => (l.output ? [l.output.text] : [])).join("")).toBe("answer to cli task");
    expect(events.map((e) => e.event.status)).toEqual(["TASK_STATUS_PENDING", "TASK_STATUS_RUNNING", "TASK_STATUS_COMPLETED"]);
    expect(events.map((e) => e.event.sequence)).toEqual(["1", "2", "3"]);
  });

  it("should show the calculator call, its result and the answer as they happen with submit --watch", async () => {
    const r = await cli("submit", "what is 6*7, use the calculator", "--watch");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    const at = (text: string) => lines.findIndex((l) => l.includes(text));
    expect(lines[0]).toMatch(/^submitted [0-9a-f-]{36}$/);
    expect(at("user: what is 6*7, use the calculator")).toBeGreaterThan(0);
    expect(at("I will use the calculator.")).toBeGreaterThan(at("pending -> running"));
    expect(at('→ calculator({"expression":"6*7"})')).toBeGreaterThan(at("I will use the calculator."));
    expect(at("← 42")).toBeGreaterThan(at("→ calculator"));
    expect(at("iteration 1 checkpointed")).toBeGreaterThan(at("← 42"));
    expect(lines.filter((l) => l === "6*7 is 42.")).toHaveLength(1); // streamed once, not printed again
    expect(at("6*7 is 42.")).toBeLessThan(at("running -> completed"));
  });

  it("should resume --watch a paused task: print from the resume's event on (the tool result given), the answer, and exit 0 on COMPLETED", async () => {
    const { task } = await h.grpc.submit({ prompt: "ask the user", tools: [{ name: "ask_user", description: "asks the user" }] });
    await waitForStatus(h.grpc, task!.id, TaskStatus.INPUT_REQUIRED);
    const paused = (await h.grpc.get({ id: task!.id })).task!;
    const r = await cli("resume", task!.id, "--tool-result", `${paused.pendingToolCalls[0]!.id}=Paris`, "--watch");
    expect(r.code).toBe(0);
    const next = paused.lastEventSequence + 1n;
    expect(r.stdout.trim().split("\n")).toEqual([
      `resumed ${task!.id}`,
      "← Paris",
      `#${next} pending        input_required -> pending (iterations 1)`,
      `#${next + 1n} running        pending -> running (iterations 1)`,
      "the user said Paris",
      `#${next + 2n} completed      running -> completed (iterations 2)`,
    ]);
  });

  it("should print a model's escape sequences as visible text, not send them to the terminal, with submit --watch and get", async () => {
    const watched = await cli("submit", "escape sequences", "--watch");
    expect(watched.code).toBe(0);
    const id = /^submitted (\S+)$/m.exec(watched.stdout)![1]!;
    const got = await cli("get", id);
    for (const out of [watched.stdout, got.stdout]) {
      expect(out).toContain("safe \\x1b[2J\\x1b]0;owned\\x07 text\nfake$ end");
      for (const control of ["\x1b", "\x07", "\r"]) expect(out).not.toContain(control);
    }
  });

  it("should print every event and output delta as one JSON line with watch --json", async () => {
    const submitted = await cli("--json", "submit", "what is 6*7, use the calculator");
    const id = (JSON.parse(submitted.stdout) as { id: string }).id;
    const r = await cli("--json", "watch", id);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { event?: { status: string }; output?: { text?: string; iteration: number } });
    expect(lines.every((l) => Boolean(l.event) !== Boolean(l.output))).toBe(true);
    expect(lines.at(-1)?.event?.status).toBe("TASK_STATUS_COMPLETED");
    expect(
      lines
        .filter((l) => l.output?.iteration === 2)
        .map((l) => l.output?.text ?? "")
        .join(""),
    ).toBe("6*7 is 42.");
  });

  it("should stop a task at its --max-tokens with the failure code, and delete it", async () => {
    const submitted = await cli("--json", "submit", "what is 6*7, use the calculator", "--max-tokens", "10", "--timeout", "5m");
    const id = (JSON.parse(submitted.stdout) as { id: string }).id;
    const watched = await cli("watch", id);
    expect(watched.code).toBe(1);
    expect(watched.stdout).toMatch(/running -> failed \(iterations 1\) \[token_budget\]/);
    expect(watched.stderr).toMatch(/error: used 15 of its 10 tokens.*\(token_budget\)/);
    const got = await cli("get", id);
    expect(got.stdout).toMatch(/tokens:\s+15 of 10/);
    expect(got.stdout).toMatch(/deadline:\s+\d{4}-/);
    expect((await cli("delete", id)).stdout.trim()).toBe(`deleted ${id}`);
    const gone = await cli("get", id);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/NotFound/);
  });

  it("should show a task with get and find it with list --status", async () => {
    const submitted = await cli("--json", "submit", "listed task", "--request-id", "cli-1");
    const id = (JSON.parse(submitted.stdout) as { id: string }).id;
    await cli("watch", id);
    const got = await cli("get", id);
    expect(got.stdout).toMatch(new RegExp(`id:\\s+${id}`));
    expect(got.stdout).toContain("answer to listed task");
    const listed = await cli("list", "--status", "completed");
    expect(listed.stdout).toContain(id);
  });

  it("should submit with --webhook and show the task's webhook and each delivery's outcome on get", async () => {
    const receiver = await WebhookReceiver.start();
    try {
      const submitted = await cli("--json", "submit", "hooked task", "--webhook", receiver.url, "--webhook-status", "completed");
      const id = (JSON.parse(submitted.stdout) as { id: string }).id;
      await cli("watch", id);
      await expect.poll(() => receiver.received.length).toBe(1);
      await expect
        .poll(async () => (await cli("get", id)).stdout)
        .toMatch(/webhook #\d+ completed\s+delivered, 1 attempt last HTTP 200 {2}msg_[0-9a-f]{32}/);
      expect((await cli("get", id)).stdout).toContain(`webhook:     ${receiver.url} (on completed)`);
    } finally {
      await receiver.close();
    }
  });

  it("should exit 1 with the gRPC code when the call fails", async () => {
    const r = await cli("get", "0b7e3c55-7c1d-4d8e-9a51-3f0c2f4b9e10");
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe("rookery: NotFound: task 0b7e3c55-7c1d-4d8e-9a51-3f0c2f4b9e10 not found");
  });

  it("should end watch at once with exit 1 on an error that reconnecting cannot mend (NOT_FOUND)", async () => {
    const r = await cli("watch", "0b7e3c55-7c1d-4d8e-9a51-3f0c2f4b9e10");
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe("rookery: NotFound: task 0b7e3c55-7c1d-4d8e-9a51-3f0c2f4b9e10 not found");
  });

  it("should exit 1 when the watched task ends CANCELLED", async () => {
    h.fake.respond(() => ({ hang: true }));
    const submitted = await cli("--json", "submit", "to cancel");
    const id = (JSON.parse(submitted.stdout) as { id: string }).id;
    const watching = cli("watch", id);
    await h.fake.waitForCall((c) => c.prompt === "to cancel");
    expect((await cli("cancel", id, "--reason", "enough")).code).toBe(0);
    const r = await watching;
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("task ended cancelled");
    h.fake.respond(script);
  });

  it("should exit 2 on bad usage", async () => {
    const r = await cli("list", "--status", "bogus");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown status "bogus"/);
  });

  it("should exit 2 naming the flag when a count, token budget, sequence or duration is not one, and send nothing", async () => {
    const refused = [
      ["submit", "bad flag", "--max-iterations", "abc", "option '--max-iterations <n>' argument 'abc' is invalid"],
      ["submit", "bad flag", "--max-iterations", "1.5", "option '--max-iterations <n>' argument '1.5' is invalid"],
      ["submit", "bad flag", "--max-tokens", "-1", "option '--max-tokens <n>' argument '-1' is invalid"],
      [
        "submit",
        "bad flag",
        "--max-tokens",
        "18446744073709551616",
        "option '--max-tokens <n>' argument '18446744073709551616' is invalid",
      ],
      ["submit", "bad flag", "--timeout", "5x", "option '--timeout <duration>' argument '5x' is invalid"],
      ["list", "--page-size", "x", "option '--page-size <n>' argument 'x' is invalid"],
      ["watch", "0b7e3c55-7c1d-4d8e-9a51-3f0c2f4b9e10", "--after", "x", "option '--after <sequence>' argument 'x' is invalid"],
    ];
    for (const args of refused) {
      const expected = args.pop() ?? "";
      const r = await cli(...args);
      expect({ args, code: r.code, firstLine: r.stderr.split("\n")[0] }).toEqual({
        args,
        code: 2,
        firstLine: expect.stringContaining(expected),
      });
    }
    expect((await h.grpc.list({ pageSize: 1000 })).tasks.filter((t) => t.prompt === "bad flag")).toEqual([]);
  });

  it("should exit 2 on an unknown command or a missing argument, and 0 on --help", async () => {
    expect((await cli("bogus")).code).toBe(2);
    expect((await cli("get")).stderr).toMatch(/missing required argument 'id'/);
    expect((await cli("get")).code).toBe(2);
    expect((await cli("--help")).code).toBe(0);
  });

  it("should refuse to serve with a bad setting: exit 2 and a one-line reason", async () => {
    const r = await refusedServe(["--port", "nope"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual([
      'rookery: invalid ROOKERY_PORT (--port) = "nope": Invalid input: expected number, received NaN',
    ]);
  });

  it("should refuse to serve on a port in use: exit 2 naming the listener, its settings and the reason", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rookery-cli-ports-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const serve = (...flags: string[]) => refusedServe(flags, { ROOKERY_SQLITE_PATH: join(dir, "rookery.db") });
    // The harness's server holds both of its ports.
    const grpcTaken = await serve("--port", String(h.rookery.grpcPort), "--http-port", "0");
    expect(grpcTaken.code).toBe(2);
    expect(grpcTaken.stderr).toContain(
      `rookery: cannot serve gRPC on ROOKERY_HOST:ROOKERY_PORT (--host, --port) = 127.0.0.1:${h.rookery.grpcPort}: address already in use (EADDRINUSE)\n`,
    );
    const httpTaken = await serve("--port", "0", "--http-port", String(h.rookery.httpPort));
    expect(httpTaken.code).toBe(2);
    expect(httpTaken.stderr).toContain(
      `rookery: cannot serve HTTP on ROOKERY_HOST:ROOKERY_HTTP_PORT (--host, --http-port) = 127.0.0.1:${h.rookery.httpPort}: address already in use (EADDRINUSE)\n`,
    );
  });

  it("should refuse to serve with a SQLite path it cannot open, naming the path and the setting", async () => {
    // A directory is not a database file.
    const r = await refusedServe(["--port", "0", "--http-port", "0"], { ROOKERY_SQLITE_PATH: tmpdir() });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual([
      `rookery: cannot open the embedded store at ROOKERY_SQLITE_PATH (--sqlite-path) = ${JSON.stringify(tmpdir())}: unable to open database file`,
    ]);
  });
});
