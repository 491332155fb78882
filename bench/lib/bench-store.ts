// The store a benchmark runs Rookery on: the embedded SQLite file in `dir`,
// or MongoDB: MONGODB_URI when set, else FerretDB started here (as the tests
// do), on its SQLite backend (`mongodb`) or on a PostgreSQL 15 started here
// (`ferretdb-pg`, FerretDB's production-grade backend).
import { join } from "node:path";
import { MongoClient } from "mongodb";
import { ensureFerretDB, startFerretDB, type FerretDB } from "../../test/support/ferretdb.js";
import { startPostgres, type Postgres } from "../../test/support/postgres.js";

export interface BenchStore {
  /** Environment for `rookery serve`. */
  env: Record<string, string>;
  /** Deletes what the benchmark stored. */
  drop(): Promise<void>;
}

let ferret: FerretDB | undefined;
let postgres: Postgres | undefined;

async function mongoUri(kind: string): Promise<string> {
  if (process.env.MONGODB_URI) return process.env.MONGODB_URI;
  if (kind === "ferretdb-pg") postgres ??= await startPostgres();
  ferret ??= await startFerretDB(ensureFerretDB(), "127.0.0.1:0", postgres?.url);
  return ferret.uri;
}

export async function benchStore(kind: string, dir: string, name: string): Promise<BenchStore> {
  if (kind === "sqlite") return { env: { ROOKERY_SQLITE_PATH: join(dir, `${name}.db`) }, drop: async () => {} };
  if (kind !== "mongodb" && kind !== "ferretdb-pg") throw new Error(`unknown store "${kind}": use sqlite, mongodb or ferretdb-pg`);
  const uri = await mongoUri(kind);
  const database = `rookery_bench_${name}_${process.pid}`;
  return {
    env: { ROOKERY_STORE: "mongodb", MONGODB_URI: uri, ROOKERY_MONGODB_DB: database },
    drop: async () => {
      const client = await MongoClient.connect(uri);
      await client.db(database).dropDatabase();
      await client.close();
    },
  };
}

/** Stops the FerretDB this module started, if any. */
export async function stopBenchStores(): Promise<void> {
  await ferret?.destroy();
  ferret = undefined;
  await postgres?.stop();
  postgres = undefined;
}
