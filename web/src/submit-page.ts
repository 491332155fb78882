// The Submit form: prompt, system prompt, model, labels and max iterations.
// On success the page goes to the new task; the API's error is shown as worded.
import { client, describeError } from "./api.js";
import { h, replace } from "./dom.js";
import { parseLabels } from "./format.js";

export function submitPage(main: HTMLElement, showError: (message: string) => void): void {
  const field = (id: string, label: string, input: HTMLElement, hint?: string) =>
    h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("small", { id: `${id}-hint` }, hint) : null);
  const prompt = h("textarea", { id: "prompt", name: "prompt", rows: 5, required: true });
  const systemPrompt = h("textarea", { id: "system-prompt", name: "system-prompt", rows: 2 });
  const model = h("input", { id: "model", name: "model", placeholder: "the server's default", autocomplete: "off" });
  const labels = h("input", {
    id: "labels",
    name: "labels",
    placeholder: "team=search, env=prod",
    autocomplete: "off",
    "aria-describedby": "labels-hint",
  });
  const maxIterations = h("input", {
    id: "max-iterations",
    name: "max-iterations",
    type: "number",
    min: 1,
    placeholder: "the server's default",
  });
  const form = h(
    "form",
    { id: "submit-form", "aria-label": "Submit a task" },
    field("prompt", "Prompt", prompt),
    field("system-prompt", "System prompt", systemPrompt),
    field("model", "Model", model),
    field("labels", "Labels", labels, "key=value pairs, separated by commas"),
    field("max-iterations", "Max iterations", maxIterations),
    h("button", { type: "submit", id: "submit" }, "Submit"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void (async () => {
      try {
        const { task } = await client.submit({
          prompt: prompt.value,
          systemPrompt: systemPrompt.value,
          labels: parseLabels(labels.value),
          ...(model.value.trim() ? { model: model.value.trim() } : {}),
          ...(maxIterations.value ? { maxIterations: Number(maxIterations.value) } : {}),
        });
        if (task) location.hash = `#/tasks/${task.id}`;
      } catch (error) {
        showError(error instanceof Error && error.name !== "ConnectError" ? error.message : describeError(error));
      }
    })();
  });
  replace(main, h("h1", {}, "Submit a task"), form);
  prompt.focus();
}
