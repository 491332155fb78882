// A real headless Chromium for the browser suites: Debian's `chromium` package
// (installed here with apt-get when missing, as the machine's registry
// provides it), driven by playwright-core, which downloads no browser. It is
// launched so that it sends nothing beyond loopback: background networking,
// component updates and the like off, every host name resolving to nothing
// (the tests use 127.0.0.1), and each page's requests recorded for the caller to check.
import { chromium, type Browser, type BrowserContext } from "playwright-core";
import { ensureDebianPackage } from "./debian-package.js";

export const CHROMIUM = "/usr/bin/chromium";

/** The path of Debian's chromium, installing it when it is not there (ENOENT when apt-get itself is missing). */
export function ensureChromium(): string {
  return ensureDebianPackage("chromium", CHROMIUM);
}

const QUIET_FLAGS = [
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-default-apps",
  "--disable-domain-reliability",
  "--disable-client-side-phishing-detection",
  "--disable-breakpad",
  "--no-first-run",
  "--no-pings",
  "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions",
  // No name resolves: everything the tests load is on 127.0.0.1.
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
];

export async function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, headless: true, args: QUIET_FLAGS });
}

/**
 * A browser context whose pages' requests are all recorded: any to another host
 * than 127.0.0.1 lands in `offLoopback`, which a test asserts empty. (Observed,
 * not intercepted: with interception on, Playwright answers CORS preflights
 * itself and the server's CORS would go untested.)
 */
export async function loopbackContext(
  browser: Browser,
  options: Parameters<Browser["newContext"]>[0] = {},
): Promise<{ context: BrowserContext; offLoopback: string[] }> {
  const context = await browser.newContext(options);
  const offLoopback: string[] = [];
  context.on("request", (request) => {
    if (new URL(request.url()).hostname !== "127.0.0.1") offLoopback.push(request.url());
  });
  return { context, offLoopback };
}
