// The store a benchmark runs Rookery on: the embedded SQLite file in `dir`,
// or MongoDB: MONGODB_URI when set, else FerretDB started here (as the tests do).
import { join } from "node:path";
import { MongoClient } from "mongodb";
import { ensureFerretDB, startFerretDB, type FerretDB } from "../../test/support/ferretdb.js";

export interface BenchStore {
  /** Environment for `rookery serve`. */
  env: Record<string, string>;
  /** Deletes what the benchmark stored. */
  drop(): Promise<void>;
}

let ferret: FerretDB | undefined;

async function mongoUri(): Promise<string> {
  if (process.env.MONGODB_URI) return process.env.MONGODB_URI;
  ferret ??= await startFerretDB(ensureFerretDB());
  return ferret.uri;
}

export async function benchStore(kind: string, dir: string, name: string): Promise<BenchStore> {
  if (kind === "sqlite") return { env: { ROOKERY_SQLITE_PATH: join(dir, `${name}.db`) }, drop: async () => {} };
  if (kind !== "mongodb") throw new Error(`unknown store "${kind}": use sqlite or mongodb`);
  const uri = await mongoUri();
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
}
