#!/usr/bin/env node
// Runs the CLI as built in dist/ (`npm install` and `npm run build` build it). A
// checkout that was never built runs its TypeScript through tsx instead.
import { existsSync } from "node:fs";
import { URL } from "node:url";

const built = new URL("../dist/src/cli/main.js", import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli/main.ts");
}
