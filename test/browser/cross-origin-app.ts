// Bundled into a page that a test serves on another loopback port than the
// API's: calls the API with connect-web's gRPC-Web or Connect transport, the
// way a web app on another origin would. (Browser code; the test bundles it.)
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { TaskService } from "../../gen/rookery/v1/task_service_pb.js";

/** Submits a task and watches it to its end; returns the statuses seen, or the error's code and message. */
async function submitAndWatch(baseUrl: string, protocol: "grpc-web" | "connect"): Promise<{ statuses?: string[]; error?: string }> {
  const transport = protocol === "grpc-web" ? createGrpcWebTransport({ baseUrl }) : createConnectTransport({ baseUrl });
  const client = createClient(TaskService, transport);
  try {
    const { task } = await client.submit({ prompt: `from another origin over ${protocol}` });
    const statuses: string[] = [];
    for await (const { event } of client.watch({ id: task!.id })) if (event) statuses.push(TaskStatus[event.status]);
    return { statuses };
  } catch (error) {
    return { error: String(error) };
  }
}

(globalThis as Record<string, unknown>).submitAndWatch = submitAndWatch;
