// A real MongoDB-wire server for the tests: FerretDB (SQLite or PostgreSQL backend) built
// from tools/ferretdb with the Go toolchain, cached under .cache/bin by a hash
// of its sources, started on a loopback port with a temp data dir.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { goBuildCached } from "./toolchains.js";

const SOURCE = resolve("tools/ferretdb");

/** Builds the binary unless the cached one matches the sources; throws when Go is missing. */
export function ensureFerretDB(): string {
  return goBuildCached("ferretdb", SOURCE, ["go.mod", "go.sum", "main.go"], ".", 600_000);
}

export interface FerretDB {
  uri: string;
  /** Host:port it listens on (stable across stop/start). */
  address: string;
  stop(): Promise<void>;
  /** Starts again on the same address and data dir. */
  start(): Promise<void>;
  /** Stops and deletes the data dir. */
  destroy(): Promise<void>;
}

/** Starts FerretDB on its SQLite backend (a temp data dir), or on PostgreSQL at `postgresqlUrl`. */
export async function startFerretDB(bin: string, address = "127.0.0.1:0", postgresqlUrl?: string): Promise<FerretDB> {
  const dir = mkdtempSync(join(tmpdir(), "rookery-ferretdb-"));
  const backend = postgresqlUrl ? ["-postgresql-url", postgresqlUrl] : ["-sqlite-dir", dir];
  let child: ChildProcess | undefined;
  let uri = "";
  let listen = address;

  const start = async () => {
    child = spawn(bin, ["-listen-addr", listen, ...backend], { stdio: ["pipe", "pipe", "pipe"] });
    const stderr: string[] = [];
    child.stderr!.on("data", (d: Buffer) => stderr.push(d.toString()));
    const ready = new Promise<string>((resolveReady, reject) => {
      createInterface({ input: child!.stdout! }).on("line", (line) => {
        if (line.startsWith("ready ")) resolveReady(line.slice("ready ".length).trim());
      });
      child!.once("exit", (code) => reject(new Error(`ferretdb exited (${code}): ${stderr.join("")}`)));
    });
    uri = await ready;
    listen = new URL(uri).host;
  };
  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
  };
  await start();
  return {
    get uri() {
      return uri;
    },
    get address() {
      return listen;
    },
    stop,
    start,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
