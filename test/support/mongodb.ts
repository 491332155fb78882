import { randomUUID } from "node:crypto";
import { describe, inject } from "vitest";

/** describe() for suites that need MongoDB: skipped only outside CI when none could be had. */
export function describeWithMongo(name: string, body: () => void): void {
  const missing = inject("mongodbMissing");
  if (missing && process.env.CI === "true") throw new Error(`MongoDB suite "${name}" cannot run: ${missing}`);
  (missing ? describe.skip : describe)(name, body);
}

export function mongodbUri(): string {
  return inject("mongodbUri");
}

export function uniqueDatabase(prefix = "rookery_test"): string {
  return `${prefix}_${randomUUID().slice(0, 8)}`;
}
