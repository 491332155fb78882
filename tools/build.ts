// Builds what `npm start` runs: the dashboard (web/dist/, tools/build-dashboard.ts) and
// the server's TypeScript (src/, gen/) as JavaScript in dist/, one file per module, laid
// out as in the sources. `npm install` runs it (the `prepare` script), and so do `npm
// start` and the test suites' global setup, so what runs is always the sources' build.
//
// Why a build rather than tsx at run time: tsx compiles with esbuild's `keepNames`,
// which wraps every function and closure the code creates in a call that sets its
// name; on the server's hot paths that cost ~7% of its CPU per task, and tsx's loader
// nearly doubled the time to start (bench/RESULTS.md, issue 16, 1g). This only strips types:
// `npm run typecheck` (part of `npm test`) checks them.
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { buildDashboard, WEB_DIR } from "./build-dashboard.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DIST_DIR = join(ROOT, "dist");
/** The CLI as built: `node dist/src/cli/main.js serve` is `npm start`. */
export const BUILT_CLI = join(DIST_DIR, "src", "cli", "main.js");

// Run from source, a worker thread starts from this file, which registers tsx first;
// the build's worker starts from its own compiled module (model-worker-pool.ts).
const SOURCE_ONLY = new Set([join("src", "agent", "model-worker-entry.js")]);

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

/** The files the build reads, relative to the checkout. */
function sourceFiles(): string[] {
  return ["src", "gen"].flatMap((dir) => filesUnder(join(ROOT, dir))).map((file) => relative(ROOT, file));
}

/** Why dist/ is not the build of the sources as they are (never built, or a source changed since), or undefined. */
export function whyBuildIsStale(): string | undefined {
  if (!existsSync(BUILT_CLI)) return "dist/ has not been built";
  const builtAt = statSync(BUILT_CLI).mtimeMs;
  const changed = sourceFiles().find((file) => statSync(join(ROOT, file)).mtimeMs > builtAt);
  return changed === undefined ? undefined : `${changed} changed after dist/ was built`;
}

/**
 * Compiles src/ and gen/ into dist/ and copies the files they read at run time beside
 * them. Built aside and moved into place, so a server running from dist/ meanwhile
 * never finds it half written.
 */
export async function buildServer(): Promise<void> {
  const out = `${DIST_DIR}.${process.pid}`;
  rmSync(out, { recursive: true, force: true });
  const files = sourceFiles();
  await build({
    entryPoints: files.filter((file) => file.endsWith(".ts") && !file.endsWith(".spec.ts")),
    outdir: out,
    outbase: ROOT,
    format: "esm",
    platform: "node",
    target: "node20",
    sourcemap: true,
    logLevel: "warning",
  });
  // Plain JavaScript (the WAL checkpointer's thread) and the SQLite migrations, as they are.
  for (const file of files.filter((f) => (f.endsWith(".js") || f.endsWith(".sql")) && !SOURCE_ONLY.has(f))) {
    mkdirSync(dirname(join(out, file)), { recursive: true });
    copyFileSync(join(ROOT, file), join(out, file));
  }
  // The dashboard, where dist/src/server/dashboard.js looks for it (../../web/dist).
  cpSync(join(WEB_DIR, "dist"), join(out, "web", "dist"), { recursive: true });
  rmSync(DIST_DIR, { recursive: true, force: true });
  renameSync(out, DIST_DIR);
}

export async function buildAll(): Promise<void> {
  await buildDashboard();
  await buildServer();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildAll();
}
