// Once per `npm test`: provides a MongoDB URI to the MongoDB suites. MONGODB_URI
// points them at any MongoDB; otherwise FerretDB is built and started here.
// When neither works the MongoDB suites skip, except under CI=true, where that
// is a failure.
import type { TestProject } from "vitest/node";
import { ensureFerretDB, startFerretDB } from "./ferretdb.js";

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
  const external = process.env.MONGODB_URI;
  let bin = "";
  let missing = "";
  try {
    bin = ensureFerretDB();
  } catch (error) {
    missing = `could not build FerretDB (needs the Go toolchain): ${(error as Error).message.split("\n")[0]}`;
  }
  if (missing && process.env.CI === "true" && !external) throw new Error(missing);
  const server = external || !bin ? undefined : await startFerretDB(bin);
  project.provide("mongodbUri", external ?? server?.uri ?? "");
  project.provide("ferretdbBin", bin);
  project.provide("mongodbMissing", external || server ? "" : missing);
  return async () => {
    await server?.destroy();
  };
}
