// Once per `npm test`: builds dist/ (tools/build.ts), which the suites' child
// processes run, and provides a MongoDB URI to the MongoDB suites. MONGODB_URI
// points them at any MongoDB; otherwise FerretDB is built and started here, on
// PostgreSQL 15 (its production-grade backend, several times faster for this
// workload: bench/RESULTS.md) when it is installed, else on SQLite.
// When neither works the MongoDB suites skip, except under CI=true, where that
// is a failure.
import type { TestProject } from "vitest/node";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { buildAll } from "../../tools/build.js";
import { ensureFerretDB, startFerretDB } from "./ferretdb.js";
import { POSTGRES_BIN, startPostgres } from "./postgres.js";

declare module "vitest" {
  export interface ProvidedContext {
    mongodbUri: string;
    /** Path of the FerretDB binary ("" when MONGODB_URI was given or no Go toolchain). */
    ferretdbBin: string;
    /** Why there is no MongoDB ("" when there is one). */
    mongodbMissing: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The suites' child processes (servers, the CLI) run the build, as `npm start` does.
  await buildAll();
  const external = process.env.MONGODB_URI;
  let bin = "";
  let missing = "";
  try {
    bin = ensureFerretDB();
  } catch (error) {
    missing = `could not build FerretDB (needs the Go toolchain): ${(error as Error).message.split("\n")[0]}`;
  }
  if (missing && process.env.CI === "true" && !external) throw new Error(missing);
  const postgres = external || !bin || !existsSync(join(POSTGRES_BIN, "postgres")) ? undefined : await startPostgres({ durable: false });
  const server = external || !bin ? undefined : await startFerretDB(bin, "127.0.0.1:0", postgres?.url);
  project.provide("mongodbUri", external ?? server?.uri ?? "");
  project.provide("ferretdbBin", bin);
  project.provide("mongodbMissing", external || server ? "" : missing);
  return async () => {
    await server?.destroy();
    await postgres?.stop();
  };
}
