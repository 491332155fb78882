// The dashboard's entry: finds out whether the server wants an API key (a List
// that answers UNAUTHENTICATED), asks for one if so, and routes between the
// pages by the URL's hash: #/ (tasks), #/new (submit), #/tasks/<id>.
import { apiKey, client, describeError, isUnauthenticated } from "./api.js";
import { h, replace } from "./dom.js";
import { listPage } from "./list-page.js";
import { submitPage } from "./submit-page.js";
import { taskPage } from "./task-page.js";

const main = document.getElementById("main")!;
const alertBox = document.getElementById("alert")!;
const session = document.getElementById("session")!;

function showError(message: string): void {
  alertBox.textContent = message;
  alertBox.hidden = false;
}

function clearError(): void {
  alertBox.hidden = true;
  alertBox.textContent = "";
}

let page: AbortController | undefined;

async function route(): Promise<void> {
  page?.abort();
  page = new AbortController();
  const signal = page.signal;
  clearError();
  try {
    await client.list({ pageSize: 1 }, { signal });
  } catch (error) {
    if (signal.aborted) return;
    if (isUnauthenticated(error)) return askForKey(apiKey.get() ? describeError(error) : undefined);
    showError(describeError(error));
  }
  renderSession();
  const hash = location.hash.replace(/^#/, "") || "/";
  const task = /^\/tasks\/([^/]+)$/.exec(hash);
  if (task) taskPage(main, decodeURIComponent(task[1]!), signal, showError);
  else if (hash === "/new") submitPage(main, showError);
  else listPage(main, signal, showError);
  main.focus();
}

/** With API keys on, all the page shows until a key is given. */
function askForKey(problem?: string): void {
  session.textContent = "";
  const input = h("input", { id: "api-key", name: "api-key", type: "password", autocomplete: "off", required: true });
  const form = h(
    "form",
    { id: "key-form", "aria-label": "Sign in with an API key" },
    h("h1", {}, "API key"),
    h("p", {}, "This server needs an API key. It is kept in this tab only and sent as a bearer token."),
    h("label", { for: "api-key" }, "API key"),
    input,
    h("button", { type: "submit" }, "Use key"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    apiKey.set(input.value.trim());
    void route();
  });
  replace(main, form);
  if (problem) showError(problem);
  input.focus();
}

function renderSession(): void {
  if (!apiKey.get()) return replace(session);
  replace(
    session,
    h(
      "button",
      {
        type: "button",
        id: "forget-key",
        onclick: () => {
          apiKey.clear();
          sessionStorage.clear();
          void route();
        },
      },
      "Forget key",
    ),
  );
}

window.addEventListener("hashchange", () => void route());
void route();
