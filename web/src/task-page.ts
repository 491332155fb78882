// One task: what it is (Get), the timeline of its events with each iteration's
// messages, the output streaming live (Watch with include_output), a chart of
// its iterations, its conversation, and the actions Cancel and Resume. The
// stream resumes where it left off after a lost connection or a reload (see
// timeline.ts).
import { Code, ConnectError } from "@connectrpc/connect";
import { TaskEventKind, TaskStatus, type Message, type Task, type TaskEvent } from "../../gen/rookery/v1/task_pb.js";
import { client, describeError } from "./api.js";
import { barChart } from "./charts.js";
import { append, h, replace } from "./dom.js";
import { dateOf, errorCodeName, formatLabels, shorten, statusName } from "./format.js";
import { iterationStats, Timeline, type LiveOutput } from "./timeline.js";

const RECONNECT_MAX_MS = 10_000;
/** Tool results and long texts in the timeline are cut to this many characters (Get has them whole). */
const TIMELINE_TEXT_MAX = 2_000;

export function taskPage(main: HTMLElement, id: string, signal: AbortSignal, showError: (message: string) => void): void {
  const timeline = Timeline.restore(id, sessionStorage);
  const summary = h("section", { class: "summary", "aria-label": "Task" });
  const actions = h("section", { class: "actions", "aria-label": "Actions" });
  const connection = h("p", { class: "connection", id: "connection", "aria-live": "polite" });
  const output = h("section", { class: "output", id: "live-output", "aria-label": "Live output", hidden: true });
  const events = h("ol", { class: "timeline", id: "timeline", "aria-label": "Timeline" });
  const chart = h("div", { class: "chart-slot" });
  const conversation = h("details", { class: "conversation" });
  replace(
    main,
    h("h1", {}, "Task ", h("code", {}, id)),
    summary,
    actions,
    h("h2", {}, "Timeline"),
    connection,
    events,
    output,
    chart,
    conversation,
  );

  let task: Task | undefined;
  const refresh = coalesced(async () => {
    try {
      task = (await client.get({ id }, { signal })).task;
      if (!task) return;
      renderSummary(summary, task);
      renderActions(actions, task, { cancel, resume });
      renderConversation(conversation, task.checkpoint?.messages ?? []);
    } catch (error) {
      if (!signal.aborted) showError(describeError(error));
    }
  });

  const showEvent = (event: TaskEvent, previous: TaskEvent | undefined) => {
    events.append(eventItem(event, previous));
  };
  timeline.events.forEach((e, i) => showEvent(e, timeline.events[i - 1]));
  renderOutput(output, timeline.output);
  renderChart(chart, timeline);

  let following = false;
  const follow = async () => {
    if (following) return;
    following = true;
    let backoffMs = 500;
    try {
      while (!signal.aborted) {
        try {
          connection.textContent = "Following live";
          for await (const response of client.watch(timeline.resumeRequest(), { signal })) {
            backoffMs = 500;
            const applied = timeline.apply(response);
            if (applied === "event") {
              const event = timeline.events.at(-1)!;
              showEvent(event, timeline.events.at(-2));
              renderChart(chart, timeline);
              // Get (with the checkpoint) when the status changes; an iteration's event
              // carries the counts the summary shows.
              if (event.kind === TaskEventKind.ITERATION_CHECKPOINTED && task && event.task) {
                task = { ...task, iterations: event.iterations, ...(event.task.usage ? { usage: event.task.usage } : {}) };
                renderSummary(summary, task);
              } else refresh();
            }
            if (applied !== "ignored") {
              renderOutput(output, timeline.output);
              timeline.save(sessionStorage);
            }
          }
          // A stream ends at a terminal event, also one it replays: a task resumed since
          // then has newer events, so follow on from there.
          const now = (await client.get({ id }, { signal })).task;
          if (now && now.lastEventSequence > timeline.lastSequence) continue;
          connection.textContent = "The task has ended; Resume follows it again.";
          return;
        } catch (error) {
          if (signal.aborted) return;
          if (ConnectError.from(error).code === Code.NotFound) {
            connection.textContent = "";
            showError(describeError(error));
            return;
          }
          connection.textContent = `Connection lost (${describeError(error)}); reconnecting after sequence ${timeline.lastSequence}…`;
          await pause(backoffMs, signal);
          backoffMs = Math.min(RECONNECT_MAX_MS, backoffMs * 2);
        }
      }
    } finally {
      following = false;
    }
  };

  const cancel = async () => {
    try {
      await client.cancel({ id, reason: "cancelled from the dashboard" }, { signal });
      refresh();
    } catch (error) {
      showError(describeError(error));
    }
  };
  const resume = async (request: Parameters<typeof client.resume>[0]) => {
    try {
      await client.resume({ ...request, id }, { signal });
      refresh();
      void follow();
    } catch (error) {
      showError(describeError(error));
    }
  };

  refresh();
  void follow();
}

