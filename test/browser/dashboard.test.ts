// The web dashboard in a real headless Chromium against a real server and the
// fake model: every action goes through the page as a person would, and what
// the page shows is checked against the API.
import { mkdirSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { createApiKey } from "../../src/auth/api-keys.js";
import { CONTENT_SECURITY_POLICY, DASHBOARD_DIR } from "../../src/server/dashboard.js";
import { buildDashboard } from "../../tools/build-dashboard.js";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { ensureChromium, launchChromium, loopbackContext } from "../support/browser.js";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { TaskService, WatchRequestSchema, type WatchRequest } from "../../gen/rookery/v1/task_service_pb.js";
import { fromBinary } from "@bufbuild/protobuf";
import { FakeOpenAI } from "../support/fake-openai.js";
import { collectEvents, startHarness, waitForStatus, type Harness } from "../support/harness.js";
import { itWith, toolchain } from "../support/toolchains.js";

const chain = toolchain("chromium", ensureChromium);
const it = itWith(chain);
const SHOTS = join("test-output", "screenshots");
/** The budget for what a first visit downloads (minified; gzip is what travels). */
const BUDGET = { jsBytes: 200_000, jsGzipBytes: 60_000, cssBytes: 12_000 };

/** A Connect streaming request body: one envelope (flags byte, 4-byte length) holding the binary WatchRequest. */
const watchRequestOf = (body: Buffer): WatchRequest => fromBinary(WatchRequestSchema, body.subarray(5, 5 + body.readUInt32BE(1)));

const CALCULATOR_PROMPT = "what is 6*7, use the calculator";

describe("the web dashboard", () => {
  let h: Harness;
  let fake: FakeOpenAI;
  let browser: Browser;
  let base = "";
  const releases: (() => void)[] = [];
  const held = (): Promise<void> => new Promise((resolve) => releases.push(resolve));

  beforeAll(async () => {
    if (chain.missing) return;
    await buildDashboard();
    mkdirSync(SHOTS, { recursive: true });
    fake = await FakeOpenAI.start();
    fake.respond((c) => {
      if (c.prompt === CALCULATOR_PROMPT)
        return c.turn === 0
          ? { content: "Let me compute.", toolCalls: [{ name: "calculator", arguments: '{"expression":"6*7"}' }] }
          : { content: "6*7 is 42.", pieceSize: 3, paceMs: 5 };
      if (c.prompt === "stopped, then resumed")
        return c.body.messages.some((m) => m.content === "go on")
          ? { content: "finished after the resume" }
          : { content: "never ends", pieceSize: 1, pauseAt: 1, resume: held() };
      if (c.prompt.startsWith("slow")) return { content: "a long answer that never ends", pieceSize: 1, pauseAt: 2, resume: held() };
      if (c.prompt.startsWith("three steps"))
        return c.turn < 2
          ? { content: `step ${c.turn + 1}`, toolCalls: [{ name: "calculator", arguments: `{"expression":"${c.turn}+1"}` }] }
          : { content: "all three steps are done", pieceSize: 2, pauseAt: 3, resume: held() };
      if (c.prompt.startsWith("ask the client"))
        return c.turn === 0 ? { toolCalls: [{ name: "lookup", arguments: '{"city":"Oslo"}' }] } : { content: "Oslo has 3 degrees." };
      return { content: "done" };
    });
    h = await startHarness({}, fake);
    base = `http://127.0.0.1:${h.rookery.httpPort}`;
    browser = await launchChromium(chain.value!);
  }, 900_000);

  afterAll(async () => {
    releases.forEach((r) => r());
    await browser?.close();
    await h?.close();
    await fake?.close();
  });

  /** `prepare` runs on the page before it loads (to route its requests, say). */
  async function openPage(
    hash = "#/",
    viewport = { width: 1280, height: 900 },
    prepare?: (page: Page) => Promise<void>,
  ): Promise<{ page: Page; offLoopback: string[] }> {
    const { context, offLoopback } = await loopbackContext(browser, { viewport });
    const page = await context.newPage();
    await prepare?.(page);
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    await page.goto(`${base}/${hash}`);
    return { page, offLoopback };
  }

  const sequences = (page: Page) =>
    page.locator("#timeline li").evaluateAll((items) => items.map((li) => Number(li.getAttribute("data-sequence"))));

  it("should serve the page with a CSP that allows nothing from other origins, and no task data in the HTML", async () => {
    const { task } = await h.connect.submit({ prompt: "a secret prompt" });
    const response = await fetch(`${base}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).toContain("default-src 'none'");
    expect(CONTENT_SECURITY_POLICY).toContain("connect-src 'self'");
    const html = await response.text();
    expect(html).not.toContain(task!.id);
    expect(html).not.toContain("a secret prompt");
    expect(html).not.toMatch(/<script>|<style>| style=/); // nothing inline: the CSP would refuse it
  });

  it("should keep the page's JS and CSS within the budget", async () => {
    const js = readFileSync(join(DASHBOARD_DIR, "assets", "app.js"));
    const css = statSync(join(DASHBOARD_DIR, "assets", "app.css")).size;
    console.log(`dashboard: app.js ${js.length} B (${gzipSync(js).length} B gzipped), app.css ${css} B`);
    expect(js.length).toBeLessThanOrEqual(BUDGET.jsBytes);
    expect(gzipSync(js).length).toBeLessThanOrEqual(BUDGET.jsGzipBytes);
    expect(css).toBeLessThanOrEqual(BUDGET.cssBytes);
  });

  it("should submit from the page (keyboard only) and show the timeline reach COMPLETED with the calculator call and result", async () => {
    const { page, offLoopback } = await openPage("#/new");
    await page.getByLabel("Prompt", { exact: true }).fill(CALCULATOR_PROMPT);
    await page.getByLabel("Labels").fill("from=dashboard");
    await page.locator("#submit").focus();
    await page.keyboard.press("Enter");
    await page.waitForURL(/#\/tasks\//);
    await page.locator("#task-status", { hasText: "completed" }).waitFor();
    const id = decodeURIComponent(page.url().split("#/tasks/")[1]!);
    await page.locator("#timeline li[data-status=completed]").waitFor();
    const timeline = await page.locator("#timeline").innerText();
    expect(timeline).toContain('calculator({"expression":"6*7"})');
    expect(timeline).toContain("42"); // the calculator's result
    expect(timeline).toContain("6*7 is 42.");
    expect(await page.locator("#task-result").innerText()).toBe("6*7 is 42.");
    const { task } = await h.connect.get({ id });
    expect(task!.labels).toEqual({ from: "dashboard" });
    expect(await sequences(page)).toEqual(Array.from({ length: Number(task!.lastEventSequence) }, (_, i) => i + 1));
    await page.locator("figure", { hasText: "Tokens per iteration" }).waitFor();
    await page.screenshot({ path: join(SHOTS, "task.png"), fullPage: true });
    expect(offLoopback).toEqual([]);
    await page.context().close();
  });

  it("should show the API's error as it words it when Submit is refused", async () => {
    const { page } = await openPage("#/new");
    await page.getByLabel("Prompt", { exact: true }).fill("bounded");
    await page.getByLabel("Max iterations").fill("100000");
    await page.locator("#submit").click();
    const alert = page.getByRole("alert");
    await alert.waitFor();
    expect(await alert.innerText()).toMatch(/^InvalidArgument: .*max_iterations/);
    await page.context().close();
  });

  it("should stream the live output and cancel a slow task from its page", async () => {
    const { task } = await h.connect.submit({ prompt: "slow task" });
    const { page } = await openPage(`#/tasks/${task!.id}`);
    await page.locator("#live-output", { hasText: "a " }).waitFor();
    await page.locator("#cancel").click();
    await page.locator("#task-status", { hasText: "cancelled" }).waitFor();
    await page.locator("#timeline li[data-status=cancelled]").waitFor();
    expect((await h.connect.get({ id: task!.id })).task!.status).toBe(TaskStatus.CANCELLED);
    expect(await page.locator("#live-output").isHidden()).toBe(true);
    await page.context().close();
  });

  it("should resume an INPUT_REQUIRED task with a tool result typed next to the call's arguments", async () => {
    const { task } = await h.connect.submit({
      prompt: "ask the client about Oslo",
      tools: [{ name: "lookup", description: "Looks up the weather" }],
    });
    await waitForStatus(h.connect, task!.id, TaskStatus.INPUT_REQUIRED);
    const { page } = await openPage(`#/tasks/${task!.id}`);
    const call = page.locator("fieldset.tool-call");
    await call.waitFor();
    expect(await call.innerText()).toContain('{"city":"Oslo"}');
    await page.getByLabel("Result of lookup").fill("3 degrees and rain");
    await page.locator("#resume").click();
    await page.locator("#task-status", { hasText: "completed" }).waitFor();
    await page.locator("#timeline li[data-status=completed]").waitFor();
    expect(await page.locator("#timeline").innerText()).toContain("3 degrees and rain");
    const conversation = (await h.connect.get({ id: task!.id })).task!.checkpoint!.messages;
    expect(conversation.find((m) => m.role === "tool")?.content).toBe("3 degrees and rain");
    await page.context().close();
  });

  it("should keep a tool result being typed when the page refreshes on the events its Watch replays", async () => {
    const { task } = await h.connect.submit({
      prompt: "ask the client about Oslo, typed while the timeline loads",
      tools: [{ name: "lookup", description: "Looks up the weather" }],
    });
    await waitForStatus(h.connect, task!.id, TaskStatus.INPUT_REQUIRED);
    // The Watch is held until the result is typed: its replayed status events then refresh
    // the page (Get) while the form holds the typed text, as a slow connection would have it.
    let releaseWatch!: () => void;
    const watchHeld = new Promise<void>((resolve) => (releaseWatch = resolve));
    const gets = { started: 0, finished: 0 };
    const { page } = await openPage(`#/tasks/${task!.id}`, undefined, async (p) => {
      p.on("request", (r) => r.url().endsWith("/Get") && gets.started++);
      p.on("requestfinished", (r) => r.url().endsWith("/Get") && gets.finished++);
      await p.route("**/rookery.v1.TaskService/Watch", async (route) => {
        await watchHeld;
        await route.continue();
      });
    });
    await page.getByLabel("Result of lookup").fill("3 degrees and rain");
    const getsBefore = gets.started;
    releaseWatch();
    await page.locator("#timeline li[data-status=input_required]").waitFor();
    await expect.poll(() => gets.started > getsBefore && gets.finished === gets.started).toBe(true);
    expect(await page.getByLabel("Result of lookup").inputValue()).toBe("3 degrees and rain");
    await page.locator("#resume").click();
    await page.locator("#task-status", { hasText: "completed" }).waitFor();
    const conversation = (await h.connect.get({ id: task!.id })).task!.checkpoint!.messages;
    expect(conversation.find((m) => m.role === "tool")?.content).toBe("3 degrees and rain");
    await page.context().close();
  });

  it("should show a cancelled and resumed task's whole timeline, past the CANCELLED event a Watch from the start ends at", async () => {
    const { task } = await h.connect.submit({ prompt: "stopped, then resumed" });
    await waitForStatus(h.connect, task!.id, TaskStatus.RUNNING);
    await h.connect.cancel({ id: task!.id });
    const { task: resumed } = await h.connect.resume({ id: task!.id, message: "go on" });
    await collectEvents(h.connect, task!.id, resumed!.lastEventSequence);
    const { page } = await openPage(`#/tasks/${task!.id}`);
    await page.locator("#timeline li[data-status=completed]").waitFor();
    const { task: done } = await h.connect.get({ id: task!.id });
    expect(await sequences(page)).toEqual(Array.from({ length: Number(done!.lastEventSequence) }, (_, i) => i + 1));
    expect(await page.locator("#timeline li[data-status=cancelled]").count()).toBe(1);
    expect(await page.locator("#task-result").innerText()).toBe("finished after the resume");
    await page.context().close();
  });

  it("should continue the timeline after a reload mid-run with no event missing or shown twice", async () => {
    const { task } = await h.connect.submit({ prompt: "three steps, then stop" });
    const { page } = await openPage(`#/tasks/${task!.id}`);
    // The third model call streams two characters, then waits: the run is mid-iteration.
    await page.locator("#live-output", { hasText: "al" }).waitFor();
    const before = await sequences(page);
    expect(before.length).toBeGreaterThan(2);
    const watches: Promise<WatchRequest>[] = [];
    page.on("request", (r) => r.url().endsWith("/Watch") && watches.push(Promise.resolve(watchRequestOf(r.postDataBuffer()!))));
    await page.reload();
    await page.locator("#live-output", { hasText: "al" }).waitFor();
    expect(await sequences(page)).toEqual(before); // restored, not replayed twice
    // ...and the stream resumed after the last event and output offset seen, not from the start.
    await expect.poll(() => watches.length).toBeGreaterThan(0);
    const resumed = await watches[0]!;
    expect(resumed.afterSequence).toBe(BigInt(before.at(-1)!));
    expect(resumed.outputOffset).toBeGreaterThan(0n);
    releases.splice(0).forEach((r) => r());
    await page.locator("#timeline li[data-status=completed]").waitFor();
    const { task: done } = await h.connect.get({ id: task!.id });
    expect(await sequences(page)).toEqual(Array.from({ length: Number(done!.lastEventSequence) }, (_, i) => i + 1));
    const answers = await page.locator("#timeline .message-assistant pre", { hasText: "all three steps are done" }).count();
    expect(answers).toBe(1);
    await page.context().close();
  });

  it("should page through 120 tasks newest first, filter by status and label, and show new tasks without a reload", async () => {
    const stopped = (await h.connect.submit({ prompt: "slow, to be cancelled" })).task!.id;
    await h.connect.cancel({ id: stopped });
    const created: string[] = [];
    for (let i = 0; i < 120; i++) created.push((await h.connect.submit({ prompt: `paging ${i}`, labels: { batch: "paging" } })).task!.id);
    const { page, offLoopback } = await openPage("#/");
    await page.getByLabel("Labels").fill("batch=paging");
    await page.getByRole("button", { name: "Apply" }).click();
    const ids = () => page.locator("tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-task-id")));
    const seen: (string | null)[] = [];
    for (const [n, size] of [
      [1, 50],
      [2, 50],
      [3, 20],
    ] as const) {
      await page.locator("#page-info", { hasText: `Page ${n}` }).waitFor();
      // The page's rows: only the label's tasks, as many as the page holds.
      await page.waitForFunction(
        ([count, mine]) => {
          const rows = [...document.querySelectorAll("tbody tr")].map((r) => r.getAttribute("data-task-id") ?? "");
          return rows.length === count && rows.every((id) => mine.includes(id));
        },
        [size, created] as const,
      );
      seen.push(...(await ids()));
      if (n < 3) await page.locator("#page-next").click();
    }
    expect(await page.locator("#page-next").isDisabled()).toBe(true);
    expect(seen).toEqual([...created].reverse()); // newest first, each once

    await page.getByLabel("Labels").fill("");
    await page.getByLabel("Status", { exact: true }).selectOption({ label: "cancelled" });
    await page.getByRole("button", { name: "Apply" }).click();
    await page.locator("#page-info", { hasText: "Page 1" }).waitFor();
    const cancelled = (await h.connect.list({ statuses: [TaskStatus.CANCELLED] })).tasks.map((t) => t.id);
    expect(cancelled).toContain(stopped);
    await page.waitForFunction(
      (want) => [...document.querySelectorAll("tbody tr")].map((r) => r.getAttribute("data-task-id")).join() === want,
      cancelled.join(),
    );
    expect(await page.locator("tbody .status").allInnerTexts()).toEqual(cancelled.map(() => "cancelled"));

    await page.getByLabel("Status", { exact: true }).selectOption({ label: "any" });
    await page.getByRole("button", { name: "Apply" }).click();
    const { task } = await h.connect.submit({ prompt: "appears live" });
    await page.locator(`tr[data-task-id="${task!.id}"]`).waitFor(); // by polling, no reload
    await page.locator("figure", { hasText: "Tasks created in the last hour" }).waitFor();
    await page.screenshot({ path: join(SHOTS, "list.png"), fullPage: true });
    expect(offLoopback).toEqual([]);
    await page.context().close();
  });

  it("should fit a phone's width and follow the system's dark mode", async () => {
    const { page } = await openPage("#/", { width: 390, height: 800 });
    await page.locator("tbody tr").first().waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth)).toBe(true);
    const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.emulateMedia({ colorScheme: "dark" });
    const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(dark).not.toBe(light);
    await page.screenshot({ path: join(SHOTS, "list-phone-dark.png"), fullPage: true });
    await page.context().close();
  });
});

