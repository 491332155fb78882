// The task list: newest first, filtered by status and labels, paged by page
// token. Live by List polling (every POLL_MS, while the tab is visible): Watch
// follows one task, and a list needs every task's changes.
import { TaskStatus, TaskView, type Task } from "../../gen/rookery/v1/task_pb.js";
import { client, describeError } from "./api.js";
import { stackedChart, type StackedColumn } from "./charts.js";
import { h, replace } from "./dom.js";
import { age, dateOf, parseLabels, shorten, statusName, STATUSES } from "./format.js";

const POLL_MS = 2_000;
const CHART_POLL_MS = 10_000;
const PAGE_SIZE = 50;

export function listPage(main: HTMLElement, signal: AbortSignal, showError: (message: string) => void): void {
  // Where we are: the filter, and the tokens of the pages before this one (for "Previous").
  let statuses: TaskStatus[] = [];
  let labels: Record<string, string> = {};
  let pageToken = "";
  const earlier: string[] = [];

  const statusSelect = h(
    "select",
    { id: "filter-status", name: "status" },
    h("option", { value: "" }, "any"),
    ...STATUSES.map((s) => h("option", { value: String(s) }, statusName(s))),
  );
  const labelInput = h("input", { id: "filter-labels", name: "labels", placeholder: "team=search, env=prod", autocomplete: "off" });
  const filter = h(
    "form",
    { class: "filter", "aria-label": "Filter tasks" },
    h("label", { for: "filter-status" }, "Status"),
    statusSelect,
    h("label", { for: "filter-labels" }, "Labels"),
    labelInput,
    h("button", { type: "submit" }, "Apply"),
  );
  const rows = h("tbody");
  const table = h(
    "table",
    { class: "tasks" },
    h("caption", { class: "visually-hidden" }, "Tasks, newest first"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...["Status", "Prompt", "Model"].map((c) => h("th", { scope: "col" }, c)),
        ...["Iterations", "Tokens", "Age"].map((c) => h("th", { scope: "col", class: "num" }, c)),
      ),
    ),
    rows,
  );
  const previous = h("button", { type: "button", id: "page-previous", disabled: true }, "Previous page");
  const next = h("button", { type: "button", id: "page-next", disabled: true }, "Next page");
  const pageInfo = h("span", { id: "page-info", "aria-live": "polite" });
  const chart = h("div", { class: "chart-slot" });
  replace(
    main,
    h("h1", {}, "Tasks"),
    chart,
    filter,
    h("div", { class: "table-wrap" }, table),
    h("nav", { class: "pager", "aria-label": "Pages" }, previous, pageInfo, next),
  );

  let nextToken = "";
  let generation = 0;
  const load = async () => {
    const mine = ++generation;
    try {
      const response = await client.list({ pageSize: PAGE_SIZE, pageToken, statuses, labels, view: TaskView.BASIC }, { signal });
      if (mine !== generation) return; // a newer load (a click) has started since
      replace(rows, ...response.tasks.map(row));
      if (response.tasks.length === 0) replace(rows, h("tr", {}, h("td", { colspan: 6 }, "No tasks")));
      nextToken = response.nextPageToken;
      next.disabled = nextToken === "";
      previous.disabled = earlier.length === 0;
      pageInfo.textContent = `Page ${earlier.length + 1}`;
    } catch (error) {
      if (!signal.aborted) showError(describeError(error));
    }
  };

  // Another page or filter: nothing of the old page may be used (its token belongs to the old filter) until the new one is in.
  const go = () => {
    next.disabled = true;
    previous.disabled = true;
    pageInfo.textContent = "Loading…";
    void load();
  };

  filter.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      labels = parseLabels(labelInput.value);
    } catch (error) {
      showError((error as Error).message);
      return;
    }
    statuses = statusSelect.value ? [Number(statusSelect.value)] : [];
    pageToken = "";
    earlier.length = 0;
    go();
  });
  next.addEventListener("click", () => {
    earlier.push(pageToken);
    pageToken = nextToken;
    go();
  });
  previous.addEventListener("click", () => {
    pageToken = earlier.pop() ?? "";
    go();
  });

  const drawChart = async () => {
    try {
      replace(chart, stackedChart("Tasks created in the last hour, by status now", await lastHour(signal), STATUSES.map(statusName)));
    } catch (error) {
      if (!signal.aborted) showError(describeError(error));
    }
  };
  void load();
  void drawChart();
  every(POLL_MS, signal, load);
  every(CHART_POLL_MS, signal, drawChart);
}

function row(task: Task): HTMLTableRowElement {
  const status = statusName(task.status);
  return h(
    "tr",
    { "data-task-id": task.id },
    h("td", {}, h("span", { class: `status status-${status}` }, status)),
    h("td", {}, h("a", { href: `#/tasks/${task.id}` }, shorten(task.prompt, 80) || "(empty)")),
    h("td", {}, task.model ?? "-"),
    h("td", { class: "num" }, `${task.iterations}/${task.maxIterations}`),
    h("td", { class: "num" }, task.usage?.totalTokens ?? 0n),
    h("td", { class: "num" }, age(dateOf(task.createTime))),
  );
}

/** Tasks created in the last hour, in twelve 5-minute columns, stacked by their status now (at most 2,000 read). */
async function lastHour(signal: AbortSignal): Promise<StackedColumn[]> {
  const now = Date.now();
  const bucketMs = 5 * 60_000;
  const counts = Array.from({ length: 12 }, () => new Map<string, number>());
  let pageToken = "";
  for (let page = 0; page < 2; page++) {
    const response = await client.list({ pageSize: 1000, pageToken, view: TaskView.BASIC }, { signal });
    let older = false;
    for (const task of response.tasks) {
      const created = dateOf(task.createTime)?.getTime() ?? 0;
      const bucket = 11 - Math.floor((now - created) / bucketMs);
      if (bucket < 0) {
        older = true;
        break;
      }
      const column = counts[Math.min(11, bucket)]!;
      column.set(statusName(task.status), (column.get(statusName(task.status)) ?? 0) + 1);
    }
    if (older || !response.nextPageToken) break;
    pageToken = response.nextPageToken;
  }
  return counts.map((column, i) => ({
    label: i === 11 ? "now" : `-${(11 - i) * 5}m`,
    parts: STATUSES.map((s) => ({ key: statusName(s), value: column.get(statusName(s)) ?? 0 })),
  }));
}

/** Runs `work` every `ms` while the tab is visible, until `signal` aborts; never two at once. */
export function every(ms: number, signal: AbortSignal, work: () => Promise<void>): void {
  const tick = async () => {
    if (signal.aborted) return;
    if (document.visibilityState === "visible") await work();
    if (!signal.aborted) setTimeout(() => void tick(), ms);
  };
  setTimeout(() => void tick(), ms);
}
