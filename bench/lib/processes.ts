// Child processes of the benchmarks: node scripts that print a "ready ..."
// line, and a Redis server started and stopped here.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { ensureDebianPackage } from "../../test/support/debian-package.js";
import { freePort } from "../../test/support/free-port.js";

export interface Ready {
  child: ChildProcess;
  /** The words after "ready" on the ready line. */
  words: string[];
  /** Writes a command line to the script's stdin. */
  send(line: string): void;
  /** The next line the script prints that starts with `prefix`. */
  nextLine(prefix: string): Promise<string>;
  stop(): Promise<void>;
}

const started = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of started) child.kill("SIGKILL");
});

function track(child: ChildProcess): () => Promise<void> {
  started.add(child);
  child.once("exit", () => started.delete(child));
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    await once(child, "exit");
  };
}

/** Runs a TypeScript file of this repo with tsx and waits for its "ready" line. */
export async function startScript(file: string, args: string[] = []): Promise<Ready> {
  const child = spawn(process.execPath, ["--import", "tsx", file, ...args], { stdio: ["pipe", "pipe", "inherit"] });
  const stop = track(child);
  const waiting: { prefix: string; resolve(line: string): void }[] = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    const i = waiting.findIndex((w) => line.startsWith(w.prefix));
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(line);
  });
  const nextLine = (prefix: string) => new Promise<string>((resolve) => waiting.push({ prefix, resolve }));
  const ready = await Promise.race([
    nextLine("ready"),
    once(child, "exit").then(([code]) => {
      throw new Error(`${file} exited (${code}) before it was ready`);
    }),
  ]);
  return { child, words: ready.split(" ").slice(1), send: (line) => child.stdin.write(`${line}\n`), nextLine, stop };
}

/**
 * Debian's redis-server on a loopback port with its data in `dir`, append-only
 * file on with fsync every second (the durable setting a job queue would run with).
 * The package is installed with apt-get when it is missing.
 */
export async function startRedis(dir: string): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--appendonly",
    "yes",
    "--appendfsync",
    "everysec",
    "--save",
    "",
  ];
  const child = spawn(ensureDebianPackage("redis-server", "/usr/bin/redis-server"), args, { stdio: ["ignore", "pipe", "inherit"] });
  child.once("error", (error) => {
    throw new Error(`redis-server could not start (${error.message})`);
  });
  const stop = track(child);
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line.includes("Ready to accept connections")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`redis-server exited (${code}) before it was ready`)));
  });
  return { port, pid: child.pid!, stop };
}