describe("the web dashboard with API keys on", () => {
  let h: Harness;
  let browser: Browser;
  const a = createApiKey("team-a");
  const b = createApiKey("team-b");

  beforeAll(async () => {
    if (chain.missing) return;
    await buildDashboard();
    h = await startHarness({ ROOKERY_API_KEYS: `${a.entry},${b.entry}` });
    browser = await launchChromium(chain.value!);
  }, 900_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  const as = (key: string) =>
    createClient(
      TaskService,
      createConnectTransport({
        baseUrl: `http://127.0.0.1:${h.rookery.httpPort}`,
        httpVersion: "1.1",
        interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${key}`), next(req))],
      }),
    );

  it("should show nothing but the key prompt without a key, and only key A's tasks with key A", async () => {
    const mine = (await as(a.key).submit({ prompt: "team a's task" })).task!.id;
    const theirs = (await as(b.key).submit({ prompt: "team b's task" })).task!.id;
    const { context, offLoopback } = await loopbackContext(browser);
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${h.rookery.httpPort}/`);
    await page.getByLabel("API key", { exact: true }).waitFor();
    expect(await page.locator("table").count()).toBe(0);
    expect(await page.locator("main").innerText()).not.toMatch(/team [ab]'s task/);

    await page.getByLabel("API key", { exact: true }).fill(a.key);
    await page.getByRole("button", { name: "Use key" }).click();
    await page.locator(`tr[data-task-id="${mine}"]`).waitFor();
    expect(await page.locator(`tr[data-task-id="${theirs}"]`).count()).toBe(0);
    await page.goto(`http://127.0.0.1:${h.rookery.httpPort}/#/tasks/${theirs}`);
    expect(await page.getByRole("alert").innerText()).toMatch(/^NotFound:/);
    expect(await page.locator("main").innerText()).not.toContain("team b's task");
    // Kept for this tab's session only: a new context (a new session) asks again.
    const other = await (await loopbackContext(browser)).context.newPage();
    await other.goto(`http://127.0.0.1:${h.rookery.httpPort}/`);
    await other.getByLabel("API key", { exact: true }).waitFor();
    expect(offLoopback).toEqual([]);
    await context.close();
    await other.context().close();
  });
});
