// Builds the web dashboard (web/) into web/dist/: one minified script, one
// stylesheet and the page. `npm install` runs it (the `prepare` script), so
// `npm start` serves the dashboard with no other step; esbuild is the bundler
// tsx already brings, so this adds nothing to an install.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

export const WEB_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "web");

/** Bundles `entry` (a browser module) and its imports into `outfile`, minified. */
export async function bundleForBrowser(entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    minify: true,
    format: "esm",
    target: ["chrome120", "firefox120", "safari17"],
    legalComments: "none",
    logLevel: "warning",
  });
}

/** Writes index.html, assets/app.js and assets/app.css under `outDir`. */
export async function buildDashboard(outDir = join(WEB_DIR, "dist")): Promise<void> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, "assets"), { recursive: true });
  await bundleForBrowser(join(WEB_DIR, "src", "main.ts"), join(outDir, "assets", "app.js"));
  await build({
    entryPoints: [join(WEB_DIR, "app.css")],
    outfile: join(outDir, "assets", "app.css"),
    minify: true,
    logLevel: "warning",
  });
  copyFileSync(join(WEB_DIR, "index.html"), join(outDir, "index.html"));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildDashboard();
}
