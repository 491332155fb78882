// `rookery watch` across a restart of the server it watches through: it reconnects
// after the last sequence and output offset it printed, and follows the task to its
// end, printing each part of it once.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { childServersOnOneFile, CLI } from "../support/child-server.js";
import { freePort } from "../support/free-port.js";

describe("rookery watch across a restart of the server", () => {
  const servers = childServersOnOneFile("cli-watch");
  let port = 0;
  beforeAll(async () => {
    await servers.setUp();
    port = await freePort(); // both servers listen here, one after the other
  });
  afterAll(() => servers.tearDown());

  it.each(["SIGTERM", "SIGKILL"] as const)(
    "should follow the task to COMPLETED across a %s and restart of the server, print the new answer once, and exit 0",
    async (signal) => {
      const prompt = `restart with ${signal}`;
      let calls = 0;
      servers.fake.respond((c) => {
        if (c.prompt !== prompt) return { content: "?" };
        // The first call streams two pieces and then nothing: its server goes away mid-iteration.
        if (calls++ === 0) return { content: "first words never finished", pieceSize: 6, pauseAt: 2, resume: new Promise(() => undefined) };
        return { content: "the answer after the restart", pieceSize: 4, paceMs: 5 };
      });
      const env = { ROOKERY_PORT: String(port), ROOKERY_LEASE_MS: "1000" };
      const first = await servers.start(env);
      const { task } = await first.client.submit({ prompt });
      const cli = runCli("watch", task!.id, "--address", `127.0.0.1:${port}`);
      await cli.printed("first words");

      first.process.kill(signal);
      await first.exited;
      const second = await servers.start(env);
      const { code, stdout, stderr } = await cli.exited;
      second.process.kill("SIGTERM"); // the next case listens on the same port
      await second.exited;

      expect({ code, stderr }).toEqual({ code: 0, stderr: expect.any(String) as string });
      expect(stderr).toMatch(/^rookery: lost the stream \((Unavailable|Canceled|Aborted): .*\); reconnecting after sequence \d+$/m);
      expect(stdout.split("the answer after the restart").length - 1).toBe(1);
      expect(stdout).toMatch(/^#\d+ completed +running -> completed/m);
      // Each event once, in order: the sequences printed are 1, 2, 3, ... with none missing.
      const sequences = [...stdout.matchAll(/^#(\d+) /gm)].map((m) => Number(m[1]));
      expect(sequences).toEqual(sequences.map((_, i) => i + 1));
    },
  );
});

/** The CLI as a child process: what it has printed so far, and how it ended. */
function runCli(...args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  const waiting: { text: string; resolve: () => void }[] = [];
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const w of waiting.filter((w) => stdout.includes(w.text))) w.resolve();
  });
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return {
    printed: (text: string) => new Promise<void>((resolve) => (stdout.includes(text) ? resolve() : waiting.push({ text, resolve }))),
    exited: once(child, "exit").then(([code]) => ({ code: code as number | null, stdout, stderr })),
  };
}
