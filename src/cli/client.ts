import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { TaskService } from "../../gen/rookery/v1/task_service_pb.js";

export type TaskClient = Client<typeof TaskService>;

/** A TaskService client over native gRPC (HTTP/2) to `address` (host:port or a URL). */
export function connectTaskClient(address: string, apiKey?: string): TaskClient {
  const baseUrl = /^https?:\/\//.test(address) ? address : `http://${address}`;
  const auth: Interceptor = (next) => (req) => {
    if (apiKey) req.header.set("authorization", `Bearer ${apiKey}`);
    return next(req);
  };
  return createClient(TaskService, createGrpcTransport({ baseUrl, interceptors: [auth] }));
}
