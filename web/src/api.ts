// The one client the dashboard talks to the server through: the generated
// Connect client over the same origin, with the API key of this browser
// session (sessionStorage: gone when the tab closes) as a bearer token.
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { TaskService } from "../../gen/rookery/v1/task_service_pb.js";

const KEY_ITEM = "rookery.apiKey";

export const apiKey = {
  get: (): string | null => sessionStorage.getItem(KEY_ITEM),
  set: (key: string): void => sessionStorage.setItem(KEY_ITEM, key),
  clear: (): void => sessionStorage.removeItem(KEY_ITEM),
};

const bearer: Interceptor = (next) => (request) => {
  const key = apiKey.get();
  if (key) request.header.set("authorization", `Bearer ${key}`);
  return next(request);
};

export type TaskClient = Client<typeof TaskService>;

export const client: TaskClient = createClient(
  TaskService,
  createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true, interceptors: [bearer] }),
);

/** The API's own words for a failed call: its code and message. */
export function describeError(error: unknown): string {
  const e = ConnectError.from(error);
  return `${Code[e.code] ?? e.code}: ${e.rawMessage}`;
}

export function isUnauthenticated(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Unauthenticated;
}

export function isAbort(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Canceled;
}
