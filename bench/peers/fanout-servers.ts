// The fan-out floor of each stack: a bare @grpc/grpc-js server and a bare
// connect-node server (h2c) that serve rookery.v1.TaskService/Watch by holding
// each stream open and pushing what they are told to. Commands on stdin, one
// per line: "push <sequence>" sends every open stream one WatchResponse stamped
// with the current time; "count" prints "count <grpc streams> <connect streams>".
// Prints "ready <grpc port> <connect port>".
import * as http2 from "node:http2";
import { createInterface } from "node:readline";
import { create, toBinary, fromBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { TaskEventKind, TaskStatus } from "../../gen/rookery/v1/task_pb.js";
import { TaskService, WatchRequestSchema, WatchResponseSchema, type WatchResponse } from "../../gen/rookery/v1/task_service_pb.js";

const grpcStreams = new Set<grpc.ServerWritableStream<unknown, WatchResponse>>();
let connectStreams = 0;
let nextPush = deferred();

function deferred(): { promise: Promise<WatchResponse>; resolve(m: WatchResponse): void } {
  let resolve!: (m: WatchResponse) => void;
  const promise = new Promise<WatchResponse>((r) => (resolve = r));
  return { promise, resolve };
}

function push(sequence: bigint): void {
  const message = create(WatchResponseSchema, {
    event: {
      taskId: "floor",
      sequence,
      time: timestampFromMs(Date.now()),
      kind: TaskEventKind.ITERATION_CHECKPOINTED,
      status: TaskStatus.RUNNING,
      previousStatus: TaskStatus.RUNNING,
    },
  });
  for (const call of grpcStreams) call.write(message);
  const waiting = nextPush;
  nextPush = deferred();
  waiting.resolve(message);
}

const grpcServer = new grpc.Server();
grpcServer.addService(
  {
    watch: {
      path: "/rookery.v1.TaskService/Watch",
      requestStream: false,
      responseStream: true,
      requestSerialize: (m: object) => Buffer.from(toBinary(WatchRequestSchema, m as never)),
      requestDeserialize: (b: Buffer) => fromBinary(WatchRequestSchema, b),
      responseSerialize: (m: WatchResponse) => Buffer.from(toBinary(WatchResponseSchema, m)),
      responseDeserialize: (b: Buffer) => fromBinary(WatchResponseSchema, b),
    },
  },
  {
    watch: (call: grpc.ServerWritableStream<unknown, WatchResponse>) => {
      grpcStreams.add(call);
      call.once("cancelled", () => grpcStreams.delete(call));
    },
  },
);
const grpcPort = await new Promise<number>((resolve, reject) =>
  grpcServer.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
);

async function* connectWatch(_req: unknown, ctx: HandlerContext): AsyncGenerator<WatchResponse> {
  connectStreams += 1;
  const ended = new Promise<undefined>((resolve) => ctx.signal.addEventListener("abort", () => resolve(undefined), { once: true }));
  try {
    for (;;) {
      const message = await Promise.race([nextPush.promise, ended]);
      if (!message) return;
      yield message;
    }
  } finally {
    connectStreams -= 1;
  }
}
const connect = http2.createServer(
  connectNodeAdapter({ routes: (router: ConnectRouter) => router.rpc(TaskService.method.watch, connectWatch) }),
);
connect.listen(0, "127.0.0.1");
await new Promise((resolve) => connect.once("listening", resolve));

createInterface({ input: process.stdin }).on("line", (line) => {
  const [command, arg] = line.split(" ");
  if (command === "push") push(BigInt(arg ?? 0));
  if (command === "count") console.log(`count ${grpcStreams.size} ${connectStreams}`);
});
console.log(`ready ${grpcPort} ${(connect.address() as { port: number }).port}`);
