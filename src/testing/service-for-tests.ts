// A TaskService over a given store with small fixed defaults and no model or
// webhooks: what the unit tests of the handlers build on (no listener needed).
import { TaskService } from "../api/task-service.js";
import { DEFAULT_LIMITS } from "../api/validate.js";
import type { TaskStore } from "../store/task-store.js";
import { EventFeed } from "../watch/event-feed.js";
import { OutputFeed } from "../watch/output-feed.js";
import { PublishingStore } from "../watch/publishing-store.js";

export function serviceForTests(store: TaskStore, authEnabled: boolean): TaskService {
  const feed = new EventFeed();
  return new TaskService({
    store: new PublishingStore(store, feed),
    feed,
    outputs: new OutputFeed(50),
    limits: DEFAULT_LIMITS,
    defaults: { provider: "openai", model: "m", maxIterations: 5, maxTotalTokens: 0 },
    providers: ["openai"],
    serverTools: ["calculator"],
    watchPollMs: 50,
    watchQueueLimit: 16,
    authEnabled,
    webhooks: { enabled: false, refusal: async () => undefined },
  });
}
