// A throwaway PostgreSQL 15 (Debian's, /usr/lib/postgresql/15/bin) for
// FerretDB's PostgreSQL backend: a temp data dir, run as the `postgres` user
// (initdb and postgres refuse root), loopback only, stopped with its data
// deleted by stop(), or when the process that started it exits.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./free-port.js";

export const POSTGRES_BIN = "/usr/lib/postgresql/15/bin";

export interface Postgres {
  /** postgres://postgres@127.0.0.1:<port>/ferretdb */
  url: string;
  stop(): Promise<void>;
}

/** The command and arguments that run `command` as the postgres user (needed under root). */
function asPostgres(command: string, args: string[]): [string, string[]] {
  return userInfo().uid === 0 ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
}

/**
 * `durable: false` (tests) turns off fsync: the tests kill Rookery, never PostgreSQL, so
 * they lose nothing by it. Benchmarks keep PostgreSQL's defaults.
 */
export async function startPostgres(options: { durable?: boolean } = {}): Promise<Postgres> {
  const dir = mkdtempSync(join(tmpdir(), "rookery-postgres-"));
  if (userInfo().uid === 0) {
    const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"]).toString().trim());
    const [uid, gid] = [id("-u"), id("-g")];
    chownSync(dir, uid, gid);
  }
  const data = join(dir, "data");
  execFileSync(...asPostgres(join(POSTGRES_BIN, "initdb"), ["-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8"]), {
    stdio: ["ignore", "ignore", "pipe"],
  });
  // A port free when chosen can be taken before PostgreSQL binds it (the suites run
  // side by side): then it starts again on another.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawn(...asPostgres(join(POSTGRES_BIN, "postgres"), serverArgs(data, dir, port, options)), {
      stdio: ["ignore", "ignore", "pipe"],
    });
    const stderr: string[] = [];
    child.stderr.on("data", (d: Buffer) => stderr.push(d.toString()));
    const closed = once(child, "close").catch(() => undefined); // its stderr read to the end
    for (let i = 0; ; i++) {
      try {
        execFileSync(join(POSTGRES_BIN, "createdb"), ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "ferretdb"], {
          stdio: "ignore",
        });
        return running(port, child, data, dir);
      } catch (error) {
        if (child.exitCode === null && i <= 200) {
          await sleep(100);
          continue;
        }
        if (child.exitCode !== null) await closed;
        const portTaken = stderr.join("").includes("Address already in use");
        if (portTaken && attempt < 5) break;
        throw new Error(`postgres did not start: ${stderr.join("")}`, { cause: error });
      }
    }
  }
}

function serverArgs(data: string, dir: string, port: number, options: { durable?: boolean }): string[] {
  return [
    "-D",
    data,
    "-p",
    String(port),
    "-k",
    dir,
    "-c",
    "listen_addresses=127.0.0.1",
    ...(options.durable === false ? ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"] : []),
  ];
}

function running(port: number, child: ChildProcess, data: string, dir: string): Postgres {
  // pg_ctl, not a signal to `runuser`, which does not pass it on.
  const pgCtlStop = (mode: "fast" | "immediate") =>
    execFileSync(...asPostgres(join(POSTGRES_BIN, "pg_ctl"), ["stop", "-D", data, "-m", mode, "-w"]), { stdio: "ignore" });
  // So PostgreSQL outlives an owner that ends without calling stop() (a benchmark that
  // throws, a suite that crashes): stop it on the way out. Only synchronous work runs in
  // an exit listener.
  const onExit = () => {
    if (child.exitCode === null) {
      try {
        pgCtlStop("immediate");
      } catch {
        // Already stopping: nothing left to do.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", onExit);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/ferretdb`,
    async stop() {
      process.off("exit", onExit);
      if (child.exitCode === null) {
        const exited = once(child, "exit");
        pgCtlStop("fast");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