function renderSummary(section: HTMLElement, task: Task): void {
  const status = statusName(task.status);
  const usage = task.usage;
  const rows: [string, string | Node][] = [
    ["Status", h("span", { class: `status status-${status}`, id: "task-status" }, status)],
    ["Model", `${task.provider ?? "-"} / ${task.model ?? "-"}`],
    ["Iterations", `${task.iterations} of ${task.maxIterations}`],
    [
      "Tokens",
      usage
        ? `${usage.totalTokens} (prompt ${usage.promptTokens}, completion ${usage.completionTokens})${task.maxTotalTokens ? ` of ${task.maxTotalTokens}` : ""}`
        : "0",
    ],
    ["Labels", formatLabels(task.labels) || "-"],
    ["Created", dateOf(task.createTime)?.toLocaleString() ?? "-"],
    ["Updated", dateOf(task.updateTime)?.toLocaleString() ?? "-"],
    ["Runs", String(task.runs)],
    ["Prompt", h("pre", {}, task.prompt)],
  ];
  if (task.systemPrompt) rows.push(["System prompt", h("pre", {}, task.systemPrompt)]);
  if (task.error !== undefined)
    rows.push(["Error", h("span", { id: "task-error" }, `${task.error}${task.errorCode ? ` (${errorCodeName(task.errorCode)})` : ""}`)]);
  if (task.result !== undefined) rows.push(["Result", h("pre", { id: "task-result" }, task.result)]);
  replace(section, h("dl", {}, ...rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])));
}

interface Actions {
  cancel(): Promise<void>;
  resume(request: { message?: string; toolResults: { toolCallId: string; content: string; isError: boolean }[] }): Promise<void>;
}

function renderActions(section: HTMLElement, task: Task, act: Actions): void {
  // Rebuilt only for a new state of the task: every event refreshes the page (the ones a Watch
  // replays when the page opens too), and rebuilding the form for the same state would wipe a
  // tool result or message being typed. After a Resume the task has moved on: a fresh form.
  const state = String(task.lastEventSequence);
  if (section.dataset.state === state) return;
  section.dataset.state = state;
  replace(section);
  const cancellable = [TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.INPUT_REQUIRED].includes(task.status);
  if (cancellable)
    section.append(h("button", { type: "button", id: "cancel", class: "danger", onclick: () => void act.cancel() }, "Cancel task"));
  const resumable = [TaskStatus.INPUT_REQUIRED, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED].includes(task.status);
  if (!resumable) return;
  const message = h("textarea", { id: "resume-message", name: "message", rows: 2 });
  const calls = task.pendingToolCalls.map((call, i) => ({
    call,
    content: h("textarea", { id: `tool-result-${i}`, name: `tool-result-${i}`, rows: 2, required: true }),
    isError: h("input", { type: "checkbox", id: `tool-error-${i}` }),
  }));
  const form = h(
    "form",
    { id: "resume-form", "aria-label": "Resume" },
    h("h2", {}, "Resume"),
    ...calls.map(({ call, content, isError }, i) =>
      h(
        "fieldset",
        { class: "tool-call" },
        h("legend", {}, `Tool call ${call.name} (${call.id})`),
        h("pre", { class: "arguments" }, call.arguments),
        h("label", { for: `tool-result-${i}` }, `Result of ${call.name}`),
        content,
        h("label", { for: `tool-error-${i}`, class: "inline" }, isError, " It failed"),
      ),
    ),
    h("label", { for: "resume-message" }, task.pendingToolCalls.length ? "Message (optional)" : "Follow-up message"),
    message,
    h("button", { type: "submit", id: "resume" }, "Resume"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void act.resume({
      ...(message.value.trim() ? { message: message.value } : {}),
      toolResults: calls.map(({ call, content, isError }) => ({ toolCallId: call.id, content: content.value, isError: isError.checked })),
    });
  });
  section.append(form);
}

