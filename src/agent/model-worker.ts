// A model worker thread: makes the streamed SDK calls the main thread hands it
// (chat-stream.ts) and posts back the deltas (delta-batch.ts), then the reply or the
// failure. The SDK call, undici and the chunk parsing are most of a run's CPU;
// here they run on another core than the store, the leases and Watch.
import { parentPort, workerData } from "node:worker_threads";
import type OpenAI from "openai";
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";
import { sdkClient, streamChat, type ChatCall, type ProviderSettings, type SdkSettings } from "./chat-stream.js";
import { DeltaBatch } from "./delta-batch.js";
import { ModelCallError, ModelWorkerLostError } from "./model-errors.js";
import type { ToWorker, FromWorker, WorkerCall, WorkerSettings } from "./model-worker-protocol.js";

const settings = workerData as WorkerSettings;
const port = parentPort!;
const clients = new Map<string, OpenAI>();
const inFlight = new Map<number, AbortController>();
/** Each run's conversation as of its last call, by the id the main thread gave it. */
const conversations = new Map<number, ChatCompletionMessageParam[]>();

function client(provider: string, providerSettings: ProviderSettings, sdk: SdkSettings): OpenAI {
  let c = clients.get(provider);
  if (!c) clients.set(provider, (c = sdkClient(providerSettings, sdk)));
  return c;
}

const post = (message: FromWorker) => port.postMessage(message);

/** Drops the conversations of runs that have ended. */
function forget(ended: number[]): void {
  for (const id of ended) conversations.delete(id);
}

/** The call with its whole conversation: the messages kept from the run's last call, then the new ones. */
function withConversation({ conversation, kept, added, forget: ended, ...call }: WorkerCall): ChatCall {
  forget(ended);
  let messages = added;
  if (kept > 0) {
    messages = conversations.get(conversation) ?? [];
    // The main thread sends `kept` only for what it sent here before: anything else is a bug,
    // and the call fails retryably, to be sent whole.
    if (messages.length !== kept) throw new ModelWorkerLostError("the model worker no longer held this run's conversation");
    for (const message of added) messages.push(message);
  }
  if (conversation !== 0) conversations.set(conversation, messages);
  return { ...call, messages };
}

async function run({ id, call: sent }: Extract<ToWorker, { type: "call" }>): Promise<void> {
  const controller = new AbortController();
  inFlight.set(id, controller);
  const batch = new DeltaBatch((deltas) => post({ type: "deltas", id, deltas }));
  try {
    const call = withConversation(sent);
    const providerSettings = settings.providers[call.provider] ?? {};
    const reply = await streamChat(client(call.provider, providerSettings, settings.sdk), call, settings.sdk, controller.signal, (delta) =>
      batch.add(delta),
    );
    post({ type: "reply", id, deltas: batch.take(), reply });
  } catch (error) {
    const deltas = batch.take();
    // Only the main thread aborts, and it has stopped listening for this call by then.
    if (controller.signal.aborted) return;
    const e = error instanceof ModelCallError ? error : new ModelCallError(String(error), "internal");
    post({ type: "failure", id, deltas, failure: { name: e.name, message: e.message, code: e.code } });
  } finally {
    inFlight.delete(id);
  }
}

port.on("message", (message: ToWorker) => {
  if (message.type === "abort") inFlight.get(message.id)?.abort();
  else if (message.type === "forget") forget(message.forget);
  else void run(message);
});
