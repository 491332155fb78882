// A model worker thread: makes the streamed SDK calls the main thread hands it
// (chat-stream.ts) and posts back each chunk's delta, then the reply or the
// failure. The SDK call, undici and the chunk parsing are most of a run's CPU;
// here they run on another core than the store, the leases and Watch.
import { parentPort, workerData } from "node:worker_threads";
import type OpenAI from "openai";
import { sdkClient, streamChat, type ProviderSettings, type SdkSettings } from "./chat-stream.js";
import { ModelCallError } from "./model-errors.js";
import type { ToWorker, FromWorker, WorkerSettings } from "./model-worker-protocol.js";

const settings = workerData as WorkerSettings;
const port = parentPort!;
const clients = new Map<string, OpenAI>();
const inFlight = new Map<number, AbortController>();

function client(provider: string, providerSettings: ProviderSettings, sdk: SdkSettings): OpenAI {
  let c = clients.get(provider);
  if (!c) clients.set(provider, (c = sdkClient(providerSettings, sdk)));
  return c;
}

const post = (message: FromWorker) => port.postMessage(message);

async function run({ id, call }: Extract<ToWorker, { type: "call" }>): Promise<void> {
  const controller = new AbortController();
  inFlight.set(id, controller);
  try {
    const providerSettings = settings.providers[call.provider] ?? {};
    const reply = await streamChat(
      client(call.provider, providerSettings, settings.sdk),
      call,
      settings.sdk.maxReplyBytes,
      controller.signal,
      (delta) => post({ type: "delta", id, delta }),
    );
    post({ type: "reply", id, reply });
  } catch (error) {
    // Only the main thread aborts, and it has stopped listening for this call by then.
    if (controller.signal.aborted) return;
    const e = error instanceof ModelCallError ? error : new ModelCallError(String(error), "internal");
    post({ type: "failure", id, failure: { name: e.name, message: e.message, code: e.code } });
  } finally {
    inFlight.delete(id);
  }
}

port.on("message", (message: ToWorker) => {
  if (message.type === "abort") inFlight.get(message.id)?.abort();
  else void run(message);
});