function eventItem(event: TaskEvent, previous: TaskEvent | undefined): HTMLLIElement {
  const time = dateOf(event.time)?.toLocaleTimeString() ?? "";
  const what =
    event.kind === TaskEventKind.ITERATION_CHECKPOINTED
      ? `iteration ${event.iterations} checkpointed`
      : previous
        ? `${statusName(event.previousStatus)} → ${statusName(event.status)}`
        : statusName(event.status);
  const closes = previous && event.iterations > previous.iterations && event.kind !== TaskEventKind.ITERATION_CHECKPOINTED;
  return h(
    "li",
    { class: "event", "data-sequence": String(event.sequence), "data-status": statusName(event.status) },
    h(
      "p",
      { class: "event-head" },
      h("span", { class: "seq" }, `#${event.sequence}`),
      ` ${time} · ${what}${closes ? ` (iteration ${event.iterations})` : ""}`,
    ),
    ...event.messages.map(messageItem),
  );
}

function messageItem(message: Message): HTMLElement {
  const parts: (Node | string)[] = [];
  if (message.role === "tool") {
    parts.push(
      h("span", { class: "role" }, `tool result (${message.toolCallId})`),
      h("pre", {}, shorten(message.content, TIMELINE_TEXT_MAX)),
    );
  } else {
    parts.push(h("span", { class: "role" }, message.role));
    if (message.content)
      parts.push(h("pre", {}, message.role === "assistant" ? message.content : shorten(message.content, TIMELINE_TEXT_MAX)));
  }
  for (const call of message.toolCalls)
    parts.push(h("p", { class: "tool-call" }, "calls ", h("code", {}, `${call.name}(${call.arguments})`), ` [${call.id}]`));
  return h("div", { class: `message message-${message.role}` }, ...parts);
}

function renderOutput(section: HTMLElement, output: LiveOutput | undefined): void {
  section.hidden = !output;
  if (!output) return replace(section);
  replace(
    section,
    h("h3", {}, `Iteration ${output.iteration}, generating…`),
    output.restarts ? h("p", { class: "note" }, "The output started over (a retried model call or a run taken over).") : null,
    h("pre", { class: "live-text" }, output.text),
    ...output.calls.map((call) => h("p", { class: "tool-call" }, "calls ", h("code", {}, `${call.name}(${call.arguments}`))),
  );
}

function renderChart(slot: HTMLElement, timeline: Timeline): void {
  const stats = iterationStats(timeline.events);
  if (stats.length === 0) return replace(slot);
  replace(
    slot,
    h("h2", {}, "Iterations"),
    h(
      "div",
      { class: "charts" },
      barChart(
        "Tokens per iteration",
        stats.map((s) => ({ label: String(s.iteration), value: s.tokens })),
        "tokens",
      ),
      barChart(
        "Seconds per iteration",
        stats.map((s) => ({ label: String(s.iteration), value: s.seconds })),
        "s",
      ),
    ),
  );
}

function renderConversation(details: HTMLDetailsElement, messages: Message[]): void {
  const open = details.open;
  replace(details, h("summary", {}, `Conversation at the last checkpoint (${messages.length} messages)`));
  append(details, ...messages.map(messageItem));
  details.open = open;
}

/** A function that runs `work` now, or once more after the run in progress if called meanwhile. */
function coalesced(work: () => Promise<void>): () => void {
  let running = false;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await work();
      } while (again);
    } finally {
      running = false;
    }
  };
  return () => void run();
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
